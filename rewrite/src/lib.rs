//! Response shaping for service origins: undo the API server's proxy prefix, streaming.
//!
//! kgate serves a service at the root of its own origin
//! (`http://grafana.monitoring.svc.localhost:8001/x`) by forwarding to the API server path
//! `<prefix>/x`, with `<prefix>` = `/api/v1/namespaces/monitoring/services/grafana/proxy`. The API
//! server writes that prefix into HTML attributes and `Location` (apimachinery
//! `pkg/util/proxy/transport.go`); this crate takes it out again so the app sees itself at `/`.
//!
//! # Contract for the gateway
//!
//! 1. Build one [`ShapeContext`] per proxied request: the prefix exactly as the gateway spelled it
//!    in the upstream path (up to and including `/proxy`, no trailing slash), the `Host` the
//!    gateway sent to the API server, and the `Host` the browser used for the origin.
//! 2. Before sending, call [`shape_request_headers`] on the upstream request headers (it narrows
//!    `Accept-Encoding`).
//! 3. On the response, call [`shape_response`] with the response head and body and send the
//!    head and the returned [`ShapedBody`] (an [`http_body::Body`] of [`bytes::Bytes`] whose
//!    errors are [`ShapeBodyError`]). For responses without a body worth shaping (upgrades),
//!    [`shape_response_headers`] un-prefixes the headers alone.
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use rewrite::{ShapeContext, shape_response};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let prefix = "/api/v1/namespaces/monitoring/services/grafana/proxy";
//! let ctx = ShapeContext::new(prefix, "10.96.0.1:443", "grafana.monitoring.svc.localhost:8001")?;
//! let upstream = http::Response::builder()
//!     .status(200)
//!     .header("content-type", "text/html; charset=utf-8")
//!     .body(Full::new(Bytes::from(format!("<a href=\"{prefix}/login\">in</a>"))))?;
//! let (mut parts, body) = upstream.into_parts();
//! let body = shape_response(&mut parts, body, &ctx);
//! let page = body.collect().await?.to_bytes();
//! assert_eq!(&page[..], b"<a href=\"/login\">in</a>");
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! Only API-server-proxied service, pod and node responses need this; the kubectl-style API
//! passthrough must not be shaped (the client expects the prefix there).
//!
//! # Guarantees
//!
//! - Non-HTML bodies, HTML the API server did not rewrite, and unknown encodings pass through
//!   untouched, frames and trailers included, with their headers unchanged (apart from the
//!   URL-bearing headers above).
//! - HTML is never buffered whole: output for an input chunk is emitted before the next chunk is
//!   read; memory per response is bounded (see [`ShapeContext::with_max_buffered_bytes`],
//!   [`body::MAX_FEED`], [`body::DECODE_BUFFER`]). When the cap is hit the rest of the page
//!   streams through unrewritten, never truncated.
//! - Bytes outside rewritten attributes are copied verbatim, so a page without prefixed URLs comes
//!   out byte-identical, and the output does not depend on how the input is split.
//!
//! For fuzzing and property tests, [`rewrite_all`] runs the HTML stage and [`shape_bytes`] the
//! whole body path over in-memory input with a chosen chunking, without an async runtime.

pub mod body;
mod context;
mod headers;
mod html;
pub mod urls;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame};

pub use body::{BoxError, ShapeBodyError, ShapedBody};
pub use context::{ContextError, DEFAULT_MAX_BUFFERED_BYTES, Prefix, ShapeContext};
pub use headers::{shape_request_headers, shape_response, shape_response_headers};
pub use html::{API_SERVER_URL_ATTRIBUTES, HtmlError};
pub use urls::{
    unprefix_content_location, unprefix_link, unprefix_location, unprefix_refresh,
    unprefix_set_cookie, unprefix_srcset, unprefix_url,
};

/// Runs the HTML stage over `input` (UTF-8 unless a `<meta charset>` says otherwise), fed in
/// chunks whose sizes cycle through `chunking` (`[]` = one chunk, `0` counts as 1). The output
/// is the same whatever the chunking; that is what the fuzz target and the proptests check.
pub fn rewrite_all(
    input: &[u8],
    ctx: &ShapeContext,
    chunking: &[usize],
) -> Result<Vec<u8>, HtmlError> {
    let mut html = html::HtmlStream::new(ctx, None);
    let mut out = Vec::with_capacity(input.len());
    for chunk in chunks(input, chunking) {
        out.extend_from_slice(&html.write(chunk)?);
    }
    out.extend_from_slice(&html.end()?);
    Ok(out)
}

/// Runs [`shape_response`] and drains the body, without an async runtime: `parts` is shaped in
/// place and the body (`input`, split per `chunking` as in [`rewrite_all`]) is returned.
pub fn shape_bytes(
    parts: &mut http::response::Parts,
    input: &[u8],
    ctx: &ShapeContext,
    chunking: &[usize],
) -> Result<Vec<u8>, ShapeBodyError> {
    let body = MemoryBody {
        chunks: chunks(input, chunking)
            .map(Bytes::copy_from_slice)
            .collect(),
    };
    let mut shaped = std::pin::pin!(shape_response(parts, body, ctx));
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::with_capacity(input.len());
    loop {
        match shaped.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Poll::Ready(Some(Err(e))) => return Err(e),
            Poll::Ready(None) => return Ok(out),
            // In-memory input is always ready, so waiting would never end.
            Poll::Pending => {
                return Err(ShapeBodyError::Upstream("an in-memory body stalled".into()));
            }
        }
    }
}

fn chunks<'a>(input: &'a [u8], chunking: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = input;
    let mut sizes = chunking.iter().cycle();
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = sizes
            .next()
            .map_or(rest.len(), |&s| s.max(1))
            .min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}

/// An in-memory body yielding pre-split chunks.
struct MemoryBody {
    chunks: VecDeque<Bytes>,
}

impl Body for MemoryBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(
            self.get_mut()
                .chunks
                .pop_front()
                .map(|c| Ok(Frame::data(c))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway hands the body to hyper/axum, which need `Send + 'static`.
    #[test]
    fn shaped_bodies_are_send() {
        fn assert_send<T: Send + 'static>(_: &T) {}
        let ctx = ShapeContext::new("/p/proxy", "a", "b").expect("ctx");
        let (mut parts, ()) = http::Response::builder()
            .header("content-type", "text/html")
            .header("content-encoding", "gzip")
            .body(())
            .expect("response")
            .into_parts();
        let body = shape_response(&mut parts, http_body_util::Full::new(Bytes::new()), &ctx);
        assert!(body.is_rewritten());
        assert_send(&body);
    }

    #[test]
    fn chunking_cycles_sizes() {
        let sizes: Vec<usize> = chunks(b"abcdefghij", &[1, 3, 0]).map(<[u8]>::len).collect();
        assert_eq!(sizes, [1, 3, 1, 1, 3, 1]);
        assert_eq!(chunks(b"abc", &[]).count(), 1);
        assert_eq!(chunks(b"", &[2]).count(), 0);
    }
}
