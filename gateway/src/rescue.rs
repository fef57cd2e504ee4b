//! Rescue: every failure of the gateway becomes a response here, and only here.
//!
//! Contract: [`ProxyError`] says whose fault a failure was (the API server could not be
//! reached, TLS failed, it did not answer in time, it broke off mid-request, or an upgrade was
//! refused); [`ProxyError::into_response`] turns it into the one response the client sees and
//! writes one log line. API paths get a Kubernetes `Status` JSON, as the API server itself would
//! send, naming what failed and what to try. Nothing here ever contains request headers, so
//! credentials cannot leak into bodies or logs. The plain-text answers kubectl's Go server
//! writes itself (`Forbidden`, `404 page not found`, ...) are built here too, byte for byte.

use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header};

use crate::body::{Body, BoxError, empty, full};

/// What went wrong between the gateway and the API server.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
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

    /// The one response for this failure, with one log line. `method` and `path` say which
    /// request failed (the path only, never headers).
    pub(crate) fn into_response(self, method: &http::Method, path: &str) -> Response<Body> {
        let (status, reason, _) = self.classify();
        if let Self::InvalidUpgradeResponse { .. } = self {
            // kubectl's responder: `http.Error(w, err.Error(), 500)`.
            tracing::warn!("Error while proxying request: {self}");
            return go_error(status, &self.to_string());
        }
        tracing::warn!(%method, path, status = status.as_u16(), "proxy error: {}", auth::error_chain(&self));
        let (status, message) = self.describe();
        status_json(status, reason, &message)
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
}

/// A Kubernetes `metav1.Status` failure, as the API server writes it.
pub(crate) fn status_json(status: StatusCode, reason: &str, message: &str) -> Response<Body> {
    let value = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": status.as_u16(),
    });
    let mut text = value.to_string();
    text.push('\n');
    let mut res = Response::new(full(text));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Go's `http.Error(w, text, status)`: `text\n` as UTF-8 plain text, `nosniff`.
pub(crate) fn go_error(status: StatusCode, text: &str) -> Response<Body> {
    let mut res = Response::new(full(format!("{text}\n")));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// The filter's refusal: `403 Forbidden\n` (kubectl `FilterServer.ServeHTTP`).
pub(crate) fn forbidden() -> Response<Body> {
    go_error(StatusCode::FORBIDDEN, "Forbidden")
}

/// Go's `http.NotFound`: `404 page not found\n`.
pub(crate) fn not_found() -> Response<Body> {
    go_error(StatusCode::NOT_FOUND, "404 page not found")
}

/// What Go's server writes for a request target it cannot parse.
pub(crate) fn bad_request() -> Response<Body> {
    let mut res = Response::new(full("400 Bad Request"));
    *res.status_mut() = StatusCode::BAD_REQUEST;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// Go's `http.Redirect(w, r, location, 301)` as used by `ServeMux`: an HTML body for `GET`,
/// the content type for `GET` and `HEAD`.
pub(crate) fn moved_permanently(method: &http::Method, location: &str) -> Response<Body> {
    let is_get = method == http::Method::GET;
    let body = if is_get {
        full(format!(
            "<a href=\"{}\">Moved Permanently</a>.\n\n",
            html_escape(location)
        ))
    } else {
        empty()
    };
    let mut res = Response::new(body);
    *res.status_mut() = StatusCode::MOVED_PERMANENTLY;
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    if is_get || method == http::Method::HEAD {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    res
}

/// Go's `htmlReplacer` in `net/http`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn text(res: Response<Body>) -> String {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn forbidden_is_gos_http_error() {
        let res = forbidden();
        assert_eq!(res.status(), 403);
        assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        assert_eq!(text(res).await, "Forbidden\n");
        assert_eq!(text(not_found()).await, "404 page not found\n");
    }

    #[tokio::test]
    async fn connect_failure_is_502_status_json_with_advice() {
        let err = ProxyError::Api(auth::SendError::Connect {
            server: "https://127.0.0.1:1".into(),
            via: None,
            reason: "connection refused".into(),
        });
        let res = err.into_response(&http::Method::GET, "/api");
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
        let err = ProxyError::Timeout {
            server: "s".into(),
            after: Duration::from_secs(3),
        };
        let res = err.into_response(&http::Method::GET, "/");
        assert_eq!(res.status(), 504);
        let res = ProxyError::InvalidUpgradeResponse { status: 200 }
            .into_response(&http::Method::GET, "/");
        assert_eq!(res.status(), 500);
        assert_eq!(
            text(res).await,
            "invalid upgrade response: status code 200\n"
        );
    }

    #[tokio::test]
    async fn redirect_matches_go() {
        let res = moved_permanently(&http::Method::GET, "/a/?x=<1>");
        assert_eq!(res.status(), 301);
        assert_eq!(res.headers()["location"], "/a/?x=<1>");
        assert_eq!(
            text(res).await,
            "<a href=\"/a/?x=&lt;1&gt;\">Moved Permanently</a>.\n\n"
        );
        let res = moved_permanently(&http::Method::POST, "/a/");
        assert!(res.headers().get("content-type").is_none());
        assert_eq!(text(res).await, "");
    }
}
