//! The proxy verb against the reference (kubectl-proxy-semantics.md §2, §3): routes, the
//! `[scheme:]name[:port]` split, errors, the root redirect, headers removed and added,
//! HTML and `Location` rewriting, CORS stripping, encodings, upgrades, HTTPS endpoints,
//! pods and nodes, streaming, and services mapped onto local processes.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a test failure"
)]

mod common;

use common::{get, send, start, status_json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SHOP: &str = "/api/v1/namespaces/demo/services/shop:http/proxy";
const ECHO: &str = "/api/v1/namespaces/demo/services/echo:http/proxy";

#[tokio::test]
async fn elasticsearch_health_and_settable_status() {
    let (cluster, client) = start().await;
    let path =
        "/api/v1/namespaces/kube-system/services/elasticsearch-logging:9200/proxy/_cluster/health";
    let r = get(&client, &cluster, path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "green");
    cluster.set_es_status("red").unwrap();
    let r = get(&client, &cluster, &format!("{path}?pretty")).await;
    assert!(r.text().contains("\"status\" : \"red\""), "{}", r.text());
    assert!(cluster.set_es_status("blue").is_err());
    // The unnamed port is also reached without a port.
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/kube-system/services/elasticsearch-logging/proxy/",
    )
    .await;
    assert_eq!(r.json()["tagline"], "You Know, for Search");
}

#[tokio::test]
async fn resource_location_errors() {
    let (cluster, client) = start().await;
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/demo/services/a:b:c:d/proxy/",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        status_json(400, "BadRequest", "invalid service request \"a:b:c:d\"")
    );
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/demo/services/ftp:shop:http/proxy/",
    )
    .await;
    assert_eq!(
        r.json()["message"],
        "invalid service request \"ftp:shop:http\""
    );
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/demo/pods/a:b:c:d/proxy/",
    )
    .await;
    assert_eq!(r.json()["message"], "invalid pod request \"a:b:c:d\"");
    let r = get(&client, &cluster, "/api/v1/nodes/a:b:c:d/proxy/").await;
    assert_eq!(r.json()["message"], "invalid node request \"a:b:c:d\"");

    // Numeric port: matched against spec.ports[].port, else 503.
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/demo/services/shop:8080/proxy/",
    )
    .await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json(),
        status_json(
            503,
            "ServiceUnavailable",
            "no service port 8080 found for service \"shop\""
        )
    );
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/demo/services/shop:80/proxy/",
    )
    .await;
    assert_eq!(r.status, 200);
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/demo/services/echo:8080/proxy/",
    )
    .await;
    assert_eq!(r.json()["port"], "admin");

    // Missing service: a numeric port reads the Service, a named one the Endpoints.
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/demo/services/nope:80/proxy/",
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "services \"nope\" not found");
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/demo/services/nope/proxy/",
    )
    .await;
    assert_eq!(r.json()["message"], "endpoints \"nope\" not found");
    assert_eq!(r.json()["details"]["kind"], "endpoints");

    // No subsets: the service name; subsets without a matching ready port: the whole id.
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/demo/services/offline:http/proxy/",
    )
    .await;
    assert_eq!(
        r.json(),
        status_json(
            503,
            "ServiceUnavailable",
            "no endpoints available for service \"offline\""
        )
    );
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/demo/services/shop:nope/proxy/",
    )
    .await;
    assert_eq!(
        r.json()["message"],
        "no endpoints available for service \"shop:nope\""
    );
    cluster.set_endpoints_ready("demo", "shop", false).unwrap();
    let r = get(&client, &cluster, &format!("{SHOP}/")).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["message"].as_str()),
        (
            503,
            Some("no endpoints available for service \"shop:http\"")
        )
    );
    cluster.set_endpoints_ready("demo", "shop", true).unwrap();
    assert_eq!(
        get(&client, &cluster, &format!("{SHOP}/")).await.status,
        200
    );

    // The kubernetes service's endpoints have no Pod targetRef: never proxied.
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/default/services/https:kubernetes:https/proxy/",
    )
    .await;
    assert_eq!(r.status, 503);

    // A port that refuses: the transport error.
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/kube-system/services/kube-dns:dns-tcp/proxy/",
    )
    .await;
    assert_eq!(r.status, 503);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("error trying to reach service: "),
        "{}",
        r.text()
    );

    // dryRun is refused by ConnectResource; methods outside ConnectMethods are not routed.
    let r = get(&client, &cluster, &format!("{ECHO}/?dryRun=All")).await;
    assert_eq!(r.json()["message"], "dryRun is not supported");
    let r = send(
        &client,
        &cluster,
        "TRACE",
        &format!("{ECHO}/"),
        Some(cluster.admin_token()),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn empty_path_redirects_only_get_and_head() {
    let (cluster, client) = start().await;
    let r = get(&client, &cluster, &format!("{ECHO}?a=1&b=2")).await;
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location").as_deref(),
        Some(&*format!("{ECHO}/?a=1&b=2"))
    );
    let r = send(
        &client,
        &cluster,
        "HEAD",
        ECHO,
        Some(cluster.admin_token()),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 301);
    let r = send(
        &client,
        &cluster,
        "POST",
        ECHO,
        Some(cluster.admin_token()),
        &[],
        b"xyz",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.json()["path"].as_str(), r.json()["body_bytes"].as_u64()),
        (Some("/"), Some(3))
    );
}

#[tokio::test]
async fn every_connect_method_reaches_the_endpoint() {
    let (cluster, client) = start().await;
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let r = send(
            &client,
            &cluster,
            method,
            &format!("{ECHO}/m"),
            Some(cluster.admin_token()),
            &[],
            b"",
        )
        .await;
        assert_eq!(r.json()["method"], method);
    }
    let r = send(
        &client,
        &cluster,
        "HEAD",
        &format!("{ECHO}/m"),
        Some(cluster.admin_token()),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn headers_removed_and_added() {
    let (cluster, client) = start().await;
    cluster.clear_request_log();
    let r = send(
        &client,
        &cluster,
        "GET",
        &format!("{ECHO}/a%20b/(c)/?q=1&r=%2F"),
        Some(cluster.admin_token()),
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("impersonate-user", "root"),
            ("accept-encoding", "identity"),
        ],
        b"",
    )
    .await;
    let seen = r.json();
    assert_eq!(seen["path"], "/a%20b/%28c%29/");
    assert_eq!(seen["query"], "q=1&r=%2F");
    let h = &seen["headers"];
    assert!(
        h.get("authorization").is_none(),
        "the credential never reaches the endpoint"
    );
    assert!(h.get("impersonate-user").is_none());
    assert_eq!(h["x-forwarded-uri"][0], format!("{ECHO}/a%20b/%28c%29/"));
    assert_eq!(h["x-forwarded-for"][0], "203.0.113.9, 127.0.0.1");
    assert!(h.get("x-forwarded-host").is_none() && h.get("x-forwarded-proto").is_none());
    assert_eq!(
        h["host"][0],
        cluster.addr().to_string(),
        "the Host the client addressed"
    );
    // The log holds the same view.
    let log = cluster.request_log();
    let last = log
        .iter()
        .rev()
        .find(|l| l.service == "demo/echo:http")
        .unwrap();
    assert!(last.headers.get("authorization").is_none());
    assert_eq!(last.uri, "/a%20b/%28c%29/?q=1&r=%2F");
}

#[tokio::test]
async fn subpaths_are_cleaned_and_keep_the_trailing_slash() {
    let (cluster, client) = start().await;
    let r = get(&client, &cluster, &format!("{ECHO}/a/../b/./c/"))
        .await
        .json();
    assert_eq!(r["path"], "/b/c/");
    let r = get(&client, &cluster, &format!("{ECHO}/x%2Fy"))
        .await
        .json();
    assert_eq!(
        r["path"], "/x/y",
        "the API server decodes %2F before splitting"
    );
}

#[tokio::test]
async fn html_is_rewritten_per_transport_go() {
    let (cluster, client) = start().await;
    let html = get(&client, &cluster, &format!("{SHOP}/")).await;
    assert_eq!(html.status, 200);
    assert!(
        html.header("content-length").is_none()
            || html.header("content-length") == Some(html.body.len().to_string())
    );
    let t = html.text();
    for want in [
        format!(r#"<link rel="stylesheet" href="{SHOP}/static/style.css">"#),
        format!(r#"<script src="{SHOP}/static/app.js" defer></script>"#),
        format!(r#"<img src="{SHOP}/static/logo.gif""#),
        format!(r#"<a href="{SHOP}/products/1">"#),
        format!(r#"<form action="{SHOP}/search" method="get">"#),
        format!(r#"<button formaction="{SHOP}/search">"#),
        r#"<a href="products">"#.to_owned(),
        r#"<a href="https://example.com/help">"#.to_owned(),
    ] {
        assert!(t.contains(&want), "missing {want} in\n{t}");
    }
    // JavaScript and CSS are not rewritten.
    let js = get(&client, &cluster, &format!("{SHOP}/static/app.js"))
        .await
        .text();
    assert!(js.contains("fetch('/api/data'"));
    let css = get(&client, &cluster, &format!("{SHOP}/static/style.css"))
        .await
        .text();
    assert!(css.contains("url(/static/logo.gif)"));
    // Only exactly text/html.
    let x = get(&client, &cluster, &format!("{SHOP}/xhtml"))
        .await
        .text();
    assert!(x.contains(r#"<a href="/products">not rewritten</a>"#));
    // Attributes outside the table, and same-host URLs.
    let body = "<div data-href=\"/a\"></div><img srcset=\"/b 2x\" src=\"/c\"><q cite=\"/d\"></q><video poster=\"/e\"></video>";
    let path = format!("{ECHO}/html?body={}", url_encode(body));
    let t = get(&client, &cluster, &path).await.text();
    assert!(
        t.contains(r#"data-href="/a""#) && t.contains(r#"srcset="/b 2x""#),
        "{t}"
    );
    assert!(
        t.contains(&format!(r#"src="{ECHO}/c""#))
            && t.contains(&format!(r#"cite="{ECHO}/d""#))
            && t.contains(&format!(r#"poster="{ECHO}/e""#)),
        "{t}"
    );
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn compressed_html() {
    let (cluster, client) = start().await;
    let want = format!(r#"<a href="{SHOP}/products">compressed link</a>"#);
    // gzip asked for by the client: decoded, rewritten, encoded again.
    let r = send(
        &client,
        &cluster,
        "GET",
        &format!("{SHOP}/gzip"),
        Some(cluster.admin_token()),
        &[("accept-encoding", "gzip")],
        b"",
    )
    .await;
    assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"));
    let mut text = String::new();
    flate2_free_gunzip(&r.body, &mut text).await;
    assert!(text.contains(&want), "{text}");
    // No Accept-Encoding from the client: Go's transport asks for gzip and decodes it.
    let r = send(
        &client,
        &cluster,
        "GET",
        &format!("{SHOP}/gzip"),
        Some(cluster.admin_token()),
        &[],
        b"",
    )
    .await;
    assert!(r.header("content-encoding").is_none());
    assert!(r.text().contains(&want));
    // Raw DEFLATE.
    let r = send(
        &client,
        &cluster,
        "GET",
        &format!("{SHOP}/deflate"),
        Some(cluster.admin_token()),
        &[("accept-encoding", "deflate")],
        b"",
    )
    .await;
    assert_eq!(r.header("content-encoding").as_deref(), Some("deflate"));
    let mut out = Vec::new();
    async_compression::tokio::bufread::DeflateDecoder::new(&r.body[..])
        .read_to_end(&mut out)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out).contains(&want));
    // Brotli is not understood: passed through, links untouched.
    let r = send(
        &client,
        &cluster,
        "GET",
        &format!("{SHOP}/br"),
        Some(cluster.admin_token()),
        &[("accept-encoding", "br")],
        b"",
    )
    .await;
    assert_eq!(r.header("content-encoding").as_deref(), Some("br"));
    let mut out = Vec::new();
    async_compression::tokio::bufread::BrotliDecoder::new(&r.body[..])
        .read_to_end(&mut out)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out).contains(r#"<a href="/products">compressed link</a>"#));
}

async fn flate2_free_gunzip(data: &[u8], out: &mut String) {
    let mut buf = Vec::new();
    async_compression::tokio::bufread::GzipDecoder::new(data)
        .read_to_end(&mut buf)
        .await
        .unwrap();
    out.push_str(std::str::from_utf8(&buf).unwrap());
}

#[tokio::test]
async fn location_is_rewritten_and_cors_dropped() {
    let (cluster, client) = start().await;
    // The login redirect flow: Location rewritten, cookie passed with Path=/.
    let r = send(
        &client,
        &cluster,
        "POST",
        &format!("{SHOP}/login"),
        Some(cluster.admin_token()),
        &[("content-type", "application/x-www-form-urlencoded")],
        b"user=bob&password=x",
    )
    .await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location").as_deref(),
        Some(&*format!("{SHOP}/account"))
    );
    assert_eq!(
        r.header("set-cookie").as_deref(),
        Some("session=bob; Path=/; HttpOnly; SameSite=Lax")
    );
    // A body under a Location header is never rewritten, whatever the status.
    let r = get(&client, &cluster, &format!("{SHOP}/located")).await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("location").as_deref(),
        Some(&*format!("{SHOP}/products/1"))
    );
    assert!(
        r.text()
            .contains(r#"<a href="/products/1">new product</a>"#)
    );
    // Same host as the request: scheme and host kept; other host: unchanged.
    let r = get(&client, &cluster, &format!("{SHOP}/redirect-absolute")).await;
    assert_eq!(
        r.header("location").unwrap(),
        format!("http://{}{SHOP}/account", cluster.addr())
    );
    for (to, want) in [
        (
            "http://example.com/x".to_owned(),
            "http://example.com/x".to_owned(),
        ),
        ("relative/x".to_owned(), "relative/x".to_owned()),
        ("/x/".to_owned(), format!("{ECHO}/x/")),
    ] {
        let r = get(
            &client,
            &cluster,
            &format!("{ECHO}/redirect?to={}", url_encode(&to)),
        )
        .await;
        assert_eq!(r.header("location").unwrap(), want);
    }
    // CORS headers are dropped.
    let r = get(&client, &cluster, &format!("{SHOP}/api/data")).await;
    assert_eq!(r.status, 200);
    for h in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
    ] {
        assert!(r.header(h).is_none(), "{h}");
    }
}

#[tokio::test]
async fn websocket_upgrade_passes_through_without_query() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let (cluster, _) = start().await;
    cluster.clear_request_log();
    let url = format!("wss://{}{SHOP}/ws?token=abc", cluster.addr());
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", cluster.admin_token()).parse().unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::client_async(req, common::raw_tls(&cluster).await)
        .await
        .unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("hello")).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(echoed, Message::text("hello"));
    ws.close(None).await.unwrap();

    let log = cluster.request_log();
    let seen = log
        .iter()
        .find(|l| l.service == "demo/shop:http" && l.uri.starts_with("/ws"))
        .unwrap();
    assert_eq!(
        seen.uri, "/ws",
        "tryUpgrade uses the location without the query"
    );
    assert!(seen.headers.get("x-forwarded-uri").is_none());
    assert!(seen.headers.get("authorization").is_none());
    assert_eq!(seen.headers.get("x-forwarded-for").unwrap(), "127.0.0.1");
}

#[tokio::test]
async fn any_upgrade_is_raw_bytes() {
    let (cluster, _) = start().await;
    let mut tls = common::raw_tls(&cluster).await;
    let head = format!(
        "GET {ECHO}/upgrade HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        cluster.addr(),
        cluster.admin_token()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    tls.write_all(b"ping-pong\x00\xff").await.unwrap();
    let mut echo = [0u8; 11];
    tls.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping-pong\x00\xff");

    // A backend that refuses the upgrade with a non-error status: 500 from the responder.
    let mut tls = common::raw_tls(&cluster).await;
    let head = format!(
        "GET {SHOP}/ HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        cluster.addr(),
        cluster.admin_token()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("\"code\":500}") {
        let n = tls.read(&mut buf).await.unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 500"), "{text}");
    assert!(
        text.contains("invalid upgrade response: status code 200"),
        "{text}"
    );
}

#[tokio::test]
async fn https_endpoints_are_reached_without_verification() {
    let (cluster, client) = start().await;
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/kube-system/services/https:metrics-server:https/proxy/healthz",
    )
    .await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "ok"));
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/kube-system/services/https:metrics-server:443/proxy/",
    )
    .await;
    assert!(r.text().contains(r#"<a href="/api/v1/namespaces/kube-system/services/https:metrics-server:443/proxy/healthz">"#), "{}", r.text());
    // Plain HTTP to the TLS port fails as it would against a real cluster.
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/kube-system/services/metrics-server:https/proxy/healthz",
    )
    .await;
    assert_eq!(r.status, 503);
}

#[tokio::test]
async fn pods_and_nodes() {
    let (cluster, client) = start().await;
    let pods = get(
        &client,
        &cluster,
        "/api/v1/namespaces/demo/pods?labelSelector=app%3Decho",
    )
    .await
    .json();
    let pod = pods["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_port = pods["items"][0]["spec"]["containers"][0]["ports"][1]["containerPort"]
        .as_u64()
        .unwrap();
    // No port: the first container port.
    let r = get(
        &client,
        &cluster,
        &format!("/api/v1/namespaces/demo/pods/{pod}/proxy/p"),
    )
    .await;
    assert_eq!(r.json()["port"], "http");
    let r = get(
        &client,
        &cluster,
        &format!("/api/v1/namespaces/demo/pods/{pod}:{admin_port}/proxy/p"),
    )
    .await;
    assert_eq!(r.json()["port"], "admin");
    let r = get(
        &client,
        &cluster,
        &format!("/api/v1/namespaces/demo/pods/{pod}:{admin_port}/proxy/p"),
    )
    .await;
    assert_eq!(
        r.json()["headers"]["x-forwarded-uri"][0],
        format!("/api/v1/namespaces/demo/pods/{pod}:{admin_port}/proxy/p")
    );
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/demo/pods/nope/proxy/",
    )
    .await;
    assert_eq!(r.json()["message"], "pods \"nope\" not found");

    let node = simcluster::NODE_NAME;
    let r = get(
        &client,
        &cluster,
        &format!("/api/v1/nodes/{node}/proxy/healthz"),
    )
    .await;
    assert_eq!(r.text(), "ok");
    let r = get(
        &client,
        &cluster,
        &format!("/api/v1/nodes/{node}/proxy/pods"),
    )
    .await;
    assert_eq!(r.json()["kind"], "PodList");
    let r = get(&client, &cluster, "/api/v1/nodes/nope/proxy/healthz").await;
    assert_eq!(r.json()["message"], "nodes \"nope\" not found");
}

#[tokio::test]
async fn streaming_bodies() {
    let (cluster, client) = start().await;
    let bulk = "/api/v1/namespaces/demo/services/bulk:http/proxy";
    let n = 3 * 1024 * 1024 + 17;
    let r = get(&client, &cluster, &format!("{bulk}/bytes/{n}")).await;
    assert_eq!(r.body.len(), n);
    let upload = vec![7u8; 2 * 1024 * 1024 + 3];
    let r = send(
        &client,
        &cluster,
        "PUT",
        &format!("{bulk}/upload"),
        Some(cluster.admin_token()),
        &[],
        &upload,
    )
    .await;
    assert_eq!(r.json()["received"], upload.len());
    assert_eq!(cluster.last_upload_bytes(), upload.len() as u64);
    let r = get(
        &client,
        &cluster,
        &format!("{bulk}/events?count=3&interval_ms=10"),
    )
    .await;
    let lines: Vec<&str> = r
        .body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[2].contains("tick 2"));
}

#[tokio::test]
async fn mapped_service_reaches_a_local_process() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A local "app": answers with the path it got.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let body = format!("<a href=\"/x\">{}</a>", req.uri().path());
                        let mut resp = http::Response::new(http_body_util::Full::new(
                            bytes::Bytes::from(body),
                        ));
                        resp.headers_mut()
                            .insert("content-type", "text/html".parse().unwrap());
                        Ok::<_, std::convert::Infallible>(resp)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    let spec = format!("monitoring/grafana:3000=http://{addr}");
    let cluster = simcluster::SimCluster::builder()
        .sample_apps(false)
        .service(simcluster::ServiceMapping::parse(&spec).unwrap())
        .map_service(
            "team",
            "app",
            Some("web"),
            &format!("http://localhost:{}", addr.port()),
        )
        .start()
        .await
        .unwrap();
    let client = common::client(&cluster);
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/monitoring/services/grafana:3000/proxy/hello",
    )
    .await;
    assert_eq!(
        r.text(),
        "<a href=\"/api/v1/namespaces/monitoring/services/grafana:3000/proxy/x\">/hello</a>"
    );
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces/team/services/app:web/proxy/y",
    )
    .await;
    assert!(r.text().ends_with(">/y</a>"), "{}", r.text());
    let ns = get(&client, &cluster, "/api/v1/namespaces/team").await;
    assert_eq!(ns.status, 200, "the namespace is created");
    assert!(simcluster::ServiceMapping::parse("nope").is_err());
    assert!(simcluster::ServiceMapping::parse("Bad/x=http://1.2.3.4").is_err());
    let bad = simcluster::SimCluster::builder()
        .sample_apps(false)
        .map_service("a", "b", None, "ftp://x")
        .start()
        .await;
    assert!(bad.is_err());
    cluster.shutdown().await;
}
