//! Header hygiene for forwarding, as Go's `httputil.ReverseProxy` does it for kubectl proxy.
//!
//! Contract: [`strip_hop_by_hop`] removes the hop-by-hop fields of RFC 9110 §7.6.1 and every
//! field named in `Connection` (ReverseProxy's `removeHopByHopHeaders`); [`append_forwarded_for`]
//! appends the client address to `X-Forwarded-For` (ReverseProxy `ServeHTTP`);
//! [`is_upgrade`] is apimachinery's `httpstream.IsUpgradeRequest`; [`redacted`] formats headers
//! for logs with credentials replaced.

use std::fmt;
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

/// Removes hop-by-hop fields and those named in `Connection`. On requests, `TE: trailers` is
/// kept when the client sent it (ReverseProxy does the same, so gRPC-style trailers work).
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, is_request: bool) {
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
/// client IP. A client on a unix socket has no IP and nothing is added.
pub(crate) fn append_forwarded_for(headers: &mut HeaderMap, client: Option<IpAddr>) {
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
/// case-insensitively.
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.as_bytes()
            .windows(7)
            .any(|w| w.eq_ignore_ascii_case(b"upgrade"))
    })
}

/// Headers whose values are secrets and are never written to logs.
fn is_sensitive(name: &HeaderName) -> bool {
    name == header::AUTHORIZATION
        || name == header::PROXY_AUTHORIZATION
        || name == header::COOKIE
        || name == header::SET_COOKIE
}

/// Formats headers for a log line with the values of credential headers replaced.
pub(crate) fn redacted(headers: &HeaderMap) -> Redacted<'_> {
    Redacted(headers)
}

/// See [`redacted`].
pub(crate) struct Redacted<'a>(&'a HeaderMap);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, value) in self.0 {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            if is_sensitive(name) || value.is_sensitive() {
                write!(f, "{name}: <redacted>")?;
            } else {
                write!(f, "{name}: {}", String::from_utf8_lossy(value.as_bytes()))?;
            }
        }
        Ok(())
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
        let mut names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["accept", "authorization", "te"]);
        assert_eq!(h["te"], "trailers");
        let mut h = map(&[("te", "trailers"), ("connection", "close")]);
        strip_hop_by_hop(&mut h, false);
        assert!(h.is_empty());
    }

    #[test]
    fn forwarded_for_appends_like_go() {
        let mut h = map(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        append_forwarded_for(&mut h, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 10.0.0.2, 127.0.0.1");
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
        assert!(!is_upgrade(&map(&[("upgrade", "websocket")])));
    }

    #[test]
    fn redaction_hides_credentials() {
        let h = map(&[
            ("authorization", "Bearer secret-token-123"),
            ("cookie", "session=secret-cookie"),
            ("accept", "application/json"),
        ]);
        let line = redacted(&h).to_string();
        assert!(!line.contains("secret"), "{line}");
        assert!(line.contains("authorization: <redacted>"), "{line}");
        assert!(line.contains("accept: application/json"), "{line}");
    }
}
