//! The real `kubectl` against the simulated cluster: `get`, `cluster-info` and `kubectl proxy`
//! in front of it. Skipped, with a message, where `/usr/bin/kubectl` is not installed.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a test failure"
)]

#[expect(dead_code, reason = "this test binary uses a subset of the helpers")]
mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const KUBECTL: &str = "/usr/bin/kubectl";

fn kubectl_missing() -> bool {
    if Path::new(KUBECTL).exists() {
        return false;
    }
    eprintln!("SKIPPED: {KUBECTL} is not installed");
    true
}

async fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(KUBECTL)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", kubeconfig.parent().unwrap())
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn cluster_and_kubeconfig() -> (
    simcluster::SimCluster,
    tempfile::TempDir,
    std::path::PathBuf,
) {
    let (cluster, _) = common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&path).unwrap();
    (cluster, dir, path)
}

#[tokio::test]
async fn kubectl_get_lists_everything() {
    if kubectl_missing() {
        return;
    }
    let (cluster, _dir, kc) = cluster_and_kubeconfig().await;
    let (ok, out, err) = kubectl(&kc, &["get", "ns,svc,pods", "-A"]).await;
    assert!(ok, "{err}");
    for want in [
        "namespace/kube-system",
        "service/elasticsearch-logging",
        "service/kube-dns",
        "53/UDP,53/TCP,9153/TCP",
        "pod/shop-",
        "Running",
    ] {
        assert!(out.contains(want), "{want} missing in\n{out}");
    }
    let (ok, out, err) = kubectl(
        &kc,
        &["get", "svc", "grafana", "-n", "monitoring", "-o", "json"],
    )
    .await;
    assert!(ok, "{err}");
    let svc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(svc["spec"]["ports"][0]["port"], 3000);
    let (ok, _, err) = kubectl(&kc, &["get", "svc", "nope"]).await;
    assert!(!ok);
    assert!(err.contains("services \"nope\" not found"), "{err}");
    let (ok, out, err) = kubectl(
        &kc,
        &[
            "get",
            "endpointslices",
            "-n",
            "demo",
            "-l",
            "kubernetes.io/service-name=shop",
        ],
    )
    .await;
    assert!(ok && out.contains("shop-"), "{out}{err}");
    let (ok, out, _) = kubectl(&kc, &["get", "nodes"]).await;
    assert!(ok && out.contains(simcluster::NODE_NAME));
    cluster.shutdown().await;
}

#[tokio::test]
async fn kubectl_cluster_info_prints_the_labelled_services() {
    if kubectl_missing() {
        return;
    }
    let (cluster, _dir, kc) = cluster_and_kubeconfig().await;
    let (ok, out, err) = kubectl(&kc, &["cluster-info"]).await;
    assert!(ok, "{err}");
    let url = cluster.url();
    let want = format!(
        "Kubernetes control plane is running at {url}\n\
         Elasticsearch is running at {url}/api/v1/namespaces/kube-system/services/elasticsearch-logging/proxy\n\
         CoreDNS is running at {url}/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy\n\
         \n\
         To further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n"
    );
    assert_eq!(out, want);
    let (ok, out, _) = kubectl(&kc, &["cluster-info", "-n", "monitoring"]).await;
    assert!(
        ok && out.contains(&format!(
            "Grafana is running at {url}/api/v1/namespaces/monitoring/services/grafana:http/proxy"
        )),
        "{out}"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn kubectl_proxy_in_front() {
    if kubectl_missing() {
        return;
    }
    let (cluster, _dir, kc) = cluster_and_kubeconfig().await;
    let mut child = Command::new(KUBECTL)
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["proxy", "--port=0"])
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let addr = line
        .strip_prefix("Starting to serve on ")
        .unwrap()
        .trim()
        .to_owned();

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let fetch = |path: &str| {
        let client = client.clone();
        let uri: http::Uri = format!("http://{addr}{path}").parse().unwrap();
        async move {
            use http_body_util::BodyExt;
            let resp = client.get(uri).await.unwrap();
            let status = resp.status();
            let location = resp
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                location,
                String::from_utf8_lossy(&body).into_owned(),
            )
        }
    };
    let (status, _, body) = fetch(
        "/api/v1/namespaces/kube-system/services/elasticsearch-logging:9200/proxy/_cluster/health",
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("\"status\":\"green\""), "{body}");
    let (_, _, body) = fetch("/api/v1/namespaces/demo/services/shop:http/proxy/").await;
    assert!(
        body.contains(
            r#"<script src="/api/v1/namespaces/demo/services/shop:http/proxy/static/app.js""#
        ),
        "{body}"
    );
    let (status, location, _) = fetch("/api/v1/namespaces/demo/services/shop:http/proxy").await;
    assert_eq!(status, 301);
    assert_eq!(
        location.as_deref(),
        Some("/api/v1/namespaces/demo/services/shop:http/proxy/")
    );
    let (status, _, body) = fetch("/api/v1/namespaces/demo/services/offline:http/proxy/").await;
    assert_eq!(status, 503);
    assert!(
        body.contains("no endpoints available for service \\\"offline\\\""),
        "{body}"
    );
    // A WebSocket through kubectl proxy and the API server to the shop's echo.
    {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let url = format!("ws://{addr}/api/v1/namespaces/demo/services/shop:http/proxy/ws");
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        ws.send(Message::text("through kubectl proxy"))
            .await
            .unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::text("through kubectl proxy")
        );
        let _ = ws.close(None).await;
    }
    // kubectl proxy sent the kubeconfig's token; the endpoint never saw it.
    let log = cluster.request_log();
    assert!(log.iter().any(|l| l.service == "demo/shop:http"));
    assert!(log.iter().all(|l| l.headers.get("authorization").is_none()));
    let _ = child.kill().await;
    cluster.shutdown().await;
}
