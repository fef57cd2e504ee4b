//! [`ShapedBody`]: the response body adapter that un-prefixes HTML while it streams.
//!
//! Three shapes, chosen once by [`crate::shape_response`]:
//! - pass-through: the upstream frames, data and trailers, unchanged;
//! - plain HTML: each data frame is fed to the HTML stage in slices of at most
//!   [`MAX_FEED`] bytes, and whatever it emits goes out at once;
//! - encoded HTML (`gzip` with any number of members, `deflate` as zlib or as the raw DEFLATE the
//!   API server writes, `br`): frames go through an async-compression decoder that yields at most
//!   [`DECODE_BUFFER`] decoded bytes per read (so a small compressed input cannot make a large
//!   output burst), then through the HTML stage; the result is sent as identity. Trailers of
//!   encoded bodies are dropped.
//!
//! Memory per response is therefore bounded by one input slice, one decode buffer and the
//! HTML stage's own cap; the first output is produced as soon as the first chunk is parsed.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use async_compression::tokio::bufread::{BrotliDecoder, DeflateDecoder, GzipDecoder, ZlibDecoder};
use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use lol_html::AsciiCompatibleEncoding;
use pin_project_lite::pin_project;
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

use crate::context::ShapeContext;
use crate::html::{HtmlError, HtmlStream};

/// Largest slice of upstream data handed to the HTML stage at once.
pub const MAX_FEED: usize = 64 << 10;
/// Size of the buffer decoded bytes are read into.
pub const DECODE_BUFFER: usize = 32 << 10;

/// A boxed error, what upstream bodies fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a shaped body failed. The response head has been sent by then, so the gateway can only
/// end the stream; it should log this once.
#[derive(Debug, thiserror::Error)]
pub enum ShapeBodyError {
    /// The upstream body failed (connection reset, timeout, ...).
    #[error("the upstream response body failed: {0}")]
    Upstream(#[source] BoxError),
    /// The body did not decode with its `Content-Encoding`.
    #[error(
        "the upstream response body is not valid `{encoding}` data ({source}); the page was cut short"
    )]
    Decode {
        /// The `Content-Encoding` that was being decoded.
        encoding: &'static str,
        /// The decoder's error.
        #[source]
        source: io::Error,
    },
    /// The HTML stage failed in a way that lost bytes.
    #[error(transparent)]
    Html(#[from] HtmlError),
}

/// A content coding this crate decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Brotli => "br",
        }
    }
}

/// What [`crate::shape_response`] decided for the body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyPlan {
    pub(crate) coding: Coding,
    pub(crate) encoding: Option<AsciiCompatibleEncoding>,
}

pin_project! {
    /// A response body with the API server's prefix removed from HTML, streaming.
    /// Built by [`crate::shape_response`].
    pub struct ShapedBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Passthrough { #[pin] body: B },
        Plain {
            #[pin]
            body: B,
            html: HtmlStream,
            pending: Bytes,
            trailers: Option<HeaderMap>,
            body_done: bool,
            finished: bool,
        },
        Decoded {
            source: Source<B>,
            html: HtmlStream,
            buf: Box<[u8]>,
            body_done: bool,
            finished: bool,
        },
    }
}

impl<B> std::fmt::Debug for ShapedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Passthrough { .. } => "passthrough",
            Kind::Plain { .. } => "html",
            Kind::Decoded { .. } => "decoded html",
        };
        f.debug_struct("ShapedBody").field("kind", &kind).finish()
    }
}

impl<B> ShapedBody<B> {
    /// The body unchanged.
    pub fn passthrough(body: B) -> Self {
        Self {
            kind: Kind::Passthrough { body },
        }
    }

    /// Whether this body is rewritten (as opposed to passed through).
    pub fn is_rewritten(&self) -> bool {
        !matches!(self.kind, Kind::Passthrough { .. })
    }

    pub(crate) fn rewrite(body: B, plan: BodyPlan, ctx: &ShapeContext) -> Self
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let html = HtmlStream::new(ctx, plan.encoding);
        let kind = match plan.coding {
            Coding::Identity => Kind::Plain {
                body,
                html,
                pending: Bytes::new(),
                trailers: None,
                body_done: false,
                finished: false,
            },
            coding => Kind::Decoded {
                source: Source::Detect {
                    reader: BodyReader::new(body),
                    coding,
                },
                html,
                buf: vec![0; DECODE_BUFFER].into_boxed_slice(),
                body_done: false,
                finished: false,
            },
        };
        Self { kind }
    }
}

impl<B> Body for ShapedBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = ShapeBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ShapeBodyError>>> {
        match self.project().kind.project() {
            KindProj::Passthrough { body } => match ready!(body.poll_frame(cx)) {
                Some(Ok(frame)) => Poll::Ready(Some(Ok(
                    frame.map_data(|mut d| d.copy_to_bytes(d.remaining()))
                ))),
                Some(Err(e)) => Poll::Ready(Some(Err(ShapeBodyError::Upstream(e.into())))),
                None => Poll::Ready(None),
            },
            KindProj::Plain {
                body,
                html,
                pending,
                trailers,
                body_done,
                finished,
            } => poll_plain(body, html, pending, trailers, body_done, finished, cx),
            KindProj::Decoded {
                source,
                html,
                buf,
                body_done,
                finished,
            } => poll_decoded(source, html, buf, body_done, finished, cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Passthrough { body } => body.is_end_stream(),
            Kind::Plain { finished, .. } | Kind::Decoded { finished, .. } => *finished,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Passthrough { body } => body.size_hint(),
            _ => SizeHint::default(),
        }
    }
}

fn poll_plain<B>(
    mut body: Pin<&mut B>,
    html: &mut HtmlStream,
    pending: &mut Bytes,
    trailers: &mut Option<HeaderMap>,
    body_done: &mut bool,
    finished: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, ShapeBodyError>>>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    loop {
        if !pending.is_empty() {
            let piece = pending.split_to(pending.len().min(MAX_FEED));
            let out = if html.bailed_out() {
                piece
            } else {
                match html.write(&piece) {
                    Ok(out) => out,
                    Err(e) => return fail(e.into(), pending, trailers, finished),
                }
            };
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(out))));
            }
            continue;
        }
        if *finished {
            return Poll::Ready(trailers.take().map(|t| Ok(Frame::trailers(t))));
        }
        if *body_done {
            *finished = true;
            let out = match html.end() {
                Ok(out) => out,
                Err(e) => return fail(e.into(), pending, trailers, finished),
            };
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(out))));
            }
            continue;
        }
        match ready!(body.as_mut().poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(mut data) => *pending = data.copy_to_bytes(data.remaining()),
                Err(frame) => {
                    if let Ok(t) = frame.into_trailers() {
                        *trailers = Some(t);
                    }
                }
            },
            Some(Err(e)) => {
                return fail(
                    ShapeBodyError::Upstream(e.into()),
                    pending,
                    trailers,
                    finished,
                );
            }
            None => *body_done = true,
        }
    }
}

/// Reports `error` once and ends the body: later polls return `None` without touching the
/// upstream body again.
fn fail(
    error: ShapeBodyError,
    pending: &mut Bytes,
    trailers: &mut Option<HeaderMap>,
    finished: &mut bool,
) -> Poll<Option<Result<Frame<Bytes>, ShapeBodyError>>> {
    *pending = Bytes::new();
    *trailers = None;
    *finished = true;
    Poll::Ready(Some(Err(error)))
}

fn poll_decoded<B>(
    source: &mut Source<B>,
    html: &mut HtmlStream,
    buf: &mut [u8],
    body_done: &mut bool,
    finished: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, ShapeBodyError>>>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    loop {
        if *finished {
            return Poll::Ready(None);
        }
        if *body_done {
            *finished = true;
            let out = html.end()?;
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(out))));
            }
            continue;
        }
        match ready!(source.poll_decoded(cx, buf)) {
            Ok(0) => *body_done = true,
            Ok(n) => {
                let Some(decoded) = buf.get(..n) else {
                    continue;
                };
                let out = match html.write(decoded) {
                    Ok(out) => out,
                    Err(e) => {
                        *finished = true;
                        return Poll::Ready(Some(Err(e.into())));
                    }
                };
                if !out.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
            }
            Err(e) => {
                *finished = true;
                return Poll::Ready(Some(Err(e)));
            }
        }
    }
}

/// The upstream body as an `AsyncBufRead` for the decoders. An upstream error is kept aside so
/// that it is reported as [`ShapeBodyError::Upstream`] rather than as a decoding error. The body
/// is boxed so that the reader can move from detection into a decoder.
struct BodyReader<B> {
    body: Pin<Box<B>>,
    chunk: Bytes,
    eof: bool,
    error: Option<BoxError>,
}

impl<B> BodyReader<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    fn new(body: B) -> Self {
        Self {
            body: Box::pin(body),
            chunk: Bytes::new(),
            eof: false,
            error: None,
        }
    }

    /// Reads frames until at least `n` bytes are buffered or the body ends.
    fn poll_fill_at_least(&mut self, cx: &mut Context<'_>, n: usize) -> Poll<io::Result<()>> {
        while self.chunk.len() < n && !self.eof {
            match ready!(self.body.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Ok(mut data) = frame.into_data() else {
                        continue;
                    };
                    let data = data.copy_to_bytes(data.remaining());
                    self.chunk = if self.chunk.is_empty() {
                        data
                    } else {
                        let mut joined = BytesMut::with_capacity(self.chunk.len() + data.len());
                        joined.extend_from_slice(&self.chunk);
                        joined.extend_from_slice(&data);
                        joined.freeze()
                    };
                }
                Some(Err(e)) => {
                    self.error = Some(e.into());
                    return Poll::Ready(Err(io::Error::other("upstream body failed")));
                }
                None => self.eof = true,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<B> AsyncRead for BodyReader<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_fill_at_least(cx, 1))?;
        let n = this.chunk.len().min(buf.remaining());
        buf.put_slice(this.chunk.get(..n).unwrap_or_default());
        this.chunk.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<B> AsyncBufRead for BodyReader<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        ready!(this.poll_fill_at_least(cx, 1))?;
        Poll::Ready(Ok(&this.chunk))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.chunk.advance(amt.min(this.chunk.len()));
    }
}

/// The decoding side of an encoded page.
enum Source<B> {
    /// Waiting for the first bytes: an empty body (HEAD, 304-like) needs no decoder, and
    /// `deflate` must be told zlib from raw.
    Detect {
        reader: BodyReader<B>,
        coding: Coding,
    },
    Gzip(GzipDecoder<BodyReader<B>>),
    Zlib(ZlibDecoder<BodyReader<B>>),
    Deflate(DeflateDecoder<BodyReader<B>>),
    Brotli(BrotliDecoder<BodyReader<B>>),
    Done,
}

impl<B> Source<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    /// Reads decoded bytes into `buf`; `Ok(0)` at the end.
    fn poll_decoded(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Result<usize, ShapeBodyError>> {
        loop {
            let mut read_buf = ReadBuf::new(buf);
            let (result, coding) = match self {
                Self::Done => return Poll::Ready(Ok(0)),
                Self::Detect { reader, coding } => {
                    let coding = *coding;
                    if let Err(e) = ready!(reader.poll_fill_at_least(cx, 2)) {
                        return Poll::Ready(Err(self.classify(e, coding)));
                    }
                    self.start_decoder();
                    continue;
                }
                Self::Gzip(d) => (
                    ready!(Pin::new(d).poll_read(cx, &mut read_buf)),
                    Coding::Gzip,
                ),
                Self::Zlib(d) => (
                    ready!(Pin::new(d).poll_read(cx, &mut read_buf)),
                    Coding::Deflate,
                ),
                Self::Deflate(d) => (
                    ready!(Pin::new(d).poll_read(cx, &mut read_buf)),
                    Coding::Deflate,
                ),
                Self::Brotli(d) => (
                    ready!(Pin::new(d).poll_read(cx, &mut read_buf)),
                    Coding::Brotli,
                ),
            };
            return Poll::Ready(match result {
                Ok(()) => Ok(read_buf.filled().len()),
                Err(e) => Err(self.classify(e, coding)),
            });
        }
    }

    /// Replaces `Detect` by the decoder its first bytes call for.
    fn start_decoder(&mut self) {
        let Self::Detect { reader, coding } = std::mem::replace(self, Self::Done) else {
            return;
        };
        if reader.chunk.is_empty() && reader.eof {
            return; // nothing to decode: stays `Done`
        }
        *self = match coding {
            Coding::Gzip => {
                let mut d = GzipDecoder::new(reader);
                // Concatenated members are one body (RFC 1952 §2.2); tower-http#737 is what
                // happens otherwise.
                d.multiple_members(true);
                Self::Gzip(d)
            }
            // HTTP `deflate` means zlib (RFC 9110 §8.4.1.2), but apimachinery's `rewriteResponse`
            // re-encodes with Go's `flate.NewWriter`, i.e. raw DEFLATE: tell them apart by the
            // zlib header (CM = 8, window <= 32 KiB, header checksum divisible by 31).
            Coding::Deflate if is_zlib_header(&reader.chunk) => {
                Self::Zlib(ZlibDecoder::new(reader))
            }
            Coding::Deflate => Self::Deflate(DeflateDecoder::new(reader)),
            Coding::Brotli => Self::Brotli(BrotliDecoder::new(reader)),
            Coding::Identity => Self::Done,
        };
    }

    fn reader_error(&mut self) -> Option<BoxError> {
        match self {
            Self::Detect { reader, .. } => reader.error.take(),
            Self::Gzip(d) => d.get_mut().error.take(),
            Self::Zlib(d) => d.get_mut().error.take(),
            Self::Deflate(d) => d.get_mut().error.take(),
            Self::Brotli(d) => d.get_mut().error.take(),
            Self::Done => None,
        }
    }

    fn classify(&mut self, source: io::Error, coding: Coding) -> ShapeBodyError {
        let upstream = self.reader_error();
        *self = Self::Done;
        match upstream {
            Some(e) => ShapeBodyError::Upstream(e),
            None => ShapeBodyError::Decode {
                encoding: coding.name(),
                source,
            },
        }
    }
}

fn is_zlib_header(bytes: &[u8]) -> bool {
    match bytes {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zlib_headers_are_told_from_raw_deflate() {
        assert!(is_zlib_header(&[0x78, 0x9c]));
        assert!(is_zlib_header(&[0x78, 0xda]));
        assert!(is_zlib_header(&[0x78, 0x01]));
        assert!(is_zlib_header(&[0x48, 0x0d]));
        // Raw DEFLATE as Go writes it starts with a dynamic or fixed block.
        assert!(!is_zlib_header(&[0xec, 0xbd]));
        assert!(!is_zlib_header(&[0x78, 0x9d]));
        assert!(!is_zlib_header(&[0x78]));
    }
}
