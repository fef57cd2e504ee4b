//! The one response body type of the gateway, and constructors for the small bodies the
//! gateway writes itself.
//!
//! Contract: upstream bodies are passed through frame by frame (no buffering, so watch and
//! follow streams reach the client as the API server writes them, and back-pressure flows
//! both ways); gateway-made bodies are a single `Bytes` chunk.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};

/// Errors carried inside bodies (hyper's, I/O errors of static files).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Any response body the gateway returns.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body of one chunk.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub(crate) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Wraps any streaming body without reading it.
pub(crate) fn stream<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}
