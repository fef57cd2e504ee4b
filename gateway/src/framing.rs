//! Framing: finds the requests whose length two parsers could read two ways.
//!
//! Contract: a request with both `Content-Length` and `Transfer-Encoding` is the classic
//! smuggling shape (RFC 9112 §6.1: "a server MAY reject a request that contains both ... or
//! process such a request in accordance with the Transfer-Encoding alone", and "such a
//! message might indicate an attempt to perform request smuggling"). hyper takes the second
//! way: it drops `Content-Length` before the gateway sees the request, and closes the
//! connection after the answer. An intermediary should refuse instead (nginx answers 400 since
//! 1.21.1), so the gateway must learn of it, and hyper no longer says.
//!
//! `Framed` wraps a client connection and reads the same bytes hyper reads, as they pass. A
//! small state machine ([`Scanner`]) follows the requests' framing: each request head (found
//! as httparse finds it), then its body by `Content-Length`, or chunk by chunk for
//! `Transfer-Encoding: chunked`, and marks the heads that carry both fields. The count of
//! heads and those marks are shared with the connection's service ([`Verdicts`]), which asks,
//! as hyper hands it request number *n*, whether that request was marked; hyper reads a head
//! before it dispatches it, so the answer is always there in time. When the bytes stop being
//! HTTP the scanner stops for good (a head hyper will refuse anyway, a head over [`MAX_HEAD`]):
//! a mark it could still make would belong to no request. After a request that asks for an
//! upgrade (or `CONNECT`) the next bytes are a tunnel's if the upgrade succeeds, and a request
//! if it is refused; the scanner reads on, but gives up on a head longer than
//! [`AFTER_UPGRADE`], so a tunnel costs it a few KiB at most, once.
//!
//! Cost: a head is searched for its end once and parsed once; a body of known length is
//! skipped by arithmetic; a chunked body costs its size lines.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Heads longer than this are not followed (hyper refuses them with 431 well before).
pub const MAX_HEAD: usize = 1 << 20;

/// The bound on the head after an upgrade request (see the module contract).
pub const AFTER_UPGRADE: usize = 16 << 10;

/// The header fields hyper reads at most (its `max_headers` default).
const MAX_HEADERS: usize = 100;

/// Put in a request's extensions when its head carried both `Content-Length` and
/// `Transfer-Encoding`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AmbiguousLength;

/// What a connection's scanner found, for its service to ask.
#[derive(Debug, Default)]
pub struct Verdicts {
    /// Requests handed to the service so far.
    dispatched: AtomicU64,
    /// Indexes (from 0) of the heads that carry both `Content-Length` and `Transfer-Encoding`.
    ambiguous: Mutex<Vec<u64>>,
}

impl Verdicts {
    /// Called once per request hyper dispatches, in order: whether that request's length is
    /// ambiguous.
    pub fn next_is_ambiguous(&self) -> bool {
        let n = self.dispatched.fetch_add(1, Ordering::Relaxed);
        let mut marked = self
            .ambiguous
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match marked.iter().position(|&i| i == n) {
            Some(at) => {
                marked.swap_remove(at);
                true
            }
            None => false,
        }
    }

    /// The indexes of the heads marked and not yet asked for, in increasing order.
    pub fn marked(&self) -> Vec<u64> {
        let mut marked = self
            .ambiguous
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        marked.sort_unstable();
        marked
    }

    fn mark(&self, head: u64) {
        self.ambiguous
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(head);
    }
}

/// Where the scanner is in the request stream.
#[derive(Debug)]
enum State {
    /// Reading a request head: the bytes so far, how far the end was searched, and the
    /// length at which to give up.
    Head {
        buf: Vec<u8>,
        searched: usize,
        limit: usize,
    },
    /// Skipping this many more body bytes.
    Body(u64),
    /// In a chunked body.
    Chunked(Chunk),
    /// Not following any more.
    Off,
}

/// Where the scanner is in a chunked body.
#[derive(Debug)]
enum Chunk {
    /// Reading a chunk-size line (size, extensions) up to its LF.
    Size { line: Vec<u8> },
    /// Skipping this many more data bytes, then the CRLF after them.
    Data(u64),
    /// Skipping the CRLF after a chunk's data: bytes left of it.
    DataEnd(u8),
    /// After the last chunk: trailer lines, up to an empty line. `line` is the current one.
    Trailer { line: Vec<u8> },
}

/// The request-framing state machine of one connection; see the module contract.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    /// Heads read so far.
    heads: u64,
    /// The bound on the head after the current request's body.
    next: usize,
    verdicts: Arc<Verdicts>,
}

impl Scanner {
    /// A scanner at the start of a connection, marking into `verdicts`.
    pub fn new(verdicts: Arc<Verdicts>) -> Self {
        Self {
            state: fresh_head(MAX_HEAD),
            heads: 0,
            next: MAX_HEAD,
            verdicts,
        }
    }

    /// The request heads read so far.
    pub fn heads(&self) -> u64 {
        self.heads
    }

    /// Whether the scanner still follows the stream (it stops for good where the bytes stop
    /// being HTTP it can follow).
    pub fn following(&self) -> bool {
        !matches!(self.state, State::Off)
    }

    /// Follows `bytes`, the next bytes the client sent.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let used = match &mut self.state {
                State::Off => return,
                State::Body(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    if *left == 0 {
                        self.state = fresh_head(self.next);
                    }
                    // `n` is at most `bytes.len()`, so it fits.
                    usize::try_from(n).unwrap_or(bytes.len())
                }
                State::Chunked(_) => self.chunked(bytes),
                State::Head { .. } => self.head(bytes),
            };
            bytes = &bytes[used..];
        }
    }

    /// Head bytes: accumulate until the head ends, then judge it. Returns the bytes used.
    fn head(&mut self, bytes: &[u8]) -> usize {
        let State::Head {
            buf,
            searched,
            limit,
        } = &mut self.state
        else {
            return bytes.len();
        };
        // Empty lines before a request line are skipped, by httparse and here.
        let mut used = 0;
        if buf.is_empty() {
            while used < bytes.len() && matches!(bytes[used], b'\r' | b'\n') {
                used += 1;
            }
        }
        let start = buf.len();
        buf.extend_from_slice(&bytes[used..]);
        let Some(end) = head_end(buf, (*searched).max(1)) else {
            *searched = buf.len().saturating_sub(2);
            if buf.len() > *limit {
                self.state = State::Off;
            }
            return bytes.len();
        };
        let head = std::mem::take(buf);
        // Bytes of this read past the head's end belong to the body or the next request.
        let used = used + (end - start);
        self.judge(&head[..end]);
        used
    }

    /// A complete head: mark it if ambiguous, and follow its body as hyper will.
    fn judge(&mut self, head: &[u8]) {
        let index = self.heads;
        self.heads += 1;
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut fields);
        let Ok(httparse::Status::Complete(_)) = req.parse(head) else {
            // hyper refuses what httparse cannot read, and closes.
            self.state = State::Off;
            return;
        };
        let mut content_length: Option<u64> = None;
        let mut transfer_encoding: Option<&[u8]> = None;
        for field in req.headers.iter() {
            if field.name.eq_ignore_ascii_case("content-length") {
                let Some(n) = decimal(field.value) else {
                    self.state = State::Off;
                    return;
                };
                if content_length.is_some_and(|m| m != n) {
                    self.state = State::Off;
                    return;
                }
                content_length = Some(n);
            } else if field.name.eq_ignore_ascii_case("transfer-encoding") {
                transfer_encoding = Some(field.value);
            }
        }
        if content_length.is_some() && transfer_encoding.is_some() {
            self.verdicts.mark(index);
        }
        let upgrade = req.method == Some("CONNECT")
            || req
                .headers
                .iter()
                .any(|f| f.name.eq_ignore_ascii_case("upgrade"));
        let next = if upgrade { AFTER_UPGRADE } else { MAX_HEAD };
        self.next = next;
        self.state = match (transfer_encoding, content_length) {
            (Some(te), _) if is_chunked(te) && req.version == Some(1) => {
                State::Chunked(Chunk::Size { line: Vec::new() })
            }
            // hyper refuses a Transfer-Encoding that does not end in chunked, and one in
            // HTTP/1.0.
            (Some(_), _) => State::Off,
            (None, Some(0)) | (None, None) => fresh_head(next),
            (None, Some(n)) => State::Body(n),
        };
    }

    /// Chunked-body bytes. Returns the bytes used.
    fn chunked(&mut self, bytes: &[u8]) -> usize {
        let State::Chunked(chunk) = &mut self.state else {
            return bytes.len();
        };
        match chunk {
            Chunk::Size { line } | Chunk::Trailer { line } => {
                let Some(lf) = bytes.iter().position(|&b| b == b'\n') else {
                    line.extend_from_slice(bytes);
                    if line.len() > MAX_HEAD {
                        self.state = State::Off;
                    }
                    return bytes.len();
                };
                line.extend_from_slice(&bytes[..lf]);
                let line = std::mem::take(line);
                let is_size = matches!(chunk, Chunk::Size { .. });
                self.state = if is_size {
                    match chunk_size(&line) {
                        None => State::Off,
                        Some(0) => State::Chunked(Chunk::Trailer { line: Vec::new() }),
                        Some(n) => State::Chunked(Chunk::Data(n)),
                    }
                } else if line.is_empty() || line == b"\r" {
                    fresh_head(self.next)
                } else {
                    State::Chunked(Chunk::Trailer { line: Vec::new() })
                };
                lf + 1
            }
            Chunk::Data(left) => {
                let n = (*left).min(bytes.len() as u64);
                *left -= n;
                if *left == 0 {
                    *chunk = Chunk::DataEnd(2);
                }
                usize::try_from(n).unwrap_or(bytes.len())
            }
            Chunk::DataEnd(left) => {
                let want: &[u8] = if *left == 2 { b"\r\n" } else { b"\n" };
                let n = usize::from(*left).min(bytes.len());
                if bytes[..n] != want[..n] {
                    self.state = State::Off;
                    return bytes.len();
                }
                *left -= u8::try_from(n).unwrap_or(*left);
                if *left == 0 {
                    *chunk = Chunk::Size { line: Vec::new() };
                }
                n
            }
        }
    }
}

fn fresh_head(limit: usize) -> State {
    State::Head {
        buf: Vec::new(),
        searched: 0,
        limit,
    }
}

/// The length of the head in `buf` (through its empty line), searching from `from`: the first
/// `\n\n` or `\n\r\n` (httparse accepts bare LF line ends).
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let from = from.saturating_sub(1);
    let mut i = from;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some(i + 2);
            }
            if buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

/// hyper's `content_length_parse`: ASCII digits only, no sign, no space, fits in u64.
fn decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// hyper's `is_chunked_`: the last coding of the field is `chunked`.
fn is_chunked(value: &[u8]) -> bool {
    let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
    last.trim_ascii().eq_ignore_ascii_case(b"chunked")
}

/// The size of a chunk-size line (`1a;ext=1\r`): hex digits before any extension.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let size = line.split(|&b| b == b';').next()?.trim_ascii();
    if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(size).ok()?, 16).ok()
}

/// A client connection whose incoming bytes pass through a [`Scanner`].
pub(crate) struct Framed<I> {
    inner: I,
    scanner: Scanner,
}

impl<I> Framed<I> {
    /// Wraps `inner`; the service asks `verdicts` as it gets each request.
    pub(crate) fn new(inner: I) -> (Self, Arc<Verdicts>) {
        let verdicts = Arc::new(Verdicts::default());
        let scanner = Scanner::new(verdicts.clone());
        (Self { inner, scanner }, verdicts)
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Framed<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            this.scanner.feed(&buf.filled()[before..]);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Framed<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The marks a stream gets, fed in pieces of `chunk` bytes, as (heads, ambiguous indexes).
    fn scan(stream: &[u8], chunk: usize) -> (u64, Vec<u64>) {
        let verdicts = Arc::new(Verdicts::default());
        let mut scanner = Scanner::new(verdicts.clone());
        for piece in stream.chunks(chunk.max(1)) {
            scanner.feed(piece);
        }
        (scanner.heads(), verdicts.marked())
    }

    const GET: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    const POST_CL: &[u8] = b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    const POST_TE: &[u8] =
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nT: 1\r\n\r\n";
    const BOTH: &[u8] = b"POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    const BOTH_TE_FIRST: &[u8] = b"POST /e HTTP/1.1\r\nHost: x\r\ntransfer-encoding: gzip, chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n";

    #[test]
    fn each_head_is_found_however_the_stream_is_cut() {
        let stream = [GET, POST_CL, POST_TE, b"\r\n", GET].concat();
        for chunk in [1, 2, 3, 7, 64, 4096] {
            assert_eq!(scan(&stream, chunk), (4, vec![]), "pieces of {chunk}");
        }
    }

    #[test]
    fn both_lengths_are_marked_in_either_order_and_the_stream_is_still_followed() {
        let stream = [GET, BOTH, GET, BOTH_TE_FIRST, POST_CL].concat();
        for chunk in [1, 5, 4096] {
            assert_eq!(scan(&stream, chunk), (5, vec![1, 3]), "pieces of {chunk}");
        }
    }

    #[test]
    fn a_body_that_looks_like_a_head_is_a_body() {
        let body = b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let post = [
            format!(
                "POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
            body,
        ]
        .concat();
        assert_eq!(scan(&[&post[..], GET].concat(), 3), (2, vec![]));
        let chunked = [
            b"POST /g HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".as_slice(),
            format!("{:x}\r\n", body.len()).as_bytes(),
            body,
            b"\r\n0\r\n\r\n",
            GET,
        ]
        .concat();
        assert_eq!(scan(&chunked, 2), (2, vec![]));
    }

    #[test]
    fn what_hyper_refuses_stops_the_scan() {
        // Not HTTP, a bad length, a Transfer-Encoding that is not chunked, HTTP/1.0 with one:
        // hyper answers 400 and closes, so nothing after it can be a request.
        for stream in [
            b"\x16\x03\x01 not http\r\n\r\n".as_slice(),
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            let (_, marked) = scan(&[stream, BOTH].concat(), 4096);
            assert!(marked.is_empty(), "{}", String::from_utf8_lossy(stream));
        }
    }

    #[test]
    fn a_tunnel_after_an_upgrade_costs_a_bounded_look() {
        let upgrade =
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
        // A refused upgrade is followed by requests, which are still read.
        assert_eq!(scan(&[upgrade.as_slice(), BOTH].concat(), 9), (2, vec![1]));
        // A tunnel's frames without a head end: given up after the bound.
        let verdicts = Arc::new(Verdicts::default());
        let mut scanner = Scanner::new(verdicts);
        scanner.feed(upgrade);
        let frame = [0x82u8; 1000];
        for _ in 0..(AFTER_UPGRADE / frame.len() + 1) {
            scanner.feed(&frame);
        }
        assert!(matches!(scanner.state, State::Off));
    }

    #[test]
    fn verdicts_are_asked_in_dispatch_order() {
        let verdicts = Verdicts::default();
        verdicts.mark(1);
        assert!(!verdicts.next_is_ambiguous());
        assert!(verdicts.next_is_ambiguous());
        assert!(!verdicts.next_is_ambiguous());
    }

    #[test]
    fn a_head_without_end_is_followed_up_to_its_bound() {
        let verdicts = Arc::new(Verdicts::default());
        let mut scanner = Scanner::new(verdicts);
        scanner.feed(b"GET / HTTP/1.1\r\n");
        let line = [b'a'; 1024];
        for _ in 0..(MAX_HEAD / line.len() + 1) {
            scanner.feed(&line);
        }
        assert!(matches!(scanner.state, State::Off));
    }

    #[test]
    fn field_values_as_hyper_reads_them() {
        assert_eq!(decimal(b"0"), Some(0));
        assert_eq!(decimal(b"+1"), None);
        assert_eq!(decimal(b""), None);
        assert!(is_chunked(b"gzip, Chunked"));
        assert!(!is_chunked(b"chunked, gzip"));
        assert_eq!(chunk_size(b"1A;name=v\r"), Some(26));
        assert_eq!(chunk_size(b"\r"), None);
        assert_eq!(chunk_size(b"12345678901234567\r"), None);
    }
}
