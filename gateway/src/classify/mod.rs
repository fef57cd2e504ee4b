//! Classify: where a request would go, from the listener it arrived on, its `Host` and its path.
//!
//! Contract: [`Classifier::classify`] names one [`Destination`] and decides nothing else (whether
//! the request may go there is `admit`'s question, which needs the destination to ask it: the
//! kubectl filter reads the path *after* the `--api-prefix` is stripped). In order:
//!
//! 1. a mount listener ([`Role::Mount`]) serves its one target on every path, whatever the host;
//! 2. with service origins on (`kgate serve`), a `Host` under `.localhost` names an origin
//!    (`urlgrammar/HOSTS.md`), or is refused as not being one; a path under `/.kgate` on any
//!    other host is the gateway's own pages;
//! 3. everything else goes through `kubectl proxy`'s mux ([`mux::Router`]): the API passthrough,
//!    `--www` static files, or one of the mux's own answers (redirect, 404, 400).
//!
//! Adding a destination (another cluster's passthrough, a transport per target) means a new
//! variant here and its arm in `dispatch`; no later phase looks at the `Host` or path again.

pub(crate) mod mux;

use http::{Method, Request, header};
use urlgrammar::{ContextLabel, OriginHost, Target};

use crate::pages;
use mux::{Route, Router};

/// What a listener serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    /// The gateway: API passthrough, origins by `Host`, the gateway's own pages.
    Gateway,
    /// One service's origin, on every path and whatever the `Host` names.
    Mount(Target),
}

/// Where a request would go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// The API passthrough. `filter_path` is the percent-decoded path after prefix stripping
    /// (what kubectl's filter sees); `upstream_path` is the escaped path to send upstream.
    Api {
        filter_path: String,
        upstream_path: String,
    },
    /// A service, pod or node origin named by the `Host`.
    Origin(OriginTarget),
    /// The target of a mount listener.
    Mount(OriginTarget),
    /// The gateway's own pages, under `/.kgate`; `port` is the one the `Host` names, for the
    /// index's links.
    Local { port: Option<u16> },
    /// `--www` static files; `rest` is the escaped path below `--www-prefix`, starting with `/`.
    Static { rest: String },
    /// Nothing the gateway serves: answered as Go's mux or the origin grammar answers.
    Unserved(Unserved),
}

/// A target reached at the root of an origin of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OriginTarget {
    /// The service, pod or node, as the host or the mount names it (no default port yet).
    pub(crate) target: Target,
    /// The context label the host carries (a mount carries the gateway's own).
    pub(crate) context: Option<ContextLabel>,
    /// The `Host`, lower case and without a trailing dot: the origin is `http://<host>`.
    pub(crate) host: String,
    /// The gateway's port, for links on the pages the gateway writes about this target.
    pub(crate) port: Option<u16>,
}

/// A request that names nothing the gateway serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unserved {
    /// No mux pattern matched, or `stripLeaveSlash` found no prefix: `404 page not found`.
    NotFound,
    /// A request target Go cannot parse (bad `%` escape) or `*`: `400 Bad Request`.
    BadRequest,
    /// Go's mux redirect (301) to a cleaned path or to the subtree's trailing slash.
    Moved { location: String },
    /// A name under `.localhost` that is not a valid origin host: the reason.
    NotAnOrigin { why: String },
}

impl Destination {
    /// The gateway's own pages answer `HEAD` with headers alone (their errors too).
    pub(crate) fn is_local(&self) -> bool {
        matches!(self, Self::Local { .. })
    }
}

/// The classification rules of one gateway.
#[derive(Debug, Clone)]
pub(crate) struct Classifier {
    router: Router,
    /// Service origins and the gateway's pages are served (`kgate serve`, not `kgate proxy`).
    origins: bool,
    /// The context label of the served cluster, which a mount's origin carries.
    context: Option<ContextLabel>,
    /// The main listener's port, for the links on a mount's pages.
    gateway_port: Option<u16>,
}

impl Classifier {
    pub(crate) fn new(
        router: Router,
        origins: bool,
        context: Option<ContextLabel>,
        gateway_port: Option<u16>,
    ) -> Self {
        Self {
            router,
            origins,
            context,
            gateway_port,
        }
    }

    /// Names the destination of `req`, which arrived on a listener of `role`.
    pub(crate) fn classify<B>(&self, role: &Role, req: &Request<B>) -> Destination {
        let host = request_host(req);
        if let Role::Mount(target) = role {
            return Destination::Mount(OriginTarget {
                target: target.clone(),
                context: self.context.clone(),
                host: normalise(host),
                port: self.gateway_port,
            });
        }
        if self.origins {
            match classify_host(host) {
                HostClass::Origin(origin) => {
                    let OriginHost {
                        target,
                        context,
                        port,
                    } = *origin;
                    return Destination::Origin(OriginTarget {
                        target,
                        context,
                        host: normalise(host),
                        port,
                    });
                }
                HostClass::BadOrigin(why) => {
                    return Destination::Unserved(Unserved::NotAnOrigin { why });
                }
                HostClass::Gateway if pages::is_local(req.uri().path()) => {
                    return Destination::Local {
                        port: host_port(host),
                    };
                }
                HostClass::Gateway => {}
            }
        }
        self.route(req.method(), req.uri())
    }

    fn route(&self, method: &Method, uri: &http::Uri) -> Destination {
        match self
            .router
            .classify(method.as_str(), uri.path(), uri.query())
        {
            Route::Api {
                filter_path,
                upstream_path,
            } => Destination::Api {
                filter_path,
                upstream_path,
            },
            Route::Static { rest } => Destination::Static { rest },
            Route::Redirect { location } => Destination::Unserved(Unserved::Moved { location }),
            Route::NotFound => Destination::Unserved(Unserved::NotFound),
            Route::BadRequest => Destination::Unserved(Unserved::BadRequest),
        }
    }
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

/// The port of a `Host` value, when it has one.
fn host_port(host: &str) -> Option<u16> {
    let (name, port) = host.rsplit_once(':')?;
    if name.is_empty() || (name.starts_with('[') && !name.ends_with(']')) {
        return None;
    }
    port.parse().ok()
}

/// A host as an origin's serialisation spells it: lower case, no trailing dot.
fn normalise(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.strip_suffix('.') {
        Some(stripped) => stripped.to_owned(),
        None => host,
    }
}

/// What the `Host` of a request names.
#[derive(Debug)]
enum HostClass {
    /// The gateway itself (`localhost`, an IP literal, any other name): the API passthrough
    /// and the gateway's own pages, behind the filter's host allow-list.
    Gateway,
    /// A service, pod or node origin.
    Origin(Box<OriginHost>),
    /// A name under `.localhost` that is not a valid origin host: the reason.
    BadOrigin(String),
}

/// Classifies a `Host` value (with or without `:port`).
fn classify_host(host: &str) -> HostClass {
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

    fn request(host: &str, path: &str) -> Request<()> {
        Request::get(path).header("host", host).body(()).unwrap()
    }

    fn gateway(origins: bool) -> Classifier {
        Classifier::new(Router::new("/", None), origins, None, Some(8001))
    }

    #[test]
    fn each_destination_from_listener_host_and_path() {
        let g = gateway(true);
        let at = |host, path| g.classify(&Role::Gateway, &request(host, path));
        assert_eq!(
            at("localhost:8001", "/api/v1/pods"),
            Destination::Api {
                filter_path: "/api/v1/pods".into(),
                upstream_path: "/api/v1/pods".into()
            }
        );
        match at("Shop.Demo.svc.localhost.:8001", "/api/v1/pods") {
            Destination::Origin(o) => {
                assert_eq!(o.target.to_string(), "svc/demo/shop");
                assert_eq!(o.host, "shop.demo.svc.localhost.:8001");
                assert_eq!(o.port, Some(8001));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            at("localhost:8001", "/.kgate/readyz"),
            Destination::Local { port: Some(8001) }
        );
        assert_eq!(at("[::1]", "/.kgate/"), Destination::Local { port: None });
        // On an origin, `/.kgate/` is the app's path.
        assert!(matches!(
            at("shop.demo.svc.localhost", "/.kgate/"),
            Destination::Origin(_)
        ));
        assert!(matches!(
            at("kgate.localhost", "/"),
            Destination::Unserved(Unserved::NotAnOrigin { .. })
        ));
        assert_eq!(
            at("localhost", "/a/../b"),
            Destination::Unserved(Unserved::Moved {
                location: "/b".into()
            })
        );
        assert_eq!(
            at("localhost", "/%zz"),
            Destination::Unserved(Unserved::BadRequest)
        );
    }

    #[test]
    fn kubectl_proxy_sees_neither_origins_nor_local_pages() {
        let g = gateway(false);
        for (host, path) in [("shop.demo.svc.localhost", "/x"), ("localhost", "/.kgate/")] {
            assert!(
                matches!(
                    g.classify(&Role::Gateway, &request(host, path)),
                    Destination::Api { .. }
                ),
                "{host}{path}"
            );
        }
    }

    #[test]
    fn a_mount_serves_its_target_on_every_path() {
        let g = gateway(true);
        let target = urlgrammar::Address::parse("svc/demo/shop", None)
            .unwrap()
            .target;
        let role = Role::Mount(target.clone());
        for path in ["/", "/api/v1/pods", "/.kgate/"] {
            match g.classify(&role, &request("127.0.0.1:9000", path)) {
                Destination::Mount(o) => {
                    assert_eq!(o.target, target);
                    assert_eq!(o.host, "127.0.0.1:9000");
                    assert_eq!(o.port, Some(8001), "links go to the gateway's port");
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
