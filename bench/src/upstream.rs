//! The stand-in API server: just enough of the API server's service proxy verb to measure the
//! path through a proxy, and nothing that costs time on its side.
//!
//! Contract: HTTPS on `127.0.0.1` (HTTP/2 and HTTP/1.1 by ALPN, as the API server), a
//! certificate from a throwaway CA (simcluster's [`simcluster::pki::Pki`], the same chain the
//! simulated cluster serves), every request must carry `Authorization: Bearer
//! <token>` (else `401` with a Kubernetes `Status`). Under any
//! `/api/v1/namespaces/<ns>/services/<svc>/proxy/` prefix it answers:
//! - `small`: a small JSON document ([`SMALL_JSON`]);
//! - `bytes/<n>`: `n` bytes of `application/octet-stream`, streamed in 64 KiB chunks so a
//!   1 GiB body costs no memory here;
//! - `POST upload`: drains the request body and answers `{"received":<n>}`;
//! - `ws`: a WebSocket echo (HTTP/1.1 upgrade), as a service behind the proxy verb would be.
//!
//! It runs in a child process of the bench (`bench upstream`, see `main.rs`) so its CPU is
//! never mixed with the load generator's or the harness's.

use std::convert::Infallible;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::Role;

/// The small JSON body: the size of a typical small API object answer (~200 bytes).
pub(crate) const SMALL_JSON: &str = concat!(
    r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","#,
    r#""message":"bench small JSON answer","reason":"OK","details":{"name":"backend","#,
    r#""kind":"services","uid":"0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"},"code":200}"#
);

/// The path prefix of the proxy verb the bench uses.
pub(crate) const PROXY_PREFIX: &str = "/api/v1/namespaces/bench/services/http:backend:80/proxy/";

/// The chunk large bodies are streamed in.
const CHUNK: usize = 64 * 1024;

/// Reads the serving certificate and key written by `setup` (from simcluster's
/// [`simcluster::pki::Pki`]) and builds the TLS configuration.
fn server_tls(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let cert_pem = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
    let key_pem = std::fs::read(key).with_context(|| format!("reading {}", key.display()))?;
    let chain = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .context("parsing the server certificate")?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .context("parsing the server key")?
        .context("the server key file holds no key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("building the server TLS configuration")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Runs the stand-in until the process is killed. Prints `listening on <addr>` once bound.
pub(crate) async fn serve(
    cert: &Path,
    key: &Path,
    token_file: &Path,
    port: u16,
) -> anyhow::Result<()> {
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(server_tls(cert, key)?));
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading {}", token_file.display()))?;
    let expected: Arc<str> = Arc::from(format!("Bearer {}", token.trim()));
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .context("binding the stand-in API server")?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                // Out of file descriptors and the like: say so, and keep serving.
                eprintln!("stand-in: accept failed: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let expected = expected.clone();
        tokio::spawn(async move {
            let Ok(stream) = tls.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let expected = expected.clone();
                async move { Ok::<_, Infallible>(handle(req, &expected).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The response body: either a fixed buffer or `remaining` bytes of a repeated chunk.
pub(crate) enum StandInBody {
    Full(Option<Bytes>),
    Repeat { remaining: u64, chunk: Bytes },
}

impl Body for StandInBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        match this {
            StandInBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            StandInBody::Repeat { remaining, chunk } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let n = usize::try_from(*remaining)
                    .unwrap_or(usize::MAX)
                    .min(chunk.len());
                *remaining -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(chunk.slice(..n)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            StandInBody::Full(data) => data.is_none(),
            StandInBody::Repeat { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            StandInBody::Full(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            StandInBody::Repeat { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<StandInBody> {
    let mut resp = Response::new(StandInBody::Full(Some(body.into())));
    *resp.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    resp
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<StandInBody> {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    full(code, "application/json", body.to_string())
}

async fn handle(req: Request<Incoming>, expected: &str) -> Response<StandInBody> {
    let authorized = req
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    if !authorized {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    let path = req.uri().path().to_owned();
    let Some(rest) = path
        .strip_prefix("/api/v1/namespaces/")
        .and_then(|p| p.split_once("/proxy/"))
        .map(|(_, rest)| rest)
    else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the bench serves only the proxy verb",
        );
    };
    match (req.method().as_str(), rest) {
        ("GET", "small") => full(StatusCode::OK, "application/json", SMALL_JSON),
        ("GET", "ws") => websocket(req),
        ("POST", "upload") => {
            let mut body = req.into_body();
            let mut received: u64 = 0;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(frame) => {
                        if let Some(data) = frame.data_ref() {
                            received += data.len() as u64;
                        }
                    }
                    Err(_) => return status(StatusCode::BAD_REQUEST, "BadRequest", "body"),
                }
            }
            full(
                StatusCode::OK,
                "application/json",
                format!(r#"{{"received":{received}}}"#),
            )
        }
        ("GET", other) => match other.strip_prefix("bytes/").map(str::parse::<u64>) {
            Some(Ok(n)) => {
                let mut resp = Response::new(StandInBody::Repeat {
                    remaining: n,
                    chunk: Bytes::from(vec![b'k'; CHUNK]),
                });
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/octet-stream"),
                );
                resp
            }
            _ => status(StatusCode::NOT_FOUND, "NotFound", "no such bench path"),
        },
        _ => status(StatusCode::NOT_FOUND, "NotFound", "no such bench path"),
    }
}

/// Answers a WebSocket upgrade with `101` and echoes every message until the peer closes.
fn websocket(mut req: Request<Incoming>) -> Response<StandInBody> {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "not a WebSocket request",
        );
    };
    if !upgrade {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "not a WebSocket request",
        );
    }
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            None,
        )
        .await;
        // Bounded by the peer: the bench clients send a fixed number of messages, then close.
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_close() {
                break;
            }
            if (msg.is_binary() || msg.is_text()) && ws.send(msg).await.is_err() {
                break;
            }
        }
        let _ = ws.close(None).await;
    });
    let mut resp = Response::new(StandInBody::Full(None));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = resp.headers_mut();
    headers.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("Upgrade"),
    );
    if let Ok(value) = header::HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    resp
}
