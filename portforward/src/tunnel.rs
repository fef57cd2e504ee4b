//! SPDY over WebSocket (KEP-4006, `SPDY/3.1+portforward.k8s.io`): a WebSocket as a byte pipe.
//!
//! Contract (client-go `tools/portforward/tunneling_connection.go`, apiserver
//! `pkg/util/proxy/streamtunnel.go`): after the upgrade every **binary** message is the next
//! slice of the SPDY byte stream, in both directions; a message of any other kind is an error;
//! a close with code 1000 is the end of the stream. [`ByteStream`] makes a WebSocket an
//! `AsyncRead + AsyncWrite` on those terms, for [`crate::spdy::Session`] to run on; its
//! `shutdown` sends the normal close.

use crate::broken;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The subprotocol prefix that asks the API server to tunnel SPDY through a WebSocket.
pub const SPDY_TUNNEL_PREFIX: &str = "SPDY/3.1+";

/// A WebSocket carrying a byte stream; see the module contract.
pub struct ByteStream<S> {
    ws: WebSocketStream<S>,
    pending: Bytes,
    closed: bool,
}

impl<S> std::fmt::Debug for ByteStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ByteStream")
    }
}

impl<S> ByteStream<S> {
    pub fn new(ws: WebSocketStream<S>) -> Self {
        Self {
            ws,
            pending: Bytes::new(),
            closed: false,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for ByteStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if crate::drain(&mut self.pending, buf) {
                return Poll::Ready(Ok(()));
            }
            if self.closed {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => self.pending = data,
                Some(Ok(Message::Close(frame))) => {
                    self.closed = true;
                    let normal = frame.as_ref().is_none_or(|f| f.code == CloseCode::Normal);
                    if !normal {
                        return Poll::Ready(Err(broken(format!(
                            "the WebSocket closed with {frame:?}"
                        ))));
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a text message in a SPDY tunnel",
                    )));
                }
                Some(Err(err)) => return Poll::Ready(Err(broken(err))),
                None => self.closed = true,
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ByteStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(broken)?;
        Pin::new(&mut self.ws)
            .start_send(Message::binary(data.to_vec()))
            .map_err(broken)?;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(broken)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(broken)?;
        let close = Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }));
        // A second close (the peer's came first) is not an error worth reporting.
        let _ = Pin::new(&mut self.ws).start_send(close);
        match ready!(Pin::new(&mut self.ws).poll_close(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(_) => Poll::Ready(Ok(())),
        }
    }
}
