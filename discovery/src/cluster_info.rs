//! `kgate cluster-info`: what `kubectl cluster-info` prints, byte for byte
//! (`kubectl/pkg/cmd/clusterinfo/clusterinfo.go`, kubectl 1.32+, which prints no colours).
//!
//! Contract:
//! - The namespace is the `-n` flag, else `kube-system`; the kubeconfig's namespace is ignored,
//!   as kubectl ignores it.
//! - Services are listed with `labelSelector=kubernetes.io/cluster-service=true` and printed
//!   in the order the API server returns them.
//! - Links are concatenated exactly as kubectl does (`Host + "/api/v1/namespaces/..."`), so a
//!   server URL ending in `/` gives `//api` as it does in kubectl; this is deliberate fidelity,
//!   not a path builder.
//! - On failure, stdout still ends with the `cluster-info dump` hint and stderr carries the
//!   line kubectl's `CheckErr` prints (`StandardErrorMessage` in `kubectl/pkg/cmd/util/helpers.go`);
//!   the exit code is 1.
//!
//! Not reproduced: kubectl first runs API discovery and, when that fails, logs up to five
//! `E<date> <time> <pid> memcache.go:265] ...` lines through klog before the final message.
//! kgate does no discovery for this command, and those lines carry a timestamp and a process id
//! that could never match byte for byte; the final line, stdout and the exit code do match.

use urlgrammar::{Scheme, join_scheme_name_port};

use crate::client::{KubeApi, ListError, NamespaceScope, TransportError, list_services_raw};
use crate::model::ServiceInfo;

/// The label `kubectl cluster-info` selects services by.
pub const CLUSTER_SERVICE_SELECTOR: &str = "kubernetes.io/cluster-service=true";

/// The namespace `kubectl cluster-info` lists when `-n` is not given.
pub const DEFAULT_NAMESPACE: &str = "kube-system";

const DUMP_HINT: &str =
    "\nTo further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n";

/// What to print and how to exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfoOutput {
    /// Everything for stdout.
    pub stdout: String,
    /// Everything for stderr (empty on success).
    pub stderr: String,
    /// The process exit code: 0, or 1 when the services could not be listed.
    pub exit_code: u8,
}

/// Runs `cluster-info` against `client`. `server` is the API server URL exactly as written in
/// the kubeconfig (kubectl prints `rest.Config.Host` unchanged); `namespace` is the `-n` flag.
pub async fn cluster_info<C: KubeApi>(
    client: &C,
    server: &str,
    namespace: Option<&str>,
) -> ClusterInfoOutput {
    let ns = namespace
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE);
    let scope = NamespaceScope::One(ns.to_owned());
    match list_services_raw(client, &scope, Some(CLUSTER_SERVICE_SELECTOR)).await {
        Ok(services) => ClusterInfoOutput {
            stdout: format_cluster_info(server, &services),
            stderr: String::new(),
            exit_code: 0,
        },
        Err(err) => ClusterInfoOutput {
            stdout: DUMP_HINT.to_owned(),
            stderr: format!("{}\n", error_message(server, &err)),
            exit_code: 1,
        },
    }
}

/// The stdout of a successful `kubectl cluster-info`.
pub fn format_cluster_info(server: &str, services: &[ServiceInfo]) -> String {
    let mut out = format!("Kubernetes control plane is running at {server}\n");
    for svc in services {
        let link = if let Some(ip) = svc.load_balancer_ingress.first() {
            // kubectl: `link += "http://" + ip + ":" + port + " "` for every port, always
            // `http`, trailing space kept.
            svc.ports
                .iter()
                .map(|p| format!("http://{ip}:{} ", p.port))
                .collect::<String>()
        } else {
            let name = match svc.ports.first() {
                Some(p) => {
                    let scheme = if p.is_https() {
                        Scheme::Https
                    } else {
                        Scheme::Unspecified
                    };
                    join_scheme_name_port(scheme, &svc.name, &p.name)
                }
                None => svc.name.clone(),
            };
            format!(
                "{server}/api/v1/namespaces/{}/services/{name}/proxy",
                svc.namespace
            )
        };
        out.push_str(&format!("{} is running at {link}\n", svc.display_name()));
    }
    out.push_str(DUMP_HINT);
    out
}

/// The line kubectl's `CheckErr` prints for a failed listing (without the newline).
pub fn error_message(server: &str, err: &ListError) -> String {
    match err {
        ListError::Transport {
            source: TransportError::ConnectionRefused { .. },
            ..
        } => format!(
            "The connection to the server {} was refused - did you specify the right host or port?",
            server_host(server)
        ),
        ListError::Transport { source, .. } => format!("Unable to connect to the server: {source}"),
        ListError::Status {
            status,
            reason,
            message,
            is_status,
            resource,
        } => {
            // A 401 surfaces from kubectl's discovery, which reports client-go's generic text.
            if *status == 401 {
                return "error: You must be logged in to the server (the server has asked for the client to provide credentials)".to_owned();
            }
            if *is_status {
                return match reason {
                    Some(reason) => format!("Error from server ({reason}): {message}"),
                    None => format!("Error from server: {message}"),
                };
            }
            let (reason, generic) = generic_server_response(*status, message);
            let text = format!("{generic} (get {resource})");
            match reason {
                Some(reason) => format!("Error from server ({reason}): {text}"),
                None => format!("Error from server: {text}"),
            }
        }
        ListError::Decode { detail, .. } => format!("error: {detail}"),
    }
}

/// apimachinery's `NewGenericServerResponse` (`pkg/api/errors/errors.go`): the reason and
/// message client-go gives a response whose body is not a `Status`.
fn generic_server_response(status: u16, server_message: &str) -> (Option<&'static str>, String) {
    let (reason, message) = match status {
        409 => ("Conflict", "the server reported a conflict"),
        404 => (
            "NotFound",
            "the server could not find the requested resource",
        ),
        400 => (
            "BadRequest",
            "the server rejected our request for an unknown reason",
        ),
        401 => (
            "Unauthorized",
            "the server has asked for the client to provide credentials",
        ),
        403 => (
            "Forbidden",
            "the server does not allow access to the requested resource",
        ),
        405 => (
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        ),
        406 => (
            "NotAcceptable",
            "the server was unable to respond with a content type that the client supports",
        ),
        415 => (
            "UnsupportedMediaType",
            "the server was unable to process a request with a content type that the server supports",
        ),
        422 => (
            "Invalid",
            "the server rejected our request due to an error in our request",
        ),
        429 => (
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        ),
        503 => (
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        ),
        504 => (
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be processing the request",
        ),
        s if s >= 500 => {
            return (
                Some("InternalError"),
                format!(
                    "an error on the server ({}) has prevented the request from succeeding",
                    go_quote(server_message)
                ),
            );
        }
        s => {
            return (
                None,
                format!(
                    "the server responded with the status code {s} but did not return more information"
                ),
            );
        }
    };
    (Some(reason), message.to_owned())
}

/// Go's `%q` for the characters a server message plausibly contains.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `host[:port]` part of the server URL, as Go's `url.URL.Host`.
fn server_host(server: &str) -> &str {
    let rest = server.split_once("://").map_or(server, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::fake::Fake;
    use crate::model::{Readiness, ServicePort};
    use serde_json::json;

    fn port(name: &str, port: u16) -> ServicePort {
        ServicePort {
            name: name.to_owned(),
            port,
            protocol: "TCP".to_owned(),
            app_protocol: None,
            readiness: Readiness::default(),
        }
    }

    fn svc(name: &str, label: Option<&str>, ports: Vec<ServicePort>, lb: &[&str]) -> ServiceInfo {
        ServiceInfo {
            namespace: "kube-system".to_owned(),
            name: name.to_owned(),
            labels: label
                .map(|l| [("kubernetes.io/name".to_owned(), l.to_owned())].into())
                .unwrap_or_default(),
            service_type: "ClusterIP".to_owned(),
            load_balancer_ingress: lb.iter().map(|s| (*s).to_owned()).collect(),
            ports,
        }
    }

    #[test]
    fn formats_every_link_kind_like_kubectl() {
        let services = vec![
            svc(
                "kube-dns",
                Some("CoreDNS"),
                vec![port("dns", 53), port("dns-tcp", 53)],
                &[],
            ),
            svc("secure", None, vec![port("", 443)], &[]),
            svc("named-https", None, vec![port("https", 8443)], &[]),
            svc("bare", None, vec![], &[]),
            svc("lb", None, vec![port("a", 80), port("b", 81)], &["1.2.3.4"]),
        ];
        let out = format_cluster_info("https://127.0.0.1:6443", &services);
        assert_eq!(
            out,
            "Kubernetes control plane is running at https://127.0.0.1:6443\n\
             CoreDNS is running at https://127.0.0.1:6443/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy\n\
             secure is running at https://127.0.0.1:6443/api/v1/namespaces/kube-system/services/https:secure:/proxy\n\
             named-https is running at https://127.0.0.1:6443/api/v1/namespaces/kube-system/services/https:named-https:https/proxy\n\
             bare is running at https://127.0.0.1:6443/api/v1/namespaces/kube-system/services/bare/proxy\n\
             lb is running at http://1.2.3.4:80 http://1.2.3.4:81 \n\
             \n\
             To further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n"
        );
        // kubectl concatenates; a trailing slash in the server gives `//api`.
        assert!(format_cluster_info("https://h/", &services[3..4]).contains("https://h//api/v1/"));
    }

    #[test]
    fn error_lines_match_kubectl() {
        let refused = ListError::Transport {
            resource: "services",
            source: TransportError::ConnectionRefused {
                host: "127.0.0.1:1".into(),
            },
        };
        assert_eq!(
            error_message("https://127.0.0.1:1", &refused),
            "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?"
        );
        assert_eq!(server_host("https://user@[::1]:6443/path"), "[::1]:6443");
        let forbidden = ListError::Status {
            resource: "services",
            status: 403,
            reason: Some("Forbidden".into()),
            message: "services is forbidden: User \"bob\" cannot list".into(),
            is_status: true,
        };
        assert_eq!(
            error_message("https://h", &forbidden),
            "Error from server (Forbidden): services is forbidden: User \"bob\" cannot list"
        );
        let plain500 = ListError::Status {
            resource: "services",
            status: 500,
            reason: None,
            message: "unknown".into(),
            is_status: false,
        };
        assert_eq!(
            error_message("https://h", &plain500),
            "Error from server (InternalError): an error on the server (\"unknown\") has prevented the request from succeeding (get services)"
        );
        let with_status = |status: u16| ListError::Status {
            resource: "services",
            status,
            reason: None,
            message: "unknown".into(),
            is_status: false,
        };
        let unauthorized = with_status(401);
        assert_eq!(
            error_message("https://h", &unauthorized),
            "error: You must be logged in to the server (the server has asked for the client to provide credentials)"
        );
        let odd = with_status(418);
        assert_eq!(
            error_message("https://h", &odd),
            "Error from server: the server responded with the status code 418 but did not return more information (get services)"
        );
    }

    #[tokio::test]
    async fn lists_labelled_services_in_the_flag_namespace_only() {
        let fake = Fake::default().with(
            "/api/v1/namespaces/monitoring/services?labelSelector=kubernetes.io%2Fcluster-service%3Dtrue",
            200,
            json!({"items": [{"metadata": {"name": "grafana", "namespace": "monitoring"},
                              "spec": {"ports": [{"name": "http", "port": 3000}]}}]}),
        );
        let out = cluster_info(&fake, "https://k:6443", Some("monitoring")).await;
        assert_eq!(out.exit_code, 0);
        assert!(out.stdout.contains("grafana is running at https://k:6443/api/v1/namespaces/monitoring/services/grafana:http/proxy\n"));
        let failed = cluster_info(&fake, "https://k:6443", None).await;
        assert_eq!(failed.exit_code, 1);
        assert_eq!(failed.stdout, DUMP_HINT);
        assert_eq!(failed.stderr, "Error from server (NotFound): not found\n");
    }
}
