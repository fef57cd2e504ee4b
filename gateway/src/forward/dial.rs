//! Tunnels to a pod's `portforward` subresource, and the connections inside them.
//!
//! Contract: [`Dialer::open`] gives one forwarded connection to `port` of a pod: a byte
//! stream and where the kubelet's error text will be. Underneath, per pod, a few long-lived
//! SPDY sessions carry many connections each (a pair of streams per connection, with a
//! `requestID`, as client-go's `handleConnection` opens them); a session is opened when the
//! ones there are hold [`STREAMS_PER_SESSION`] connections (up to [`SESSIONS_PER_POD`]), so
//! that one slow reader, which stalls the session it is on (SPDY here has no flow control,
//! as in spdystream), stalls few others.
//!
//! How a session is reached is learned once per dialer, in this order, each step taken only
//! when the server does not offer the one before (any answer but `401`, `403 Forbidden` and
//! `404`):
//!
//! 1. a WebSocket offering `SPDY/3.1+portforward.k8s.io` (KEP-4006; API servers since 1.30,
//!    what kubectl 1.31+ tries first; through proxies that pass WebSockets only);
//! 2. `Upgrade: SPDY/3.1` with `X-Stream-Protocol-Version: portforward.k8s.io` (every API
//!    server; what kubectl falls back to);
//! 3. the kubelet's channel protocol, `v4.channel.k8s.io`: one WebSocket per connection
//!    (`?ports=P`), no multiplexing and no half-close, for a server that tunnels WebSockets to
//!    an older kubelet and nothing else.
//!
//! Everything goes through the caller's `auth::ApiClient` (credentials, exec plugins and
//! their refresh on `401`, TLS, proxy, impersonation). kube-rs's `Portforwarder` is not used:
//! it runs only on a `kube::Client`, which is a second credential and TLS stack beside this
//! one, and it speaks the channel protocol alone (a WebSocket per connection).

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use portforward::channel::{self, ClientStream, ErrorText, Framing};
use portforward::protocol::{
    PORT, PORTFORWARD_V1, REQUEST_ID, STREAM_TYPE, STREAM_TYPE_DATA, STREAM_TYPE_ERROR,
    TUNNELED_PORTFORWARD_V1,
};
use portforward::spdy::{Session, Stream};
use portforward::tunnel::ByteStream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// Connections one session carries before another is opened to the same pod.
pub const STREAMS_PER_SESSION: usize = 32;

/// Sessions kept per pod; beyond them, connections share the least loaded.
pub const SESSIONS_PER_POD: usize = 8;

/// How a dialer reaches the subresource; see the module contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// SPDY inside a WebSocket.
    SpdyOverWebSocket,
    /// SPDY on the upgraded connection.
    Spdy,
    /// A WebSocket per connection, the kubelet's channel protocol.
    Channels,
}

impl Transport {
    const LADDER: [Transport; 3] = [
        Transport::SpdyOverWebSocket,
        Transport::Spdy,
        Transport::Channels,
    ];

    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Transport::SpdyOverWebSocket => "SPDY over WebSocket",
            Transport::Spdy => "SPDY",
            Transport::Channels => "WebSocket channels",
        }
    }
}

/// Why a tunnel or a connection could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DialError {
    /// The pod is gone (`404`).
    #[error("pod {pod} is gone: {message}")]
    PodGone {
        /// The pod.
        pod: String,
        /// The API server's message.
        message: String,
    },
    /// `403 Forbidden` or `401`: the user may not forward.
    #[error("the API server refused the port-forward: {0}")]
    Refused(String),
    /// No transport on the ladder was offered.
    #[error("the API server offers no port-forward protocol kgate speaks: {0}")]
    Unsupported(String),
    /// The API server could not be reached or broke off.
    #[error("{0}")]
    Api(String),
}

/// What the kubelet sent on a connection's error stream, once the data has ended.
pub enum ErrorSource {
    /// A SPDY error stream (read to its end).
    Stream(Stream),
    /// The error channel of a channel-protocol WebSocket.
    Channel(ErrorText),
}

impl ErrorSource {
    /// The error text; empty when there was none.
    pub async fn text(self) -> String {
        match self {
            ErrorSource::Stream(mut stream) => {
                let mut bytes = Vec::new();
                // Bounded: a kubelet error is one line.
                let _ = (&mut stream).take(64 << 10).read_to_end(&mut bytes).await;
                String::from_utf8_lossy(&bytes).trim().to_owned()
            }
            ErrorSource::Channel(text) => text.get().trim().to_owned(),
        }
    }
}

/// A byte stream both ways.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// One forwarded connection.
pub struct Connection {
    /// The connection's bytes.
    pub data: Box<dyn Io>,
    /// The kubelet's error text, readable after the data ends.
    pub error: ErrorSource,
    /// Which transport carries it.
    pub transport: Transport,
}

/// One session and the connections it carries now.
struct Slot {
    session: Session,
    streams: Arc<AtomicUsize>,
}

/// Counts a connection on its session while it lives.
struct Counted<T> {
    inner: T,
    streams: Arc<AtomicUsize>,
}

impl<T> Drop for Counted<T> {
    fn drop(&mut self) {
        self.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Sessions to one pod.
#[derive(Default)]
struct PodSessions {
    slots: tokio::sync::Mutex<Vec<Slot>>,
}

/// Opens connections to pods of one namespace; see the module contract.
pub struct Dialer {
    client: auth::ApiClient,
    namespace: String,
    /// The first rung of the ladder still worth trying.
    transport: Mutex<Transport>,
    pods: Mutex<HashMap<String, Arc<PodSessions>>>,
    next_request: AtomicU64,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// What one rung's attempt came to.
enum Rung<T> {
    Open(T),
    /// The server does not offer this transport: try the next.
    NotOffered(String),
    Failed(DialError),
}

impl Dialer {
    /// A dialer for pods in `namespace`.
    pub fn new(client: auth::ApiClient, namespace: &str) -> Dialer {
        Dialer {
            client,
            namespace: namespace.to_owned(),
            transport: Mutex::new(Transport::SpdyOverWebSocket),
            pods: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(0),
        }
    }

    /// The transport in use (the ladder's first rung until a dial has learned otherwise).
    pub fn transport(&self) -> Transport {
        *self
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes sure `pod` can be reached: opens a session (or, on the last rung, nothing), so
    /// that a command can fail at once when the user may not forward or the server is away.
    pub async fn warm(&self, pod: &str) -> Result<Transport, DialError> {
        let sessions = self.sessions_of(pod);
        let mut slots = sessions.slots.lock().await;
        slots.retain(|s| !s.session.is_closed());
        if !slots.is_empty() {
            return Ok(self.transport());
        }
        match self.session(pod).await? {
            Some(session) => {
                slots.push(Slot {
                    session,
                    streams: Arc::new(AtomicUsize::new(0)),
                });
                Ok(self.transport())
            }
            None => Ok(Transport::Channels),
        }
    }

    /// One connection to `port` of `pod`.
    pub async fn open(&self, pod: &str, port: u16) -> Result<Connection, DialError> {
        if self.transport() == Transport::Channels {
            return self.channel_connection(pod, port).await;
        }
        // A closed session is found out when a stream cannot be opened on it: drop it, retry.
        for _ in 0..3 {
            let (session, streams) = match self.slot(pod).await? {
                Some(slot) => slot,
                None => return self.channel_connection(pod, port).await,
            };
            let id = self
                .next_request
                .fetch_add(1, Ordering::Relaxed)
                .to_string();
            let headers = |kind: &str| {
                vec![
                    (STREAM_TYPE.to_owned(), kind.to_owned()),
                    (PORT.to_owned(), port.to_string()),
                    (REQUEST_ID.to_owned(), id.clone()),
                ]
            };
            // The error stream first, half-closed at once (client-go's order).
            let opened = async {
                let error = session.open(headers(STREAM_TYPE_ERROR), true).await?;
                let data = session.open(headers(STREAM_TYPE_DATA), false).await?;
                Ok::<_, portforward::spdy::SessionError>((data, error))
            };
            match opened.await {
                Ok((data, error)) => {
                    return Ok(Connection {
                        data: Box::new(Counted {
                            inner: data,
                            streams,
                        }),
                        error: ErrorSource::Stream(error),
                        transport: self.transport(),
                    });
                }
                Err(err) => {
                    streams.fetch_sub(1, Ordering::AcqRel);
                    tracing::debug!("port-forward: a session to {pod} ended ({err}); reopening");
                }
            }
        }
        Err(DialError::Api(format!(
            "the port-forward sessions to pod {pod} keep closing"
        )))
    }

    /// Closes the sessions of pods not in `keep` (the connections on them run to their end).
    pub async fn forget_except(&self, keep: &[&str]) {
        let gone: Vec<Arc<PodSessions>> = {
            let mut pods = self.pods.lock().unwrap_or_else(PoisonError::into_inner);
            let names: Vec<String> = pods
                .keys()
                .filter(|p| !keep.contains(&p.as_str()))
                .cloned()
                .collect();
            names.iter().filter_map(|n| pods.remove(n)).collect()
        };
        for sessions in gone {
            for slot in sessions.slots.lock().await.drain(..) {
                slot.session.close().await;
            }
        }
    }

    fn sessions_of(&self, pod: &str) -> Arc<PodSessions> {
        self.pods
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(pod.to_owned())
            .or_default()
            .clone()
    }

    /// A session to `pod` with room, counted for one more connection; `None` when the
    /// transport turned out to be channels.
    async fn slot(&self, pod: &str) -> Result<Option<(Session, Arc<AtomicUsize>)>, DialError> {
        let sessions = self.sessions_of(pod);
        let mut slots = sessions.slots.lock().await;
        slots.retain(|s| !s.session.is_closed());
        let least = slots
            .iter()
            .min_by_key(|s| s.streams.load(Ordering::Acquire));
        let pick = match least {
            Some(s)
                if s.streams.load(Ordering::Acquire) < STREAMS_PER_SESSION
                    || slots.len() >= SESSIONS_PER_POD =>
            {
                Some((s.session.clone(), s.streams.clone()))
            }
            _ => None,
        };
        let (session, streams) = match pick {
            Some(pick) => pick,
            None => {
                let Some(session) = self.session(pod).await? else {
                    return Ok(None);
                };
                let streams = Arc::new(AtomicUsize::new(0));
                slots.push(Slot {
                    session: session.clone(),
                    streams: streams.clone(),
                });
                (session, streams)
            }
        };
        streams.fetch_add(1, Ordering::AcqRel);
        Ok(Some((session, streams)))
    }

    /// A new SPDY session to `pod`, down the ladder from the transport learned so far;
    /// `None` when only channels are left.
    async fn session(&self, pod: &str) -> Result<Option<Session>, DialError> {
        let start = self.transport();
        let mut refusals = Vec::new();
        for transport in Transport::LADDER.into_iter().skip_while(|t| *t != start) {
            let rung = match transport {
                Transport::SpdyOverWebSocket => self.spdy_over_websocket(pod).await,
                Transport::Spdy => self.spdy(pod).await,
                Transport::Channels => {
                    self.learn(Transport::Channels, &refusals);
                    return Ok(None);
                }
            };
            match rung {
                Rung::Open(session) => {
                    self.learn(transport, &refusals);
                    return Ok(Some(session));
                }
                Rung::NotOffered(why) => refusals.push(format!("{}: {why}", transport.name())),
                Rung::Failed(err) => return Err(err),
            }
        }
        Err(DialError::Unsupported(refusals.join("; ")))
    }

    fn learn(&self, transport: Transport, refusals: &[String]) {
        let mut current = self
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *current != transport {
            tracing::info!(
                "port-forward: using {} (not offered: {})",
                transport.name(),
                refusals.join("; ")
            );
            *current = transport;
        }
    }

    fn path(&self, pod: &str) -> String {
        format!(
            "/api/v1/namespaces/{}/pods/{pod}/portforward",
            self.namespace
        )
    }

    async fn spdy_over_websocket(&self, pod: &str) -> Rung<Session> {
        match self
            .websocket(pod, &self.path(pod), TUNNELED_PORTFORWARD_V1)
            .await
        {
            Rung::Open((upgraded, protocol)) => {
                if protocol.as_deref() != Some(TUNNELED_PORTFORWARD_V1) {
                    return Rung::NotOffered(format!("the server chose {protocol:?}"));
                }
                let ws =
                    WebSocketStream::from_raw_socket(upgraded, Role::Client, Some(ws_config()))
                        .await;
                Rung::Open(Session::client(ByteStream::new(ws)))
            }
            Rung::NotOffered(why) => Rung::NotOffered(why),
            Rung::Failed(err) => Rung::Failed(err),
        }
    }

    async fn spdy(&self, pod: &str) -> Rung<Session> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.path(pod))
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "SPDY/3.1")
            .header("X-Stream-Protocol-Version", PORTFORWARD_V1)
            .header(header::CONTENT_LENGTH, "0")
            .body(auth::empty_body());
        let request = match request {
            Ok(request) => request,
            Err(err) => return Rung::Failed(DialError::Api(err.to_string())),
        };
        match self.upgrade(pod, request).await {
            Rung::Open((upgraded, headers)) => {
                let upgrade = headers
                    .get(header::UPGRADE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !upgrade.eq_ignore_ascii_case("SPDY/3.1") {
                    return Rung::NotOffered(format!("the server upgraded to {upgrade:?}"));
                }
                Rung::Open(Session::client(upgraded))
            }
            Rung::NotOffered(why) => Rung::NotOffered(why),
            Rung::Failed(err) => Rung::Failed(err),
        }
    }

    async fn channel_connection(&self, pod: &str, port: u16) -> Result<Connection, DialError> {
        let path = format!("{}?ports={port}", self.path(pod));
        match self.websocket(pod, &path, channel::V4_BINARY).await {
            Rung::Open((upgraded, protocol)) => {
                let framing = Framing::of(protocol.as_deref()).ok_or_else(|| {
                    DialError::Unsupported(format!("the server chose {protocol:?}"))
                })?;
                let ws =
                    WebSocketStream::from_raw_socket(upgraded, Role::Client, Some(ws_config()))
                        .await;
                let (stream, error) = ClientStream::new(ws, framing);
                Ok(Connection {
                    data: Box::new(stream),
                    error: ErrorSource::Channel(error),
                    transport: Transport::Channels,
                })
            }
            Rung::NotOffered(why) => Err(DialError::Unsupported(why)),
            Rung::Failed(err) => Err(err),
        }
    }

    /// A WebSocket handshake offering `protocol`: the upgraded connection and the protocol
    /// the server chose.
    async fn websocket(
        &self,
        pod: &str,
        path: &str,
        protocol: &str,
    ) -> Rung<(TokioIo<hyper::upgrade::Upgraded>, Option<String>)> {
        let key = tokio_tungstenite::tungstenite::handshake::client::generate_key();
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, &key)
            .header(header::SEC_WEBSOCKET_PROTOCOL, protocol)
            .body(auth::empty_body());
        let request = match request {
            Ok(request) => request,
            Err(err) => return Rung::Failed(DialError::Api(err.to_string())),
        };
        match self.upgrade(pod, request).await {
            Rung::Open((upgraded, headers)) => {
                let expected =
                    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
                let accept = headers.get(header::SEC_WEBSOCKET_ACCEPT);
                if accept.and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
                    return Rung::Failed(DialError::Api(
                        "the API server's WebSocket handshake has a wrong Sec-WebSocket-Accept"
                            .to_owned(),
                    ));
                }
                let chosen = headers
                    .get(header::SEC_WEBSOCKET_PROTOCOL)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                Rung::Open((upgraded, chosen))
            }
            Rung::NotOffered(why) => Rung::NotOffered(why),
            Rung::Failed(err) => Rung::Failed(err),
        }
    }

    /// Sends an upgrade request: on `101`, the connection and the answer's headers.
    async fn upgrade(
        &self,
        pod: &str,
        request: Request<auth::Body>,
    ) -> Rung<(TokioIo<hyper::upgrade::Upgraded>, http::HeaderMap)> {
        let mut response = match self.client.send_upgrade(request).await {
            Ok(response) => response,
            Err(err) => return Rung::Failed(DialError::Api(err.to_string())),
        };
        let status = response.status();
        if status == StatusCode::SWITCHING_PROTOCOLS {
            let headers = response.headers().clone();
            return match hyper::upgrade::on(&mut response).await {
                Ok(upgraded) => Rung::Open((TokioIo::new(upgraded), headers)),
                Err(err) => Rung::Failed(DialError::Api(format!(
                    "the upgraded connection to the API server failed: {err}"
                ))),
            };
        }
        let body = read_limited(response.into_body()).await;
        let message = wire::status::message(&body);
        let reason = wire::status::parse(&body)
            .map(|s| s.reason)
            .unwrap_or_default();
        match status {
            StatusCode::NOT_FOUND => Rung::Failed(DialError::PodGone {
                pod: pod.to_owned(),
                message,
            }),
            StatusCode::UNAUTHORIZED => Rung::Failed(DialError::Refused(message)),
            StatusCode::FORBIDDEN if reason == "Forbidden" => {
                Rung::Failed(DialError::Refused(message))
            }
            _ => Rung::NotOffered(format!("{status}: {message}")),
        }
    }
}

fn ws_config() -> WebSocketConfig {
    // SPDY frames are at most 16 MiB; the tunnel never needs more in one message.
    WebSocketConfig::default()
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20))
}

async fn read_limited(body: hyper::body::Incoming) -> Bytes {
    http_body_util::Limited::new(body, 64 << 10)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default()
}
