//! Rescue: every refusal and failure of the gateway becomes a response here, and only here.
//!
//! Contract: the phases return typed values, never responses, for what went wrong:
//!
//! - a [`Refusal`]: `admit` (or Go's mux, by way of `classify`) would not let the request go
//!   where it names; nothing was sent upstream;
//! - a [`Failure`]: something after admission did not work. [`ProxyError`] says whose fault it
//!   was (the API server could not be reached, TLS failed, it did not answer in time, it broke
//!   off mid-request, or an upgrade was refused); [`Failure::ApiRefused`] is the API server's own
//!   `Status` refusal of a browser's request to an origin; the others are the gateway's own.
//!
//! [`Rescue::respond`] turns either into the one response the client sees, for its audience,
//! and writes one log line for a failure:
//!
//! - kubectl and scripts get what kubectl's Go server writes itself, byte for byte
//!   (`Forbidden`, `404 page not found`, `400 Bad Request`, the mux's redirect, `invalid upgrade
//!   response`: [`go`]), or a Kubernetes `Status` JSON as the API server would send, naming what
//!   failed and what to try;
//! - browsers on service origins, mounts and the gateway's own pages get a short page that says
//!   what failed and what to try, and for a missing service or endpoint, what exists
//!   ([`browser`]).
//!
//! Nothing here reads request headers, so credentials cannot leak into bodies or logs.

pub(crate) mod browser;
pub(crate) mod go;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use urlgrammar::{ContextLabel, Target};

use crate::body::{Body, BoxError};
use crate::secret::AccessToken;

/// A request the gateway will not pass on; nothing was sent upstream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// kubectl's filter refused the request: `403 Forbidden\n`, as kubectl.
    Filter,
    /// No mux pattern matched, or no gateway page by that name: Go's `404 page not found`.
    NotFound,
    /// A request target Go cannot parse: Go's `400 Bad Request`.
    BadRequest,
    /// Go's mux redirect to the clean path (301); `method` decides whether it has a body.
    Moved { location: String, method: Method },
    /// A head carried both `Content-Length` and `Transfer-Encoding`: 400, and the connection
    /// closes.
    AmbiguousLength,
    /// The gateway's own token is missing or wrong: 401, and nothing else.
    Unauthorized,
    /// A browser arrived with the token in its URL: a page that sets the cookie which carries
    /// it from now on and moves on to `location` (the URL without it).
    SetToken {
        location: String,
        token: AccessToken,
    },
    /// A web page of another origin asked for the Kubernetes API, or to upgrade or write: 403
    /// `Status` naming the rule.
    ForeignPage { rule: Rule, why: String },
    /// A name under `.localhost` that is not a service address: 400 page.
    NotAnOrigin { why: String },
    /// An origin host labelled for a cluster this gateway does not serve: 404 page.
    OtherCluster {
        host: String,
        served: Option<ContextLabel>,
    },
    /// A cross-site upgrade or state-changing request to an origin or mount: 403 page.
    CrossSite {
        own: String,
        rule: Rule,
        why: String,
    },
    /// A mount reached under a name the filter does not accept: 403 page.
    MountHost { target: Target, host: String },
    /// A gateway page asked for with a method it does not serve: Go's 405 with `Allow`.
    MethodNotAllowed,
}

/// The rule a cross-site refusal applies (`admit`'s site rules say when each holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    Upgrade,
    Write,
    Api,
}

impl Rule {
    /// The rule's name, as refusals and logs say it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Upgrade => "cross-site-upgrade",
            Self::Write => "cross-site-write",
            Self::Api => "cross-site-api",
        }
    }

    /// What the rule forbids, in a sentence.
    pub(crate) fn forbids(self) -> &'static str {
        match self {
            Self::Upgrade => "no page of another origin may open a WebSocket or SPDY stream",
            Self::Write => "no page of another site may send a request that can change state",
            Self::Api => "no web page but the gateway's own may use the Kubernetes API",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who reads the answer to a failure.
#[derive(Debug, Clone)]
pub(crate) enum Audience {
    /// kubectl and scripts on the API passthrough: a Kubernetes `Status` (kubectl's plain text
    /// for an invalid upgrade answer). `path` is what the log line names (never a header).
    Api { method: Method, path: String },
    /// A browser on a service origin or mount: a page about `target` (with the scheme and port
    /// the API server was asked for).
    Browser { target: Target },
}

/// Something after admission that did not work.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The exchange with the API server failed.
    Proxy(Box<ProxyFailure>),
    /// The API server refused a browser's request to an origin with its own `Status`.
    ApiRefused(Box<RefusedByApi>),
    /// An origin's path cannot be passed on to its service: 400 page saying why.
    BadAddress { why: String },
    /// The index page has no client to list services with.
    NoIndex,
    /// Listing the services for the index page failed.
    Index { error: discovery::ListError },
}

/// [`Failure::Proxy`]: what failed, and who reads about it.
#[derive(Debug)]
pub(crate) struct ProxyFailure {
    pub(crate) error: ProxyError,
    pub(crate) to: Audience,
}

/// [`Failure::ApiRefused`].
#[derive(Debug)]
pub(crate) struct RefusedByApi {
    pub(crate) status: StatusCode,
    pub(crate) refusal: ApiRefusal,
    /// The target, with the scheme and port the API server was asked for.
    pub(crate) target: Target,
    /// The gateway's port, for the links on the page.
    pub(crate) port: Option<u16>,
    /// The request was an upgrade: the answer closes the connection, as kubectl's does.
    pub(crate) close: bool,
}

impl Failure {
    /// The exchange with the API server failed with `error`, to be told to `to`.
    pub(crate) fn proxy(error: ProxyError, to: Audience) -> Self {
        Self::Proxy(Box::new(ProxyFailure { error, to }))
    }
}

/// A refusal or a failure: what every phase returns instead of a response.
#[derive(Debug)]
pub(crate) enum Error {
    Refused(Refusal),
    Failed(Failure),
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        Self::Failed(failure)
    }
}

/// What went wrong between the gateway and the API server.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The API client could not get an answer; `auth::SendError` says whose fault it was
    /// (network, TLS, timeout, credentials, ...) and what to do.
    #[error(transparent)]
    Api(auth::SendError),
    /// The API server did not send its response head within the gateway's bound.
    #[error("the API server {server} did not answer within {after:?}")]
    Timeout { server: String, after: Duration },
    /// The exchange failed after the connection was made (reset, protocol error).
    #[error("the request to the API server {server} failed: {source}")]
    Upstream {
        server: String,
        #[source]
        source: BoxError,
    },
    /// An upgrade request was answered with a status other than 101 and below 400; kubectl
    /// (`tryUpgrade`) reports exactly this text with a 500.
    #[error("invalid upgrade response: status code {status}")]
    InvalidUpgradeResponse { status: u16 },
}

impl ProxyError {
    /// The status, Kubernetes `reason` and advice for this failure (the client's errors carry
    /// their own advice).
    fn classify(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::Api(err) => match err.fault() {
                auth::Fault::Timeout => (StatusCode::GATEWAY_TIMEOUT, "Timeout", ""),
                auth::Fault::Credentials => (StatusCode::BAD_GATEWAY, "Unauthorized", ""),
                auth::Fault::Request => (
                    StatusCode::BAD_GATEWAY,
                    "BadRequest",
                    "the request could not be passed on as sent; check it and retry",
                ),
                auth::Fault::Network | auth::Fault::Tls | auth::Fault::Server => {
                    (StatusCode::BAD_GATEWAY, "ServiceUnavailable", "")
                }
            },
            Self::Timeout { .. } => (
                StatusCode::GATEWAY_TIMEOUT,
                "Timeout",
                "the API server may be overloaded or unreachable; retry, or check the network \
                 path to it",
            ),
            Self::Upstream { .. } => (
                StatusCode::BAD_GATEWAY,
                "ServiceUnavailable",
                "the connection to the API server broke off; retry the request",
            ),
            Self::InvalidUpgradeResponse { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "")
            }
        }
    }

    /// The status for this failure and a one-line message: what failed, and what to try.
    pub(crate) fn describe(&self) -> (StatusCode, String) {
        let (status, _, advice) = self.classify();
        let message = if advice.is_empty() {
            auth::error_chain(self)
        } else {
            format!("{}; {advice}", auth::error_chain(self))
        };
        (status, message)
    }

    /// The answer on the API passthrough, with one log line naming the request by `method`
    /// and `path` (never its headers).
    fn into_api_response(self, method: &Method, path: &str) -> Response<Body> {
        let (status, reason, _) = self.classify();
        if let Self::InvalidUpgradeResponse { .. } = self {
            // kubectl's responder: `http.Error(w, err.Error(), 500)`.
            tracing::warn!("Error while proxying request: {self}");
            return go::error(status, &self.to_string());
        }
        tracing::warn!(%method, path, status = status.as_u16(), "proxy error: {}", auth::error_chain(&self));
        let (status, message) = self.describe();
        go::status_json(status, reason, &message)
    }
}

/// The parts of an API server `Status` refusal a page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiRefusal {
    pub(crate) message: String,
    pub(crate) reason: String,
}

impl ApiRefusal {
    /// `API server` answers larger than this are not inspected (the proxy verb's own
    /// refusals are a few hundred bytes).
    pub(crate) const MAX_BODY: u64 = 64 << 10;

    /// `Some` for a `metav1.Status` failure document.
    pub(crate) fn parse(body: &Bytes) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        if value.get("kind")?.as_str()? != "Status" {
            return None;
        }
        Some(Self {
            message: value.get("message")?.as_str()?.to_owned(),
            reason: value
                .get("reason")
                .and_then(|r| r.as_str())
                .unwrap_or_default()
                .to_owned(),
        })
    }
}

/// Writes the answers; holds what the pages about a failure list.
pub(crate) struct Rescue {
    /// Lists a namespace's services on the pages for a missing service or endpoint; `None`
    /// in tests without a cluster.
    lister: Option<auth::ApiClient>,
    /// The gateway's own token, which the listed links carry (only a request that had it
    /// gets such a page).
    token: Option<AccessToken>,
}

impl Rescue {
    pub(crate) fn new(lister: Option<auth::ApiClient>, token: Option<AccessToken>) -> Self {
        Self { lister, token }
    }

    /// The one response for `error`; see the module contract.
    pub(crate) async fn respond(&self, error: Error) -> Response<Body> {
        match error {
            Error::Refused(refusal) => refused(refusal),
            Error::Failed(failure) => self.failed(failure).await,
        }
    }

    async fn failed(&self, failure: Failure) -> Response<Body> {
        match failure {
            Failure::Proxy(failure) => match *failure {
                ProxyFailure {
                    error,
                    to: Audience::Api { method, path },
                } => error.into_api_response(&method, &path),
                ProxyFailure {
                    error,
                    to: Audience::Browser { target },
                } => browser::unreachable(&target, &error),
            },
            Failure::ApiRefused(refused) => {
                let RefusedByApi {
                    status,
                    refusal,
                    target,
                    port,
                    close,
                } = *refused;
                let listing = browser::Listing {
                    lister: self.lister.as_ref(),
                    port,
                    token: self.token.as_ref(),
                };
                let mut res = browser::api_refusal(status, &refusal, &target, listing).await;
                if close {
                    res.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                }
                res
            }
            Failure::BadAddress { why } => browser::bad_address(&why),
            Failure::NoIndex => browser::no_index(),
            Failure::Index { error } => browser::index_failed(&error),
        }
    }
}

/// The answer to a refusal, each in the form its audience expects.
fn refused(refusal: Refusal) -> Response<Body> {
    match refusal {
        Refusal::Filter => go::forbidden(),
        Refusal::NotFound => go::not_found(),
        Refusal::BadRequest => go::bad_request(),
        Refusal::Moved { location, method } => go::moved_permanently(&method, &location),
        Refusal::MethodNotAllowed => go::method_not_allowed("GET, HEAD"),
        Refusal::AmbiguousLength => go::ambiguous_length(),
        Refusal::Unauthorized => go::unauthorized(),
        Refusal::SetToken { location, token } => browser::signed_in(&location, &token),
        Refusal::ForeignPage { rule, why } => go::status_json(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "kgate refused this request: {why} (rule {rule}: {}). Scripts and kubectl send \
                 no Origin and are not refused; admit a front-end of your own with \
                 --allow-origin",
                rule.forbids()
            ),
        ),
        Refusal::NotAnOrigin { why } => browser::not_an_origin(&why),
        Refusal::OtherCluster { host, served } => browser::other_cluster(&host, served.as_ref()),
        Refusal::CrossSite { own, rule, why } => browser::cross_site(&own, rule, &why),
        Refusal::MountHost { target, host } => browser::mount_host(&target, &host),
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn text(res: Response<Body>) -> String {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn api() -> Audience {
        Audience::Api {
            method: Method::GET,
            path: "/api".into(),
        }
    }

    async fn answer(error: impl Into<Error>) -> Response<Body> {
        Rescue::new(None, None).respond(error.into()).await
    }

    #[tokio::test]
    async fn connect_failure_is_502_status_json_with_advice() {
        let error = ProxyError::Api(auth::SendError::Connect {
            server: "https://127.0.0.1:1".into(),
            via: None,
            reason: "connection refused".into(),
        });
        let res = answer(Failure::proxy(error, api())).await;
        assert_eq!(res.status(), 502);
        assert_eq!(res.headers()["content-type"], "application/json");
        let v: serde_json::Value = serde_json::from_str(&text(res).await).unwrap();
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["code"], 502);
        let msg = v["message"].as_str().unwrap();
        assert!(
            msg.contains("cannot connect to the API server https://127.0.0.1:1"),
            "{msg}"
        );
        assert!(msg.contains("connection refused"), "{msg}");
        assert!(msg.contains("kubeconfig"), "{msg}");
    }

    #[tokio::test]
    async fn timeout_is_504_and_upgrade_refusal_is_kubectls_500() {
        let error = ProxyError::Timeout {
            server: "s".into(),
            after: Duration::from_secs(3),
        };
        let res = answer(Failure::proxy(error, api())).await;
        assert_eq!(res.status(), 504);
        let error = ProxyError::InvalidUpgradeResponse { status: 200 };
        let res = answer(Failure::proxy(error, api())).await;
        assert_eq!(res.status(), 500);
        assert_eq!(
            text(res).await,
            "invalid upgrade response: status code 200\n"
        );
    }

    #[tokio::test]
    async fn a_browser_gets_a_page_naming_the_target() {
        let target = urlgrammar::Address::parse("svc/demo/shop:http", None)
            .unwrap()
            .target;
        let error = ProxyError::Timeout {
            server: "https://127.0.0.1:6443".into(),
            after: Duration::from_secs(3),
        };
        let to = Audience::Browser { target };
        let res = answer(Failure::proxy(error, to)).await;
        assert_eq!(res.status(), 504);
        assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
        let page = text(res).await;
        assert!(page.contains("<code>svc/demo/shop:http</code>"), "{page}");
        assert!(page.contains("kgate check svc/demo/shop:http"), "{page}");
    }

    #[tokio::test]
    async fn refusals_are_answered_in_their_audiences_forms() {
        let res = answer(Refusal::Filter).await;
        assert_eq!(res.status(), 403);
        assert_eq!(text(res).await, "Forbidden\n");
        let res = answer(Refusal::ForeignPage {
            rule: Rule::Upgrade,
            why: "it comes from a page of http://evil.example".into(),
        })
        .await;
        assert_eq!(res.status(), 403);
        let v: serde_json::Value = serde_json::from_str(&text(res).await).unwrap();
        assert_eq!(v["reason"], "Forbidden");
        let message = v["message"].as_str().unwrap();
        assert!(message.contains("evil.example"), "{message}");
        assert!(message.contains("rule cross-site-upgrade"), "{message}");
        let res = answer(Refusal::AmbiguousLength).await;
        assert_eq!(res.status(), 400);
        assert_eq!(res.headers()["connection"], "close");
        let res = answer(Refusal::CrossSite {
            own: "http://shop.demo.svc.localhost".into(),
            rule: Rule::Write,
            why: "<script>".into(),
        })
        .await;
        assert_eq!(res.status(), 403);
        let page = text(res).await;
        assert!(
            page.contains("&lt;script&gt;") && !page.contains("<script>"),
            "{page}"
        );
        let res = answer(Refusal::MethodNotAllowed).await;
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers()["allow"], "GET, HEAD");
    }

    #[test]
    fn status_documents_are_recognised() {
        let body = Bytes::from_static(
            br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"services \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"services"},"code":404}"#,
        );
        let refusal = ApiRefusal::parse(&body).unwrap();
        assert_eq!(refusal.message, "services \"nope\" not found");
        assert_eq!(refusal.reason, "NotFound");
        assert!(ApiRefusal::parse(&Bytes::from_static(br#"{"kind":"Pod"}"#)).is_none());
        assert!(ApiRefusal::parse(&Bytes::from_static(b"not json")).is_none());
    }
}
