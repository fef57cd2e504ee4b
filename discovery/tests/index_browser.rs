//! The index page in headless Chromium (skipped visibly when Chromium is not installed).
//!
//! The page is rendered from simcluster's real services and served by a minimal stand-in for
//! the gateway on a loopback port: `/` is the index, API proxy paths and origin hosts are
//! forwarded with `GET` through the real authenticated client. The test checks that
//! readiness shows, the filter and the keyboard work, that origin and API links resolve to the
//! services, and writes light and dark screenshots.

use std::sync::Arc;
use std::time::Duration;

use discovery::KubeApi;
use discovery::index::{IndexOptions, render_index};
use discovery::urls::GatewayAddr;
use discovery::{NamespaceScope, list_services};
use serde_json::json;
use simcluster::SimCluster;
use tests::browser::{Browser, LaunchOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use urlgrammar::{Rest, Scheme, Target};

/// Serves `index` at `/`, and forwards API proxy paths and origin hosts to the API server.
async fn stand_in_gateway(listener: TcpListener, index: Arc<String>, client: auth::ApiClient) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            return;
        };
        let (index, client) = (index.clone(), client.clone());
        tokio::spawn(async move { serve_one(sock, &index, &client).await });
    }
}

async fn serve_one(mut sock: TcpStream, index: &str, client: &auth::ApiClient) {
    let mut buf = vec![0u8; 8192];
    let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await else {
        return;
    };
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let host = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Host: ")
                .or_else(|| l.strip_prefix("host: "))
        })
        .unwrap_or_default()
        .trim()
        .to_owned();
    let (status, ctype, body) = if let Ok(origin) = Target::parse_host(&host) {
        let mut target = origin.target;
        if target.scheme() == Scheme::Unspecified && target.effective_scheme() == Scheme::Https {
            target = target.with_scheme(Scheme::Https);
        }
        forward(
            client,
            &target.api_path(&Rest::parse(&path).unwrap_or_default()),
        )
        .await
    } else if path == "/" {
        (
            200,
            "text/html; charset=utf-8".to_owned(),
            index.as_bytes().to_vec(),
        )
    } else if path.starts_with("/api/v1/") {
        forward(client, &path).await
    } else {
        (
            404,
            "text/plain".to_owned(),
            b"404 page not found\n".to_vec(),
        )
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(&body).await;
}

async fn forward(client: &auth::ApiClient, path: &str) -> (u16, String, Vec<u8>) {
    match client.get(path, 1 << 20).await {
        Ok(r) => (
            r.status,
            r.content_type
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
            r.body.to_vec(),
        ),
        Err(e) => (502, "text/plain".to_owned(), e.to_string().into_bytes()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_page_in_chromium() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cluster = SimCluster::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let args = config::KubeArgs {
        kubeconfig: Some(kubeconfig),
        ..Default::default()
    };
    let config = config::ClusterConfig::load_with_env(&args, &config::Env::empty()).unwrap();
    let client = auth::ApiClient::new(&config, auth::ClientOptions::default()).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let services = list_services(&client, &NamespaceScope::All, None)
        .await
        .unwrap();
    let opts = IndexOptions {
        title: "kgate: simcluster".to_owned(),
        gateway: GatewayAddr {
            port,
            context: None,
            token: None,
        },
    };
    let index = Arc::new(render_index(&services, &opts));
    tokio::spawn(stand_in_gateway(listener, index, client));

    let launch = LaunchOptions {
        viewport: (1100, 900),
        ..Default::default()
    };
    let Some(browser) = Browser::launch_with(launch).await.unwrap() else {
        eprintln!(
            "SKIPPED: no Chromium found (set KGATE_CHROMIUM); the index page was not tested in a browser"
        );
        return;
    };
    let page = browser.new_page().await.unwrap();
    let home = format!("http://127.0.0.1:{port}/");
    page.goto(&home).await.unwrap();
    assert_eq!(
        page.text("h1").await.unwrap().as_deref(),
        Some("kgate: simcluster")
    );

    // Readiness shows, with its colour class.
    let readiness = page
        .eval(r#"Array.from(document.querySelectorAll('tr[data-search]')).map(r => [r.dataset.search, r.querySelector('.ready').textContent, r.querySelector('.ready').className])"#)
        .await
        .unwrap();
    let rows = readiness.as_array().unwrap();
    let row = |needle: &str| {
        rows.iter()
            .find(|r| r[0].as_str().unwrap().starts_with(needle))
            .unwrap()
            .clone()
    };
    assert_eq!(
        row("demo offline"),
        json!(["demo offline 80 http", "0/0", "ready down"])
    );
    assert_eq!(
        row("kube-system elasticsearch-logging"),
        json!(["kube-system elasticsearch-logging 9200 ", "1/1", "ready ok"])
    );

    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("discovery-index");
    let (w, h) = page
        .screenshot_png(shots.join("index-light.png"))
        .await
        .unwrap();
    assert_eq!((w, h), (1100, 900));
    let light_bg = page
        .eval("getComputedStyle(document.body).backgroundColor")
        .await
        .unwrap();
    page.call(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    )
    .await
    .unwrap();
    let dark_bg = page
        .eval("getComputedStyle(document.body).backgroundColor")
        .await
        .unwrap();
    assert_eq!(light_bg, json!("rgb(255, 255, 255)"));
    assert_eq!(dark_bg, json!("rgb(13, 17, 23)"));
    page.screenshot_png(shots.join("index-dark.png"))
        .await
        .unwrap();

    // Keyboard: `/` focuses the filter (it has autofocus; leave it first); typing filters;
    // Escape clears.
    page.eval("document.activeElement.blur(), document.activeElement.tagName")
        .await
        .unwrap();
    page.call(
        "Input.dispatchKeyEvent",
        json!({"type": "keyDown", "key": "/", "code": "Slash", "text": "/"}),
    )
    .await
    .unwrap();
    page.call(
        "Input.dispatchKeyEvent",
        json!({"type": "keyUp", "key": "/", "code": "Slash"}),
    )
    .await
    .unwrap();
    assert_eq!(
        page.eval("document.activeElement.id").await.unwrap(),
        json!("filter")
    );
    page.call("Input.insertText", json!({"text": "graf"}))
        .await
        .unwrap();
    let visible = "Array.from(document.querySelectorAll('tr[data-search]')).filter(r => !r.hidden).map(r => r.dataset.search)";
    assert_eq!(
        page.eval(visible).await.unwrap(),
        json!(["monitoring grafana 3000 http"])
    );
    assert_eq!(
        page.eval("document.querySelector('section[data-ns=demo]').hidden")
            .await
            .unwrap(),
        json!(true)
    );
    page.call("Input.insertText", json!({"text": "zzz"}))
        .await
        .unwrap();
    assert_eq!(
        page.eval("document.getElementById('no-match').hidden")
            .await
            .unwrap(),
        json!(false)
    );
    page.call(
        "Input.dispatchKeyEvent",
        json!({"type": "keyDown", "key": "Escape", "code": "Escape", "windowsVirtualKeyCode": 27}),
    )
    .await
    .unwrap();
    assert_eq!(
        page.eval(&format!("{visible}.length")).await.unwrap(),
        json!(rows.len())
    );

    // Every link of a service with ready endpoints resolves (origin and API path) to the service.
    let links = page
        .eval(r#"Array.from(document.querySelectorAll('tr[data-search]')).filter(r => r.querySelector('.ready.ok')).flatMap(r => Array.from(r.querySelectorAll('a')).map(a => a.href))"#)
        .await
        .unwrap();
    let links: Vec<String> = links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    assert!(
        links.contains(&format!(
            "http://http.grafana.monitoring.svc.localhost:{port}/"
        )),
        "{links:?}"
    );
    assert!(
        links.contains(&format!(
            "http://127.0.0.1:{port}/api/v1/namespaces/demo/services/echo:admin/proxy/"
        )),
        "{links:?}"
    );
    let mut checked = 0;
    for link in links.iter().filter(|l| {
        l.contains("grafana")
            || l.contains("/echo")
            || l.contains("echo.demo")
            || l.contains("elasticsearch")
    }) {
        page.goto(link).await.unwrap();
        let last = page
            .requests()
            .into_iter()
            .rev()
            .find(|r| r.resource_type == "Document")
            .unwrap();
        assert_eq!(last.url, *link);
        // The service answered (Grafana redirects to its login page: a 302 is an answer too; the
        // stand-in does not forward `Location`).
        let answered = last.done && last.failure.is_none() && last.status.is_some_and(|s| s < 400);
        assert!(answered, "{link}: {last:?}");
        checked += 1;
    }
    assert!(checked >= 8, "{checked} links checked");

    // Enter in the filter opens the first visible link: the service's origin. The filter has
    // `autofocus`, which Chromium applies at a rendering update after the load: wait for it,
    // or the text goes nowhere.
    page.goto(&home).await.unwrap();
    page.wait_for(
        "document.activeElement && document.activeElement.id === 'filter'",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    page.call("Input.insertText", json!({"text": "echo admin"}))
        .await
        .unwrap();
    page.wait_for(&format!("{visible}.length === 1"), Duration::from_secs(10))
        .await
        .unwrap();
    page.call(
        "Input.dispatchKeyEvent",
        json!({"type": "keyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}),
    )
    .await
    .unwrap();
    let url = page
        .wait_for(
            "location.host.startsWith('admin.echo.demo.svc.localhost') && location.href",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(
        url,
        json!(format!("http://admin.echo.demo.svc.localhost:{port}/"))
    );
    browser.close().await.unwrap();
}
