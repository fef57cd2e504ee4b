//! Shape: the API server's answer, made into the answer for the client. The strategy is chosen
//! once, when the request is built ([`Shape`]), and applied once, here.
//!
//! Contract:
//!
//! - [`Shape::Passthrough`] (kubectl proxy's API passthrough): the head with hop-by-hop fields
//!   removed, the body streamed frame by frame untouched. A `101 Switching Protocols` keeps its
//!   `Connection` and `Upgrade` (the tunnel is already running); an upgrade refused with 400 or
//!   more is passed on with `Connection: close`, as kubectl writes it on the hijacked
//!   connection.
//! - [`Shape::Origin`] (a service origin): the same, then the API server's prefix is undone in
//!   the URL-bearing headers and, streaming, in HTML bodies (`rewrite`); a `101` gets its
//!   headers un-prefixed alone. When the API server itself refuses (its small `Status` JSON: no
//!   such service, no endpoints, forbidden) and the client is a browser asking for HTML, the
//!   answer is not passed on: it becomes [`Failure::ApiRefused`], for `rescue` to write a page
//!   that says what exists.

use http::{HeaderValue, Response, StatusCode, Version, header};
use http_body::Body as _;
use http_body_util::BodyExt;
use urlgrammar::Target;

use bytes::Bytes;

use crate::body::{Body, BoxError, empty, full, stream};
use crate::rescue::{ApiRefusal, Audience, Failure, ProxyError, RefusedByApi};

/// The body of an answer from upstream (hyper's `Incoming`, or any body in a test).
pub(crate) trait UpstreamBody:
    http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static
{
}
impl<B> UpstreamBody for B where
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static
{
}

/// How the answer to one request is shaped.
pub(crate) enum Shape {
    /// The API passthrough; `upgrade` when the request asked for one.
    Passthrough { upgrade: bool },
    /// A service origin.
    Origin(Box<OriginShape>),
}

/// What shaping one origin request needs.
pub(crate) struct OriginShape {
    pub(crate) ctx: rewrite::ShapeContext,
    /// The client asked for HTML (a browser navigation): API server refusals become pages.
    pub(crate) wants_html: bool,
    pub(crate) upgrade: bool,
    /// The target, with the scheme and port the API server was asked for (for the pages).
    pub(crate) target: Target,
    /// The gateway's port, for the links on pages.
    pub(crate) port: Option<u16>,
}

impl Shape {
    /// Shapes `res`; see the module contract.
    pub(crate) async fn apply<B: UpstreamBody>(
        self,
        res: Response<B>,
    ) -> Result<Response<Body>, Failure> {
        match self {
            Self::Passthrough { upgrade } => Ok(passthrough(res, upgrade)),
            Self::Origin(origin) => origin.apply(res).await,
        }
    }
}

/// The answer to a switch of protocols: the head alone (the tunnel carries the rest).
fn switched<B>(res: Response<B>) -> Response<Body> {
    let (mut parts, _) = res.into_parts();
    parts.version = Version::HTTP_11;
    Response::from_parts(parts, empty())
}

fn passthrough<B: UpstreamBody>(res: Response<B>, upgrade: bool) -> Response<Body> {
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        return switched(res);
    }
    let mut res = stripped(res);
    if upgrade {
        close(&mut res);
    }
    res
}

/// The answer streamed, hop-by-hop fields removed, as HTTP/1.1.
fn stripped<B: UpstreamBody>(res: Response<B>) -> Response<Body> {
    let (mut parts, body) = res.into_parts();
    wire::headers::strip_hop_by_hop(&mut parts.headers, false);
    parts.version = Version::HTTP_11;
    Response::from_parts(parts, stream(body))
}

fn close<B>(res: &mut Response<B>) {
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

impl OriginShape {
    async fn apply<B: UpstreamBody>(self, res: Response<B>) -> Result<Response<Body>, Failure> {
        if res.status() == StatusCode::SWITCHING_PROTOCOLS {
            let mut res = switched(res);
            rewrite::shape_response_headers(res.headers_mut(), &self.ctx);
            return Ok(res);
        }
        let res = self.unless_refused(stripped(res)).await?;
        let (mut parts, body) = res.into_parts();
        let body = rewrite::shape_response(&mut parts, body, &self.ctx);
        let mut res = Response::from_parts(parts, stream(body));
        if self.upgrade {
            close(&mut res);
        }
        Ok(res)
    }

    /// `res` unchanged (a body read for the check is put back), unless it is the API server's
    /// own small `Status` refusal and the client wants HTML.
    async fn unless_refused(&self, res: Response<Body>) -> Result<Response<Body>, Failure> {
        let status = res.status();
        let is_json = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let small = res
            .body()
            .size_hint()
            .upper()
            .is_some_and(|n| n <= ApiRefusal::MAX_BODY);
        if !(self.wants_html
            && is_json
            && small
            && (status.is_client_error() || status.is_server_error()))
        {
            return Ok(res);
        }
        let (parts, body) = res.into_parts();
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(source) => {
                let error = ProxyError::Upstream {
                    server: "the API server".to_owned(),
                    source,
                };
                let to = Audience::Browser {
                    target: self.target.clone(),
                };
                return Err(Failure::proxy(error, to));
            }
        };
        match ApiRefusal::parse(&bytes) {
            Some(refusal) => Err(Failure::ApiRefused(Box::new(RefusedByApi {
                status,
                refusal,
                target: self.target.clone(),
                port: self.port,
                close: self.upgrade,
            }))),
            None => Ok(Response::from_parts(parts, full(bytes))),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;

    use super::*;

    const PREFIX: &str = "/api/v1/namespaces/demo/services/shop/proxy";

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response<Full<Bytes>> {
        let mut res = Response::builder().status(status);
        for (k, v) in headers {
            res = res.header(*k, *v);
        }
        res.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
    }

    fn origin(wants_html: bool, upgrade: bool) -> Shape {
        let target = urlgrammar::Address::parse("svc/demo/shop", None)
            .unwrap()
            .target;
        Shape::Origin(Box::new(OriginShape {
            ctx: rewrite::ShapeContext::new(PREFIX, "10.0.0.1:6443", "shop.demo.svc.localhost")
                .unwrap(),
            wants_html,
            upgrade,
            target,
            port: Some(8001),
        }))
    }

    async fn text(res: Response<Body>) -> String {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    const REFUSAL: &str = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"services \"shop\" not found","reason":"NotFound","code":404}"#;

    #[tokio::test]
    async fn passthrough_drops_hop_by_hop_and_streams_the_rest() {
        let res = response(
            200,
            &[
                ("keep-alive", "timeout=5"),
                ("connection", "x-a"),
                ("x-a", "1"),
                ("x-b", "2"),
            ],
            "body",
        );
        let res = Shape::Passthrough { upgrade: false }
            .apply(res)
            .await
            .unwrap();
        assert!(res.headers().get("keep-alive").is_none());
        assert!(res.headers().get("x-a").is_none());
        assert_eq!(res.headers()["x-b"], "2");
        assert_eq!(res.version(), Version::HTTP_11);
        assert_eq!(text(res).await, "body");
    }

    #[tokio::test]
    async fn a_switch_keeps_its_upgrade_headers_and_a_refused_upgrade_closes() {
        let switched = response(
            101,
            &[("connection", "Upgrade"), ("upgrade", "websocket")],
            "",
        );
        let res = Shape::Passthrough { upgrade: true }
            .apply(switched)
            .await
            .unwrap();
        assert_eq!(res.headers()["upgrade"], "websocket");
        assert_eq!(res.headers()["connection"], "Upgrade");
        let refused = response(403, &[], "no");
        let res = Shape::Passthrough { upgrade: true }
            .apply(refused)
            .await
            .unwrap();
        assert_eq!(res.headers()["connection"], "close");
        let plain = response(403, &[], "no");
        let res = Shape::Passthrough { upgrade: false }
            .apply(plain)
            .await
            .unwrap();
        assert!(res.headers().get("connection").is_none());
    }

    #[tokio::test]
    async fn an_origin_loses_the_prefix_in_headers_and_html() {
        let res = response(302, &[("location", &format!("{PREFIX}/login"))], "");
        let res = origin(true, false).apply(res).await.unwrap();
        assert_eq!(res.headers()["location"], "/login");
        let res = response(
            200,
            &[("content-type", "text/html")],
            &format!("<a href=\"{PREFIX}/cart\">cart</a>"),
        );
        let res = origin(true, false).apply(res).await.unwrap();
        assert_eq!(text(res).await, "<a href=\"/cart\">cart</a>");
        let switched = response(101, &[("location", &format!("{PREFIX}/ws"))], "");
        let res = origin(false, true).apply(switched).await.unwrap();
        assert_eq!(res.headers()["location"], "/ws");
    }

    #[tokio::test]
    async fn the_api_servers_refusal_is_a_page_for_a_browser_only() {
        let json = [("content-type", "application/json")];
        match origin(true, true)
            .apply(response(404, &json, REFUSAL))
            .await
        {
            Err(Failure::ApiRefused(refused)) => {
                assert_eq!(refused.status, 404);
                assert_eq!(refused.refusal.reason, "NotFound");
                assert!(refused.close, "an upgrade's refusal closes the connection");
            }
            Err(other) => panic!("{other:?}"),
            Ok(res) => panic!("passed on: {}", res.status()),
        }
        // A script gets the Status itself, byte for byte.
        let res = origin(false, false)
            .apply(response(404, &json, REFUSAL))
            .await
            .unwrap();
        assert_eq!(text(res).await, REFUSAL);
        // The app's own JSON error is the app's, not a refusal: it is put back unchanged.
        let app = r#"{"error":"out of stock"}"#;
        let res = origin(true, false)
            .apply(response(409, &json, app))
            .await
            .unwrap();
        assert_eq!(res.status(), 409);
        assert_eq!(text(res).await, app);
    }
}
