//! Every address discovery prints, built in one place from `urlgrammar`'s pieces: API proxy
//! paths, short targets and service origins.

use percent_encoding::utf8_percent_encode;
use urlgrammar::{Scheme, join_scheme_name_port};

use crate::PATH_SEGMENT;
use crate::urls::GatewayAddr;

/// The kind of object a proxy address names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Service,
    Pod,
}

impl Kind {
    fn resource(self) -> &'static str {
        match self {
            Kind::Service => "services",
            Kind::Pod => "pods",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Kind::Service => "svc",
            Kind::Pod => "pod",
        }
    }
}

/// `/api/v1/namespaces/<ns>/<services|pods>/[https:]<name>[:<port>]/proxy/`, with the
/// `[scheme:]name[:port]` segment joined as apimachinery's `JoinSchemeNamePort`.
pub(crate) fn proxy_path(kind: Kind, ns: &str, name: &str, https: bool, port: &str) -> String {
    let scheme = if https {
        Scheme::Https
    } else {
        Scheme::Unspecified
    };
    let segment = join_scheme_name_port(scheme, name, port);
    format!(
        "/api/v1/namespaces/{}/{}/{}/proxy/",
        utf8_percent_encode(ns, PATH_SEGMENT),
        kind.resource(),
        utf8_percent_encode(&segment, PATH_SEGMENT)
    )
}

/// `svc/<ns>/<name>[:<port>]`.
pub(crate) fn short_target(kind: Kind, ns: &str, name: &str, port: &str) -> String {
    if port.is_empty() {
        format!("{}/{ns}/{name}", kind.short())
    } else {
        format!("{}/{ns}/{name}:{port}", kind.short())
    }
}

/// `http://[<port>.]<name>.<ns>.<svc|pod>.localhost:<gateway port>/`: the object's own origin on
/// a local gateway. Without a port the gateway picks the object's only port.
pub(crate) fn origin_url(
    kind: Kind,
    ns: &str,
    name: &str,
    port: Option<&str>,
    gateway: &GatewayAddr,
) -> String {
    let port_label = port
        .map(|p| format!("{}.", p.to_ascii_lowercase()))
        .unwrap_or_default();
    format!(
        "{}://{port_label}{name}.{ns}.{}.localhost:{}/",
        gateway.scheme,
        kind.short(),
        gateway.port
    )
}
