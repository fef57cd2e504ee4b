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

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode, Uri, Version, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::body::{Body, empty, stream};
use crate::headers::{append_forwarded_for, is_upgrade, strip_hop_by_hop};
use crate::rescue::ProxyError;
use crate::upstream::Upstream;

/// Forwards admitted API requests to one API server.
#[derive(Clone)]
pub(crate) struct ApiForwarder {
    upstream: Arc<dyn Upstream>,
    /// Bound on waiting for the API server's response head; `None` waits as long as kubectl.
    header_timeout: Option<Duration>,
}

impl ApiForwarder {
    pub(crate) fn new(upstream: Arc<dyn Upstream>, header_timeout: Option<Duration>) -> Self {
        Self {
            upstream,
            header_timeout,
        }
    }

    /// Forwards `req` to `upstream_path` (escaped, from the classify step).
    pub(crate) async fn forward(
        &self,
        req: Request<Incoming>,
        upstream_path: &str,
        client: Option<IpAddr>,
    ) -> Response<Body> {
        let method = req.method().clone();
        let result = if is_upgrade(req.headers()) {
            self.upgrade(req, upstream_path, client).await
        } else {
            self.plain(req, upstream_path, client).await
        };
        result.unwrap_or_else(|err| err.into_response(&method, upstream_path))
    }

    async fn plain(
        &self,
        req: Request<Incoming>,
        upstream_path: &str,
        client: Option<IpAddr>,
    ) -> Result<Response<Body>, ProxyError> {
        let out = self.build(req, upstream_path, client, false)?;
        let res = self.bounded(self.upstream.send(out)).await?;
        Ok(shape(res))
    }

    /// Build: the upstream request from the client's, per the module contract. `upgrade` keeps
    /// `Connection`/`Upgrade` (Go's `tryUpgrade` sends the client's headers untouched).
    fn build(
        &self,
        req: Request<Incoming>,
        upstream_path: &str,
        client: Option<IpAddr>,
        upgrade: bool,
    ) -> Result<Request<Body>, ProxyError> {
        let (mut parts, body) = req.into_parts();
        parts.uri = self.upstream_uri(upstream_path, parts.uri.query())?;
        // kubectl proxy: a client-sent `Authorization` (or `Impersonate-User`) wins over the
        // kubeconfig's (client-go's round trippers step aside when one is present).
        parts
            .extensions
            .insert(auth::ClientAuthorization::KeepIfPresent);
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
        match self.header_timeout {
            None => send.await,
            Some(after) => tokio::time::timeout(after, send).await.unwrap_or_else(|_| {
                Err(ProxyError::Timeout {
                    server: self.upstream.server().to_owned(),
                    after,
                })
            }),
        }
    }

    async fn upgrade(
        &self,
        mut req: Request<Incoming>,
        upstream_path: &str,
        client: Option<IpAddr>,
    ) -> Result<Response<Body>, ProxyError> {
        let client_side = hyper::upgrade::on(&mut req);
        let path = upstream_path.to_owned();
        let out = self.build(req, upstream_path, client, true)?;
        let mut res = self.bounded(self.upstream.send_upgrade(out)).await?;
        let status = res.status();
        if status == StatusCode::SWITCHING_PROTOCOLS {
            let server_side = hyper::upgrade::on(&mut res);
            tokio::spawn(tunnel(client_side, server_side, path));
            let (mut parts, _) = res.into_parts();
            parts.version = Version::HTTP_11;
            return Ok(Response::from_parts(parts, empty()));
        }
        if status.as_u16() < 400 {
            return Err(ProxyError::InvalidUpgradeResponse {
                status: status.as_u16(),
            });
        }
        // kubectl writes the refusal on the hijacked connection and closes it.
        let mut res = shape(res);
        res.headers_mut()
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
        Ok(res)
    }
}

/// Shape: the API server's answer for the client, streamed, hop-by-hop headers removed.
fn shape(res: Response<Incoming>) -> Response<Body> {
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
