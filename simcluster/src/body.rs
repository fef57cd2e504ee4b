//! The one response body type used by the API server and the sample apps, and helpers to build
//! it from bytes, streams and JSON.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};

/// Any error a body can fail with.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A boxed, streaming response body.
pub(crate) type Body = BoxBody<Bytes, BoxError>;

/// A response with this body type.
pub(crate) type Resp = http::Response<Body>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub(crate) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A response with a body and a content type.
pub(crate) fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut resp = http::Response::new(full(body));
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    if let Ok(value) = http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, value);
    }
    resp
}

/// A JSON response, serialised compactly as the API server does.
pub(crate) fn json(status: u16, value: &serde_json::Value) -> Resp {
    respond(status, "application/json", value.to_string())
}
