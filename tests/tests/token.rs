//! `kgate serve --gateway-token auto`, the real binary: on a machine shared with other users, only who
//! holds the token printed at start-up may use the gateway (and through it the user's
//! credentials). Scripts send it as a bearer token, which never reaches the API server; a
//! browser arriving with `?kgate-token=` gets an `HttpOnly`, `SameSite=Strict` cookie and moves
//! on to the clean URL; the cookie never reaches a service. Without it: 401 and nothing else, for a
//! request from another local user, a DNS-rebinding page, or anyone. `kgate urls` and `kgate
//! open` find the token of this user's gateway; another user cannot read it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::cluster::Cluster;
use tests::http::{Req, send};
use tests::proc::{Proxy, kgate_bin, run_kgate_with_env};

/// `kgate serve --gateway-token auto` with its runtime files in `runtime`, and the token it printed.
fn serve(cluster: &Cluster, runtime: &Path) -> (Proxy, String) {
    let args = vec![
        "serve".to_owned(),
        "--port=0".to_owned(),
        "--gateway-token=auto".to_owned(),
        format!("--kubeconfig={}", cluster.kubeconfig.display()),
    ];
    let kgate = Proxy::start_with_env(&kgate_bin(), &args, &[("XDG_RUNTIME_DIR", runtime)]);
    let services = kgate.stdout_line("Services: ", Duration::from_secs(10));
    let token = services
        .split("kgate-token=")
        .nth(1)
        .and_then(|t| t.split([' ', ')']).next())
        .unwrap_or_else(|| panic!("no token in {services:?}"))
        .to_owned();
    assert_eq!(token.len(), 48, "{services}");
    (kgate, token)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_needs_the_token_and_the_token_goes_no_further() {
    let cluster = Cluster::start().await;
    let runtime = tempfile::tempdir().unwrap();
    let (kgate, token) = serve(&cluster, runtime.path());
    let addr = kgate.addr.tcp();
    let port = addr.port();
    let bearer = format!("Bearer {token}");

    // Without it: 401 with how to send it, and nothing about the cluster.
    for req in [
        Req::get("/api/v1/namespaces"),
        Req::get("/.kgate/"),
        Req::get("/.kgate/readyz"),
        Req::get("/").host(&format!("shop.demo.svc.localhost:{port}")),
        Req::get("/api").header("Authorization", "Bearer not-the-token"),
        Req::get("/api").header("Cookie", "kgate-token=not-the-token"),
        // A DNS-rebinding page names its own host, and has no cookie for localhost.
        Req::get("/api/v1/namespaces").host(&format!("evil.example:{port}")),
    ] {
        let reply = send(addr, &req).await;
        assert_eq!(reply.status, 401, "{}", reply.text());
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer realm=\"kgate\"")
        );
        assert!(!reply.text().contains("Namespace"), "{}", reply.text());
    }
    // Liveness says only `ok`.
    let reply = send(addr, &Req::get("/.kgate/healthz")).await;
    assert_eq!(reply.status, 200);

    // A script with the bearer: the kubeconfig's credentials reach the API server, not it
    // (simcluster answers 401 to a token it does not know).
    let reply = send(
        addr,
        &Req::get("/api/v1/namespaces").header("Authorization", &bearer),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // The printed URL works from a script as it is.
    let reply = send(
        addr,
        &Req::get(&format!("/api/v1/namespaces?kgate-token={token}")),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // A browser with the printed URL: the cookie, and the same URL without the token.
    let origin = format!("echo.demo.svc.localhost:{port}");
    let reply = send(
        addr,
        &Req::get(&format!("/hello?x=1&kgate-token={token}"))
            .host(&origin)
            .header("Sec-Fetch-Mode", "navigate")
            .header("Accept", "text/html"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        reply
            .text()
            .contains("<meta http-equiv=\"refresh\" content=\"0; url=/hello?x=1\">"),
        "{}",
        reply.text()
    );
    assert!(
        !reply.text().contains(&token),
        "the page does not repeat the token"
    );
    assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
    let cookie = reply.header("set-cookie").unwrap_or_default().to_owned();
    assert_eq!(
        cookie,
        format!("kgate-token={token}; HttpOnly; SameSite=Strict; Path=/")
    );
    // With the cookie (beside the app's own), the app answers and sees neither the token nor
    // an Authorization.
    cluster.sim.clear_request_log();
    let reply = send(
        addr,
        &Req::get("/hello")
            .host(&origin)
            .header("Cookie", &format!("app=1; kgate-token={token}")),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = cluster.sim.request_log();
    let echo = seen
        .iter()
        .find(|r| r.service == "demo/echo:http")
        .expect("the echo app was reached");
    assert_eq!(
        echo.headers.get("cookie").and_then(|v| v.to_str().ok()),
        Some("app=1")
    );
    assert!(echo.headers.get("authorization").is_none());
    let everything = format!("{seen:?}");
    assert!(!everything.contains(&token), "the token reached a service");
    assert!(!kgate.stderr().contains(&token), "the token was logged");

    // `kgate urls` finds this user's gateway and prints its URLs with the token.
    let port_arg = format!("--gateway-port={port}");
    let kubeconfig = format!("--kubeconfig={}", cluster.kubeconfig.display());
    let (code, out, err) = run_kgate_with_env(
        &["urls", "-n", "demo", &port_arg, &kubeconfig],
        &[("XDG_RUNTIME_DIR", runtime.path())],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "http://http.shop.demo.svc.localhost:{port}/?kgate-token={token}"
        )),
        "{out}"
    );
    // Another runtime directory (another user's view): no token, plain URLs.
    let elsewhere = tempfile::tempdir().unwrap();
    let (_, out, _) = run_kgate_with_env(
        &["urls", "-n", "demo", &port_arg, &kubeconfig],
        &[("XDG_RUNTIME_DIR", elsewhere.path())],
    );
    assert!(!out.contains("kgate-token"), "{out}");

    // The runtime file is the owner's alone.
    let file = runtime
        .path()
        .join("kgate")
        .join(format!("gateway-{port}.json"));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "{}", file.display());
}

/// Runs `script` in `bash` as the unprivileged user `nobody`: its stdout, or `None` (after
/// saying so) where this test cannot switch users.
fn as_nobody(script: &str) -> Option<String> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        eprintln!("SKIPPED the other-user part: switching users needs root");
        return None;
    }
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "bash",
            "-c",
            script,
        ])
        .output();
    match out {
        Ok(out) => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        Err(err) => {
            eprintln!("SKIPPED the other-user part: setpriv: {err}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn another_local_user_gets_401_and_cannot_read_the_token() {
    let cluster = Cluster::start().await;
    let runtime = tempfile::tempdir().unwrap();
    // The runtime directory's parent must be searchable for the other user to even try.
    std::fs::set_permissions(
        runtime.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let (kgate, _token) = serve(&cluster, runtime.path());
    let port = kgate.addr.tcp().port();
    let file = runtime
        .path()
        .join("kgate")
        .join(format!("gateway-{port}.json"));
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port}; \
         printf 'GET /api/v1/namespaces HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3; \
         head -n 1 <&3; \
         cat {} 2>/dev/null && echo READ-THE-TOKEN || echo cannot-read",
        file.display()
    );
    let Some(out) = as_nobody(&script) else {
        return;
    };
    assert!(out.starts_with("HTTP/1.1 401"), "{out}");
    assert!(
        out.contains("cannot-read") && !out.contains("READ-THE-TOKEN"),
        "{out}"
    );
}
