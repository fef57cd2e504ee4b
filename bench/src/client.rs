//! The bench's own HTTP/1.1 client, for what a load generator does not measure: start-up
//! probes, the 1 GiB download, and the soak's mixed requests and WebSocket sessions.
//!
//! Contract: an [`Endpoint`] is where requests go: a proxy (plain HTTP on loopback) or the
//! stand-in directly (HTTPS, verified against the bench CA, with the bearer token). A
//! [`Conn`] is one keep-alive HTTP/1.1 connection; every call is bounded by a timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{Method, Request, header};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// Where the bench sends requests.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    /// TLS to the stand-in (direct access); `None` for a proxy's plain HTTP.
    pub(crate) tls: Option<tokio_rustls::TlsConnector>,
    /// `Authorization` header value (direct access only; a proxy adds its own).
    pub(crate) auth: Option<Arc<str>>,
}

impl Endpoint {
    pub(crate) fn proxy(addr: SocketAddr) -> Self {
        Self {
            addr,
            tls: None,
            auth: None,
        }
    }

    pub(crate) fn direct(addr: SocketAddr, ca_pem: &str, token: &str) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
            roots
                .add(cert.context("parsing the bench CA")?)
                .context("adding the bench CA")?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            addr,
            tls: Some(tokio_rustls::TlsConnector::from(Arc::new(config))),
            auth: Some(Arc::from(format!("Bearer {token}"))),
        })
    }

    /// `http://` or `https://` base URL (for wrk).
    pub(crate) fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Opens one HTTP/1.1 connection.
    pub(crate) async fn connect(&self, timeout: Duration) -> anyhow::Result<Conn> {
        let sender = tokio::time::timeout(timeout, self.handshake())
            .await
            .with_context(|| format!("connecting to {} timed out", self.addr))??;
        Ok(Conn {
            sender,
            endpoint: self.clone(),
        })
    }

    async fn handshake(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        let _ = tcp.set_nodelay(true);
        if let Some(tls) = &self.tls {
            let name = rustls::pki_types::ServerName::IpAddress(self.addr.ip().into());
            let stream = tls.connect(name, tcp).await.context("TLS handshake")?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            Ok(sender)
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(conn);
            Ok(sender)
        }
    }

    /// A WebSocket session at `path`: sends `messages` binary messages of `size` bytes, checks
    /// each echo, closes. Bounded by `timeout` as a whole.
    pub(crate) async fn websocket_echo(
        &self,
        path: &str,
        messages: usize,
        size: usize,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        tokio::time::timeout(timeout, self.websocket_inner(path, messages, size))
            .await
            .context("WebSocket session timed out")?
    }

    async fn websocket_inner(
        &self,
        path: &str,
        messages: usize,
        size: usize,
    ) -> anyhow::Result<()> {
        let mut request = format!("ws://{}{path}", self.addr).into_client_request()?;
        if let Some(auth) = &self.auth {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, header::HeaderValue::from_str(auth)?);
        }
        let tcp = TcpStream::connect(self.addr).await?;
        let _ = tcp.set_nodelay(true);
        if let Some(tls) = &self.tls {
            let name = rustls::pki_types::ServerName::IpAddress(self.addr.ip().into());
            let stream = tls.connect(name, tcp).await.context("TLS handshake")?;
            let (ws, _) = tokio_tungstenite::client_async(request, stream).await?;
            echo(ws, messages, size).await
        } else {
            let (ws, _) = tokio_tungstenite::client_async(request, tcp).await?;
            echo(ws, messages, size).await
        }
    }
}

async fn echo<S>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    messages: usize,
    size: usize,
) -> anyhow::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for i in 0..messages {
        let payload = Bytes::from(vec![u8::try_from(i % 251).unwrap_or(0); size]);
        ws.send(Message::Binary(payload.clone())).await?;
        match ws.next().await {
            Some(Ok(Message::Binary(got))) if got == payload => {}
            Some(Ok(other)) => bail!("WebSocket echo {i}: unexpected message {other:?}"),
            Some(Err(err)) => bail!("WebSocket echo {i}: {err}"),
            None => bail!("WebSocket echo {i}: the connection ended"),
        }
    }
    ws.close(None).await?;
    // Drain to the server's close frame, bounded by the caller's timeout.
    while let Some(msg) = ws.next().await {
        if msg.is_err() {
            break;
        }
    }
    Ok(())
}

/// One keep-alive HTTP/1.1 connection.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    endpoint: Endpoint,
}

/// What a request got back.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) bytes: u64,
}

impl Conn {
    /// Sends one request and reads the whole body (counting it, not keeping it).
    pub(crate) async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
        timeout: Duration,
    ) -> anyhow::Result<Answer> {
        tokio::time::timeout(timeout, self.request_inner(method, path, body))
            .await
            .with_context(|| format!("request to {path} timed out after {timeout:?}"))?
    }

    async fn request_inner(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> anyhow::Result<Answer> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.endpoint.addr.to_string());
        if let Some(auth) = &self.endpoint.auth {
            builder = builder.header(header::AUTHORIZATION, auth.as_ref());
        }
        let req = builder.body(Full::new(body))?;
        self.sender.ready().await.context("connection closed")?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut bytes = 0u64;
        while let Some(frame) = body.frame().await {
            if let Some(data) = frame?.data_ref() {
                bytes += data.len() as u64;
            }
        }
        Ok(Answer { status, bytes })
    }
}
