//! Send: the single seam between the gateway and the API server.
//!
//! Contract: an [`Upstream`] takes a request whose URI is in origin form (`/api/v1/pods?x=y`),
//! sets the scheme, authority, server path (with `--append-server-path`) and `Host` of the API
//! server, attaches credentials according to the request's `auth::ClientAuthorization`
//! extension, and returns the response head with a streaming body. [`Upstream::send_upgrade`]
//! does the same on a fresh HTTP/1.1 connection whose response can be upgraded with
//! `hyper::upgrade::on`. Failures come back as [`ProxyError`]s already classified by the client
//! (connect, TLS, timeout, credentials), so the rescue step never inspects transport internals.
//! The real implementation is `auth::ApiClient`; tests plug in their own.

use std::future::Future;
use std::pin::Pin;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::body::Body;
use crate::rescue::ProxyError;

/// A boxed, sendable future (the trait is object-safe so tests can plug in their own).
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The API server, as the gateway sees it.
pub(crate) trait Upstream: Send + Sync + 'static {
    /// Sends an ordinary request (pooled; HTTP/2 when the server offers it).
    fn send(&self, req: Request<Body>) -> BoxFuture<Result<Response<Incoming>, ProxyError>>;

    /// Sends an upgrade request (WebSocket, SPDY) on its own HTTP/1.1 connection.
    fn send_upgrade(&self, req: Request<Body>)
    -> BoxFuture<Result<Response<Incoming>, ProxyError>>;

    /// The server's base URL, for messages (`https://10.0.0.1:6443`). Never contains
    /// credentials.
    fn server(&self) -> &str;
}

/// The API server through `auth::ApiClient`.
struct ApiUpstream {
    client: auth::ApiClient,
    server: String,
}

impl ApiUpstream {
    fn call(
        &self,
        req: Request<Body>,
        upgrade: bool,
    ) -> BoxFuture<Result<Response<Incoming>, ProxyError>> {
        // A clone is two reference counts; the future then owns everything it needs.
        let client = self.client.clone();
        Box::pin(async move {
            let sent = if upgrade {
                client.send_upgrade(req).await
            } else {
                client.send(req).await
            };
            sent.map_err(ProxyError::Api)
        })
    }
}

impl Upstream for ApiUpstream {
    fn send(&self, req: Request<Body>) -> BoxFuture<Result<Response<Incoming>, ProxyError>> {
        self.call(req, false)
    }

    fn send_upgrade(
        &self,
        req: Request<Body>,
    ) -> BoxFuture<Result<Response<Incoming>, ProxyError>> {
        self.call(req, true)
    }

    fn server(&self) -> &str {
        &self.server
    }
}

/// Builds the authenticated client to the API server of `config`. `append_server_path` keeps
/// the kubeconfig server's path in front of every request path (`--append-server-path`). The
/// gateway sends through [`upstream_of`] it; discovery (the index page, origin error pages)
/// uses it directly.
pub(crate) fn connect_client(
    config: &config::ClusterConfig,
    append_server_path: bool,
) -> Result<auth::ApiClient, auth::BuildError> {
    let options = auth::ClientOptions {
        append_server_path,
        ..auth::ClientOptions::default()
    };
    auth::ApiClient::new(config, options)
}

/// The [`Upstream`] over `client` (a clone shares its connection pool and credentials).
pub(crate) fn upstream_of(client: auth::ApiClient) -> Box<dyn Upstream> {
    let server = client.server().as_str().trim_end_matches('/').to_owned();
    Box::new(ApiUpstream { client, server })
}
