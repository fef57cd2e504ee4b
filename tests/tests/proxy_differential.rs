//! Differential tests: the same requests sent to the real `kubectl proxy` and to `kgate proxy`,
//! both in front of simcluster, must get the same status and body (apart from the differences
//! listed in `gateway/DIFFERENCES.md`). The cases are the rows of kubectl's `TestAccept`,
//! `TestPathHandling` and `TestAPIRequests` (`pkg/proxy/proxy_server_test.go`), plus mux,
//! upgrade and error cases. Skipped with a message where kubectl is not installed.

use tests::cluster::Cluster;
use tests::http::{Reply, Req, send};
use tests::proc::Proxy;

/// Starts both proxies with `flags`; `None` when kubectl is missing.
fn pair(cluster: &Cluster, flags: &[&str]) -> Option<(Proxy, Proxy)> {
    let kubectl = cluster.kubectl_proxy(flags)?;
    let kgate = cluster.kgate_proxy(flags);
    Some((kubectl, kgate))
}

async fn both(pair: &(Proxy, Proxy), req: &Req<'_>) -> (Reply, Reply) {
    let kubectl = send(pair.0.addr.tcp(), req).await;
    let kgate = send(pair.1.addr.tcp(), req).await;
    (kubectl, kgate)
}

/// Same status and body; for `text/plain` local answers also the same content type.
fn assert_same(what: &str, kubectl: &Reply, kgate: &Reply) {
    assert_eq!(
        kubectl.status,
        kgate.status,
        "{what}: status (kubectl body {:?}, kgate body {:?})",
        kubectl.text(),
        kgate.text()
    );
    assert_eq!(normalized(kubectl), normalized(kgate), "{what}: body");
    if kubectl.status == 403 || kubectl.status == 404 && kubectl.text() == "404 page not found\n" {
        assert_eq!(
            kubectl.header("content-type"),
            kgate.header("content-type"),
            "{what}: content-type"
        );
        assert_eq!(
            kubectl.header("x-content-type-options"),
            kgate.header("x-content-type-options"),
            "{what}"
        );
    }
}

/// The body, with the one documented difference taken out: the echo service reports the
/// `User-Agent` the API server received (kubectl's or kgate's; DIFFERENCES.md #10).
fn normalized(reply: &Reply) -> String {
    match serde_json::from_slice::<serde_json::Value>(&reply.body) {
        Ok(mut v)
            if v.get("headers")
                .is_some_and(|h| h.get("user-agent").is_some()) =>
        {
            if let Some(h) = v["headers"].as_object_mut() {
                h.remove("user-agent");
            }
            v.to_string()
        }
        _ => reply.text(),
    }
}

/// (name, --reject-methods, --reject-paths, path, host, method, accepted).
type AcceptRow = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
    bool,
);

const DEFAULT_REJECT_METHODS: &str = "^$";

/// kubectl's `TestAccept` rows that can be sent over HTTP (row `test1` has an empty path):
/// (name, --reject-methods, --reject-paths or None for the default, path, host, method, accepted).
#[rustfmt::skip]
const TEST_ACCEPT: &[AcceptRow] = &[
    ("test2", DEFAULT_REJECT_METHODS, None, "/api/v1/pods", "127.0.0.1", "GET", true),
    ("test3", DEFAULT_REJECT_METHODS, None, "/api/v1/pods", "localhost", "GET", true),
    ("test4", DEFAULT_REJECT_METHODS, None, "/api/v1/namespaces/default/pods/foo", "localhost", "GET", true),
    ("test5", DEFAULT_REJECT_METHODS, None, "/api/v1/namespaces/default/pods/attachfoo", "localhost", "GET", true),
    ("test7", DEFAULT_REJECT_METHODS, None, "/api/v1/namespaces/default/pods/execfoo", "localhost", "GET", true),
    ("test8", DEFAULT_REJECT_METHODS, None, "/api/v1/namespaces/default/pods/foo/exec", "127.0.0.1", "GET", false),
    ("test9", DEFAULT_REJECT_METHODS, None, "/api/v1/namespaces/default/pods/foo/attach", "127.0.0.1", "GET", false),
    ("test10", DEFAULT_REJECT_METHODS, None, "/api/v1/pods", "evil.com", "GET", false),
    ("test11", DEFAULT_REJECT_METHODS, None, "/api/v1/pods", "localhost.evil.com", "GET", false),
    ("test12", DEFAULT_REJECT_METHODS, None, "/api/v1/pods", "127a0b0c1", "GET", false),
    ("test13", DEFAULT_REJECT_METHODS, None, "/ui", "localhost", "GET", true),
    ("test14", DEFAULT_REJECT_METHODS, None, "/api/v1/pods", "localhost", "POST", true),
    ("test15", DEFAULT_REJECT_METHODS, None, "/api/v1/namespaces/default/pods/somepod", "localhost", "PUT", true),
    ("test16", DEFAULT_REJECT_METHODS, None, "/api/v1/namespaces/default/pods/somepod", "localhost", "PATCH", true),
    ("test17", "GET", None, "/api/v1/pods", "127.0.0.1", "GET", false),
    ("test18", "POST", None, "/api/v1/pods", "localhost", "POST", false),
    ("test19", "PUT", None, "/api/v1/namespaces/default/pods/somepod", "localhost", "PUT", false),
    ("test20", "PATCH", None, "/api/v1/namespaces/default/pods/somepod", "localhost", "PATCH", false),
    ("test21", "POST,PUT,PATCH", None, "/api/v1/namespaces/default/pods/somepod", "localhost", "PATCH", false),
    ("test22", "POST,PUT,PATCH", None, "/api/v1/namespaces/default/pods/somepod", "localhost", "PUT", false),
    ("test23", DEFAULT_REJECT_METHODS, None, "/api/v1/namespaces/default/pods/somepod/exec", "localhost", "POST", false),
    ("test24", DEFAULT_REJECT_METHODS, Some(""), "/api/v1/namespaces/default/pods/somepod/exec", "localhost", "POST", true),
];

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_test_accept_rows_match() {
    let cluster = Cluster::start().await;
    // One pair of proxies per distinct flag set.
    let mut configs: Vec<(&str, Option<&str>)> = Vec::new();
    for row in TEST_ACCEPT {
        if !configs.contains(&(row.1, row.2)) {
            configs.push((row.1, row.2));
        }
    }
    for (methods, paths) in configs {
        let mut flags = vec![format!("--reject-methods={methods}")];
        if let Some(paths) = paths {
            flags.push(format!("--reject-paths={paths}"));
        }
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let Some(pair) = pair(&cluster, &flags) else {
            return;
        };
        for &(name, _, _, path, host, method, accepted) in TEST_ACCEPT
            .iter()
            .filter(|r| (r.1, r.2) == (methods, paths))
        {
            let req = Req::get(path).method(method).host(host);
            let (kubectl, kgate) = both(&pair, &req).await;
            assert_same(name, &kubectl, &kgate);
            assert_eq!(kgate.status != 403, accepted, "{name}: {}", kgate.text());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_test_path_handling_rows_match() {
    let cluster = Cluster::start().await;
    #[rustfmt::skip]
    let rows: &[(&str, &[&str])] = &[
        ("/api/", &["/metrics", "/api/metrics", "/api/v1/pods/"]),
        ("/", &["/metrics", "/api/v1/pods/"]),
        ("/custom/", &["/metrics", "/api/metrics", "/api/v1/pods/", "/custom/api/metrics", "/custom/api/v1/pods/", "/custom", "/custom/api/v1/namespaces/demo/services/echo:http/proxy/a%2Fb"]),
        ("/k8s-api", &["/k8s-api/api/v1/namespaces", "/k8s-api/version", "/k8s-api"]),
    ];
    for (prefix, paths) in rows {
        let flag = format!("--api-prefix={prefix}");
        let Some(pair) = pair(&cluster, &[&flag]) else {
            return;
        };
        for path in *paths {
            let (kubectl, kgate) = both(&pair, &Req::get(path)).await;
            assert_same(&format!("{prefix} {path}"), &kubectl, &kgate);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_test_api_requests_rows_match() {
    let cluster = Cluster::start().await;
    let Some(pair) = pair(&cluster, &[]) else {
        return;
    };
    let path = "/api/v1/namespaces/demo/services/echo:http/proxy/api/test?fields=ID%3Dfoo&labels=key%3Dvalue";
    for (method, body) in [
        ("GET", ""),
        ("DELETE", ""),
        ("POST", "test payload"),
        ("PUT", "test payload"),
    ] {
        let req = Req::get(path).method(method).body(body.as_bytes());
        let (kubectl, kgate) = both(&pair, &req).await;
        assert_eq!(kubectl.status, 200, "{method}: {}", kubectl.text());
        assert_eq!(kgate.status, 200, "{method}: {}", kgate.text());
        // The echo describes what the service received; compare what the proxies must agree on
        // (User-Agent and X-Forwarded-For legitimately differ).
        let k: serde_json::Value = serde_json::from_slice(&kubectl.body).unwrap();
        let g: serde_json::Value = serde_json::from_slice(&kgate.body).unwrap();
        for field in ["method", "path", "query", "body_bytes"] {
            assert_eq!(k[field], g[field], "{method} {field}");
        }
        assert_eq!(g["method"], method);
        assert_eq!(g["query"], "fields=ID%3Dfoo&labels=key%3Dvalue");
        assert_eq!(g["body_bytes"], body.len());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_answers_mux_answers_and_errors_match() {
    let cluster = Cluster::start().await;
    let Some(pair) = pair(&cluster, &[]) else {
        return;
    };
    let cases = [
        Req::get("/api"),
        Req::get("/version"),
        Req::get("/api/v1/namespaces"),
        Req::get(
            "/api/v1/namespaces/kube-system/services/elasticsearch-logging:9200/proxy/_cluster/health",
        ),
        Req::get("/api/v1/namespaces/demo/services/echo:http/proxy/status/418"),
        Req::get("/api/v1/namespaces/demo/services/echo:http/proxy/redirect?to=/x&code=302"),
        Req::get("/api/v1/namespaces/demo/services/nope/proxy/"),
        Req::get("/api/v1/namespaces/demo/services/offline:http/proxy/"),
        Req::get("/api/v1/namespaces/demo/services/echo:http/proxy"),
        Req::get("/api/v1/namespaces/demo/services/echo:http/proxy/a%2Fb%20c"),
        Req::get("/api//v1/namespaces"),
        Req::get("/api/v1/./namespaces/../namespaces"),
        Req::get("/api/v1/namespaces").method("HEAD"),
        Req::get("/api/v1/namespaces").header("Authorization", "Bearer wrong-token"),
        Req::get("/api/v1/namespaces/a/pods/b/exec?command=ls")
            .header("Connection", "Upgrade")
            .header("Upgrade", "SPDY/3.1"),
        Req::get("/api/v1/namespaces/a/pods/b/%65xec"),
        Req::get("/api/v1/pods").host("[::1]"),
        Req::get("/api/v1/pods").host("LOCALHOST"),
        Req::get("/api/v1/pods").host("localhost:1234"),
    ];
    for req in &cases {
        let (kubectl, kgate) = both(&pair, req).await;
        let what = format!("{} {} (Host {})", req.method, req.target, req.host);
        assert_same(&what, &kubectl, &kgate);
        if req.method != "HEAD" && kubectl.status == 301 {
            assert_eq!(
                kubectl.header("location"),
                kgate.header("location"),
                "{what}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrades_match() {
    let cluster = Cluster::start().await;
    let Some(pair) = pair(&cluster, &[]) else {
        return;
    };
    let upgrade = |path| {
        Req::get(path)
            .header("Connection", "Upgrade")
            .header("Upgrade", "echo-test")
    };
    // The API server answers 200 to an upgrade request: kubectl's 500 "invalid upgrade response".
    let (kubectl, kgate) = both(&pair, &upgrade("/api/v1/namespaces")).await;
    assert_eq!(kubectl.status, 500);
    assert_same("upgrade answered 200", &kubectl, &kgate);
    // Answers from 400 are passed through.
    let (kubectl, kgate) = both(
        &pair,
        &upgrade("/api/v1/namespaces/demo/services/nope/proxy/"),
    )
    .await;
    assert!(kubectl.status >= 400);
    assert_eq!(kubectl.status, kgate.status);
    // A raw upgrade through the proxy verb: 101 on both.
    for proxy in [&pair.0, &pair.1] {
        let mut s = tokio::net::TcpStream::connect(proxy.addr.tcp())
            .await
            .unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /api/v1/namespaces/demo/services/echo:http/proxy/upgrade HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: echo-test\r\n\r\n").await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before the 101");
            head.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&head);
        assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    }
}
