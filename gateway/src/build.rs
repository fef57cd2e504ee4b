//! Build: the upstream request from the client's, and the way its answer will be shaped.
//!
//! Contract (kubectl proxy with apimachinery's `UpgradeAwareHandler`, `UseRequestLocation`,
//! `UseLocationHost`): the upstream request keeps the client's method, escaped path, raw query,
//! headers and streaming body; hop-by-hop headers go (an upgrade keeps `Connection` and
//! `Upgrade`: Go's `tryUpgrade` sends the client's headers untouched), and the client address
//! is appended to `X-Forwarded-For`. The `send` seam then sets the API server's address, `Host`
//! and HTTP version. Credentials are the `auth` crate's one business; what build decides is the
//! policy, in the request's `auth::ClientAuthorization`:
//!
//! - [`api`], kubectl's API passthrough: a client `Authorization` (or `Impersonate-User`) wins
//!   over the kubeconfig's, as client-go's round trippers step aside when one is present;
//! - [`origin`], a service origin or mount: the client's `Authorization` and `Impersonate-*`
//!   never reach the API server (`Replace`), `Origin` is dropped (admit has checked it, and the
//!   app behind the proxy sees another `Host` and would refuse a same-origin request whose
//!   `Origin` it cannot match), `Accept-Encoding` is narrowed to what `rewrite` decodes. The
//!   path is the origin's path under the target's proxy prefix, refused if it could climb out;
//!   a target without a port gets its default one (`discovery::ports`), and a port named
//!   `https` or numbered 443 is reached with `https:` unless a scheme was written.

use std::net::IpAddr;

use http::{Request, Uri, header};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use urlgrammar::{Rest, Scheme, Target};

use crate::body::{Body, stream};
use crate::classify::OriginTarget;
use crate::rescue::{Audience, Failure, ProxyError};
use crate::shape::{OriginShape, Shape};

/// A request ready to send, and what comes after it.
pub(crate) struct Outbound {
    pub(crate) request: Request<Body>,
    /// The client side of an upgrade, when the request asks for one.
    pub(crate) client_upgrade: Option<OnUpgrade>,
    pub(crate) shape: Shape,
    /// Who reads a failure to send it.
    pub(crate) audience: Audience,
}

/// What build needs from the cluster it sends to.
pub(crate) struct Upstream<'a> {
    /// The API server's base URL, for messages.
    pub(crate) server: &'a str,
    /// Its authority as the gateway addresses it, which it writes into rewritten URLs.
    pub(crate) authority: &'a str,
    /// Default ports; `None` in tests without a cluster (a port-less target goes as it is).
    pub(crate) ports: Option<&'a discovery::ports::DefaultPorts<auth::ApiClient>>,
}

/// The API passthrough of `req` to `upstream_path` (escaped, from classify).
pub(crate) fn api(
    req: Request<Incoming>,
    upstream_path: &str,
    client: Option<IpAddr>,
    upstream: &Upstream<'_>,
) -> Result<Outbound, Failure> {
    let audience = Audience::Api {
        method: req.method().clone(),
        path: upstream_path.to_owned(),
    };
    let upgrade = wire::headers::is_upgrade(req.headers());
    let (request, client_upgrade) = forwarded(
        req,
        upstream_path,
        client,
        auth::ClientAuthorization::KeepIfPresent,
        upstream.server,
    )
    .map_err(|error| Failure::proxy(error, audience.clone()))?;
    Ok(Outbound {
        request,
        client_upgrade,
        shape: Shape::Passthrough { upgrade },
        audience,
    })
}

/// The request to `origin`'s target for `req`, a request on that origin.
pub(crate) async fn origin(
    req: Request<Incoming>,
    origin: OriginTarget,
    client: Option<IpAddr>,
    upstream: &Upstream<'_>,
) -> Result<Outbound, Failure> {
    // The query is checked here and forwarded raw, after the path.
    let rest = Rest::new(req.uri().path(), req.uri().query())
        .and_then(|_| Rest::new(req.uri().path(), None))
        .map_err(|err| Failure::BadAddress {
            why: format!("This path cannot be passed on to the service without leaving it: {err}"),
        })?;
    let target = resolved(origin.target, upstream.ports).await;
    let ctx = rewrite::ShapeContext::new(&target.proxy_prefix(), upstream.authority, &origin.host)
        .map_err(|err| Failure::BadAddress {
            why: err.to_string(),
        })?;
    let wants_html = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("text/html")));
    let upgrade = wire::headers::is_upgrade(req.headers());
    let audience = Audience::Browser {
        target: target.clone(),
    };
    let upstream_path = target.api_path(&rest);
    let (mut request, client_upgrade) = forwarded(
        req,
        &upstream_path,
        client,
        auth::ClientAuthorization::Replace,
        upstream.server,
    )
    .map_err(|error| Failure::proxy(error, audience.clone()))?;
    let headers = request.headers_mut();
    headers.remove(header::ORIGIN);
    rewrite::shape_request_headers(headers);
    let shape = Shape::Origin(Box::new(OriginShape {
        ctx,
        wants_html,
        upgrade,
        target,
        port: origin.port,
    }));
    Ok(Outbound {
        request,
        client_upgrade,
        shape,
        audience,
    })
}

/// `target` with its default port, and `https:` for a port named `https` or numbered 443
/// unless a scheme was written.
async fn resolved(
    target: Target,
    ports: Option<&discovery::ports::DefaultPorts<auth::ApiClient>>,
) -> Target {
    let target = match ports {
        Some(ports) => ports.resolve(target).await,
        None => target,
    };
    if target.scheme() == Scheme::Unspecified && target.effective_scheme() == Scheme::Https {
        target.with_scheme(Scheme::Https)
    } else {
        target
    }
}

/// The steps both kinds share; see the module contract.
fn forwarded(
    mut req: Request<Incoming>,
    upstream_path: &str,
    client: Option<IpAddr>,
    credentials: auth::ClientAuthorization,
    server: &str,
) -> Result<(Request<Body>, Option<OnUpgrade>), ProxyError> {
    let client_upgrade =
        wire::headers::is_upgrade(req.headers()).then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    parts.uri =
        upstream_uri(upstream_path, parts.uri.query()).map_err(|e| ProxyError::Upstream {
            server: server.to_owned(),
            source: Box::new(e),
        })?;
    parts.extensions.insert(credentials);
    if client_upgrade.is_none() {
        wire::headers::strip_hop_by_hop(&mut parts.headers, true);
    }
    wire::headers::append_forwarded_for(&mut parts.headers, client);
    Ok((Request::from_parts(parts, stream(body)), client_upgrade))
}

/// Origin-form URI: the path, then the raw query unchanged. The server's own path is the
/// upstream's business (`--append-server-path`).
fn upstream_uri(path: &str, query: Option<&str>) -> Result<Uri, http::uri::InvalidUri> {
    let mut pq = String::with_capacity(path.len() + query.map_or(0, |q| q.len() + 1) + 1);
    if !path.starts_with('/') {
        pq.push('/');
    }
    pq.push_str(path);
    if let Some(q) = query {
        pq.push('?');
        pq.push_str(q);
    }
    Uri::try_from(pq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_is_the_path_then_the_raw_query() {
        assert_eq!(
            upstream_uri("/api/v1/pods", Some("watch=1&x=%2F")).unwrap(),
            "/api/v1/pods?watch=1&x=%2F"
        );
        assert_eq!(upstream_uri("version", None).unwrap(), "/version");
        assert!(upstream_uri("/a b", None).is_err());
    }
}
