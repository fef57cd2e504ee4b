//! End-to-end tests against simcluster, through the real authenticated client (`auth`), real
//! TLS and real sockets: cluster-info (compared with the real `kubectl` where installed), the
//! urls listing, and checks (each expectation kind, timeouts, retries, parallel runs, and the
//! simulated Elasticsearch set to green, yellow and red).

#![expect(clippy::unwrap_used, reason = "tests: a failure is a test failure")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use discovery::check::{
    CheckOptions, CheckResult, CheckTarget, Expectations, StatusMatcher, Verdict, exit_code,
    run_checks,
};
use discovery::cluster_info::cluster_info;
use discovery::expr::JsonExpr;
use discovery::urls::{UrlOptions, url_entries};
use discovery::{NamespaceScope, list_services};
use simcluster::SimCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const KUBECTL: &str = "/usr/bin/kubectl";

struct Env {
    cluster: SimCluster,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    client: auth::ApiClient,
    flaky_hits: Arc<AtomicUsize>,
}

/// A tiny HTTP server on loopback: `/slow` answers after 30 s, `/flaky` answers 503 twice
/// and then 200, anything else 200 `ok`.
async fn local_app() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let status = if path.starts_with("/slow") {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "200 OK"
                } else if path.starts_with("/flaky") {
                    if counter.fetch_add(1, Ordering::SeqCst) < 2 {
                        "503 Service Unavailable"
                    } else {
                        "200 OK"
                    }
                } else {
                    "200 OK"
                };
                let body = format!("{{\"path\":\"{path}\"}}");
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}"), hits)
}

async fn env() -> Env {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (app_url, flaky_hits) = local_app().await;
    let cluster = SimCluster::builder()
        .map_service("tests", "local", Some("http"), &app_url)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let client = client_for(&kubeconfig);
    Env {
        cluster,
        dir,
        kubeconfig,
        client,
        flaky_hits,
    }
}

fn load(kubeconfig: &Path) -> config::ClusterConfig {
    let args = config::KubeArgs {
        kubeconfig: Some(kubeconfig.to_owned()),
        ..Default::default()
    };
    config::ClusterConfig::load_with_env(&args, &config::Env::empty()).unwrap()
}

fn client_for(kubeconfig: &Path) -> auth::ApiClient {
    auth::ApiClient::new(&load(kubeconfig), auth::ClientOptions::default()).unwrap()
}

/// Runs the real kubectl with a private HOME (its discovery cache) and no KUBECONFIG.
fn kubectl(home: &Path, args: &[&str]) -> Option<(String, String, i32)> {
    if !Path::new(KUBECTL).exists() {
        eprintln!(
            "SKIPPED: {KUBECTL} is not installed; kgate cluster-info is not compared with kubectl"
        );
        return None;
    }
    let out = std::process::Command::new(KUBECTL)
        .args(args)
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    Some((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_info_equals_kubectl() {
    let env = env().await;
    let server = env.cluster.url();
    for ns in [None, Some("monitoring"), Some("demo")] {
        let ours = cluster_info(&env.client, &server, ns).await;
        assert_eq!(ours.exit_code, 0, "{}", ours.stderr);
        assert!(ours.stdout.starts_with(&format!(
            "Kubernetes control plane is running at {server}\n"
        )));
        let mut args = vec![
            "--kubeconfig".to_owned(),
            env.kubeconfig.display().to_string(),
            "cluster-info".to_owned(),
        ];
        if let Some(ns) = ns {
            args.extend(["-n".to_owned(), ns.to_owned()]);
        }
        let home = env.dir.path().to_owned();
        let run = move || kubectl(&home, &args.iter().map(String::as_str).collect::<Vec<_>>());
        let Some((stdout, stderr, code)) = tokio::task::spawn_blocking(run).await.unwrap() else {
            return;
        };
        assert_eq!(
            ours.stdout, stdout,
            "namespace {ns:?}; kubectl stderr: {stderr}"
        );
        assert_eq!(i32::from(ours.exit_code), code);
    }
    let ours = cluster_info(&env.client, &server, None).await;
    assert!(
        ours.stdout.contains("Elasticsearch is running at "),
        "{}",
        ours.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_info_unreachable_matches_kubectl() {
    let env = env().await;
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = std::fs::read_to_string(&env.kubeconfig).unwrap();
    let dead = yaml.replace(&env.cluster.url(), &format!("https://127.0.0.1:{closed}"));
    let path = env.dir.path().join("dead");
    std::fs::write(&path, dead).unwrap();
    let client = client_for(&path);
    let server = format!("https://127.0.0.1:{closed}");
    let ours = cluster_info(&client, &server, None).await;
    assert_eq!(ours.exit_code, 1);
    assert_eq!(
        ours.stdout,
        "\nTo further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n"
    );
    assert_eq!(
        ours.stderr,
        format!(
            "The connection to the server 127.0.0.1:{closed} was refused - did you specify the right host or port?\n"
        )
    );
    let home = env.dir.path().to_owned();
    let p = path.to_str().unwrap().to_owned();
    let Some((stdout, stderr, code)) =
        tokio::task::spawn_blocking(move || kubectl(&home, &["--kubeconfig", &p, "cluster-info"]))
            .await
            .unwrap()
    else {
        return;
    };
    assert_eq!(ours.stdout, stdout);
    assert_eq!(code, 1);
    // kubectl's klog discovery lines (timestamps, pids) come first; the final line is equal.
    assert_eq!(
        stderr.lines().last(),
        ours.stderr.lines().last(),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_list_every_port_with_scheme_and_readiness() {
    let env = env().await;
    let services = list_services(&env.client, &NamespaceScope::All, None)
        .await
        .unwrap();
    let opts = UrlOptions {
        server: env.cluster.url(),
        gateway: Default::default(),
    };
    let list = url_entries(&services, &[], &opts);
    let find = |ns: &str, name: &str, port: u16| {
        list.items
            .iter()
            .find(|e| e.namespace == ns && e.name == name && e.port == port)
            .unwrap_or_else(|| panic!("{ns}/{name}:{port} missing"))
    };
    let ms = find("kube-system", "metrics-server", 443);
    assert_eq!(ms.scheme, "https");
    assert_eq!((ms.ready, ms.total), (1, 1));
    let offline = find("demo", "offline", 80);
    assert_eq!((offline.ready, offline.total), (0, 0));
    let es = find("kube-system", "elasticsearch-logging", 9200);
    assert_eq!(es.port_name, "");
    assert_eq!(
        es.api_proxy_url.as_deref(),
        Some(
            format!(
                "{}/api/v1/namespaces/kube-system/services/elasticsearch-logging:9200/proxy/",
                env.cluster.url()
            )
            .as_str()
        )
    );
    assert_eq!(find("demo", "echo", 9090).port_name, "metrics");
    // Sorted by namespace, then name, then port.
    let keys: Vec<_> = list
        .items
        .iter()
        .map(|e| (e.namespace.clone(), e.name.clone(), e.port))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    // Every listed API URL of a ready service actually answers through the API server.
    for e in list
        .items
        .iter()
        .filter(|e| e.ready > 0 && e.protocol == "TCP" && e.namespace == "demo")
    {
        let path = e
            .api_proxy_url
            .as_deref()
            .unwrap()
            .trim_start_matches(&env.cluster.url())
            .to_owned();
        let target = CheckTarget {
            label: format!("{}/{}", e.name, e.port),
            path,
        };
        let result = check_default(&env, target).await;
        assert_eq!(result.verdict, Verdict::Pass, "{result:?}");
    }
}

/// One target checked with the default expectations and options.
async fn check_default(env: &Env, target: CheckTarget) -> CheckResult {
    run_checks(
        &env.client,
        &[target],
        &Expectations::default(),
        &CheckOptions::default(),
    )
    .await
    .results
    .remove(0)
}

fn es_target() -> CheckTarget {
    CheckTarget {
        label: "svc/kube-system/elasticsearch-logging:9200/_cluster/health".to_owned(),
        path: "/api/v1/namespaces/kube-system/services/elasticsearch-logging:9200/proxy/_cluster/health".to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_green_yellow_red() {
    let env = env().await;
    let expect = Expectations {
        json: Some(JsonExpr::compile(r#".status != "red""#).unwrap()),
        ..Default::default()
    };
    let strict = Expectations {
        json: Some(JsonExpr::compile(r#".status == "green" and .number_of_nodes >= 1"#).unwrap()),
        ..Default::default()
    };
    for (status, lenient, green_only) in [
        ("green", Verdict::Pass, Verdict::Pass),
        ("yellow", Verdict::Pass, Verdict::Fail),
        ("red", Verdict::Fail, Verdict::Fail),
    ] {
        env.cluster.set_es_status(status).unwrap();
        let report = run_checks(
            &env.client,
            &[es_target()],
            &expect,
            &CheckOptions::default(),
        )
        .await;
        let r = &report.results[0];
        assert_eq!(
            (r.status, r.verdict),
            (Some(200), lenient),
            "{status}: {r:?}"
        );
        assert_eq!(exit_code(&report), u8::from(lenient == Verdict::Fail));
        let report = run_checks(
            &env.client,
            &[es_target()],
            &strict,
            &CheckOptions::default(),
        )
        .await;
        assert_eq!(report.results[0].verdict, green_only, "{status}");
    }
    let r = run_checks(
        &env.client,
        &[es_target()],
        &expect,
        &CheckOptions::default(),
    )
    .await;
    assert_eq!(r.results[0].reason, r#".status != "red" gave false"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_body_expectations_and_no_endpoints() {
    let env = env().await;
    let offline = CheckTarget {
        label: "svc/demo/offline:http".to_owned(),
        path: "/api/v1/namespaces/demo/services/offline:http/proxy/".to_owned(),
    };
    let r = &check_default(&env, offline.clone()).await;
    assert_eq!((r.status, r.verdict), (Some(503), Verdict::Fail));
    assert!(
        r.reason.contains("no endpoints available for service"),
        "{}",
        r.reason
    );
    // The service says why (it has no endpoints at all), and names the ports a target missed.
    assert!(
        r.reason
            .ends_with("; the service has no endpoints: does its selector match a running pod?"),
        "{}",
        r.reason
    );
    let missed = [
        (
            "/api/v1/namespaces/demo/services/shop/proxy/cart?id=1",
            "no endpoints available for service \"shop\"; the service has no unnamed port; \
             its port is svc/demo/shop:http/cart?id=1 (80/TCP)",
        ),
        (
            "/api/v1/namespaces/demo/services/shop:8080/proxy/",
            "no service port 8080 found for service \"shop\"; the service has no port 8080; \
             its port is svc/demo/shop:http/ (80/TCP)",
        ),
        (
            "/api/v1/namespaces/demo/services/echo:web/proxy/",
            "the service has no port named \"web\"; its ports are svc/demo/echo:http/ (80/TCP), \
             svc/demo/echo:admin/ (8080/TCP), svc/demo/echo:metrics/ (9090/TCP)",
        ),
    ];
    for (path, hint) in missed {
        let target = CheckTarget {
            label: path.to_owned(),
            path: path.to_owned(),
        };
        let r = check_default(&env, target).await;
        assert_eq!(r.status, Some(503), "{path}: {}", r.reason);
        assert!(r.reason.ends_with(hint), "{path}: {}", r.reason);
    }
    let expect = Expectations {
        status: StatusMatcher::parse("503").unwrap(),
        ..Default::default()
    };
    assert_eq!(
        run_checks(&env.client, &[offline], &expect, &CheckOptions::default())
            .await
            .failed,
        0
    );

    let local = CheckTarget {
        label: "svc/tests/local:http/hello".to_owned(),
        path: "/api/v1/namespaces/tests/services/local:http/proxy/hello".to_owned(),
    };
    let body_ok = Expectations {
        body: Some(regex::Regex::new(r#""path":"/hello""#).unwrap()),
        ..Default::default()
    };
    assert_eq!(
        run_checks(
            &env.client,
            std::slice::from_ref(&local),
            &body_ok,
            &CheckOptions::default()
        )
        .await
        .passed,
        1
    );
    let body_bad = Expectations {
        body: Some(regex::Regex::new("goodbye").unwrap()),
        ..Default::default()
    };
    let report = run_checks(&env.client, &[local], &body_bad, &CheckOptions::default()).await;
    assert_eq!(report.results[0].reason, "body does not match /goodbye/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_endpoint_times_out() {
    let env = env().await;
    let slow = CheckTarget {
        label: "slow".to_owned(),
        path: "/api/v1/namespaces/tests/services/local:http/proxy/slow".to_owned(),
    };
    let opts = CheckOptions {
        timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let report = run_checks(&env.client, &[slow], &Expectations::default(), &opts).await;
    let r = &report.results[0];
    assert_eq!((r.status, r.verdict), (None, Verdict::Fail));
    assert_eq!(r.reason, "no response from the API server within 0.3s");
    assert_eq!(exit_code(&report), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_see_the_status_change() {
    let env = env().await;
    let flaky = CheckTarget {
        label: "flaky".to_owned(),
        path: "/api/v1/namespaces/tests/services/local:http/proxy/flaky".to_owned(),
    };
    let once = CheckOptions {
        retries: 0,
        ..Default::default()
    };
    let report = run_checks(
        &env.client,
        std::slice::from_ref(&flaky),
        &Expectations::default(),
        &once,
    )
    .await;
    assert_eq!(
        (report.results[0].status, report.results[0].verdict),
        (Some(503), Verdict::Fail)
    );
    let retried = CheckOptions {
        retries: 3,
        retry_interval: Duration::from_millis(20),
        ..Default::default()
    };
    let report = run_checks(&env.client, &[flaky], &Expectations::default(), &retried).await;
    let r = &report.results[0];
    assert_eq!(
        (r.status, r.verdict, r.attempts),
        (Some(200), Verdict::Pass, 2)
    );
    assert_eq!(env.flaky_hits.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_checks_keep_order_and_mix_verdicts() {
    let env = env().await;
    env.cluster.set_es_status("green").unwrap();
    let mut targets = Vec::new();
    for i in 0..6 {
        targets.push(CheckTarget {
            label: format!("local-{i}"),
            path: format!("/api/v1/namespaces/tests/services/local:http/proxy/n{i}"),
        });
    }
    targets.push(es_target());
    targets.push(CheckTarget {
        label: "missing".to_owned(),
        path: "/api/v1/namespaces/demo/services/nope/proxy/".to_owned(),
    });
    let opts = CheckOptions {
        parallel: 3,
        ..Default::default()
    };
    let report = run_checks(&env.client, &targets, &Expectations::default(), &opts).await;
    let labels: Vec<_> = report.results.iter().map(|r| r.target.as_str()).collect();
    let expected: Vec<_> = targets.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, expected);
    assert_eq!((report.passed, report.failed), (7, 1));
    let missing = report.results.last().unwrap();
    assert_eq!(missing.status, Some(404));
    assert!(
        missing.reason.starts_with("status 404 does not match 2xx"),
        "{}",
        missing.reason
    );
}
