//! Dedicated ports and `kgate open`, with the real binary in front of simcluster: `kgate serve
//! --mount` binds a service at the root of an address of its own (every path to the service,
//! the prefix undone, DNS-rebinding and cross-site refusals, bad arguments explained), and
//! `kgate open` prints the origin URL, starts the browser from `$BROWSER` (a script that
//! records what it was given), reuses a gateway already running for the same cluster, moves
//! aside when the port is held by something else, and serves on a port of its own with
//! `--port`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tests::cluster::Cluster;
use tests::http::{Req, send};
use tests::proc::{kgate_bin, run_kgate};

/// The address in a `Mounted <target> on http://<addr>/` line.
fn mounted_addr(line: &str) -> SocketAddr {
    let url = line.rsplit(' ').next().expect("a URL");
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mount_serves_one_service_at_the_root_of_its_own_port() {
    let cluster = Cluster::start().await;
    let kgate = cluster.kgate_serve(&[
        "--mount=svc/demo/shop=0",
        "--mount",
        "svc/demo/echo:http=127.0.0.1:0",
    ]);
    let shop_line = kgate.stdout_line("Mounted svc/demo/shop ", Duration::from_secs(10));
    let echo_line = kgate.stdout_line("Mounted svc/demo/echo:http ", Duration::from_secs(10));
    let shop = mounted_addr(&shop_line);
    let shop_host = shop.to_string();

    // The app is at `/`: the prefix the API server wrote into its HTML is undone.
    let reply = send(
        shop,
        &Req::get("/").host(&shop_host).header("Accept", "text/html"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let html = reply.text();
    assert!(html.contains("href=\"/static/style.css\""), "{html}");
    assert!(!html.contains("/api/v1/"), "{html}");

    // `localhost:<port>` is accepted too.
    let reply = send(
        shop,
        &Req::get("/").host(&format!("localhost:{}", shop.port())),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // A DNS-rebinding page names its own host: refused, and the service never sees it.
    cluster.sim.clear_request_log();
    let reply = send(
        shop,
        &Req::get("/").host(&format!("evil.example:{}", shop.port())),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(reply.text().contains("evil.example"), "{}", reply.text());
    assert!(cluster.sim.request_log().is_empty());

    // The browser's credentials never reach the service.
    let echo = mounted_addr(&echo_line);
    let reply = send(
        echo,
        &Req::get("/hello?x=1")
            .host(&echo.to_string())
            .header("Authorization", "Bearer browser-secret"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let log = cluster.sim.request_log();
    let seen = log
        .iter()
        .find(|r| r.service == "demo/echo:http" && r.uri == "/hello?x=1")
        .unwrap_or_else(|| panic!("echo did not see the request: {log:?}"));
    assert!(
        seen.headers.get("authorization").is_none(),
        "{:?}",
        seen.headers
    );

    // Every path goes to the service, `/api/...` included; never the API.
    let reply = send(shop, &Req::get("/api/v1/namespaces").host(&shop_host)).await;
    assert!(!reply.text().contains("NamespaceList"), "{}", reply.text());
    let log = cluster.sim.request_log();
    assert!(
        log.iter()
            .any(|r| r.service == "demo/shop:http" && r.uri == "/api/v1/namespaces"),
        "{log:?}"
    );

    // A cross-site POST is refused before it reaches the service.
    cluster.sim.clear_request_log();
    let reply = send(
        shop,
        &Req::get("/cart")
            .method("POST")
            .host(&shop_host)
            .header("Origin", "http://evil.example")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(b"item=1"),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(cluster.sim.request_log().is_empty());

    // The main listener still serves origins and the API.
    let main = kgate.addr.tcp();
    let reply = send(
        main,
        &Req::get("/api/v1/namespaces/demo/services/shop:http/proxy/").host(&main.to_string()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mount_without_a_namespace_takes_the_kubeconfigs() {
    let cluster = Cluster::start().await;
    let kgate = cluster.kgate_serve(&["--mount=svc/kubernetes=0"]);
    let line = kgate.stdout_line("Mounted ", Duration::from_secs(10));
    assert!(
        line.starts_with("Mounted svc/default/kubernetes on http://127.0.0.1:"),
        "{line}"
    );
}

#[test]
fn bad_mounts_are_explained() {
    for (arg, code, says) in [
        ("--mount=svc/demo/shop", 2, "expected <target>=<address>"),
        ("--mount==3000", 2, "target before '=' is empty"),
        (
            "--mount=svc/demo/shop=localhost:x",
            2,
            "must be <ip>:<port> or a port",
        ),
    ] {
        let (status, _, stderr) = run_kgate(&["serve", "--port=0", arg]);
        assert_eq!(status, code, "{arg}: {stderr}");
        assert!(stderr.contains(says), "{arg}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_mount_targets_are_explained() {
    let cluster = Cluster::start().await;
    let kubeconfig = format!("--kubeconfig={}", cluster.kubeconfig.display());
    for (arg, says) in [
        ("--mount=svc/demo/shop/cart=0", "drop the path"),
        (
            "--mount=svc/demo/Not_A_Name=0",
            "--mount svc/demo/Not_A_Name",
        ),
    ] {
        let (status, _, stderr) = run_kgate(&["serve", "--port=0", &kubeconfig, arg]);
        assert_eq!(status, 1, "{arg}: {stderr}");
        assert!(stderr.starts_with("error: "), "{arg}: {stderr}");
        assert!(stderr.contains(says), "{arg}: {stderr}");
    }
}

/// A running `kgate open`: its stdout lines arrive on `lines`.
struct Open {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::path::PathBuf,
}

impl Open {
    fn start(cluster: &Cluster, args: &[&str], browser_log: &Path) -> Open {
        let stderr = cluster
            .dir
            .path()
            .join(format!("open-{}.stderr", args.join("_").replace('/', "_")));
        let browser = cluster.dir.path().join("browser.sh");
        std::fs::write(
            &browser,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n",
                browser_log.display()
            ),
        )
        .expect("browser script");
        let mut child = Command::new(kgate_bin())
            .arg("open")
            .arg(format!("--kubeconfig={}", cluster.kubeconfig.display()))
            .args(args)
            .env("BROWSER", format!("sh {}", browser.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("kgate open starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Open {
            child,
            lines,
            stderr,
        }
    }

    fn url(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("kgate open printed no URL; stderr:\n{}", self.stderr()))
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on (bound and released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits until `file` holds `line`.
fn wait_for_line(file: &Path, line: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if std::fs::read_to_string(file).is_ok_and(|s| s.lines().any(|l| l == line)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "the browser was not started with {line}; it got: {:?}",
        std::fs::read_to_string(file).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn open_starts_a_gateway_prints_the_origin_and_starts_the_browser() {
    let cluster = Cluster::start().await;
    let browser_log = cluster.dir.path().join("browser.log");
    let port = free_port();
    let gateway_port = format!("--gateway-port={port}");
    let open = Open::start(
        &cluster,
        &[&gateway_port, "svc/demo/echo/hello?x=1"],
        &browser_log,
    );
    let url = open.url();
    assert_eq!(
        url,
        format!("http://echo.demo.svc.localhost:{port}/hello?x=1")
    );
    wait_for_line(&browser_log, &url);
    assert!(
        open.stderr().contains("press Ctrl-C to stop"),
        "{}",
        open.stderr()
    );

    // The URL works (with the origin's Host: glibc does not resolve *.localhost).
    let gateway: SocketAddr = ([127, 0, 0, 1], port).into();
    let host = format!("echo.demo.svc.localhost:{port}");
    let reply = send(gateway, &Req::get("/hello?x=1").host(&host)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        cluster
            .sim
            .request_log()
            .iter()
            .any(|r| r.uri == "/hello?x=1")
    );

    // A second `kgate open` for the same cluster uses that gateway and exits at once.
    let (status, stdout, stderr) = run_kgate(&[
        "open",
        &format!("--kubeconfig={}", cluster.kubeconfig.display()),
        &gateway_port,
        "--no-browser",
        "svc/demo/shop",
    ]);
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(stdout, format!("http://shop.demo.svc.localhost:{port}/\n"));
    assert!(
        stderr.contains("using the gateway already running"),
        "{stderr}"
    );

    // A gateway for another cluster is not reused.
    let other = Cluster::start().await;
    let other_log = other.dir.path().join("browser.log");
    let elsewhere = Open::start(
        &other,
        &[&gateway_port, "--no-browser", "svc/demo/shop"],
        &other_log,
    );
    let url = elsewhere.url();
    assert!(url.starts_with("http://shop.demo.svc.localhost:"), "{url}");
    assert!(!url.contains(&format!(":{port}/")), "{url}");
    assert!(
        elsewhere.stderr().contains("serves another cluster"),
        "{}",
        elsewhere.stderr()
    );
    assert!(!other_log.exists(), "--no-browser started a browser");
}

#[tokio::test(flavor = "multi_thread")]
async fn open_moves_aside_when_the_port_is_not_kgates() {
    let cluster = Cluster::start().await;
    // Something that is not kgate: accepts and closes.
    let squatter = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = squatter.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in squatter.incoming() {
            drop(stream);
        }
    });
    let log = cluster.dir.path().join("browser.log");
    let open = Open::start(
        &cluster,
        &[&format!("--gateway-port={port}"), "svc/demo/shop"],
        &log,
    );
    let url = open.url();
    assert!(!url.contains(&format!(":{port}/")), "{url}");
    assert!(
        open.stderr().contains("something other than kgate"),
        "{}",
        open.stderr()
    );
    wait_for_line(&log, &url);
}

#[tokio::test(flavor = "multi_thread")]
async fn open_with_a_port_serves_the_service_at_the_root_of_127_0_0_1() {
    let cluster = Cluster::start().await;
    let log = cluster.dir.path().join("browser.log");
    let open = Open::start(
        &cluster,
        &["--port=0", "--no-browser", "svc/demo/shop/static/style.css"],
        &log,
    );
    let url = open.url();
    let rest = url
        .strip_prefix("http://127.0.0.1:")
        .expect("a 127.0.0.1 URL");
    let (port, path) = rest.split_once('/').expect("a path");
    assert_eq!(path, "static/style.css");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
    let reply = send(addr, &Req::get("/static/style.css").host(&addr.to_string())).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(!log.exists(), "--no-browser started a browser");
}

#[tokio::test(flavor = "multi_thread")]
async fn open_explains_what_it_cannot_open() {
    let cluster = Cluster::start().await;
    let kubeconfig = format!("--kubeconfig={}", cluster.kubeconfig.display());
    for (target, says) in [
        ("svc/demo/Not_A_Name", "not a target kgate can open"),
        ("http://shop.demo.svc.prod.localhost:8001/", "--context"),
        // A StatefulSet pod's name holds a dot: no origin host, but a port of its own works.
        ("pod/demo/web-0.web", "kgate open --port 0"),
    ] {
        let (status, stdout, stderr) = run_kgate(&["open", &kubeconfig, "--no-browser", target]);
        assert_eq!(status, 2, "{target}: {stderr}");
        assert!(stdout.is_empty(), "{target}: {stdout}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(says),
            "{target}: {stderr}"
        );
    }
    let (status, _, stderr) = run_kgate(&[
        "open",
        "--kubeconfig=/nonexistent/kubeconfig",
        "svc/demo/shop",
    ]);
    assert_eq!(status, 1, "{stderr}");
    assert!(stderr.contains("kubeconfig"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_accept_hosts_widens_the_gateway_and_its_mounts_alike() {
    let cluster = Cluster::start().await;
    let kgate = cluster.kgate_serve(&[r"--accept-hosts=^kgate\.tools$", "--mount=svc/demo/shop=0"]);
    let shop = mounted_addr(&kgate.stdout_line("Mounted ", Duration::from_secs(10)));
    let main = kgate.addr.tcp();
    let named = |port: u16| format!("kgate.tools:{port}");
    let reply = send(shop, &Req::get("/").host(&named(shop.port()))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = send(
        main,
        &Req::get("/api/v1/namespaces").host(&named(main.port())),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // The list replaces the default: `localhost` is no longer accepted.
    let reply = send(
        main,
        &Req::get("/api/v1/namespaces").host(&format!("localhost:{}", main.port())),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    let reply = send(
        shop,
        &Req::get("/").host(&format!("localhost:{}", shop.port())),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.text());
}
