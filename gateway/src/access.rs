//! The access log: one line per request (method, path, status, bytes, duration).
//!
//! Contract: [`logged`] wraps a response body so that the line is written when the body is
//! finished or dropped (a watch that the client closes is still logged, with the bytes that
//! were sent). Only the path is logged, never the query string (it can carry tokens) nor any
//! header. When the `kgate::access` target is disabled nothing is wrapped and nothing is
//! allocated, which keeps the hot path lean.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::body::{Body, BoxError};

/// The log target of access lines (enabled from `-v=2`).
pub(crate) const TARGET: &str = "kgate::access";

/// True when access lines are written.
pub(crate) fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::INFO)
}

/// What is known of a request when it arrives.
pub(crate) struct Entry {
    method: Method,
    path: String,
    start: Instant,
}

impl Entry {
    pub(crate) fn new(method: &Method, path: &str) -> Self {
        Self {
            method: method.clone(),
            path: path.to_owned(),
            start: Instant::now(),
        }
    }
}

/// Wraps the response so that its access line is written when the body ends.
pub(crate) fn logged(entry: Entry, res: Response<Body>) -> Response<Body> {
    let status = res.status();
    res.map(|inner| {
        Body::new(Logged {
            inner,
            line: Some(Line {
                entry,
                status,
                bytes: 0,
            }),
        })
    })
}

struct Line {
    entry: Entry,
    status: StatusCode,
    bytes: u64,
}

impl Drop for Line {
    fn drop(&mut self) {
        tracing::info!(
            target: TARGET,
            method = %self.entry.method,
            path = %self.entry.path,
            status = self.status.as_u16(),
            bytes = self.bytes,
            duration_ms = self.entry.start.elapsed().as_secs_f64() * 1000.0,
            "{} {} {}",
            self.entry.method,
            self.entry.path,
            self.status.as_u16(),
        );
    }
}

pin_project_lite::pin_project! {
    struct Logged {
        #[pin]
        inner: Body,
        line: Option<Line>,
    }
}

impl HttpBody for Logged {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(line), Some(data)) = (this.line.as_mut(), frame.data_ref()) {
                    line.bytes += data.len() as u64;
                }
            }
            // End of body (or error): write the line now rather than when hyper drops it.
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => drop(this.line.take()),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
