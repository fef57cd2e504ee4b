//! Connections from the API server to endpoints: TCP, or TLS without certificate checks as the
//! API server's proxy transport does (kubernetes `cmd/kube-apiserver/app/server.go`
//! `CreateProxyTransport`: `InsecureSkipVerify: true`, "Proxying to pods and services is
//! IP-based... don't expect to be able to verify the hostname"). Ordinary requests share a
//! keep-alive pool per endpoint, as Go's `http.Transport` does; upgrades dial afresh, as
//! `tryUpgrade` does.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A byte stream to an endpoint.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The client TLS configuration for `https` endpoints: no verification, HTTP/1.1.
pub(crate) fn insecure_client_config() -> Result<Arc<rustls::ClientConfig>, crate::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| crate::Error::Tls {
            what: "endpoint client",
            source,
        })?
        .dangerous()
        .with_custom_certificate_verifier(wire::tls::InsecureVerifier::new(provider))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Connects to `addr`, over TLS when `tls` is set. The error text is what Go's dialer would
/// say (`dial tcp 127.0.0.1:1: connect: connection refused`), since the API server puts it in
/// its error messages.
pub(crate) async fn connect(
    addr: SocketAddr,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Box<dyn Io>, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            _ => e.to_string(),
        };
        format!("dial tcp {addr}: connect: {why}")
    })?;
    let _ = tcp.set_nodelay(true);
    let Some(config) = tls else {
        return Ok(Box::new(tcp));
    };
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    let name = ServerName::IpAddress(addr.ip().into());
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    Ok(Box::new(stream))
}

/// A pooled endpoint connection for hyper-util's client.
pub(crate) struct EndpointConn(hyper_util::rt::TokioIo<Box<dyn Io>>);

impl hyper::rt::Read for EndpointConn {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for EndpointConn {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl hyper_util::client::legacy::connect::Connection for EndpointConn {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        hyper_util::client::legacy::connect::Connected::new()
    }
}

/// Dials `http://ip:port` over TCP and `https://ip:port` over unverified TLS.
#[derive(Clone)]
pub(crate) struct Connector {
    tls: Arc<rustls::ClientConfig>,
}

impl tower::Service<http::Uri> for Connector {
    type Response = EndpointConn;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<EndpointConn, std::io::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let tls = (uri.scheme_str() == Some("https")).then(|| self.tls.clone());
        Box::pin(async move {
            let addr: SocketAddr = uri
                .authority()
                .map(|a| a.as_str())
                .unwrap_or_default()
                .parse()
                .map_err(|_| std::io::Error::other(format!("invalid endpoint address in {uri}")))?;
            let io = connect(addr, tls.as_ref())
                .await
                .map_err(std::io::Error::other)?;
            Ok(EndpointConn(hyper_util::rt::TokioIo::new(io)))
        })
    }
}

/// The pooled client for proxied (non-upgrade) requests.
pub(crate) type EndpointClient =
    hyper_util::client::legacy::Client<Connector, hyper::body::Incoming>;

pub(crate) fn endpoint_client(tls: Arc<rustls::ClientConfig>) -> EndpointClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .build(Connector { tls })
}
