//! End-to-end tests of the real `kgate proxy` binary in front of simcluster: start-up line,
//! `--port=0`, unix socket, streaming in bounded memory, watch streaming, WebSocket through the
//! proxy, graceful shutdown, every error path, command-line validation, and log redaction.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use tests::cluster::Cluster;
use tests::http::{Req, send, send_unix};
use tests::proc::{Addr, run_kgate};

#[tokio::test(flavor = "multi_thread")]
async fn port_zero_prints_the_real_address_and_serves() {
    let cluster = Cluster::start().await;
    let proxy = cluster.kgate_proxy(&[]);
    let addr = proxy.addr.tcp();
    assert_ne!(addr.port(), 0);
    assert_eq!(
        proxy.banner,
        format!("Starting to serve on 127.0.0.1:{}\n", addr.port())
    );
    let reply = send(addr, &Req::get("/api/v1/namespaces")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        reply.text().contains("\"NamespaceList\""),
        "{}",
        reply.text()
    );
    // IPv6 loopback with a port is admitted (kubernetes#77496 fixed).
    let reply = send(addr, &Req::get("/api").host("[::1]:8001")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn unix_socket_is_owner_only_and_serves() {
    use std::os::unix::fs::PermissionsExt;
    let cluster = Cluster::start().await;
    let path = cluster.dir.path().join("kgate.sock");
    // A stale socket from an earlier run is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let flag = format!("--unix-socket={}", path.display());
    let proxy = cluster.kgate_proxy(&[&flag]);
    assert_eq!(proxy.addr, Addr::Unix(path.clone()));
    assert_eq!(
        proxy.banner,
        format!("Starting to serve on {}\n", path.display())
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let reply = send_unix(&path, &Req::get("/api/v1/namespaces")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn large_download_and_upload_stream_in_bounded_memory() {
    const SIZE: u64 = 256 << 20;
    let cluster = Cluster::start().await;
    let proxy = cluster.kgate_proxy(&[]);
    let addr = proxy.addr.tcp();

    let mut s = TcpStream::connect(addr).await.unwrap();
    let target = format!("/api/v1/namespaces/demo/services/bulk:http/proxy/bytes/{SIZE}");
    s.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut total: u64 = 0;
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    assert!(
        total > SIZE,
        "got {total} bytes (head included), expected more than {SIZE}"
    );

    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/namespaces/demo/services/bulk:http/proxy/upload HTTP/1.1\r\nHost: localhost\r\n\
         Content-Length: {SIZE}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 1 << 16];
    let mut sent = 0;
    while sent < SIZE {
        s.write_all(&chunk).await.unwrap();
        sent += chunk.len() as u64;
    }
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(cluster.sim.last_upload_bytes(), SIZE);

    let peak = proxy.peak_rss_kib();
    assert!(
        peak < 64 * 1024,
        "kgate peak RSS {peak} KiB for {} MiB each way",
        SIZE >> 20
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_events_arrive_while_the_stream_is_open() {
    let cluster = Cluster::start().await;
    let proxy = cluster.kgate_proxy(&[]);
    let mut s = TcpStream::connect(proxy.addr.tcp()).await.unwrap();
    // A watch stays open after its ADDED events: nothing arrives if any layer buffers.
    s.write_all(b"GET /api/v1/namespaces?watch=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 8192];
    let read = async {
        while !String::from_utf8_lossy(&seen).contains("\"ADDED\"") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "the watch ended");
            seen.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("no watch event arrived while the watch was open");
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_echo_through_the_proxy() {
    let cluster = Cluster::start().await;
    let proxy = cluster.kgate_proxy(&[]);
    let url = format!(
        "ws://localhost:{}/api/v1/namespaces/demo/services/shop:http/proxy/ws",
        proxy.addr.tcp().port()
    );
    // Connect to 127.0.0.1 explicitly, with the `localhost` Host the filter expects.
    let tcp = TcpStream::connect(proxy.addr.tcp()).await.unwrap();
    let (mut ws, response) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    assert_eq!(response.status(), 101);
    for text in ["hello", "through kgate"] {
        ws.send(Message::text(text)).await.unwrap();
        let back = ws.next().await.unwrap().unwrap();
        assert_eq!(back.into_text().unwrap().as_str(), text);
    }
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_requests_then_exits_0() {
    let cluster = Cluster::start().await;
    let mut proxy = cluster.kgate_proxy(&[]);
    let addr = proxy.addr.tcp();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET /api/v1/namespaces/demo/services/bulk:http/proxy/events?count=4&interval_ms=300 HTTP/1.1\r\n\
          Host: localhost\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    // Wait for the first event so the request is surely in flight, then signal.
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("tick 0") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }
    proxy.signal("TERM");
    s.read_to_end(&mut seen).await.unwrap();
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.contains("tick 3"),
        "the in-flight stream was cut: {text}"
    );
    let code = tokio::task::block_in_place(|| proxy.wait_exit(Duration::from_secs(30)));
    assert_eq!(code, Some(0), "stderr: {}", proxy.stderr());
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn api_server_down_is_502_status_json_and_a_log_line() {
    let cluster = Cluster::start().await;
    let proxy = cluster.kgate_proxy(&[]);
    let Cluster { sim, dir: _dir, .. } = cluster;
    sim.shutdown().await;
    let reply = send(proxy.addr.tcp(), &Req::get("/api/v1/namespaces")).await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["code"].as_u64()),
        (Some("Status"), Some(502))
    );
    let message = v["message"].as_str().unwrap();
    assert!(
        message.contains("cannot connect to the API server"),
        "{message}"
    );
    assert!(
        proxy.stderr().contains("cannot connect"),
        "no log line: {}",
        proxy.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_failure_is_502_status_json() {
    let cluster = Cluster::start().await;
    let other = simcluster::SimCluster::builder()
        .sample_apps(false)
        .start()
        .await
        .unwrap();
    let wrong_ca = cluster.dir.path().join("other-ca.pem");
    std::fs::write(&wrong_ca, other.ca_pem()).unwrap();
    let flag = format!("--certificate-authority={}", wrong_ca.display());
    let proxy = cluster.kgate_proxy(&[&flag]);
    let reply = send(proxy.addr.tcp(), &Req::get("/api")).await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert!(v["message"].as_str().unwrap().contains("TLS"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn request_timeout_gives_504() {
    let cluster = Cluster::start().await;
    // A listener that accepts and never answers stands in for a stuck API server.
    let stuck = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("--server=https://{}", stuck.local_addr().unwrap());
    let proxy = cluster.kgate_proxy(&[&server, "--request-timeout=1s"]);
    let reply = send(proxy.addr.tcp(), &Req::get("/api")).await;
    assert_eq!(reply.status, 504, "{}", reply.text());
    assert!(
        reply.text().contains("\"reason\":\"Timeout\""),
        "{}",
        reply.text()
    );
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_never_contain_credentials() {
    let cluster = Cluster::start().await;
    let proxy = cluster.kgate_proxy(&["-v", "9"]);
    let req = Req::get("/api/v1/namespaces?x=1")
        .header("Authorization", "Bearer super-secret-client-token")
        .header("Cookie", "session=super-secret-cookie");
    let _ = send(proxy.addr.tcp(), &req).await;
    let _ = send(proxy.addr.tcp(), &Req::get("/api/v1/namespaces")).await;
    // The access line is written when the body ends; give the process a moment to flush.
    let mut log = String::new();
    for _ in 0..100 {
        log = proxy.stderr();
        if log.matches("/api/v1/namespaces").count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        log.contains("GET /api/v1/namespaces 200"),
        "no access line: {log}"
    );
    assert!(
        log.contains("authorization: <redacted>"),
        "request details not logged: {log}"
    );
    assert!(
        !log.contains("super-secret"),
        "a credential leaked into the log: {log}"
    );
    assert!(
        !log.contains(cluster.sim.admin_token()),
        "the kubeconfig token leaked: {log}"
    );
}

#[test]
fn command_line_validation_matches_kubectl() {
    let (code, _, err) = run_kgate(&["proxy", "--port=1234", "--unix-socket=/tmp/x.sock"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim_end(),
        "error: cannot set --unix-socket and --port at the same time"
    );
    let (code, _, err) = run_kgate(&["proxy", "--accept-paths=["]);
    assert_eq!(code, 255);
    assert!(err.starts_with("Error compiling re: "), "{err}");
    let (code, out, _) = run_kgate(&["proxy", "--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--port",
        "--address",
        "--unix-socket",
        "--accept-hosts",
        "--accept-paths",
        "--reject-paths",
        "--reject-methods",
        "--disable-filter",
        "--api-prefix",
        "--www",
        "--www-prefix",
        "--keepalive",
        "--append-server-path",
        "--kubeconfig",
    ] {
        assert!(out.contains(flag), "{flag} missing from --help");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_port_is_one_clear_line_and_exit_1() {
    let cluster = Cluster::start().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let kubeconfig = format!("--kubeconfig={}", cluster.kubeconfig.display());
    let (code, _, err) = run_kgate(&["proxy", &kubeconfig, &format!("--port={port}")]);
    assert_eq!(code, 1, "{err}");
    // The OS's reason ("Address already in use") once, not repeated by each layer of the error.
    let line = err.trim_end();
    assert!(
        line.starts_with(&format!("error: listen tcp 127.0.0.1:{port}: ")),
        "{err}"
    );
    assert!(!line.contains('\n'), "{err}");
    assert_eq!(line.matches("in use").count(), 1, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_filter_warns_like_kubectl() {
    let cluster = Cluster::start().await;
    let proxy = cluster.kgate_proxy(&["--disable-filter"]);
    let reply = send(proxy.addr.tcp(), &Req::get("/api").host("evil.example")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        proxy
            .stderr()
            .contains("Request filter disabled, your proxy is vulnerable to XSRF attacks"),
        "{}",
        proxy.stderr()
    );
}
