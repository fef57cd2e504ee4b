//! `demo/echo`, one server per named port (`http`, `admin`, `metrics`): answers every request
//! with a JSON description of what it received (method, path, query, headers, which port), and
//! `/status/<code>`, `/redirect?to=<url>` and `/upgrade` (any `Upgrade` echoed as raw bytes)
//! for proxy tests.

use std::sync::Arc;

use http::{HeaderValue, Request, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::json;

use super::{AppState, RespFuture, query_param};
use crate::body::{Resp, json as json_resp, respond};

async fn describe(req: Request<Incoming>, port: &str) -> Resp {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .keys()
        .map(|k| {
            let values: Vec<String> = parts
                .headers
                .get_all(k)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            (k.as_str().to_owned(), json!(values))
        })
        .collect();
    json_resp(
        200,
        &json!({
            "port": port,
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "query": parts.uri.query(),
            "headers": headers,
            "body_bytes": body.len(),
        }),
    )
}

async fn route(req: Request<Incoming>, port: &'static str) -> Resp {
    let path = req.uri().path().to_owned();
    if path == "/upgrade" || req.headers().contains_key(header::UPGRADE) {
        return super::ws::raw_echo(req);
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let code = code
            .parse::<u16>()
            .ok()
            .filter(|c| (200..600).contains(c))
            .unwrap_or(400);
        return respond(
            code,
            "text/plain; charset=utf-8",
            format!("status {code}\n"),
        );
    }
    if path == "/redirect" {
        let to = query_param(&req, "to").unwrap_or_else(|| "/".to_owned());
        let code = query_param(&req, "code")
            .and_then(|c| c.parse().ok())
            .unwrap_or(302);
        let mut resp = respond(code, "text/plain; charset=utf-8", "redirecting\n");
        if let Ok(v) = HeaderValue::from_str(&to) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return resp;
    }
    if path == "/html" {
        // An HTML page whose body is given by `?body=`, for rewriting tests.
        let body = query_param(&req, "body").unwrap_or_default();
        return respond(200, "text/html; charset=utf-8", body);
    }
    describe(req, port).await
}

pub(crate) fn handle_http(req: Request<Incoming>, _app: Arc<AppState>) -> RespFuture {
    Box::pin(route(req, "http"))
}

pub(crate) fn handle_admin(req: Request<Incoming>, _app: Arc<AppState>) -> RespFuture {
    Box::pin(route(req, "admin"))
}

pub(crate) fn handle_metrics(req: Request<Incoming>, _app: Arc<AppState>) -> RespFuture {
    Box::pin(route(req, "metrics"))
}
