//! `kgate serve --gateway-token auto` in headless Chromium: the index URL it printed (with
//! `?kgate-token=`) lands on the clean index with an `HttpOnly`, `SameSite=Strict` cookie; the
//! index's links carry the token to each origin, which sets its own cookie and drops the token
//! from the URL; the app then works (assets, `fetch`, WebSocket) on the cookie alone; and a
//! browser without the token gets 401.
//!
//! Skips, saying so, where Chromium is not installed.

use std::time::Duration;

use tests::browser::{Browser, LaunchOptions};
use tests::cluster::Cluster;
use tests::proc::{Proxy, kgate_bin};

const TEST_BOUND: Duration = Duration::from_secs(90);
const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_the_printed_url_signs_the_browser_in_and_the_token_leaves_the_url() {
    let browser = match Browser::launch_with(LaunchOptions::default()).await {
        Ok(Some(browser)) => browser,
        Ok(None) => {
            eprintln!(
                "SKIPPED token in Chromium: Chromium is not installed (apt-get install chromium)"
            );
            return;
        }
        Err(error) => panic!("launching Chromium failed: {error}"),
    };
    let cluster = Cluster::start().await;
    let runtime = tempfile::tempdir().unwrap();
    let args = vec![
        "serve".to_owned(),
        "--port=0".to_owned(),
        "--gateway-token=auto".to_owned(),
        format!("--kubeconfig={}", cluster.kubeconfig.display()),
    ];
    let dir = runtime.path().to_owned();
    let kgate = tokio::task::spawn_blocking(move || {
        Proxy::start_with_env(&kgate_bin(), &args, &[("XDG_RUNTIME_DIR", &dir)])
    })
    .await
    .unwrap();
    let port = kgate.addr.tcp().port();
    let services = kgate.stdout_line("Services: ", WAIT);
    let index_url = services
        .strip_prefix("Services: ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .to_owned();
    let token = index_url.split("kgate-token=").nth(1).unwrap().to_owned();

    tokio::time::timeout(TEST_BOUND, async {
        // Without the token, nothing.
        let stranger = browser.new_page().await.unwrap();
        let bare = format!("http://localhost:{port}/.kgate/");
        stranger.goto(&bare).await.unwrap();
        let text = stranger.text("body").await.unwrap().unwrap_or_default();
        assert!(text.starts_with("401 Unauthorized"), "{text}");
        stranger.close().await.unwrap();

        // The printed URL: the index, at its clean URL, and the cookie.
        let page = browser.new_page().await.unwrap();
        page.goto(&index_url).await.unwrap();
        // The sign-in page moves on by itself to the clean URL.
        page.wait_for(
            "location.search === '' && document.querySelector('h1') !== null",
            WAIT,
        )
        .await
        .unwrap();
        assert_eq!(page.url().await.unwrap(), bare);
        let title = page.text("h1").await.unwrap().unwrap_or_default();
        assert!(title.starts_with("kgate: "), "{title}");
        let cookies = page.cookies_for(&[&bare]).await.unwrap();
        let cookie = cookies
            .iter()
            .find(|c| c.name == "kgate-token")
            .unwrap_or_else(|| panic!("no token cookie: {cookies:?}"));
        assert_eq!(cookie.value, token);
        assert_eq!(cookie.domain, "localhost", "host-only, for this origin");
        assert!(cookie.http_only, "{cookie:?}");
        assert_eq!(cookie.same_site.as_deref(), Some("Strict"), "{cookie:?}");

        // The shop's link carries the token; the shop's origin sets its own cookie, drops the
        // token from the URL, and the app works on the cookie.
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
        let url = page.url().await.unwrap();
        assert!(!url.contains("kgate-token"), "{url}");
        let shop = format!("http://http.shop.demo.svc.localhost:{port}/");
        let shop_cookies = page.cookies_for(&[&shop]).await.unwrap();
        assert!(
            shop_cookies
                .iter()
                .any(|c| c.name == "kgate-token" && c.http_only),
            "{shop_cookies:?}"
        );
        // No script of the app can read the token.
        let visible = page.eval("document.cookie").await.unwrap();
        assert!(
            !visible.as_str().unwrap_or_default().contains(&token),
            "{visible}"
        );
        page.close().await.unwrap();
    })
    .await
    .expect("the test did not finish in time (is Chromium or kgate hung?)");
    browser.close().await.unwrap();
}
