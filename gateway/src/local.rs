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
//!
//! Their refusals (a method other than `GET` or `HEAD`, an unknown page) are `rescue`'s to
//! answer, and a `HEAD` of any of them gets the head alone ([`head_only`]).

use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use urlgrammar::ContextLabel;

use crate::body::{Body, empty, full};
use crate::pages::{INDEX_CSP, INDEX_PATH, LOCAL_PREFIX, html_response};
use crate::rescue::{Error, Failure, Refusal};
use crate::secret::AccessToken;
use crate::send::Sender;

/// An API server answer younger than this makes the gateway ready without a probe.
pub(crate) const READY_WITHIN: Duration = Duration::from_secs(10);

/// The bound on the readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A response to `HEAD`: the head of `res`, without its body.
pub(crate) fn head_only(method: &Method, res: Response<Body>) -> Response<Body> {
    if *method != Method::HEAD {
        return res;
    }
    let (parts, _) = res.into_parts();
    Response::from_parts(parts, empty())
}

/// The gateway's own pages.
pub(crate) struct LocalPages {
    /// For the index; `None` in tests without a cluster.
    lister: Option<auth::ApiClient>,
    /// The index page's title (`kgate: <context>`).
    title: String,
    context: Option<ContextLabel>,
    /// The gateway's own token, which the index's links carry (the page itself needs it).
    token: Option<AccessToken>,
}

impl LocalPages {
    pub(crate) fn new(
        lister: Option<auth::ApiClient>,
        title: String,
        context: Option<ContextLabel>,
        token: Option<AccessToken>,
    ) -> Self {
        Self {
            lister,
            title,
            context,
            token,
        }
    }

    /// Answers a request for a path under [`LOCAL_PREFIX`]; `port` is the port the client
    /// connected to (for the index's origin links).
    pub(crate) async fn serve<B>(
        &self,
        api: &Sender,
        req: &Request<B>,
        port: Option<u16>,
    ) -> Result<Response<Body>, Error> {
        let method = req.method();
        let path = req.uri().path();
        if path == LOCAL_PREFIX {
            return Err(Refusal::Moved {
                location: INDEX_PATH.to_owned(),
                method: method.clone(),
            }
            .into());
        }
        if !matches!(*method, Method::GET | Method::HEAD) {
            return Err(Refusal::MethodNotAllowed.into());
        }
        match &path[INDEX_PATH.len()..] {
            "" => self.index(port).await,
            "healthz" => Ok(text(StatusCode::OK, "ok")),
            "readyz" => Ok(readiness(api).await),
            "info" => Ok(info(api)),
            _ => Err(Refusal::NotFound.into()),
        }
    }

    async fn index(&self, port: Option<u16>) -> Result<Response<Body>, Error> {
        let Some(client) = &self.lister else {
            return Err(Failure::NoIndex.into());
        };
        let opts = discovery::index::IndexOptions {
            title: self.title.clone(),
            gateway: discovery::urls::GatewayAddr {
                port: port.unwrap_or(80),
                context: self.context.clone(),
                token: self.token.as_ref().map(|t| t.expose().to_owned()),
            },
        };
        match discovery::index::index_page(client, &opts).await {
            Ok(html) => Ok(html_response(StatusCode::OK, html, INDEX_CSP)),
            Err(error) => Err(Failure::Index { error }.into()),
        }
    }
}

/// `readyz`: see the module contract.
async fn readiness(api: &Sender) -> Response<Body> {
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
fn info(api: &Sender) -> Response<Body> {
    let info = GatewayInfo {
        gateway: GATEWAY_NAME.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        server: api.server().to_owned(),
    };
    let body = serde_json::to_vec(&info).unwrap_or_default();
    let mut res = Response::new(full(body));
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
pub struct GatewayInfo {
    /// Always [`GATEWAY_NAME`]: another server on the port does not say it.
    pub gateway: String,
    pub version: String,
    /// The API server's URL, as the gateway reaches it.
    pub server: String,
}

/// [`GatewayInfo::gateway`].
pub const GATEWAY_NAME: &str = "kgate";

fn text(status: StatusCode, line: &str) -> Response<Body> {
    let mut res = crate::rescue::go::error(status, line);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
