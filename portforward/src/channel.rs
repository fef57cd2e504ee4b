//! The channel protocol of the kubelet's WebSocket port-forward (`v4.channel.k8s.io`).
//!
//! Contract (cri-streaming `pkg/streaming/portforward/websocket.go`, apimachinery's `wsstream`
//! framing): every message is one channel byte and a payload, in both directions. For the
//! *i*-th requested port, channel `2i` carries data both ways and `2i+1` errors from the
//! server. Right after the upgrade the server writes the port, 2 bytes little-endian, as the
//! first message of both channels of each pair ([`port_prefix`]); the client sends no prefix.
//! `v4.channel.k8s.io` (and no subprotocol at all) frames binary messages;
//! `v4.base64.channel.k8s.io` frames text messages whose channel is an ASCII digit and whose
//! payload is base64. There is no close signal per channel: the WebSocket's close ends all.

use crate::broken;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// The binary channel subprotocol.
pub const V4_BINARY: &str = "v4.channel.k8s.io";
/// The base64 channel subprotocol.
pub const V4_BASE64: &str = "v4.base64.channel.k8s.io";

/// How messages are framed on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Binary messages, the channel as a byte (`v4.channel.k8s.io`, or no subprotocol).
    Binary,
    /// Text messages, the channel as an ASCII digit, the payload base64.
    Base64,
}

impl Framing {
    /// The framing a negotiated subprotocol stands for; `None` for one the kubelet does not
    /// offer.
    pub fn of(subprotocol: Option<&str>) -> Option<Self> {
        match subprotocol {
            None | Some("") | Some(V4_BINARY) => Some(Self::Binary),
            Some(V4_BASE64) => Some(Self::Base64),
            Some(_) => None,
        }
    }
}

/// Why a message is not a channel frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("an empty WebSocket message has no channel")]
    Empty,
    #[error("a {0} message where the channel protocol frames the other kind")]
    WrongKind(&'static str),
    #[error("a base64 channel message that does not decode")]
    Base64,
    #[error("channel {0} is not a digit")]
    BadChannel(u8),
}

/// `payload` on `channel`, framed.
pub fn encode(framing: Framing, channel: u8, payload: &[u8]) -> Message {
    match framing {
        Framing::Binary => {
            let mut out = Vec::with_capacity(payload.len() + 1);
            out.push(channel);
            out.extend_from_slice(payload);
            Message::binary(out)
        }
        Framing::Base64 => {
            let mut text = String::with_capacity(payload.len() * 4 / 3 + 4);
            text.push(char::from(b'0' + (channel % 10)));
            base64::engine::general_purpose::STANDARD.encode_string(payload, &mut text);
            Message::text(text)
        }
    }
}

/// The channel and payload of `message`; `Ok(None)` for control messages (ping, pong, close),
/// which carry no channel.
pub fn decode(framing: Framing, message: &Message) -> Result<Option<(u8, Bytes)>, ChannelError> {
    match (framing, message) {
        (Framing::Binary, Message::Binary(data)) => {
            let (&channel, _) = data.split_first().ok_or(ChannelError::Empty)?;
            Ok(Some((channel, data.slice(1..))))
        }
        (Framing::Base64, Message::Text(text)) => {
            let bytes = text.as_bytes();
            let (&digit, rest) = bytes.split_first().ok_or(ChannelError::Empty)?;
            if !digit.is_ascii_digit() {
                return Err(ChannelError::BadChannel(digit));
            }
            let payload = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| ChannelError::Base64)?;
            Ok(Some((digit - b'0', Bytes::from(payload))))
        }
        (Framing::Binary, Message::Text(_)) => Err(ChannelError::WrongKind("text")),
        (Framing::Base64, Message::Binary(_)) => Err(ChannelError::WrongKind("binary")),
        _ => Ok(None),
    }
}

/// The first payload of both channels of a port's pair: the port, little-endian.
pub fn port_prefix(port: u16) -> [u8; 2] {
    port.to_le_bytes()
}

/// The data channel of the `index`-th port, and its error channel.
pub fn channels(index: usize) -> (u8, u8) {
    let data = u8::try_from(index * 2).unwrap_or(u8::MAX - 1);
    (data, data + 1)
}

/// The text the server sent on a connection's error channel, readable once the data ends.
#[derive(Debug, Clone, Default)]
pub struct ErrorText(Arc<Mutex<String>>);

impl ErrorText {
    /// What arrived on the error channel so far (empty: no error).
    pub fn get(&self) -> String {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, bytes: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_str(&String::from_utf8_lossy(bytes));
    }
}

/// The client side of one forwarded connection: a WebSocket asked for exactly one port
/// (`?ports=P`), as a byte stream.
///
/// Reads are the data channel's payloads without the port prefix; what the error channel
/// carries goes to [`ErrorText`]; the WebSocket's close is the end of the stream. Writes go out
/// on the data channel. `shutdown` only flushes: the protocol has no half-close (a close would
/// end the answer too), so the connection ends when the server closes it or this is dropped.
pub struct ClientStream<S> {
    ws: WebSocketStream<S>,
    framing: Framing,
    pending: Bytes,
    /// Prefix bytes still to skip on the data and the error channel.
    skip: [usize; 2],
    error: ErrorText,
    done: bool,
}

impl<S> std::fmt::Debug for ClientStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStream")
            .field("framing", &self.framing)
            .finish_non_exhaustive()
    }
}

impl<S> ClientStream<S> {
    /// The connection on `ws` (upgraded with `framing`'s subprotocol), and where its error
    /// text will be.
    pub fn new(ws: WebSocketStream<S>, framing: Framing) -> (Self, ErrorText) {
        let error = ErrorText::default();
        let stream = ClientStream {
            ws,
            framing,
            pending: Bytes::new(),
            skip: [2, 2],
            error: error.clone(),
            done: false,
        };
        (stream, error)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for ClientStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if crate::drain(&mut self.pending, buf) {
                return Poll::Ready(Ok(()));
            }
            if self.done {
                return Poll::Ready(Ok(()));
            }
            let message = match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(message)) => message,
                Some(Err(err)) => return Poll::Ready(Err(broken(err))),
                None => {
                    self.done = true;
                    continue;
                }
            };
            if message.is_close() {
                self.done = true;
                continue;
            }
            let Some((channel, mut payload)) = decode(self.framing, &message)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            else {
                continue;
            };
            let slot = match channel {
                0 => 0,
                1 => 1,
                // Channels of ports this connection did not ask for: none should come.
                _ => continue,
            };
            let skip = self.skip[slot].min(payload.len());
            self.skip[slot] -= skip;
            let payload = payload.split_off(skip);
            if slot == 1 {
                self.error.push(&payload);
            } else {
                self.pending = payload;
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ClientStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(broken)?;
        let n = data.len().min(32 << 10);
        let message = encode(self.framing, 0, &data[..n]);
        Pin::new(&mut self.ws).start_send(message).map_err(broken)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(broken)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(broken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_both_framings() {
        for framing in [Framing::Binary, Framing::Base64] {
            let message = encode(framing, 3, b"\x00\xffhello");
            let (channel, payload) = decode(framing, &message).unwrap().unwrap();
            assert_eq!(channel, 3);
            assert_eq!(&payload[..], b"\x00\xffhello");
        }
        assert_eq!(encode(Framing::Base64, 1, b"hi"), Message::text("1aGk="));
        assert_eq!(
            encode(Framing::Binary, 0, b"hi"),
            Message::binary(vec![0, b'h', b'i'])
        );
    }

    #[test]
    fn bad_messages_are_errors_and_control_messages_are_not_frames() {
        assert_eq!(
            decode(Framing::Binary, &Message::binary(Vec::new())),
            Err(ChannelError::Empty)
        );
        assert_eq!(
            decode(Framing::Binary, &Message::text("0x")),
            Err(ChannelError::WrongKind("text"))
        );
        assert_eq!(
            decode(Framing::Base64, &Message::text("x")),
            Err(ChannelError::BadChannel(b'x'))
        );
        assert_eq!(
            decode(Framing::Base64, &Message::text("0!!!")),
            Err(ChannelError::Base64)
        );
        assert_eq!(
            decode(Framing::Binary, &Message::Ping(Bytes::new())),
            Ok(None)
        );
    }

    #[test]
    fn ports_and_channels_as_the_kubelet_numbers_them() {
        assert_eq!(port_prefix(8080), [0x90, 0x1f]);
        assert_eq!(channels(0), (0, 1));
        assert_eq!(channels(2), (4, 5));
        assert_eq!(Framing::of(None), Some(Framing::Binary));
        assert_eq!(Framing::of(Some(V4_BASE64)), Some(Framing::Base64));
        assert_eq!(Framing::of(Some("v5.channel.k8s.io")), None);
    }

    #[tokio::test]
    async fn a_client_stream_reads_data_without_the_prefix_and_keeps_the_error_text() {
        use futures_util::{SinkExt, StreamExt};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio_tungstenite::tungstenite::protocol::Role;

        let (a, b) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(async move {
            let mut ws = WebSocketStream::from_raw_socket(b, Role::Server, None).await;
            let prefix = port_prefix(8080);
            ws.send(encode(Framing::Binary, 0, &prefix)).await.unwrap();
            ws.send(encode(Framing::Binary, 1, &prefix)).await.unwrap();
            let Some(Ok(message)) = ws.next().await else {
                panic!("no request")
            };
            let (channel, payload) = decode(Framing::Binary, &message).unwrap().unwrap();
            assert_eq!((channel, &payload[..]), (0, &b"ping"[..]));
            ws.send(encode(Framing::Binary, 0, b"pong")).await.unwrap();
            ws.send(encode(Framing::Binary, 1, b"it broke"))
                .await
                .unwrap();
            ws.close(None).await.unwrap();
        });
        let ws = WebSocketStream::from_raw_socket(
            a,
            tokio_tungstenite::tungstenite::protocol::Role::Client,
            None,
        )
        .await;
        let (mut stream, error) = ClientStream::new(ws, Framing::Binary);
        stream.write_all(b"ping").await.unwrap();
        stream.flush().await.unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"pong");
        assert_eq!(error.get(), "it broke");
        server.await.unwrap();
    }
}
