//! The real `kgate serve` in headless Chromium, beyond one app: its index page
//! (`http://localhost:<port>/.kgate/`) lists the services with their readiness and every
//! link opens the service at its origin; and a page on one origin can neither read the
//! Kubernetes API nor another service, nor send the API a cross-site `POST`. Writes
//! `target/screenshots/gateway-index.png`.
//!
//! Skips, saying so, where Chromium is not installed.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tests::browser::{Browser, LaunchOptions, check_png};
use tests::cluster::Cluster;
use tests::proc::Proxy;

/// The bound on a browser session, so that a hung browser or gateway fails instead of hanging.
const TEST_BOUND: Duration = Duration::from_secs(90);
const WAIT: Duration = Duration::from_secs(10);

/// A simulated cluster, `kgate serve --port=0` in front of it, and Chromium.
struct Rig {
    /// Kept alive for the test's length.
    _cluster: Cluster,
    browser: Browser,
    kgate: Proxy,
    port: u16,
}

impl Rig {
    /// `None` (after saying so) where Chromium is missing.
    async fn start(test: &str) -> Option<Self> {
        let launch = LaunchOptions {
            viewport: (1100, 900),
            ..LaunchOptions::default()
        };
        let browser = match Browser::launch_with(launch).await {
            Ok(Some(browser)) => browser,
            Ok(None) => {
                eprintln!("SKIPPED {test}: Chromium is not installed (apt-get install chromium)");
                return None;
            }
            Err(error) => panic!("{test}: launching Chromium failed: {error}"),
        };
        let cluster = Cluster::start().await;
        let kgate = {
            let args = vec![
                "serve".to_owned(),
                "--port=0".to_owned(),
                format!("--kubeconfig={}", cluster.kubeconfig.display()),
            ];
            // Building and starting kgate blocks: keep it off the runtime's threads.
            tokio::task::spawn_blocking(move || Proxy::kgate(&args))
                .await
                .unwrap()
        };
        let port = kgate.addr.tcp().port();
        Some(Self {
            _cluster: cluster,
            browser,
            kgate,
            port,
        })
    }
}

async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("the test did not finish in time (is Chromium or kgate hung?)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_page_in_chromium_lists_readiness_and_every_link_opens_its_service() {
    let Some(rig) = Rig::start("gateway_index").await else {
        return;
    };
    bounded(async {
        let page = rig.browser.new_page().await.unwrap();
        let index = format!("http://localhost:{}/.kgate/", rig.port);
        page.goto(&index).await.unwrap();
        let title = page.text("h1").await.unwrap().unwrap_or_default();
        assert!(title.starts_with("kgate: "), "{title}");

        // Readiness shows, with its colour class.
        let rows = page
            .eval(r#"Array.from(document.querySelectorAll('tr[data-search]')).map(r => [r.dataset.search, r.querySelector('.ready').textContent, r.querySelector('.ready').className])"#)
            .await
            .unwrap();
        let rows = rows.as_array().unwrap();
        let row = |needle: &str| {
            rows.iter()
                .find(|r| r[0].as_str().unwrap().starts_with(needle))
                .unwrap_or_else(|| panic!("no row {needle} in {rows:?}"))
                .clone()
        };
        assert_eq!(
            row("demo offline"),
            json!(["demo offline 80 http", "0/0", "ready down"])
        );
        assert_eq!(row("demo shop")[1], "1/1");
        assert_eq!(row("demo shop")[2], "ready ok");

        // Every origin link of a service with ready HTTP endpoints opens that service.
        let links = page
            .eval(r#"Array.from(document.querySelectorAll('tr[data-search]')).filter(r => r.querySelector('.ready.ok')).flatMap(r => Array.from(r.querySelectorAll('a')).map(a => a.href)).filter(h => h.includes('.localhost:'))"#)
            .await
            .unwrap();
        let links: Vec<String> = links
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_owned())
            // kube-dns serves DNS; the kubernetes service's endpoints have no Pod, so its
            // proxy answers 503 as in a real cluster.
            .filter(|l| !l.contains("kube-dns.") && !l.contains("kubernetes.default."))
            .collect();
        assert!(
            links.contains(&format!("http://http.shop.demo.svc.localhost:{}/", rig.port)),
            "{links:?}"
        );
        assert!(links.len() >= 7, "{links:?}");
        for link in &links {
            page.goto(link).await.unwrap();
            let document = page
                .requests()
                .into_iter()
                .find(|r| r.resource_type == "Document" && r.url == *link)
                .unwrap_or_else(|| panic!("{link} was not loaded"));
            // Grafana sends the browser to its login page: a redirect is an answer too.
            let answered = document.done
                && document.failure.is_none()
                && document.status.is_some_and(|s| s < 400);
            assert!(answered, "{link}: {document:?}");
        }

        // The shop's origin link lands on the working app.
        page.goto(&index).await.unwrap();
        page.eval("document.querySelector('a[href*=\"shop.demo.svc.localhost\"]').click()")
            .await
            .unwrap();
        page.wait_for(
            "location.host.startsWith('http.shop.demo.svc.localhost') && \
             document.getElementById('data') && \
             document.getElementById('data').textContent.includes('teapot')",
            WAIT,
        )
        .await
        .unwrap();

        page.goto(&index).await.unwrap();
        let shot = screenshots_dir().join("gateway-index.png");
        let size = page.screenshot_png(&shot).await.unwrap();
        assert_eq!(check_png(&std::fs::read(&shot).unwrap()), Ok(size));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_a_page_on_one_origin_cannot_use_the_api_or_read_another_service() {
    let Some(rig) = Rig::start("origin_isolation").await else {
        return;
    };
    bounded(async {
        let page = rig.browser.new_page().await.unwrap();
        let shop = format!("http://shop.demo.svc.localhost:{}/", rig.port);
        page.goto(&shop).await.unwrap();
        let api = format!("http://localhost:{}/api/v1/namespaces", rig.port);
        let echo = format!("http://echo.demo.svc.localhost:{}/hello", rig.port);

        // Reading the API or another service from the shop's page fails in the browser (a GET
        // may reach another service, as any link may; its answer carries no CORS grant).
        for url in [&api, &echo] {
            let read = page
                .eval(&format!(
                    "fetch('{url}').then(r => r.text()).then(t => 'read: ' + t.slice(0, 80), e => 'blocked: ' + e.name)"
                ))
                .await
                .unwrap();
            assert_eq!(read, "blocked: TypeError", "{url}");
        }
        // ... and the gateway refused the API request itself (not only the browser's CORS).
        wait_for_log(&rig.kgate, "refused a request from a web page to the API").await;

        // A cross-site POST the page cannot read (no-cors) still never reaches the API server.
        let before = rig.kgate.stderr().matches("refused a request from a web page").count();
        let sent = page
            .eval(&format!(
                "fetch('{api}', {{method: 'POST', mode: 'no-cors', body: '{{}}'}}).then(() => 'sent', e => 'failed: ' + e.name)"
            ))
            .await
            .unwrap();
        assert_eq!(sent, "sent");
        let deadline = std::time::Instant::now() + WAIT;
        while rig.kgate.stderr().matches("refused a request from a web page").count() == before {
            assert!(std::time::Instant::now() < deadline, "{}", rig.kgate.stderr());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// Waits until kgate's stderr contains `needle`.
async fn wait_for_log(kgate: &Proxy, needle: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while !kgate.stderr().contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "kgate never logged {needle:?}: {}",
            kgate.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `target/screenshots/` of this workspace, where the tests leave pictures for people.
fn screenshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("screenshots")
}
