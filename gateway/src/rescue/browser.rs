//! The pages a browser gets when the gateway refuses or fails: what went wrong, what to try.
//!
//! Contract: every function returns one [`crate::pages::page`] (no script, never cached), with
//! every value from the request or the cluster escaped. When the API server says a service or
//! its endpoints are missing (404, 503), the page lists the services that do exist in the
//! namespace, each port linked to its origin ([`Listing`]), so a typo is one click from its
//! fix. Failure pages name the target and the `kgate check` command that tests the same path
//! from a terminal.

use std::fmt::Write as _;

use http::{Response, StatusCode};
use urlgrammar::{ContextLabel, Kind, Target};
use wire::html::escape;

use super::{ApiRefusal, ProxyError, Rule};
use crate::body::Body;
use crate::pages::{index_url, page};
use crate::secret::AccessToken;

/// A name under `.localhost` that is not a service address.
pub(crate) fn not_an_origin(why: &str) -> Response<Body> {
    page(
        StatusCode::BAD_REQUEST,
        "Not a service address",
        &format!(
            "<p>{}</p><p>Service addresses look like \
             <code>http://&lt;name&gt;.&lt;namespace&gt;.svc.localhost:&lt;port&gt;/</code>; \
             <code>kgate urls</code> prints them.</p>",
            escape(why)
        ),
    )
}

/// An origin host whose context label is not the served one (`served`).
pub(crate) fn other_cluster(host: &str, served: Option<&ContextLabel>) -> Response<Body> {
    let served = match served {
        Some(label) => format!("origins labelled <code>{}</code>", escape(label.as_str())),
        None => "origins without a context label".to_owned(),
    };
    page(
        StatusCode::NOT_FOUND,
        "Not served here",
        &format!(
            "<p>This gateway serves {served}; <code>{}</code> names another cluster.</p>\
             <p>Start a gateway for that context, or drop the label from the address.</p>",
            escape(host)
        ),
    )
}

/// An upgrade or state-changing request to `own` from another site, refused by `rule`.
pub(crate) fn cross_site(own: &str, rule: Rule, why: &str) -> Response<Body> {
    page(
        StatusCode::FORBIDDEN,
        "Cross-site request refused",
        &format!(
            "<p>kgate refused this request to <code>{}</code>: {}.</p>\
             <p>Rule <code>{}</code>: {}. Service origins accept WebSockets and \
             state-changing requests only from their own pages.</p>",
            escape(own),
            escape(why),
            rule.name(),
            escape(rule.forbids()),
        ),
    )
}

/// A mount reached under a name the filter does not accept.
pub(crate) fn mount_host(target: &Target, host: &str) -> Response<Body> {
    page(
        StatusCode::FORBIDDEN,
        "Host not accepted",
        &format!(
            "<p>This address serves <code>{}</code> only to clients that name it \
             <code>localhost</code>, <code>127.0.0.1</code> or <code>[::1]</code> \
             (the filter's accepted hosts), not <code>{}</code>.</p>",
            escape(&target.to_string()),
            escape(host)
        ),
    )
}

/// An origin path that cannot be passed on (`why` is the whole sentence).
pub(crate) fn bad_address(why: &str) -> Response<Body> {
    page(
        StatusCode::BAD_REQUEST,
        "Bad address",
        &format!("<p>{}</p>", escape(why)),
    )
}

/// The answer to a browser that arrived with the gateway's token in its URL: the cookie that
/// keeps it for this origin, and a move to `location`, the same URL without it. The move is a
/// `<meta http-equiv="refresh">` from this page, not a 3xx: a navigation that came from another
/// site (a link on the index, which is another site than a service's origin) stays cross-site
/// through a redirect, and the browser would not send a `SameSite=Strict` cookie on it; a
/// refresh is this origin's own navigation, and it does. `Referrer-Policy: no-referrer` keeps
/// the URL with the token out of the next request's `Referer`.
pub(crate) fn signed_in(location: &str, token: &AccessToken) -> Response<Body> {
    let target = escape(location);
    let mut res = page(
        StatusCode::OK,
        "Signed in",
        &format!(
            "<meta http-equiv=\"refresh\" content=\"0; url={target}\">\
             <p>This browser now holds the gateway's token for this address. \
             <a href=\"{target}\">Continue</a>.</p>"
        ),
    );
    let h = res.headers_mut();
    if let Ok(v) = http::HeaderValue::from_str(&crate::secret::cookie(token)) {
        h.insert(http::header::SET_COOKIE, v);
    }
    h.insert(
        http::header::REFERRER_POLICY,
        http::HeaderValue::from_static("no-referrer"),
    );
    res
}

/// A failure of the gateway itself (API server unreachable, timeout) on the way to `target`.
pub(crate) fn unreachable(target: &Target, err: &ProxyError) -> Response<Body> {
    let (status, message) = err.describe();
    tracing::warn!(target = %target, status = status.as_u16(), "proxy error: {message}");
    let target = escape(&target.to_string());
    page(
        status,
        "The gateway could not reach the service",
        &format!(
            "<p>Going to <code>{target}</code> through the API server failed:</p>\
             <blockquote>{}</blockquote><p>Reload to try again; <code>kgate check {target}</code> \
             tests the same path from a terminal.</p>",
            escape(&message),
        ),
    )
}

/// The index page without a client to list services with.
pub(crate) fn no_index() -> Response<Body> {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "No index",
        "<p>This gateway has no client for listing services.</p>",
    )
}

/// The index page when listing the services failed.
pub(crate) fn index_failed(err: &discovery::ListError) -> Response<Body> {
    page(
        StatusCode::BAD_GATEWAY,
        "Cannot list the services",
        &format!(
            "<p>Listing the services through the API server failed:</p>\
             <blockquote>{}</blockquote><p>Reload to try again; \
             <code>kgate urls -A</code> shows the same list in a terminal.</p>",
            escape(&err.to_string())
        ),
    )
}

/// What a refusal page can list: the services of the target's namespace, linked to their
/// origins on the gateway's `port`.
pub(crate) struct Listing<'a> {
    pub(crate) lister: Option<&'a auth::ApiClient>,
    pub(crate) port: Option<u16>,
    /// The gateway's own token, which the links carry.
    pub(crate) token: Option<&'a AccessToken>,
}

/// The API server's own `Status` refusal of a request for `target`, as a page.
pub(crate) async fn api_refusal(
    status: StatusCode,
    refusal: &ApiRefusal,
    target: &Target,
    listing: Listing<'_>,
) -> Response<Body> {
    let mut html = format!(
        "<p>The API server could not reach <code>{}</code>:</p><blockquote>{}</blockquote>",
        escape(&target.to_string()),
        escape(&refusal.message)
    );
    let advice = match status.as_u16() {
        404 => "Check the name and the port; these are the services that exist here:",
        503 => {
            "The service exists but no endpoint is ready: check its pods \
             (kubectl get pods, kubectl describe svc). The services here:"
        }
        401 => "The API server did not accept the credentials of the kubeconfig; log in again.",
        403 => "Your user may not use this service's proxy; ask for the services/proxy permission.",
        _ => "",
    };
    if !advice.is_empty() {
        let _ = write!(html, "<p>{}</p>", escape(advice));
    }
    if matches!(status.as_u16(), 404 | 503) {
        html.push_str(&listing.render(target).await);
    }
    page(status, &title(status, refusal), &html)
}

fn title(status: StatusCode, refusal: &ApiRefusal) -> String {
    match status.as_u16() {
        404 => "Not found".to_owned(),
        503 => "No endpoints available".to_owned(),
        _ if !refusal.reason.is_empty() => split_camel(&refusal.reason),
        _ => status.canonical_reason().unwrap_or("Error").to_owned(),
    }
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

impl Listing<'_> {
    /// The services of `target`'s namespace, each port linked to its origin.
    async fn render(&self, target: &Target) -> String {
        let (Some(client), Some(namespace)) = (self.lister, target.namespace()) else {
            return String::new();
        };
        if target.kind() != Kind::Service {
            return String::new();
        }
        let index = index_url(self.port);
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
                escape(&index)
            );
        }
        let opts = discovery::urls::UrlOptions {
            server: String::new(),
            gateway: discovery::urls::GatewayAddr {
                port: self.port.unwrap_or(80),
                context: None,
                token: self.token.map(|t| t.expose().to_owned()),
            },
        };
        let list = discovery::urls::url_entries(&services, &[], &opts);
        let mut html = String::from("<ul>");
        for entry in &list.items {
            html.push_str(&item(entry));
        }
        let _ = write!(
            html,
            "</ul><p><a href=\"{}\">All services</a></p>",
            escape(&index)
        );
        html
    }
}

/// One port of the listing: its label, linked to its origin when it has one, and readiness.
fn item(entry: &discovery::urls::UrlEntry) -> String {
    let label = if entry.port_name.is_empty() {
        format!("{}:{}", entry.name, entry.port)
    } else {
        format!("{}:{} ({})", entry.name, entry.port, entry.port_name)
    };
    let ready = format!("{}/{} ready", entry.ready, entry.total);
    match &entry.origin_url {
        Some(url) => format!(
            "<li><a href=\"{}\">{}</a> {}</li>",
            escape(url),
            escape(&label),
            ready
        ),
        None => format!("<li>{} {}</li>", escape(&label), ready),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_name_the_refusal() {
        let refusal = ApiRefusal {
            message: "services \"nope\" not found".into(),
            reason: "NotFound".into(),
        };
        assert_eq!(title(StatusCode::NOT_FOUND, &refusal), "Not found");
        assert_eq!(title(StatusCode::FORBIDDEN, &refusal), "Not found");
        let bare = ApiRefusal {
            message: String::new(),
            reason: String::new(),
        };
        assert_eq!(title(StatusCode::FORBIDDEN, &bare), "Forbidden");
        assert_eq!(split_camel("ServiceUnavailable"), "Service unavailable");
    }

    #[tokio::test]
    async fn a_refusal_page_escapes_the_api_servers_message() {
        let refusal = ApiRefusal {
            message: "services \"<b>\" not found".into(),
            reason: "NotFound".into(),
        };
        let target = urlgrammar::Address::parse("svc/demo/x", None)
            .unwrap()
            .target;
        let listing = Listing {
            lister: None,
            port: Some(8001),
            token: None,
        };
        let res = api_refusal(StatusCode::NOT_FOUND, &refusal, &target, listing).await;
        assert_eq!(res.status(), 404);
        let body = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        let page = String::from_utf8_lossy(&body);
        assert!(page.contains("&#34;&lt;b&gt;&#34; not found"), "{page}");
        assert!(page.contains("Check the name and the port"), "{page}");
    }
}
