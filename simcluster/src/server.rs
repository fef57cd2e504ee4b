//! The API server: TLS with ALPN (h2, http/1.1), the client certificate of each connection,
//! then per request: authentication, authorization, and the handler (health, discovery, the
//! read API, the proxy subresource). Unknown paths get the API server's 404 `Status`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use http::{Request, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::auth::User;
use crate::body::{Resp, json, respond};
use crate::shared::Shared;
use crate::status::Status;

/// A client connection that counts the bytes read from it.
struct Counted {
    inner: tokio::net::TcpStream,
    received: Arc<AtomicU64>,
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.received.fetch_add(read as u64, Ordering::Relaxed);
        polled
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Accepts connections until the task is aborted; connection tasks die with it.
pub(crate) async fn run(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut conns = JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        let tcp = Counted {
            inner: tcp,
            received: shared.received.clone(),
        };
        conns.spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            // A certificate here has already been verified against the cluster CA.
            let cert_user = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|der| crate::pki::cert_identity(der))
                .map(|(name, mut groups)| {
                    groups.push("system:authenticated".to_owned());
                    User { name, groups }
                });
            let cert_user = Arc::new(cert_user);
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                let cert_user = cert_user.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(
                        handle(shared, cert_user.as_ref().as_ref(), peer, req).await,
                    )
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// apimachinery `wsstream.IsWebSocketRequest`: an upgrade request whose `Upgrade` is
/// `websocket`.
fn is_websocket<B>(req: &Request<B>) -> bool {
    wire::headers::is_upgrade(req.headers())
        && req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// A random version-4 UUID, as the audit filter's `Audit-Id`.
fn uuid() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// What the API server's outer filters (apiserver `pkg/server/config.go`
/// `DefaultBuildHandlerChain`) put on every response before the handler writes:
/// `Audit-Id` (`WithAuditInit`), `Cache-Control: no-cache, private` (`WithCacheControl`) and,
/// after authentication, the priority-and-fairness UIDs (`WithPriorityAndFairness`). A proxied
/// response's own headers are *added* to these (Go's ReverseProxy `copyHeader`), so a backend's
/// `Cache-Control` arrives next to the API server's. A 101 is written raw after the hijack and
/// gets none.
fn add_filter_headers(resp: &mut Resp, authenticated: bool) {
    if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
        return;
    }
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&uuid()) {
        headers.insert("audit-id", v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache, private"),
    );
    if authenticated {
        headers.insert(
            "x-kubernetes-pf-flowschema-uid",
            http::HeaderValue::from_static("3e8a1a2c-0c51-4c4d-9bd7-5f3b4b0a1c01"),
        );
        headers.insert(
            "x-kubernetes-pf-prioritylevel-uid",
            http::HeaderValue::from_static("7d1c6a0e-2f4b-4e55-a0c3-6b2a9d4e8f02"),
        );
    }
    for (name, value) in resp.headers() {
        headers.append(name.clone(), value.clone());
    }
    *resp.headers_mut() = headers;
}

async fn handle(
    shared: Arc<Shared>,
    cert_user: Option<&User>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Resp {
    let (mut resp, authenticated) = admit(shared, cert_user, peer, req).await;
    add_filter_headers(&mut resp, authenticated);
    resp
}

/// Authentication and authorization, then the handler; also says whether the request was
/// authenticated.
async fn admit(
    shared: Arc<Shared>,
    cert_user: Option<&User>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> (Resp, bool) {
    // Go's server decodes the path; a bad escape is a plain 400 before any handler.
    let Some(path) = crate::rewrite::go_unescape_path(req.uri().path()) else {
        return (
            respond(400, "text/plain; charset=utf-8", "400 Bad Request"),
            false,
        );
    };
    let query = req.uri().query().map(str::to_owned);
    let info = crate::requestinfo::parse(req.method(), &path, query.as_deref());
    let user = match shared
        .authn
        .authenticate(cert_user, req.headers().get(header::AUTHORIZATION))
    {
        Ok(u) => u,
        Err(status) => return (status.into_response(), false),
    };
    let authenticated = !user.is_anonymous();
    if let Err(status) = shared.authn.authorize(&user, &info) {
        return (status.into_response(), authenticated);
    }
    tracing::debug!(method = %req.method(), path = %path, user = %user.name, "request");
    (
        route(shared, req, info, path, query, peer).await,
        authenticated,
    )
}

/// The handler of an admitted request: proxy, read API, health or discovery.
async fn route(
    shared: Arc<Shared>,
    mut req: Request<Incoming>,
    info: crate::requestinfo::RequestInfo,
    path: String,
    query: Option<String>,
    peer: SocketAddr,
) -> Resp {
    if info.is_resource && info.resource == "pods" && info.subresource == "portforward" {
        return crate::forwarding::serve(&shared, req, &info);
    }
    if info.is_resource && info.subresource == "proxy" {
        return crate::proxy::serve(shared.clone(), req, info, peer).await;
    }
    if info.is_resource {
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let Ok(state) = shared.cluster.read() else {
            return Status::internal("cluster state poisoned").into_response();
        };
        if info.verb == "watch" && is_websocket(&req) {
            return crate::api::serve_websocket_watch(&state, &info, query.as_deref(), &mut req);
        }
        return crate::api::serve(&state, &info, query.as_deref(), &accept);
    }
    match path.as_str() {
        "/healthz" | "/livez" | "/readyz" => {
            if query.as_deref().is_some_and(|q| q.contains("verbose")) {
                let name = &path[1..];
                return respond(
                    200,
                    "text/plain; charset=utf-8",
                    format!("[+]ping ok\n[+]log ok\n[+]etcd ok\n{name} check passed\n"),
                );
            }
            respond(200, "text/plain; charset=utf-8", "ok")
        }
        _ => match crate::api::discovery(&path, &shared.addr.to_string()) {
            Some(doc) if info.verb == "get" || info.verb == "head" => json(200, &doc),
            Some(_) => Status::unknown(
                405,
                "the server does not allow this method on the requested resource",
            )
            .into_response(),
            None => Status::path_not_found().into_response(),
        },
    }
}
