//! Go's `http.ServeMux` as `kubectl proxy` builds it: which of its two subtrees a path names.
//!
//! Contract: [`Router::classify`] reproduces `kubectl proxy`'s mux with two subtree patterns
//! (`--api-prefix` and, with `--www`, `--www-prefix`; the longest wins), including the mux's 301
//! redirects for unclean paths and for `/prefix` → `/prefix/`, its `404 page not found`, and
//! `stripLeaveSlash` for API prefixes that do not start with `/api` (kubectl
//! `pkg/proxy/proxy_server.go`, `NewServer`, `stripLeaveSlash`). The result is a [`Route`], which
//! [`super::classify`] turns into a destination.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// Where a request goes, decided from its method and request target alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// The API passthrough. `filter_path` is the percent-decoded path after prefix stripping
    /// (what kubectl's filter sees); `upstream_path` is the escaped path to send upstream.
    Api {
        filter_path: String,
        upstream_path: String,
    },
    /// `--www` static files; `rest` is the escaped path below `--www-prefix`, starting with `/`.
    Static { rest: String },
    /// Go's ServeMux redirect (301) to a cleaned path or to the subtree's trailing slash.
    Redirect { location: String },
    /// No pattern matched, or `stripLeaveSlash` found no prefix: `404 page not found`.
    NotFound,
    /// A request target Go cannot parse (bad `%` escape) or `*`: `400 Bad Request`.
    BadRequest,
}

/// The mux of `kubectl proxy`: the API prefix and the optional static prefix.
#[derive(Debug, Clone)]
pub(crate) struct Router {
    api_prefix: String,
    static_prefix: Option<String>,
}

impl Router {
    /// `api_prefix` and `static_prefix` get a trailing `/` when missing (kubectl `Complete`);
    /// `static_prefix` is `None` when no `--www` directory was given.
    pub(crate) fn new(api_prefix: &str, static_prefix: Option<&str>) -> Self {
        Self {
            api_prefix: with_trailing_slash(api_prefix),
            static_prefix: static_prefix.map(with_trailing_slash),
        }
    }

    /// Routes a request with escaped path `raw_path` and query `query` (without `?`).
    pub(crate) fn classify(&self, method: &str, raw_path: &str, query: Option<&str>) -> Route {
        if raw_path == "*" {
            return Route::BadRequest;
        }
        let Some(decoded) = decode_path(raw_path) else {
            return Route::BadRequest;
        };
        // CONNECT requests are not canonicalised by Go's ServeMux.
        if method != "CONNECT" {
            let clean = clean_path(raw_path);
            if let Some(location) = self.trailing_slash_redirect(&clean, query) {
                return Route::Redirect { location };
            }
            if clean != raw_path {
                return Route::Redirect {
                    location: with_query(clean, query),
                };
            }
        }
        match self.longest_match(raw_path) {
            Some(Pattern::Static(prefix)) => Route::Static {
                rest: format!("/{}", &raw_path[prefix.len()..]),
            },
            Some(Pattern::Api) => self.api_route(raw_path, &decoded),
            None => Route::NotFound,
        }
    }

    fn longest_match(&self, path: &str) -> Option<Pattern<'_>> {
        let api = path
            .starts_with(&self.api_prefix)
            .then_some(self.api_prefix.len());
        let stat = self
            .static_prefix
            .as_deref()
            .filter(|p| path.starts_with(p))
            .map(|p| (p, p.len()));
        match (api, stat) {
            (Some(a), Some((p, s))) if s > a => Some(Pattern::Static(p)),
            (Some(_), _) => Some(Pattern::Api),
            (None, Some((p, _))) => Some(Pattern::Static(p)),
            (None, None) => None,
        }
    }

    /// Go's `matchOrRedirect`: `/tree` is redirected to `/tree/` when `/tree/` is a pattern and
    /// `/tree` itself is not one.
    fn trailing_slash_redirect(&self, clean: &str, query: Option<&str>) -> Option<String> {
        if clean.ends_with('/') {
            return None;
        }
        let with_slash = format!("{clean}/");
        let is_pattern = with_slash == self.api_prefix
            || self.static_prefix.as_deref() == Some(with_slash.as_str());
        is_pattern.then(|| with_query(with_slash, query))
    }

    fn api_route(&self, raw_path: &str, decoded: &str) -> Route {
        // kubectl: `if !strings.HasPrefix(apiPrefix, "/api") { stripLeaveSlash(..) }`; prefixes
        // starting with `/api` (even `/apis/` or `/api-foo/`) are forwarded as they are.
        if self.api_prefix.starts_with("/api") {
            return Route::Api {
                filter_path: decoded.to_owned(),
                upstream_path: upstream_escape(raw_path, decoded).into_owned(),
            };
        }
        let Some(rest) = decoded.strip_prefix(self.api_prefix.as_str()) else {
            return Route::NotFound;
        };
        let filter_path = if rest.is_empty() || rest.starts_with('/') {
            rest.to_owned()
        } else {
            format!("/{rest}")
        };
        // stripLeaveSlash only rewrites `URL.Path` and leaves `RawPath` stale, so Go sends the
        // re-escaped decoded path, except for the default prefix `/` where Path is unchanged
        // and the raw form survives. An empty path is sent as `/` (ReverseProxy's join).
        let upstream_path = if self.api_prefix == "/" {
            upstream_escape(raw_path, decoded).into_owned()
        } else {
            go_escape_path(&filter_path).into_owned()
        };
        let upstream_path = if upstream_path.is_empty() {
            "/".to_owned()
        } else {
            upstream_path
        };
        Route::Api {
            filter_path,
            upstream_path,
        }
    }
}

enum Pattern<'a> {
    Api,
    Static(&'a str),
}

fn with_trailing_slash(prefix: &str) -> String {
    if prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    }
}

fn with_query(path: String, query: Option<&str>) -> String {
    match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path,
    }
}

/// Percent-decodes a path as Go's `url.PathUnescape`; `None` for a malformed escape (Go's
/// server answers those with `400 Bad Request`). Invalid UTF-8 becomes U+FFFD, which is what
/// Go's regexp sees when it matches such a string.
pub(crate) fn decode_path(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
            if !ok {
                return None;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Some(percent_decode_str(raw).decode_utf8_lossy().into_owned())
}

/// Go's `cleanPath` in `net/http` (path.Clean that keeps a trailing slash).
pub(crate) fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return "/".to_owned();
    }
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut clean = String::with_capacity(p.len());
    for seg in &out {
        clean.push('/');
        clean.push_str(seg);
    }
    if clean.is_empty() || (p.ends_with('/') && !clean.ends_with('/')) {
        clean.push('/');
    }
    clean
}

/// Go's `shouldEscape(c, encodePath)`: everything but unreserved characters and
/// `$&+,/:;=@` is escaped.
const GO_PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'!')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'\'')
    .add(b'(')
    .add(b')')
    .add(b'*')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(0x7f);

/// `url.URL.EscapedPath` of a decoded path (no `RawPath`).
pub(crate) fn go_escape_path(decoded: &str) -> Cow<'_, str> {
    utf8_percent_encode(decoded, GO_PATH).into()
}

/// The path Go sends upstream for a request whose `Path` is unchanged: the raw form when
/// Go's `validEncoded` accepts it, else the re-escaped decoded path.
fn upstream_escape<'a>(raw: &'a str, decoded: &'a str) -> Cow<'a, str> {
    let valid = raw
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:@[]%/".contains(&c));
    if valid {
        Cow::Borrowed(raw)
    } else {
        go_escape_path(decoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(path: &str) -> Route {
        Route::Api {
            filter_path: path.into(),
            upstream_path: path.into(),
        }
    }

    /// kubectl's `TestPathHandling` rows: (prefix, request path, upstream path or 404).
    #[test]
    fn kubectl_test_path_handling_rows() {
        let rows: &[(&str, &str, Option<&str>)] = &[
            ("/api/", "/metrics", None),
            ("/api/", "/api/metrics", Some("/api/metrics")),
            ("/api/", "/api/v1/pods/", Some("/api/v1/pods/")),
            ("/", "/metrics", Some("/metrics")),
            ("/", "/api/v1/pods/", Some("/api/v1/pods/")),
            ("/custom/", "/metrics", None),
            ("/custom/", "/api/metrics", None),
            ("/custom/", "/api/v1/pods/", None),
            ("/custom/", "/custom/api/metrics", Some("/api/metrics")),
            ("/custom/", "/custom/api/v1/pods/", Some("/api/v1/pods/")),
        ];
        for &(prefix, path, want) in rows {
            let got = Router::new(prefix, None).classify("GET", path, None);
            let want = want.map_or(Route::NotFound, api);
            assert_eq!(got, want, "{prefix} {path}");
        }
    }

    #[test]
    fn prefix_gets_trailing_slash_and_api_like_prefixes_are_not_stripped() {
        let r = Router::new("/k8s-api", None);
        assert_eq!(r.api_prefix, "/k8s-api/");
        assert_eq!(
            r.classify("GET", "/k8s-api/api/v1/pods", None),
            api("/api/v1/pods")
        );
        let r = Router::new("/apis/", None);
        assert_eq!(
            r.classify("GET", "/apis/apps/v1", None),
            api("/apis/apps/v1")
        );
        let r = Router::new("/api-foo", None);
        assert_eq!(r.classify("GET", "/api-foo/x", None), api("/api-foo/x"));
    }

    #[test]
    fn root_request_with_root_prefix_filters_empty_path_and_sends_slash() {
        let r = Router::new("/", None);
        assert_eq!(
            r.classify("GET", "/", None),
            Route::Api {
                filter_path: String::new(),
                upstream_path: "/".into()
            }
        );
        let r = Router::new("/custom/", None);
        assert_eq!(
            r.classify("GET", "/custom/", None),
            Route::Api {
                filter_path: String::new(),
                upstream_path: "/".into()
            }
        );
    }

    #[test]
    fn servemux_redirects() {
        let r = Router::new("/custom/", Some("/static/"));
        assert_eq!(
            r.classify("GET", "/custom", Some("a=1")),
            Route::Redirect {
                location: "/custom/?a=1".into()
            }
        );
        assert_eq!(
            r.classify("GET", "/static", None),
            Route::Redirect {
                location: "/static/".into()
            }
        );
        let r = Router::new("/", None);
        assert_eq!(
            r.classify("GET", "/api//v1/./pods/../x", None),
            Route::Redirect {
                location: "/api/v1/x".into()
            }
        );
        assert_eq!(r.classify("GET", "/a/", None), api("/a/"));
        // CONNECT is not cleaned.
        assert_eq!(r.classify("CONNECT", "/a//b", None), api("/a//b"));
    }

    #[test]
    fn static_prefix_wins_when_longer() {
        let r = Router::new("/", Some("/static"));
        assert_eq!(
            r.classify("GET", "/static/a.txt", None),
            Route::Static {
                rest: "/a.txt".into()
            }
        );
        assert_eq!(r.classify("GET", "/staticx", None), api("/staticx"));
        let r = Router::new("/x/", None);
        assert_eq!(r.classify("GET", "/static/a.txt", None), Route::NotFound);
    }

    #[test]
    fn filter_sees_decoded_path_upstream_gets_raw_or_go_escaped() {
        let r = Router::new("/", None);
        assert_eq!(
            r.classify("GET", "/api/v1/namespaces/a/pods/b/%65xec", None),
            Route::Api {
                filter_path: "/api/v1/namespaces/a/pods/b/exec".into(),
                upstream_path: "/api/v1/namespaces/a/pods/b/%65xec".into(),
            }
        );
        // A custom prefix makes Go re-escape the decoded path: `%2F` becomes `/`.
        let r = Router::new("/custom/", None);
        assert_eq!(
            r.classify("GET", "/custom/a%2Fb%20c", None),
            Route::Api {
                filter_path: "/a/b c".into(),
                upstream_path: "/a/b%20c".into()
            }
        );
        assert_eq!(r.classify("GET", "/custom/%zz", None), Route::BadRequest);
        assert_eq!(r.classify("OPTIONS", "*", None), Route::BadRequest);
    }

    #[test]
    fn clean_path_matches_go() {
        for (input, want) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/a//b", "/a/b"),
            ("/a/./b/", "/a/b/"),
            ("/a/../b", "/b"),
            ("/../a", "/a"),
            ("/a/.", "/a"),
            ("/a/..", "/"),
            ("/a/b/", "/a/b/"),
        ] {
            assert_eq!(clean_path(input), want, "{input}");
        }
    }
}
