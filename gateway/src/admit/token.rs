//! The gateway's own token (`kgate serve --gateway-token auto`): on a machine shared with other users,
//! only who holds it may use the gateway, and through it the user's credentials.
//!
//! Contract: with a token, every request must carry it, in one of three ways, checked in
//! constant time:
//!
//! - `Authorization: Bearer <token>` (scripts, `kubectl --token`), which is kgate's and is
//!   removed before the request goes on: the kubeconfig's credentials are used;
//! - the `kgate-token` cookie, set by kgate itself for the origin that was asked for, which is
//!   removed from the forwarded `Cookie` so no service or API server ever sees it;
//! - `?kgate-token=<token>` in the URL, as printed by `serve`, `open` and `urls`. A browser
//!   navigation so arriving gets the cookie (`HttpOnly; SameSite=Strict; Path=/`, for that
//!   origin only) and moves on to the same URL without the token ([`Admitted::SetCookie`]);
//!   any other request has the parameter removed and goes on.
//!
//! Anything else gets 401 and nothing else: not the names of services, not whether the API
//! server is up. Only `/.kgate/healthz` (which says `ok` and nothing more) is open, for probes.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Uri};

use crate::secret::{AccessToken, TOKEN_NAME};

/// The path that needs no token.
const OPEN_PATH: &str = "/.kgate/healthz";

/// How a request that carried the token goes on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// As it is, the token taken off it.
    Pass,
    /// A browser navigation with the token in its URL: set the cookie and send it to
    /// `location` (the same URL without the token).
    SetCookie { location: String },
}

/// Whether `req` carries `token`; see the module contract. On success the token is removed
/// from the request (header, cookie or query), so nothing after admission can forward it.
pub(crate) fn check<B>(token: &AccessToken, req: &mut Request<B>) -> Result<Admitted, ()> {
    if req.uri().path() == OPEN_PATH {
        return Ok(Admitted::Pass);
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .is_some_and(|t| token.matches(t));
    if bearer {
        req.headers_mut().remove(header::AUTHORIZATION);
        remove_cookie(req.headers_mut());
        return Ok(Admitted::Pass);
    }
    if cookie_matches(token, req.headers()) {
        remove_cookie(req.headers_mut());
        return Ok(Admitted::Pass);
    }
    let (in_query, rest) = query_without_token(token, req.uri().query());
    if !in_query {
        return Err(());
    }
    let path = req.uri().path();
    let clean = match &rest {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    if is_navigation(req.headers()) {
        return Ok(Admitted::SetCookie { location: clean });
    }
    // A request that is not a page load: it goes on without the parameter.
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = clean.parse().ok();
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    remove_cookie(req.headers_mut());
    Ok(Admitted::Pass)
}

/// A browser loading a page (not a script, not a subresource).
fn is_navigation(headers: &HeaderMap) -> bool {
    let mode = headers.get("sec-fetch-mode").map(HeaderValue::as_bytes);
    if let Some(mode) = mode {
        return mode.eq_ignore_ascii_case(b"navigate");
    }
    headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("text/html")))
}

/// The `name=value` pairs of every `Cookie` field.
fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            Some((pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii()))
        })
}

fn cookie_matches(token: &AccessToken, headers: &HeaderMap) -> bool {
    cookie_pairs(headers).any(|(name, value)| name == TOKEN_NAME.as_bytes() && token.matches(value))
}

/// Removes every `kgate-token` pair from the `Cookie` fields (dropping a field left empty).
fn remove_cookie(headers: &mut HeaderMap) {
    if !cookie_pairs(headers).any(|(name, _)| name == TOKEN_NAME.as_bytes()) {
        return;
    }
    let kept: Vec<Vec<u8>> = headers
        .get_all(header::COOKIE)
        .iter()
        .map(|v| {
            v.as_bytes()
                .split(|&b| b == b';')
                .map(<[u8]>::trim_ascii)
                .filter(|pair| {
                    let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
                    !pair.is_empty() && name.trim_ascii() != TOKEN_NAME.as_bytes()
                })
                .collect::<Vec<_>>()
                .join(&b"; "[..])
        })
        .filter(|v| !v.is_empty())
        .collect();
    headers.remove(header::COOKIE);
    for value in kept {
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            headers.append(header::COOKIE, value);
        }
    }
}

/// Whether the raw `query` holds `kgate-token=<token>`, and the query without every
/// `kgate-token` parameter (`None` when nothing is left).
fn query_without_token(token: &AccessToken, query: Option<&str>) -> (bool, Option<String>) {
    let Some(query) = query else {
        return (false, None);
    };
    let mut found = false;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == TOKEN_NAME {
            found |= token.matches(value.as_bytes());
        } else {
            kept.push(pair);
        }
    }
    let rest = (!kept.is_empty()).then(|| kept.join("&"));
    (found, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn token() -> AccessToken {
        AccessToken::new(SECRET).unwrap()
    }

    fn request(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut req = Request::get(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap()
    }

    #[test]
    fn a_bearer_token_is_taken_off_the_request() {
        let mut req = request(
            "/api/v1/pods",
            &[("authorization", &format!("Bearer {SECRET}"))],
        );
        assert_eq!(check(&token(), &mut req), Ok(Admitted::Pass));
        assert!(req.headers().get("authorization").is_none());
        let mut wrong = request("/api", &[("authorization", "Bearer nope")]);
        assert_eq!(check(&token(), &mut wrong), Err(()));
        let mut none = request("/api", &[]);
        assert_eq!(check(&token(), &mut none), Err(()));
    }

    #[test]
    fn the_cookie_is_removed_and_the_apps_cookies_stay() {
        let cookie = format!("session=1; {TOKEN_NAME}={SECRET}; theme=dark");
        let mut req = request("/", &[("cookie", &cookie), ("cookie", "other=2")]);
        assert_eq!(check(&token(), &mut req), Ok(Admitted::Pass));
        let left: Vec<_> = req.headers().get_all("cookie").iter().collect();
        assert_eq!(left, ["session=1; theme=dark", "other=2"]);
        let mut only = request("/", &[("cookie", &format!("{TOKEN_NAME}={SECRET}"))]);
        assert_eq!(check(&token(), &mut only), Ok(Admitted::Pass));
        assert!(only.headers().get("cookie").is_none());
        let mut wrong = request("/", &[("cookie", &format!("{TOKEN_NAME}=nope"))]);
        assert_eq!(check(&token(), &mut wrong), Err(()));
    }

    #[test]
    fn a_navigation_with_the_token_in_its_url_gets_the_cookie_and_a_clean_url() {
        let uri = format!("/dashboard?a=1&{TOKEN_NAME}={SECRET}&b=2");
        let mut nav = request(&uri, &[("sec-fetch-mode", "navigate")]);
        assert_eq!(
            check(&token(), &mut nav),
            Ok(Admitted::SetCookie {
                location: "/dashboard?a=1&b=2".into()
            })
        );
        let mut bare = request(
            &format!("/?{TOKEN_NAME}={SECRET}"),
            &[("accept", "text/html,*/*")],
        );
        assert_eq!(
            check(&token(), &mut bare),
            Ok(Admitted::SetCookie {
                location: "/".into()
            })
        );
        // A script with the printed URL: the parameter goes, the request goes on.
        let mut script = request(&format!("/api/v1/pods?{TOKEN_NAME}={SECRET}&limit=1"), &[]);
        assert_eq!(check(&token(), &mut script), Ok(Admitted::Pass));
        assert_eq!(script.uri().to_string(), "/api/v1/pods?limit=1");
        let mut wrong = request(&format!("/?{TOKEN_NAME}=nope"), &[]);
        assert_eq!(check(&token(), &mut wrong), Err(()));
        assert!(crate::secret::cookie(&token()).contains("HttpOnly; SameSite=Strict; Path=/"));
    }

    #[test]
    fn liveness_needs_no_token() {
        let mut probe = request(OPEN_PATH, &[]);
        assert_eq!(check(&token(), &mut probe), Ok(Admitted::Pass));
        let mut ready = request("/.kgate/readyz", &[]);
        assert_eq!(check(&token(), &mut ready), Err(()));
    }
}
