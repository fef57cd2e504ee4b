//! The API server's WebSocket watch: `GET ...?watch=true` with `Upgrade: websocket`.
//!
//! Contract, as k8s.io/apiserver serves it (`pkg/endpoints/handlers/watch.go`:
//! `serveWatchHandler` picks `websocket.Handler(server.HandleWS)` when
//! `wsstream.IsWebSocketRequest`; `HandleWS` writes each encoded event as one message, text for
//! JSON, and ignores what the client sends), over golang.org/x/net/websocket's server
//! handshake (`hybiServerHandshaker`, and `checkOrigin` as the default `Handshake`):
//!
//! - `Sec-WebSocket-Version` must be `13`: else `400 Bad Request` with
//!   `Sec-WebSocket-Version: 13`; a missing `Sec-WebSocket-Key` is `400` too;
//! - `Origin` must be present and parse as a URL (`null` does not): else `403 Forbidden`.
//!   Any origin that parses is accepted: the API server does not compare it with anything,
//!   which is why a page on any site may open a watch through a proxy that adds credentials;
//! - one offered subprotocol is echoed; more than one is `400`.
//!
//! The refusals have x/net's bare form: a status line and no body.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Request, StatusCode, header};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::body::{Resp, empty};

/// An accepted handshake: what the 101 says, and the connection to take over.
pub(crate) struct Handshake {
    accept: String,
    protocol: Option<HeaderValue>,
    upgrade: OnUpgrade,
}

/// Why x/net/websocket's handshake refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `Sec-WebSocket-Version` is not 13.
    Version,
    /// No key, or more than one subprotocol.
    BadRequest,
    /// No `Origin`, or one that does not parse (`checkOrigin`).
    Origin,
}

impl Refused {
    /// x/net/websocket's bare refusal: a status line, no body.
    pub(crate) fn into_response(self) -> Resp {
        let mut resp = http::Response::new(empty());
        *resp.status_mut() = match self {
            Self::Version | Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Origin => StatusCode::FORBIDDEN,
        };
        if self == Self::Version {
            resp.headers_mut()
                .insert("sec-websocket-version", HeaderValue::from_static("13"));
        }
        resp
    }
}

/// Checks `req` as x/net's server handshake does; see the module contract.
pub(crate) fn handshake(req: &mut Request<Incoming>) -> Result<Handshake, Refused> {
    let headers = req.headers();
    let version_ok = headers
        .get("sec-websocket-version")
        .is_some_and(|v| v.as_bytes() == b"13");
    if !version_ok {
        return Err(Refused::Version);
    }
    let Some(key) = headers.get("sec-websocket-key") else {
        return Err(Refused::BadRequest);
    };
    let origin_ok = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| url::Url::parse(o).is_ok_and(|u| u.has_host()));
    if !origin_ok {
        return Err(Refused::Origin);
    }
    let offered: Vec<&str> = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let protocol = match offered.as_slice() {
        [] => None,
        [one] => HeaderValue::from_str(one).ok(),
        _ => return Err(Refused::BadRequest),
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    Ok(Handshake {
        accept,
        protocol,
        upgrade: hyper::upgrade::on(req),
    })
}

/// Switches protocols and sends `events`, one text message each, then holds the stream until
/// the client closes or `timeout` passes.
pub(crate) fn serve(handshake: Handshake, events: Vec<String>, timeout: Duration) -> Resp {
    let Handshake {
        accept,
        protocol,
        upgrade,
    } = handshake;
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        for event in events {
            if ws.send(Message::text(event)).await.is_err() {
                return;
            }
        }
        // Whatever the client sends is ignored; its close (or the timeout) ends the watch.
        let _ = tokio::time::timeout(timeout, async {
            while let Some(Ok(message)) = ws.next().await {
                if message.is_close() {
                    break;
                }
            }
        })
        .await;
        let _ = ws.close(None).await;
    });
    let mut resp = http::Response::new(empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    if let Some(protocol) = protocol {
        h.insert("sec-websocket-protocol", protocol);
    }
    resp
}
