//! In-process tests of the whole pipeline (server → classify → admit → build → send → shape →
//! rescue) against a real local HTTP backend over real sockets. The upstream here is plain HTTP
//! through hyper-util's pooled client, so these tests cover the gateway's own logic; TLS and
//! credentials are covered end to end in the `tests` crate with simcluster.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::admit::filter::{Filter, FilterSpec};
use crate::body::{Body, full, stream};
use crate::rescue::ProxyError;
use crate::send::{BoxFuture, Upstream};
use crate::server::{Listen, LocalAddr, RunningServer, ServerConfig, start};

/// Plain-HTTP upstream to a test backend, keeping the seam's contract as `auth::ApiClient`
/// does: the backend's address and `Host`, HTTP/1.1.
struct PlainUpstream {
    base: String,
    client: Client<HttpConnector, Body>,
}

impl PlainUpstream {
    fn new(addr: SocketAddr) -> Self {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        Self {
            base: format!("http://{addr}"),
            client: Client::builder(TokioExecutor::new()).build(http),
        }
    }

    fn go(&self, mut req: Request<Body>) -> BoxFuture<Result<Response<Incoming>, ProxyError>> {
        let pq = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        *req.uri_mut() = format!("{}{pq}", self.base).parse().unwrap();
        req.headers_mut().remove(http::header::HOST);
        *req.version_mut() = http::Version::HTTP_11;
        let client = self.client.clone();
        let server = self.base.clone();
        Box::pin(async move {
            client.request(req).await.map_err(|err| {
                let reason = err.to_string();
                if err.is_connect() {
                    ProxyError::Api(auth::SendError::Connect {
                        server,
                        via: None,
                        reason,
                    })
                } else {
                    ProxyError::Api(auth::SendError::Protocol { server, reason })
                }
            })
        })
    }
}

impl Upstream for PlainUpstream {
    fn send(&self, req: Request<Body>) -> BoxFuture<Result<Response<Incoming>, ProxyError>> {
        self.go(req)
    }
    fn send_upgrade(
        &self,
        req: Request<Body>,
    ) -> BoxFuture<Result<Response<Incoming>, ProxyError>> {
        self.go(req)
    }
    fn server(&self) -> &str {
        &self.base
    }
}

/// A backend: `handler` answers every request.
async fn backend<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

/// Echoes method, request target, selected headers and body, like kubectl's `TestAPIRequests`.
async fn echo(req: Request<Incoming>) -> Response<Body> {
    let head = format!(
        "{} {} host={} xff={} conn={} te={} auth={}",
        req.method(),
        req.uri(),
        header(&req, "host"),
        header(&req, "x-forwarded-for"),
        header(&req, "connection"),
        header(&req, "te"),
        header(&req, "authorization"),
    );
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let mut res = Response::new(full(format!("{head} {}", String::from_utf8_lossy(&body))));
    res.headers_mut()
        .insert("keep-alive", "timeout=5".parse().unwrap());
    res.headers_mut()
        .insert("x-backend", "yes".parse().unwrap());
    res
}

fn header(req: &Request<Incoming>, name: &str) -> String {
    req.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn config(upstream: Arc<dyn Upstream>) -> ServerConfig {
    ServerConfig {
        listen: Listen::Tcp("127.0.0.1:0".into()),
        api_prefix: "/".into(),
        www: None,
        filter: Some(Filter::compile(&FilterSpec::default()).unwrap()),
        allow_origins: Vec::new(),
        token: None,
        upstream,
        header_timeout: None,
        shutdown_grace: Duration::from_secs(10),
        origins: None,
        mounts: Vec::new(),
    }
}

async fn gateway_to(addr: SocketAddr) -> RunningServer {
    start(config(Arc::new(PlainUpstream::new(addr))))
        .await
        .unwrap()
}

fn tcp(server: &RunningServer) -> SocketAddr {
    match server.local_addr() {
        LocalAddr::Tcp(addr) => *addr,
        LocalAddr::Unix(path) => panic!("unexpected unix socket {}", path.display()),
    }
}

/// Sends one raw HTTP/1.1 request and returns the whole response text.
async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

async fn get(addr: SocketAddr, method: &str, path: &str, body: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("host", "localhost")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let res = client().request(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn kubectl_test_api_requests_rows() {
    let gw = gateway_to(backend(echo).await).await;
    let path = "/api/test?fields=ID%3Dfoo&labels=key%3Dvalue";
    for (method, body) in [
        ("GET", ""),
        ("DELETE", ""),
        ("POST", "test payload"),
        ("PUT", "test payload"),
    ] {
        let (status, text) = get(tcp(&gw), method, path, body).await;
        assert_eq!(status, 200, "{method}");
        assert!(text.starts_with(&format!("{method} {path} ")), "{text}");
        assert!(text.ends_with(&format!(" {body}")), "{text}");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn headers_are_rewritten_like_reverse_proxy() {
    let backend = backend(echo).await;
    let gw = gateway_to(backend).await;
    let res = raw(
        tcp(&gw),
        "GET /api/v1/pods HTTP/1.1\r\nHost: localhost:8001\r\nX-Forwarded-For: 10.1.1.1\r\n\
         Connection: close, X-Hop\r\nX-Hop: 1\r\nTE: trailers\r\nAuthorization: Bearer client\r\n\r\n",
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(
        res.contains(&format!("host={backend} ")),
        "Host is the API server's: {res}"
    );
    assert!(res.contains("xff=10.1.1.1, 127.0.0.1 "), "{res}");
    assert!(res.contains("conn= "), "Connection is hop-by-hop: {res}");
    assert!(res.contains("te=trailers "), "{res}");
    assert!(
        res.contains("auth=Bearer client"),
        "a client Authorization is passed: {res}"
    );
    assert!(
        !res.to_ascii_lowercase().contains("keep-alive: timeout"),
        "{res}"
    );
    assert!(res.contains("x-backend: yes"), "{res}");
    gw.shutdown().await;
}

#[tokio::test]
async fn filter_and_mux_answers_match_kubectl() {
    let gw = gateway_to(backend(echo).await).await;
    let addr = tcp(&gw);
    let res = raw(addr, "GET /api/v1/namespaces/a/pods/b/exec HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await;
    assert!(res.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{res}");
    assert!(
        res.contains("content-type: text/plain; charset=utf-8"),
        "{res}"
    );
    assert!(res.contains("x-content-type-options: nosniff"), "{res}");
    assert!(res.ends_with("\r\n\r\nForbidden\n"), "{res}");
    // The filter sees the decoded path.
    let res = raw(addr, "GET /api/v1/namespaces/a/pods/b/%65xec HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await;
    assert!(res.starts_with("HTTP/1.1 403"), "{res}");
    let res = raw(
        addr,
        "GET /api HTTP/1.1\r\nHost: evil.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 403"), "{res}");
    // kgate's fix of kubernetes#77496.
    let res = raw(
        addr,
        "GET /api HTTP/1.1\r\nHost: [::1]:8001\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    let res = raw(
        addr,
        "GET /a//b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 301"), "{res}");
    assert!(res.contains("location: /a/b\r\n"), "{res}");
    gw.shutdown().await;
}

#[tokio::test]
async fn unreachable_api_server_is_502_status_json() {
    // A port that was just free: nothing listens there.
    let free = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = gateway_to(free).await;
    let (status, text) = get(tcp(&gw), "GET", "/api/v1/pods", "").await;
    assert_eq!(status, 502);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["kind"], "Status");
    assert_eq!(v["code"], 502);
    assert!(
        v["message"].as_str().unwrap().contains("cannot connect"),
        "{text}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn slow_api_server_is_504_within_the_bound() {
    let backend = backend(|_req| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Response::new(full("late"))
    })
    .await;
    let mut cfg = config(Arc::new(PlainUpstream::new(backend)));
    cfg.header_timeout = Some(Duration::from_millis(200));
    let gw = start(cfg).await.unwrap();
    let (status, text) = get(tcp(&gw), "GET", "/api", "").await;
    assert_eq!(status, 504, "{text}");
    assert!(text.contains("\"reason\":\"Timeout\""), "{text}");
    gw.shutdown().await;
}

#[tokio::test]
async fn watch_events_arrive_before_the_response_ends() {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let rx = Arc::new(tokio::sync::Mutex::new(Some(rx)));
    let backend = backend(move |_req| {
        let rx = rx.clone();
        async move {
            let rx = rx.lock().await.take().unwrap();
            let frames = tokio_stream(rx).map(|b| Ok::<_, Infallible>(Frame::data(b)));
            Response::new(stream(StreamBody::new(frames)))
        }
    })
    .await;
    let gw = gateway_to(backend).await;
    let req = Request::get(format!("http://{}/api/v1/pods?watch=1", tcp(&gw)))
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = client().request(req).await.unwrap();
    let mut body = res.into_body();
    for event in ["{\"type\":\"ADDED\"}\n", "{\"type\":\"MODIFIED\"}\n"] {
        tx.send(Bytes::from(event)).await.unwrap();
        // The event must come through while the upstream response is still open.
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("event was buffered")
            .unwrap()
            .unwrap();
        assert_eq!(frame.into_data().unwrap(), event);
    }
    drop(tx);
    gw.shutdown().await;
}

fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures_util::Stream<Item = Bytes> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn upgrade_is_tunnelled_and_refusals_follow_kubectl() {
    // A backend that upgrades `/echo` to a raw echo protocol, answers 200 on `/ok` and 403 on
    // anything else.
    let backend = backend(|mut req: Request<Incoming>| async move {
        match req.uri().path() {
            "/echo" => {
                let on = hyper::upgrade::on(&mut req);
                tokio::spawn(async move {
                    let mut io = TokioIo::new(on.await.unwrap());
                    let mut buf = [0u8; 64];
                    loop {
                        let n = io.read(&mut buf).await.unwrap_or(0);
                        if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                let mut res = Response::new(Empty::new().map_err(|n| match n {}).boxed_unsync());
                *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                res.headers_mut()
                    .insert("connection", "Upgrade".parse().unwrap());
                res.headers_mut().insert("upgrade", "echo".parse().unwrap());
                res
            }
            "/ok" => Response::new(full("not an upgrade")),
            _ => {
                let mut res = Response::new(full("nope"));
                *res.status_mut() = StatusCode::FORBIDDEN;
                res
            }
        }
    })
    .await;
    let gw = gateway_to(backend).await;
    let addr = tcp(&gw);

    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = vec![0u8; 1024];
    let n = s.read(&mut head).await.unwrap();
    let head = String::from_utf8_lossy(&head[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"ping through the tunnel").await.unwrap();
    let mut back = [0u8; 23];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping through the tunnel");

    let res = raw(addr, "GET /ok HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, close\r\nUpgrade: echo\r\n\r\n").await;
    assert!(res.starts_with("HTTP/1.1 500"), "{res}");
    assert!(
        res.ends_with("invalid upgrade response: status code 200\n"),
        "{res}"
    );
    let res = raw(
        addr,
        "GET /no HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 403"), "{res}");
    assert!(res.ends_with("nope"), "{res}");
    gw.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let backend = backend(|_req| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Response::new(full("finished"))
    })
    .await;
    let gw = gateway_to(backend).await;
    let addr = tcp(&gw);
    let in_flight = tokio::spawn(get(addr, "GET", "/api", ""));
    // Let the request reach the backend before shutting down.
    tokio::time::sleep(Duration::from_millis(100)).await;
    gw.shutdown().await;
    let (status, text) = in_flight.await.unwrap();
    assert_eq!((status.as_u16(), text.as_str()), (200, "finished"));
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn unix_socket_is_owner_only_and_replaces_a_stale_socket() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kgate.sock");
    // A stale socket from an earlier run.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let backend = backend(echo).await;
    let mut cfg = config(Arc::new(PlainUpstream::new(backend)));
    cfg.listen = Listen::Unix(path.clone());
    let gw = start(cfg).await.unwrap();
    assert_eq!(gw.local_addr().to_string(), path.display().to_string());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
    s.write_all(b"GET /api HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.contains("xff= "),
        "no X-Forwarded-For from a unix socket: {out}"
    );
    gw.shutdown().await;

    // A regular file in the way is left alone and the start fails.
    std::fs::write(&path, "keep me").unwrap();
    let mut cfg = config(Arc::new(PlainUpstream::new(backend)));
    cfg.listen = Listen::Unix(path.clone());
    assert!(start(cfg).await.is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
}

#[tokio::test]
async fn static_files_are_served_outside_the_filter() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test.txt"), "This is test data").unwrap();
    let backend = backend(echo).await;
    let mut cfg = config(Arc::new(PlainUpstream::new(backend)));
    cfg.www = Some((dir.path().to_owned(), "/foo/".into()));
    let gw = start(cfg).await.unwrap();
    let addr = tcp(&gw);
    // Host evil.com would be refused by the filter; static files are not filtered (as kubectl).
    let res = raw(
        addr,
        "GET /foo/test.txt HTTP/1.1\r\nHost: evil.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(res.ends_with("This is test data"), "{res}");
    let res = raw(
        addr,
        "GET /foo/missing HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(res.ends_with("404 page not found\n"), "{res}");
    gw.shutdown().await;
}
