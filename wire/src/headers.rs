//! Header rules of Go's `httputil.ReverseProxy` and apimachinery, for both ends of the proxy.
//!
//! Contract: [`strip_hop_by_hop`] removes the hop-by-hop fields of RFC 9110 §7.6.1 and every
//! field named in `Connection` (ReverseProxy's `removeHopByHopHeaders`), keeping a request's
//! `TE: trailers`; [`append_forwarded_for`] appends the client address to `X-Forwarded-For`
//! (ReverseProxy `ServeHTTP`); [`is_upgrade`] is apimachinery's `httpstream.IsUpgradeRequest`;
//! [`strip_credentials`] removes `Authorization` and every `Impersonate-*` field (what the API
//! server's authentication and impersonation filters delete once they have acted on them, and
//! what a client replacing a caller's identity must drop).

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The fixed hop-by-hop fields (Go's `hopHeaders`).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The prefix of the impersonation fields (`Impersonate-User`, `-Uid`, `-Group`, `-Extra-*`).
const IMPERSONATE: &str = "impersonate-";

/// Removes hop-by-hop fields and those named in `Connection`. On requests, `TE: trailers` is
/// kept when the client sent it (ReverseProxy does the same, so gRPC-style trailers work).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, is_request: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let te_trailers = is_request
        && headers.get_all(header::TE).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim() == "trailers"))
        });
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Go's ReverseProxy: `X-Forwarded-For` becomes the prior values joined with `, `, then the
/// client IP. A client without an IP (a unix socket) adds nothing.
pub fn append_forwarded_for(headers: &mut HeaderMap, client: Option<IpAddr>) {
    let Some(ip) = client else { return };
    let xff = HeaderName::from_static("x-forwarded-for");
    let mut value = String::new();
    for prior in headers.get_all(&xff) {
        if let Ok(prior) = prior.to_str() {
            value.push_str(prior);
            value.push_str(", ");
        }
    }
    value.push_str(&ip.to_string());
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(xff, v);
    }
}

/// apimachinery `httpstream.IsUpgradeRequest`: some `Connection` value contains `upgrade`,
/// case-insensitively (a substring match, as `strings.Contains(strings.ToLower(..))`).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.as_bytes()
            .windows(7)
            .any(|w| w.eq_ignore_ascii_case(b"upgrade"))
    })
}

/// Removes `Authorization` and every `Impersonate-*` field.
pub fn strip_credentials(headers: &mut HeaderMap) {
    headers.remove(header::AUTHORIZATION);
    let impersonation: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(IMPERSONATE))
        .cloned()
        .collect();
    for name in impersonation {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn names(h: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn strips_rfc9110_hop_by_hop_and_connection_named() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic x"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "gzip, trailers"),
            ("trailer", "x"),
            ("accept", "*/*"),
            ("authorization", "Bearer t"),
        ]);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(names(&h), ["accept", "authorization", "te"]);
        assert_eq!(h["te"], "trailers");
        // On a response, `TE` goes whatever it says.
        let mut h = map(&[("te", "trailers"), ("connection", "close")]);
        strip_hop_by_hop(&mut h, false);
        assert!(h.is_empty());
        // An empty name in `Connection` is skipped, not an error.
        let mut h = map(&[("connection", "x-a, ,"), ("x-a", "1"), ("x-b", "2")]);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(names(&h), ["x-b"]);
    }

    #[test]
    fn forwarded_for_appends_like_go() {
        let mut h = map(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        append_forwarded_for(&mut h, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 10.0.0.2, 127.0.0.1");
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, Some("::1".parse().unwrap()));
        assert_eq!(h["x-forwarded-for"], "::1");
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, None);
        assert!(h.is_empty());
    }

    #[test]
    fn upgrade_detection_is_substring_and_case_insensitive() {
        assert!(is_upgrade(&map(&[("connection", "keep-alive, Upgrade")])));
        assert!(is_upgrade(&map(&[("connection", "UPGRADE")])));
        assert!(is_upgrade(&map(&[
            ("connection", "keep-alive"),
            ("connection", "upgrade")
        ])));
        assert!(!is_upgrade(&map(&[("upgrade", "websocket")])));
        assert!(!is_upgrade(&map(&[("connection", "upgrad")])));
    }

    #[test]
    fn credentials_and_impersonation_are_stripped() {
        let mut h = map(&[
            ("authorization", "Bearer secret"),
            ("impersonate-user", "admin"),
            ("impersonate-group", "system:masters"),
            ("impersonate-group", "other"),
            ("impersonate-extra-scopes", "x"),
            ("cookie", "session=1"),
            ("accept", "text/html"),
        ]);
        strip_credentials(&mut h);
        assert_eq!(names(&h), ["accept", "cookie"]);
    }
}
