//! What one response is shaped against: the proxy prefix the gateway sent to the API server and
//! the two authorities an absolute URL may name.
//!
//! The prefix is the API server's `PathPrepend` (apimachinery `pkg/util/proxy/upgradeaware.go`,
//! `defaultProxyTransport`): the request path up to and including `/proxy`, without the subpath
//! and without a trailing slash, spelled exactly as the gateway sent it, for example
//! `/api/v1/namespaces/monitoring/services/https:grafana:3000/proxy`. Validation is strict so that
//! the prefix can be embedded in a CSS attribute selector and compared byte for byte.

use std::sync::Arc;

/// Default cap on what the HTML rewriter may buffer for one response (one tag split across
/// input chunks, for example). Past it the rewriter bails out and the rest of the page streams
/// through unrewritten, never truncated.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 4 << 20;

/// Why a [`ShapeContext`] could not be built.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ContextError {
    /// The prefix is not an absolute API server path ending in a segment.
    #[error(
        "proxy prefix {prefix:?} is invalid: {reason}; pass the API server path up to `/proxy`, \
         e.g. `/api/v1/namespaces/ns/services/name:port/proxy`"
    )]
    Prefix {
        /// The rejected prefix.
        prefix: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An authority (`host[:port]`) is empty or has characters no `Host` header can carry.
    #[error(
        "{which} authority {authority:?} is invalid: {reason}; pass `host` or `host:port` as sent \
         in the Host header"
    )]
    Authority {
        /// `api` or `origin`.
        which: &'static str,
        /// The rejected authority.
        authority: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The API server proxy prefix a response must be un-prefixed from (validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    /// Validates `prefix`: it starts with `/`, does not end with `/`, has at least two
    /// characters, and holds only printable ASCII other than `"`, `\`, `?`, `#`, `%`, `<`, `>`,
    /// `'`, backquote and space (an API server path built from DNS names never needs them).
    pub fn new(prefix: &str) -> Result<Self, ContextError> {
        let reject = |reason| ContextError::Prefix {
            prefix: prefix.to_owned(),
            reason,
        };
        if !prefix.starts_with('/') {
            return Err(reject("it must start with `/`"));
        }
        if prefix.len() < 2 {
            return Err(reject("`/` alone would un-prefix every URL"));
        }
        if prefix.ends_with('/') {
            return Err(reject("it must not end with `/`"));
        }
        if let Some(bad) = prefix.bytes().find(|&b| !is_prefix_byte(b)) {
            return Err(if bad.is_ascii_graphic() {
                reject("it holds a character that must be escaped in a URL or a selector")
            } else {
                reject("it holds a space, control or non-ASCII character")
            });
        }
        Ok(Self(prefix.to_owned()))
    }

    /// The prefix as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_prefix_byte(b: u8) -> bool {
    b.is_ascii_graphic()
        && !matches!(
            b,
            b'"' | b'\\' | b'?' | b'#' | b'%' | b'<' | b'>' | b'\'' | b'`'
        )
}

/// Everything the shaping functions need to know about one proxied request. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ShapeContext {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) prefix: Prefix,
    /// Lower-cased `Host` the gateway sent to the API server.
    pub(crate) api_authority: String,
    /// Lower-cased `Host` of the service origin (what the browser used).
    pub(crate) origin_authority: String,
    pub(crate) max_buffered_bytes: usize,
}

impl ShapeContext {
    /// `prefix`: the API server path up to `/proxy` (see the module docs).
    /// `api_authority`: the `Host` header the gateway sent to the API server (the API server's
    /// `req.Host`, which apimachinery keeps in absolute URLs). `origin_authority`: the `Host` the
    /// browser used for the service origin, e.g. `grafana.monitoring.svc.localhost:8001`.
    pub fn new(
        prefix: &str,
        api_authority: &str,
        origin_authority: &str,
    ) -> Result<Self, ContextError> {
        let prefix = Prefix::new(prefix)?;
        let api_authority = check_authority("api", api_authority)?;
        let origin_authority = check_authority("origin", origin_authority)?;
        Ok(Self {
            inner: Arc::new(Inner {
                prefix,
                api_authority,
                origin_authority,
                max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            }),
        })
    }

    /// Caps what the HTML rewriter buffers for one response (default
    /// [`DEFAULT_MAX_BUFFERED_BYTES`]); past it the rest of the page passes through unrewritten.
    #[must_use]
    pub fn with_max_buffered_bytes(self, bytes: usize) -> Self {
        let inner = Inner {
            prefix: self.inner.prefix.clone(),
            api_authority: self.inner.api_authority.clone(),
            origin_authority: self.inner.origin_authority.clone(),
            max_buffered_bytes: bytes.max(1024),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The validated prefix.
    pub fn prefix(&self) -> &Prefix {
        &self.inner.prefix
    }

    /// The API server authority, lower-cased.
    pub fn api_authority(&self) -> &str {
        &self.inner.api_authority
    }

    /// The origin authority, lower-cased.
    pub fn origin_authority(&self) -> &str {
        &self.inner.origin_authority
    }

    pub(crate) fn max_buffered_bytes(&self) -> usize {
        self.inner.max_buffered_bytes
    }
}

fn check_authority(which: &'static str, authority: &str) -> Result<String, ContextError> {
    let reject = |reason| ContextError::Authority {
        which,
        authority: authority.to_owned(),
        reason,
    };
    if authority.is_empty() {
        return Err(reject("it is empty"));
    }
    if authority
        .bytes()
        .any(|b| !b.is_ascii_graphic() || matches!(b, b'/' | b'?' | b'#' | b'@'))
    {
        return Err(reject(
            "it holds a character that cannot appear in a Host header",
        ));
    }
    Ok(authority.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_api_server_prefixes() {
        for p in [
            "/api/v1/namespaces/monitoring/services/grafana/proxy",
            "/api/v1/namespaces/monitoring/services/https:grafana:3000/proxy",
            "/api/v1/nodes/node-1:10250/proxy",
        ] {
            assert_eq!(
                Prefix::new(p).map(|p| p.as_str().to_owned()),
                Ok(p.to_owned())
            );
        }
    }

    #[test]
    fn rejects_unusable_prefixes() {
        for p in [
            "",
            "/",
            "api/v1",
            "/api/v1/x/proxy/",
            "/a b",
            "/a\"b",
            "/a?b",
            "/a%2Fb",
            "/é",
        ] {
            assert!(
                matches!(Prefix::new(p), Err(ContextError::Prefix { .. })),
                "{p:?}"
            );
        }
    }

    #[test]
    fn authorities_are_checked_and_lowercased() {
        let ctx = ShapeContext::new("/p/proxy", "API.Example:6443", "Svc.localhost:8001");
        let ctx = ctx.ok().map(|c| {
            (
                c.api_authority().to_owned(),
                c.origin_authority().to_owned(),
            )
        });
        assert_eq!(
            ctx,
            Some((
                "api.example:6443".to_owned(),
                "svc.localhost:8001".to_owned()
            ))
        );
        assert!(matches!(
            ShapeContext::new("/p/proxy", "", "x"),
            Err(ContextError::Authority { which: "api", .. })
        ));
        assert!(matches!(
            ShapeContext::new("/p/proxy", "a", "x/y"),
            Err(ContextError::Authority {
                which: "origin",
                ..
            })
        ));
    }
}
