//! Whole pages as the API server hands them to kgate, in every encoding, split every way.
#![expect(
    clippy::expect_used,
    reason = "helpers of this test binary fail the test by panicking"
)]

use http::response::Parts;
use proptest::prelude::*;
use rewrite::{ShapeBodyError, ShapeContext, rewrite_all, shape_bytes};
use tokio::io::AsyncReadExt;

const P: &str = "/api/v1/namespaces/monitoring/services/https:grafana:3000/proxy";
const API: &str = "10.96.0.1:443";
const ORIGIN: &str = "grafana.monitoring.svc.localhost:8001";

fn ctx() -> ShapeContext {
    ShapeContext::new(P, API, ORIGIN).expect("valid context")
}

/// A page as the app serves it, with `{P}` where the API server adds its prefix and `{H}`
/// where it keeps the request host of a same-host absolute URL. Attributes are written the way
/// x/net/html re-serialises them (`key="value"`, lower case).
const APP_PAGE: &str = r##"<!DOCTYPE html>
<html manifest="{P}/app.appcache"><head profile="{P}/profile">
<meta charset="utf-8"><meta http-equiv="refresh" content="300; url={P}/dashboard?refresh=1">
<base href="{P}/">
<link rel="stylesheet" href="{P}/public/build/app.css?v=9">
<link rel="preload" as="image" imagesrcset="{P}/img/hero-1x.png 1x, {P}/img/hero-2x.png 2x">
<script src="{P}/public/build/runtime.js" defer=""></script>
<script>window.grafanaBootData = {"appSubUrl": "", "login": "/login"};</script>
<style>body { background: url(/public/img/bg.png) }</style>
</head><body background="{P}/public/img/bg.png">
<nav><a href="{P}/">Home</a> | <a href="{P}/dashboards?folder=1&amp;sort=name">Dashboards</a>
 | <a href="https://{H}{P}/explore">Explore</a> | <a href="relative/page">Relative</a>
 | <a href="#top">Top</a> | <a href="https://grafana.com/docs/">Docs</a>
 | <a href="{P}?tab=1">Root query</a></nav>
<form action="{P}/login" method="post"><input type="image" src="{P}/img/go.png" formaction="{P}/login/alt">
<button formaction="{P}/logout">Out</button></form>
<img src="{P}/img/logo.svg" srcset="{P}/img/logo-1x.png 1x, {P}/img/logo-2x.png 2x" usemap="{P}/map#m" longdesc="{P}/desc">
<picture><source src="{P}/v.webm" srcset="{P}/img/a.webp 480w, https://cdn.example/{P}/b.webp 800w"></picture>
<video poster="{P}/img/poster.jpg" src="{P}/v.mp4"></video><audio src="{P}/a.ogg"></audio>
<iframe src="{P}/embed" longdesc="{P}/embed-desc"></iframe><embed src="{P}/flash.swf">
<object data="{P}/o.bin" codebase="{P}/o/" classid="{P}/cls" usemap="{P}/om"></object>
<blockquote cite="{P}/quote">q</blockquote><q cite="{P}/q">q</q><del cite="{P}/d">d</del><ins cite="{P}/i">i</ins>
<map name="m"><area href="{P}/area" alt="a"></map>
<div data-url="/api/data" title="{P}/not-a-url-attribute">fetch('/api/data')</div>
<!-- <a href="{P}/commented"> -->
<textarea><a href="{P}/in-textarea"></textarea>
</body></html>
"##;

/// What the API server produced from `APP_PAGE` (prefix in every attribute it rewrites).
fn api_server_page() -> String {
    APP_PAGE.replace("{P}", P).replace("{H}", API)
}

/// What the app meant: the same page with the prefix taken out of the attributes kgate handles.
/// Comments, text, `<textarea>` content and non-URL attributes keep it.
fn expected_page() -> String {
    api_server_page()
        .replace(&format!("https://{API}{P}/explore"), "/explore")
        .replace(
            &format!("https://cdn.example/{P}"),
            "https://cdn.example/{KEEP}",
        )
        .replace(
            &format!("\"{P}/not-a-url-attribute"),
            "\"{KEEP}/not-a-url-attribute",
        )
        .replace(&format!("<!-- <a href=\"{P}"), "<!-- <a href=\"{KEEP}")
        .replace(
            &format!("<textarea><a href=\"{P}"),
            "<textarea><a href=\"{KEEP}",
        )
        .replace(&format!("{P}?"), "/?")
        .replace(&format!("{P}/"), "/")
        .replace("{KEEP}", P)
}

fn parts(pairs: &[(&str, &str)]) -> Parts {
    let mut builder = http::Response::builder();
    for (k, v) in pairs {
        builder = builder.header(*k, *v);
    }
    builder.body(()).expect("response").into_parts().0
}

#[derive(Clone, Copy, Debug)]
enum Enc {
    Gzip,
    GzipTwoMembers,
    RawDeflate,
    ZlibDeflate,
    Brotli,
}

fn encode(enc: Enc, data: &[u8]) -> Vec<u8> {
    use async_compression::tokio::bufread::{
        BrotliEncoder, DeflateEncoder, GzipEncoder, ZlibEncoder,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut out = Vec::new();
        match enc {
            Enc::Gzip => GzipEncoder::new(data).read_to_end(&mut out).await,
            Enc::GzipTwoMembers => {
                let (a, b) = data.split_at(data.len() / 2);
                GzipEncoder::new(a)
                    .read_to_end(&mut out)
                    .await
                    .expect("gzip");
                GzipEncoder::new(b).read_to_end(&mut out).await
            }
            Enc::RawDeflate => DeflateEncoder::new(data).read_to_end(&mut out).await,
            Enc::ZlibDeflate => ZlibEncoder::new(data).read_to_end(&mut out).await,
            Enc::Brotli => BrotliEncoder::new(data).read_to_end(&mut out).await,
        }
        .expect("encode");
        out
    })
}

fn coding_name(enc: Enc) -> &'static str {
    match enc {
        Enc::Gzip | Enc::GzipTwoMembers => "gzip",
        Enc::RawDeflate | Enc::ZlibDeflate => "deflate",
        Enc::Brotli => "br",
    }
}

#[test]
fn api_server_page_comes_back_as_the_app_wrote_it() {
    let out = rewrite_all(api_server_page().as_bytes(), &ctx(), &[]).expect("rewrite");
    let out = String::from_utf8(out).expect("utf-8");
    assert_eq!(out, expected_page());
    // Spot checks, so that a wrong `expected_page` cannot hide a regression.
    assert!(out.contains(r#"<base href="/">"#));
    assert!(out.contains(r#"<a href="/dashboards?folder=1&amp;sort=name">"#));
    assert!(out.contains(r#"<a href="/?tab=1">"#));
    assert!(out.contains(r#"content="300; url=/dashboard?refresh=1""#));
    assert!(out.contains(r#"srcset="/img/logo-1x.png 1x, /img/logo-2x.png 2x""#));
    assert!(out.contains(r#"<a href="/explore">"#));
}

#[test]
fn plain_html_response_is_shaped_with_headers() {
    let page = api_server_page();
    let mut head = parts(&[
        ("content-type", "text/html; charset=utf-8"),
        ("content-length", &page.len().to_string()),
        (
            "set-cookie",
            &format!("grafana_session=abc; Path={P}/; HttpOnly"),
        ),
    ]);
    let out = shape_bytes(&mut head, page.as_bytes(), &ctx(), &[1000]).expect("shape");
    assert_eq!(String::from_utf8(out).expect("utf-8"), expected_page());
    assert!(head.headers.get("content-length").is_none());
    assert_eq!(
        head.headers["set-cookie"],
        "grafana_session=abc; Path=/; HttpOnly"
    );
}

#[test]
fn encoded_pages_are_decoded_rewritten_and_sent_as_identity() {
    let page = api_server_page().repeat(40);
    let expected = expected_page().repeat(40);
    for enc in [
        Enc::Gzip,
        Enc::GzipTwoMembers,
        Enc::RawDeflate,
        Enc::ZlibDeflate,
        Enc::Brotli,
    ] {
        let body = encode(enc, page.as_bytes());
        for chunking in [&[][..], &[1][..], &[7, 1, 300][..], &[4096][..]] {
            let mut head = parts(&[
                ("content-type", "text/html"),
                ("content-encoding", coding_name(enc)),
                ("content-length", &body.len().to_string()),
            ]);
            let out = shape_bytes(&mut head, &body, &ctx(), chunking)
                .unwrap_or_else(|e| panic!("{enc:?} {chunking:?}: {e}"));
            assert!(
                out == expected.as_bytes(),
                "{enc:?} {chunking:?}: output differs"
            );
            assert!(head.headers.get("content-encoding").is_none(), "{enc:?}");
            assert!(head.headers.get("content-length").is_none(), "{enc:?}");
            assert_eq!(head.headers["vary"], "Accept-Encoding", "{enc:?}");
        }
    }
}

#[test]
fn empty_encoded_bodies_are_empty() {
    for coding in ["gzip", "deflate", "br"] {
        let mut head = parts(&[("content-type", "text/html"), ("content-encoding", coding)]);
        assert_eq!(
            shape_bytes(&mut head, b"", &ctx(), &[])
                .expect("empty")
                .len(),
            0
        );
    }
}

#[test]
fn corrupt_encoded_bodies_fail_with_a_decode_error() {
    let mut head = parts(&[("content-type", "text/html"), ("content-encoding", "gzip")]);
    let err = shape_bytes(&mut head, b"this is not gzip", &ctx(), &[]).expect_err("corrupt");
    assert!(
        matches!(
            err,
            ShapeBodyError::Decode {
                encoding: "gzip",
                ..
            }
        ),
        "{err}"
    );
    let mut truncated = encode(Enc::Gzip, api_server_page().as_bytes());
    truncated.truncate(truncated.len() / 2);
    let mut head = parts(&[("content-type", "text/html"), ("content-encoding", "gzip")]);
    let err = shape_bytes(&mut head, &truncated, &ctx(), &[]).expect_err("truncated");
    assert!(matches!(err, ShapeBodyError::Decode { .. }), "{err}");
}

#[test]
fn bodies_the_api_server_did_not_rewrite_pass_through_byte_for_byte() {
    let page = api_server_page();
    let zstd_like = b"\x28\xb5\x2f\xfd not really zstd".to_vec();
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<u8>);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![("content-type", "application/json")],
            page.clone().into_bytes(),
        ),
        (
            vec![("content-type", "text/css")],
            page.clone().into_bytes(),
        ),
        (
            vec![("content-type", "application/xhtml+xml")],
            page.clone().into_bytes(),
        ),
        (
            vec![("content-type", "text/html"), ("content-encoding", "zstd")],
            zstd_like,
        ),
        (
            vec![("content-type", "text/html; charset=utf-16le")],
            page.clone().into_bytes(),
        ),
        (
            vec![("content-type", "text/html"), ("location", "/elsewhere")],
            page.clone().into_bytes(),
        ),
        (vec![], page.into_bytes()),
    ];
    for (headers, body) in cases {
        let mut head = parts(&headers);
        let before = head.headers.clone();
        let out = shape_bytes(&mut head, &body, &ctx(), &[13]).expect("pass");
        assert!(out == body, "{headers:?}: body changed");
        if !headers.iter().any(|(k, _)| *k == "location") {
            assert_eq!(head.headers, before, "{headers:?}: headers changed");
        }
    }
}

#[test]
fn legacy_charsets_are_rewritten_without_touching_other_bytes() {
    // windows-1251 Cyrillic text around a prefixed link.
    let mut page = b"<p>\xcf\xf0\xe8\xe2\xe5\xf2</p><a href=\"".to_vec();
    page.extend_from_slice(P.as_bytes());
    page.extend_from_slice(b"/\xf1\xf2\xf0\">\xf2</a>");
    let mut head = parts(&[("content-type", "text/html; charset=windows-1251")]);
    let out = shape_bytes(&mut head, &page, &ctx(), &[5]).expect("shape");
    assert_eq!(
        out,
        b"<p>\xcf\xf0\xe8\xe2\xe5\xf2</p><a href=\"/\xf1\xf2\xf0\">\xf2</a>".to_vec()
    );
}

#[test]
fn memory_cap_bails_out_to_pass_through_without_truncating() {
    let ctx = ctx().with_max_buffered_bytes(16 << 10);
    let huge = "A".repeat(200 << 10);
    let page = format!(
        "<a href=\"{P}/before\">b</a><img src=\"{P}/x\" alt=\"{huge}\"><a href=\"{P}/after\">a</a>"
    );
    let out = rewrite_all(page.as_bytes(), &ctx, &[4096]).expect("bail-out is graceful");
    let out = String::from_utf8(out).expect("utf-8");
    assert!(
        out.starts_with("<a href=\"/before\">b</a>"),
        "rewritten up to the bail-out"
    );
    assert!(
        out.ends_with(&format!("<a href=\"{P}/after\">a</a>")),
        "the rest passes through"
    );
    assert_eq!(
        out.len(),
        page.len() - P.len(),
        "nothing lost, nothing doubled"
    );
}

/// Fragments of API-server output, some with the prefix, some tricky for a tokenizer.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(format!("<a href=\"{P}/x?a=1&amp;b=2\">link</a>")),
        Just(format!("<img src=\"{P}/i.png\" srcset=\"{P}/i2.png 2x\">")),
        Just(format!("<form action=\"https://{API}{P}/f\"></form>")),
        Just(format!(
            "<meta http-equiv=\"refresh\" content=\"0;url={P}/r\">"
        )),
        Just(format!("<base href=\"{P}/\">")),
        Just(format!("<script src={P}/s.js></script>")),
        Just(format!("<script>var u = '<a href=\"{P}/js\">';</script>")),
        Just(format!("<!-- {P} <a href=\"{P}\"> -->")),
        Just("<textarea><img src=\"/t\"></textarea>".to_owned()),
        Just("<a href='/x' class=c>t</a>".to_owned()),
        Just("<p>text &amp; more</p>\n".to_owned()),
        Just("<![CDATA[ x ]]><?pi?>".to_owned()),
        Just("<svg><a href=\"/s\"/></svg>".to_owned()),
        Just("<".to_owned()),
        Just("</".to_owned()),
        "[a-z<>/=\" ]{0,12}",
    ]
}

fn page() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..40).prop_map(|f| f.concat())
}

fn chunking() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..80, 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn output_does_not_depend_on_chunking(page in page(), chunking in chunking()) {
        let whole = rewrite_all(page.as_bytes(), &ctx(), &[]).expect("whole");
        let split = rewrite_all(page.as_bytes(), &ctx(), &chunking).expect("split");
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn pages_without_the_prefix_are_byte_identical(
        page in page().prop_map(|p| p.replace(P, "/app")),
        chunking in chunking(),
    ) {
        let out = rewrite_all(page.as_bytes(), &ctx(), &chunking).expect("rewrite");
        prop_assert_eq!(out, page.into_bytes());
    }

    #[test]
    fn arbitrary_bytes_without_the_prefix_are_byte_identical(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        chunking in chunking(),
    ) {
        let out = rewrite_all(&bytes, &ctx(), &chunking).expect("rewrite");
        prop_assert_eq!(out, bytes);
    }

    #[test]
    fn arbitrary_bytes_around_the_prefix_never_fail_and_never_depend_on_chunking(
        parts in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..24),
                Just(P.as_bytes().to_vec()),
                Just(b"<a href=\"".to_vec()),
                Just(b"<img srcset='".to_vec()),
            ],
            0..24,
        ),
        chunking in chunking(),
    ) {
        let input = parts.concat();
        let whole = rewrite_all(&input, &ctx(), &[]).expect("whole");
        let split = rewrite_all(&input, &ctx(), &chunking).expect("split");
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn gzip_output_does_not_depend_on_chunking(page in page(), chunking in chunking()) {
        let body = encode(Enc::GzipTwoMembers, page.as_bytes());
        let expected = rewrite_all(page.as_bytes(), &ctx(), &[]).expect("whole");
        let mut head = parts(&[("content-type", "text/html"), ("content-encoding", "gzip")]);
        let out = shape_bytes(&mut head, &body, &ctx(), &chunking).expect("shape");
        prop_assert_eq!(out, expected);
    }
}
