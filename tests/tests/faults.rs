//! Faults between kgate and the API server, against the real `kgate proxy` binary: the API
//! server down at start and lost in the middle of a run (502 `Status`, then recovery), a
//! connection reset in the middle of a response (the client sees a truncated transfer, never a
//! complete-looking body, never a hang), malformed HTTP from upstream, a credential plugin
//! that hangs, and the server's certificate changing under a running gateway. Credential
//! containment: an API server redirect is passed on, never followed (so the token never goes to
//! another host), and the kubeconfig token never reaches a proxied service.
//!
//! Covered elsewhere, not repeated here: API server unreachable (`proxy_behaviour.rs`
//! `api_server_down_is_502_status_json_and_a_log_line`, `gateway/src/server_tests.rs`
//! `unreachable_api_server_is_502_status_json`), TLS failure at start
//! (`proxy_behaviour.rs` `tls_failure_is_502_status_json`), and a slow API server
//! (`proxy_behaviour.rs` `request_timeout_gives_504`, `server_tests.rs`
//! `slow_api_server_is_504_within_the_bound`); here only that the timeout bounds the wait for
//! the response head, not a slow body.
//!
//! The stand-ins: [`Relay`], a TCP relay in front of simcluster that can refuse, cut and
//! re-point connections (TLS passes through it untouched); and [`Raw`], a plain-HTTP "API
//! server" (`--server=http://...`) that writes exactly the bytes a test gives it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use tests::cluster::Cluster;
use tests::http::{Reply, Req, send};
use tests::proc::Proxy;

/// Bound for anything a test waits on; a loaded machine is slow, never this slow.
const PATIENCE: Duration = Duration::from_secs(90);

/// A TCP relay to a switchable target; `None` = accept and close at once (a server that is
/// "up" at the TCP level but answers nothing).
struct Relay {
    addr: SocketAddr,
    target: Arc<Mutex<Option<SocketAddr>>>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Relay {
    async fn start(listener: TcpListener, target: SocketAddr) -> Relay {
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Some(target)));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (t, c) = (shared.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let Some(target) = *t.lock().unwrap() else {
                    drop(client);
                    continue;
                };
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        Relay {
            addr,
            target: shared,
            conns,
            accept,
        }
    }

    /// Points new connections at `target` and cuts every open one.
    fn switch(&self, target: Option<SocketAddr>) {
        *self.target.lock().unwrap() = target;
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.switch(None);
    }
}

/// Sends `req` until the answer has `status` (kgate may still hold a broken pooled connection
/// for a moment); the last reply.
async fn eventually(addr: SocketAddr, req: &Req<'_>, status: u16) -> Reply {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let reply = send(addr, req).await;
        if reply.status == status || tokio::time::Instant::now() > deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_status_json(reply: &Reply, code: u64) -> String {
    assert_eq!(reply.status as u64, code, "{}", reply.text());
    let v: serde_json::Value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", reply.text()));
    assert_eq!(v["kind"], "Status", "{v}");
    assert_eq!(v["code"].as_u64(), Some(code), "{v}");
    v["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn api_server_down_at_start_then_back() {
    let cluster = Cluster::start().await;
    // A port with nothing behind it yet: kgate starts anyway, as kubectl proxy does.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    drop(reserved);
    let server = format!("--server=https://127.0.0.1:{port}");
    let proxy = cluster.kgate_proxy(&[&server]);
    let addr = proxy.addr.tcp();
    let reply = send(addr, &Req::get("/api/v1/namespaces")).await;
    let message = assert_status_json(&reply, 502);
    assert!(message.contains("cannot connect"), "{message}");

    // The API server comes up on that port: requests succeed without restarting kgate.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let _relay = Relay::start(listener, cluster.sim.addr()).await;
    let reply = eventually(addr, &Req::get("/api/v1/namespaces"), 200).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn api_server_lost_mid_run_cuts_streams_then_recovers() {
    let cluster = Cluster::start().await;
    let relay = Relay::start(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        cluster.sim.addr(),
    )
    .await;
    let server = format!("--server=https://{}", relay.addr);
    let proxy = cluster.kgate_proxy(&[&server]);
    let addr = proxy.addr.tcp();
    assert_eq!(send(addr, &Req::get("/api")).await.status, 200);

    // A stream in flight when the API server goes away.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET /api/v1/namespaces/demo/services/bulk:http/proxy/events?count=1000&interval_ms=50 HTTP/1.1\r\n\
          Host: localhost\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("tick 1") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    relay.switch(None);
    tokio::time::timeout(PATIENCE, s.read_to_end(&mut seen))
        .await
        .expect("the cut stream hung instead of ending")
        .ok();
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.contains("transfer-encoding: chunked"),
        "expected a chunked stream: {text:.400}"
    );
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "a cut stream ended like a complete one: {text}"
    );
    assert!(!text.contains("tick 999"), "{text:.400}");

    // While it is down: 502 Status. When it is back: 200 again.
    let reply = eventually(addr, &Req::get("/api"), 502).await;
    assert_status_json(&reply, 502);
    relay.switch(Some(cluster.sim.addr()));
    let reply = eventually(addr, &Req::get("/api/v1/namespaces"), 200).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn server_certificate_change_fails_closed_then_recovers() {
    let cluster = Cluster::start().await;
    // Another API server with a certificate from a CA kgate does not trust.
    let other = simcluster::SimCluster::builder()
        .sample_apps(false)
        .start()
        .await
        .unwrap();
    let relay = Relay::start(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        cluster.sim.addr(),
    )
    .await;
    let server = format!("--server=https://{}", relay.addr);
    let proxy = cluster.kgate_proxy(&[&server]);
    let addr = proxy.addr.tcp();
    assert_eq!(send(addr, &Req::get("/api")).await.status, 200);

    // The server now presents the other certificate: refused, with a message naming TLS,
    // and no request (or token) sent to it.
    relay.switch(Some(other.addr()));
    // The first request after the switch may still meet the cut pooled connection ("broke
    // off the exchange"); the next connection meets the new certificate.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let message = loop {
        let reply = send(addr, &Req::get("/api")).await;
        let message = assert_status_json(&reply, 502);
        if message.contains("TLS") || tokio::time::Instant::now() > deadline {
            break message;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(message.contains("TLS"), "{message}");
    // The trusted certificate is back: served again, no restart.
    relay.switch(Some(cluster.sim.addr()));
    let reply = eventually(addr, &Req::get("/api"), 200).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    other.shutdown().await;
}

/// A plain-HTTP stand-in API server: answers every request on a connection with `answer`,
/// then, with `reset`, resets the connection (linger 0) instead of closing it.
struct Raw {
    addr: SocketAddr,
    task: AbortHandle,
}

impl Raw {
    async fn start(answer: Vec<u8>, reset: bool) -> Raw {
        Raw::start_parts(vec![(Duration::ZERO, answer)], reset).await
    }

    /// Answers with `parts`, each written after its delay.
    async fn start_parts(parts: Vec<(Duration, Vec<u8>)>, reset: bool) -> Raw {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(parts);
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    // Read the request head, then answer.
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    for (delay, part) in answer.iter() {
                        tokio::time::sleep(*delay).await;
                        if s.write_all(part).await.is_err() {
                            return;
                        }
                    }
                    let _ = s.flush().await;
                    if reset {
                        // A zero linger never blocks: the close sends a reset at once.
                        #[expect(deprecated, reason = "SO_LINGER 0 is how a test sends a reset")]
                        let _ = s.set_linger(Some(Duration::ZERO));
                        drop(s);
                    } else {
                        // Hold the connection open a while, as a server that stalls.
                        let _ = s.shutdown().await;
                        let _ = s.read(&mut buf).await;
                    }
                });
            }
        })
        .abort_handle();
        Raw { addr, task }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads a whole response from kgate (bounded) and tells whether its body looks complete.
async fn fetch_raw(addr: SocketAddr, target: &str) -> (Vec<u8>, Option<bool>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, s.read_to_end(&mut raw))
        .await
        .expect("kgate hung on a broken upstream response")
        .ok();
    let complete = body_complete(&raw);
    (raw, complete)
}

/// `None` without a full head; otherwise whether the body ends the way its framing says
/// (all of its `Content-Length`, or the last chunk of a chunked body).
fn body_complete(raw: &[u8]) -> Option<bool> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = &raw[end + 4..];
    if head.contains("transfer-encoding: chunked") {
        return Some(body.ends_with(b"0\r\n\r\n"));
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    // Without either, the body ends at the close: a reader cannot tell a cut from the end,
    // which is exactly what must never happen for a cut response.
    Some(length == Some(body.len()))
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_in_the_middle_of_a_response_is_never_a_complete_body() {
    let cluster = Cluster::start().await;
    let mut sized =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            .to_vec();
    sized.extend(std::iter::repeat_n(b'a', 30_000));
    let mut chunked =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..10 {
        chunked.extend_from_slice(b"1000\r\n");
        chunked.extend(std::iter::repeat_n(b'b', 0x1000));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"1000\r\nhalf a chunk");
    for (what, answer) in [("content-length", sized), ("chunked", chunked)] {
        for reset in [true, false] {
            let raw = Raw::start(answer.clone(), reset).await;
            let server = format!("--server=http://{}", raw.addr);
            let proxy = cluster.kgate_proxy(&[&server]);
            let (bytes, complete) = fetch_raw(proxy.addr.tcp(), "/api/v1/namespaces").await;
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            eprintln!(
                "{what}, reset {reset}: {} bytes, complete {complete:?}, {:?}",
                bytes.len(),
                text.lines().next()
            );
            match complete {
                // No head at all is a plain failure the client sees as such.
                None => assert!(bytes.is_empty(), "{what}/{reset}: half a head: {text}"),
                Some(complete) => {
                    assert!(
                        !complete || text.starts_with("HTTP/1.1 502"),
                        "{what} (reset {reset}): a cut upstream body reached the client complete: {text}"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_upstream_http_is_502_status() {
    let cluster = Cluster::start().await;
    let answers: &[(&str, &[u8])] = &[
        ("not HTTP", b"SSH-2.0-OpenSSH_9.6\r\n\r\n"),
        (
            "a bad status code",
            b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            "a header without a colon",
            b"HTTP/1.1 200 OK\r\nContent-Length 0\r\n\r\n",
        ),
        (
            "two different Content-Length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        ),
        ("a close before any answer", b""),
    ];
    for (what, answer) in answers {
        let raw = Raw::start(answer.to_vec(), false).await;
        let server = format!("--server=http://{}", raw.addr);
        let proxy = cluster.kgate_proxy(&[&server]);
        let reply = send(proxy.addr.tcp(), &Req::get("/api/v1/namespaces")).await;
        assert_eq!(reply.status, 502, "{what}: {}", reply.text());
        let message = assert_status_json(&reply, 502);
        assert!(!message.is_empty(), "{what}: no message");
        assert!(
            !proxy.stderr().contains("panicked"),
            "{what}: {}",
            proxy.stderr()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hanging_credential_plugin_is_bounded_by_the_request_timeout() {
    let cluster = Cluster::start().await;
    let ca = cluster.dir.path().join("ca.pem");
    std::fs::write(&ca, cluster.sim.ca_pem()).unwrap();
    let kubeconfig = cluster.dir.path().join("exec-kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: hang\n\
             clusters:\n- name: sim\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\n\
             users:\n- name: hang\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      \
             command: sh\n      args: [\"-c\", \"exec sleep 20\"]\n      interactiveMode: Never\n\
             contexts:\n- name: hang\n  context:\n    cluster: sim\n    user: hang\n",
            server = cluster.sim.url(),
            ca = ca.display(),
        ),
    )
    .unwrap();
    // The plugin "hangs" for 20 s, ten times the request timeout; a short hang means the
    // plugin is gone soon after the test even though kgate is killed without cleanup.
    let proxy = Proxy::kgate(&[
        "proxy".to_owned(),
        format!("--kubeconfig={}", kubeconfig.display()),
        "--port=0".to_owned(),
        "--request-timeout=2s".to_owned(),
    ]);
    let reply = tokio::time::timeout(PATIENCE, send(proxy.addr.tcp(), &Req::get("/api")))
        .await
        .expect("a hanging credential plugin hung the request");
    assert!(
        reply.status == 504 || reply.status == 502,
        "{}",
        reply.text()
    );
    assert_status_json(&reply, u64::from(reply.status));
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_redirects_are_passed_on_never_followed_with_credentials() {
    let cluster = Cluster::start().await;
    // Where a followed redirect would take the token.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let location = format!("http://{}/steal", trap.local_addr().unwrap());
    let answer = format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
    let raw = Raw::start(answer.into_bytes(), false).await;
    let server = format!("--server=http://{}", raw.addr);
    let proxy = cluster.kgate_proxy(&[&server]);
    for target in [
        "/api/v1/namespaces",
        "/api/v1/namespaces/demo/services/shop:http/proxy/",
    ] {
        let reply = send(proxy.addr.tcp(), &Req::get(target)).await;
        assert_eq!(reply.status, 302, "{target}: {}", reply.text());
        assert_eq!(reply.header("location"), Some(location.as_str()));
    }
    // kgate answered without going there (a follow happens before the answer).
    assert!(
        trap.accept()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "kgate followed the API server's redirect"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kubeconfig_token_never_reaches_a_service() {
    let cluster = Cluster::start().await;
    let proxy = cluster.kgate_proxy(&[]);
    cluster.sim.clear_request_log();
    let reply = send(
        proxy.addr.tcp(),
        &Req::get("/api/v1/namespaces/demo/services/shop:http/proxy/"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let log = cluster.sim.request_log();
    assert!(!log.is_empty(), "the service saw no request");
    let token = cluster.sim.admin_token();
    for seen in log {
        assert!(
            !seen.headers.contains_key("authorization"),
            "the service got an Authorization header"
        );
        for value in seen.headers.values() {
            assert!(
                !String::from_utf8_lossy(value.as_bytes()).contains(token),
                "the kubeconfig token reached the service"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_timeout_bounds_the_head_not_a_slow_body() {
    let cluster = Cluster::start().await;
    // The head and a first chunk at once, the rest after three times the request timeout: a
    // watch or a slow download that makes progress is not cut (as kubectl proxy, whose
    // transport has no timeout at all), while a silent server is (`request_timeout_gives_504`
    // in proxy_behaviour.rs).
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst \r\n".to_vec();
    let tail = b"4\r\nlast\r\n0\r\n\r\n".to_vec();
    let raw = Raw::start_parts(
        vec![(Duration::ZERO, head), (Duration::from_secs(3), tail)],
        false,
    )
    .await;
    let server = format!("--server=http://{}", raw.addr);
    let proxy = cluster.kgate_proxy(&[&server, "--request-timeout=1s"]);
    let (bytes, complete) = fetch_raw(proxy.addr.tcp(), "/api/v1/namespaces?watch=1").await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(complete, Some(true), "{text}");
    let reply = tests::http::parse(&bytes, false);
    assert_eq!(reply.text(), "first last");
}
