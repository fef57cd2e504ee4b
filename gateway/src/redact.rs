//! Headers for log lines, with the values of credentials replaced.
//!
//! Contract: [`redacted`] formats a header map for a trace line; `Authorization`,
//! `Proxy-Authorization`, `Cookie`, `Set-Cookie` and any value marked sensitive print as
//! `<redacted>`.

use std::fmt;

use http::header::{self, HeaderMap, HeaderName};

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
    use http::HeaderValue;

    use super::*;

    #[test]
    fn redaction_hides_credentials() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer secret-token-123"),
            ("cookie", "session=secret-cookie"),
            ("accept", "application/json"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let mut marked = HeaderValue::from_static("secret-x");
        marked.set_sensitive(true);
        h.append(HeaderName::from_static("x-api-key"), marked);
        let line = redacted(&h).to_string();
        assert!(!line.contains("secret"), "{line}");
        assert!(line.contains("authorization: <redacted>"), "{line}");
        assert!(line.contains("accept: application/json"), "{line}");
    }
}
