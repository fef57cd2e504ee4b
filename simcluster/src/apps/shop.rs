//! `demo/shop`: a browser-unfriendly web app, the kind that breaks under a path prefix. Pages
//! use absolute links and assets (`/static/app.js`, `/static/style.css`, `/static/logo.gif`),
//! a login form that redirects and sets a cookie with `Path=/`, JavaScript that calls
//! `fetch('/api/data')` and opens a WebSocket to `/ws` (an echo). Extra pages exercise the
//! API server's rewriting: gzip, raw-deflate and brotli HTML, a `Location` on a 201 with an
//! HTML body, an absolute same-host redirect, CORS headers on `/api/data`, XHTML.

use std::sync::Arc;

use http::{HeaderValue, Method, Request, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::io::AsyncReadExt;

use super::{AppState, RespFuture, query_param};
use crate::body::{Resp, empty, full, respond};

const HTML: &str = "text/html; charset=utf-8";

fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - Shop</title>
<link rel="stylesheet" href="/static/style.css">
<link rel="icon" href="/static/logo.gif">
<script src="/static/app.js" defer></script>
</head>
<body>
<header><a href="/"><img src="/static/logo.gif" alt="Shop" width="16" height="16"></a>
<nav><a href="/">Home</a> | <a href="/products">Products</a> | <a href="/account">Account</a> | <a href="/login">Log in</a> | <a href="https://example.com/help">Help (external)</a></nav></header>
<main>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"#
    )
}

fn home() -> String {
    page(
        "Welcome",
        r#"<p>Everything here uses absolute paths: <a href="/products/1">the first product</a>, <a href="products">a relative link</a>.</p>
<form action="/search" method="get"><input name="q"><button formaction="/search">Search</button></form>
<section><h2>Data from <code>fetch('/api/data')</code></h2><pre id="data">loading...</pre></section>
<section><h2>WebSocket echo on <code>/ws</code></h2><pre id="ws">connecting...</pre></section>"#,
    )
}

const APP_JS: &str = r#"// Absolute paths, as many single-page apps use.
document.addEventListener('DOMContentLoaded', function () {
  fetch('/api/data', {credentials: 'same-origin'})
    .then(function (r) { return r.json(); })
    .then(function (d) { document.getElementById('data').textContent = JSON.stringify(d, null, 2); })
    .catch(function (e) { document.getElementById('data').textContent = 'fetch failed: ' + e; });
  var el = document.getElementById('ws');
  if (!el) { return; }
  var ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
  ws.onopen = function () { ws.send('hello over websocket'); };
  ws.onmessage = function (m) { el.textContent = 'echo: ' + m.data; };
  ws.onerror = function () { el.textContent = 'websocket failed'; };
});
"#;

const STYLE_CSS: &str = "body { font-family: sans-serif; margin: 2em; }\nheader { background: #eef url(/static/logo.gif) no-repeat right; padding: .5em; }\npre { background: #f6f6f6; padding: .5em; }\n";

/// A 1×1 transparent GIF.
const LOGO_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

fn redirect(status: u16, location: &str) -> Resp {
    let mut resp = respond(status, HTML, format!("<a href=\"{location}\">moved</a>\n"));
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn session_of(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix("session="))
        .find(|v| !v.is_empty())
        .map(str::to_owned)
}

async fn encode(encoding: &str, data: &[u8]) -> Vec<u8> {
    use async_compression::tokio::bufread::{BrotliEncoder, DeflateEncoder, GzipEncoder};
    let mut out = Vec::new();
    let _ = match encoding {
        "gzip" => GzipEncoder::new(data).read_to_end(&mut out).await,
        "deflate" => DeflateEncoder::new(data).read_to_end(&mut out).await,
        _ => BrotliEncoder::new(data).read_to_end(&mut out).await,
    };
    out
}

pub(crate) fn handle(req: Request<Incoming>, _app: Arc<AppState>) -> RespFuture {
    Box::pin(async move {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        match (method, path.as_str()) {
            (Method::GET | Method::HEAD, "/") => respond(200, HTML, home()),
            (Method::GET | Method::HEAD, "/products") => {
                let items: String = (1..=3)
                    .map(|i| format!("<li><a href=\"/products/{i}\">Product {i}</a></li>\n"))
                    .collect();
                respond(200, HTML, page("Products", &format!("<ul>\n{items}</ul>")))
            }
            (Method::GET | Method::HEAD, p) if p.starts_with("/products/") => {
                let id = &p["/products/".len()..];
                respond(
                    200,
                    HTML,
                    page(
                        &format!("Product {id}"),
                        r#"<p><a href="/products">Back to the list</a></p>"#,
                    ),
                )
            }
            (Method::GET | Method::HEAD, "/search") => {
                let q = query_param(&req, "q").unwrap_or_default();
                let q = q
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;");
                respond(
                    200,
                    HTML,
                    page(
                        "Search",
                        &format!("<p>No results for <q cite=\"/products\">{q}</q>.</p>"),
                    ),
                )
            }
            (Method::GET | Method::HEAD, "/static/app.js") => {
                respond(200, "text/javascript; charset=utf-8", APP_JS)
            }
            (Method::GET | Method::HEAD, "/static/style.css") => {
                respond(200, "text/css; charset=utf-8", STYLE_CSS)
            }
            (Method::GET | Method::HEAD, "/static/logo.gif") => respond(200, "image/gif", LOGO_GIF),
            (Method::GET | Method::HEAD, "/login") => respond(
                200,
                HTML,
                page(
                    "Log in",
                    r#"<form method="post" action="/login"><label>User <input name="user" value="demo"></label> <label>Password <input name="password" type="password" value="demo"></label> <button>Log in</button></form>"#,
                ),
            ),
            (Method::POST, "/login") => {
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_default();
                let user = url::form_urlencoded::parse(&body)
                    .find(|(k, _)| k == "user")
                    .map(|(_, v)| v.into_owned())
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| "demo".to_owned());
                let mut resp = redirect(302, "/account");
                let user: String = user.chars().filter(char::is_ascii_alphanumeric).collect();
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "session={user}; Path=/; HttpOnly; SameSite=Lax"
                )) {
                    resp.headers_mut().insert(header::SET_COOKIE, v);
                }
                resp
            }
            (Method::GET | Method::HEAD, "/account") => match session_of(&req) {
                Some(user) => respond(
                    200,
                    HTML,
                    page(
                        "Account",
                        &format!(
                            r#"<p>Logged in as <b>{user}</b>. <a href="/logout">Log out</a></p>"#
                        ),
                    ),
                ),
                None => redirect(302, "/login?next=/account"),
            },
            (Method::GET | Method::HEAD, "/logout") => {
                let mut resp = redirect(302, "/");
                resp.headers_mut().insert(
                    header::SET_COOKIE,
                    HeaderValue::from_static("session=; Path=/; Max-Age=0"),
                );
                resp
            }
            (_, "/api/data") => {
                let mut resp = respond(
                    200,
                    "application/json",
                    serde_json::json!({"items": [{"id": 1, "name": "teapot"}, {"id": 2, "name": "kettle"}], "links": {"self": "/api/data"}}).to_string(),
                );
                let h = resp.headers_mut();
                h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
                h.insert(
                    "access-control-allow-credentials",
                    HeaderValue::from_static("true"),
                );
                h.insert(
                    "access-control-allow-methods",
                    HeaderValue::from_static("GET, POST"),
                );
                h.insert(
                    "access-control-allow-headers",
                    HeaderValue::from_static("content-type"),
                );
                resp
            }
            (Method::GET, "/ws") => super::ws::websocket_echo(req),
            (Method::GET | Method::HEAD, "/redirect-absolute") => {
                let host = req
                    .headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("localhost")
                    .to_owned();
                redirect(302, &format!("http://{host}/account"))
            }
            (Method::GET | Method::HEAD, "/located") => {
                // A Location on a non-3xx answer: the API server rewrites it and then leaves
                // the (HTML) body alone.
                let mut resp = respond(
                    201,
                    HTML,
                    page("Created", r#"<a href="/products/1">new product</a>"#),
                );
                resp.headers_mut()
                    .insert(header::LOCATION, HeaderValue::from_static("/products/1"));
                resp
            }
            (Method::GET | Method::HEAD, "/xhtml") => respond(
                200,
                "application/xhtml+xml",
                page("XHTML", r#"<a href="/products">not rewritten</a>"#),
            ),
            (Method::GET | Method::HEAD, p @ ("/gzip" | "/deflate" | "/br")) => {
                let encoding = &p[1..];
                let html = page(
                    &format!("{encoding} page"),
                    r#"<a href="/products">compressed link</a>"#,
                );
                let mut resp = http::Response::new(full(encode(encoding, html.as_bytes()).await));
                let h = resp.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static(HTML));
                if let Ok(v) = HeaderValue::from_str(encoding) {
                    h.insert(header::CONTENT_ENCODING, v);
                }
                resp
            }
            (Method::OPTIONS, _) => {
                let mut resp = http::Response::new(empty());
                *resp.status_mut() = http::StatusCode::NO_CONTENT;
                resp.headers_mut().insert(
                    header::ALLOW,
                    HeaderValue::from_static("GET, HEAD, POST, OPTIONS"),
                );
                resp
            }
            _ => respond(
                404,
                HTML,
                page("Not found", r#"<p><a href="/">Home</a></p>"#),
            ),
        }
    })
}
