//! Proves the headless-Chromium driver (`tests::browser`) against a tiny local server: assets,
//! `fetch()`, `*.localhost` resolution, screenshots, a WebSocket echo, cookies, the network log,
//! console errors, and clean-up. Each test skips, saying so, where Chromium is not installed.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tests::browser::{Browser, BrowserError, LaunchOptions, check_png};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// The bound on a whole test, so that a hung browser fails the test instead of hanging CI.
const TEST_BOUND: Duration = Duration::from_secs(40);
const WAIT: Duration = Duration::from_secs(10);

/// Launches Chromium, or says visibly that the test is skipped.
async fn browser(test: &str, options: LaunchOptions) -> Option<Browser> {
    match Browser::launch_with(options).await {
        Ok(Some(browser)) => Some(browser),
        Ok(None) => {
            eprintln!("SKIPPED {test}: Chromium is not installed (apt-get install chromium)");
            None
        }
        Err(error) => panic!("{test}: launching Chromium failed: {error}"),
    }
}

/// What the server saw: the request line's path and the `Host` and `Cookie` headers.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    host: String,
    cookie: Option<String>,
}

/// A tiny HTTP/1.1 server on 127.0.0.1:0 with an app page, its assets, an API, cookies and a
/// WebSocket echo at `/ws`.
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const INDEX: &str = r#"<!doctype html>
<html><head><title>driver test</title>
<link rel="stylesheet" href="/style.css">
<script src="/missing.js"></script>
</head><body>
<h1 id="title">Hello from the test server</h1>
<img id="logo" src="/logo.svg" width="64" height="64">
<p id="data">waiting</p>
<a id="go" href="/host">next page</a>
<script src="/app.js"></script>
</body></html>"#;

const APP_JS: &str = r#"
fetch('/api/data').then(r => r.json()).then(d => {
  document.getElementById('data').textContent = 'items: ' + d.items.join(',');
});
console.error('app.js says hello on stderr');
"#;

const LOGO: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="#c03"/></svg>"##;

impl Server {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let _ = serve(stream, log).await;
                });
            }
        });
        Self { port, seen, task }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Serves one connection: a WebSocket echo when the request asks to upgrade, otherwise
/// HTTP/1.1 requests until the client closes.
async fn serve(mut stream: TcpStream, log: Arc<Mutex<Vec<Seen>>>) -> std::io::Result<()> {
    // Peek at the head: tokio-tungstenite reads the handshake itself.
    let mut peek = vec![0; 8192];
    loop {
        let n = stream.peek(&mut peek).await?;
        if n == 0 {
            return Ok(());
        }
        if peek[..n].windows(4).any(|w| w == b"\r\n\r\n") || n == peek.len() {
            if String::from_utf8_lossy(&peek[..n])
                .to_ascii_lowercase()
                .contains("upgrade: websocket")
            {
                log.lock().unwrap().push(Seen {
                    path: "/ws (upgrade)".into(),
                    host: String::new(),
                    cookie: None,
                });
                let mut ws = tokio_tungstenite::accept_async(stream)
                    .await
                    .map_err(std::io::Error::other)?;
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Text(text) = message {
                        ws.send(Message::text(format!("echo: {}", text.as_str())))
                            .await
                            .map_err(std::io::Error::other)?;
                    }
                }
                return Ok(());
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        buffer.drain(..head_end);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let header = |name: &str| {
            head.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
        };
        let host = header("host").unwrap_or_default();
        let cookie = header("cookie");
        log.lock().unwrap().push(Seen {
            path: path.clone(),
            host: host.clone(),
            cookie: cookie.clone(),
        });
        let (status, kind, extra, body): (&str, &str, String, String) = match path.as_str() {
            "/" => ("200 OK", "text/html", String::new(), INDEX.into()),
            "/style.css" => (
                "200 OK",
                "text/css",
                String::new(),
                "body { background: rgb(10, 120, 200); color: white; font: 20px sans-serif }"
                    .into(),
            ),
            "/app.js" => ("200 OK", "text/javascript", String::new(), APP_JS.into()),
            "/logo.svg" => ("200 OK", "image/svg+xml", String::new(), LOGO.into()),
            "/api/data" => (
                "200 OK",
                "application/json",
                String::new(),
                r#"{"items":[1,2,3]}"#.into(),
            ),
            "/host" => (
                "200 OK",
                "text/html",
                String::new(),
                format!("<p id=host>{host}</p>"),
            ),
            "/login" => (
                "302 Found",
                "text/plain",
                "Location: /\r\nSet-Cookie: sid=s3ssion; Path=/; HttpOnly\r\n".into(),
                "redirecting".into(),
            ),
            "/echo-cookie" => (
                "200 OK",
                "text/plain",
                String::new(),
                cookie.unwrap_or_default(),
            ),
            _ => (
                "404 Not Found",
                "text/plain",
                String::new(),
                "not found".into(),
            ),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{extra}\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await?;
    }
}

async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("the test did not finish in time (is Chromium hung?)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_loads_assets_runs_fetch_and_logs_the_network() {
    bounded(async {
        let Some(browser) = browser("page_loads_assets", LaunchOptions::default()).await else {
            return;
        };
        assert!(browser.version().contains("Chrome"), "{}", browser.version());
        let server = Server::start().await;
        let base = format!("http://127.0.0.1:{}", server.port);
        let page = browser.new_page().await.unwrap();
        page.goto(&format!("{base}/")).await.unwrap();

        // After the load event every asset has a status; the 404 is seen as a 404.
        let requests = page.requests();
        let status = |path: &str| {
            requests
                .iter()
                .find(|r| r.url == format!("{base}{path}"))
                .and_then(|r| r.status)
        };
        assert_eq!(status("/"), Some(200), "{requests:#?}");
        assert_eq!(status("/style.css"), Some(200), "{requests:#?}");
        assert_eq!(status("/app.js"), Some(200), "{requests:#?}");
        assert_eq!(status("/logo.svg"), Some(200), "{requests:#?}");
        assert_eq!(status("/missing.js"), Some(404), "{requests:#?}");

        // The stylesheet applied, the image decoded, and fetch() reached the API.
        let background = page
            .eval("getComputedStyle(document.body).backgroundColor")
            .await
            .unwrap();
        assert_eq!(background, "rgb(10, 120, 200)");
        let logo = page
            .eval("document.getElementById('logo').naturalWidth")
            .await
            .unwrap();
        assert_eq!(logo, 64);
        let data = page
            .wait_for(
                "document.getElementById('data').textContent.startsWith('items') && document.getElementById('data').textContent",
                WAIT,
            )
            .await
            .unwrap();
        assert_eq!(data, "items: 1,2,3");
        let api = page
            .wait_for_request(|url| url.ends_with("/api/data"), WAIT)
            .await
            .unwrap();
        assert!(api.ok(), "{api:?}");
        assert_eq!(api.resource_type, "Fetch");

        // eval awaits promises and reports exceptions.
        let fetched = page
            .eval("fetch('/api/data').then(r => r.json())")
            .await
            .unwrap();
        assert_eq!(fetched, serde_json::json!({ "items": [1, 2, 3] }));
        match page.eval("Promise.reject(new Error('nope'))").await {
            Err(BrowserError::Js { description, .. }) => {
                assert!(description.contains("nope"), "{description}")
            }
            other => panic!("expected a JavaScript error, got {other:?}"),
        }
        assert_eq!(page.url().await.unwrap(), format!("{base}/"));
        assert_eq!(page.eval("document.title").await.unwrap(), "driver test");

        // console.error from the page and the 404 both show as console errors.
        let said = page
            .wait_for_console(|m| m.text.contains("app.js says hello"), WAIT)
            .await
            .unwrap();
        assert_eq!((said.level.as_str(), said.source.as_str()), ("error", "console"));
        let missing = page
            .wait_for_console(|m| m.text.contains("/missing.js"), WAIT)
            .await
            .unwrap();
        assert_eq!(missing.level, "error");
        assert!(missing.text.contains("404"), "{missing:?}");
        // Nothing else failed (Chromium may also ask for /favicon.ico, which is a 404 here).
        let others: Vec<String> = page
            .console_errors()
            .into_iter()
            .filter(|e| !e.contains("app.js says hello") && !e.contains("/missing.js"))
            .filter(|e| !e.contains("/favicon.ico"))
            .collect();
        assert!(others.is_empty(), "{others:#?}");

        // Helpers for what a person reads and clicks; dialogs cannot block the page.
        assert_eq!(
            page.text("#title").await.unwrap().as_deref(),
            Some("Hello from the test server")
        );
        assert_eq!(page.text("#nope").await.unwrap(), None);
        assert_eq!(page.eval("confirm('sure?')").await.unwrap(), true);
        assert!(
            page.console()
                .iter()
                .any(|m| m.level == "dialog" && m.text == "sure?"),
            "{:#?}",
            page.console()
        );
        assert!(matches!(
            page.click("#nope").await,
            Err(BrowserError::Js { .. })
        ));
        page.click("#go").await.unwrap();
        page.wait_for(
            "location.pathname === '/host' && document.readyState === 'complete'",
            WAIT,
        )
        .await
        .unwrap();
        assert_eq!(
            page.text("#host").await.unwrap(),
            Some(format!("127.0.0.1:{}", server.port))
        );

        // wait_for gives up with a message that names the condition.
        match page.wait_for("window.neverSet", Duration::from_millis(300)).await {
            Err(BrowserError::Timeout { what, .. }) => assert!(what.contains("neverSet"), "{what}"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        browser.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_localhost_hosts_resolve_to_loopback_without_resolver_rules() {
    bounded(async {
        let Some(browser) = browser("star_localhost", LaunchOptions::default()).await else {
            return;
        };
        // The server listens on 127.0.0.1 only; no --host-resolver-rules, no hosts file.
        let server = Server::start().await;
        let page = browser.new_page().await.unwrap();
        for host in ["foo.localhost", "shop.demo.svc.localhost"] {
            let url = format!("http://{host}:{}/host", server.port);
            page.goto(&url).await.unwrap();
            let shown = page
                .eval("document.getElementById('host').textContent")
                .await
                .unwrap();
            assert_eq!(shown, format!("{host}:{}", server.port));
            assert_eq!(page.url().await.unwrap(), url);
        }
        let hosts: Vec<String> = server.seen().into_iter().map(|s| s.host).collect();
        assert!(
            hosts.contains(&format!("foo.localhost:{}", server.port)),
            "{hosts:?}"
        );

        // A refused connection is a navigation error, not a hang.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        match page.goto(&format!("http://127.0.0.1:{port}/")).await {
            Err(BrowserError::Navigation { error_text, .. }) => {
                assert_eq!(error_text, "net::ERR_CONNECTION_REFUSED")
            }
            other => panic!("expected a refused navigation, got {other:?}"),
        }
        browser.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshot_is_a_valid_png_of_the_viewport_size() {
    bounded(async {
        let options = LaunchOptions {
            viewport: (800, 600),
            ..LaunchOptions::default()
        };
        let Some(browser) = browser("screenshot", options).await else {
            return;
        };
        let server = Server::start().await;
        let page = browser.new_page().await.unwrap();
        page.goto(&format!("http://127.0.0.1:{}/", server.port))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("page.png");
        let size = page.screenshot_png(&path).await.unwrap();
        assert_eq!(size, (800, 600));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(check_png(&bytes), Ok((800, 600)));
        // A corrupted byte is caught by the CRC check.
        let mut corrupt = bytes.clone();
        let middle = corrupt.len() / 2;
        corrupt[middle] ^= 0xff;
        assert!(check_png(&corrupt).is_err());
        assert!(check_png(&bytes[..bytes.len() - 1]).is_err());
        browser.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_opened_by_page_javascript_echoes() {
    bounded(async {
        let Some(browser) = browser("websocket", LaunchOptions::default()).await else {
            return;
        };
        let server = Server::start().await;
        let page = browser.new_page().await.unwrap();
        page.goto(&format!("http://foo.localhost:{}/", server.port))
            .await
            .unwrap();
        let echoed = page
            .eval(
                "new Promise((resolve, reject) => {
                   const ws = new WebSocket(`ws://${location.host}/ws`);
                   ws.onopen = () => ws.send('ping');
                   ws.onmessage = (event) => { resolve(event.data); ws.close(); };
                   ws.onerror = () => reject(new Error('websocket error'));
                 })",
            )
            .await
            .unwrap();
        assert_eq!(echoed, "echo: ping");
        let sockets = page.websockets();
        assert_eq!(sockets.len(), 1, "{sockets:#?}");
        let ws = &sockets[0];
        assert_eq!(ws.url, format!("ws://foo.localhost:{}/ws", server.port));
        assert_eq!(ws.status, Some(101));
        assert_eq!(ws.sent, ["ping"]);
        assert_eq!(ws.received, ["echo: ping"]);
        assert!(ws.errors.is_empty(), "{ws:?}");
        browser.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_set_by_a_redirect_is_stored_and_sent_back() {
    bounded(async {
        let Some(browser) = browser("cookies", LaunchOptions::default()).await else {
            return;
        };
        let server = Server::start().await;
        let base = format!("http://127.0.0.1:{}", server.port);
        let page = browser.new_page().await.unwrap();
        page.goto(&format!("{base}/login")).await.unwrap();
        // The redirect is its own entry in the network log, then the page it led to.
        let requests = page.requests();
        let login = requests.iter().find(|r| r.url.ends_with("/login")).unwrap();
        assert_eq!(login.status, Some(302));
        assert_eq!(login.location.as_deref(), Some("/"));
        assert_eq!(page.url().await.unwrap(), format!("{base}/"));

        let cookies = page.cookies().await.unwrap();
        let sid = cookies.iter().find(|c| c.name == "sid").unwrap();
        assert_eq!(sid.value, "s3ssion");
        assert_eq!(sid.path, "/");
        assert_eq!(sid.domain, "127.0.0.1");
        assert!(sid.http_only);
        assert!(browser.all_cookies().await.unwrap().contains(sid));

        // HttpOnly hides it from scripts, but fetch() sends it.
        assert_eq!(page.eval("document.cookie").await.unwrap(), "");
        let echoed = page
            .eval("fetch('/echo-cookie').then(r => r.text())")
            .await
            .unwrap();
        assert_eq!(echoed, "sid=s3ssion");
        let sent: Vec<Option<String>> = server
            .seen()
            .into_iter()
            .filter(|s| s.path == "/echo-cookie")
            .map(|s| s.cookie)
            .collect();
        assert_eq!(sent, [Some("sid=s3ssion".to_owned())]);
        browser.close().await.unwrap();
    })
    .await;
}

/// Whether any process is still in process group `group` (Linux `/proc`).
fn group_alive(group: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // Fields after the command name in parentheses: state, ppid, pgrp, ...; a zombie
        // (state Z) is dead, only not reaped yet by whoever inherited it.
        stat.rsplit_once(')').is_some_and(|(_, rest)| {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.len() > 2 && fields[0] != "Z" && fields[2] == group.to_string()
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_kills_every_chromium_process_and_removes_the_profile() {
    bounded(async {
        let Some(browser) = browser("drop", LaunchOptions::default()).await else {
            return;
        };
        let page = browser.new_page().await.unwrap();
        page.goto("about:blank").await.unwrap();
        let profile = browser.profile_dir();
        let pid = browser.pid();
        assert!(profile.join("DevToolsActivePort").is_file());
        assert!(group_alive(pid));
        drop(page);
        drop(browser);
        assert!(!Path::new(&profile).exists(), "{profile:?} is left behind");
        // Helpers (zygote, renderer) may take a moment to notice; they must go.
        let mut alive = true;
        for _ in 0..100 {
            alive = group_alive(pid);
            if !alive {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            !alive,
            "processes of Chromium's group {pid} are still running"
        );
    })
    .await;
}

#[tokio::test]
async fn a_missing_chromium_is_none_not_an_error() {
    let options = LaunchOptions {
        executable: Some("/nonexistent/chromium".into()),
        ..LaunchOptions::default()
    };
    assert!(Browser::launch_with(options).await.unwrap().is_none());
}
