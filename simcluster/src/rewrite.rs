//! The API server's response rewriting for the proxy verb, as apimachinery's
//! `pkg/util/proxy/transport.go` does it: `rewriteURL` (URL classes), `rewriteHTML` (the
//! `atomsToAttrs` element table, `wire::html::URL_ATTRIBUTES`), `rewriteResponse` (gzip and raw-deflate bodies, other
//! encodings untouched, the whole body buffered) and the `Location` header.
//!
//! Differences from the Go code, all in serialisation only: tags whose URLs do not change are
//! copied byte for byte (the Go tokenizer re-serialises every start tag), attribute values are
//! handled with their entities as written, and unchanged URLs keep their original spelling.

use std::io;

use tokio::io::AsyncReadExt;

/// The parameters of apimachinery's proxy `Transport` plus the request it served.
#[derive(Debug, Clone)]
pub(crate) struct UrlRewriter {
    /// `Transport.Scheme`: the scheme of the incoming request URL, empty for an origin-form
    /// request line (always, for requests a server receives).
    pub(crate) scheme: String,
    /// `Transport.Host`: likewise empty.
    pub(crate) host: String,
    /// `Transport.PathPrepend`.
    pub(crate) path_prepend: String,
    /// `sourceURL.Host`: the endpoint's `host:port`.
    pub(crate) source_host: String,
    /// `sourceRequestHost`: the `Host` the request carried (the API server's, as the client
    /// addressed it).
    pub(crate) request_host: String,
}

/// The parts of a URL as Go's `url.Parse` splits them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GoUrl {
    pub(crate) scheme: String,
    /// `user@host:port` as written (userinfo kept for re-serialisation).
    pub(crate) authority: Option<String>,
    pub(crate) host: String,
    /// Decoded path.
    pub(crate) path: String,
    pub(crate) raw_query: Option<String>,
    pub(crate) fragment: Option<String>,
    pub(crate) opaque: bool,
}

fn unhex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Go's `unescape(s, encodePath)`: `%XX` decoded, a bad escape is an error.
pub(crate) fn go_unescape_path(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = unhex(*bytes.get(i + 1)?)?;
            let lo = unhex(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Go's `escape(s, encodePath)` (`net/url` `shouldEscape`): unreserved characters and
/// `$&+,/:;=@` stay, everything else is `%XX` (upper-case hex).
pub(crate) fn go_escape_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Go's `path.Clean`.
pub(crate) fn go_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let rooted = p.starts_with('/');
    let mut stack: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if stack.last().is_some_and(|s| *s != "..") {
                    stack.pop();
                } else if !rooted {
                    stack.push("..");
                }
            }
            s => stack.push(s),
        }
    }
    let joined = stack.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Go's `path.Join`: empty elements ignored, the result cleaned; `""` if all are empty.
pub(crate) fn go_join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => String::new(),
        (true, false) => go_clean(b),
        (false, true) => go_clean(a),
        (false, false) => go_clean(&format!("{a}/{b}")),
    }
}

impl GoUrl {
    /// Go's `url.Parse`, as far as `rewriteURL` depends on it; `None` where Go errors.
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return None;
        }
        let (rest, fragment) = match raw.split_once('#') {
            Some((r, f)) => (r, Some(f.to_owned())),
            None => (raw, None),
        };
        // getScheme: letters first, then letters, digits, `+-.`, up to a colon.
        let mut scheme = String::new();
        let mut rest = rest;
        for (i, c) in rest.char_indices() {
            if c.is_ascii_alphabetic() {
                continue;
            }
            if i > 0 && (c.is_ascii_digit() || "+-.".contains(c)) {
                continue;
            }
            if c == ':' {
                if i == 0 {
                    return None; // "missing protocol scheme"
                }
                scheme = rest[..i].to_ascii_lowercase();
                rest = &rest[i + 1..];
            }
            break;
        }
        let (rest, raw_query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q.to_owned())),
            None => (rest, None),
        };
        if !scheme.is_empty() && !rest.starts_with('/') {
            return Some(Self {
                scheme,
                authority: None,
                host: String::new(),
                path: String::new(),
                raw_query,
                fragment,
                opaque: true,
            });
        }
        if scheme.is_empty() {
            // "first path segment in URL cannot contain colon"
            let first = rest.split('/').next().unwrap_or_default();
            if first.contains(':') {
                return None;
            }
        }
        let (authority, path) = if let Some(after) = rest.strip_prefix("//") {
            let end = after.find('/').unwrap_or(after.len());
            (Some(after[..end].to_owned()), &after[end..])
        } else {
            (None, rest)
        };
        let host = authority
            .as_deref()
            .map(|a| a.rsplit_once('@').map_or(a, |(_, h)| h).to_owned())
            .unwrap_or_default();
        if host.contains([' ', '%']) {
            return None;
        }
        Some(Self {
            scheme,
            authority,
            host,
            path: go_unescape_path(path)?,
            raw_query,
            fragment,
            opaque: false,
        })
    }

    /// `url.String()` for a URL whose path was changed (the path is escaped afresh).
    pub(crate) fn to_go_string(&self) -> String {
        let mut out = String::new();
        if !self.scheme.is_empty() {
            out.push_str(&self.scheme);
            out.push(':');
        }
        if !self.host.is_empty() || self.authority.is_some() && !self.scheme.is_empty() {
            out.push_str("//");
            out.push_str(self.authority.as_deref().unwrap_or(&self.host));
        }
        out.push_str(&go_escape_path(&self.path));
        if let Some(q) = self.raw_query.as_deref().filter(|q| !q.is_empty()) {
            out.push('?');
            out.push_str(q);
        }
        if let Some(f) = &self.fragment {
            out.push('#');
            out.push_str(f);
        }
        out
    }
}

impl UrlRewriter {
    /// `Transport.rewriteURL`; returns the input unchanged for relative, other-host and
    /// unparsable URLs.
    pub(crate) fn rewrite(&self, target: &str) -> String {
        let Some(mut url) = GoUrl::parse(target) else {
            return target.to_owned();
        };
        let different_host =
            !url.host.is_empty() && url.host != self.source_host && url.host != self.request_host;
        let relative = !url.path.starts_with('/');
        if different_host || relative || url.opaque {
            return target.to_owned();
        }
        // "Do not rewrite scheme and host if the Transport has empty scheme and host when
        // targetURL already contains the sourceRequestHost".
        if !(url.host == self.request_host && self.scheme.is_empty() && self.host.is_empty()) {
            url.scheme = self.scheme.clone();
            url.host = self.host.clone();
            url.authority = if self.host.is_empty() {
                None
            } else {
                Some(self.host.clone())
            };
        }
        let orig_path = url.path.clone();
        if !url.path.starts_with(&self.path_prepend) {
            url.path = go_join(&self.path_prepend, &url.path);
            if orig_path.ends_with('/') && !url.path.ends_with('/') {
                url.path.push('/');
            }
        }
        url.to_go_string()
    }

    /// `rewriteHTML`: every URL attribute of the table rewritten.
    pub(crate) fn rewrite_html(&self, input: &[u8]) -> Result<Vec<u8>, String> {
        use lol_html::{HtmlRewriter, Settings, element};

        let mut output = Vec::with_capacity(input.len() + input.len() / 8);
        {
            let settings = Settings::new()
                .append_element_content_handler(element!("*", |el| {
                    let tag = el.tag_name();
                    for attr in wire::html::url_attributes(&tag) {
                        if let Some(value) = el.get_attribute(attr) {
                            let new = self.rewrite(&value);
                            if new != value {
                                let _ = el.set_attribute(attr, &new);
                            }
                        }
                    }
                    Ok(())
                }))
                .with_strict(false);
            let mut rewriter =
                HtmlRewriter::new(settings, |chunk: &[u8]| output.extend_from_slice(chunk));
            rewriter.write(input).map_err(|e| e.to_string())?;
            rewriter.end().map_err(|e| e.to_string())?;
        }
        Ok(output)
    }
}

/// What `rewriteResponse` does to a body with a given `Content-Encoding`.
#[derive(Debug)]
pub(crate) enum Rewritten {
    /// The new body (re-encoded as it came).
    Body(Vec<u8>),
    /// An encoding the Go code does not understand: body and headers pass through.
    Untouched,
}

/// `rewriteResponse` (transport.go): decode gzip or raw DEFLATE (Go's `compress/flate`, not
/// zlib), rewrite, encode again the same way.
pub(crate) async fn rewrite_body(
    rw: &UrlRewriter,
    encoding: &str,
    body: &[u8],
) -> Result<Rewritten, String> {
    use async_compression::tokio::bufread::{
        DeflateDecoder, DeflateEncoder, GzipDecoder, GzipEncoder,
    };
    let decoded = match encoding {
        "" => body.to_vec(),
        "gzip" => {
            let mut out = Vec::new();
            let mut dec = GzipDecoder::new(body);
            dec.multiple_members(true);
            dec.read_to_end(&mut out)
                .await
                .map_err(|e| format!("errorf making gzip reader: gzip: {}", go_gzip_error(&e)))?;
            out
        }
        "deflate" => {
            let mut out = Vec::new();
            DeflateDecoder::new(body)
                .read_to_end(&mut out)
                .await
                .map_err(|e| format!("flate: corrupt input: {e}"))?;
            out
        }
        _ => return Ok(Rewritten::Untouched),
    };
    let html = rw.rewrite_html(&decoded)?;
    let encoded = match encoding {
        "gzip" => {
            let mut out = Vec::new();
            GzipEncoder::new(&html[..])
                .read_to_end(&mut out)
                .await
                .map_err(|e| e.to_string())?;
            out
        }
        "deflate" => {
            let mut out = Vec::new();
            DeflateEncoder::with_quality(&html[..], async_compression::Level::Best)
                .read_to_end(&mut out)
                .await
                .map_err(|e| e.to_string())?;
            out
        }
        _ => html,
    };
    Ok(Rewritten::Body(encoded))
}

fn go_gzip_error(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        "unexpected EOF".to_owned()
    } else {
        "invalid header".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw() -> UrlRewriter {
        UrlRewriter {
            scheme: String::new(),
            host: String::new(),
            path_prepend: "/api/v1/namespaces/ns/services/svc:http/proxy".to_owned(),
            source_host: "10.0.0.1:8080".to_owned(),
            request_host: "127.0.0.1:6443".to_owned(),
        }
    }

    #[test]
    fn url_classes_as_rewrite_url() {
        let r = rw();
        let p = "/api/v1/namespaces/ns/services/svc:http/proxy";
        // absolute path → prefixed (root-relative: the Transport has no scheme/host)
        assert_eq!(r.rewrite("/static/app.js"), format!("{p}/static/app.js"));
        assert_eq!(r.rewrite("/a/b/?x=1#f"), format!("{p}/a/b/?x=1#f"));
        assert_eq!(r.rewrite("/"), format!("{p}/"));
        // relative, other host, opaque → unchanged
        for s in [
            "foo",
            "./x",
            "../x",
            "?q",
            "#f",
            "http://google.com/x",
            "//cdn/x",
            "mailto:a@b",
            "javascript:void(0)",
        ] {
            assert_eq!(r.rewrite(s), s, "{s}");
        }
        // same host as the endpoint → prefixed, scheme and host dropped
        assert_eq!(r.rewrite("http://10.0.0.1:8080/x"), format!("{p}/x"));
        // same host as the request → scheme and host kept
        assert_eq!(
            r.rewrite("https://127.0.0.1:6443/x"),
            format!("https://127.0.0.1:6443{p}/x")
        );
        // same host, empty path → relative → unchanged
        assert_eq!(r.rewrite("http://10.0.0.1:8080"), "http://10.0.0.1:8080");
        // already prefixed
        assert_eq!(r.rewrite(&format!("{p}/x")), format!("{p}/x"));
        // path.Join cleans
        assert_eq!(r.rewrite("//10.0.0.1:8080/a/../b"), format!("{p}/b"));
        // escaping as Go's EscapedPath
        assert_eq!(r.rewrite("/a%20b(c)"), format!("{p}/a%20b%28c%29"));
        // a bad escape does not parse → unchanged
        assert_eq!(r.rewrite("/a%zz"), "/a%zz");
    }

    #[test]
    fn html_table_only() {
        let r = rw();
        let p = "/api/v1/namespaces/ns/services/svc:http/proxy";
        let html = br#"<html><head><link href="/s.css"><script src="/a.js"></script></head><body><a href="/x">x</a><div data-x="/no"></div><img src="rel.png" srcset="/no 2x"><form action="/login"></form></body></html>"#;
        let out = String::from_utf8(r.rewrite_html(html).unwrap_or_default()).unwrap_or_default();
        assert!(
            out.contains(&format!(r#"<link href="{p}/s.css">"#)),
            "{out}"
        );
        assert!(out.contains(&format!(r#"<script src="{p}/a.js">"#)));
        assert!(out.contains(&format!(r#"<a href="{p}/x">"#)));
        assert!(out.contains(r#"data-x="/no""#));
        assert!(out.contains(r#"src="rel.png" srcset="/no 2x""#));
        assert!(out.contains(&format!(r#"<form action="{p}/login">"#)));
    }

    #[test]
    fn clean_and_join_like_go() {
        assert_eq!(go_join("", ""), "");
        assert_eq!(go_join("", "/a//b/"), "/a/b");
        assert_eq!(go_join("/p", "/../x"), "/x");
        assert_eq!(go_clean("/"), "/");
    }
}
