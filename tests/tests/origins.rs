//! Service origins of the real `kgate serve` binary in front of simcluster, over raw sockets
//! with the origin's `Host` header (glibc does not resolve `*.localhost`; browsers and curl do,
//! see `browser_origin.rs` for Chromium): which service a host reaches, default and HTTPS
//! ports, what never reaches a service (credentials, impersonation), the pages for missing
//! services and for failures, cross-site refusals on origins and on the API, and the gateway's
//! own pages under `/.kgate/`.

use std::time::Duration;

use tests::cluster::Cluster;
use tests::http::{Reply, Req, send};

/// The origin host of `host_prefix` (`shop.demo.svc`) on the gateway's port.
fn host(prefix: &str, port: u16) -> String {
    format!("{prefix}.localhost:{port}")
}

/// Requests the simulated apps received for `service` (`demo/echo:http`): (method, uri, headers).
fn saw(cluster: &Cluster, service: &str) -> Vec<(String, String, http::HeaderMap)> {
    cluster
        .sim
        .request_log()
        .into_iter()
        .filter(|r| r.service == service)
        .map(|r| (r.method, r.uri, r.headers))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_origin_reaches_its_own_service_only_and_never_with_the_browsers_credentials() {
    let cluster = Cluster::start().await;
    let kgate = cluster.kgate_serve(&[]);
    let addr = kgate.addr.tcp();
    let echo = host("echo.demo.svc", addr.port());
    let reply = send(
        addr,
        &Req::get("/hello?x=1")
            .host(&echo)
            .header("Authorization", "Bearer browser-secret")
            .header("Impersonate-User", "system:admin")
            .header("Impersonate-Group", "system:masters")
            .header("Cookie", "session=abc"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = saw(&cluster, "demo/echo:http");
    let (method, uri, headers) = seen.last().expect("echo saw the request");
    assert_eq!((method.as_str(), uri.as_str()), ("GET", "/hello?x=1"));
    assert_eq!(headers.get("cookie").unwrap(), "session=abc");
    for name in ["authorization", "impersonate-user", "impersonate-group"] {
        assert!(
            headers.get(name).is_none(),
            "{name} reached the service: {headers:?}"
        );
    }
    let all = format!("{:?}", cluster.sim.request_log());
    assert!(
        !all.contains("browser-secret"),
        "the browser's token reached a service"
    );

    // `/api/...` on an origin is the app's path, not the Kubernetes API.
    let reply = send(addr, &Req::get("/api/v1/namespaces").host(&echo)).await;
    assert!(!reply.text().contains("NamespaceList"), "{}", reply.text());
    let seen = saw(&cluster, "demo/echo:http");
    assert_eq!(seen.last().unwrap().1, "/api/v1/namespaces");

    // A path that would climb out of the proxy prefix is refused, not forwarded.
    let reply = send(addr, &Req::get("/a/%2e%2e/%2e%2e/x").host(&echo)).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply.text().contains("cannot be passed on"),
        "{}",
        reply.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ports_by_name_number_default_and_https() {
    let cluster = Cluster::start().await;
    let kgate = cluster.kgate_serve(&[]);
    let addr = kgate.addr.tcp();
    let port = addr.port();
    for (prefix, service) in [
        ("admin.echo.demo.svc", "demo/echo:admin"),
        ("8080.echo.demo.svc", "demo/echo:admin"),
        // Several ports and no label: the one named http.
        ("echo.demo.svc", "demo/echo:http"),
        // One named port and no label: that port.
        ("shop.demo.svc", "demo/shop:http"),
    ] {
        cluster.sim.clear_request_log();
        let reply = send(addr, &Req::get("/whoami").host(&host(prefix, port))).await;
        assert!(
            reply.status < 500,
            "{prefix}: {} {}",
            reply.status,
            reply.text()
        );
        assert!(
            saw(&cluster, service)
                .iter()
                .any(|(_, uri, _)| uri == "/whoami"),
            "{prefix} did not reach {service}: {:?}",
            cluster.sim.request_log()
        );
    }
    // metrics-server's only port is named https (443): reached over TLS without writing
    // https-svc, by its name, its number, or no port at all.
    for prefix in [
        "metrics-server.kube-system.svc",
        "https.metrics-server.kube-system.svc",
        "443.metrics-server.kube-system.svc",
        "https.metrics-server.kube-system.https-svc",
    ] {
        cluster.sim.clear_request_log();
        let reply = send(addr, &Req::get("/healthz").host(&host(prefix, port))).await;
        assert_eq!(reply.status, 200, "{prefix}: {}", reply.text());
        assert!(
            !saw(&cluster, "kube-system/metrics-server:https").is_empty(),
            "{prefix}: {:?}",
            cluster.sim.request_log()
        );
    }
    // Written as plain http, it is not reached over TLS (the override wins).
    let reply = send(
        addr,
        &Req::get("/healthz").host(&host("https.metrics-server.kube-system.http-svc", port)),
    )
    .await;
    assert_ne!(reply.status, 200, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_service_or_one_without_endpoints_gets_a_page_that_lists_what_exists() {
    let cluster = Cluster::start().await;
    let kgate = cluster.kgate_serve(&[]);
    let addr = kgate.addr.tcp();
    let port = addr.port();
    let page = |reply: &Reply| {
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{}",
            reply.text()
        );
        assert!(
            reply
                .header("content-security-policy")
                .unwrap()
                .starts_with("default-src 'none'")
        );
        reply.text()
    };
    let nope = host("nope.demo.svc", port);
    let reply = send(
        addr,
        &Req::get("/").host(&nope).header("Accept", "text/html,*/*"),
    )
    .await;
    assert_eq!(reply.status, 404);
    let text = page(&reply);
    // Without a numeric port the API server looks up the endpoints first (reference §3).
    assert!(text.contains("&#34;nope&#34; not found"), "{text}");
    let shop_link = format!("href=\"http://http.shop.demo.svc.localhost:{port}/\"");
    assert!(text.contains(&shop_link), "{text}");
    assert!(
        text.contains(&format!("href=\"http://localhost:{port}/.kgate/\"")),
        "{text}"
    );

    // A script asking for JSON gets the API server's Status as it was.
    let reply = send(
        addr,
        &Req::get("/")
            .host(&nope)
            .header("Accept", "application/json"),
    )
    .await;
    assert_eq!(reply.status, 404);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert!(
        reply.text().contains("\"kind\":\"Status\""),
        "{}",
        reply.text()
    );

    let offline = host("offline.demo.svc", port);
    let reply = send(
        addr,
        &Req::get("/").host(&offline).header("Accept", "text/html"),
    )
    .await;
    assert_eq!(reply.status, 503);
    let text = page(&reply);
    assert!(text.contains("no endpoints available"), "{text}");
    assert!(text.contains("0/0 ready"), "{text}");

    // Not an origin host at all, or another cluster's.
    let reply = send(addr, &Req::get("/").host(&host("a.b.c.d.svc", port))).await;
    assert_eq!(reply.status, 400);
    assert!(page(&reply).contains("labels before the svc label"));
    let reply = send(addr, &Req::get("/").host(&host("shop.demo.svc.prod", port))).await;
    assert_eq!(reply.status, 404);
    assert!(page(&reply).contains("origins without a context label"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_site_requests_are_refused_on_origins_and_on_the_api() {
    let cluster = Cluster::start().await;
    let kgate = cluster.kgate_serve(&[]);
    let addr = kgate.addr.tcp();
    let port = addr.port();
    let echo = host("echo.demo.svc", port);
    let own = format!("http://{echo}");

    // State-changing requests from another site or another origin are refused ...
    for (name, value) in [
        ("Origin", "http://evil.example"),
        ("Origin", "null"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "same-site"),
    ] {
        cluster.sim.clear_request_log();
        let reply = send(
            addr,
            &Req::get("/submit")
                .method("POST")
                .host(&echo)
                .header(name, value)
                .body(b"x=1"),
        )
        .await;
        assert_eq!(reply.status, 403, "{name}: {value}: {}", reply.text());
        assert!(
            saw(&cluster, "demo/echo:http").is_empty(),
            "{name}: {value} reached the app"
        );
    }
    // ... and so is a WebSocket handshake from another origin.
    let reply = send(
        addr,
        &Req::get("/ws")
            .host(&host("shop.demo.svc", port))
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("Origin", "http://evil.example"),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.text());

    // The origin's own pages, scripts and navigations pass; `Origin` is checked, then dropped.
    let reply = send(
        addr,
        &Req::get("/submit")
            .method("POST")
            .host(&echo)
            .header("Origin", &own)
            .body(b"x=1"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = saw(&cluster, "demo/echo:http");
    assert!(seen.last().unwrap().2.get("origin").is_none());
    let reply = send(
        addr,
        &Req::get("/")
            .host(&echo)
            .header("Sec-Fetch-Site", "cross-site"),
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "a link from another site is a navigation: {}",
        reply.text()
    );

    // The API passthrough refuses every request a web page makes, GET included ...
    for (name, value) in [("Origin", own.as_str()), ("Sec-Fetch-Site", "same-site")] {
        let reply = send(addr, &Req::get("/api/v1/namespaces").header(name, value)).await;
        assert_eq!(reply.status, 403, "{name}: {value}: {}", reply.text());
        assert!(
            reply.text().contains("\"kind\":\"Status\""),
            "{}",
            reply.text()
        );
    }
    // ... but not scripts, nor the gateway's own pages.
    let reply = send(addr, &Req::get("/api/v1/namespaces")).await;
    assert_eq!(reply.status, 200);
    let own_api = format!("http://localhost:{port}");
    let reply = send(
        addr,
        &Req::get("/api/v1/namespaces")
            .host(&format!("localhost:{port}"))
            .header("Origin", &own_api),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // `kgate proxy` has no origins, but refuses web pages on the API as `kgate serve` does
    // (scripts send no Origin and see kubectl's proxy); `--allow-origin` admits one.
    let proxy = cluster.kgate_proxy(&[]);
    let reply = send(
        proxy.addr.tcp(),
        &Req::get("/api/v1/namespaces").header("Origin", &own),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(
        reply.text().contains("rule cross-site-api"),
        "{}",
        reply.text()
    );
    let reply = send(proxy.addr.tcp(), &Req::get("/api/v1/namespaces")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = send(proxy.addr.tcp(), &Req::get("/").host(&echo)).await;
    assert_eq!(reply.text(), "Forbidden\n");
    let allowed = cluster.kgate_proxy(&[&format!("--allow-origin={own}")]);
    let reply = send(
        allowed.addr.tcp(),
        &Req::get("/api/v1/namespaces")
            .header("Origin", &own)
            .header("Sec-Fetch-Site", "same-site"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateways_own_pages_health_readiness_and_index() {
    let cluster = Cluster::start().await;
    let kgate = cluster.kgate_serve(&[]);
    let addr = kgate.addr.tcp();
    let port = addr.port();
    let reply = send(addr, &Req::get("/.kgate/healthz")).await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok\n"));
    let reply = send(addr, &Req::get("/.kgate/readyz")).await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok\n"));
    // The API server's own /healthz is not shadowed.
    cluster.sim.clear_request_log();
    let reply = send(addr, &Req::get("/healthz")).await;
    assert_eq!(reply.status, 200);
    let reply = send(addr, &Req::get("/.kgate")).await;
    assert_eq!(
        (reply.status, reply.header("location")),
        (301, Some("/.kgate/"))
    );
    let reply = send(addr, &Req::get("/.kgate/readyz").method("POST")).await;
    assert_eq!(reply.status, 405);
    // DNS rebinding: a foreign Host does not get the pages either.
    let reply = send(addr, &Req::get("/.kgate/").host("evil.example")).await;
    assert_eq!(reply.status, 403);

    let reply = send(
        addr,
        &Req::get("/.kgate/").host(&format!("localhost:{port}")),
    )
    .await;
    assert_eq!(reply.status, 200);
    let html = reply.text();
    assert!(reply.header("content-security-policy").is_some());
    // Every origin link on the index resolves through the gateway.
    let links: Vec<&str> = html
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|l| l.starts_with("http://") && l.contains(".localhost:"))
        .collect();
    assert!(links.len() >= 8, "{links:?}");
    for link in &links {
        let rest = link.strip_prefix("http://").unwrap();
        let (authority, path) = rest.split_at(rest.find('/').unwrap());
        let reply = send(addr, &Req::get(path).host(authority)).await;
        // offline and the simulated kubernetes service have no endpoints; kube-dns serves DNS.
        let expected_failure = ["offline.", "kube-dns.", "kubernetes.default."]
            .iter()
            .any(|s| link.contains(s));
        assert!(
            reply.status < 500 || expected_failure,
            "{link}: {} {}",
            reply.status,
            reply.text()
        );
    }
    assert!(
        links.iter().any(|l| l.contains("shop.demo.svc.localhost")),
        "{links:?}"
    );

    // Readiness follows the API server: down, then not ready within the probe's bound.
    let Cluster { sim, dir: _dir, .. } = cluster;
    sim.shutdown().await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    let started = std::time::Instant::now();
    let reply = send(addr, &Req::get("/.kgate/readyz")).await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(reply.text().starts_with("not ready: "), "{}", reply.text());
    assert!(started.elapsed() < Duration::from_secs(7));
    let reply = send(addr, &Req::get("/.kgate/healthz")).await;
    assert_eq!(reply.status, 200);
}

/// A local app that writes absolute links and redirects to `http://<api>/grafana/...`, where
/// `<api>` is the API server as the client addressed it (an app whose external URL was set to
/// go through the API server): it answers `/page` with HTML and anything else with a 302.
async fn self_linking_app(api: std::sync::Arc<std::sync::OnceLock<String>>) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let api = api.get().cloned().unwrap_or_default();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let page = String::from_utf8_lossy(&head).starts_with("GET /page ");
                let answer = if page {
                    let body = format!(
                        "<html><body><a href=\"http://{api}/grafana/dash\">d</a> \
                         <a href=\"http://elsewhere.example/x\">x</a></body></html>"
                    );
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    format!(
                        "HTTP/1.1 302 Found\r\nLocation: http://{api}/grafana/login\r\n\
                         Content-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                };
                let _ = tcp.write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

/// apimachinery's `rewriteURL` keeps the scheme and host of a URL that names the API server
/// as the request's `Host` did (`sourceRequestHost`), and adds the proxy prefix; kgate's
/// origins undo both, and `kgate proxy` passes them as `kubectl proxy` does.
#[tokio::test(flavor = "multi_thread")]
async fn links_to_the_api_servers_own_host_come_back_to_the_origin() {
    let api = std::sync::Arc::new(std::sync::OnceLock::new());
    let app = self_linking_app(api.clone()).await;
    let cluster = Cluster::start_with(
        simcluster::SimCluster::builder().map_service("demo", "grafana", None, &app),
    )
    .await;
    let _ = api.set(cluster.sim.addr().to_string());
    let sim = cluster.sim.addr();
    let prefix = "/api/v1/namespaces/demo/services/grafana/proxy";

    // Through the API path: the API server's own rewriting, byte for byte what kubectl proxy
    // passes on.
    let kgate_proxy = cluster.kgate_proxy(&[]);
    let location = |reply: &Reply| reply.header("location").unwrap_or_default().to_owned();
    let through_kgate = send(kgate_proxy.addr.tcp(), &Req::get(&format!("{prefix}/go"))).await;
    assert_eq!(through_kgate.status, 302, "{}", through_kgate.text());
    assert_eq!(
        location(&through_kgate),
        format!("http://{sim}{prefix}/grafana/login")
    );
    if let Some(kubectl) = cluster.kubectl_proxy(&[]) {
        let through_kubectl = send(kubectl.addr.tcp(), &Req::get(&format!("{prefix}/go"))).await;
        assert_eq!(location(&through_kubectl), location(&through_kgate));
    }

    // On the service's origin: the API server's host and the prefix are both gone.
    let serve = cluster.kgate_serve(&[]);
    let addr = serve.addr.tcp();
    let origin = host("grafana.demo.svc", addr.port());
    let redirect = send(addr, &Req::get("/go").host(&origin)).await;
    assert_eq!(redirect.status, 302, "{}", redirect.text());
    assert_eq!(location(&redirect), "/grafana/login");
    let page = send(addr, &Req::get("/page").host(&origin)).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let text = page.text();
    assert!(text.contains("href=\"/grafana/dash\""), "{text}");
    assert!(
        text.contains("href=\"http://elsewhere.example/x\""),
        "{text}"
    );
    assert!(!text.contains(&sim.to_string()), "{text}");
}
