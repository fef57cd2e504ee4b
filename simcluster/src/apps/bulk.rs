//! `demo/bulk`, for streaming tests: `/bytes/<n>` streams n bytes in 64 KiB chunks without
//! holding them, `/upload` (POST or PUT) counts the bytes it receives as they arrive,
//! `/events?count=&interval_ms=` emits watch-like JSON lines over time, `/sse` the same as
//! server-sent events.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::json;

use super::{AppState, RespFuture, query_param};
use crate::body::{BoxError, Resp, json as json_resp, respond};

const CHUNK: usize = 64 * 1024;

fn bytes_stream(total: u64) -> Resp {
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let stream = futures_util::stream::unfold(total, move |left| {
        let chunk = chunk.clone();
        async move {
            if left == 0 {
                return None;
            }
            let n = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
            Some((
                Ok::<_, BoxError>(http_body::Frame::data(chunk.slice(..n))),
                left - n as u64,
            ))
        }
    });
    let mut resp = http::Response::new(http_body_util::StreamBody::new(stream).boxed());
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&total.to_string()) {
        h.insert(http::header::CONTENT_LENGTH, v);
    }
    resp
}

fn timed_stream(
    count: u64,
    interval: Duration,
    content_type: &'static str,
    line: fn(u64) -> String,
) -> Resp {
    let stream = futures_util::stream::unfold(0u64, move |i| async move {
        if i >= count {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(interval).await;
        }
        Some((
            Ok::<_, BoxError>(http_body::Frame::data(Bytes::from(line(i)))),
            i + 1,
        ))
    });
    let mut resp = http::Response::new(http_body_util::StreamBody::new(stream).boxed());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

fn event_line(i: u64) -> String {
    let mut s = json!({
        "type": if i == 0 { "ADDED" } else { "MODIFIED" },
        "object": {"kind": "Event", "apiVersion": "v1", "metadata": {"name": "bulk-event", "resourceVersion": (i + 1).to_string()}, "message": format!("tick {i}")},
    })
    .to_string();
    s.push('\n');
    s
}

fn sse_line(i: u64) -> String {
    format!("id: {i}\nevent: tick\ndata: {{\"tick\":{i}}}\n\n")
}

pub(crate) fn handle(req: Request<Incoming>, app: Arc<AppState>) -> RespFuture {
    Box::pin(async move {
        let path = req.uri().path().to_owned();
        let count = query_param(&req, "count")
            .and_then(|c| c.parse().ok())
            .unwrap_or(5);
        let interval = Duration::from_millis(
            query_param(&req, "interval_ms")
                .and_then(|c| c.parse().ok())
                .unwrap_or(200),
        );
        match (req.method().clone(), path.as_str()) {
            (Method::GET | Method::HEAD, p) if p.starts_with("/bytes/") => {
                match p["/bytes/".len()..].parse::<u64>() {
                    Ok(n) => bytes_stream(n),
                    Err(_) => respond(400, "text/plain; charset=utf-8", "usage: /bytes/<n>\n"),
                }
            }
            (Method::POST | Method::PUT, "/upload") => {
                let mut body = req.into_body();
                let mut received: u64 = 0;
                while let Some(frame) = body.frame().await {
                    match frame {
                        Ok(f) => {
                            if let Some(d) = f.data_ref() {
                                received += d.len() as u64;
                            }
                        }
                        Err(e) => {
                            return respond(
                                400,
                                "text/plain; charset=utf-8",
                                format!("upload failed: {e}\n"),
                            );
                        }
                    }
                }
                app.last_upload.store(received, Ordering::SeqCst);
                json_resp(200, &json!({"received": received}))
            }
            (Method::GET, "/events") => {
                timed_stream(count, interval, "application/json", event_line)
            }
            (Method::GET, "/sse") => timed_stream(count, interval, "text/event-stream", sse_line),
            (Method::GET | Method::HEAD, "/") => respond(
                200,
                "text/plain; charset=utf-8",
                "bulk: /bytes/<n>, POST /upload, /events?count=N&interval_ms=M, /sse\n",
            ),
            _ => respond(404, "text/plain; charset=utf-8", "404 page not found\n"),
        }
    })
}
