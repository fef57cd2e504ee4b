//! The other side of `tests/BROWSER-CONTRAST.md`: the same browser-unfriendly `demo/shop` app,
//! loaded in headless Chromium through `kgate serve` at its service origin
//! `http://shop.demo.svc.localhost:<port>/` (Chromium resolves `*.localhost` to loopback by
//! itself). Every asset loads, the login redirect lands on the right page, the cookie comes back
//! and stays on that one origin, `fetch('/api/data')` returns the app's data, the WebSocket
//! echoes, and `/api/...` on the origin never reaches the Kubernetes API. Writes
//! `target/screenshots/origin-shop.png`.
//!
//! Skips, saying so, where Chromium is not installed.

use std::path::PathBuf;
use std::time::Duration;

use tests::browser::{Browser, LaunchOptions, check_png};
use tests::proc::Proxy;

/// The bound on a whole test, so that a hung browser or gateway fails instead of hanging CI.
const TEST_BOUND: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(10);

/// A simulated cluster, `kgate serve --port=0` in front of it, and Chromium.
struct Rig {
    cluster: simcluster::SimCluster,
    browser: Browser,
    /// The gateway's port on 127.0.0.1.
    port: u16,
    _kgate: Proxy,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// `None` (after saying so) where Chromium is missing.
    async fn start(test: &str) -> Option<Self> {
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
        let args = vec![
            "serve".to_owned(),
            "--port=0".to_owned(),
            format!("--kubeconfig={}", kubeconfig.display()),
        ];
        // Building and starting kgate blocks: keep it off the runtime's threads.
        let kgate = tokio::task::spawn_blocking(move || Proxy::kgate(&args))
            .await
            .unwrap();
        let port = kgate.addr.tcp().port();
        Some(Self {
            cluster,
            browser,
            port,
            _kgate: kgate,
            _dir: dir,
        })
    }

    /// `http://<service>.demo.svc.localhost:<port><path>`.
    fn origin(&self, service: &str, path: &str) -> String {
        format!("http://{service}.demo.svc.localhost:{}{path}", self.port)
    }

    /// Requests the shop app received, as `METHOD /path` with the `Cookie` header if any.
    fn shop_saw(&self) -> Vec<(String, Option<String>)> {
        self.cluster
            .request_log()
            .into_iter()
            .filter(|r| r.service == "demo/shop:http")
            .map(|r| {
                let cookie = r
                    .headers
                    .get("cookie")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                (format!("{} {}", r.method, r.uri), cookie)
            })
            .collect()
    }
}

async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("the test did not finish in time (is Chromium or kgate hung?)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_its_origin_every_asset_fetch_and_websocket_work() {
    // Starting is bounded on its own (Chromium's start-up timeout, kgate's start-up line); the
    // bound below is for the browser session, not for building kgate on a cold target dir.
    let Some(rig) = Rig::start("origin_home").await else {
        return;
    };
    bounded(async {
        let page = rig.browser.new_page().await.unwrap();
        let home = rig.origin("shop", "/");
        page.goto(&home).await.unwrap();
        let document = page.requests().into_iter().find(|r| r.url == home).unwrap();
        assert_eq!(
            document.status,
            Some(200),
            "kgate did not serve the origin {home}; it answered: {:?}",
            page.eval("document.body.innerText").await
        );
        page.wait_for(
            "document.getElementById('data').textContent !== 'loading...' && \
             document.getElementById('ws').textContent !== 'connecting...'",
            WAIT,
        )
        .await
        .unwrap();
        // The stylesheet's background image is requested after the load event at the latest
        // when the header is painted; wait for it before judging the log.
        page.wait_for_request(|url| url == rig.origin("shop", "/static/logo.gif"), WAIT)
            .await
            .unwrap();

        // Every request the page made stayed on the origin and succeeded.
        let requests = page.requests();
        for request in &requests {
            assert!(
                request.url.starts_with(&home),
                "left the origin: {request:?}"
            );
        }
        let failed: Vec<_> = requests.iter().filter(|r| r.done && !r.ok()).collect();
        assert!(failed.is_empty(), "failed requests: {failed:#?}");
        for path in [
            "/",
            "/static/style.css",
            "/static/app.js",
            "/static/logo.gif",
            "/api/data",
        ] {
            let url = rig.origin("shop", path);
            assert!(
                requests.iter().any(|r| r.url == url && r.ok()),
                "no successful request to {url} in {requests:#?}"
            );
        }
        // The HTML reached the page as the app wrote it: no API prefix left in it.
        let stylesheet = page
            .eval("document.querySelector('link[rel=stylesheet]').getAttribute('href')")
            .await
            .unwrap();
        assert_eq!(stylesheet, "/static/style.css");

        // fetch('/api/data') returned the app's data.
        let data: serde_json::Value =
            serde_json::from_str(&page.text("#data").await.unwrap().unwrap()).unwrap();
        assert_eq!(data["items"][0]["name"], "teapot", "{data}");

        // The WebSocket to /ws was accepted and echoed.
        assert_eq!(
            page.text("#ws").await.unwrap().as_deref(),
            Some("echo: hello over websocket")
        );
        let sockets = page.websockets();
        assert_eq!(sockets.len(), 1, "{sockets:#?}");
        assert_eq!(
            sockets[0].url,
            format!("ws://shop.demo.svc.localhost:{}/ws", rig.port)
        );
        assert_eq!(sockets[0].status, Some(101), "{sockets:#?}");
        assert_eq!(sockets[0].received, ["hello over websocket"]);

        let errors = page.console_errors();
        assert!(errors.is_empty(), "console errors: {errors:#?}");

        // The app saw its own paths, /api/data and /ws included.
        let saw: Vec<String> = rig.shop_saw().into_iter().map(|(r, _)| r).collect();
        for expected in ["GET /", "GET /static/logo.gif", "GET /api/data", "GET /ws"] {
            assert!(
                saw.iter().any(|r| r == expected),
                "{expected} not in {saw:?}"
            );
        }

        let shot = screenshots_dir().join("origin-shop.png");
        let size = page.screenshot_png(&shot).await.unwrap();
        assert_eq!(check_png(&std::fs::read(&shot).unwrap()), Ok(size));
        assert_eq!(size, LaunchOptions::default().viewport);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_its_origin_login_lands_right_and_the_cookie_stays_with_the_app() {
    // Starting is bounded on its own (Chromium's start-up timeout, kgate's start-up line); the
    // bound below is for the browser session, not for building kgate on a cold target dir.
    let Some(rig) = Rig::start("origin_login").await else {
        return;
    };
    bounded(async {
        let page = rig.browser.new_page().await.unwrap();

        // Not logged in: the account page sends the browser to the login page of the origin.
        page.goto(&rig.origin("shop", "/account")).await.unwrap();
        let redirect = page
            .requests()
            .into_iter()
            .find(|r| r.url == rig.origin("shop", "/account"))
            .unwrap();
        assert_eq!(redirect.status, Some(302));
        assert_eq!(redirect.location.as_deref(), Some("/login?next=/account"));
        assert_eq!(
            page.url().await.unwrap(),
            rig.origin("shop", "/login?next=/account")
        );

        // Log in as a person would: press the form's button.
        page.click("form button").await.unwrap();
        let account = rig.origin("shop", "/account");
        page.wait_for(
            &format!("location.href === '{account}' && document.readyState === 'complete'"),
            WAIT,
        )
        .await
        .unwrap();
        let main = page.text("main").await.unwrap().unwrap();
        assert!(main.contains("Logged in as demo"), "{main}");
        let post = page
            .requests()
            .into_iter()
            .find(|r| r.method == "POST")
            .unwrap();
        assert_eq!(post.url, rig.origin("shop", "/login"));
        assert_eq!(post.status, Some(302));
        assert_eq!(post.location.as_deref(), Some("/account"));

        // The cookie belongs to the shop's origin only, and came back to the app.
        let cookies = rig.browser.all_cookies().await.unwrap();
        assert_eq!(cookies.len(), 1, "{cookies:#?}");
        let session = &cookies[0];
        assert_eq!(
            (session.name.as_str(), session.value.as_str()),
            ("session", "demo")
        );
        assert_eq!(session.domain, "shop.demo.svc.localhost");
        assert_eq!(session.path, "/");
        assert!(
            rig.shop_saw()
                .iter()
                .any(|(r, cookie)| r == "GET /account" && cookie.as_deref() == Some("session=demo")),
            "{:?}",
            rig.shop_saw()
        );
        let echo = rig.origin("echo", "/");
        assert!(
            page.cookies_for(&[echo.as_str()]).await.unwrap().is_empty(),
            "the shop's cookie would be sent to another service"
        );

        // `/api/...` on the origin is the app's, never the Kubernetes API.
        let answer = page
            .eval("fetch('/api/v1/namespaces').then(async r => [r.status, await r.text()])")
            .await
            .unwrap();
        assert!(
            !answer[1].as_str().unwrap_or_default().contains("NamespaceList"),
            "the origin reached the Kubernetes API: {answer}"
        );
        assert!(
            rig.shop_saw()
                .iter()
                .any(|(r, _)| r == "GET /api/v1/namespaces"),
            "{:?}",
            rig.shop_saw()
        );
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
