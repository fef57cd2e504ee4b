//! The `proxy` subresource of services, pods and nodes, as the API server implements it.
//!
//! * Routes and methods: apiserver `pkg/endpoints/installer.go` registers `.../{name}/proxy`
//!   and `.../{name}/proxy/{path:*}` for each of `ConnectMethods()` (GET POST PUT PATCH DELETE
//!   HEAD OPTIONS; kubernetes `pkg/registry/core/service/proxy.go`).
//! * Sub-path: apiserver `pkg/endpoints/handlers/get.go` `getRequestOptions`.
//! * Backend: `ResourceLocation` of `pkg/registry/core/service/storage/storage.go`,
//!   `pod/strategy.go` and `node/strategy.go`, with `SplitSchemeNamePort`.
//! * Proxying: apimachinery `pkg/util/proxy/upgradeaware.go` (`ServeHTTP`, `tryUpgrade`,
//!   `proxyRedirectsforRootPath`, `defaultProxyTransport`, `corsRemovingTransport`) and
//!   `transport.go` (`X-Forwarded-Uri`, `Location` and HTML rewriting), over Go's
//!   `httputil.ReverseProxy` (hop-by-hop headers, `X-Forwarded-For`) and `http.Transport`
//!   (transparent gzip when the client did not ask for an encoding).
//! * The authentication filter has already removed `Authorization` (apiserver
//!   `pkg/endpoints/filters/authentication.go`), so endpoints never see the user's credential.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::body::{BoxError, Resp, empty, full};
use crate::requestinfo::RequestInfo;
use crate::rewrite::{GoUrl, Rewritten, UrlRewriter, go_escape_path, go_join, rewrite_body};
use crate::shared::Shared;
use crate::status::Status;

/// `ConnectMethods()` of the three proxy subresources.
const CONNECT_METHODS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
];

/// Where `ResourceLocation` sends the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    /// `http` or `https` (an empty scheme is normalised to `http` by `normalizeLocation`).
    pub(crate) scheme: &'static str,
    pub(crate) addr: SocketAddr,
}

/// The `?path` option: `getRequestOptions` joins `Parts[3:]`, adds a leading `/` and keeps the
/// request's trailing slash.
fn subpath(info: &RequestInfo) -> String {
    let mut p = info
        .parts
        .get(3..)
        .map(|rest| rest.join("/"))
        .unwrap_or_default();
    if !p.is_empty() && !p.starts_with('/') {
        p.insert(0, '/');
    }
    if info.path.ends_with('/') && !p.ends_with('/') {
        p.push('/');
    }
    p
}

/// apimachinery `pkg/util/net` `JoinPreservingTrailingSlash("", p)`.
fn join_preserving_trailing_slash(p: &str) -> String {
    let mut result = go_join("", p);
    if p.ends_with('/') && !result.ends_with('/') {
        result.push('/');
    }
    result
}

/// `ResourceLocation` for the object the request names.
fn resource_location(shared: &Shared, info: &RequestInfo) -> Result<Location, Status> {
    let state = shared
        .cluster
        .read()
        .map_err(|_| Status::internal("cluster state poisoned"))?;
    let id = info.name.as_str();
    match info.resource.as_str() {
        "services" => {
            let Some(split) = urlgrammar::split_scheme_name_port(id) else {
                return Err(Status::bad_request(format!(
                    "invalid service request {id:?}"
                )));
            };
            let (name, mut port) = (split.name, split.port.to_owned());
            // A port number names the service port with that `port` (never targetPort).
            if let Ok(number) = port.parse::<i64>() {
                let svc = state
                    .service(&info.namespace, name)
                    .ok_or_else(|| Status::not_found("", "services", name))?;
                match svc.ports.iter().find(|p| i64::from(p.port) == number) {
                    Some(p) => port = p.name.clone(),
                    None => {
                        return Err(Status::service_unavailable(format!(
                            "no service port {number} found for service {name:?}"
                        )));
                    }
                }
            }
            // The Endpoints object is read next: a missing service is "endpoints not found".
            let svc = state
                .service(&info.namespace, name)
                .ok_or_else(|| Status::not_found("", "endpoints", name))?;
            if svc.replicas.is_empty() {
                return Err(Status::service_unavailable(format!(
                    "no endpoints available for service {name:?}"
                )));
            }
            // Only ready addresses with a Pod targetRef (`isValidAddress`) are candidates; the
            // API server picks one at random (`rand.Intn`), here in turn.
            let ready: Vec<IpAddr> = svc
                .ready_replicas()
                .filter(|_| svc.has_pod)
                .map(|r| r.ip)
                .collect();
            let target = svc.ports.iter().find(|p| p.name == port).map(|p| p.target);
            let (Some(target), false) = (target, ready.is_empty()) else {
                return Err(Status::service_unavailable(format!(
                    "no endpoints available for service {id:?}"
                )));
            };
            let turn = shared
                .next_endpoint
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let ip = ready[turn % ready.len()];
            Ok(Location {
                scheme: if split.scheme == urlgrammar::Scheme::Https {
                    "https"
                } else {
                    "http"
                },
                addr: SocketAddr::new(ip, target),
            })
        }
        "pods" => {
            let Some(split) = urlgrammar::split_scheme_name_port(id) else {
                return Err(Status::bad_request(format!("invalid pod request {id:?}")));
            };
            let (svc, replica) = state
                .pod(&info.namespace, split.name)
                .ok_or_else(|| Status::not_found("", "pods", split.name))?;
            let ip = replica.ip;
            // The port is used verbatim (named container ports are not resolved); without
            // one, the first declared container port.
            let port = if split.port.is_empty() {
                svc.ports.first().map(|p| p.target).unwrap_or(80)
            } else {
                split.port.parse::<u16>().map_err(|_| {
                    Status::service_unavailable(format!(
                        "error trying to reach service: dial tcp: address {ip}:{}: invalid port",
                        split.port
                    ))
                })?
            };
            Ok(Location {
                scheme: if split.scheme == urlgrammar::Scheme::Https {
                    "https"
                } else {
                    "http"
                },
                addr: SocketAddr::new(ip, port),
            })
        }
        "nodes" => {
            let Some(split) = urlgrammar::split_scheme_name_port(id) else {
                return Err(Status::bad_request(format!("invalid node request {id:?}")));
            };
            if split.name != state.node_name {
                return Err(Status::not_found("", "nodes", split.name));
            }
            let ip = IpAddr::from([127, 0, 0, 1]);
            let kubelet = state.kubelet_port.to_string();
            // No port, or the kubelet's: the kubelet transport (HTTPS); else the requested
            // scheme and port.
            if split.port.is_empty() || split.port == kubelet {
                return Ok(Location {
                    scheme: "https",
                    addr: SocketAddr::new(ip, state.kubelet_port),
                });
            }
            let port = split.port.parse::<u16>().map_err(|_| {
                Status::service_unavailable(format!(
                    "error trying to reach service: dial tcp: address 127.0.0.1:{}: invalid port",
                    split.port
                ))
            })?;
            Ok(Location {
                scheme: if split.scheme == urlgrammar::Scheme::Https {
                    "https"
                } else {
                    "http"
                },
                addr: SocketAddr::new(ip, port),
            })
        }
        _ => Err(Status::path_not_found()),
    }
}

/// Serves a `.../proxy[/...]` request.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    mut req: Request<Incoming>,
    info: RequestInfo,
    peer: SocketAddr,
) -> Resp {
    if !CONNECT_METHODS.contains(req.method()) {
        return Status::method_not_supported(
            "",
            &format!("{}/proxy", info.resource),
            req.method().as_str(),
        )
        .into_response();
    }
    let query = req.uri().query().map(str::to_owned);
    // `ConnectResource` (handlers/rest.go): dry-run is refused before anything else.
    if query
        .as_deref()
        .is_some_and(|q| url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "dryRun"))
    {
        return Status::bad_request("dryRun is not supported").into_response();
    }
    let location = match resource_location(&shared, &info) {
        Ok(l) => l,
        Err(status) => return status.into_response(),
    };
    if let Some(refusal) = unreachable(&shared, &info, &location, req.headers()).await {
        return refusal;
    }
    // `ProxyREST.Connect`: location.Path = JoinPreservingTrailingSlash(location.Path, opts.Path).
    let loc_path = join_preserving_trailing_slash(&subpath(&info));
    let client_host = request_host(&req);

    // The authentication filter deletes the credential; the impersonation filter deletes
    // `Impersonate-*` once it has acted on them.
    wire::headers::strip_credentials(req.headers_mut());

    if wire::headers::is_upgrade(req.headers()) {
        return upgrade(&shared, req, &location, &loc_path, &client_host, peer).await;
    }

    // ServeHTTP: the query is copied and the request's trailing slash kept.
    let decoded_path = info.path.clone();
    let mut path = loc_path.clone();
    if !path.ends_with('/') && decoded_path.ends_with('/') {
        path.push('/');
    }
    if path.is_empty() && (req.method() == Method::GET || req.method() == Method::HEAD) {
        return root_redirect(&decoded_path, query.as_deref());
    }

    // defaultProxyTransport: PathPrepend = request path minus the backend path.
    let mut suffix = loc_path.clone();
    if decoded_path.ends_with('/') && !suffix.ends_with('/') {
        suffix.push('/');
    }
    let path_prepend = decoded_path
        .strip_suffix(suffix.as_str())
        .unwrap_or(&decoded_path)
        .to_owned();
    let rewriter = UrlRewriter {
        scheme: String::new(),
        host: String::new(),
        path_prepend,
        source_host: location.addr.to_string(),
        request_host: client_host.clone(),
    };
    forward(
        &shared,
        req,
        &location,
        &path,
        query.as_deref(),
        &client_host,
        peer,
        &rewriter,
    )
    .await
}

/// `proxyRedirectsforRootPath`: GET/HEAD on an empty path → 301 to the request path plus `/`
/// and the query, with no body.
fn root_redirect(decoded_path: &str, query: Option<&str>) -> Resp {
    let mut target = format!("{decoded_path}/");
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        target.push('?');
        target.push_str(q);
    }
    let mut resp = http::Response::new(empty());
    *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(v) = HeaderValue::from_str(&target) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// The `Host` the client addressed the API server with (`req.Host` in Go).
fn request_host(req: &Request<Incoming>) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))
        .unwrap_or_default()
}

/// The answer for a pod the API server cannot reach (see `PodNetwork`), after the time the
/// dial takes to fail: `transport.go`'s `NewServiceUnavailable("error trying to reach
/// service: ...")`, or for an upgrade `upgradeaware.go`'s `error dialing backend: ...`, with
/// Go's dialer's words for a timeout.
async fn unreachable(
    shared: &Shared,
    info: &RequestInfo,
    location: &Location,
    headers: &http::HeaderMap,
) -> Option<Resp> {
    let service = match info.resource.as_str() {
        "services" => urlgrammar::split_scheme_name_port(&info.name)?
            .name
            .to_owned(),
        "pods" => {
            let state = shared.cluster.read().ok()?;
            let (svc, _) = state.pod(&info.namespace, &info.name)?;
            svc.name.clone()
        }
        _ => return None,
    };
    if !shared.reach.blocks(&info.namespace, &service) {
        return None;
    }
    tokio::time::sleep(shared.reach.delay).await;
    let err = format!("dial tcp {}: i/o timeout", location.addr);
    Some(if wire::headers::is_upgrade(headers) {
        Status::unknown(500, format!("error dialing backend: {err}")).into_response()
    } else {
        unavailable(err)
    })
}

fn unavailable(err: impl std::fmt::Display) -> Resp {
    Status::service_unavailable(format!("error trying to reach service: {err}")).into_response()
}

/// The non-upgrade path: ReverseProxy over the rewriting, CORS-removing transport.
#[expect(
    clippy::too_many_arguments,
    reason = "the parameters of one proxied request"
)]
async fn forward(
    shared: &Shared,
    req: Request<Incoming>,
    location: &Location,
    path: &str,
    query: Option<&str>,
    client_host: &str,
    peer: SocketAddr,
    rewriter: &UrlRewriter,
) -> Resp {
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    wire::headers::strip_hop_by_hop(&mut headers, true);
    wire::headers::append_forwarded_for(&mut headers, Some(peer.ip()));
    // Transport.RoundTrip: X-Forwarded-Uri; X-Forwarded-Host/Proto only when the incoming URL
    // had a host and scheme, which a server-side request never has.
    let escaped = go_escape_path(path);
    let mut forwarded_uri = go_join(&rewriter.path_prepend, &escaped);
    if path.ends_with('/') {
        forwarded_uri.push('/');
    }
    if let Ok(v) = HeaderValue::from_str(&forwarded_uri) {
        headers.insert("x-forwarded-uri", v);
    }
    if let Ok(v) = HeaderValue::from_str(client_host) {
        headers.insert(header::HOST, v);
    }
    // Go's http.Transport asks for gzip itself when the client named no encoding, and then
    // decodes the response transparently.
    let added_gzip = !headers.contains_key(header::ACCEPT_ENCODING)
        && !headers.contains_key(header::RANGE)
        && parts.method != Method::HEAD;
    if added_gzip {
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    }
    let mut target = if escaped.is_empty() {
        "/".to_owned()
    } else {
        escaped
    };
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        target.push('?');
        target.push_str(q);
    }
    let mut out = Request::new(body);
    *out.method_mut() = parts.method.clone();
    *out.headers_mut() = headers;
    match target.parse() {
        Ok(uri) => *out.uri_mut() = uri,
        Err(e) => return Status::bad_request(format!("invalid path: {e}")).into_response(),
    }

    let absolute = format!("{}://{}{}", location.scheme, location.addr, out.uri());
    match absolute.parse() {
        Ok(uri) => *out.uri_mut() = uri,
        Err(e) => return Status::bad_request(format!("invalid path: {e}")).into_response(),
    }
    let resp = match shared.endpoints.request(out).await {
        Ok(r) => r,
        Err(e) => return unavailable(go_client_error(&e)),
    };
    shape_response(resp, added_gzip, rewriter).await
}

/// Go's wording for a failed round trip: the dial error as Go's dialer words it, `EOF` for a
/// connection closed before the answer, else the error itself.
fn go_client_error(e: &hyper_util::client::legacy::Error) -> String {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_canceled() || h.is_closed())
        {
            return "EOF".to_owned();
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionReset => "read: connection reset by peer".to_owned(),
                std::io::ErrorKind::UnexpectedEof => "EOF".to_owned(),
                _ => io.to_string(),
            };
        }
        source = err.source();
    }
    e.to_string()
}

/// The response side: hop-by-hop and CORS headers dropped, `Location` rewritten (and then
/// the body left alone), `text/html` bodies rewritten.
async fn shape_response(
    resp: http::Response<Incoming>,
    added_gzip: bool,
    rewriter: &UrlRewriter,
) -> Resp {
    let (mut parts, body) = resp.into_parts();
    wire::headers::strip_hop_by_hop(&mut parts.headers, false);
    // corsRemovingTransport.
    for name in [
        "access-control-allow-credentials",
        "access-control-allow-headers",
        "access-control-allow-methods",
        "access-control-allow-origin",
    ] {
        parts.headers.remove(name);
    }
    let mut body: crate::body::Body = body.map_err(|e| Box::new(e) as BoxError).boxed();
    let gzipped = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if added_gzip && gzipped {
        parts.headers.remove(header::CONTENT_ENCODING);
        parts.headers.remove(header::CONTENT_LENGTH);
        body = gunzip(body);
    }
    // Transport.RoundTrip: a Location header (any status) is rewritten and ends the work.
    if let Some(loc) = parts.headers.get(header::LOCATION).cloned() {
        let loc = String::from_utf8_lossy(loc.as_bytes()).into_owned();
        if !loc.is_empty() {
            if GoUrl::parse(&loc).is_none() {
                return Status::internal(format!(
                    "error trying to parse Location header: parse {loc:?}: invalid URL"
                ))
                .into_response();
            }
            if let Ok(v) = HeaderValue::from_str(&rewriter.rewrite(&loc)) {
                parts.headers.insert(header::LOCATION, v);
            }
            return http::Response::from_parts(parts, body);
        }
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let c_type = content_type.split(';').next().unwrap_or_default().trim();
    if c_type != "text/html" {
        return http::Response::from_parts(parts, body);
    }
    // rewriteResponse holds the whole body.
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => return unavailable(e),
    };
    let encoding = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    match rewrite_body(rewriter, &encoding, &bytes).await {
        Ok(Rewritten::Body(new)) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            http::Response::from_parts(parts, full(new))
        }
        Ok(Rewritten::Untouched) => http::Response::from_parts(parts, full(bytes)),
        // The error reaches the responder as a plain error: a 500 without a reason.
        Err(e) => Status::unknown(500, e).into_response(),
    }
}

/// A streaming gzip decoder over a body (Go's transparent `gzipReader`).
fn gunzip(body: crate::body::Body) -> crate::body::Body {
    use futures_util::TryStreamExt;
    let stream = http_body_util::BodyDataStream::new(body).map_err(std::io::Error::other);
    let reader = tokio_util_stream_reader(stream);
    let mut decoder = async_compression::tokio::bufread::GzipDecoder::new(reader);
    decoder.multiple_members(true);
    let frames = futures_util::stream::try_unfold(decoder, |mut dec| async move {
        let mut buf = vec![0u8; 32 * 1024];
        let n = dec.read(&mut buf).await?;
        if n == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        buf.truncate(n);
        Ok(Some((http_body::Frame::data(Bytes::from(buf)), dec)))
    });
    http_body_util::StreamBody::new(frames.map_err(|e| Box::new(e) as BoxError)).boxed()
}

/// A `tokio::io::AsyncBufRead` over a stream of byte chunks.
fn tokio_util_stream_reader<S>(stream: S) -> impl tokio::io::AsyncBufRead + Send + Unpin
where
    S: futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin,
{
    tokio_util::io::StreamReader::new(stream)
}

/// Go's `http.CanonicalHeaderKey`, as `Request.Write` spells header names.
fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// `tryUpgrade`: the request written raw to a fresh connection (path of the location, no
/// query, no `X-Forwarded-Uri`), the backend's answer read; 101 → both directions copied as
/// raw bytes; ≥ 400 → the backend's response passed back; anything else → 500.
async fn upgrade(
    shared: &Shared,
    mut req: Request<Incoming>,
    location: &Location,
    loc_path: &str,
    client_host: &str,
    peer: SocketAddr,
) -> Resp {
    let on_upgrade = hyper::upgrade::on(&mut req);
    let mut headers = req.headers().clone();
    wire::headers::append_forwarded_for(&mut headers, Some(peer.ip()));
    headers.remove(header::HOST);
    let path = if loc_path.is_empty() {
        "/".to_owned()
    } else {
        go_escape_path(loc_path)
    };
    // http.Request.Write: request line, Host, User-Agent, then the headers sorted by name.
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: {client_host}\r\n",
        req.method()
    );
    let ua = headers
        .remove(header::USER_AGENT)
        .and_then(|v| v.to_str().ok().map(str::to_owned))
        .unwrap_or_else(|| "Go-http-client/1.1".to_owned());
    head.push_str(&format!("User-Agent: {ua}\r\n"));
    let mut names: Vec<&HeaderName> = headers.keys().collect();
    names.sort_by_key(|n| canonical(n.as_str()));
    for name in names {
        for value in headers.get_all(name) {
            head.push_str(&canonical(name.as_str()));
            head.push_str(": ");
            head.push_str(&String::from_utf8_lossy(value.as_bytes()));
            head.push_str("\r\n");
        }
    }
    head.push_str("\r\n");

    let tls = (location.scheme == "https").then_some(&shared.endpoint_tls);
    let mut backend = match crate::upstream::connect(location.addr, tls).await {
        Ok(io) => io,
        Err(e) => {
            return Status::unknown(500, format!("error dialing backend: {e}")).into_response();
        }
    };
    if let Err(e) = backend.write_all(head.as_bytes()).await {
        return Status::unknown(500, format!("error sending request: {e}")).into_response();
    }
    // getResponse: read the head; what was read past it belongs to the stream.
    let mut raw = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if raw.len() > 64 * 1024 {
            return Status::unknown(500, "malformed HTTP response").into_response();
        }
        let mut buf = [0u8; 4096];
        match backend.read(&mut buf).await {
            Ok(0) => return Status::unknown(500, "unexpected EOF").into_response(),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => return Status::unknown(500, e.to_string()).into_response(),
        }
    };
    let head_text = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let code: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut resp_headers = HeaderMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        if let Some((k, v)) = line.split_once(':')
            && let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.trim().as_bytes()),
                HeaderValue::from_str(v.trim()),
            )
        {
            resp_headers.append(k, v);
        }
    }
    let rest = Bytes::copy_from_slice(&raw[head_end..]);
    if code != 101 && code < 400 {
        return Status::unknown(500, format!("invalid upgrade response: status code {code}"))
            .into_response();
    }
    if code != 101 {
        // The backend's error answer, then the connection is closed.
        let mut body = rest.to_vec();
        let limit = resp_headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            let mut buf = [0u8; 8192];
            while limit.is_none_or(|l| body.len() < l) {
                match backend.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => body.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        resp_headers.remove(header::TRANSFER_ENCODING);
        resp_headers.remove(header::CONTENT_LENGTH);
        resp_headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        let mut resp = http::Response::new(full(body));
        *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
        *resp.headers_mut() = resp_headers;
        return resp;
    }
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut client = TokioIo::new(upgraded);
        if !rest.is_empty() && client.write_all(&rest).await.is_err() {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
    });
    let mut resp = http::Response::new(empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *resp.headers_mut() = resp_headers;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subpath_like_get_request_options() {
        let mk = |path: &str| crate::requestinfo::parse(&Method::GET, path, None);
        assert_eq!(subpath(&mk("/api/v1/namespaces/n/services/s/proxy")), "");
        assert_eq!(subpath(&mk("/api/v1/namespaces/n/services/s/proxy/")), "/");
        assert_eq!(
            subpath(&mk("/api/v1/namespaces/n/services/s/proxy/a/b/")),
            "/a/b/"
        );
        assert_eq!(join_preserving_trailing_slash("/a/../b/"), "/b/");
        assert_eq!(join_preserving_trailing_slash(""), "");
        assert_eq!(canonical("sec-websocket-key"), "Sec-Websocket-Key");
    }
}
