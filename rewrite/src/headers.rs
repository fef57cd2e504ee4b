//! Header shaping, and the decision whether a body is rewritten.
//!
//! The body decision mirrors when apimachinery's `Transport.RoundTrip` rewrote the body
//! (`pkg/util/proxy/transport.go`): only without a `Location` header (the API server returns such
//! responses before looking at the body), only for the media type `text/html` compared exactly
//! after trimming parameters, as the API server does, so a body it left alone holds no prefix and
//! is passed through byte for byte. Beyond the API server, `br` bodies and zlib-framed `deflate`
//! are decoded too (an app can have written prefixed URLs itself), and a `charset` that is not
//! ASCII-compatible (UTF-16, ISO-2022-JP) means pass-through, since the prefix cannot appear
//! byte-wise in such a body. `206 Partial Content` is never rewritten: a slice of a page cannot be
//! parsed, and its offsets would no longer match.

use encoding_rs::Encoding;
use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_LOCATION,
    CONTENT_TYPE, ETAG, HeaderMap, HeaderName, HeaderValue, LINK, LOCATION, REFRESH, SET_COOKIE,
    VARY,
};
use http::{StatusCode, response::Parts};
use http_body::Body;
use lol_html::AsciiCompatibleEncoding;

use crate::body::{BodyPlan, BoxError, Coding, ShapedBody};
use crate::context::ShapeContext;
use crate::urls::{
    unprefix_content_location, unprefix_link, unprefix_location, unprefix_refresh,
    unprefix_set_cookie,
};

/// Shapes a response from the API server's service proxy for a service origin: un-prefixes its
/// headers ([`shape_response_headers`]) and, for HTML the API server rewrote, returns a body that
/// un-prefixes it while streaming; for everything else the body passes through untouched.
///
/// When the body is rewritten: `Content-Length` is removed (the length changes); an encoded body
/// is decoded and sent as identity, so `Content-Encoding` is removed and `Vary: Accept-Encoding`
/// added; a strong `ETag` becomes weak (the bytes differ from what it named); `Content-MD5`,
/// `Content-Digest`, `Repr-Digest`, `Digest` and `Accept-Ranges` are removed.
pub fn shape_response<B>(parts: &mut Parts, body: B, ctx: &ShapeContext) -> ShapedBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let had_location = parts.headers.contains_key(LOCATION);
    shape_response_headers(&mut parts.headers, ctx);
    if had_location {
        return ShapedBody::passthrough(body);
    }
    match body_plan(parts.status, &parts.headers) {
        Some(plan) => {
            adjust_rewritten_headers(&mut parts.headers, plan.coding);
            ShapedBody::rewrite(body, plan, ctx)
        }
        None => ShapedBody::passthrough(body),
    }
}

type Unprefix = fn(&str, &ShapeContext) -> Option<String>;

/// Un-prefixes `Location`, `Content-Location`, `Refresh`, every `Set-Cookie` and every `Link`
/// value (see [`crate::urls`]). Values that are not visible ASCII are left alone. Usable on its own
/// for responses without a body to shape (upgrades, errors built by the gateway).
pub fn shape_response_headers(headers: &mut HeaderMap, ctx: &ShapeContext) {
    let rules: [(HeaderName, Unprefix); 5] = [
        (LOCATION, unprefix_location),
        (CONTENT_LOCATION, unprefix_content_location),
        (REFRESH, unprefix_refresh),
        (SET_COOKIE, unprefix_set_cookie),
        (LINK, unprefix_link),
    ];
    for (name, unprefix) in rules {
        map_values(headers, name, |v| unprefix(v, ctx));
    }
}

/// Narrows the browser's `Accept-Encoding` before the request goes to the API server: `deflate`
/// (and `*`, which admits it) are removed. HTTP `deflate` is zlib-framed, but apimachinery's
/// `rewriteResponse` reads it with Go's raw `flate.NewReader`, so a correct zlib `deflate` HTML
/// response fails inside the API server. Everything else is kept: codings the API server does not
/// rewrite reach the gateway unprefixed, and those it does (`gzip`) are decoded here.
/// If nothing is left, `identity` is asked for.
pub fn shape_request_headers(headers: &mut HeaderMap) {
    if !headers.contains_key(ACCEPT_ENCODING) {
        return;
    }
    let mut kept = Vec::new();
    let mut changed = false;
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else {
            changed = true;
            continue;
        };
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let coding = item.split(';').next().unwrap_or_default().trim();
            if coding.eq_ignore_ascii_case("deflate") || coding == "*" {
                changed = true;
            } else {
                kept.push(item.to_owned());
            }
        }
    }
    if !changed {
        return;
    }
    let joined = if kept.is_empty() {
        "identity".to_owned()
    } else {
        kept.join(", ")
    };
    headers.remove(ACCEPT_ENCODING);
    if let Ok(value) = HeaderValue::from_str(&joined) {
        headers.insert(ACCEPT_ENCODING, value);
    }
}

/// Rewrites each value of `name` for which `f` returns a new string, keeping order.
fn map_values(headers: &mut HeaderMap, name: HeaderName, f: impl Fn(&str) -> Option<String>) {
    let values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
    let mut changed = false;
    let new: Vec<HeaderValue> = values
        .into_iter()
        .map(|v| {
            let replaced = v
                .to_str()
                .ok()
                .and_then(&f)
                .and_then(|s| HeaderValue::from_str(&s).ok());
            match replaced {
                Some(r) => {
                    changed = true;
                    r
                }
                None => v,
            }
        })
        .collect();
    if changed {
        headers.remove(&name);
        for v in new {
            headers.append(name.clone(), v);
        }
    }
}

/// Whether and how the body must be rewritten; `None` for pass-through.
pub(crate) fn body_plan(status: StatusCode, headers: &HeaderMap) -> Option<BodyPlan> {
    if status.is_informational()
        || matches!(
            status,
            StatusCode::NO_CONTENT | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED
        )
    {
        return None;
    }
    let content_type = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    // Exactly apimachinery's test: `strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]) == "text/html"`.
    if content_type.split(';').next().map(str::trim) != Some("text/html") {
        return None;
    }
    let encoding = match charset(content_type) {
        None => None,
        Some(label) => match Encoding::for_label(label.as_bytes()) {
            // Non-ASCII-compatible: the API server's byte-wise tokenizer found no tags in it.
            Some(e) => Some(AsciiCompatibleEncoding::new(e)?),
            // An unknown label: the API server read the body as UTF-8, and so do we.
            None => Some(AsciiCompatibleEncoding::utf_8()),
        },
    };
    let mut codings = headers.get_all(CONTENT_ENCODING).iter();
    let coding = match (codings.next(), codings.next()) {
        (None, _) => Coding::Identity,
        (Some(v), None) => match v.to_str().ok()?.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Coding::Identity,
            "gzip" | "x-gzip" => Coding::Gzip,
            "deflate" => Coding::Deflate,
            "br" => Coding::Brotli,
            // zstd, compress, stacked codings: the API server did not rewrite them either.
            _ => return None,
        },
        (Some(_), Some(_)) => return None,
    };
    Some(BodyPlan { coding, encoding })
}

fn charset(content_type: &str) -> Option<String> {
    let mime: mime::Mime = content_type.parse().ok()?;
    mime.get_param(mime::CHARSET).map(|c| c.as_str().to_owned())
}

fn adjust_rewritten_headers(headers: &mut HeaderMap, coding: Coding) {
    headers.remove(CONTENT_LENGTH);
    headers.remove(ACCEPT_RANGES);
    for name in ["content-md5", "content-digest", "repr-digest", "digest"] {
        headers.remove(name);
    }
    if coding != Coding::Identity {
        headers.remove(CONTENT_ENCODING);
        add_vary_accept_encoding(headers);
    }
    if let Some(etag) = headers.get(ETAG)
        && etag.as_bytes().starts_with(b"\"")
    {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(etag.as_bytes());
        if let Ok(weak) = HeaderValue::from_bytes(&weak) {
            headers.insert(ETAG, weak);
        }
    }
}

fn add_vary_accept_encoding(headers: &mut HeaderMap) {
    let covered = headers.get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.eq_ignore_ascii_case("accept-encoding"))
        })
    });
    if !covered {
        headers.append(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/api/v1/namespaces/ns/services/svc/proxy";

    fn ctx() -> ShapeContext {
        ShapeContext::new(P, "127.0.0.1:6443", "svc.ns.svc.localhost:8001").expect("ctx")
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    fn values(h: &HeaderMap, name: &str) -> Vec<String> {
        h.get_all(name)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect()
    }

    #[test]
    fn response_headers_are_unprefixed_in_place() {
        let mut h = headers(&[
            ("location", &format!("{P}/login")),
            ("content-location", &format!("https://127.0.0.1:6443{P}/i")),
            ("refresh", &format!("5; url={P}/x")),
            ("set-cookie", &format!("a=1; Path={P}")),
            ("set-cookie", "b=2; Path=/"),
            ("set-cookie", &format!("c=3; Path={P}/api")),
            ("link", &format!("<{P}/s.css>; rel=preload")),
            ("x-other", &format!("{P}/kept")),
        ]);
        shape_response_headers(&mut h, &ctx());
        assert_eq!(values(&h, "location"), ["/login"]);
        assert_eq!(values(&h, "content-location"), ["/i"]);
        assert_eq!(values(&h, "refresh"), ["5; url=/x"]);
        assert_eq!(
            values(&h, "set-cookie"),
            ["a=1; Path=/", "b=2; Path=/", "c=3; Path=/api"]
        );
        assert_eq!(values(&h, "link"), ["</s.css>; rel=preload"]);
        assert_eq!(values(&h, "x-other"), [format!("{P}/kept")]);
    }

    #[test]
    fn html_body_plan_follows_the_api_server() {
        let ok = StatusCode::OK;
        let plan = |pairs: &[(&str, &str)]| body_plan(ok, &headers(pairs)).map(|p| p.coding);
        assert_eq!(
            plan(&[("content-type", "text/html")]),
            Some(Coding::Identity)
        );
        assert_eq!(
            plan(&[("content-type", " text/html ; charset=utf-8")]),
            Some(Coding::Identity)
        );
        assert_eq!(
            plan(&[("content-type", "text/html"), ("content-encoding", "gzip")]),
            Some(Coding::Gzip)
        );
        assert_eq!(
            plan(&[
                ("content-type", "text/html"),
                ("content-encoding", "deflate")
            ]),
            Some(Coding::Deflate)
        );
        assert_eq!(
            plan(&[("content-type", "text/html"), ("content-encoding", "br")]),
            Some(Coding::Brotli)
        );
        assert_eq!(
            plan(&[("content-type", "text/html"), ("content-encoding", "zstd")]),
            None
        );
        assert_eq!(
            plan(&[
                ("content-type", "text/html"),
                ("content-encoding", "gzip, br")
            ]),
            None
        );
        assert_eq!(plan(&[("content-type", "Text/HTML")]), None);
        assert_eq!(plan(&[("content-type", "application/xhtml+xml")]), None);
        assert_eq!(plan(&[("content-type", "text/css")]), None);
        assert_eq!(plan(&[]), None);
        assert_eq!(
            plan(&[("content-type", "text/html; charset=utf-16le")]),
            None
        );
        assert_eq!(
            plan(&[("content-type", "text/html; charset=iso-2022-jp")]),
            None
        );
        assert!(plan(&[("content-type", "text/html; charset=windows-1251")]).is_some());
        assert!(plan(&[("content-type", "text/html; charset=no-such-charset")]).is_some());
        let html = headers(&[("content-type", "text/html")]);
        assert!(body_plan(StatusCode::PARTIAL_CONTENT, &html).is_none());
        assert!(body_plan(StatusCode::NOT_MODIFIED, &html).is_none());
        assert!(body_plan(StatusCode::NOT_FOUND, &html).is_some());
    }

    #[test]
    fn rewritten_responses_lose_length_and_encoding() {
        let (mut parts, ()) = http::Response::builder()
            .header("content-type", "text/html")
            .header("content-encoding", "gzip")
            .header("content-length", "123")
            .header("etag", "\"abc\"")
            .header("vary", "Cookie")
            .header("accept-ranges", "bytes")
            .body(())
            .expect("response")
            .into_parts();
        let body = shape_response(
            &mut parts,
            http_body_util::Empty::<bytes::Bytes>::new(),
            &ctx(),
        );
        assert!(body.is_rewritten());
        assert!(parts.headers.get("content-length").is_none());
        assert!(parts.headers.get("content-encoding").is_none());
        assert!(parts.headers.get("accept-ranges").is_none());
        assert_eq!(values(&parts.headers, "etag"), ["W/\"abc\""]);
        assert_eq!(
            values(&parts.headers, "vary"),
            ["Cookie", "Accept-Encoding"]
        );
    }

    #[test]
    fn identity_html_keeps_encoding_headers_and_others_pass_untouched() {
        let (mut parts, ()) = http::Response::builder()
            .header("content-type", "text/html")
            .header("content-length", "5")
            .header("etag", "W/\"x\"")
            .body(())
            .expect("response")
            .into_parts();
        let body = shape_response(
            &mut parts,
            http_body_util::Empty::<bytes::Bytes>::new(),
            &ctx(),
        );
        assert!(body.is_rewritten());
        assert!(parts.headers.get("content-length").is_none());
        assert!(parts.headers.get("vary").is_none());
        assert_eq!(values(&parts.headers, "etag"), ["W/\"x\""]);

        let (mut parts, ()) = http::Response::builder()
            .status(302)
            .header("content-type", "text/html")
            .header("content-length", "5")
            .header("location", format!("{P}/next"))
            .body(())
            .expect("response")
            .into_parts();
        let body = shape_response(
            &mut parts,
            http_body_util::Empty::<bytes::Bytes>::new(),
            &ctx(),
        );
        assert!(
            !body.is_rewritten(),
            "the API server never rewrites a body with Location"
        );
        assert_eq!(values(&parts.headers, "content-length"), ["5"]);
        assert_eq!(values(&parts.headers, "location"), ["/next"]);
    }

    #[test]
    fn accept_encoding_loses_deflate_and_star() {
        let mut h = headers(&[("accept-encoding", "gzip, deflate, br, zstd")]);
        shape_request_headers(&mut h);
        assert_eq!(values(&h, "accept-encoding"), ["gzip, br, zstd"]);
        let mut h = headers(&[
            ("accept-encoding", "Deflate;q=1"),
            ("accept-encoding", "*;q=0.1"),
        ]);
        shape_request_headers(&mut h);
        assert_eq!(values(&h, "accept-encoding"), ["identity"]);
        let mut h = headers(&[("accept-encoding", "gzip;q=1.0, br")]);
        shape_request_headers(&mut h);
        assert_eq!(values(&h, "accept-encoding"), ["gzip;q=1.0, br"]);
        let mut h = HeaderMap::new();
        shape_request_headers(&mut h);
        assert!(h.is_empty());
    }
}
