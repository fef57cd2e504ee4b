//! The real `kubectl port-forward` against the simulated cluster: the referee that simcluster
//! speaks the port-forward protocols as the API server and kubelet do. `kubectl` 1.31+ tries
//! SPDY tunnelled over a WebSocket first (KEP-4006) and `KUBECTL_PORT_FORWARD_WEBSOCKETS=false`
//! makes it speak plain SPDY/3.1; both carry HTTP and a raw TCP echo, to a service (its port
//! resolved to the pod's target port) and to a pod. Skipped, with a message, where
//! `/usr/bin/kubectl` is not installed.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure here is a test failure"
)]

#[expect(dead_code, reason = "this test binary uses a subset of the helpers")]
mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const KUBECTL: &str = "/usr/bin/kubectl";

fn kubectl_missing() -> bool {
    if Path::new(KUBECTL).exists() {
        return false;
    }
    eprintln!("SKIPPED: {KUBECTL} is not installed");
    true
}

/// A running `kubectl port-forward` and the local port of its first `Forwarding from` line.
struct Forward {
    child: Child,
    port: u16,
    stderr: tokio::task::JoinHandle<String>,
}

impl Forward {
    /// Starts `kubectl port-forward <args>`; `websockets` false forces plain SPDY.
    async fn start(kubeconfig: &Path, args: &[&str], websockets: bool) -> (Forward, String) {
        let mut child = Command::new(KUBECTL)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("port-forward")
            .args(args)
            .env_remove("KUBECONFIG")
            .env("HOME", kubeconfig.parent().unwrap())
            .env(
                "KUBECTL_PORT_FORWARD_WEBSOCKETS",
                if websockets { "true" } else { "false" },
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text).await;
            text
        });
        let line = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
            .await
            .expect("kubectl port-forward printed nothing")
            .unwrap()
            .unwrap_or_default();
        // `Forwarding from 127.0.0.1:43567 -> 8080`
        let port = line
            .strip_prefix("Forwarding from 127.0.0.1:")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        (
            Forward {
                child,
                port,
                stderr,
            },
            line,
        )
    }

    async fn stop(mut self) -> String {
        let _ = self.child.kill().await;
        self.stderr.await.unwrap_or_default()
    }
}

async fn http_get(port: u16, path: &str) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    answer
}

async fn echo(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(payload).await.unwrap();
    tcp.shutdown().await.unwrap();
    let mut back = Vec::new();
    tcp.read_to_end(&mut back).await.unwrap();
    back
}

async fn cluster() -> (simcluster::SimCluster, tempfile::TempDir, PathBuf) {
    let (cluster, _) = common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&path).unwrap();
    (cluster, dir, path)
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_port_forward_carries_http_and_raw_tcp_over_both_protocols() {
    if kubectl_missing() {
        return;
    }
    let (cluster, _dir, kc) = cluster().await;
    let whoami = cluster.pods_of("demo", "whoami");
    let echo_pod = cluster.pods_of("demo", "tcp-echo")[0].clone();
    let echo_port = cluster
        .endpoint_addr("demo", "tcp-echo", "echo")
        .unwrap()
        .port();
    for websockets in [true, false] {
        let protocol = if websockets {
            "SPDY over WebSocket"
        } else {
            "SPDY"
        };
        // A service: its port 80 is the pods' target port, which kubectl prints.
        let (fwd, line) =
            Forward::start(&kc, &["-n", "demo", "svc/whoami", ":80"], websockets).await;
        let target = cluster
            .endpoint_addr("demo", "whoami", "http")
            .unwrap()
            .port();
        assert!(
            line.ends_with(&format!(" -> {target}")),
            "{protocol}: {line}"
        );
        for _ in 0..3 {
            let answer = http_get(fwd.port, "/").await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{protocol}: {answer}");
            // kubectl pins one pod for the whole session.
            assert!(
                answer.contains(&format!("pod={}", whoami[0])),
                "{protocol}: {answer}"
            );
        }
        fwd.stop().await;

        // A pod, raw TCP: bytes out, the same bytes back, in volume.
        let spec = format!(":{echo_port}");
        let (fwd, _) = Forward::start(
            &kc,
            &["-n", "demo", &format!("pod/{echo_pod}"), &spec],
            websockets,
        )
        .await;
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(echo(fwd.port, &payload).await, payload, "{protocol}");
        // Several connections at once over the one session.
        let mut all = Vec::new();
        for i in 0..10u8 {
            let port = fwd.port;
            all.push(tokio::spawn(async move { echo(port, &[i; 5000]).await }));
        }
        for (i, task) in all.into_iter().enumerate() {
            assert_eq!(task.await.unwrap(), vec![u8::try_from(i).unwrap(); 5000]);
        }
        fwd.stop().await;
    }
    // Both rounds were served in the protocol asked for: the tunnel, then plain SPDY.
    let served = cluster.portforward_protocols();
    assert_eq!(
        served,
        ["spdy-over-websocket", "spdy-over-websocket", "spdy", "spdy"],
        "{served:?}"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_the_pod_does_not_listen_on_is_the_kubelets_error_not_a_silent_close() {
    if kubectl_missing() {
        return;
    }
    let (cluster, _dir, kc) = cluster().await;
    let pod = cluster.pods_of("demo", "tcp-echo")[0].clone();
    for websockets in [true, false] {
        let (fwd, _) = Forward::start(
            &kc,
            &["-n", "demo", &format!("pod/{pod}"), ":1"],
            websockets,
        )
        .await;
        let mut tcp = TcpStream::connect(("127.0.0.1", fwd.port)).await.unwrap();
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut got)).await;
        assert!(got.is_empty());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stderr = fwd.stop().await;
        assert!(
            stderr.contains("error forwarding port 1 to pod")
                && stderr.contains("connect: connection refused"),
            "websockets={websockets}: {stderr}"
        );
    }
    // An unknown pod is the API server's 404, before any upgrade.
    let (ok, _, stderr) = {
        let out = Command::new(KUBECTL)
            .arg("--kubeconfig")
            .arg(&kc)
            .args(["port-forward", "-n", "demo", "pod/nope", ":80"])
            .env("HOME", kc.parent().unwrap())
            .output()
            .await
            .unwrap();
        (
            out.status.success(),
            String::new(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(!ok);
    assert!(stderr.contains("pods \"nope\" not found"), "{stderr}");
    cluster.shutdown().await;
}

/// A control plane outside the pod network (issue 14): the proxy verb to a service or a pod
/// times out as apimachinery's transport words it (`503`, `error trying to reach service:
/// dial tcp <pod>: i/o timeout`; an upgrade `error dialing backend: ...`), after the dial's
/// time; for one service only where only its pods are cut off; and `pods/portforward`, which
/// goes through the kubelet, still carries the same pod's bytes.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_pod_network_fails_the_proxy_verb_but_not_port_forward() {
    let delay = Duration::from_millis(300);
    let (cluster, client) = common::start_with(
        simcluster::SimCluster::builder()
            .reachable_pods(false)
            .unreachable_delay(delay),
    )
    .await;
    let whoami = cluster.endpoint_addr("demo", "whoami", "http").unwrap();
    let pod = cluster.pods_of("demo", "whoami")[0].clone();
    for path in [
        "/api/v1/namespaces/demo/services/whoami:http/proxy/".to_owned(),
        format!("/api/v1/namespaces/demo/pods/{pod}/proxy/"),
    ] {
        let started = std::time::Instant::now();
        let r = common::get(&client, &cluster, &path).await;
        assert!(
            started.elapsed() >= delay,
            "{path}: answered at once: {} {}",
            r.status,
            r.text()
        );
        assert_eq!(r.status, 503, "{path}: {}", r.text());
        let status = r.json();
        assert_eq!(status["kind"], "Status", "{status}");
        assert_eq!(status["reason"], "ServiceUnavailable", "{status}");
        assert_eq!(status["code"], 503, "{status}");
        // The service's endpoints are taken in turn; the pod is the service's first.
        let message = status["message"].as_str().unwrap_or_default();
        let dialled = message
            .strip_prefix("error trying to reach service: dial tcp ")
            .and_then(|rest| rest.strip_suffix(": i/o timeout"))
            .unwrap_or_else(|| panic!("{path}: {message}"));
        if path.contains("/pods/") {
            assert_eq!(dialled, whoami.to_string(), "{path}");
        }
    }
    // An upgrade, on a raw TLS connection (a pooled client would drop its `Upgrade`).
    let mut tls = common::raw_tls(&cluster).await;
    let head = format!(
        "GET /api/v1/namespaces/demo/services/whoami:http/proxy/ws HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Bearer {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        cluster.addr(),
        cluster.admin_token()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    let mut buf = vec![0u8; 4096];
    // Head and body may come in separate records: read until the Status has ended.
    while !answer.ends_with('}') && !answer.ends_with("}\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        answer.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
    assert!(
        answer.contains("error dialing backend: dial tcp ") && answer.contains(": i/o timeout"),
        "{answer}"
    );
    if !kubectl_missing() {
        let dir = tempfile::tempdir().unwrap();
        let kc = dir.path().join("kubeconfig");
        cluster.write_kubeconfig(&kc).unwrap();
        let (fwd, _) = Forward::start(&kc, &["-n", "demo", "svc/whoami", ":80"], true).await;
        let answer = http_get(fwd.port, "/").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        fwd.stop().await;
    }
    cluster.shutdown().await;

    // One service cut off: the others answer.
    let (cluster, client) = common::start_with(
        simcluster::SimCluster::builder()
            .unreachable_service("demo", "whoami")
            .unreachable_delay(Duration::from_millis(10)),
    )
    .await;
    let cut = common::get(
        &client,
        &cluster,
        "/api/v1/namespaces/demo/services/whoami:http/proxy/",
    )
    .await;
    assert_eq!(cut.status, 503, "{}", cut.text());
    let fine = common::get(
        &client,
        &cluster,
        "/api/v1/namespaces/demo/services/echo:http/proxy/",
    )
    .await;
    assert_eq!(fine.status, 200, "{}", fine.text());
    cluster.shutdown().await;
}
