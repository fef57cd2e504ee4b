//! The documented contrast: the browser-unfriendly `demo/shop` app loaded in headless Chromium
//! through the real `kubectl proxy` at the kubectl-style path prefix
//! (`/api/v1/namespaces/demo/services/shop:http/proxy/`), with every breakage asserted exactly
//! as observed (summarised in `tests/BROWSER-CONTRAST.md`). If one of these assertions starts
//! failing, the API server or kubectl changed behaviour and the contrast document must change
//! with it.
//!
//! Skips, saying so, where `kubectl` or Chromium is not installed.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tests::browser::{Browser, LaunchOptions, Page, check_png};
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// The bound on a whole test, so that a hung browser or kubectl fails instead of hanging CI.
const TEST_BOUND: Duration = Duration::from_secs(40);
const WAIT: Duration = Duration::from_secs(10);
const PREFIX: &str = "/api/v1/namespaces/demo/services/shop:http/proxy";

/// A simulated cluster, `kubectl proxy --port=0` in front of it, and Chromium.
struct Rig {
    cluster: simcluster::SimCluster,
    browser: Browser,
    /// `http://127.0.0.1:<kubectl proxy port>`.
    proxy: String,
    _kubectl: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// `None` (after saying so) where kubectl or Chromium is missing.
    async fn start(test: &str) -> Option<Self> {
        let Some(kubectl) = find_on_path("kubectl") else {
            eprintln!("SKIPPED {test}: kubectl is not installed");
            return None;
        };
        let browser = match Browser::launch_with(LaunchOptions::default()).await {
            Ok(Some(browser)) => browser,
            Ok(None) => {
                eprintln!("SKIPPED {test}: Chromium is not installed (apt-get install chromium)");
                return None;
            }
            Err(error) => panic!("{test}: launching Chromium failed: {error}"),
        };
        let cluster = simcluster::SimCluster::builder().start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        cluster.write_kubeconfig(&kubeconfig).unwrap();
        let mut child = tokio::process::Command::new(kubectl)
            .arg("proxy")
            .arg("--port=0")
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("kubectl proxy did not print its start-up line in time")
            .unwrap()
            .expect("kubectl proxy exited before serving");
        let addr = line
            .strip_prefix("Starting to serve on ")
            .unwrap_or_else(|| panic!("unexpected kubectl proxy output: {line}"))
            .to_owned();
        Some(Self {
            cluster,
            browser,
            proxy: format!("http://{addr}"),
            _kubectl: child,
            _dir: dir,
        })
    }

    /// The app's URL at the kubectl-style prefix.
    fn app(&self, path: &str) -> String {
        format!("{}{PREFIX}{path}", self.proxy)
    }

    /// The paths (with query) the shop app itself received.
    fn shop_saw(&self) -> Vec<String> {
        self.cluster
            .request_log()
            .into_iter()
            .filter(|r| r.service == "demo/shop:http")
            .map(|r| format!("{} {}", r.method, r.uri))
            .collect()
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("the test did not finish in time (is Chromium or kubectl hung?)");
}

/// The status of the one request to `url`, failing with the whole log if there is not one.
fn status_of(page: &Page, url: &str) -> Option<u16> {
    let requests = page.requests();
    let matching: Vec<_> = requests.iter().filter(|r| r.url == url).collect();
    assert!(!matching.is_empty(), "no request to {url} in {requests:#?}");
    matching[0].status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_prefix_html_assets_load_but_css_urls_fetch_and_websocket_miss_the_app() {
    bounded(async {
        let Some(rig) = Rig::start("prefix_home").await else {
            return;
        };
        let page = rig.browser.new_page().await.unwrap();
        page.goto(&rig.app("/")).await.unwrap();
        // app.js runs on DOMContentLoaded: wait until both of its results are shown.
        page.wait_for(
            "document.getElementById('data').textContent !== 'loading...' && \
             document.getElementById('ws').textContent !== 'connecting...'",
            WAIT,
        )
        .await
        .unwrap();
        let proxy = &rig.proxy;

        // 1. Assets named in HTML attributes load: the API server rewrote them to the prefix.
        for asset in ["/static/style.css", "/static/app.js", "/static/logo.gif"] {
            assert_eq!(status_of(&page, &rig.app(asset)), Some(200), "{asset}");
        }
        let stylesheet = page
            .eval("document.querySelector('link[rel=stylesheet]').getAttribute('href')")
            .await
            .unwrap();
        assert_eq!(stylesheet, format!("{PREFIX}/static/style.css"));

        // 2. A URL inside the stylesheet is not rewritten: the header's background image goes
        //    to the proxy's root, which is the Kubernetes API, and is a 404.
        let background = page
            .wait_for_request(|url| url == format!("{proxy}/static/logo.gif"), WAIT)
            .await
            .unwrap();
        assert_eq!(background.status, Some(404), "{background:?}");

        // 3. fetch('/api/data') reaches the Kubernetes API, not the app: a 404 whose body is a
        //    Kubernetes Status, which the app then shows as if it were its data.
        let api = page
            .wait_for_request(|url| url == format!("{proxy}/api/data"), WAIT)
            .await
            .unwrap();
        assert_eq!(api.status, Some(404), "{api:?}");
        assert_eq!(api.resource_type, "Fetch");
        let shown: serde_json::Value = serde_json::from_str(
            page.eval("document.getElementById('data').textContent")
                .await
                .unwrap()
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(shown["kind"], "Status");
        assert_eq!(shown["reason"], "NotFound");
        assert_eq!(
            shown["message"],
            "the server could not find the requested resource"
        );

        // 4. The WebSocket goes to ws://<proxy>/ws, the API again: the handshake gets a 404.
        let sockets = page.websockets();
        assert_eq!(sockets.len(), 1, "{sockets:#?}");
        let ws = &sockets[0];
        assert_eq!(ws.url, format!("ws://{}/ws", &proxy["http://".len()..]));
        assert_eq!(ws.status, None, "{ws:?}");
        assert!(ws.received.is_empty(), "{ws:?}");
        assert_eq!(
            ws.errors,
            ["Error during WebSocket handshake: Unexpected response code: 404"]
        );
        assert_eq!(
            page.eval("document.getElementById('ws').textContent")
                .await
                .unwrap(),
            "websocket failed"
        );

        // The browser's console shows the three failures.
        for expected in [
            format!("status of 404 (Not Found) ({proxy}/static/logo.gif)"),
            format!("status of 404 (Not Found) ({proxy}/api/data)"),
            format!(
                "WebSocket connection to 'ws://{}/ws' failed",
                &proxy["http://".len()..]
            ),
        ] {
            page.wait_for_console(|m| m.level == "error" && m.text.contains(&expected), WAIT)
                .await
                .unwrap();
        }

        // The app itself never saw /api/data or /ws: only the page and its HTML assets.
        let saw = rig.shop_saw();
        assert!(saw.contains(&"GET /".to_owned()), "{saw:?}");
        assert!(saw.contains(&"GET /static/app.js".to_owned()), "{saw:?}");
        assert!(
            !saw.iter()
                .any(|r| r.contains("/api/data") || r.ends_with("/ws")),
            "{saw:?}"
        );

        let shot = screenshots_dir().join("prefix-shop.png");
        let size = page.screenshot_png(&shot).await.unwrap();
        assert_eq!(check_png(&std::fs::read(&shot).unwrap()), Ok(size));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_prefix_login_works_but_its_cookie_and_the_api_are_shared_with_every_service() {
    bounded(async {
        let Some(rig) = Rig::start("prefix_login").await else {
            return;
        };
        let page = rig.browser.new_page().await.unwrap();

        // The account page redirects to the login page: the API server rewrote Location.
        page.goto(&rig.app("/account")).await.unwrap();
        let redirect = page
            .requests()
            .into_iter()
            .find(|r| r.url == rig.app("/account"))
            .unwrap();
        assert_eq!(redirect.status, Some(302));
        assert_eq!(
            redirect.location.as_deref(),
            Some(format!("{PREFIX}/login?next=/account").as_str())
        );
        assert_eq!(page.url().await.unwrap(), rig.app("/login?next=/account"));

        // The form's action was rewritten too, so logging in reaches the app, and its 302 to
        // /account is rewritten to the prefix: the login lands on the right page.
        let action = page
            .eval("document.querySelector('form').getAttribute('action')")
            .await
            .unwrap();
        assert_eq!(action, format!("{PREFIX}/login"));
        page.eval("document.querySelector('form').submit()")
            .await
            .unwrap();
        page.wait_for(
            &format!(
                "location.href === '{}' && document.readyState === 'complete'",
                rig.app("/account")
            ),
            WAIT,
        )
        .await
        .unwrap();
        let text = page
            .eval("document.querySelector('main').innerText")
            .await
            .unwrap();
        assert!(
            text.as_str().unwrap().contains("Logged in as demo"),
            "{text}"
        );
        let post = page
            .requests()
            .into_iter()
            .find(|r| r.method == "POST")
            .unwrap();
        assert_eq!(post.status, Some(302));
        assert_eq!(
            post.location.as_deref(),
            Some(format!("{PREFIX}/account").as_str())
        );

        // But the cookie's `Path=/` is the root of the proxy's one origin: it belongs to
        // 127.0.0.1:<port>/, so every service and the API get it.
        let cookies = rig.browser.all_cookies().await.unwrap();
        assert_eq!(cookies.len(), 1, "{cookies:#?}");
        let session = &cookies[0];
        assert_eq!(
            (session.name.as_str(), session.value.as_str()),
            ("session", "demo")
        );
        assert_eq!(session.domain, "127.0.0.1");
        assert_eq!(session.path, "/");
        let other_service = format!(
            "{}/api/v1/namespaces/demo/services/echo:http/proxy/",
            rig.proxy
        );
        let shared = page.cookies_for(&[other_service.as_str()]).await.unwrap();
        assert_eq!(shared, cookies);

        // The shop's JavaScript can call another service, which receives the shop's cookie...
        rig.cluster.clear_request_log();
        let status = page
            .eval(&format!("fetch('{other_service}').then(r => r.status)"))
            .await
            .unwrap();
        assert_eq!(status, 200);
        let echo_cookie: Vec<Option<String>> = rig
            .cluster
            .request_log()
            .into_iter()
            .filter(|r| r.service == "demo/echo:http")
            .map(|r| {
                r.headers
                    .get("cookie")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(echo_cookie, [Some("session=demo".to_owned())]);

        // ...and the Kubernetes API itself, with the kubeconfig's credentials, which
        // `kubectl proxy` adds to every request.
        let namespaces = page
            .eval("fetch('/api/v1/namespaces').then(r => r.json()).then(j => j.kind)")
            .await
            .unwrap();
        assert_eq!(namespaces, "NamespaceList");
    })
    .await;
}

/// `target/screenshots/` of this workspace, where the tests leave pictures for people.
fn screenshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("screenshots")
}
