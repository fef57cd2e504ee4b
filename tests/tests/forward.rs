//! `kgate forward`, the real binary, against simcluster's `pods/portforward` and beside the real
//! `kubectl port-forward`: the same lines for the same arguments, the same bytes through, and
//! what kubectl does not do: balance over the ready pods, lose no connection when a pod is
//! deleted, replaced or crashes, carry h2c and WebSockets, keep memory flat under a slow
//! reader, and fail every way with one line and an exit code.

use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tests::cluster::Cluster;
use tests::proc::{Forward, kgate_bin, kubectl_bin, run_kgate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// A port free on both loopbacks now.
fn free_port() -> u16 {
    loop {
        let v4 = StdListener::bind("127.0.0.1:0").unwrap();
        let port = v4.local_addr().unwrap().port();
        if StdListener::bind(("::1", port)).is_ok() {
            return port;
        }
    }
}

fn args(cluster: &Cluster, rest: &[&str]) -> Vec<String> {
    let mut all = vec![format!("--kubeconfig={}", cluster.kubeconfig.display())];
    all.extend(rest.iter().map(|s| (*s).to_owned()));
    all
}

/// `kgate forward <rest>`.
fn kgate(cluster: &Cluster, rest: &[&str]) -> Forward {
    let mut all = vec!["forward".to_owned()];
    all.extend(args(cluster, rest));
    Forward::start(&kgate_bin(), &all, &[]).unwrap_or_else(|(code, err)| {
        panic!("kgate forward {rest:?} did not start (exit {code:?}):\n{err}")
    })
}

/// `kubectl port-forward <rest>`, or `None` when kubectl is not installed.
fn kubectl(cluster: &Cluster, rest: &[&str]) -> Option<Forward> {
    let kubectl = kubectl_bin()?;
    let mut all = vec!["port-forward".to_owned()];
    all.extend(args(cluster, rest));
    let home = cluster.dir.path();
    Some(
        Forward::start(&kubectl, &all, &[("HOME", home)]).unwrap_or_else(|(code, err)| {
            panic!("kubectl port-forward {rest:?} did not start (exit {code:?}):\n{err}")
        }),
    )
}

/// `GET path` on `port` with `Connection: close`: the whole answer.
async fn http_get(port: u16, path: &str) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut answer))
        .await
        .expect("an answer within 30 s")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// The `pod=` line of a whoami answer.
fn pod_of(answer: &str) -> String {
    answer
        .lines()
        .find_map(|l| l.strip_prefix("pod="))
        .unwrap_or_else(|| panic!("not a whoami answer: {answer:?}"))
        .to_owned()
}

/// Sends `payload` to a raw echo through `port`, half-closes, reads everything back.
async fn echo(port: u16, payload: &[u8]) -> Vec<u8> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut read, mut write) = tcp.into_split();
    let payload = payload.to_vec();
    let writer = tokio::spawn(async move {
        write.write_all(&payload).await.unwrap();
        write.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    read.read_to_end(&mut back).await.unwrap();
    writer.await.unwrap();
    back
}

/// Waits until `count` `Handling connection` lines were printed.
fn wait_handled(forward: &Forward, count: usize) {
    let start = std::time::Instant::now();
    while forward
        .lines()
        .iter()
        .filter(|l| l.starts_with("Handling connection"))
        .count()
        < count
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            forward.lines()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stderr once it contains `needle` (a connection's report comes after its close), or as
/// it is after 5 s.
fn stderr_with(forward: &Forward, needle: &str) -> String {
    let start = std::time::Instant::now();
    loop {
        let stderr = forward.stderr();
        if stderr.contains(needle) || start.elapsed() > Duration::from_secs(5) {
            return stderr;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lines both tools print for the same arguments and the same three connections.
async fn lines_for(forward: Forward, check: impl AsyncFnOnce(u16)) -> Vec<String> {
    let port = forward.port;
    check(port).await;
    wait_handled(&forward, 3);
    forward.lines()
}

#[tokio::test(flavor = "multi_thread")]
async fn kgate_prints_what_kubectl_prints_and_carries_the_same_bytes() {
    let cluster = Cluster::start().await;
    let echo_pod = cluster.sim.pods_of("demo", "tcp-echo")[0].clone();
    let echo_target = format!("pod/{echo_pod}");
    let echo_port = cluster
        .sim
        .endpoint_addr("demo", "tcp-echo", "echo")
        .unwrap()
        .port()
        .to_string();
    if kubectl_bin().is_none() {
        eprintln!("SKIPPED: kubectl is not installed; the kubectl side of this test did not run");
    }
    let http = async |port: u16| {
        for _ in 0..3 {
            let answer = http_get(port, "/").await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            pod_of(&answer);
        }
    };
    let any_http = async |port: u16| {
        for _ in 0..3 {
            let answer = http_get(port, "/").await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
    };
    let tcp = async |port: u16| {
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(echo(port, &payload).await, payload);
        let (a, b) = tokio::join!(echo(port, &[1; 5000]), echo(port, &[2; 7000]));
        assert_eq!((a, b), (vec![1; 5000], vec![2; 7000]));
    };
    // Each form: a service port by number and by name, a lone service port, a pod's port, a
    // deployment's.
    let cases: Vec<(Vec<String>, u8)> = vec![
        (vec!["svc/whoami".into(), format!("{}:80", free_port())], 0),
        (
            vec!["service/whoami".into(), format!("{}:http", free_port())],
            0,
        ),
        (
            vec!["deploy/whoami".into(), format!("{}:http", free_port())],
            0,
        ),
        (
            vec![echo_target.clone(), format!("{}:{echo_port}", free_port())],
            2,
        ),
        (vec![echo_target.clone(), echo_port.clone()], 2),
        // Several pairs: each its own listeners, in order.
        (
            vec![
                "svc/echo".into(),
                format!("{}:http", free_port()),
                format!("{}:admin", free_port()),
            ],
            1,
        ),
    ];
    let run = async |forward: Forward, kind: u8| match kind {
        0 => lines_for(forward, http).await,
        1 => lines_for(forward, any_http).await,
        _ => lines_for(forward, tcp).await,
    };
    for (case, kind) in cases {
        let mut rest = vec!["-n", "demo"];
        rest.extend(case.iter().map(String::as_str));
        let ours = run(kgate(&cluster, &rest), kind).await;
        assert!(
            ours[0].starts_with("Forwarding from 127.0.0.1:"),
            "{ours:?}"
        );
        assert!(ours[1].starts_with("Forwarding from [::1]:"), "{ours:?}");
        if let Some(theirs) = kubectl(&cluster, &rest) {
            let theirs = run(theirs, kind).await;
            assert_eq!(
                ours, theirs,
                "kgate forward {case:?} vs kubectl port-forward"
            );
        }
    }
    // kgate's short form: namespace and port in the target, a free local port.
    let short = kgate(&cluster, &["svc/demo/whoami:http"]);
    assert!(http_get(short.port, "/").await.starts_with("HTTP/1.1 200"));
    let line = &short.lines()[0];
    let target = cluster
        .sim
        .endpoint_addr("demo", "whoami", "http")
        .unwrap()
        .port();
    assert!(line.ends_with(&format!(" -> {target}")), "{line}");
    // Every connection went over the multiplexed WebSocket tunnel, kubectl's too.
    let served = cluster.sim.portforward_protocols();
    assert!(
        served.iter().all(|p| *p == "spdy-over-websocket"),
        "{served:?}"
    );
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_transport_is_used_when_the_server_offers_nothing_better() {
    // An API server without the WebSocket tunnel (before 1.30): SPDY, as kubectl falls back.
    let old =
        Cluster::start_with(simcluster::SimCluster::builder().portforward_websockets(false)).await;
    let forward = kgate(&old, &["-n", "demo", "svc/whoami", ":80"]);
    for _ in 0..3 {
        pod_of(&http_get(forward.port, "/").await);
    }
    drop(forward);
    let ours = old.sim.portforward_protocols();
    // whoami has two pods: one SPDY session to each, the third connection a second stream on
    // the first session.
    assert_eq!(ours, ["spdy", "spdy"], "one SPDY session per pod: {ours:?}");
    if let Some(theirs) = kubectl(&old, &["-n", "demo", "svc/whoami", ":80"]) {
        pod_of(&http_get(theirs.port, "/").await);
        assert_eq!(old.sim.portforward_protocols(), ["spdy"; 3]);
    }
    old.sim.shutdown().await;

    // Behind a proxy that passes WebSockets only and an old API server: a WebSocket per
    // connection, the kubelet's channel protocol (where kubectl cannot forward at all).
    let narrow = Cluster::start_with(
        simcluster::SimCluster::builder()
            .portforward_websockets(false)
            .portforward_spdy(false),
    )
    .await;
    let forward = kgate(&narrow, &["-n", "demo", "svc/whoami", ":80"]);
    let mut pods = std::collections::BTreeSet::new();
    for _ in 0..4 {
        pods.insert(pod_of(&http_get(forward.port, "/").await));
    }
    assert_eq!(pods.len(), 2, "balanced over channels too: {pods:?}");
    let served = narrow.sim.portforward_protocols();
    assert_eq!(served, ["websocket-channels"; 4], "{served:?}");
    narrow.sim.shutdown().await;
}

/// A client that closes when its answer ends (`Connection: close`) ends the connection: kgate
/// does not hold it, and its buffers, until a timeout while the kubelet waits for the
/// client's end (found by `bench forward`: 4,000 connections a second grew kgate to 600 MiB).
#[tokio::test(flavor = "multi_thread")]
async fn connections_that_the_client_closes_do_not_linger() {
    let cluster = Cluster::start().await;
    let pod = cluster.sim.pods_of("demo", "bulk").remove(0);
    let forward = kgate(&cluster, &["-n", "demo", "svc/bulk", ":80"]);
    let port = forward.port;
    pod_of_bulk(&http_get(port, "/bytes/1").await);
    let baseline = forward.peak_rss_kib();
    let started = std::time::Instant::now();
    let mut workers = Vec::new();
    for _ in 0..16 {
        workers.push(tokio::spawn(async move {
            for _ in 0..100 {
                pod_of_bulk(&http_get(port, "/bytes/64").await);
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let peak = forward.peak_rss_kib();
    eprintln!(
        "1,600 closing connections to {pod} in {:?}: peak RSS {baseline} -> {peak} KiB",
        started.elapsed()
    );
    assert!(
        peak < baseline + 24 * 1024,
        "peak RSS grew from {baseline} KiB to {peak} KiB"
    );
    cluster.sim.shutdown().await;
}

/// Checks that `answer` is bulk's whole 200.
fn pod_of_bulk(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_are_spread_over_the_ready_pods() {
    let cluster = Cluster::start().await;
    let forward = kgate(&cluster, &["-n", "demo", "svc/whoami", ":80"]);
    let port = forward.port;
    let mut all = Vec::new();
    for _ in 0..200 {
        all.push(tokio::spawn(
            async move { pod_of(&http_get(port, "/").await) },
        ));
    }
    let mut per_pod: HashMap<String, usize> = HashMap::new();
    for task in all {
        *per_pod.entry(task.await.unwrap()).or_default() += 1;
    }
    let pods = cluster.sim.pods_of("demo", "whoami");
    assert_eq!(per_pod.len(), 2, "{per_pod:?}");
    for pod in &pods {
        let n = per_pod.get(pod).copied().unwrap_or(0);
        assert!(n >= 60, "pod {pod} took {n} of 200: {per_pod:?}");
    }
    // Sequential connections alternate, once the tails of the 200 (each closes after its
    // answer, and the kubelet's word on it follows) have ended and both pods carry none.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a = pod_of(&http_get(port, "/").await);
    let b = pod_of(&http_get(port, "/").await);
    assert_ne!(a, b);
    assert!(forward.stderr().is_empty(), "{}", forward.stderr());
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_later_connection_is_lost_when_pods_are_deleted_replaced_or_crash() {
    let cluster = Cluster::start().await;
    let forward = kgate(&cluster, &["-n", "demo", "svc/whoami", ":80"]);
    let port = forward.port;
    let pods = cluster.sim.pods_of("demo", "whoami");
    let mut seen: Vec<String> = Vec::new();
    for i in 0..120 {
        match i {
            // A pod is deleted: its endpoint goes away, its listener dies.
            30 => cluster.sim.delete_pod("demo", &pods[0]).await.unwrap(),
            // The other is replaced, as a rollout does: a new name and address.
            60 => {
                cluster.sim.replace_pod("demo", &pods[1]).await.unwrap();
            }
            _ => {}
        }
        let answer = http_get(port, "/").await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "connection {i} failed: {answer:?}; stderr:\n{}",
            forward.stderr()
        );
        seen.push(pod_of(&answer));
    }
    assert!(seen[31..60].iter().all(|p| *p == pods[1]), "{seen:?}");
    let replacement = &seen[119];
    assert!(!pods.contains(replacement), "{seen:?}");
    assert!(seen[61..].iter().all(|p| p == replacement), "{seen:?}");

    // The one pod left crashes while its endpoint is still ready (the seconds before a
    // readiness probe notices).
    let crashed = replacement.clone();
    cluster.sim.crash_pod("demo", &crashed).await.unwrap();
    // With no other pod, the client sees the kubelet's refusal, on stderr once.
    let answer = http_get(port, "/").await;
    assert!(answer.is_empty(), "{answer:?}");
    let stderr = stderr_with(&forward, "connection refused");
    assert!(
        stderr.contains("error forwarding port") && stderr.contains("connection refused"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // The listener is still there for the next pod.
    let fresh = cluster.sim.replace_pod("demo", &crashed).await.unwrap();
    let answer = http_get(port, "/").await;
    assert_eq!(pod_of(&answer), fresh, "{answer}");
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_that_cannot_take_a_connection_is_passed_over_before_the_client_sees_it() {
    let cluster = Cluster::start().await;
    let forward = kgate(&cluster, &["-n", "demo", "svc/whoami", ":80"]);
    let port = forward.port;
    let pods = cluster.sim.pods_of("demo", "whoami");
    // One pod crashes; its endpoint stays ready.
    cluster.sim.crash_pod("demo", &pods[0]).await.unwrap();
    for i in 0..20 {
        let answer = http_get(port, "/").await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "connection {i}: {answer:?}; stderr:\n{}",
            forward.stderr()
        );
        assert_eq!(pod_of(&answer), pods[1]);
    }
    let needle = format!("pod {} could not take a connection", pods[0]);
    let stderr = stderr_with(&forward, &needle);
    assert!(stderr.contains(&needle), "{stderr}");
    assert!(!stderr.contains("error:"), "{stderr}");
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn h2c_and_websockets_pass_through() {
    let cluster = Cluster::start().await;
    let forward = kgate(&cluster, &["-n", "demo", "svc/whoami", ":80"]);
    let port = forward.port;

    // HTTP/2 with prior knowledge, several streams on one connection.
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    for _ in 0..5 {
        let req = http::Request::get("http://localhost/")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert!(body.starts_with(b"pod="), "{body:?}");
    }

    // A WebSocket, text and binary, both ways.
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://127.0.0.1:{port}/ws"), tcp)
        .await
        .unwrap();
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    let big = vec![7u8; 200_000];
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(big));
    ws.close(None).await.unwrap();
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_reader_of_one_gib_keeps_kgates_memory_flat() {
    let cluster = Cluster::start().await;
    let forward = kgate(&cluster, &["-n", "demo", "svc/bulk", ":80"]);
    let baseline = forward.peak_rss_kib();
    let mut tcp = TcpStream::connect(("127.0.0.1", forward.port))
        .await
        .unwrap();
    let total: u64 = 1 << 30;
    tcp.write_all(
        format!("GET /bytes/{total} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let mut got: u64 = 0;
    let mut since_pause: u64 = 0;
    loop {
        let n = tcp.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got += n as u64;
        since_pause += n as u64;
        // A reader slower than the pod: at most ~256 MiB/s.
        if since_pause >= 1 << 20 {
            since_pause = 0;
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
    }
    assert!(got > total, "{got} bytes (body and head)");
    let peak = forward.peak_rss_kib();
    eprintln!("kgate forward: peak RSS {peak} KiB after 1 GiB (at start {baseline} KiB)");
    assert!(
        peak < baseline + 16 * 1024,
        "peak RSS grew from {baseline} KiB to {peak} KiB"
    );
    cluster.sim.shutdown().await;
}

/// `kgate forward <rest>` to its end: exit code and stderr.
fn fails(kubeconfig: &Path, rest: &[&str]) -> (i32, String) {
    let kc = format!("--kubeconfig={}", kubeconfig.display());
    let mut all = vec!["forward", kc.as_str()];
    all.extend(rest);
    let (code, _, stderr) = run_kgate(&all);
    (code, stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_failure_to_start_is_one_line_and_an_exit_code() {
    let cluster = Cluster::start_with(
        simcluster::SimCluster::builder()
            .token("mallory", "mallory-token")
            .forbid_portforward("mallory"),
    )
    .await;
    let kc = cluster.kubeconfig.clone();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["-n", "demo", "svc/nope", ":80"],
            1,
            "services \"nope\" not found in namespace \"demo\"",
        ),
        (
            vec!["-n", "demo", "pod/nope", ":80"],
            1,
            "pods \"nope\" not found",
        ),
        (
            vec!["-n", "demo", "deploy/nope", ":80"],
            1,
            "deployments.apps \"nope\" not found",
        ),
        (
            vec!["-n", "demo", "svc/whoami", ":81"],
            1,
            "Service whoami does not have a service port 81",
        ),
        (
            vec!["-n", "demo", "svc/whoami", ":grpc"],
            1,
            "Service 'whoami' does not have a named port 'grpc'",
        ),
        (
            vec![
                "-n",
                "demo",
                "svc/offline",
                ":80",
                "--pod-running-timeout=1s",
            ],
            1,
            "no ready pod behind svc/demo/offline after 1s",
        ),
        (
            vec!["-n", "demo", "svc/whoami", ":80", "--token=mallory-token"],
            1,
            "the API server refused the port-forward",
        ),
        (
            vec![
                "-n",
                "demo",
                "svc/whoami",
                ":80",
                "--server=https://127.0.0.1:1",
            ],
            1,
            "cannot connect to the API server https://127.0.0.1:1",
        ),
        (
            vec!["-n", "demo", "svc/whoami"],
            2,
            "TYPE/NAME and list of ports are required",
        ),
        (
            vec!["-n", "demo", "svc/a/b/c", ":80"],
            2,
            "is not a target kgate forwards to",
        ),
        (
            vec!["-n", "demo", "svc/whoami", "1:2:3"],
            2,
            "invalid port format '1:2:3'",
        ),
        (
            vec!["-n", "demo", "svc/whoami", "8080:0"],
            2,
            "remote port must be > 0",
        ),
        (
            vec!["-n", "demo", "svc/whoami", ":80", "--address=example.com"],
            2,
            "example.com is not a valid IP",
        ),
        (
            vec!["svc/demo/whoami:80", "8080:80"],
            2,
            "give the port once",
        ),
    ];
    for (rest, code, text) in cases {
        let (got, stderr) = fails(&kc, &rest);
        assert_eq!(got, code, "{rest:?}: {stderr}");
        assert!(stderr.contains(text), "{rest:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{rest:?}: {stderr}");
        assert!(!stderr.contains("mallory-token"), "{stderr}");
    }
    // A kubeconfig that cannot be used is a failure to start (1); a typo is reported as
    // one (2) whatever the kubeconfig holds.
    let broken = cluster.dir.path().join("broken-kubeconfig");
    std::fs::write(&broken, "apiVersion: v1\nkind: Config\nclusters: [oops\n").unwrap();
    let (got, stderr) = fails(&broken, &["svc/whoami", ":80"]);
    assert_eq!(got, 1, "{stderr}");
    assert!(stderr.contains("loading the kubeconfig"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let (got, stderr) = fails(&broken, &["sts/web", ":80"]);
    assert_eq!(got, 2, "{stderr}");
    assert!(
        stderr.contains("use pod/NAME, svc/NAME, deploy/NAME"),
        "{stderr}"
    );
    // A port taken on the only address asked for.
    let taken = StdListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let pair = format!("{port}:80");
    let (got, stderr) = fails(
        &kc,
        &["-n", "demo", "svc/whoami", &pair, "--address=127.0.0.1"],
    );
    assert_eq!(got, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("Unable to listen on port {port}"))
            && stderr.contains("unable to listen on any of the requested ports"),
        "{stderr}"
    );
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_while_running_are_reported_and_the_listener_stays() {
    let cluster = Cluster::start().await;
    // A port the pod does not listen on: the kubelet's error, the connection closed, kgate up.
    let echo_pod = cluster.sim.pods_of("demo", "tcp-echo")[0].clone();
    let mut forward = kgate(&cluster, &["-n", "demo", &format!("pod/{echo_pod}"), ":1"]);
    for _ in 0..2 {
        let answer = http_get(forward.port, "/").await;
        assert!(answer.is_empty(), "{answer}");
    }
    let stderr = stderr_with(&forward, "connection refused");
    assert!(
        stderr.contains("an error occurred forwarding")
            && stderr.contains("error forwarding port 1 to pod")
            && stderr.contains("connect: connection refused"),
        "{stderr}"
    );
    assert_eq!(forward.wait_exit(Duration::from_millis(200)), None);

    // The API server goes away mid-run: connections are closed with an error, the listener
    // stays, and SIGTERM ends kgate with 0.
    let mut svc = kgate(&cluster, &["-n", "demo", "svc/whoami", ":80"]);
    assert!(http_get(svc.port, "/").await.starts_with("HTTP/1.1 200"));
    cluster.sim.shutdown().await;
    let answer = http_get(svc.port, "/").await;
    assert!(
        !answer.starts_with("HTTP/1.1 200") || answer.contains("pod="),
        "{answer}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        svc.wait_exit(Duration::from_millis(200)),
        None,
        "{}",
        svc.stderr()
    );
    svc.signal("TERM");
    assert_eq!(svc.wait_exit(Duration::from_secs(5)), Some(0));
    forward.signal("INT");
    assert_eq!(forward.wait_exit(Duration::from_secs(5)), Some(0));
}
