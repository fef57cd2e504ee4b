//! The API server's response rewriting for the proxy verb, as apimachinery's
//! `pkg/util/proxy/transport.go` does it: `rewriteURL` (URL classes), `rewriteHTML` (the
//! `atomsToAttrs` element table, `wire::html::URL_ATTRIBUTES`), `rewriteResponse` (gzip and raw-deflate bodies, other
//! encodings untouched, the whole body buffered) and the `Location` header.
//!
//! Every URL attribute and `Location` comes out as Go's `url.String()` writes it, changed by
//! `rewriteURL` or not (so `href="#"` becomes `href=""`, as on a real API server). Differences
//! from the Go code, all in serialisation only: a tag whose URL values come out as they went
//! in is copied byte for byte (the Go tokenizer re-serialises every start tag), and attribute
//! values are handled with their entities as written. Checked against the rows of
//! apimachinery's `TestProxyTransport` (`pkg/util/proxy/transport_test.go`), below.

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
    /// Decoded path (`URL.Path`).
    pub(crate) path: String,
    /// The path as written (what `URL.RawPath` stands for).
    pub(crate) raw_path: String,
    /// `RawQuery`; `Some("")` is Go's `ForceQuery` (a `?` with nothing after it).
    pub(crate) raw_query: Option<String>,
    /// Decoded fragment (`URL.Fragment`; empty for none and for a lone `#`).
    pub(crate) fragment: String,
    /// The fragment as written (`URL.RawFragment`).
    pub(crate) raw_fragment: String,
    pub(crate) opaque: bool,
}

/// Which component `escape` and `validEncoded` work on (Go's `encoding` modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Path,
    Fragment,
}

/// `shouldEscape(b, mode)` of `net/url` for the path and fragment modes.
fn should_escape(b: u8, part: Part) -> bool {
    if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
        return false;
    }
    match part {
        Part::Path => !b"$&+,/:;=@".contains(&b),
        Part::Fragment => !b"$&+,/:;=?@!()*".contains(&b),
    }
}

/// `escape(s, mode)`: every byte `should_escape` names as `%XX` (upper-case hex).
fn go_escape(s: &str, part: Part) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if should_escape(b, part) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// `validEncoded(s, mode)`: whether `s` may stand as written (sub-delimiters, `[]` and `%`
/// allowed besides what needs no escaping).
fn valid_encoded(s: &str, part: Part) -> bool {
    s.bytes()
        .all(|b| b"!$&'()*+,;=:@[]%".contains(&b) || !should_escape(b, part))
}

/// `EscapedPath` / `EscapedFragment`: the written form while it is valid and still decodes to
/// `decoded`, else `decoded` escaped afresh.
fn escaped(raw: &str, decoded: &str, part: Part) -> String {
    if valid_encoded(raw, part) && go_unescape_path(raw).as_deref() == Some(decoded) {
        raw.to_owned()
    } else {
        go_escape(decoded, part)
    }
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

/// Go's `escape(s, encodePath)`: unreserved characters and `$&+,/:;=@` stay, everything else
/// is `%XX` (upper-case hex).
pub(crate) fn go_escape_path(s: &str) -> String {
    go_escape(s, Part::Path)
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
        let (rest, raw_fragment) = raw.split_once('#').unwrap_or((raw, ""));
        // `setFragment`: a bad escape is a parse error.
        let fragment = go_unescape_path(raw_fragment)?;
        let raw_fragment = raw_fragment.to_owned();
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
                raw_path: String::new(),
                raw_query,
                fragment,
                raw_fragment,
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
            raw_path: path.to_owned(),
            raw_query,
            fragment,
            raw_fragment,
            opaque: false,
        })
    }

    /// `url.String()` of a URL that is not opaque: the path as `EscapedPath`, `?` when a query
    /// (even an empty one) was written, `#` only before a non-empty fragment.
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
        out.push_str(&escaped(&self.raw_path, &self.path, Part::Path));
        if let Some(q) = &self.raw_query {
            out.push('?');
            out.push_str(q);
        }
        if !self.fragment.is_empty() {
            out.push('#');
            out.push_str(&escaped(&self.raw_fragment, &self.fragment, Part::Fragment));
        }
        out
    }
}

impl UrlRewriter {
    /// `Transport.rewriteURL`. Relative and other-host URLs come back as `url.String()`
    /// writes them (which may differ from the input: `#` alone is dropped, a `<` escaped);
    /// unparsable and opaque ones (`mailto:`) as they came.
    pub(crate) fn rewrite(&self, target: &str) -> String {
        let Some(mut url) = GoUrl::parse(target) else {
            return target.to_owned();
        };
        if url.opaque {
            return target.to_owned();
        }
        let different_host =
            !url.host.is_empty() && url.host != self.source_host && url.host != self.request_host;
        let relative = !url.path.starts_with('/');
        if different_host || relative {
            return url.to_go_string();
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

    /// The rows of apimachinery's `TestProxyTransport` (`pkg/util/proxy/transport_test.go`,
    /// commit eed236c) that go through `rewriteURL`: links in HTML and `Location`. A request
    /// without `reqHost` carries its URL's host as `Host` (Go's `http.NewRequest`).
    #[test]
    fn upstream_transport_test_rows() {
        let transport = |scheme: &str, host: &str, prepend: &str| UrlRewriter {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            path_prepend: prepend.to_owned(),
            source_host: "mynode.com".to_owned(),
            request_host: "mynode.com".to_owned(),
        };
        let test = transport("http", "foo.com", "/proxy/node/node1:10250");
        let test2 = transport("https", "foo.com", "/proxy/node/node1:8080");
        let mut empty = transport("", "", "/proxy/node/node1:10250");
        empty.request_host = "10.0.0.1:8001".to_owned();
        let mut from_foo = transport("http", "foo.com", "/proxy/node/node1:10250");
        from_foo.source_host = "foo.com".to_owned();
        from_foo.request_host = "foo.com".to_owned();
        let script = "%00<script>alert(1)</script>/";
        let escaped = "%00%3Cscript%3Ealert%281%29%3C/script%3E/";
        let rows: Vec<(&str, &UrlRewriter, String, String)> = vec![
            (
                "normal: relative",
                &test,
                "kubelet.log".into(),
                "kubelet.log".into(),
            ),
            (
                "normal: absolute path",
                &test,
                "/google.log".into(),
                "http://foo.com/proxy/node/node1:10250/google.log".into(),
            ),
            (
                "trailing slash",
                &test,
                "/google.log/".into(),
                "http://foo.com/proxy/node/node1:10250/google.log/".into(),
            ),
            (
                "subdir",
                &test2,
                "/google.log".into(),
                "https://foo.com/proxy/node/node1:8080/google.log".into(),
            ),
            (
                "image",
                &test,
                "/kubernetes_abs.jpg".into(),
                "http://foo.com/proxy/node/node1:10250/kubernetes_abs.jpg".into(),
            ),
            (
                "abs",
                &test,
                "http://google.com/kubernetes.js".into(),
                "http://google.com/kubernetes.js".into(),
            ),
            (
                "abs but same host",
                &test,
                "http://mynode.com/kubernetes.js".into(),
                "http://foo.com/proxy/node/node1:10250/kubernetes.js".into(),
            ),
            (
                "redirect rel",
                &test,
                "/redirected/target/".into(),
                "http://foo.com/proxy/node/node1:10250/redirected/target/".into(),
            ),
            (
                "redirect abs same host",
                &test,
                "http://mynode.com/redirected/target/".into(),
                "http://foo.com/proxy/node/node1:10250/redirected/target/".into(),
            ),
            (
                "redirect abs other host",
                &test,
                "http://example.com/redirected/target/".into(),
                "http://example.com/redirected/target/".into(),
            ),
            (
                "redirect abs use reqHost no host no scheme",
                &empty,
                "http://10.0.0.1:8001/redirected/target/".into(),
                "http://10.0.0.1:8001/proxy/node/node1:10250/redirected/target/".into(),
            ),
            (
                "source contains the redirect already",
                &from_foo,
                "http://foo.com/proxy/node/node1:10250/google.log".into(),
                "http://foo.com/proxy/node/node1:10250/google.log".into(),
            ),
            (
                "redirect rel must be escaped",
                &test,
                format!("/redirected/target/{script}"),
                format!("http://foo.com/proxy/node/node1:10250/redirected/target/{escaped}"),
            ),
            (
                "redirect abs same host must be escaped",
                &test,
                format!("http://mynode.com/redirected/target/{script}"),
                format!("http://foo.com/proxy/node/node1:10250/redirected/target/{escaped}"),
            ),
            (
                "redirect abs other host must be escaped",
                &test,
                format!("http://example.com/redirected/target/{script}"),
                format!("http://example.com/redirected/target/{escaped}"),
            ),
            (
                "redirect abs use reqHost no host no scheme must be escaped",
                &empty,
                format!("http://10.0.0.1:8001/redirected/target/{script}"),
                format!("http://10.0.0.1:8001/proxy/node/node1:10250/redirected/target/{escaped}"),
            ),
        ];
        for (name, rw, input, want) in rows {
            assert_eq!(rw.rewrite(&input), want, "{name}");
        }
        // url.String() on what rewriteURL leaves alone: a lone `#` and an empty query's `?`
        // as Go writes them, written escapes kept while valid.
        let r = rw();
        assert_eq!(r.rewrite("#"), "");
        assert_eq!(r.rewrite("x?"), "x?");
        assert_eq!(
            r.rewrite("http://google.com/a(b)%2F#c<d"),
            "http://google.com/a(b)%2F#c%3Cd"
        );
        assert_eq!(r.rewrite("HTTP://google.com/"), "http://google.com/");
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
