//! Admit: whether a classified request may go where it names. Every refusal of the gateway's
//! policy is decided here, in [`Admission::admit`], and nowhere else; `rescue` writes the answer.
//!
//! Contract, by destination, each rule in the order it is checked:
//!
//! | destination | rules |
//! |---|---|
//! | any | a head with both `Content-Length` and `Transfer-Encoding` (found by `framing`) is refused, and the connection closed ([`Refusal::AmbiguousLength`]) |
//! | any, with `--gateway-token` | the gateway's own token, as a bearer, its cookie or `?kgate-token=`, else 401 ([`token`], [`Refusal::Unauthorized`]); a browser arriving with it in the URL gets the cookie and the clean URL ([`Refusal::SetToken`]) |
//! | service origin | its context label is the gateway's ([`Refusal::OtherCluster`]); an upgrade or a state-changing request comes from the origin's own pages ([`site::Site::cross_site`], [`Refusal::CrossSite`]) |
//! | mount | its `Host` is one the filter accepts, so a DNS-rebinding page cannot use it ([`Refusal::MountHost`]); the same cross-site rules |
//! | the gateway's pages | kubectl's filter on the raw path ([`Refusal::Filter`]) |
//! | API passthrough | no request from another origin's page, whatever the method ([`site::Site::api`], [`Refusal::ForeignPage`]); then kubectl's filter on the stripped, decoded path ([`filter::Filter::check`]) |
//! | the mux's own answers (404, 400, redirect) | the API passthrough's page rule |
//! | static files (`--www`) | the cross-site rules for upgrades and state-changing requests |
//!
//! The page rules hold on `kgate proxy` too: no script or kubectl sends `Origin` or
//! `Sec-Fetch-Site`, so they refuse only browsers (`--allow-origin` admits a named front-end).
//! Beyond them, `kgate proxy`'s admission is exactly kubectl's filter (`--disable-filter` turns
//! that off). A request admitted here reaches its destination unchanged; nothing later refuses
//! on policy.

pub mod filter;
pub(crate) mod site;
pub(crate) mod token;

use http::Request;
use urlgrammar::ContextLabel;

use crate::classify::{Destination, OriginTarget, Unserved, request_host};
use crate::framing::AmbiguousLength;
use crate::rescue::Refusal;
use crate::secret::AccessToken;
use filter::{Filter, extract_host};
use site::Site;
use token::Admitted;

/// The admission rules of one gateway.
pub(crate) struct Admission {
    /// kubectl's filter; `None` with `--disable-filter`.
    filter: Option<Filter>,
    /// Origins admitted besides the gateway's own (`--allow-origin`), lower case, without a
    /// trailing `/`.
    allowed: Vec<String>,
    /// The context label this gateway's origin hosts carry, if any.
    context: Option<ContextLabel>,
    /// The gateway's own token (`--gateway-token`), when every request must carry it.
    token: Option<AccessToken>,
}

impl Admission {
    pub(crate) fn new(
        filter: Option<Filter>,
        allowed: &[String],
        context: Option<ContextLabel>,
    ) -> Self {
        let allowed = allowed
            .iter()
            .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
            .collect();
        Self {
            filter,
            allowed,
            context,
            token: None,
        }
    }

    /// Every request must carry `token` (see [`token`]).
    pub(crate) fn with_token(self, token: Option<AccessToken>) -> Self {
        Self { token, ..self }
    }

    /// Admits `req` to `dest`, or says why not; see the module contract. The gateway's own
    /// token, once checked, is taken off the request.
    pub(crate) fn admit<B>(&self, dest: &Destination, req: &mut Request<B>) -> Result<(), Refusal> {
        if req.extensions().get::<AmbiguousLength>().is_some() {
            tracing::warn!(
                method = %req.method(),
                path = req.uri().path(),
                "refused a request with both Content-Length and Transfer-Encoding"
            );
            return Err(Refusal::AmbiguousLength);
        }
        if let Some(token) = &self.token {
            match token::check(token, req) {
                Ok(Admitted::Pass) => {}
                Ok(Admitted::SetCookie { location }) => {
                    return Err(Refusal::SetToken {
                        location,
                        token: token.clone(),
                    });
                }
                Err(()) => {
                    tracing::warn!(
                        method = %req.method(),
                        path = req.uri().path(),
                        "refused a request without the gateway's token"
                    );
                    return Err(Refusal::Unauthorized);
                }
            }
        }
        self.destination(dest, req)
    }

    /// The rules of the destination; see the module contract.
    fn destination<B>(&self, dest: &Destination, req: &Request<B>) -> Result<(), Refusal> {
        match dest {
            Destination::Origin(origin) => {
                if origin.context != self.context {
                    return Err(Refusal::OtherCluster {
                        host: origin.host.clone(),
                        served: self.context.clone(),
                    });
                }
                self.cross_site(origin, req)
            }
            Destination::Mount(origin) => {
                if let Some(filter) = &self.filter
                    && !filter.accept_hosts.matches(extract_host(request_host(req)))
                {
                    tracing::warn!(
                        host = request_host(req),
                        "refused a request to a mount: its Host is not accepted"
                    );
                    return Err(Refusal::MountHost {
                        target: origin.target.clone(),
                        host: origin.host.clone(),
                    });
                }
                self.cross_site(origin, req)
            }
            Destination::Local { .. } => self.filter(req, req.uri().path()),
            Destination::Api { filter_path, .. } => {
                self.api_guard(req)?;
                self.filter(req, filter_path)
            }
            Destination::Unserved(
                Unserved::NotFound | Unserved::BadRequest | Unserved::Moved { .. },
            ) => self.api_guard(req),
            Destination::Static { .. } => {
                let own = format!("http://{}", request_host(req).to_ascii_lowercase());
                match self.site(&own).cross_site(req.method(), req.headers()) {
                    None => Ok(()),
                    Some((rule, why)) => Err(self.foreign(req, rule, why)),
                }
            }
            Destination::Unserved(Unserved::NotAnOrigin { .. }) => Ok(()),
        }
    }

    /// DESIGN "Behaviour decisions": no web page but the gateway's own reaches the Kubernetes
    /// API with the user's credentials, whatever the method.
    fn api_guard<B>(&self, req: &Request<B>) -> Result<(), Refusal> {
        let own = format!("http://{}", request_host(req).to_ascii_lowercase());
        match self.site(&own).api(req.method(), req.headers()) {
            None => Ok(()),
            Some((rule, why)) => Err(self.foreign(req, rule, why)),
        }
    }

    fn foreign<B>(&self, req: &Request<B>, rule: site::Rule, why: String) -> Refusal {
        tracing::warn!(
            method = %req.method(),
            path = req.uri().path(),
            %rule,
            "refused a request from a web page to the API: {why}"
        );
        Refusal::ForeignPage { rule, why }
    }

    fn site<'a>(&'a self, own: &'a str) -> Site<'a> {
        Site {
            own,
            allowed: &self.allowed,
        }
    }

    /// The cross-site rules for an origin or a mount, whose own origin is `http://<host>`.
    fn cross_site<B>(&self, origin: &OriginTarget, req: &Request<B>) -> Result<(), Refusal> {
        let own = format!("http://{}", origin.host);
        match self.site(&own).cross_site(req.method(), req.headers()) {
            None => Ok(()),
            Some((rule, why)) => {
                tracing::warn!(host = origin.host, method = %req.method(), %rule, "refused a cross-site request: {why}");
                Err(Refusal::CrossSite { own, rule, why })
            }
        }
    }

    /// kubectl's filter on the method, `path` and the host (Go's `r.Host`: the authority of an
    /// absolute-form target, else the `Host` header), with kubectl's `-v=3` log lines.
    fn filter<B>(&self, req: &Request<B>, path: &str) -> Result<(), Refusal> {
        let Some(filter) = &self.filter else {
            return Ok(());
        };
        let host = request_host(req);
        let method = req.method().as_str();
        match filter.check(method, path, extract_host(host)) {
            Ok(()) => {
                tracing::debug!("Filter accepting {method} {path} {host}");
                Ok(())
            }
            Err(why) => {
                tracing::debug!(reason = ?why, "Filter rejecting {method} {path} {host}");
                Err(Refusal::Filter)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::mux::Router;
    use crate::classify::{Classifier, Role};
    use filter::FilterSpec;

    fn request(method: &str, host: &str, path: &str, origin: Option<&str>) -> Request<()> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", host);
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.body(()).unwrap()
    }

    /// The verdict for `req` on a gateway with service origins (`serve`) or without (`proxy`).
    fn verdict(origins: bool, role: &Role, req: &Request<()>) -> Result<(), Refusal> {
        let classifier = Classifier::new(Router::new("/", None), origins, None, Some(8001));
        let filter = Filter::compile(&FilterSpec::default()).unwrap();
        let admission = Admission::new(Some(filter), &[], None);
        let mut req = req.clone();
        admission.admit(&classifier.classify(role, &req), &mut req)
    }

    fn is(refusal: &Result<(), Refusal>, want: &str) -> bool {
        format!("{refusal:?}").starts_with(want)
    }

    #[test]
    fn api_passthrough_is_kubectls_filter_and_no_foreign_page() {
        let gw = Role::Gateway;
        let ok = request("POST", "localhost:8001", "/api/v1/pods", None);
        assert_eq!(verdict(true, &gw, &ok), Ok(()));
        let exec = request("GET", "localhost", "/api/v1/namespaces/a/pods/b/exec", None);
        assert!(is(&verdict(true, &gw, &exec), "Err(Filter"));
        let evil_host = request("GET", "evil.example", "/api/v1/pods", None);
        assert!(is(&verdict(true, &gw, &evil_host), "Err(Filter"));
        let page = request(
            "GET",
            "localhost:8001",
            "/api/v1/pods",
            Some("http://evil.example"),
        );
        assert!(is(&verdict(true, &gw, &page), "Err(ForeignPage"));
        // Even a malformed target from a foreign page is refused as foreign first.
        let bad = request(
            "GET",
            "localhost:8001",
            "/a/../b",
            Some("http://evil.example"),
        );
        assert!(is(&verdict(true, &gw, &bad), "Err(ForeignPage"));
        // kubectl proxy does not look at Origin; kgate proxy does.
        assert!(is(&verdict(false, &gw, &page), "Err(ForeignPage"));
        let script = request("POST", "localhost:8001", "/api/v1/pods", None);
        assert_eq!(verdict(false, &gw, &script), Ok(()));
    }

    #[test]
    fn origins_check_the_label_then_the_site() {
        let gw = Role::Gateway;
        let own = "http://shop.demo.svc.localhost:8001";
        let post = request("POST", "shop.demo.svc.localhost:8001", "/cart", Some(own));
        assert_eq!(verdict(true, &gw, &post), Ok(()));
        let foreign = request(
            "POST",
            "shop.demo.svc.localhost:8001",
            "/cart",
            Some("http://evil.example"),
        );
        assert!(is(&verdict(true, &gw, &foreign), "Err(CrossSite"));
        let labelled = request("GET", "shop.demo.svc.prod.localhost:8001", "/", None);
        assert!(is(&verdict(true, &gw, &labelled), "Err(OtherCluster"));
        // The kubectl filter does not apply to origins: their hosts are not in its list.
        let get = request(
            "GET",
            "shop.demo.svc.localhost:8001",
            "/api/v1/pods/x/exec",
            None,
        );
        assert_eq!(verdict(true, &gw, &get), Ok(()));
    }

    #[test]
    fn mounts_need_an_accepted_host() {
        let target = urlgrammar::Address::parse("svc/demo/shop", None)
            .unwrap()
            .target;
        let mount = Role::Mount(target);
        let local = request("GET", "127.0.0.1:9000", "/", None);
        assert_eq!(verdict(true, &mount, &local), Ok(()));
        let rebinding = request("GET", "evil.example:9000", "/", None);
        assert!(is(&verdict(true, &mount, &rebinding), "Err(MountHost"));
        let foreign = request("POST", "127.0.0.1:9000", "/", Some("http://evil.example"));
        assert!(is(&verdict(true, &mount, &foreign), "Err(CrossSite"));
    }

    #[test]
    fn local_pages_are_behind_the_filter_only() {
        let gw = Role::Gateway;
        let ok = request(
            "GET",
            "localhost:8001",
            "/.kgate/",
            Some("http://evil.example"),
        );
        assert_eq!(verdict(true, &gw, &ok), Ok(()));
        let evil = request("GET", "evil.example", "/.kgate/", None);
        assert!(is(&verdict(true, &gw, &evil), "Err(Filter"));
    }
}
