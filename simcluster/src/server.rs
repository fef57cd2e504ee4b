//! The API server: TLS with ALPN (h2, http/1.1), the client certificate of each connection,
//! then per request: authentication, authorization, and the handler (health, discovery, the
//! read API, the proxy subresource). Unknown paths get the API server's 404 `Status`.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use http::{Request, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::auth::{Authn, User};
use crate::body::{Resp, json, respond};
use crate::cluster::ClusterState;
use crate::status::Status;

/// What every request handler shares.
pub(crate) struct Shared {
    pub(crate) cluster: RwLock<ClusterState>,
    pub(crate) authn: Authn,
    pub(crate) addr: SocketAddr,
    pub(crate) endpoint_tls: Arc<rustls::ClientConfig>,
    pub(crate) endpoints: crate::upstream::EndpointClient,
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

async fn handle(
    shared: Arc<Shared>,
    cert_user: Option<&User>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Resp {
    // Go's server decodes the path; a bad escape is a plain 400 before any handler.
    let Some(path) = crate::rewrite::go_unescape_path(req.uri().path()) else {
        return respond(400, "text/plain; charset=utf-8", "400 Bad Request");
    };
    let query = req.uri().query().map(str::to_owned);
    let info = crate::requestinfo::parse(req.method(), &path, query.as_deref());
    let user = match shared
        .authn
        .authenticate(cert_user, req.headers().get(header::AUTHORIZATION))
    {
        Ok(u) => u,
        Err(status) => return status.into_response(),
    };
    if let Err(status) = shared.authn.authorize(&user, &info) {
        return status.into_response();
    }
    tracing::debug!(method = %req.method(), path = %path, user = %user.name, "request");
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
