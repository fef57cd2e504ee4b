//! Exec credential plugins (v1 and v1beta1): caching until expirationTimestamp, refresh after
//! a 401, one run for many concurrent requests, client certificates from a plugin, and each
//! failure's message. The plugin is a shell script that counts its runs in a file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use auth::{ApiClient, ClientOptions, CredentialError, Fault, SendError};
use http::{Request, StatusCode};
use http_body_util::BodyExt;

use crate::support::*;

const V1: &str = "client.authentication.k8s.io/v1";
const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

/// Writes `plugin.sh` into `dir`: it counts runs in `dir/count`, saves its arguments and
/// `KUBERNETES_EXEC_INFO`, optionally sleeps, and prints token `exec-token-<run>` valid for
/// `$PLUGIN_TTL` seconds (default one hour).
fn write_plugin(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("plugin.sh");
    let script = format!(
        "#!/bin/sh\nhere=\"$(dirname \"$0\")\"\nn=$(( $(cat \"$here/count\" 2>/dev/null || echo 0) + 1 ))\necho \"$n\" > \"$here/count\"\nprintf '%s' \"$*\" > \"$here/args\"\nprintf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$here/exec-info\"\n{body}\n"
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

const TOKEN_BODY: &str = r#"if [ -n "$PLUGIN_SLEEP" ]; then sleep "$PLUGIN_SLEEP"; fi
exp=$(date -u -d "+${PLUGIN_TTL:-3600} seconds" +%Y-%m-%dT%H:%M:%SZ)
printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"token":"exec-token-%s","expirationTimestamp":"%s"}}\n' "$PLUGIN_API" "$n" "$exp""#;

fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("count"))
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(0)
}

fn exec_user(command: &Path, api: &str, extra_env: &str, extra: &str) -> String {
    format!(
        "    exec:\n      apiVersion: {api}\n      command: {}\n      args: [--region, test-1]\n      env:\n      - name: PLUGIN_API\n        value: {api}\n{extra_env}      interactiveMode: Never\n{extra}",
        command.display()
    )
}

fn token_number(seen: &Seen) -> Option<usize> {
    bearer_of(seen)?.strip_prefix("exec-token-")?.parse().ok()
}

/// Moves tokio's clock forward (the plugin's expiry is measured on it), then lets real time run.
async fn advance(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

#[tokio::test]
async fn v1_and_v1beta1_cached_until_expiry() {
    for api in [V1, V1BETA1] {
        let pki = Pki::new("ca");
        let server = TestServer::start(&pki, guarded(|s| token_number(s).is_some())).await;
        let dir = tempfile::tempdir().unwrap();
        let plugin = write_plugin(dir.path(), TOKEN_BODY);
        let user = exec_user(&plugin, api, "", "      provideClusterInfo: true\n");
        let yaml = kubeconfig_yaml(&server.url(), &pki.ca_pem, &user).replace(
            "    certificate-authority-data:",
            "    extensions:\n    - name: client.authentication.k8s.io/exec\n      extension: {audience: kgate-test}\n    certificate-authority-data:",
        );
        let config = load_kubeconfig(dir.path(), &yaml);
        let client = client(&config);

        for _ in 0..3 {
            let (status, body) = get(&client, "/api").await;
            assert_eq!(status, StatusCode::OK, "{api}: {body}");
        }
        assert_eq!(runs(dir.path()), 1, "{api}: cached until expiry");
        assert_eq!(token_number(&server.last()), Some(1));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("args")).unwrap(),
            "--region test-1"
        );
        let info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("exec-info")).unwrap())
                .unwrap();
        assert_eq!(info["apiVersion"], api);
        assert_eq!(info["kind"], "ExecCredential");
        assert_eq!(info["spec"]["interactive"], false);
        assert_eq!(info["spec"]["cluster"]["server"], server.url());
        assert_eq!(info["spec"]["cluster"]["config"]["audience"], "kgate-test");
        assert!(
            info["spec"]["cluster"]["certificate-authority-data"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );

        advance(Duration::from_secs(3600)).await;
        let (status, _) = get(&client, "/api").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(runs(dir.path()), 2, "{api}: re-run after expiry");
        assert_eq!(token_number(&server.last()), Some(2));
    }
}

#[tokio::test]
async fn refresh_after_401_and_replay() {
    let pki = Pki::new("ca");
    let min_valid = Arc::new(AtomicUsize::new(2));
    let threshold = min_valid.clone();
    let server = TestServer::start(
        &pki,
        guarded(move |s| token_number(s).is_some_and(|n| n >= threshold.load(Ordering::SeqCst))),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let plugin = write_plugin(dir.path(), TOKEN_BODY);
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(&server.url(), &pki.ca_pem, &exec_user(&plugin, V1, "", "")),
    );
    let client = client(&config);

    // Token 1 is not expired by its timestamp but the server has revoked it: one 401, one
    // fresh plugin run, one replay of the same request (body included).
    let request = Request::post("/api/v1/namespaces/default/configmaps")
        .body(auth::full_body("{\"a\":1}"))
        .unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(runs(dir.path()), 2);
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(token_number(&seen[0]), Some(1));
    assert_eq!(token_number(&seen[1]), Some(2));
    assert_eq!(seen[1].body.as_ref(), b"{\"a\":1}");

    // A streaming body of unknown length cannot be replayed: the 401 is passed on, but the
    // credential is dropped so that the next request gets a fresh one.
    min_valid.store(3, Ordering::SeqCst);
    let stream = futures_util::stream::iter(vec![Ok::<_, auth::BoxError>(http_body::Frame::data(
        bytes::Bytes::from_static(b"chunk"),
    ))]);
    let body = http_body_util::StreamBody::new(stream).boxed_unsync();
    let response = client
        .send(Request::post("/upload").body(body).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(runs(dir.path()), 2);
    let (status, _) = get(&client, "/api").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(runs(dir.path()), 3);

    // A 401 that persists after the refresh is passed on after exactly one retry.
    min_valid.store(usize::MAX, Ordering::SeqCst);
    let before = server.requests().len();
    let (status, _) = get(&client, "/api").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(server.requests().len() - before, 2);
    assert_eq!(runs(dir.path()), 4);
}

#[tokio::test]
async fn one_plugin_run_for_many_concurrent_requests() {
    let pki = Pki::new("ca");
    let server = TestServer::start(&pki, guarded(|s| token_number(s).is_some())).await;
    let dir = tempfile::tempdir().unwrap();
    let plugin = write_plugin(dir.path(), TOKEN_BODY);
    let env = "      - name: PLUGIN_SLEEP\n        value: \"0.3\"\n";
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(
            &server.url(),
            &pki.ca_pem,
            &exec_user(&plugin, V1BETA1, env, ""),
        ),
    );
    let client = client(&config);

    let burst = |client: ApiClient| async move {
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { get(&client, "/api").await.0 })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), StatusCode::OK);
        }
    };
    burst(client.clone()).await;
    assert_eq!(
        runs(dir.path()),
        1,
        "no credential yet: one run for 40 requests"
    );

    advance(Duration::from_secs(7200)).await;
    burst(client.clone()).await;
    assert_eq!(
        runs(dir.path()),
        2,
        "expired credential: one run for 40 requests"
    );
    let numbers: Vec<_> = server.requests().iter().map(token_number).collect();
    assert!(numbers[..40].iter().all(|n| *n == Some(1)));
    assert!(numbers[40..].iter().all(|n| *n == Some(2)));
}

#[tokio::test]
async fn plugin_issued_client_certificate() {
    let pki = Pki::new("ca");
    let options = ServerOptions {
        client_certs: true,
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(&pki, options, guarded(|s| s.client_cert.is_some())).await;
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = pki.client_cert("exec-user", &key);
    let credential = serde_json::json!({
        "apiVersion": V1,
        "kind": "ExecCredential",
        "status": { "clientCertificateData": cert, "clientKeyData": key.serialize_pem() }
    });
    std::fs::write(dir.path().join("cred.json"), credential.to_string()).unwrap();
    let plugin = write_plugin(dir.path(), "cat \"$here/cred.json\"");
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(&server.url(), &pki.ca_pem, &exec_user(&plugin, V1, "", "")),
    );
    let (status, body) = get(&client(&config), "/api").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(server.last().header("authorization").is_none());
    assert!(server.last().client_cert.is_some());
    assert_eq!(runs(dir.path()), 1);
}

async fn credential_error(dir: &Path, user: &str, options: ClientOptions) -> CredentialError {
    let config = load_kubeconfig(
        dir,
        &kubeconfig_yaml("https://127.0.0.1:1", &Pki::new("ca").ca_pem, user),
    );
    let client = ApiClient::new(&config, options).unwrap();
    let error = client
        .send(Request::get("/api").body(auth::empty_body()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.fault(), Fault::Credentials, "{error}");
    match error {
        SendError::Credential(e) => e,
        other => panic!("expected a credential error, got {other}"),
    }
}

#[tokio::test]
async fn failed_plugin_shows_trimmed_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = write_plugin(
        dir.path(),
        "echo '' >&2\necho '  error: SSO session expired; run aws sso login  ' >&2\necho '' >&2\nexit 3",
    );
    let error = credential_error(
        dir.path(),
        &exec_user(&plugin, V1, "", ""),
        ClientOptions::default(),
    )
    .await;
    let text = error.to_string();
    assert!(
        text.ends_with("(exit status: 3): error: SSO session expired; run aws sso login"),
        "{text}"
    );
    assert!(text.contains("plugin.sh"), "{text}");
    assert!(text.contains("\"tester\""), "{text}");
}

#[tokio::test]
async fn missing_plugin_shows_install_hint() {
    let dir = tempfile::tempdir().unwrap();
    let user = "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kgate-test-no-such-plugin\n      installHint: |\n        kgate-test-no-such-plugin is needed for this cluster.\n        Install it with: brew install kgate-test-plugin\n";
    let error = credential_error(dir.path(), user, ClientOptions::default()).await;
    assert!(matches!(error, CredentialError::ExecNotFound { .. }));
    let text = error.to_string();
    assert!(text.contains("\"kgate-test-no-such-plugin\""), "{text}");
    assert!(
        text.contains("Install it with: brew install kgate-test-plugin"),
        "{text}"
    );
}

#[tokio::test]
async fn plugin_output_errors_and_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = write_plugin(
        dir.path(),
        "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"leaky-token\"}}'",
    );
    let error = credential_error(
        dir.path(),
        &exec_user(&plugin, V1, "", ""),
        ClientOptions::default(),
    )
    .await;
    let text = error.to_string();
    assert!(
        text.contains("configured for apiVersion client.authentication.k8s.io/v1"),
        "{text}"
    );
    assert!(!text.contains("leaky-token"));

    let dir = tempfile::tempdir().unwrap();
    let plugin = write_plugin(dir.path(), "echo '{\"token\": leaky-token-2'");
    let error = credential_error(
        dir.path(),
        &exec_user(&plugin, V1, "", ""),
        ClientOptions::default(),
    )
    .await;
    assert!(!error.to_string().contains("leaky-token-2"), "{error}");

    let dir = tempfile::tempdir().unwrap();
    let plugin = write_plugin(dir.path(), "exec sleep 30");
    let options = ClientOptions {
        credential_timeout: Duration::from_millis(300),
        ..ClientOptions::default()
    };
    let error = credential_error(dir.path(), &exec_user(&plugin, V1, "", ""), options).await;
    assert!(
        matches!(error, CredentialError::ExecTimeout { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn interactive_always_needs_a_terminal() {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        eprintln!("skipping: standard input is a terminal here, so the plugin would get it");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plugin = write_plugin(dir.path(), TOKEN_BODY);
    let user =
        exec_user(&plugin, V1, "", "").replace("interactiveMode: Never", "interactiveMode: Always");
    let error = credential_error(dir.path(), &user, ClientOptions::default()).await;
    assert!(
        matches!(error, CredentialError::ExecNeedsTerminal { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("needs a terminal"));
    assert_eq!(runs(dir.path()), 0);
}
