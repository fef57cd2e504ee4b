//! Which web page a request comes from, by what the browser says (`Sec-Fetch-Site`, `Origin`).
//!
//! Contract: [`foreign_request`] says why a request is not from a page of the given origin, if
//! it is not: `Sec-Fetch-Site: cross-site` or `same-site` (another origin on the same gateway is
//! same-site, and as foreign as any), an `Origin` other than the given one, or several `Origin`
//! fields. A request with neither header (curl, scripts, kubectl) is not from a page and
//! passes. [`cross_site_refusal`] applies that to state-changing requests only: every method
//! but `GET`, `HEAD` and `OPTIONS`, and every upgrade (a cross-site WebSocket could act as the
//! user).

use http::{HeaderMap, HeaderValue, Method, header};

/// Whether a method may change state (RFC 9110 safe methods are `GET`, `HEAD`, `OPTIONS`,
/// `TRACE`; `TRACE` is counted as unsafe here, as nothing needs it cross-site).
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Why a state-changing request must be refused as cross-site, if it must. `own` is the
/// origin's serialisation (`http://shop.demo.svc.localhost:8001`).
pub(crate) fn cross_site_refusal(
    method: &Method,
    headers: &HeaderMap,
    own: &str,
) -> Option<String> {
    if is_safe(method) && !wire::headers::is_upgrade(headers) {
        return None;
    }
    foreign_request(headers, own)
}

/// Why a request is not from a page of `own`, if it is not; see the module contract.
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn any_method_from_a_foreign_page_is_foreign() {
        let own = "http://localhost:8001";
        let page = headers(&[("origin", "http://evil.example")]);
        assert!(foreign_request(&page, own).is_some());
        assert_eq!(foreign_request(&headers(&[("origin", own)]), own), None);
        assert_eq!(
            foreign_request(&headers(&[("origin", "HTTP://LOCALHOST:8001")]), own),
            None,
            "origins compare without case"
        );
    }
}
