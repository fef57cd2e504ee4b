//! Every address discovery prints for a service or pod port, built by `urlgrammar` (never by
//! concatenating proxy paths here): the short target, the API proxy path (through the API
//! server and through a local gateway) and the origin URL.
//!
//! Two targets are built per port. The one people type and the origin host leave the scheme
//! unspecified, because kgate infers `https` for a port named `https` or numbered 443
//! ([`Target::effective_scheme`]). The API proxy path spells `https:` out, because the API
//! server infers nothing: without it, it would speak plain HTTP to a TLS port.

use urlgrammar::{ContextLabel, Kind, Port, Rest, Scheme, Target};

/// The addresses of one port; `None` where the grammar cannot represent the object (a pod
/// whose name holds a `.` has no origin host, for example).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Addresses {
    pub(crate) short: Option<String>,
    pub(crate) api_path: Option<String>,
    pub(crate) gateway_url: Option<String>,
    pub(crate) origin_url: Option<String>,
}

/// Where a local gateway listens, for gateway and origin URLs.
pub(crate) struct Local<'a> {
    pub(crate) port: u16,
    pub(crate) context: Option<&'a ContextLabel>,
    /// The gateway's own token, carried by its URLs as `?kgate-token=`.
    pub(crate) token: Option<&'a str>,
}

impl Local<'_> {
    /// `url` (which has no query) with the gateway's token, when it has one.
    fn with_token(&self, url: String) -> String {
        match self.token {
            Some(token) => format!("{url}?kgate-token={token}"),
            None => url,
        }
    }
}

/// Builds the addresses of `port` of `kind` `ns/name`. With `single_port`, the origin has no
/// port label (the caller decides when the API server's default port is the right one).
pub(crate) fn addresses(
    kind: Kind,
    ns: &str,
    name: &str,
    port: &str,
    https: bool,
    single_port: bool,
    local: &Local<'_>,
) -> Addresses {
    let Ok(port) = Port::parse(port) else {
        return Addresses::default();
    };
    let Ok(plain) = Target::new(kind, Some(ns), name) else {
        return Addresses::default();
    };
    let typed = plain.clone().with_port(Some(port));
    let explicit = if https && typed.scheme() == Scheme::Unspecified {
        typed.clone().with_scheme(Scheme::Https)
    } else {
        typed.clone()
    };
    let origin_target = if single_port { plain } else { typed.clone() };
    let root = Rest::root();
    Addresses {
        short: Some(typed.short(&Rest::default())),
        api_path: Some(explicit.api_path(&root)),
        gateway_url: explicit
            .gateway_url(&format!("localhost:{}", local.port), &root)
            .ok()
            .map(|url| local.with_token(url)),
        origin_url: origin_target
            .origin_url(local.context, Some(local.port), &root)
            .ok()
            .map(|url| local.with_token(url)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_with_a_token_prints_it_in_its_urls() {
        let local = Local {
            port: 8001,
            context: None,
            token: Some("0123456789abcdef"),
        };
        let a = addresses(Kind::Service, "web", "shop", "http", false, true, &local);
        assert_eq!(
            a.origin_url.as_deref(),
            Some("http://shop.web.svc.localhost:8001/?kgate-token=0123456789abcdef")
        );
        assert!(
            a.gateway_url
                .unwrap()
                .ends_with("/proxy/?kgate-token=0123456789abcdef")
        );
        assert!(
            !a.api_path.unwrap().contains("kgate-token"),
            "the API server's own path"
        );
    }

    #[test]
    fn https_is_explicit_in_api_paths_only() {
        let local = Local {
            port: 8001,
            context: None,
            token: None,
        };
        let a = addresses(Kind::Service, "web", "shop", "https", true, false, &local);
        assert_eq!(a.short.as_deref(), Some("svc/web/shop:https"));
        assert_eq!(
            a.api_path.as_deref(),
            Some("/api/v1/namespaces/web/services/https:shop:https/proxy/")
        );
        assert_eq!(
            a.gateway_url.as_deref(),
            Some("http://localhost:8001/api/v1/namespaces/web/services/https:shop:https/proxy/")
        );
        assert_eq!(
            a.origin_url.as_deref(),
            Some("http://https.shop.web.svc.localhost:8001/")
        );
    }

    #[test]
    fn unrepresentable_parts_are_none() {
        let local = Local {
            port: 8001,
            context: None,
            token: None,
        };
        let a = addresses(Kind::Pod, "db", "web-0.web", "8080", false, true, &local);
        assert_eq!(
            a.api_path.as_deref(),
            Some("/api/v1/namespaces/db/pods/web-0.web:8080/proxy/")
        );
        assert_eq!(a.origin_url, None);
        assert_eq!(
            addresses(Kind::Service, "ns", "Bad_Name", "80", false, true, &local),
            Addresses::default()
        );
    }
}
