//! The answers kubectl's Go server writes itself, byte for byte, and the API server's `Status`.
//!
//! Contract: [`error`] is Go's `http.Error(w, text, status)`; [`forbidden`] is kubectl's filter
//! refusal (`FilterServer.ServeHTTP`); [`not_found`] is `http.NotFound`; [`bad_request`] is what
//! Go's server writes for a request target it cannot parse; [`moved_permanently`] is
//! `http.Redirect(w, r, location, 301)` as `ServeMux` uses it; [`status_json`] is a
//! `metav1.Status` failure as the API server writes it.

use http::{HeaderValue, Method, Response, StatusCode, header};

use crate::body::{Body, empty, full};

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
pub(crate) fn error(status: StatusCode, text: &str) -> Response<Body> {
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
    error(StatusCode::FORBIDDEN, "Forbidden")
}

/// Go's `http.NotFound`: `404 page not found\n`.
pub(crate) fn not_found() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "404 page not found")
}

/// `405 method not allowed` with the methods that are (`allow`).
pub(crate) fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut res = error(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed");
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    res
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

/// The refusal of a request with both `Content-Length` and `Transfer-Encoding` (nginx's since
/// 1.21.1, in Go's plain-text form), closing the connection: what follows its head cannot be
/// trusted to be its body or the next request.
pub(crate) fn ambiguous_length() -> Response<Body> {
    let mut res = error(
        StatusCode::BAD_REQUEST,
        "400 Bad Request: a request may not carry both Content-Length and Transfer-Encoding",
    );
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// The refusal of a request without the gateway's token: 401 and a line that says how to
/// send it, nothing about the cluster.
pub(crate) fn unauthorized() -> Response<Body> {
    let mut res = error(
        StatusCode::UNAUTHORIZED,
        "401 Unauthorized: this kgate needs its token: open the URL it printed (with \
         ?kgate-token=...), or send Authorization: Bearer <token>",
    );
    let h = res.headers_mut();
    h.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"kgate\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Go's `http.Redirect(w, r, location, 301)` as used by `ServeMux`: an HTML body for `GET`,
/// the content type for `GET` and `HEAD`.
pub(crate) fn moved_permanently(method: &Method, location: &str) -> Response<Body> {
    let is_get = method == Method::GET;
    let body = if is_get {
        full(format!(
            "<a href=\"{}\">Moved Permanently</a>.\n\n",
            wire::html::escape(location)
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
    if is_get || method == Method::HEAD {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    res
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
    async fn redirect_matches_go() {
        let res = moved_permanently(&Method::GET, "/a/?x=<1>");
        assert_eq!(res.status(), 301);
        assert_eq!(res.headers()["location"], "/a/?x=<1>");
        assert_eq!(
            text(res).await,
            "<a href=\"/a/?x=&lt;1&gt;\">Moved Permanently</a>.\n\n"
        );
        let res = moved_permanently(&Method::POST, "/a/");
        assert!(res.headers().get("content-type").is_none());
        assert_eq!(text(res).await, "");
    }
}
