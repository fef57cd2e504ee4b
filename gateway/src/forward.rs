//! The API passthrough: build → send → shape for ordinary requests, and the upgrade path.
//!
//! Contract (kubectl proxy with apimachinery's `UpgradeAwareHandler`, `UseRequestLocation`,
//! `UseLocationHost`): the upstream request keeps the client's method, escaped path (after prefix
//! stripping), raw query, headers and streaming body; hop-by-hop headers go, the client address
//! is appended to `X-Forwarded-For`, `Host` becomes the API server's (set by the
//! [`Upstream`]). A client `Authorization` header wins over the kubeconfig's credentials, as with
//! kubectl (client-go's round trippers skip when one is present). The response is streamed back
//! frame by frame with hop-by-hop headers removed. Upgrades (any `Connection: upgrade`) go on
//! their own HTTP/1.1 connection; a 101 is tunnelled with `copy_bidirectional`, other answers
//! below 400 are kubectl's `500 invalid upgrade response`, answers from 400 are passed through.
//!
//! For service origins ([`Shaping::Origin`], see [`crate::origin`]) the same steps run with
//! three differences: the client's `Authorization`, `Impersonate-*` and (already checked)
//! `Origin` headers are removed and the kubeconfig's credentials are always used; the response
//! head and HTML body are un-prefixed by `rewrite`; failures are answered with an HTML page.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode, Uri, Version, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::body::{Body, empty, stream};
use crate::headers::{append_forwarded_for, is_upgrade, strip_hop_by_hop};
use crate::origin;
use crate::rescue::ProxyError;
use crate::upstream::Upstream;

/// How a forwarded request and its response are treated.
#[derive(Clone)]
pub(crate) enum Shaping {
    /// kubectl proxy's API passthrough: untouched, a client `Authorization` wins.
    Passthrough,
    /// A service origin: client credentials removed, the API server's prefix undone.
    Origin(Box<origin::OriginRequest>),
}

/// Forwards admitted API requests to one API server.
#[derive(Clone)]
pub(crate) struct ApiForwarder {
    upstream: Arc<dyn Upstream>,
    /// Bound on waiting for the API server's response head; `None` waits as long as kubectl.
    header_timeout: Option<Duration>,
    /// When the API server last answered (for readiness).
    answered: Arc<LastAnswer>,
}

/// The time of the API server's last answer, as milliseconds since `epoch` (0: never).
struct LastAnswer {
    epoch: Instant,
    millis: AtomicU64,
}

impl ApiForwarder {
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

    /// Notes that the API server answered (not with 401: then it is up, but not for us).
    fn record(&self, status: StatusCode) {
        if status != StatusCode::UNAUTHORIZED {
            let now = u64::try_from(self.answered.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.answered.millis.store(now.max(1), Ordering::Relaxed);
        }
    }

    /// Whether the API server answered within the last `window`.
    pub(crate) fn answered_within(&self, window: Duration) -> bool {
        let at = self.answered.millis.load(Ordering::Relaxed);
        at != 0 && self.answered.epoch.elapsed() <= Duration::from_millis(at).saturating_add(window)
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
        let send = self.upstream.send(req);
        let res = tokio::time::timeout(within, send)
            .await
            .unwrap_or_else(|_| {
                Err(ProxyError::Timeout {
                    server: self.upstream.server().to_owned(),
                    after: within,
                })
            })?;
        self.record(res.status());
        Ok(res.status())
    }

    /// The API server's authority as the gateway addresses it (`10.0.0.1:6443`), which the
    /// API server writes into the absolute URLs it rewrites.
    pub(crate) fn api_authority(&self) -> &str {
        let server = self.upstream.server();
        let rest = server.split_once("://").map_or(server, |(_, rest)| rest);
        rest.split('/').next().unwrap_or(rest)
    }

    /// Forwards `req` to `upstream_path` (escaped, from the classify step).
    pub(crate) async fn forward(
        &self,
        req: Request<Incoming>,
        upstream_path: &str,
        client: Option<IpAddr>,
        shaping: &Shaping,
    ) -> Response<Body> {
        let method = req.method().clone();
        let result = if is_upgrade(req.headers()) {
            self.upgrade(req, upstream_path, client, shaping).await
        } else {
            self.plain(req, upstream_path, client, shaping).await
        };
        result.unwrap_or_else(|err| match shaping {
            Shaping::Passthrough => err.into_response(&method, upstream_path),
            Shaping::Origin(origin) => origin.failure_page(&err),
        })
    }

    async fn plain(
        &self,
        req: Request<Incoming>,
        upstream_path: &str,
        client: Option<IpAddr>,
        shaping: &Shaping,
    ) -> Result<Response<Body>, ProxyError> {
        let out = self.build(req, upstream_path, client, false, shaping)?;
        let res = self.bounded(self.upstream.send(out)).await?;
        match shaping {
            Shaping::Passthrough => Ok(shape(res)),
            Shaping::Origin(origin) => Ok(origin.shape(res).await),
        }
    }

    /// Build: the upstream request from the client's, per the module contract. `upgrade` keeps
    /// `Connection`/`Upgrade` (Go's `tryUpgrade` sends the client's headers untouched).
    fn build(
        &self,
        req: Request<Incoming>,
        upstream_path: &str,
        client: Option<IpAddr>,
        upgrade: bool,
        shaping: &Shaping,
    ) -> Result<Request<Body>, ProxyError> {
        let (mut parts, body) = req.into_parts();
        parts.uri = self.upstream_uri(upstream_path, parts.uri.query())?;
        match shaping {
            // kubectl proxy: a client-sent `Authorization` (or `Impersonate-User`) wins over the
            // kubeconfig's (client-go's round trippers step aside when one is present).
            Shaping::Passthrough => {
                parts
                    .extensions
                    .insert(auth::ClientAuthorization::KeepIfPresent);
            }
            Shaping::Origin(_) => {
                parts.extensions.insert(auth::ClientAuthorization::Replace);
                origin::scrub_request_headers(&mut parts.headers);
            }
        }
        parts.version = Version::HTTP_11;
        if !upgrade {
            strip_hop_by_hop(&mut parts.headers, true);
        }
        parts.headers.remove(header::HOST);
        append_forwarded_for(&mut parts.headers, client);
        Ok(Request::from_parts(parts, stream(body)))
    }

    /// Origin-form URI: the path, then the raw query unchanged. The server's own path is the
    /// upstream's business (`--append-server-path`).
    fn upstream_uri(&self, path: &str, query: Option<&str>) -> Result<Uri, ProxyError> {
        let mut pq = String::with_capacity(path.len() + query.map_or(0, |q| q.len() + 1) + 1);
        if !path.starts_with('/') {
            pq.push('/');
        }
        pq.push_str(path);
        if let Some(q) = query {
            pq.push('?');
            pq.push_str(q);
        }
        Uri::try_from(pq).map_err(|e| ProxyError::Upstream {
            server: self.upstream.server().to_owned(),
            source: Box::new(e),
        })
    }

    async fn bounded<F>(&self, send: F) -> Result<Response<Incoming>, ProxyError>
    where
        F: Future<Output = Result<Response<Incoming>, ProxyError>>,
    {
        let res = match self.header_timeout {
            None => send.await,
            Some(after) => tokio::time::timeout(after, send).await.unwrap_or_else(|_| {
                Err(ProxyError::Timeout {
                    server: self.upstream.server().to_owned(),
                    after,
                })
            }),
        };
        if let Ok(res) = &res {
            self.record(res.status());
        }
        res
    }

    async fn upgrade(
        &self,
        mut req: Request<Incoming>,
        upstream_path: &str,
        client: Option<IpAddr>,
        shaping: &Shaping,
    ) -> Result<Response<Body>, ProxyError> {
        let client_side = hyper::upgrade::on(&mut req);
        let path = upstream_path.to_owned();
        let out = self.build(req, upstream_path, client, true, shaping)?;
        let mut res = self.bounded(self.upstream.send_upgrade(out)).await?;
        let status = res.status();
        if status == StatusCode::SWITCHING_PROTOCOLS {
            let server_side = hyper::upgrade::on(&mut res);
            tokio::spawn(tunnel(client_side, server_side, path));
            let (mut parts, _) = res.into_parts();
            parts.version = Version::HTTP_11;
            if let Shaping::Origin(origin) = shaping {
                origin.shape_headers(&mut parts.headers);
            }
            return Ok(Response::from_parts(parts, empty()));
        }
        if status.as_u16() < 400 {
            return Err(ProxyError::InvalidUpgradeResponse {
                status: status.as_u16(),
            });
        }
        // kubectl writes the refusal on the hijacked connection and closes it.
        let mut res = match shaping {
            Shaping::Passthrough => shape(res),
            Shaping::Origin(origin) => origin.shape(res).await,
        };
        res.headers_mut()
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
        Ok(res)
    }
}

/// Shape: the API server's answer for the client, streamed, hop-by-hop headers removed.
pub(crate) fn shape(res: Response<Incoming>) -> Response<Body> {
    let (mut parts, body) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    parts.version = Version::HTTP_11;
    Response::from_parts(parts, stream(body))
}

/// Joins the two upgraded connections until either side closes.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    server: hyper::upgrade::OnUpgrade,
    path: String,
) {
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
