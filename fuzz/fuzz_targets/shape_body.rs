//! Fuzzes the whole response path (`rewrite::shape_bytes`): header shaping, the body decision,
//! decoding (gzip, deflate, br) and the HTML stage over arbitrary bytes. It never panics, a
//! body that is not rewritten passes through byte for byte, and a rewritten body loses its
//! `Content-Length` and any real `Content-Encoding`.
//!
//! Input layout: byte 0 picks the content type, byte 1 the content encoding, byte 2 the
//! status and whether a `Location` header is present, byte 3 the chunking; the rest is the
//! body as the API server sent it (already "encoded", i.e. usually invalid compressed data,
//! which must end in an error, never a panic or a hang).
#![no_main]

use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use libfuzzer_sys::fuzz_target;
use rewrite::{ShapeContext, shape_bytes};

const PREFIX: &str = "/api/v1/namespaces/demo/services/shop:http/proxy";
const TYPES: &[&str] = &[
    "text/html",
    "text/html; charset=utf-8",
    "TEXT/HTML; charset=windows-1252",
    "text/html; charset=utf-16le",
    "application/json",
    "text/html;;charset=",
    "",
];
const CODINGS: &[&str] = &["", "gzip", "deflate", "br", "identity", "x-gzip", "gzip, br", "zstd"];
const STATUSES: &[u16] = &[200, 206, 304, 404, 500];

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (head, body) = data.split_at(4);
    let Ok(ctx) = ShapeContext::new(PREFIX, "127.0.0.1:6443", "shop.demo.svc.localhost:8001") else {
        return;
    };
    let mut builder = http::Response::builder()
        .status(STATUSES[usize::from(head[2] >> 1) % STATUSES.len()])
        .header(CONTENT_LENGTH, body.len());
    let content_type = TYPES[usize::from(head[0]) % TYPES.len()];
    if !content_type.is_empty() {
        builder = builder.header(CONTENT_TYPE, content_type);
    }
    let coding = CODINGS[usize::from(head[1]) % CODINGS.len()];
    if !coding.is_empty() {
        builder = builder.header(CONTENT_ENCODING, coding);
    }
    if head[2] & 1 == 1 {
        builder = builder.header(LOCATION, format!("{PREFIX}/login"));
    }
    let Ok(response) = builder.body(()) else { return };
    let (mut parts, ()) = response.into_parts();
    let chunking = [usize::from(head[3] % 32) + 1, usize::from(head[3] / 32) + 1];
    let result = shape_bytes(&mut parts, body, &ctx, &chunking);
    let rewritten = !parts.headers.contains_key(CONTENT_LENGTH);
    if rewritten {
        // Decoded to identity: no `Content-Encoding` left, apart from an explicit `identity`.
        let kept = parts.headers.get(CONTENT_ENCODING);
        assert!(kept.is_none_or(|v| v == "identity"), "a rewritten body kept its encoding {kept:?}");
    } else {
        let out = result.unwrap_or_else(|e| panic!("a pass-through body failed: {e}"));
        assert_eq!(out, body, "a body that is not rewritten was changed");
    }
    if let Some(location) = parts.headers.get(LOCATION) {
        assert_eq!(location, "/login", "Location not un-prefixed");
    }
});
