//! Pages: the HTML the gateway writes itself, and where its own pages live.
//!
//! Contract: [`page`] is the one template for a short page (a title and a few paragraphs of
//! already-escaped HTML, with the status at the foot); [`html_response`] sends any document the
//! gateway wrote, never cached, sniffed or framed, under a `Content-Security-Policy` that
//! allows no script ([`PAGE_CSP`]) unless the page needs its own ([`INDEX_CSP`]). The gateway's
//! own pages live under [`LOCAL_PREFIX`] on its API address; [`index_url`] links to the index.

use http::{HeaderValue, Response, StatusCode, header};
use wire::html::escape;

use crate::body::{Body, full};

/// Where the gateway's own pages live on its API address.
pub(crate) const LOCAL_PREFIX: &str = "/.kgate";

/// The index page's path.
pub const INDEX_PATH: &str = "/.kgate/";

/// Whether `path` is one of the gateway's own pages.
pub(crate) fn is_local(path: &str) -> bool {
    path == LOCAL_PREFIX || path.starts_with(INDEX_PATH)
}

/// The policy of pages without script.
pub(crate) const PAGE_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

/// The policy of the index page, whose filter is its own inline script.
pub(crate) const INDEX_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     script-src 'unsafe-inline'; frame-ancestors 'none'";

const PAGE_STYLE: &str = ":root{color-scheme:light dark}body{margin:0 auto;max-width:46rem;\
padding:2rem 1.5rem;font:16px/1.5 system-ui,sans-serif}h1{font-size:1.4rem}code{font-size:.9em}\
blockquote{margin:1rem 0;padding:.5rem 1rem;border-left:4px solid #cf222e}.status{color:#6e7781}";

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

/// The index page's URL on the gateway's `port` (none: the default port).
pub(crate) fn index_url(port: Option<u16>) -> String {
    match port {
        Some(port) => format!("http://localhost:{port}{INDEX_PATH}"),
        None => format!("http://localhost{INDEX_PATH}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_and_forbid_scripts() {
        let res = page(StatusCode::NOT_FOUND, "<x>", "<p>ok</p>");
        assert_eq!(res.status(), 404);
        let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(index_url(Some(8001)), "http://localhost:8001/.kgate/");
        assert_eq!(index_url(None), "http://localhost/.kgate/");
    }

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
