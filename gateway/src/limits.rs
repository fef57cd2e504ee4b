//! Limits that keep hostile or broken clients from exhausting the gateway.
//!
//! Contract: [`Limits`] holds every bound applied to client connections; [`Limits::from_env`]
//! reads the defaults below, overridden by `KGATE_*` environment variables (a bad value is
//! logged and the default kept; the server never fails to start over a tuning knob).
//! [`Limits::configure`] applies the HTTP/1 parts to hyper's connection builder,
//! [`Limits::slots`] bounds concurrent connections, and [`Lingering`] wraps each connection so
//! that an error answer written just before closing reaches the client.
//!
//! | limit | default | variable | what a client over it gets |
//! |---|---|---|---|
//! | request head (request line + headers) | 256 KiB | `KGATE_MAX_HEADER_BYTES` | `431 Request Header Fields Too Large`, then close |
//! | header lines per request | 100 (hyper's) | – | `431`, then close |
//! | request target (URL) | 65 534 bytes (hyper's, fixed) | – | `414 URI Too Long`, then close |
//! | time to send a request head, and idle time between keep-alive requests (hyper's timer starts when it waits for a head) | 30 s | `KGATE_HEADER_READ_TIMEOUT` (`30s`, `500ms`, `0` = none) | the connection is closed without an answer |
//! | concurrent client connections, upgraded tunnels included | 4096, or less when the open-file limit is low | `KGATE_MAX_CONNECTIONS` | not accepted until a connection ends (it waits in the listen backlog) |
//!
//! Compatibility with `kubectl proxy` (Go's `net/http` server with no timeouts, 1 MiB for the
//! request head, no connection cap): a normal client never meets these limits. The
//! differences a client can observe are an idle keep-alive connection closed after 30 s (every
//! HTTP client reconnects; Go's own client retries an idempotent request on such a close), a
//! request head over 256 KiB (Go accepts up to 1 MiB plus 4 KiB) and a URL over 64 KiB (Go's
//! only bound is the 1 MiB head), which hyper refuses whatever the head limit.
//!
//! Not bounded on purpose: the time a request body or a response may take. A client that
//! uploads one byte a minute, or reads an answer that slowly, keeps its connection; so do
//! watches, `exec` streams and WebSockets, which are legitimate and long. What bounds such
//! clients is the connection cap, and back-pressure keeps each one's memory fixed.
//!
//! The connection cap is half the soft open-file limit (`RLIMIT_NOFILE`, read from
//! `/proc/self/limits`) minus a reserve, when that is below 4096: a proxied connection can hold
//! two descriptors (the client's and, for upgrades, its own upstream connection), and accepting
//! past the descriptor limit would only fail with `EMFILE`. Go raises its soft limit to the hard
//! limit at start-up; kgate does not (that needs `setrlimit`, i.e. `unsafe` or a new
//! dependency): raise it with `ulimit -n` to serve more connections.
//!
//! Smuggling: hyper itself refuses (`400`, then close) differing duplicate `Content-Length`
//! values, an invalid `Content-Length`, `Transfer-Encoding` in HTTP/1.0 and a
//! `Transfer-Encoding` whose last coding is not `chunked`. A request with both
//! `Transfer-Encoding: chunked` and `Content-Length` is read by `Transfer-Encoding` alone and
//! the connection is closed after the answer, as RFC 9112 §6.3 allows, so no second request can
//! hide in its body; it is not answered 400 because hyper drops the `Content-Length` before the
//! gateway sees the request.
//!
//! Lingering close: when hyper answers a request head it refuses (431, 414, 400) it closes the
//! connection while the client may still be sending; closing a socket with unread input makes
//! the kernel send a reset: a client that is still writing gets a write error and most never
//! read the answer (and some systems discard received data on a reset). As Go's
//! `closeWriteAndWait`, [`Lingering`] shuts down the write side first and then reads and
//! discards client input until the client closes, for at most [`LINGER_TIME`] or
//! [`LINGER_BYTES`], so the client sees the status. It does so when input is waiting unread at
//! that moment, and always after an answer hyper wrote on its own (a response head written
//! with no request handed to the gateway for it): that client was still sending its head, and
//! its next bytes may simply not have arrived yet. Any other close with nothing unread is not
//! delayed. A client that sends more than the bounds allow before reading can see a reset.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::server::conn::http1;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default bound on the request line plus headers (hyper's `max_header_size`).
pub(crate) const DEFAULT_MAX_HEADER_BYTES: usize = 256 * 1024;
/// Default time allowed for a request head, and for idling between keep-alive requests.
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on concurrent client connections (lowered by a low open-file limit).
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Descriptors kept out of the connection budget: listeners, the API server pool, logs, files.
const FD_RESERVE: usize = 64;
/// The smallest head limit accepted (hyper's own minimum read buffer).
const MIN_HEADER_BYTES: usize = 8192;
/// Upper bound of the lingering close (Go waits 500 ms; more time helps a loaded machine).
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(2);
/// Input discarded during a lingering close before giving up (and resetting).
pub(crate) const LINGER_BYTES: usize = 64 << 20;

/// The limits applied to client connections; see the module docs for each one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_header_bytes: usize,
    /// `None`: no timeout (`KGATE_HEADER_READ_TIMEOUT=0`).
    pub(crate) header_read_timeout: Option<Duration>,
    pub(crate) max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            header_read_timeout: Some(DEFAULT_HEADER_READ_TIMEOUT),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl Limits {
    /// The defaults, overridden by `KGATE_MAX_HEADER_BYTES`, `KGATE_HEADER_READ_TIMEOUT` and
    /// `KGATE_MAX_CONNECTIONS`, with the connection cap fitted to the open-file limit.
    pub(crate) fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok();
        let fd_limit = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|text| soft_open_files(&text));
        Self::from_vars(
            var("KGATE_MAX_HEADER_BYTES").as_deref(),
            var("KGATE_HEADER_READ_TIMEOUT").as_deref(),
            var("KGATE_MAX_CONNECTIONS").as_deref(),
            fd_limit,
        )
    }

    fn from_vars(
        header_bytes: Option<&str>,
        header_timeout: Option<&str>,
        connections: Option<&str>,
        fd_limit: Option<usize>,
    ) -> Self {
        let mut limits = Self::default();
        if let Some(text) = header_bytes {
            match text.trim().parse::<usize>() {
                Ok(n) => limits.max_header_bytes = n.max(MIN_HEADER_BYTES),
                Err(_) => bad_value("KGATE_MAX_HEADER_BYTES", text, "a number of bytes"),
            }
        }
        if let Some(text) = header_timeout {
            match parse_duration(text) {
                Some(d) if d.is_zero() => limits.header_read_timeout = None,
                Some(d) => limits.header_read_timeout = Some(d),
                None => bad_value(
                    "KGATE_HEADER_READ_TIMEOUT",
                    text,
                    "a duration like 30s or 500ms",
                ),
            }
        }
        let mut explicit = false;
        if let Some(text) = connections {
            match text.trim().parse::<usize>() {
                Ok(n) if n > 0 => {
                    limits.max_connections = n;
                    explicit = true;
                }
                _ => bad_value("KGATE_MAX_CONNECTIONS", text, "a positive number"),
            }
        }
        if !explicit && let Some(fds) = fd_limit {
            let fitted = (fds.saturating_sub(FD_RESERVE) / 2).max(1);
            limits.max_connections = limits.max_connections.min(fitted);
        }
        limits
    }

    /// Applies the head size and header read timeout to hyper's HTTP/1 builder (which must
    /// already have a timer, or the timeout would panic inside hyper).
    pub(crate) fn configure(&self, http: &mut http1::Builder) {
        // `max_header_size` counts the parsed head exactly; the read buffer's own bound
        // (`max_buf_size`, hyper's default of about 400 KiB) is checked only while a head is
        // incomplete, so a head that arrives whole in one large read could pass it.
        http.max_header_size(self.max_header_bytes.max(MIN_HEADER_BYTES));
        http.header_read_timeout(self.header_read_timeout);
    }

    /// One permit per open client connection.
    pub(crate) fn slots(&self) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(
            self.max_connections.clamp(1, Semaphore::MAX_PERMITS),
        ))
    }
}

fn bad_value(name: &str, text: &str, expected: &str) {
    tracing::warn!("ignoring {name}={text:?}: expected {expected}; using the default");
}

/// `30s`, `500ms`, `2m`, or a bare number of seconds.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        _ => None,
    }
}

/// The soft `Max open files` from the text of `/proc/self/limits`.
fn soft_open_files(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A client connection that closes lingeringly (see the module docs).
///
/// The lingering applies only while [`LingerSwitch::disable`] has not been called: a connection
/// that carries an upgrade request may become a tunnel, whose shutdown is a half-close with the
/// other direction still in use, so its input must never be discarded.
pub(crate) struct Lingering<I> {
    io: I,
    shared: Arc<Shared>,
    /// Response heads written (the start of a write that is an HTTP/1 status line, not 1xx).
    answered: usize,
    phase: Phase,
    /// The connection's slot under the cap, released when the socket is dropped.
    _slot: Option<OwnedSemaphorePermit>,
}

enum Phase {
    Open,
    Draining {
        deadline: Pin<Box<tokio::time::Sleep>>,
        discarded: usize,
        /// hyper answered a head it refused: wait for input even when none is unread yet.
        refused: bool,
    },
    Closed,
}

/// What the request service tells its connection's [`Lingering`].
#[derive(Default)]
struct Shared {
    disabled: AtomicBool,
    /// Requests handed to the service; hyper answers the others (refused heads) itself.
    dispatched: AtomicUsize,
}

/// The request service's handle on its connection's lingering; cheap to clone.
#[derive(Clone)]
pub(crate) struct LingerSwitch(Arc<Shared>);

impl LingerSwitch {
    /// Turns lingering off for the connection (it may become a tunnel).
    pub(crate) fn disable(&self) {
        self.0.disabled.store(true, Ordering::Relaxed);
    }

    /// Counts a request handed to the service, whose answer is then the service's.
    pub(crate) fn dispatched(&self) {
        self.0.dispatched.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether a write starts with a final response's status line (`HTTP/1.x NNN`, not 1xx).
fn is_response_head(buf: &[u8]) -> bool {
    buf.len() > 9 && buf.starts_with(b"HTTP/1.") && buf[8] == b' ' && buf[9] != b'1'
}

impl<I> Lingering<I> {
    /// Wraps `io`, holding `slot` (if any) until it is dropped.
    pub(crate) fn new(
        io: I,
        slot: impl Into<Option<OwnedSemaphorePermit>>,
    ) -> (Self, LingerSwitch) {
        let shared = Arc::new(Shared::default());
        let switch = LingerSwitch(shared.clone());
        (
            Self {
                io,
                shared,
                answered: 0,
                phase: Phase::Open,
                _slot: slot.into(),
            },
            switch,
        )
    }

    /// Notes a response head at the start of the `written` bytes of `buf`.
    fn count_head(&mut self, written: usize, buf: &[u8]) {
        if written > 0 && is_response_head(buf) {
            self.answered += 1;
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Lingering<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.count_head(written, buf);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        this.count_head(written, first);
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.phase {
                Phase::Open => {
                    ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
                    this.phase = if !this.shared.disabled.load(Ordering::Relaxed) {
                        Phase::Draining {
                            deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
                            discarded: 0,
                            refused: this.answered > this.shared.dispatched.load(Ordering::Relaxed),
                        }
                    } else {
                        Phase::Closed
                    };
                }
                Phase::Draining {
                    deadline,
                    discarded,
                    refused,
                } => {
                    if deadline.as_mut().poll(cx).is_ready() || *discarded >= LINGER_BYTES {
                        this.phase = Phase::Closed;
                        continue;
                    }
                    let mut scratch = [0u8; 8192];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut this.io).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                            *discarded += buf.filled().len();
                        }
                        // Nothing unread when the connection closes (every normal close): no
                        // reset can follow, so there is nothing to wait for.
                        Poll::Pending if *discarded == 0 && !*refused => {
                            this.phase = Phase::Closed;
                        }
                        Poll::Pending => return Poll::Pending,
                        // End of input or an error: the client has gone, nothing to protect.
                        Poll::Ready(_) => this.phase = Phase::Closed,
                    }
                }
                Phase::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(Limits::from_vars(None, None, None, None), Limits::default());
        let l = Limits::from_vars(Some("100"), Some("500ms"), Some("7"), Some(1024));
        assert_eq!(l.max_header_bytes, MIN_HEADER_BYTES);
        assert_eq!(l.header_read_timeout, Some(Duration::from_millis(500)));
        assert_eq!(l.max_connections, 7);
        let l = Limits::from_vars(Some("65536"), Some("0"), None, None);
        assert_eq!(l.max_header_bytes, 65536);
        assert_eq!(l.header_read_timeout, None);
    }

    #[test]
    fn bad_values_keep_the_defaults() {
        let l = Limits::from_vars(Some("lots"), Some("soon"), Some("0"), None);
        assert_eq!(l, Limits::default());
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("3h"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn connection_cap_fits_the_open_file_limit() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(soft_open_files(text), Some(1024));
        let l = Limits::from_vars(None, None, None, Some(1024));
        assert_eq!(l.max_connections, (1024 - FD_RESERVE) / 2);
        let l = Limits::from_vars(None, None, None, Some(1 << 20));
        assert_eq!(l.max_connections, DEFAULT_MAX_CONNECTIONS);
        // An explicit cap is the operator's choice, even above the fitted one.
        let l = Limits::from_vars(None, None, Some("5000"), Some(1024));
        assert_eq!(l.max_connections, 5000);
        assert_eq!(soft_open_files("nothing here"), None);
    }

    #[tokio::test]
    async fn lingering_close_discards_input_then_ends() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, server) = tokio::io::duplex(1 << 16);
        let (mut server, _switch) = Lingering::new(server, None);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write.write_all(&[b'x'; 10_000]).await.unwrap();
        server.write_all(b"HTTP/1.1 431 \r\n\r\n").await.unwrap();
        let shutdown = tokio::spawn(async move { server.shutdown().await });
        let mut answer = Vec::new();
        client_read.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"HTTP/1.1 431 \r\n\r\n");
        drop((client_read, client_write));
        shutdown.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_close_with_nothing_unread_is_not_delayed() {
        use tokio::io::AsyncWriteExt;
        let (client, server) = tokio::io::duplex(1 << 16);
        let (mut server, _switch) = Lingering::new(server, None);
        // The client neither sends nor closes: a draining shutdown would wait for it.
        let _client = client;
        server.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn after_hypers_own_answer_the_close_waits_for_input_still_on_its_way() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, server) = tokio::io::duplex(1 << 16);
        let (mut server, _switch) = Lingering::new(server, None);
        // hyper refused a head (no request was dispatched) with nothing unread at that moment:
        // the client is between two writes of its head.
        server
            .write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n")
            .await
            .unwrap();
        let shutdown = tokio::spawn(async move { server.shutdown().await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !shutdown.is_finished(),
            "closed before the rest of the head arrived"
        );
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write.write_all(&[b'h'; 20_000]).await.unwrap();
        let mut answer = Vec::new();
        client_read.read_to_end(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 431"));
        drop((client_read, client_write));
        shutdown.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn after_the_services_answer_a_close_with_nothing_unread_is_not_delayed() {
        use tokio::io::AsyncWriteExt;
        let (client, server) = tokio::io::duplex(1 << 16);
        let (mut server, switch) = Lingering::new(server, None);
        switch.dispatched();
        server
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .unwrap();
        let head = [
            io::IoSlice::new(b""),
            io::IoSlice::new(b"HTTP/1.0 400 Bad\r\n\r\n"),
        ];
        let written = server.write_vectored(&head).await.unwrap();
        assert_eq!(written, head[1].len());
        let _client = client;
        server.shutdown().await.unwrap();
    }

    #[test]
    fn response_heads_are_final_status_lines_only() {
        assert!(is_response_head(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        ));
        assert!(is_response_head(b"HTTP/1.0 200 OK\r\n"));
        assert!(!is_response_head(b"HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(!is_response_head(b"HTTP/1.1"));
        assert!(!is_response_head(b"{\"kind\":\"Status\"}"));
    }

    #[tokio::test]
    async fn disabled_lingering_does_not_read() {
        use tokio::io::AsyncWriteExt;
        let (client, server) = tokio::io::duplex(1 << 16);
        let (mut server, switch) = Lingering::new(server, None);
        switch.disable();
        // Unread input and a client that never closes: a draining shutdown would wait.
        let mut client = client;
        client.write_all(b"more").await.unwrap();
        server.shutdown().await.unwrap();
    }
}
