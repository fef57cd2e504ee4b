//! The gateway's own pages on its API address, under [`LOCAL_PREFIX`]: the index of services
//! (`/.kgate/`), liveness (`/.kgate/healthz`), readiness (`/.kgate/readyz`) and what the
//! gateway is (`/.kgate/info`).
//!
//! Contract: no Kubernetes API path begins with `/.` (the API server serves `/api`, `/apis`,
//! `/healthz`, `/livez`, `/readyz`, `/version`, `/openapi`, `/metrics`, `/logs` and the like),
//! so these pages never shadow a path the API passthrough would forward. Only `kgate serve`
//! and `kgate demo` serve them; `kgate proxy` forwards everything as kubectl does.
//!
//! - `healthz`: 200 `ok` while the gateway runs.
//! - `readyz`: 200 `ok` when the API server answered within [`READY_WITHIN`] (any proxied
//!   request counts), else after a fresh `GET /version` answered with 2xx; otherwise 503 with
//!   the reason on one line.
//! - `info`: `{"gateway":"kgate","version":...,"server":...}`, the API server it serves;
//!   `kgate open` reuses a running gateway only when it serves the same API server.
//! - the index: every service by namespace with links to its origins and its readiness
//!   (`discovery::index`), served with a `Content-Security-Policy` that allows only its own
//!   inline style and script.

use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use urlgrammar::ContextLabel;

use crate::body::{Body, empty};
use crate::forward::ApiForwarder;
use crate::origin::{escape, html_response, page};
use crate::rescue::{go_error, moved_permanently, not_found};

/// Where the gateway's own pages live on its API address.
pub(crate) const LOCAL_PREFIX: &str = "/.kgate";

/// The index page's path.
pub(crate) const INDEX_PATH: &str = "/.kgate/";

/// An API server answer younger than this makes the gateway ready without a probe.
pub(crate) const READY_WITHIN: Duration = Duration::from_secs(10);

/// The bound on the readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `path` is one of the gateway's own pages.
pub(crate) fn is_local(path: &str) -> bool {
    path == LOCAL_PREFIX || path.starts_with(INDEX_PATH)
}

/// The gateway's own pages.
pub(crate) struct LocalPages {
    /// For the index; `None` in tests without a cluster.
    lister: Option<auth::ApiClient>,
    /// The index page's title (`kgate: <context>`).
    title: String,
    context: Option<ContextLabel>,
}

impl LocalPages {
    pub(crate) fn new(
        lister: Option<auth::ApiClient>,
        title: String,
        context: Option<ContextLabel>,
    ) -> Self {
        Self {
            lister,
            title,
            context,
        }
    }

    /// Answers a request for a path under [`LOCAL_PREFIX`]; `port` is the port the client
    /// connected to (for the index's origin links).
    pub(crate) async fn serve<B>(
        &self,
        api: &ApiForwarder,
        req: &Request<B>,
        port: Option<u16>,
    ) -> Response<Body> {
        let method = req.method();
        let path = req.uri().path();
        if path == LOCAL_PREFIX {
            return moved_permanently(method, INDEX_PATH);
        }
        if !matches!(*method, Method::GET | Method::HEAD) {
            let mut res = go_error(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed");
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return res;
        }
        let res = match &path[INDEX_PATH.len()..] {
            "" => self.index(port).await,
            "healthz" => text(StatusCode::OK, "ok"),
            "readyz" => readiness(api).await,
            "info" => info(api),
            _ => not_found(),
        };
        if *method == Method::HEAD {
            let (parts, _) = res.into_parts();
            return Response::from_parts(parts, empty());
        }
        res
    }

    async fn index(&self, port: Option<u16>) -> Response<Body> {
        let Some(client) = &self.lister else {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "No index",
                "<p>This gateway has no client for listing services.</p>",
            );
        };
        let opts = discovery::index::IndexOptions {
            title: self.title.clone(),
            gateway: discovery::urls::GatewayAddr {
                port: port.unwrap_or(80),
                context: self.context.clone(),
            },
        };
        match discovery::index::index_page(client, &opts).await {
            Ok(html) => html_response(
                StatusCode::OK,
                html,
                "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
                 frame-ancestors 'none'",
            ),
            Err(err) => page(
                StatusCode::BAD_GATEWAY,
                "Cannot list the services",
                &format!(
                    "<p>Listing the services through the API server failed:</p>\
                     <blockquote>{}</blockquote><p>Reload to try again; \
                     <code>kgate urls -A</code> shows the same list in a terminal.</p>",
                    escape(&err.to_string())
                ),
            ),
        }
    }
}

/// `readyz`: see the module contract.
async fn readiness(api: &ApiForwarder) -> Response<Body> {
    if api.answered_within(READY_WITHIN) {
        return text(StatusCode::OK, "ok");
    }
    match api.probe(PROBE_TIMEOUT).await {
        Ok(status) if status.is_success() => text(StatusCode::OK, "ok"),
        Ok(status) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "not ready: the API server {} answered GET /version with {status}",
                api.server()
            ),
        ),
        Err(err) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("not ready: {}", err.describe().1),
        ),
    }
}

/// `info`: see the module contract.
fn info(api: &ApiForwarder) -> Response<Body> {
    let info = GatewayInfo {
        gateway: GATEWAY_NAME.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        server: api.server().to_owned(),
    };
    let body = serde_json::to_vec(&info).unwrap_or_default();
    let mut res = Response::new(crate::body::full(body));
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// What `/.kgate/info` says of a gateway.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct GatewayInfo {
    /// Always [`GATEWAY_NAME`]: another server on the port does not say it.
    pub(crate) gateway: String,
    pub(crate) version: String,
    /// The API server's URL, as the gateway reaches it.
    pub(crate) server: String,
}

/// [`GatewayInfo::gateway`].
pub(crate) const GATEWAY_NAME: &str = "kgate";

fn text(status: StatusCode, line: &str) -> Response<Body> {
    let mut res = go_error(status, line);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths() {
        assert!(is_local("/.kgate"));
        assert!(is_local("/.kgate/"));
        assert!(is_local("/.kgate/readyz"));
        assert!(!is_local("/.kgatex"));
        assert!(!is_local("/healthz"));
        assert!(!is_local("/api/v1/.kgate/"));
    }
}
