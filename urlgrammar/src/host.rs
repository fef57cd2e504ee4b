//! Service-origin hosts: each service, pod or node gets a host of its own under `localhost`,
//! which browsers and curl resolve to loopback by themselves (DESIGN, "Addresses").
//!
//! Contract: the grammar, and what it guarantees, is documented on [`OriginHost`], where
//! `cargo doc` shows it; `HOSTS.md` beside this crate is the same text for the README.

use std::fmt;

use serde::Serialize;

use crate::error::{BuildError, ParseError, Part, Rule, quoted};
use crate::rest::Rest;
use crate::scheme_name_port::Scheme;
use crate::target::{Kind, Port, Target};
use crate::validate::{self, LABEL_MAX};

/// The top-level domain of every origin host.
pub const ORIGIN_SUFFIX: &str = "localhost";

/// A label naming one of several clusters served at once, placed before `localhost`.
///
/// ```
/// use urlgrammar::ContextLabel;
/// assert!(ContextLabel::new("prod").is_ok());
/// assert!(ContextLabel::new("svc").is_err()); // a kind label: ambiguous
/// assert!(ContextLabel::new("arn:aws:eks").is_err()); // not a DNS label
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ContextLabel(String);

impl ContextLabel {
    /// Validates `label`: a DNS-1123 label that is not a kind label.
    pub fn new(label: &str) -> Result<Self, ParseError> {
        validate::dns1123_label(Part::Context, label).map_err(|e| match e {
            ParseError::Invalid {
                part,
                value,
                problem,
                ..
            } => ParseError::Invalid {
                part,
                value,
                rule: Rule::ContextLabel,
                problem,
            },
            e => e,
        })?;
        if kind_label(label).is_some() {
            return Err(ParseError::Invalid {
                part: Part::Context,
                value: quoted(label),
                rule: Rule::ContextLabel,
                problem: "is a kind label, so the host would be ambiguous".to_owned(),
            });
        }
        Ok(ContextLabel(label.to_owned()))
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContextLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parsed origin `Host`: the target, the context label if any, and the port the client
/// connected to if it sent one.
///
/// # Grammar
///
/// ```text
/// host    = [ <port> "." ] <name> "." <ns> "." <kind> [ "." <context> ] ".localhost" [ "." ] [ ":" <listen-port> ]   services, pods
///         | [ <port> "." ] <name> "." <kind> [ "." <context> ] ".localhost" [ "." ] [ ":" <listen-port> ]          nodes
/// kind    = [ "http-" | "https-" ] ( "svc" | "pod" | "node" )
/// ```
///
/// Contract:
///
/// * **Unambiguous.** A parser reads the labels from the right: `localhost`, then either a kind
///   label or a context label followed by a kind label. Context labels may therefore not be a
///   kind label ([`ContextLabel::new`] refuses them). The kind fixes how many labels come
///   before it (two or three for services and pods, one or two for nodes), so the first of
///   three (or two, for nodes) is always the port.
/// * **Scheme.** The kind label carries the scheme as written in the target: `svc` (none),
///   `http-svc`, `https-svc`; so every target round-trips. Which scheme an unspecified one
///   becomes upstream is [`Target::effective_scheme`]'s business.
/// * **Case.** Hosts are case-insensitive: parsing lower-cases ASCII first. Kubernetes names
///   are lower-case, so nothing is lost.
/// * **What cannot be represented.** Every part is one DNS label of at most 63 characters. Pod
///   and node names are DNS-1123 subdomains: one with a `.` (a StatefulSet pod `web-0.web`, a
///   node `ip-10-0-0-1.ec2.internal`), or longer than 63 characters, has no origin host;
///   [`Target::origin_host`] says so with a [`BuildError`], and such targets are reached
///   through their API path or a dedicated port. Services and namespaces are labels, so every
///   service has an origin host. The longest host is 227 characters, under DNS's 253.
/// * **`Host` header values.** `:port` is accepted and returned ([`OriginHost::port`]), as is
///   one trailing `.` (the fully qualified spelling); IP literals and hosts that do not end in
///   `.localhost` are not origin hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginHost {
    /// The service, pod or node.
    pub target: Target,
    /// The context label, when several clusters are served.
    pub context: Option<ContextLabel>,
    /// The `:port` of the `Host` value.
    pub port: Option<u16>,
}

/// The kind and scheme of a kind label (`svc`, `https-pod`, ...).
fn kind_label(label: &str) -> Option<(Kind, Scheme)> {
    let (scheme, kind) = if let Some(kind) = label.strip_prefix("https-") {
        (Scheme::Https, kind)
    } else if let Some(kind) = label.strip_prefix("http-") {
        (Scheme::Http, kind)
    } else {
        (Scheme::Unspecified, label)
    };
    let kind = match kind {
        "svc" => Kind::Service,
        "pod" => Kind::Pod,
        "node" => Kind::Node,
        _ => return None,
    };
    Some((kind, scheme))
}

fn kind_label_of(kind: Kind, scheme: Scheme) -> String {
    match scheme {
        Scheme::Unspecified => kind.keyword().to_owned(),
        scheme => format!("{}-{}", scheme.as_str(), kind.keyword()),
    }
}

impl Target {
    /// Parses a `Host` header value (or the host of a URL), with or without `:port`.
    ///
    /// ```
    /// use urlgrammar::{Kind, Scheme, Target};
    /// let h = Target::parse_host("elasticsearch-logging.kube-system.svc.localhost:8001")?;
    /// assert_eq!(h.target.to_string(), "svc/kube-system/elasticsearch-logging");
    /// assert_eq!(h.port, Some(8001));
    ///
    /// let h = Target::parse_host("HTTPS.Grafana.Monitoring.https-SVC.prod.localhost")?;
    /// assert_eq!(h.target.to_string(), "svc/monitoring/https:grafana:https");
    /// assert_eq!(h.context.as_ref().map(|c| c.as_str()), Some("prod"));
    ///
    /// let h = Target::parse_host("10255.node-1.node.localhost")?;
    /// assert_eq!(h.target.api_path(&Default::default()), "/api/v1/nodes/node-1:10255/proxy");
    ///
    /// assert!(Target::parse_host("localhost:8001").is_err());
    /// assert!(Target::parse_host("a.b.c.d.svc.localhost").is_err()); // four labels before svc
    /// # Ok::<(), urlgrammar::ParseError>(())
    /// ```
    pub fn parse_host(host: &str) -> Result<OriginHost, ParseError> {
        let fail = |problem: &str| ParseError::Host {
            host: quoted(host),
            problem: problem.to_owned(),
        };
        if host.starts_with('[') {
            return Err(fail("an IP literal is not an origin host"));
        }
        let (name, port) = match host.rsplit_once(':') {
            Some((name, "")) => (name, None),
            Some((name, port)) => {
                let port = validate::port_number(port)
                    .map_err(|_| fail("the port after ':' is not a number from 1 to 65535"))?;
                (name, Some(port))
            }
            None => (host, None),
        };
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.')))
        {
            return Err(ParseError::Host {
                host: quoted(host),
                problem: format!(
                    "it has the character {c:?}; origin hosts hold a-z, 0-9, '-' and '.'"
                ),
            });
        }
        let lower = name.to_ascii_lowercase();
        let lower = lower.strip_suffix('.').unwrap_or(&lower);
        let mut labels: Vec<&str> = lower.split('.').collect();
        // A pod or node name may be a longer subdomain label; in a host it cannot.
        if let Some(long) = labels.iter().find(|l| l.len() > LABEL_MAX) {
            return Err(ParseError::Host {
                host: quoted(host),
                problem: format!(
                    "the label {:?} is longer than {LABEL_MAX} characters, the DNS limit",
                    quoted(long)
                ),
            });
        }
        if labels.pop() != Some(ORIGIN_SUFFIX) {
            return Err(fail("it does not end in .localhost"));
        }
        let (kind, scheme, context) = match labels.pop() {
            None => return Err(fail("it is localhost itself, the gateway's API address")),
            Some(label) => match kind_label(label) {
                Some((kind, scheme)) => (kind, scheme, None),
                None => {
                    let context = ContextLabel::new(label)?;
                    let Some((kind, scheme)) = labels.pop().and_then(kind_label) else {
                        return Err(fail(
                            "no svc, pod or node label (with http- or https-) before the context \
                             label and .localhost",
                        ));
                    };
                    (kind, scheme, Some(context))
                }
            },
        };
        let (port_label, name, namespace) = match (kind.is_namespaced(), labels.as_slice()) {
            (true, [name, ns]) => (None, *name, Some(*ns)),
            (true, [port, name, ns]) => (Some(*port), *name, Some(*ns)),
            (false, [name]) => (None, *name, None),
            (false, [port, name]) => (Some(*port), *name, None),
            (true, _) => {
                return Err(fail(&format!(
                    "{} labels before the {} label, where [<port>.]<name>.<namespace> belongs",
                    labels.len(),
                    kind.keyword()
                )));
            }
            (false, _) => {
                return Err(fail(&format!(
                    "{} labels before the node label, where [<port>.]<name> belongs",
                    labels.len()
                )));
            }
        };
        let port_value = port_label.map(Port::parse).transpose()?;
        let target = Target::new(kind, namespace, name)?
            .with_scheme(scheme)
            .with_port(port_value);
        Ok(OriginHost {
            target,
            context,
            port,
        })
    }

    /// The origin host of this target (without `:port`), under `context` if given.
    ///
    /// ```
    /// use urlgrammar::{ContextLabel, Port, Scheme, Target};
    /// let t = Target::service("monitoring", "grafana")?;
    /// assert_eq!(t.origin_host(None).ok(), Some("grafana.monitoring.svc.localhost".into()));
    /// let t = t.with_port(Some(Port::parse("3000")?)).with_scheme(Scheme::Https);
    /// let prod = ContextLabel::new("prod")?;
    /// assert_eq!(t.origin_host(Some(&prod)).ok(), Some("3000.grafana.monitoring.https-svc.prod.localhost".into()));
    ///
    /// // A pod whose name holds a dot has no origin host.
    /// assert!(Target::pod("db", "web-0.web")?.origin_host(None).is_err());
    /// # Ok::<(), urlgrammar::ParseError>(())
    /// ```
    pub fn origin_host(&self, context: Option<&ContextLabel>) -> Result<String, BuildError> {
        let name = self.name();
        let unrepresentable = |problem| BuildError::NoOriginHost {
            kind: self.kind(),
            name: quoted(name),
            problem,
        };
        if name.contains('.') {
            return Err(unrepresentable(
                "its name holds a '.', and each part of an origin host is one DNS label",
            ));
        }
        if name.len() > LABEL_MAX {
            return Err(unrepresentable(
                "its name is longer than 63 characters, a DNS label's limit",
            ));
        }
        let mut host = String::new();
        if let Some(port) = self.port() {
            host.push_str(&format!("{port}."));
        }
        host.push_str(name);
        host.push('.');
        if let Some(ns) = self.namespace() {
            host.push_str(ns);
            host.push('.');
        }
        host.push_str(&kind_label_of(self.kind(), self.scheme()));
        host.push('.');
        if let Some(context) = context {
            host.push_str(context.as_str());
            host.push('.');
        }
        host.push_str(ORIGIN_SUFFIX);
        Ok(host)
    }

    /// The URL of this target's origin through a gateway listening on `port` (`None`: port
    /// 80), with `rest` as path and query. An empty rest path is written `/`, as a browser
    /// would.
    ///
    /// ```
    /// use urlgrammar::{Rest, Target};
    /// let t = Target::service("kube-system", "elasticsearch-logging")?;
    /// let url = t.origin_url(None, Some(8001), &Rest::parse("/_cluster/health")?);
    /// assert_eq!(url.ok(), Some("http://elasticsearch-logging.kube-system.svc.localhost:8001/_cluster/health".into()));
    /// # Ok::<(), urlgrammar::ParseError>(())
    /// ```
    pub fn origin_url(
        &self,
        context: Option<&ContextLabel>,
        port: Option<u16>,
        rest: &Rest,
    ) -> Result<String, BuildError> {
        let host = self.origin_host(context)?;
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let slash = if rest.path().is_empty() { "/" } else { "" };
        Ok(format!("http://{host}{port}{slash}{rest}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> Result<(String, Option<String>, Option<u16>), ParseError> {
        let h = Target::parse_host(s)?;
        let short = h.target.short(&Rest::default());
        Ok((short, h.context.map(|c| c.0), h.port))
    }

    #[test]
    fn every_shape_parses() -> Result<(), ParseError> {
        assert_eq!(
            host("web.ns.svc.localhost")?,
            ("svc/ns/web".into(), None, None)
        );
        assert_eq!(
            host("http.web.ns.svc.localhost:80")?,
            ("svc/ns/web:http".into(), None, Some(80))
        );
        assert_eq!(
            host("8080.web.ns.http-svc.localhost")?,
            ("svc/ns/http:web:8080".into(), None, None)
        );
        assert_eq!(
            host("web-0.ns.pod.c1.localhost")?,
            ("pod/ns/web-0".into(), Some("c1".into()), None)
        );
        assert_eq!(
            host("n1.https-node.localhost.")?,
            ("node/https:n1".into(), None, None)
        );
        assert_eq!(
            host("WEB.NS.SVC.LOCALHOST:8001")?,
            ("svc/ns/web".into(), None, Some(8001))
        );
        assert_eq!(
            host("web.ns.svc.localhost:")?,
            ("svc/ns/web".into(), None, None)
        );
        // A namespace called svc, and a service called node.
        assert_eq!(
            host("web.svc.svc.localhost")?,
            ("svc/svc/web".into(), None, None)
        );
        assert_eq!(
            host("node.ns.svc.localhost")?,
            ("svc/ns/node".into(), None, None)
        );
        // Read from the right, the last label is a kind: this is a node host, malformed.
        assert!(host("node.ns.svc.node.localhost").is_err());
        Ok(())
    }

    #[test]
    fn bad_hosts_say_why() {
        let msg = |s: &str| {
            Target::parse_host(s)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(msg("[::1]:8001").contains("IP literal"));
        assert!(msg("127.0.0.1:8001").contains("does not end in .localhost"));
        assert!(msg("localhost:8001").contains("localhost itself"));
        assert!(msg("web.ns.svc.localhost:0").contains("port after ':'"));
        assert!(msg("web.ns.svc.localhost:99999").contains("port after ':'"));
        assert!(msg("web.ns.prod.localhost").contains("no svc, pod or node label"));
        assert!(msg("web.ns.ftp-svc.localhost").contains("no svc, pod or node label"));
        assert!(msg("a.b.c.ns.svc.localhost").contains("4 labels before the svc label"));
        assert!(msg("ns.svc.localhost").contains("1 labels before the svc label"));
        assert!(msg("a.b.c.node.localhost").contains("3 labels before the node label"));
        assert!(msg("web_1.ns.svc.localhost").contains("character '_'"));
        assert!(msg("wéb.ns.svc.localhost").contains("character 'é'"));
        assert!(msg("0.web.ns.svc.localhost").contains("port number"));
        assert!(msg("web..svc.localhost").contains("namespace"));
        assert!(msg("web.ns.svc.-x.localhost").contains("context label"));
        let long = format!("{}.node.localhost", "n".repeat(64));
        assert!(msg(&long).contains("longer than 63 characters, the DNS limit"));
        let long = format!("web.{}.pod.localhost", "n".repeat(64));
        assert!(msg(&long).contains("longer than 63 characters, the DNS limit"));
    }

    #[test]
    fn context_labels_cannot_be_kind_labels() {
        for label in [
            "svc",
            "pod",
            "node",
            "http-svc",
            "https-svc",
            "http-pod",
            "https-node",
        ] {
            assert!(
                matches!(
                    ContextLabel::new(label),
                    Err(ParseError::Invalid {
                        part: Part::Context,
                        rule: Rule::ContextLabel,
                        ..
                    })
                ),
                "{label}"
            );
        }
        assert!(ContextLabel::new(&"c".repeat(64)).is_err());
        assert!(ContextLabel::new("svc1").is_ok());
    }

    #[test]
    fn unrepresentable_names_are_refused_when_building() -> Result<(), ParseError> {
        let long = "p".repeat(64);
        for t in [
            Target::pod("ns", "web-0.web")?,
            Target::node("a.b")?,
            Target::pod("ns", &long)?,
        ] {
            assert!(
                matches!(t.origin_host(None), Err(BuildError::NoOriginHost { .. })),
                "{t}"
            );
        }
        let longest = Target::service(&"n".repeat(63), &"s".repeat(63))?
            .with_port(Some(Port::parse("abcdefghijklmno")?))
            .with_scheme(Scheme::Https);
        let ctx = ContextLabel::new(&"c".repeat(63))?;
        let h = longest
            .origin_host(Some(&ctx))
            .map_err(|e| ParseError::Host {
                host: String::new(),
                problem: e.to_string(),
            })?;
        assert_eq!(h.len(), 227);
        assert_eq!(Target::parse_host(&h)?.target, longest);
        Ok(())
    }

    /// The examples of HOSTS.md (copied into the README) parse, and print back the same.
    #[test]
    fn hosts_md_examples_parse() -> Result<(), ParseError> {
        let doc = include_str!("../HOSTS.md");
        let mut seen = 0;
        for row in doc.lines().filter(|l| l.starts_with("| `")) {
            let host = row.split('`').nth(1).unwrap_or_default();
            let parsed = Target::parse_host(host)?;
            let (bare, _) = host.rsplit_once(':').unwrap_or((host, ""));
            assert_eq!(
                parsed
                    .target
                    .origin_host(parsed.context.as_ref())
                    .ok()
                    .as_deref(),
                Some(bare)
            );
            seen += 1;
        }
        assert_eq!(seen, 7);
        Ok(())
    }
}
