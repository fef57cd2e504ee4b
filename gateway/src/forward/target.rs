//! What `kgate forward` is asked to reach: the workload (`pod/NAME`, `svc/NAME`,
//! `deploy/NAME`, or kgate's `svc/<ns>/<name>[:<port>]`) and the `[LOCAL:]REMOTE` port pairs,
//! read exactly as `kubectl port-forward` reads them.
//!
//! Contract (kubectl `pkg/cmd/portforward/portforward.go` `splitPort`, client-go
//! `tools/portforward/portforward.go` `parsePorts`): `5000` listens on 5000 and forwards to
//! 5000; `8888:5000` listens on 8888; `:5000` and `0:5000` listen on a free port; the remote
//! side may be a port *name* (a service port's name for a service, a container port's name for
//! a pod), and a lone name listens on the number it resolves to. A bare `NAME` is a pod.

use std::fmt;

/// The kinds of workload a forward can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One pod, by name.
    Pod,
    /// The ready pods behind a service (its EndpointSlices).
    Service,
    /// The ready pods a deployment selects.
    Deployment,
}

impl Kind {
    /// The resource as kubectl's messages name it (`pods`, `services`, `deployments.apps`).
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::Service => "services",
            Kind::Deployment => "deployments.apps",
        }
    }

    /// The short prefix kgate prints (`pod/`, `svc/`, `deploy/`).
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Pod => "pod",
            Kind::Service => "svc",
            Kind::Deployment => "deploy",
        }
    }

    fn of(word: &str) -> Option<Kind> {
        Some(match word.to_ascii_lowercase().as_str() {
            "po" | "pod" | "pods" => Kind::Pod,
            "svc" | "service" | "services" => Kind::Service,
            "deploy" | "deployment" | "deployments" | "deployment.apps" | "deployments.apps" => {
                Kind::Deployment
            }
            _ => return None,
        })
    }
}

/// A workload in a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// What it is.
    pub kind: Kind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind.prefix(), self.namespace, self.name)
    }
}

/// The remote side of a pair: a number, or a name to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemotePort {
    /// A port number (above 0).
    Number(u16),
    /// A service port's name (service) or a container port's name (pod, deployment).
    Name(String),
}

impl fmt::Display for RemotePort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemotePort::Number(n) => write!(f, "{n}"),
            RemotePort::Name(name) => f.write_str(name),
        }
    }
}

/// The local side of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalPort {
    /// No `LOCAL:` was given: the same number as the remote port resolves to.
    Same,
    /// This port; 0 is any free port.
    Port(u16),
}

/// One `[LOCAL:]REMOTE` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPair {
    /// Where to listen.
    pub local: LocalPort,
    /// Where to forward to.
    pub remote: RemotePort,
}

/// Why an argument cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not a workload kgate forwards to.
    #[error(
        "{input:?} is not a target kgate forwards to: use pod/NAME, svc/NAME, deploy/NAME (or \
         kgate's svc/<namespace>/<name>[:<port>]); a bare NAME is a pod{hint}"
    )]
    Workload {
        /// The argument.
        input: String,
        /// A hint for a kind kubectl knows that kgate does not.
        hint: String,
    },
    /// A name that cannot be a Kubernetes object's name.
    #[error(
        "{name:?} in {input:?} is not a valid {what} name (lower-case letters, digits, '-' and '.')"
    )]
    Name {
        /// The argument.
        input: String,
        /// The part that is wrong.
        name: String,
        /// `namespace` or the kind.
        what: &'static str,
    },
    /// A port argument kubectl would refuse too (its wording).
    #[error("{0}")]
    Port(String),
}

/// Reads a workload argument; `default_namespace` applies to the kubectl forms. A kgate short
/// form may carry a port (`svc/demo/web:8080`), returned as a pair that listens on a free port
/// unless the port is a number above 1023, which it listens on.
pub fn parse_workload(
    input: &str,
    default_namespace: &str,
) -> Result<(Workload, Option<PortPair>), TargetError> {
    let bad = |hint: &str| TargetError::Workload {
        input: input.to_owned(),
        hint: hint.to_owned(),
    };
    let parts: Vec<&str> = input.split('/').collect();
    let (kind, namespace, rest) = match parts.as_slice() {
        [name] => (Kind::Pod, default_namespace, *name),
        [kind, name] => (
            kind_of(kind).map_err(|h| bad(&h))?,
            default_namespace,
            *name,
        ),
        [kind, namespace, name] => (kind_of(kind).map_err(|h| bad(&h))?, *namespace, *name),
        _ => return Err(bad("")),
    };
    let (name, port) = match rest.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (rest, None),
    };
    check_name(input, namespace, "namespace")?;
    check_name(input, name, kind.prefix())?;
    let pair = match port {
        None => None,
        Some(port) => Some(short_form_pair(port).map_err(TargetError::Port)?),
    };
    Ok((
        Workload {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        },
        pair,
    ))
}

fn kind_of(word: &str) -> Result<Kind, String> {
    Kind::of(word).ok_or_else(|| match word.to_ascii_lowercase().as_str() {
        "sts" | "statefulset" | "statefulsets" | "rs" | "replicaset" | "replicasets" | "ds"
        | "daemonset" | "daemonsets" | "job" | "jobs" => {
            format!(" ({word} is not one yet: forward to one of its pods with pod/NAME)")
        }
        _ => String::new(),
    })
}

/// The pair a short form's `:<port>` stands for.
fn short_form_pair(port: &str) -> Result<PortPair, String> {
    let remote = remote_port(port)?;
    let local = match remote {
        RemotePort::Number(n) if n > 1023 => LocalPort::Port(n),
        _ => LocalPort::Port(0),
    };
    Ok(PortPair { local, remote })
}

/// A DNS-1123 subdomain (what pod, service and namespace names are, at most).
fn check_name(input: &str, name: &str, what: &'static str) -> Result<(), TargetError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(TargetError::Name {
            input: input.to_owned(),
            name: name.to_owned(),
            what,
        })
    }
}

fn remote_port(text: &str) -> Result<RemotePort, String> {
    if text.is_empty() {
        return Err("remote port cannot be empty".to_owned());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = text
            .parse()
            .map_err(|_| format!("error parsing remote port '{text}': value out of range"))?;
        if port == 0 {
            return Err("remote port must be > 0".to_owned());
        }
        return Ok(RemotePort::Number(port));
    }
    // An IANA_SVC_NAME, as port names are (at most 15 characters, a letter in it).
    let valid = text.len() <= 15
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && text.bytes().any(|b| b.is_ascii_lowercase())
        && !text.starts_with('-')
        && !text.ends_with('-');
    if valid {
        Ok(RemotePort::Name(text.to_owned()))
    } else {
        Err(format!(
            "error parsing remote port '{text}': not a port number nor a port name"
        ))
    }
}

/// Reads one `[LOCAL:]REMOTE` argument, as kubectl does.
pub fn parse_port_pair(text: &str) -> Result<PortPair, TargetError> {
    let parts: Vec<&str> = text.split(':').collect();
    let (local, remote) = match parts.as_slice() {
        [both] => (LocalPort::Same, *both),
        [local, remote] => {
            let local = if local.is_empty() {
                0
            } else {
                local.parse::<u16>().map_err(|_| {
                    TargetError::Port(format!(
                        "error parsing local port '{local}': not a port number"
                    ))
                })?
            };
            (LocalPort::Port(local), *remote)
        }
        _ => return Err(TargetError::Port(format!("invalid port format '{text}'"))),
    };
    let remote = remote_port(remote).map_err(TargetError::Port)?;
    Ok(PortPair { local, remote })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(kind: Kind, ns: &str, name: &str) -> Workload {
        Workload {
            kind,
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn every_kubectl_form_and_kgates_short_form() {
        let ok = |s| parse_workload(s, "default").unwrap();
        assert_eq!(ok("web-1"), (workload(Kind::Pod, "default", "web-1"), None));
        assert_eq!(ok("pod/web-1").0, workload(Kind::Pod, "default", "web-1"));
        assert_eq!(ok("po/web-1").0, workload(Kind::Pod, "default", "web-1"));
        assert_eq!(ok("svc/web").0, workload(Kind::Service, "default", "web"));
        assert_eq!(
            ok("service/web").0,
            workload(Kind::Service, "default", "web")
        );
        assert_eq!(
            ok("deploy/web").0,
            workload(Kind::Deployment, "default", "web")
        );
        assert_eq!(
            ok("deployments.apps/web").0,
            workload(Kind::Deployment, "default", "web")
        );
        assert_eq!(
            ok("svc/demo/web:8080"),
            (
                workload(Kind::Service, "demo", "web"),
                Some(PortPair {
                    local: LocalPort::Port(8080),
                    remote: RemotePort::Number(8080)
                })
            )
        );
        assert_eq!(
            ok("svc/demo/web:http").1,
            Some(PortPair {
                local: LocalPort::Port(0),
                remote: RemotePort::Name("http".into())
            })
        );
        assert_eq!(
            ok("svc/demo/web:80").1.unwrap().local,
            LocalPort::Port(0),
            "a privileged number listens on a free port"
        );
    }

    #[test]
    fn bad_targets_say_what_to_write() {
        let err = |s| parse_workload(s, "default").unwrap_err().to_string();
        assert!(err("cm/web").contains("use pod/NAME, svc/NAME, deploy/NAME"));
        assert!(err("sts/db").contains("forward to one of its pods with pod/NAME"));
        assert!(err("svc/Web").contains("\"Web\" in \"svc/Web\" is not a valid svc name"));
        assert!(err("svc/a/b/c").contains("is not a target"));
        assert!(err("svc/").contains("not a valid svc name"));
        assert!(err("svc/demo/web:0").contains("remote port must be > 0"));
    }

    #[test]
    fn port_pairs_as_kubectl_reads_them() {
        let ok = |s| parse_port_pair(s).unwrap();
        assert_eq!(
            ok("5000"),
            PortPair {
                local: LocalPort::Same,
                remote: RemotePort::Number(5000)
            }
        );
        assert_eq!(ok("8888:5000").local, LocalPort::Port(8888));
        assert_eq!(ok(":5000").local, LocalPort::Port(0));
        assert_eq!(ok("0:5000").local, LocalPort::Port(0));
        assert_eq!(ok("8443:https").remote, RemotePort::Name("https".into()));
        assert_eq!(ok("http").local, LocalPort::Same);
        let err = |s| parse_port_pair(s).unwrap_err().to_string();
        assert_eq!(err("1:2:3"), "invalid port format '1:2:3'");
        assert_eq!(err("8080:0"), "remote port must be > 0");
        assert_eq!(
            err("x:80"),
            "error parsing local port 'x': not a port number"
        );
        assert_eq!(
            err("70000"),
            "error parsing remote port '70000': value out of range"
        );
        assert_eq!(err("8080:"), "remote port cannot be empty");
        assert!(err("Not_A_Name").contains("not a port number nor a port name"));
    }
}
