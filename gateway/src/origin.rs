//! Service origins: every service at the root of its own `*.localhost` origin.
//!
//! Contract: a request whose `Host` is an origin host (`urlgrammar/HOSTS.md`, for example
//! `shop.demo.svc.localhost:8001`) goes to that one target's API proxy path and nowhere else:
//! the request path and query become the [`Rest`] after `/proxy` (so `/api/...` on an origin is
//! the app's, never the Kubernetes API), and a rest that could climb out of the prefix is
//! refused. The steps, in order:
//!
//! 1. the context label, when the host has one, must be the gateway's;
//! 2. cross-site protection ([`cross_site_refusal`]): a state-changing request (any method but
//!    `GET`, `HEAD`, `OPTIONS`, and every upgrade) whose `Origin` is not the origin itself, or
//!    whose `Sec-Fetch-Site` is `cross-site` or `same-site`, is refused with 403;
//! 3. the request is forwarded with the client's `Authorization`, `Impersonate-*` and `Origin`
//!    headers removed ([`scrub_request_headers`]) and the kubeconfig's credentials attached; an
//!    unnamed port named `https` or numbered 443 is reached with `https:` (`effective_scheme`);
//! 4. the response is un-prefixed by `rewrite` (HTML attributes, `Location`, `Refresh`,
//!    `Set-Cookie` paths, ...), streaming;
//! 5. when the API server itself refuses (its `Status` JSON: no such service, no endpoints,
//!    forbidden) and the client is a browser asking for HTML, the answer is a short page that
//!    says what failed and lists the services that do exist in the namespace, with links.
//!
//! Failures of the gateway (API server unreachable, timeout) are pages too, never a token or a
//! stack trace. Every page is sent with a `Content-Security-Policy` that allows no script.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use urlgrammar::{ContextLabel, Kind, OriginHost, Port, Rest, Scheme, Target};

use crate::body::{Body, full, stream};
use crate::forward::{ApiForwarder, Shaping};
use crate::rescue::ProxyError;
pub(crate) use discovery::index::escape;

/// API server `Status` answers larger than this are not inspected (they are not the proxy
/// verb's own refusals, which are a few hundred bytes).
const MAX_STATUS_BODY: u64 = 64 << 10;

/// What the `Host` of a request names.
#[derive(Debug)]
pub(crate) enum HostClass {
    /// The gateway itself (`localhost`, an IP literal, any other name): the API passthrough
    /// and the gateway's own pages, behind the filter's host allow-list.
    Gateway,
    /// A service, pod or node origin.
    Origin(Box<OriginHost>),
    /// A name under `.localhost` that is not a valid origin host: the reason.
    BadOrigin(String),
}

/// The request's host as Go's `r.Host` sees it: the authority of an absolute-form target,
/// else the `Host` header; empty when neither is there.
pub(crate) fn request_host<B>(req: &Request<B>) -> &str {
    match req.uri().authority() {
        Some(authority) => authority.as_str(),
        None => req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(""),
    }
}

/// Classifies a `Host` value (with or without `:port`).
pub(crate) fn classify_host(host: &str) -> HostClass {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name == "localhost" || !name.ends_with(".localhost") {
        return HostClass::Gateway;
    }
    match Target::parse_host(host) {
        Ok(origin) => HostClass::Origin(Box::new(origin)),
        Err(err) => HostClass::BadOrigin(err.to_string()),
    }
}

/// The service-origin side of a gateway.
pub(crate) struct Origins {
    /// The context label this gateway's origin hosts carry, if any.
    context: Option<ContextLabel>,
    /// For default ports and the "what exists" lists on error pages; `None` in tests without a
    /// cluster (a port-less origin then goes to the API server as it is).
    lister: Option<auth::ApiClient>,
    /// Default ports looked up recently.
    defaults: Mutex<DefaultPorts>,
}

/// (namespace, kind, name) → when it was looked up, and what was found.
type DefaultPorts = HashMap<(String, Kind, String), (Instant, Option<DefaultPort>)>;

/// How long a looked-up default port is used before it is looked up again.
const DEFAULT_PORT_TTL: Duration = Duration::from_secs(10);

/// At most this many default ports are remembered (the map is cleared beyond).
const DEFAULT_PORT_ENTRIES: usize = 1024;

/// The bound on looking up a default port.
const DEFAULT_PORT_LOOKUP: Duration = Duration::from_secs(5);

/// A target's default port, as found in its Service or Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DefaultPort {
    /// `None`: the service's single port is unnamed and the API server picks it by itself.
    port: Option<Port>,
    https: bool,
}

impl Origins {
    pub(crate) fn new(context: Option<ContextLabel>, lister: Option<auth::ApiClient>) -> Self {
        Self {
            context,
            lister,
            defaults: Mutex::new(HashMap::new()),
        }
    }

    /// The context label this gateway's origin hosts carry, if any.
    pub(crate) fn context(&self) -> Option<&ContextLabel> {
        self.context.as_ref()
    }

    /// The target an origin host without a port label stands for. For a service: its only
    /// port; else its port named `http`, then `https`, then the first one numbered 80, 443 or
    /// 8080, else its first port. For a pod: its first declared container port. The scheme is
    /// `https` for a port named `https` or numbered 443. A target with a port, a node, a
    /// target written with a scheme, or one that cannot be looked up is returned unchanged
    /// (the API server then says what is wrong).
    async fn with_default_port(&self, target: Target) -> Target {
        let (Some(client), Some(namespace)) = (&self.lister, target.namespace()) else {
            return target;
        };
        if target.port().is_some() || target.kind() == Kind::Node {
            return target;
        }
        let key = (
            namespace.to_owned(),
            target.kind(),
            target.name().to_owned(),
        );
        let cached = {
            let map = self.defaults.lock().unwrap_or_else(PoisonError::into_inner);
            map.get(&key)
                .filter(|(at, _)| at.elapsed() < DEFAULT_PORT_TTL)
                .map(|(_, found)| found.clone())
        };
        let found = match cached {
            Some(found) => found,
            None => {
                let found = tokio::time::timeout(
                    DEFAULT_PORT_LOOKUP,
                    lookup_default_port(client, target.kind(), namespace, target.name()),
                )
                .await
                .unwrap_or(None);
                let mut map = self.defaults.lock().unwrap_or_else(PoisonError::into_inner);
                if map.len() >= DEFAULT_PORT_ENTRIES {
                    map.clear();
                }
                map.insert(key, (Instant::now(), found.clone()));
                found
            }
        };
        match found {
            None => target,
            Some(found) => {
                let written = target.scheme();
                let target = target.with_port(found.port);
                if written == Scheme::Unspecified && found.https {
                    target.with_scheme(Scheme::Https)
                } else {
                    target
                }
            }
        }
    }

    /// Serves one request on the origin `origin`, whose `Host` was `host`.
    pub(crate) async fn serve(
        &self,
        api: &ApiForwarder,
        origin: OriginHost,
        host: &str,
        req: Request<Incoming>,
        peer: Option<IpAddr>,
    ) -> Response<Body> {
        let host = host.to_ascii_lowercase();
        let host = host.strip_suffix('.').unwrap_or(&host).to_owned();
        if origin.context != self.context {
            let served = match &self.context {
                Some(label) => format!("origins labelled <code>{}</code>", escape(label.as_str())),
                None => "origins without a context label".to_owned(),
            };
            return page(
                StatusCode::NOT_FOUND,
                "Not served here",
                &format!(
                    "<p>This gateway serves {served}; <code>{}</code> names another cluster.</p>\
                     <p>Start a gateway for that context, or drop the label from the address.</p>",
                    escape(&host)
                ),
            );
        }
        let own = format!("http://{host}");
        if let Some(why) = cross_site_refusal(req.method(), req.headers(), &own) {
            tracing::warn!(host, method = %req.method(), "refused a cross-site request: {why}");
            return page(
                StatusCode::FORBIDDEN,
                "Cross-site request refused",
                &format!(
                    "<p>kgate refused this request to <code>{}</code>: {}.</p>\
                     <p>Service origins accept state-changing requests only from their own pages.</p>",
                    escape(&own),
                    escape(&why)
                ),
            );
        }
        // The query is checked here and forwarded raw by the forwarder, after the path.
        let rest = match Rest::new(req.uri().path(), req.uri().query())
            .and_then(|_| Rest::new(req.uri().path(), None))
        {
            Ok(rest) => rest,
            Err(err) => {
                return page(
                    StatusCode::BAD_REQUEST,
                    "Bad address",
                    &format!(
                        "<p>This path cannot be passed on to the service without leaving it: {}</p>",
                        escape(&err.to_string())
                    ),
                );
            }
        };
        let target = self.with_default_port(origin.target.clone()).await;
        // A port named https or numbered 443 is reached over TLS unless a scheme was written.
        let target = if target.scheme() == Scheme::Unspecified
            && target.effective_scheme() == Scheme::Https
        {
            target.with_scheme(Scheme::Https)
        } else {
            target
        };
        let upstream_path = target.api_path(&rest);
        let ctx =
            match rewrite::ShapeContext::new(&target.proxy_prefix(), api.api_authority(), &host) {
                Ok(ctx) => ctx,
                Err(err) => {
                    return page(
                        StatusCode::BAD_REQUEST,
                        "Bad address",
                        &format!("<p>{}</p>", escape(&err.to_string())),
                    );
                }
            };
        let wants_html = req
            .headers()
            .get_all(header::ACCEPT)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("text/html")));
        let origin = OriginRequest {
            target,
            ctx,
            wants_html,
            lister: self.lister.clone(),
            gateway_port: origin.port,
        };
        api.forward(
            req,
            &upstream_path,
            peer,
            &Shaping::Origin(Box::new(origin)),
        )
        .await
    }
}

/// Looks up the default port of a service or pod (see [`Origins::with_default_port`]);
/// `None` when it cannot be found.
async fn lookup_default_port(
    client: &auth::ApiClient,
    kind: Kind,
    namespace: &str,
    name: &str,
) -> Option<DefaultPort> {
    use discovery::KubeApi as _;
    let path = format!("/api/v1/namespaces/{namespace}/{}/{name}", kind.resource());
    let res = client.get(&path, MAX_OBJECT_BODY).await.ok()?;
    if res.status != 200 || res.truncated {
        return None;
    }
    let object: serde_json::Value = serde_json::from_slice(&res.body).ok()?;
    let ports: Vec<(String, u16)> = match kind {
        Kind::Service => object
            .pointer("/spec/ports")?
            .as_array()?
            .iter()
            .filter_map(port_of)
            .collect(),
        Kind::Pod => object
            .pointer("/spec/containers")?
            .as_array()?
            .iter()
            .filter_map(|c| c.get("ports")?.as_array())
            .flatten()
            .filter_map(|p| {
                let number = u16::try_from(p.get("containerPort")?.as_u64()?).ok()?;
                Some((String::new(), number))
            })
            .collect(),
        Kind::Node => return None,
    };
    let &(ref name, number) = pick_default_port(&ports)?;
    let https = name == "https" || number == 443;
    let port = match kind {
        // Without a port the API server picks the unnamed one, which this is.
        Kind::Service if ports.len() == 1 && name.is_empty() => None,
        Kind::Service if !name.is_empty() => {
            Some(Port::Name(urlgrammar::PortName::new(name).ok()?))
        }
        _ => Some(Port::number(number).ok()?),
    };
    Some(DefaultPort { port, https })
}

/// Pod and Service objects larger than this are not read for their ports.
const MAX_OBJECT_BODY: usize = 1 << 20;

fn port_of(p: &serde_json::Value) -> Option<(String, u16)> {
    let number = u16::try_from(p.get("port")?.as_u64()?).ok()?;
    let name = p.get("name").and_then(|n| n.as_str()).unwrap_or_default();
    Some((name.to_owned(), number))
}

/// The preferred port of `ports` (name, number): see [`Origins::with_default_port`].
fn pick_default_port(ports: &[(String, u16)]) -> Option<&(String, u16)> {
    if let [only] = ports {
        return Some(only);
    }
    ports
        .iter()
        .find(|(name, _)| name == "http")
        .or_else(|| ports.iter().find(|(name, _)| name == "https"))
        .or_else(|| ports.iter().find(|(_, n)| matches!(n, 80 | 443 | 8080)))
        .or_else(|| ports.first())
}

/// One request on a service origin, while it is forwarded.
#[derive(Clone)]
pub(crate) struct OriginRequest {
    /// The target, with the scheme the API server is asked to use.
    target: Target,
    ctx: rewrite::ShapeContext,
    /// The client asked for HTML (a browser navigation): API server refusals become pages.
    wants_html: bool,
    lister: Option<auth::ApiClient>,
    /// The port the client connected to, for links on pages.
    gateway_port: Option<u16>,
}

impl OriginRequest {
    /// Un-prefixes the URL-bearing headers alone (for a `101 Switching Protocols`).
    pub(crate) fn shape_headers(&self, headers: &mut HeaderMap) {
        rewrite::shape_response_headers(headers, &self.ctx);
    }

    /// The API server's answer for the browser: un-prefixed, streamed; or, for the API server's
    /// own refusals to a browser, a page.
    pub(crate) async fn shape(&self, res: Response<Incoming>) -> Response<Body> {
        let res = crate::forward::shape(res);
        let res = match self.refusal(res).await {
            Ok(page) => return page,
            Err(res) => res,
        };
        let (mut parts, body) = res.into_parts();
        let body = rewrite::shape_response(&mut parts, body, &self.ctx);
        Response::from_parts(parts, stream(body))
    }

    /// `Ok(page)` when `res` is the API server's own small `Status` refusal and the client
    /// wants HTML; otherwise `Err(res)` with the response unchanged (a body read for the check
    /// is put back).
    async fn refusal(&self, res: Response<Body>) -> Result<Response<Body>, Response<Body>> {
        let status = res.status();
        let is_json = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let small = res
            .body()
            .size_hint()
            .upper()
            .is_some_and(|n| n <= MAX_STATUS_BODY);
        if !(self.wants_html
            && is_json
            && small
            && (status.is_client_error() || status.is_server_error()))
        {
            return Err(res);
        }
        let (parts, body) = res.into_parts();
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) => {
                let err = ProxyError::Upstream {
                    server: "the API server".to_owned(),
                    source: err,
                };
                return Ok(self.failure_page(&err));
            }
        };
        match parse_status(&bytes) {
            Some(refusal) => Ok(self.refusal_page(status, &refusal).await),
            None => Err(Response::from_parts(parts, full(bytes))),
        }
    }

    async fn refusal_page(&self, status: StatusCode, refusal: &ApiRefusal) -> Response<Body> {
        let what = self.target.to_string();
        let mut html = format!(
            "<p>The API server could not reach <code>{}</code>:</p><blockquote>{}</blockquote>",
            escape(&what),
            escape(&refusal.message)
        );
        let advice = match status.as_u16() {
            404 => "Check the name and the port; these are the services that exist here:",
            503 => {
                "The service exists but no endpoint is ready: check its pods \
                 (kubectl get pods, kubectl describe svc). The services here:"
            }
            401 => "The API server did not accept the credentials of the kubeconfig; log in again.",
            403 => {
                "Your user may not use this service's proxy; ask for the services/proxy permission."
            }
            _ => "",
        };
        if !advice.is_empty() {
            let _ = write!(html, "<p>{}</p>", escape(advice));
        }
        if matches!(status.as_u16(), 404 | 503) {
            html.push_str(&self.listing().await);
        }
        page(status, &refusal.title(status), &html)
    }

    /// The services of the target's namespace, each port linked to its origin.
    async fn listing(&self) -> String {
        let (Some(client), Some(namespace)) = (&self.lister, self.target.namespace()) else {
            return String::new();
        };
        if self.target.kind() != Kind::Service {
            return String::new();
        }
        let scope = discovery::NamespaceScope::One(namespace.to_owned());
        let services = match discovery::list_services(client, &scope, None).await {
            Ok(services) => services,
            Err(err) => {
                return format!(
                    "<p>(Listing the services of {} failed: {})</p>",
                    escape(namespace),
                    escape(&err.to_string())
                );
            }
        };
        if services.is_empty() {
            return format!(
                "<p>The namespace <code>{}</code> has no services. \
                 <a href=\"{}\">All services</a></p>",
                escape(namespace),
                escape(&self.index_url())
            );
        }
        let opts = discovery::urls::UrlOptions {
            server: String::new(),
            gateway: discovery::urls::GatewayAddr {
                port: self.gateway_port.unwrap_or(80),
                context: None,
            },
        };
        let list = discovery::urls::url_entries(&services, &[], &opts);
        let mut html = String::from("<ul>");
        for entry in &list.items {
            let label = if entry.port_name.is_empty() {
                format!("{}:{}", entry.name, entry.port)
            } else {
                format!("{}:{} ({})", entry.name, entry.port, entry.port_name)
            };
            let ready = format!("{}/{} ready", entry.ready, entry.total);
            match &entry.origin_url {
                Some(url) => {
                    let _ = write!(
                        html,
                        "<li><a href=\"{}\">{}</a> {}</li>",
                        escape(url),
                        escape(&label),
                        ready
                    );
                }
                None => {
                    let _ = write!(html, "<li>{} {}</li>", escape(&label), ready);
                }
            }
        }
        let _ = write!(
            html,
            "</ul><p><a href=\"{}\">All services</a></p>",
            escape(&self.index_url())
        );
        html
    }

    fn index_url(&self) -> String {
        match self.gateway_port {
            Some(port) => format!("http://localhost:{port}{}", crate::local::INDEX_PATH),
            None => format!("http://localhost{}", crate::local::INDEX_PATH),
        }
    }

    /// A failure of the gateway itself (API server unreachable, timeout), as a page.
    pub(crate) fn failure_page(&self, err: &ProxyError) -> Response<Body> {
        let (status, message) = err.describe();
        tracing::warn!(target = %self.target, status = status.as_u16(), "proxy error: {message}");
        page(
            status,
            "The gateway could not reach the service",
            &format!(
                "<p>Going to <code>{}</code> through the API server failed:</p>\
                 <blockquote>{}</blockquote><p>Reload to try again; <code>kgate check {}</code> \
                 tests the same path from a terminal.</p>",
                escape(&self.target.to_string()),
                escape(&message),
                escape(&self.target.to_string())
            ),
        )
    }
}

/// The parts of the API server's `Status` a page shows.
struct ApiRefusal {
    message: String,
    reason: String,
}

impl ApiRefusal {
    fn title(&self, status: StatusCode) -> String {
        match status.as_u16() {
            404 => "Not found".to_owned(),
            503 => "No endpoints available".to_owned(),
            _ if !self.reason.is_empty() => split_camel(&self.reason),
            _ => status.canonical_reason().unwrap_or("Error").to_owned(),
        }
    }
}

/// `Some` for a `metav1.Status` failure document.
fn parse_status(body: &Bytes) -> Option<ApiRefusal> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    if value.get("kind")?.as_str()? != "Status" {
        return None;
    }
    Some(ApiRefusal {
        message: value.get("message")?.as_str()?.to_owned(),
        reason: value
            .get("reason")
            .and_then(|r| r.as_str())
            .unwrap_or_default()
            .to_owned(),
    })
}

/// `ServiceUnavailable` → `Service unavailable`.
fn split_camel(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Removes what a browser sends that must not reach the API server from an origin: its own
/// credentials and impersonation (the kubeconfig's are used instead) and `Origin` (already
/// checked to be the origin itself; an app behind the API server proxy sees another `Host`
/// and would refuse a same-origin request whose `Origin` it cannot match).
pub(crate) fn scrub_request_headers(headers: &mut HeaderMap) {
    headers.remove(header::AUTHORIZATION);
    headers.remove(header::ORIGIN);
    let impersonate: Vec<_> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("impersonate-"))
        .cloned()
        .collect();
    for name in impersonate {
        headers.remove(name);
    }
    rewrite::shape_request_headers(headers);
}

/// Whether a method may change state (RFC 9110 safe methods are `GET`, `HEAD`, `OPTIONS`,
/// `TRACE`; `TRACE` is counted as unsafe here, as nothing needs it cross-site).
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Why a request to an origin must be refused as cross-site, if it must. `own` is the
/// origin's serialisation (`http://shop.demo.svc.localhost:8001`). Upgrades count as
/// state-changing (a cross-site WebSocket could act as the user).
pub(crate) fn cross_site_refusal(
    method: &Method,
    headers: &HeaderMap,
    own: &str,
) -> Option<String> {
    if is_safe(method) && !crate::headers::is_upgrade(headers) {
        return None;
    }
    foreign_request(headers, own)
}

/// Why a request is not from a page of `own` (by its `Sec-Fetch-Site` and `Origin`), if it is
/// not. Requests without either header (curl, scripts) are not from a page and pass.
pub(crate) fn foreign_request(headers: &HeaderMap, own: &str) -> Option<String> {
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or("?").to_ascii_lowercase());
    if let Some(site) = fetch_site.as_deref()
        && matches!(site, "cross-site" | "same-site")
    {
        return Some(format!(
            "the browser says it comes from another site (Sec-Fetch-Site: {site})"
        ));
    }
    let origins: Vec<&HeaderValue> = headers.get_all(header::ORIGIN).iter().collect();
    match origins.as_slice() {
        [] => None,
        [one] if one.to_str().is_ok_and(|o| o.eq_ignore_ascii_case(own)) => None,
        [one] => Some(format!(
            "it comes from a page of {}",
            one.to_str().unwrap_or("an unreadable origin")
        )),
        _ => Some("it carries several Origin headers".to_owned()),
    }
}

/// A short HTML page for a browser: the status, a title and a body (already escaped HTML).
pub(crate) fn page(status: StatusCode, title: &str, body_html: &str) -> Response<Body> {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · kgate</title><style>{PAGE_STYLE}</style></head>\
         <body><main><h1>{title}</h1>{body_html}<p class=\"status\">{code} · kgate</p></main></body></html>\n",
        title = escape(title),
        code = status.as_u16(),
    );
    html_response(status, html, PAGE_CSP)
}

/// The policy of pages without script.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

/// An HTML document written by the gateway, never cached, sniffed or framed, under `csp`.
pub(crate) fn html_response(status: StatusCode, html: String, csp: &'static str) -> Response<Body> {
    let mut res = Response::new(full(html));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    res
}

const PAGE_STYLE: &str = ":root{color-scheme:light dark}body{margin:0 auto;max-width:46rem;\
padding:2rem 1.5rem;font:16px/1.5 system-ui,sans-serif}h1{font-size:1.4rem}code{font-size:.9em}\
blockquote{margin:1rem 0;padding:.5rem 1rem;border-left:4px solid #cf222e}.status{color:#6e7781}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_classified() {
        assert!(matches!(
            classify_host("localhost:8001"),
            HostClass::Gateway
        ));
        assert!(matches!(classify_host("LOCALHOST."), HostClass::Gateway));
        assert!(matches!(
            classify_host("127.0.0.1:8001"),
            HostClass::Gateway
        ));
        assert!(matches!(classify_host("[::1]:8001"), HostClass::Gateway));
        assert!(matches!(classify_host("example.com"), HostClass::Gateway));
        assert!(matches!(classify_host(""), HostClass::Gateway));
        match classify_host("Shop.Demo.svc.localhost:8001") {
            HostClass::Origin(o) => {
                assert_eq!(o.target.to_string(), "svc/demo/shop");
                assert_eq!(o.port, Some(8001));
            }
            other => panic!("{other:?}"),
        }
        match classify_host("a.b.c.d.svc.localhost") {
            HostClass::BadOrigin(why) => assert!(why.contains("labels"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify_host("kgate.localhost"),
            HostClass::BadOrigin(_)
        ));
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn cross_site_rules() {
        let own = "http://shop.demo.svc.localhost:8001";
        // Scripts and curl send neither header.
        assert_eq!(cross_site_refusal(&Method::POST, &headers(&[]), own), None);
        // Same origin passes.
        let same = headers(&[("origin", own), ("sec-fetch-site", "same-origin")]);
        assert_eq!(cross_site_refusal(&Method::POST, &same, own), None);
        // Safe methods pass whatever their origin (navigation, links from other origins).
        let other = headers(&[
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert_eq!(cross_site_refusal(&Method::GET, &other, own), None);
        assert!(cross_site_refusal(&Method::POST, &other, own).is_some());
        assert!(
            cross_site_refusal(&Method::DELETE, &headers(&[("origin", "null")]), own).is_some()
        );
        // Another origin on the same gateway is same-site, and refused too.
        let sibling = headers(&[("sec-fetch-site", "same-site")]);
        assert!(cross_site_refusal(&Method::PUT, &sibling, own).is_some());
        // A WebSocket handshake is a GET, but counts as state-changing.
        let ws = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("origin", "http://evil.example"),
        ]);
        assert!(cross_site_refusal(&Method::GET, &ws, own).is_some());
        let ws_own = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("origin", own),
        ]);
        assert_eq!(cross_site_refusal(&Method::GET, &ws_own, own), None);
        // Two Origin headers are not an origin.
        let two = headers(&[("origin", own), ("origin", own)]);
        assert!(cross_site_refusal(&Method::POST, &two, own).is_some());
    }

    #[test]
    fn credentials_and_origin_are_scrubbed() {
        let mut h = headers(&[
            ("authorization", "Bearer secret"),
            ("impersonate-user", "admin"),
            ("impersonate-group", "system:masters"),
            ("impersonate-extra-scopes", "x"),
            ("origin", "http://shop.demo.svc.localhost:8001"),
            ("cookie", "session=1"),
            ("accept", "text/html"),
        ]);
        scrub_request_headers(&mut h);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "cookie"]);
    }

    #[test]
    fn default_port_preference() {
        let p = |v: &[(&str, u16)]| {
            v.iter()
                .map(|(n, p)| ((*n).to_owned(), *p))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            pick_default_port(&p(&[("metrics", 9090)])),
            Some(&("metrics".to_owned(), 9090))
        );
        assert_eq!(
            pick_default_port(&p(&[("admin", 8081), ("http", 80)])),
            Some(&("http".to_owned(), 80))
        );
        assert_eq!(
            pick_default_port(&p(&[("grpc", 9000), ("https", 8443)])),
            Some(&("https".to_owned(), 8443))
        );
        assert_eq!(
            pick_default_port(&p(&[("grpc", 9000), ("web", 8080)])),
            Some(&("web".to_owned(), 8080))
        );
        assert_eq!(
            pick_default_port(&p(&[("a", 1), ("b", 2)])),
            Some(&("a".to_owned(), 1))
        );
        assert_eq!(pick_default_port(&[]), None);
    }

    #[test]
    fn status_documents_are_recognised() {
        let body = Bytes::from_static(
            br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"services \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"services"},"code":404}"#,
        );
        let refusal = parse_status(&body).unwrap();
        assert_eq!(refusal.message, "services \"nope\" not found");
        assert_eq!(refusal.title(StatusCode::NOT_FOUND), "Not found");
        assert_eq!(refusal.title(StatusCode::FORBIDDEN), "Not found");
        assert!(parse_status(&Bytes::from_static(br#"{"kind":"Pod"}"#)).is_none());
        assert!(parse_status(&Bytes::from_static(b"not json")).is_none());
        assert_eq!(split_camel("ServiceUnavailable"), "Service unavailable");
    }

    #[test]
    fn pages_escape_and_forbid_scripts() {
        let res = page(StatusCode::NOT_FOUND, "<x>", "<p>ok</p>");
        assert_eq!(res.status(), 404);
        let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
