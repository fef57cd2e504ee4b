//! Send: the single seam between the gateway and the API server.
//!
//! Contract: an [`Upstream`] takes a request whose URI is in origin form (`/api/v1/pods?x=y`),
//! sets the scheme, authority, server path (with `--append-server-path`), `Host` and HTTP
//! version for the API server, attaches credentials according to the request's
//! `auth::ClientAuthorization` extension, and returns the response head with a streaming body.
//! [`Upstream::send_upgrade`] does the same on a fresh HTTP/1.1 connection whose response can
//! be upgraded with `hyper::upgrade::on`. Failures come back as [`ProxyError`]s already
//! classified by the client (connect, TLS, timeout, credentials), so the rescue step never
//! inspects transport internals. The real implementation is `auth::ApiClient`; tests plug in
//! their own.
//!
//! [`Sender`] is what the request path calls: it bounds the wait for the response head
//! (`--header-timeout`, `--request-timeout`), notes when the API server last answered (for
//! readiness), and for an upgrade joins the two connections once the API server switches
//! protocols (kubectl's `UpgradeAwareHandler`: a 101 is tunnelled both ways until either side
//! closes; another answer below 400 is `invalid upgrade response`). A port-forward transport
//! plugs in here, as another way to send, and nothing before or after this file changes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Request, Response, StatusCode, Uri, header};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use crate::body::{Body, empty};
use crate::rescue::ProxyError;

/// A boxed, sendable future (the trait is object-safe so tests can plug in their own).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The API server, as the gateway sees it.
pub trait Upstream: Send + Sync + 'static {
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
pub fn connect_client(
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
pub fn upstream_of(client: auth::ApiClient) -> Box<dyn Upstream> {
    let server = client.server().as_str().trim_end_matches('/').to_owned();
    Box::new(ApiUpstream { client, server })
}

/// Sends built requests through one [`Upstream`]; see the module contract.
#[derive(Clone)]
pub(crate) struct Sender {
    upstream: Arc<dyn Upstream>,
    /// Bound on waiting for the API server's response head; `None` waits as long as kubectl.
    header_timeout: Option<Duration>,
    /// When the API server last answered (for readiness).
    answered: Arc<LastAnswer>,
}

/// The time of the API server's last answer, as milliseconds since `epoch` (0: never), on
/// tokio's clock so that paused-time tests can move it.
struct LastAnswer {
    epoch: Instant,
    millis: AtomicU64,
}

impl Sender {
    pub(crate) fn new(upstream: Arc<dyn Upstream>, header_timeout: Option<Duration>) -> Self {
        Self {
            upstream,
            header_timeout,
            answered: Arc::new(LastAnswer {
                epoch: Instant::now(),
                millis: AtomicU64::new(0),
            }),
        }
    }

    /// The API server's base URL, for messages.
    pub(crate) fn server(&self) -> &str {
        self.upstream.server()
    }

    /// The API server's authority as the gateway addresses it (`10.0.0.1:6443`), which the
    /// API server writes into the absolute URLs it rewrites.
    pub(crate) fn api_authority(&self) -> &str {
        let server = self.upstream.server();
        let rest = server.split_once("://").map_or(server, |(_, rest)| rest);
        rest.split('/').next().unwrap_or(rest)
    }

    /// Sends `req`. With `client` (the client side of an upgrade request) it goes on its own
    /// connection, and a `101` is tunnelled to the client in the background; the response
    /// returned is then the head alone.
    pub(crate) async fn send(
        &self,
        req: Request<Body>,
        client: Option<OnUpgrade>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let Some(client) = client else {
            return self.bounded(self.upstream.send(req)).await;
        };
        let path = req.uri().path().to_owned();
        let mut res = self.bounded(self.upstream.send_upgrade(req)).await?;
        let status = res.status();
        if status == StatusCode::SWITCHING_PROTOCOLS {
            let server = hyper::upgrade::on(&mut res);
            tokio::spawn(tunnel(client, server, path));
        } else if status.as_u16() < 400 {
            return Err(ProxyError::InvalidUpgradeResponse {
                status: status.as_u16(),
            });
        }
        Ok(res)
    }

    /// `GET /version` with the kubeconfig's credentials, bounded by `within`: the status the
    /// API server answered with.
    pub(crate) async fn probe(&self, within: Duration) -> Result<StatusCode, ProxyError> {
        let mut req = Request::new(empty());
        *req.uri_mut() = Uri::from_static("/version");
        req.headers_mut().insert(
            header::ACCEPT,
            http::HeaderValue::from_static("application/json"),
        );
        let res = self.within(within, self.upstream.send(req)).await?;
        self.record(res.status());
        Ok(res.status())
    }

    /// Whether the API server answered within the last `window`.
    pub(crate) fn answered_within(&self, window: Duration) -> bool {
        let at = self.answered.millis.load(Ordering::Relaxed);
        at != 0 && self.answered.epoch.elapsed() <= Duration::from_millis(at).saturating_add(window)
    }

    /// Notes that the API server answered (not with 401: then it is up, but not for us).
    fn record(&self, status: StatusCode) {
        if status != StatusCode::UNAUTHORIZED {
            let now = u64::try_from(self.answered.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.answered.millis.store(now.max(1), Ordering::Relaxed);
        }
    }

    async fn bounded(
        &self,
        send: BoxFuture<Result<Response<Incoming>, ProxyError>>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let res = match self.header_timeout {
            None => send.await,
            Some(after) => self.within(after, send).await,
        };
        if let Ok(res) = &res {
            self.record(res.status());
        }
        res
    }

    async fn within(
        &self,
        after: Duration,
        send: BoxFuture<Result<Response<Incoming>, ProxyError>>,
    ) -> Result<Response<Incoming>, ProxyError> {
        tokio::time::timeout(after, send).await.unwrap_or_else(|_| {
            Err(ProxyError::Timeout {
                server: self.upstream.server().to_owned(),
                after,
            })
        })
    }
}

/// Joins the two upgraded connections until either side closes.
async fn tunnel(client: OnUpgrade, server: OnUpgrade, path: String) {
    let (client, server) = match tokio::try_join!(client, server) {
        Ok(pair) => pair,
        Err(err) => {
            tracing::warn!(path, "upgrade failed: {err}");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut server = TokioIo::new(server);
    match tokio::io::copy_bidirectional(&mut client, &mut server).await {
        Ok((up, down)) => tracing::debug!(path, up, down, "upgraded connection closed"),
        Err(err) => tracing::debug!(path, "upgraded connection ended: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that never answers.
    struct Silent;

    impl Upstream for Silent {
        fn send(&self, _: Request<Body>) -> BoxFuture<Result<Response<Incoming>, ProxyError>> {
            Box::pin(std::future::pending())
        }
        fn send_upgrade(
            &self,
            _: Request<Body>,
        ) -> BoxFuture<Result<Response<Incoming>, ProxyError>> {
            Box::pin(std::future::pending())
        }
        fn server(&self) -> &str {
            "https://10.0.0.1:6443/prefix"
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_head_wait_is_bounded_and_readiness_ages_on_tokios_clock() {
        let sender = Sender::new(Arc::new(Silent), Some(Duration::from_secs(30)));
        assert_eq!(sender.api_authority(), "10.0.0.1:6443");
        let started = Instant::now();
        let err = sender.send(Request::new(empty()), None).await.unwrap_err();
        assert!(matches!(err, ProxyError::Timeout { .. }), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert!(
            !sender.answered_within(Duration::from_secs(10)),
            "never answered"
        );
        sender.record(StatusCode::OK);
        assert!(sender.answered_within(Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!sender.answered_within(Duration::from_secs(10)));
        sender.record(StatusCode::UNAUTHORIZED);
        assert!(
            !sender.answered_within(Duration::from_secs(10)),
            "a 401 is not readiness"
        );
        let err = sender.probe(Duration::from_secs(5)).await.unwrap_err();
        assert!(
            matches!(err, ProxyError::Timeout { after, .. } if after == Duration::from_secs(5))
        );
    }
}
