//! The transport under TLS: a direct TCP connection, or one through the cluster's
//! `proxy-url` (HTTP CONNECT over plain TCP or over TLS, or SOCKS5), as client-go's
//! `proxy-url` support and kube-rs' `client/builder.rs` map proxy schemes.
//!
//! Contract: `ProxyConnector` is a `tower::Service<Uri>` yielding a stream that hyper-rustls
//! then wraps in TLS to the API server, so every proxy kind carries the same end-to-end TLS.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use url::Url;

use crate::client::BoxError;
use crate::error::BuildError;

#[derive(Clone)]
enum Route {
    Direct(HttpConnector),
    HttpProxy(Tunnel<HttpConnector>),
    HttpsProxy(Tunnel<HttpsConnector<HttpConnector>>),
    Socks(SocksV5<HttpConnector>),
}

/// Connects to the API server directly or through the configured proxy.
#[derive(Clone)]
pub(crate) struct ProxyConnector {
    route: Route,
}

pub(crate) fn tcp_connector(connect_timeout: Duration) -> HttpConnector {
    let mut http = HttpConnector::new();
    // hyper-rustls hands us `https://` URIs; the TLS layer is added above this connector.
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(30)));
    http
}

/// The proxy URL with any password removed, for messages.
pub(crate) fn redacted_proxy(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.to_string()
}

impl ProxyConnector {
    pub(crate) fn new(proxy: Option<&Url>, connect_timeout: Duration) -> Result<Self, BuildError> {
        let http = tcp_connector(connect_timeout);
        let Some(proxy) = proxy else {
            return Ok(ProxyConnector {
                route: Route::Direct(http),
            });
        };
        let invalid = |reason: String| BuildError::InvalidProxy {
            url: redacted_proxy(proxy),
            reason,
        };
        let host = proxy
            .host_str()
            .ok_or_else(|| invalid("it has no host".to_owned()))?;
        let port = proxy
            .port_or_known_default()
            .or(match proxy.scheme() {
                "socks5" => Some(1080),
                _ => None,
            })
            .ok_or_else(|| invalid("it has no port".to_owned()))?;
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let user = percent_encoding::percent_decode_str(proxy.username())
            .decode_utf8_lossy()
            .into_owned();
        let pass = proxy.password().map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        });
        let basic = (!user.is_empty()).then(|| {
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", pass.clone().unwrap_or_default()));
            HeaderValue::from_str(&format!("Basic {encoded}")).map(|mut v| {
                v.set_sensitive(true);
                v
            })
        });
        let route = match proxy.scheme() {
            "http" | "https" => {
                let dst: Uri = format!("{}://{host}:{port}", proxy.scheme())
                    .parse()
                    .map_err(|e| invalid(format!("{e}")))?;
                let auth = basic.transpose().map_err(|_| {
                    invalid("its user name or password cannot be sent in a header".to_owned())
                })?;
                if proxy.scheme() == "https" {
                    let tls = crate::tls::plain_client_config(None)?;
                    let https = hyper_rustls::HttpsConnectorBuilder::new()
                        .with_tls_config(tls)
                        .https_only()
                        .enable_http1()
                        .wrap_connector(http);
                    let tunnel = Tunnel::new(dst, https);
                    Route::HttpsProxy(match auth {
                        Some(auth) => tunnel.with_auth(auth),
                        None => tunnel,
                    })
                } else {
                    let tunnel = Tunnel::new(dst, http);
                    Route::HttpProxy(match auth {
                        Some(auth) => tunnel.with_auth(auth),
                        None => tunnel,
                    })
                }
            }
            "socks5" => {
                let dst: Uri = format!("http://{host}:{port}")
                    .parse()
                    .map_err(|e| invalid(format!("{e}")))?;
                // Like Go's SOCKS5 dialer, the proxy resolves the API server's name.
                let socks = SocksV5::new(dst, http).local_dns(false);
                Route::Socks(if user.is_empty() {
                    socks
                } else {
                    socks.with_auth(user, pass.unwrap_or_default())
                })
            }
            other => {
                return Err(invalid(format!(
                    "scheme {other:?} is not supported; use http, https or socks5"
                )));
            }
        };
        Ok(ProxyConnector { route })
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

impl tower::Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match &mut self.route {
            Route::Direct(c) => c.poll_ready(cx).map_err(Into::into),
            Route::HttpProxy(c) => c.poll_ready(cx).map_err(Into::into),
            Route::HttpsProxy(c) => c.poll_ready(cx).map_err(Into::into),
            Route::Socks(c) => c
                .poll_ready(cx)
                .map_err(|e| BoxError::from(format!("SOCKS5 proxy: {e}"))),
        }
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        match &mut self.route {
            Route::Direct(c) => {
                let fut = c.call(dst);
                Box::pin(async move { Ok(ProxyStream::Tcp(fut.await?)) })
            }
            Route::HttpProxy(c) => {
                let fut = c.call(dst);
                Box::pin(async move { Ok(ProxyStream::Tcp(fut.await?)) })
            }
            Route::HttpsProxy(c) => {
                let fut = c.call(dst);
                Box::pin(async move { Ok(ProxyStream::Tls(Box::new(fut.await?))) })
            }
            Route::Socks(c) => {
                let fut = c.call(dst);
                Box::pin(async move {
                    let stream = fut
                        .await
                        .map_err(|e| BoxError::from(format!("SOCKS5 proxy: {e}")))?;
                    Ok(ProxyStream::Tcp(stream))
                })
            }
        }
    }
}

/// A connection to the API server, or to a proxy tunnelling to it.
pub(crate) enum ProxyStream {
    Tcp(TokioIo<TcpStream>),
    Tls(Box<MaybeHttpsStream<TokioIo<TcpStream>>>),
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        match self {
            ProxyStream::Tcp(s) => s.connected(),
            // The proxy's own TLS never negotiates h2 (its connector offers no ALPN), so only
            // the proxied flag matters.
            ProxyStream::Tls(s) => s.connected().proxy(true),
        }
    }
}

impl Read for ProxyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ProxyStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            ProxyStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl Write for ProxyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ProxyStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            ProxyStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ProxyStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            ProxyStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ProxyStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            ProxyStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ProxyStream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ProxyStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ProxyStream::Tcp(s) => s.is_write_vectored(),
            ProxyStream::Tls(s) => s.is_write_vectored(),
        }
    }
}
