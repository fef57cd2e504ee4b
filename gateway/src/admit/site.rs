//! Which web page a request comes from, by what the browser says (`Sec-Fetch-Site`, `Origin`).
//!
//! Contract: [`Site::foreign`] says why a request is not from a page of the site's own origin
//! or of an origin the user admitted (`--allow-origin`), if it is not: `Sec-Fetch-Site:
//! cross-site` or `same-site` (another origin on the same gateway is same-site, and as foreign
//! as any), an `Origin` other than those, or several `Origin` fields. A request with neither
//! header (curl, scripts, kubectl) is not from a page and passes; an admitted `Origin` passes
//! whatever `Sec-Fetch-Site` says (a front-end on `localhost:3000` is same-site to the
//! gateway). The refusals name one of three [`Rule`]s:
//!
//! - [`Rule::Upgrade`]: a WebSocket or SPDY upgrade from a foreign page (a WebSocket is not
//!   bound by the same-origin policy: the page reads the answers);
//! - [`Rule::Write`]: any method but `GET`, `HEAD` and `OPTIONS` from a foreign page (a blind
//!   write needs no answer to do harm);
//! - [`Rule::Api`]: the Kubernetes API passthrough from a foreign page, whatever the method.
//!
//! [`Site::cross_site`] applies the first two, [`Site::api`] all three.

use http::{HeaderMap, HeaderValue, Method, header};

pub(crate) use crate::rescue::Rule;

/// The origins a request may come from: the one it was sent to, and those the user admitted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site<'a> {
    /// The serialisation of the origin the request was sent to (`http://localhost:8001`).
    pub(crate) own: &'a str,
    /// `--allow-origin` values, lower case, without a trailing `/`.
    pub(crate) allowed: &'a [String],
}

impl Site<'_> {
    /// The state-changing rules ([`Rule::Upgrade`], [`Rule::Write`]): why `method` with
    /// `headers` is refused, if it is.
    pub(crate) fn cross_site(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Option<(Rule, String)> {
        let rule = if wire::headers::is_upgrade(headers) {
            Rule::Upgrade
        } else if is_safe(method) {
            return None;
        } else {
            Rule::Write
        };
        self.foreign(headers).map(|why| (rule, why))
    }

    /// Every rule, as for the API passthrough: why the request is refused, if it is.
    pub(crate) fn api(&self, method: &Method, headers: &HeaderMap) -> Option<(Rule, String)> {
        let why = self.foreign(headers)?;
        let rule = if wire::headers::is_upgrade(headers) {
            Rule::Upgrade
        } else if is_safe(method) {
            Rule::Api
        } else {
            Rule::Write
        };
        Some((rule, why))
    }

    /// Why a request is not from a page of this site, if it is not; see the module contract.
    pub(crate) fn foreign(&self, headers: &HeaderMap) -> Option<String> {
        let origins: Vec<&HeaderValue> = headers.get_all(header::ORIGIN).iter().collect();
        if let [one] = origins.as_slice()
            && let Ok(origin) = one.to_str()
            && self.admits(origin)
        {
            return None;
        }
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
        match origins.as_slice() {
            [] => None,
            [one] if one.to_str().is_ok_and(|o| o.eq_ignore_ascii_case(self.own)) => None,
            [one] => Some(format!(
                "it comes from a page of {}",
                one.to_str().unwrap_or("an unreadable origin")
            )),
            _ => Some("it carries several Origin headers".to_owned()),
        }
    }

    fn admits(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        self.allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
    }
}

/// Whether a method may change state (RFC 9110 safe methods are `GET`, `HEAD`, `OPTIONS`,
/// `TRACE`; `TRACE` is counted as unsafe here, as nothing needs it cross-site).
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
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

    fn site(own: &str) -> Site<'_> {
        Site { own, allowed: &[] }
    }

    fn refused(verdict: Option<(Rule, String)>) -> Option<Rule> {
        verdict.map(|(rule, _)| rule)
    }

    #[test]
    fn cross_site_rules() {
        let own = "http://shop.demo.svc.localhost:8001";
        let s = site(own);
        // Scripts and curl send neither header.
        assert_eq!(s.cross_site(&Method::POST, &headers(&[])), None);
        // Same origin passes.
        let same = headers(&[("origin", own), ("sec-fetch-site", "same-origin")]);
        assert_eq!(s.cross_site(&Method::POST, &same), None);
        // Safe methods pass whatever their origin (navigation, links from other origins).
        let other = headers(&[
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert_eq!(s.cross_site(&Method::GET, &other), None);
        assert_eq!(
            refused(s.cross_site(&Method::POST, &other)),
            Some(Rule::Write)
        );
        assert_eq!(
            refused(s.cross_site(&Method::DELETE, &headers(&[("origin", "null")]))),
            Some(Rule::Write)
        );
        // Another origin on the same gateway is same-site, and refused too.
        let sibling = headers(&[("sec-fetch-site", "same-site")]);
        assert_eq!(
            refused(s.cross_site(&Method::PUT, &sibling)),
            Some(Rule::Write)
        );
        // A WebSocket handshake is a GET, but counts as state-changing.
        let ws = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("origin", "http://evil.example"),
        ]);
        assert_eq!(
            refused(s.cross_site(&Method::GET, &ws)),
            Some(Rule::Upgrade)
        );
        let ws_own = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("origin", own),
        ]);
        assert_eq!(s.cross_site(&Method::GET, &ws_own), None);
        // Two Origin headers are not an origin.
        let two = headers(&[("origin", own), ("origin", own)]);
        assert_eq!(
            refused(s.cross_site(&Method::POST, &two)),
            Some(Rule::Write)
        );
    }

    #[test]
    fn the_api_refuses_every_method_from_a_foreign_page() {
        let s = site("http://localhost:8001");
        let page = headers(&[("origin", "http://evil.example")]);
        assert_eq!(refused(s.api(&Method::GET, &page)), Some(Rule::Api));
        assert_eq!(refused(s.api(&Method::POST, &page)), Some(Rule::Write));
        let ws = headers(&[
            ("origin", "http://evil.example"),
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert_eq!(refused(s.api(&Method::GET, &ws)), Some(Rule::Upgrade));
        assert_eq!(s.api(&Method::GET, &headers(&[("origin", s.own)])), None);
        assert_eq!(
            s.api(
                &Method::GET,
                &headers(&[("origin", "HTTP://LOCALHOST:8001")])
            ),
            None,
            "origins compare without case"
        );
        assert_eq!(s.api(&Method::DELETE, &headers(&[])), None, "scripts pass");
    }

    #[test]
    fn an_admitted_origin_passes_whatever_the_site_says() {
        let allowed = ["http://localhost:3000".to_owned()];
        let s = Site {
            own: "http://localhost:8001",
            allowed: &allowed,
        };
        let dev = headers(&[
            ("origin", "http://localhost:3000"),
            ("sec-fetch-site", "same-site"),
        ]);
        assert_eq!(s.api(&Method::POST, &dev), None);
        let other = headers(&[
            ("origin", "http://localhost:3001"),
            ("sec-fetch-site", "same-site"),
        ]);
        assert_eq!(refused(s.api(&Method::GET, &other)), Some(Rule::Api));
        assert!(Rule::Upgrade.forbids().contains("WebSocket"));
        assert_eq!(Rule::Api.to_string(), "cross-site-api");
    }
}
