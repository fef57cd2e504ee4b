//! A SPDY/3.1 session over one byte stream, with moby/spdystream's semantics.
//!
//! Contract: [`Session::server`] and [`Session::client`] take an upgraded connection (or any
//! `AsyncRead + AsyncWrite`, a WebSocket tunnel included) and run it in a background task.
//! Streams are [`Stream`]s, which read and write like a socket:
//!
//! - a server answers every `SYN_STREAM` with an empty `SYN_REPLY` at once, as apimachinery's
//!   SPDY connection does before it hands the stream over, and yields it from
//!   [`Incoming::accept`];
//! - a client opens streams with [`Session::open`] (odd ids from 1; a server's are even), and
//!   may write at once, as spdystream's client does without waiting for the reply;
//! - `shutdown` of a stream's write half sends an empty data frame with `FLAG_FIN` (the peer
//!   reads end of file); [`Stream::reset`] sends `RST_STREAM CANCEL` (the peer's reads end,
//!   and its writes fail); dropping a stream that was not finished resets it;
//! - `PING`s of the other side are echoed; `GOAWAY` stops new streams; `SETTINGS` and
//!   `WINDOW_UPDATE` are read and ignored, as spdystream ignores them.
//!
//! Flow control: there is none in spdystream (it never sends `WINDOW_UPDATE` and ignores those
//! it gets), so neither is there here. Back-pressure is the connection's: each stream buffers at
//! most [`STREAM_BUFFER`] chunks, and a reader that falls behind stops the session's reader,
//! as in spdystream (whose frame workers block on a stream's unbuffered channel). One slow
//! stream therefore slows the others of its session; callers that mind use several sessions.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use super::frame::{Decoder, Encoder, FLAG_FIN, Frame, FrameError, Headers, RstStatus};

/// Data chunks a stream holds before the session's reader waits for it.
pub const STREAM_BUFFER: usize = 8;

/// The most one data frame carries when a stream writes (Go's `io.Copy` buffer).
const WRITE_CHUNK: usize = 32 << 10;

/// Frames queued for the writer.
const WRITE_QUEUE: usize = 64;

/// Which side of the session this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Client,
    Server,
}

/// What a stream's reader receives.
#[derive(Debug)]
enum Chunk {
    Data(Bytes),
    /// The peer reset the stream.
    Reset,
}

/// The session's view of one stream.
struct Entry {
    data: mpsc::Sender<Chunk>,
    /// The peer reset it: writes fail.
    reset: Arc<AtomicBool>,
}

/// State shared by the session's tasks and its streams.
struct Shared {
    streams: Mutex<HashMap<u32, Entry>>,
    next_id: AtomicU32,
    /// `GOAWAY` was sent or received, or the connection ended.
    closed: AtomicBool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Entry>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a session or a stream failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the SPDY session is closed")]
    Closed,
    #[error("the SPDY connection failed: {0}")]
    Io(#[from] io::Error),
}

/// A running session: opens streams (client) and closes the session.
#[derive(Clone)]
pub struct Session {
    frames: mpsc::Sender<Frame>,
    shared: Arc<Shared>,
    role: Role,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("role", &self.role).finish()
    }
}

/// The streams a server session accepts.
#[derive(Debug)]
pub struct Incoming {
    streams: mpsc::Receiver<Stream>,
}

impl Incoming {
    /// The next stream the client opened; `None` when the session has ended.
    pub async fn accept(&mut self) -> Option<Stream> {
        self.streams.recv().await
    }
}

impl Session {
    /// The server side of a session over `io`.
    pub fn server<I>(io: I) -> (Session, Incoming)
    where
        I: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (session, incoming) = Self::start(io, Role::Server);
        (session, incoming)
    }

    /// The client side of a session over `io`.
    pub fn client<I>(io: I) -> Session
    where
        I: AsyncRead + AsyncWrite + Send + 'static,
    {
        Self::start(io, Role::Client).0
    }

    fn start<I>(io: I, role: Role) -> (Session, Incoming)
    where
        I: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(io);
        let (frames, queue) = mpsc::channel(WRITE_QUEUE);
        let (accepted, incoming) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            streams: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(if role == Role::Client { 1 } else { 2 }),
            closed: AtomicBool::new(false),
        });
        let session = Session {
            frames,
            shared,
            role,
        };
        tokio::spawn(write_loop(write, queue));
        tokio::spawn(read_loop(read, session.clone(), accepted));
        (session, Incoming { streams: incoming })
    }

    /// Opens a stream with `headers` (`fin`: this side sends nothing on it).
    pub async fn open(&self, headers: Headers, fin: bool) -> Result<Stream, SessionError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(SessionError::Closed);
        }
        let id = self.shared.next_id.fetch_add(2, Ordering::AcqRel);
        if id > 0x7fff_ffff {
            return Err(SessionError::Closed);
        }
        let stream = self.register(id, headers.clone(), fin);
        self.frames
            .send(Frame::SynStream {
                stream: id,
                associated: 0,
                priority: 0,
                flags: if fin { FLAG_FIN } else { 0 },
                headers,
            })
            .await
            .map_err(|_| SessionError::Closed)?;
        Ok(stream)
    }

    /// Says `GOAWAY` and stops new streams; open streams run on.
    pub async fn close(&self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self
            .frames
            .send(Frame::GoAway {
                last_good: 0,
                status: 0,
            })
            .await;
    }

    /// Whether the connection under the session has ended (or `GOAWAY` was exchanged).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Sends a `PING` (keeps idle connections and the proxies on their way alive).
    pub async fn ping(&self, id: u32) -> Result<(), SessionError> {
        self.frames
            .send(Frame::Ping { id })
            .await
            .map_err(|_| SessionError::Closed)
    }

    fn register(&self, id: u32, headers: Headers, finished: bool) -> Stream {
        let (data, received) = mpsc::channel(STREAM_BUFFER);
        let reset = Arc::new(AtomicBool::new(false));
        self.shared.lock().insert(
            id,
            Entry {
                data,
                reset: reset.clone(),
            },
        );
        Stream {
            id,
            headers,
            received,
            pending: Bytes::new(),
            frames: PollSender::new(self.frames.clone()),
            shared: self.shared.clone(),
            reset,
            write_done: finished,
            read_done: false,
        }
    }
}

async fn write_loop<W: AsyncWrite>(write: W, mut queue: mpsc::Receiver<Frame>) {
    tokio::pin!(write);
    let mut encoder = Encoder::new();
    let mut out = BytesMut::with_capacity(64 << 10);
    while let Some(frame) = queue.recv().await {
        out.clear();
        if let Err(err) = encoder.encode(&frame, &mut out) {
            tracing::debug!("SPDY: cannot encode a frame: {err}");
            continue;
        }
        // Coalesce what is already queued into one write.
        while out.len() < (256 << 10) {
            match queue.try_recv() {
                Ok(next) => {
                    if let Err(err) = encoder.encode(&next, &mut out) {
                        tracing::debug!("SPDY: cannot encode a frame: {err}");
                    }
                }
                Err(_) => break,
            }
        }
        if write.write_all(&out).await.is_err() || write.flush().await.is_err() {
            break;
        }
    }
    let _ = write.shutdown().await;
}

async fn read_loop<R: AsyncRead>(read: R, session: Session, accepted: mpsc::Sender<Stream>) {
    tokio::pin!(read);
    let mut decoder = Decoder::new();
    let mut buf = BytesMut::with_capacity(64 << 10);
    let outcome: Result<(), SessionError> = async {
        loop {
            while let Some(frame) = decoder.decode(&mut buf)? {
                if !handle(&session, &accepted, frame).await {
                    return Ok(());
                }
            }
            if buf.capacity() - buf.len() < 16 << 10 {
                buf.reserve(64 << 10);
            }
            if read.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
    }
    .await;
    if let Err(err) = outcome {
        tracing::debug!("SPDY session ended: {err}");
    }
    session.shared.closed.store(true, Ordering::Release);
    // Every stream's reader sees the end.
    let streams: Vec<Entry> = session.shared.lock().drain().map(|(_, e)| e).collect();
    drop(streams);
}

/// Acts on one frame; `false` ends the session.
async fn handle(session: &Session, accepted: &mpsc::Sender<Stream>, frame: Frame) -> bool {
    match frame {
        Frame::SynStream {
            stream,
            flags,
            headers,
            ..
        } => {
            let accept = session.role == Role::Server
                && !session.shared.closed.load(Ordering::Acquire)
                && stream % 2 == 1;
            if !accept {
                let _ = session
                    .frames
                    .send(Frame::RstStream {
                        stream,
                        status: RstStatus::RefusedStream,
                    })
                    .await;
                return true;
            }
            let new = session.register(stream, headers, false);
            if flags & FLAG_FIN != 0 {
                remote_finished(session, stream);
            }
            let replied = session
                .frames
                .send(Frame::SynReply {
                    stream,
                    flags: 0,
                    headers: Vec::new(),
                })
                .await;
            replied.is_ok() && accepted.send(new).await.is_ok()
        }
        Frame::Data { stream, fin, data } => {
            let sender = session.shared.lock().get(&stream).map(|e| e.data.clone());
            if let Some(sender) = sender {
                if !data.is_empty() {
                    // Waits while the stream's reader is behind: the connection's back-pressure.
                    let _ = sender.send(Chunk::Data(data)).await;
                }
                if fin {
                    remote_finished(session, stream);
                }
            }
            true
        }
        Frame::SynReply { stream, flags, .. } | Frame::Headers { stream, flags, .. } => {
            if flags & FLAG_FIN != 0 {
                remote_finished(session, stream);
            }
            true
        }
        Frame::RstStream { stream, .. } => {
            let entry = session.shared.lock().remove(&stream);
            if let Some(entry) = entry {
                entry.reset.store(true, Ordering::Release);
                let _ = entry.data.try_send(Chunk::Reset);
            }
            true
        }
        Frame::Ping { id } => {
            let ours = if session.role == Role::Client { 1 } else { 0 };
            if id % 2 != ours {
                let _ = session.frames.send(Frame::Ping { id }).await;
            }
            true
        }
        Frame::GoAway { .. } => {
            session.shared.closed.store(true, Ordering::Release);
            true
        }
        Frame::Settings { .. } | Frame::WindowUpdate { .. } => true,
    }
}

/// The peer sent its last byte on `stream`: its reader reads end of file after what it has.
fn remote_finished(session: &Session, stream: u32) {
    // Dropping the session's sender ends the receiver once it is drained.
    session.shared.lock().remove(&stream);
}

/// One stream of a session; see the module contract.
pub struct Stream {
    id: u32,
    headers: Headers,
    received: mpsc::Receiver<Chunk>,
    pending: Bytes,
    frames: PollSender<Frame>,
    shared: Arc<Shared>,
    reset: Arc<AtomicBool>,
    /// This side sent `FLAG_FIN` (or `RST_STREAM`).
    write_done: bool,
    read_done: bool,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("id", &self.id).finish()
    }
}

impl Stream {
    /// The stream's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The headers it was opened with.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The value of header `name` (lower case), if the stream was opened with it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Ends the stream abnormally (`RST_STREAM CANCEL`): the peer's reads end and its writes
    /// fail; nothing more is read or written here.
    pub async fn reset(mut self) {
        self.write_done = true;
        self.shared.lock().remove(&self.id);
        let frame = Frame::RstStream {
            stream: self.id,
            status: RstStatus::Cancel,
        };
        if let Some(sender) = self.frames.get_ref() {
            let _ = sender.send(frame).await;
        }
    }

    /// Writes all of `data`, then the end of this side (`FLAG_FIN`).
    pub async fn finish_with(mut self, data: &[u8]) -> io::Result<()> {
        self.write_all(data).await?;
        self.shutdown().await
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.shared.lock().remove(&self.id);
        if !self.write_done
            && let Some(sender) = self.frames.get_ref()
        {
            let _ = sender.try_send(Frame::RstStream {
                stream: self.id,
                status: RstStatus::Cancel,
            });
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if crate::drain(&mut self.pending, buf) {
                return Poll::Ready(Ok(()));
            }
            if self.read_done {
                return Poll::Ready(Ok(()));
            }
            match ready!(self.received.poll_recv(cx)) {
                Some(Chunk::Data(data)) => self.pending = data,
                // A reset ends the reads, as in spdystream (its reader sees end of file).
                Some(Chunk::Reset) | None => self.read_done = true,
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.write_done || self.reset.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if ready!(self.frames.poll_reserve(cx)).is_err() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let n = data.len().min(WRITE_CHUNK);
        let frame = Frame::Data {
            stream: self.id,
            fin: false,
            data: Bytes::copy_from_slice(&data[..n]),
        };
        match self.frames.send_item(frame) {
            Ok(()) => Poll::Ready(Ok(n)),
            Err(_) => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.write_done {
            return Poll::Ready(Ok(()));
        }
        if ready!(self.frames.poll_reserve(cx)).is_err() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let frame = Frame::Data {
            stream: self.id,
            fin: true,
            data: Bytes::new(),
        };
        self.write_done = true;
        match self.frames.send_item(frame) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(_) => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[tokio::test]
    async fn streams_carry_bytes_both_ways_and_fin_is_end_of_file() {
        let (a, b) = duplex(64 << 10);
        let client = Session::client(a);
        let (_server, mut incoming) = Session::server(b);
        let mut up = client
            .open(headers(&[("streamtype", "data"), ("port", "80")]), false)
            .await
            .unwrap();
        let mut down = incoming.accept().await.unwrap();
        assert_eq!(down.header("port"), Some("80"));
        assert_eq!(down.id(), 1);
        up.write_all(b"hello").await.unwrap();
        up.shutdown().await.unwrap();
        let mut got = Vec::new();
        down.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello");
        down.write_all(&vec![7u8; 200_000]).await.unwrap();
        down.shutdown().await.unwrap();
        let mut back = Vec::new();
        up.read_to_end(&mut back).await.unwrap();
        assert_eq!(back.len(), 200_000);
        // After FIN, writing is an error.
        assert!(up.write_all(b"more").await.is_err());
    }

    #[tokio::test]
    async fn a_reset_ends_the_peers_reads_and_fails_its_writes() {
        let (a, b) = duplex(64 << 10);
        let client = Session::client(a);
        let (_server, mut incoming) = Session::server(b);
        let up = client.open(headers(&[("k", "v")]), false).await.unwrap();
        let mut down = incoming.accept().await.unwrap();
        up.reset().await;
        let mut got = Vec::new();
        down.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty());
        // The reset reaches the writer side once the frame is read.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(down.write_all(b"x").await.is_err());
    }

    #[tokio::test]
    async fn many_streams_interleave_on_one_session() {
        let (a, b) = duplex(64 << 10);
        let client = Session::client(a);
        let (_server, mut incoming) = Session::server(b);
        tokio::spawn(async move {
            while let Some(mut stream) = incoming.accept().await {
                tokio::spawn(async move {
                    let mut all = Vec::new();
                    stream.read_to_end(&mut all).await.unwrap();
                    stream.finish_with(&all).await.unwrap();
                });
            }
        });
        let mut tasks = Vec::new();
        for i in 0..50u8 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut s = client
                    .open(headers(&[("n", &i.to_string())]), false)
                    .await
                    .unwrap();
                let payload = vec![i; 10_000 + usize::from(i)];
                s.write_all(&payload).await.unwrap();
                s.shutdown().await.unwrap();
                let mut echo = Vec::new();
                s.read_to_end(&mut echo).await.unwrap();
                assert_eq!(echo, payload);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }

    #[tokio::test]
    async fn the_end_of_the_connection_ends_every_stream() {
        let (a, b) = duplex(64 << 10);
        let client = Session::client(a);
        let (server, mut incoming) = Session::server(b);
        let mut up = client.open(vec![], false).await.unwrap();
        let down = incoming.accept().await.unwrap();
        drop(down);
        drop(incoming);
        drop(server);
        let mut got = Vec::new();
        // The server's reset of the dropped stream ends the read.
        up.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty());
    }
}
