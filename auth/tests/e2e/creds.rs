//! Token files (rotation, 401 re-read), in-cluster service accounts, and the OIDC
//! auth-provider against a fake HTTPS issuer with its own CA.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth::{ApiClient, ClientOptions, CredentialError, SendError};
use base64::Engine as _;
use config::{ClusterConfig, ConfigSource, Env, KubeArgs};
use http::{Request, StatusCode};

use crate::support::*;

async fn advance(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

fn accepting(tokens: &Arc<Mutex<HashSet<String>>>) -> Handler {
    let tokens = tokens.clone();
    guarded(move |s| bearer_of(s).is_some_and(|t| tokens.lock().unwrap().contains(&t)))
}

fn set(tokens: &Arc<Mutex<HashSet<String>>>, accepted: &[&str]) {
    *tokens.lock().unwrap() = accepted.iter().map(|t| t.to_string()).collect();
}

#[tokio::test]
async fn token_file_rotation() {
    let pki = Pki::new("ca");
    let tokens = Arc::new(Mutex::new(HashSet::new()));
    set(&tokens, &["token-a"]);
    let server = TestServer::start(&pki, accepting(&tokens)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "token-a\n").unwrap();
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(&server.url(), &pki.ca_pem, "    tokenFile: token"),
    );
    let client = client(&config);
    assert_eq!(get(&client, "/api").await.0, StatusCode::OK);

    // Rotated and the old token revoked at once: the 401 makes the client re-read the file
    // and replay the request.
    std::fs::write(dir.path().join("token"), "token-b").unwrap();
    set(&tokens, &["token-b"]);
    assert_eq!(get(&client, "/api").await.0, StatusCode::OK);
    assert_eq!(bearer_of(&server.last()).as_deref(), Some("token-b"));

    // Rotated while the old one still works: picked up within the re-read interval.
    std::fs::write(dir.path().join("token"), "token-c").unwrap();
    set(&tokens, &["token-b", "token-c"]);
    advance(Duration::from_secs(2)).await;
    assert_eq!(get(&client, "/api").await.0, StatusCode::OK);
    assert_eq!(bearer_of(&server.last()).as_deref(), Some("token-c"));

    // The file vanishes: the last good token stays in use.
    std::fs::remove_file(dir.path().join("token")).unwrap();
    advance(Duration::from_secs(2)).await;
    assert_eq!(get(&client, "/api").await.0, StatusCode::OK);
    assert_eq!(bearer_of(&server.last()).as_deref(), Some("token-c"));
}

#[tokio::test]
async fn unreadable_token_file_is_named() {
    let pki = Pki::new("ca");
    let dir = tempfile::tempdir().unwrap();
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(
            "https://127.0.0.1:1",
            &pki.ca_pem,
            "    tokenFile: missing-token",
        ),
    );
    let error = client(&config)
        .send(Request::get("/api").body(auth::empty_body()).unwrap())
        .await
        .unwrap_err();
    let SendError::Credential(CredentialError::TokenFile { path, .. }) = &error else {
        panic!("{error}")
    };
    assert!(path.ends_with("missing-token"));
    assert!(error.to_string().contains("missing-token"), "{error}");
}

#[tokio::test]
async fn in_cluster_service_account() {
    let pki = Pki::new("cluster-ca");
    let tokens = Arc::new(Mutex::new(HashSet::new()));
    set(&tokens, &["sa-token-1"]);
    let server = TestServer::start(&pki, accepting(&tokens)).await;
    let sa = tempfile::tempdir().unwrap();
    std::fs::write(sa.path().join("token"), "sa-token-1").unwrap();
    std::fs::write(sa.path().join("ca.crt"), &pki.ca_pem).unwrap();
    std::fs::write(sa.path().join("namespace"), "monitoring\n").unwrap();
    let env = Env {
        kubernetes_service_host: Some("127.0.0.1".into()),
        kubernetes_service_port: Some(server.addr.port().to_string()),
        service_account_dir: sa.path().to_owned(),
        ..Env::empty()
    };
    let config = ClusterConfig::load_with_env(&KubeArgs::default(), &env).unwrap();
    assert_eq!(config.source, ConfigSource::InCluster);
    assert_eq!(config.namespace, "monitoring");
    assert_eq!(config.server.as_str(), format!("{}/", server.url()));
    let client = client(&config);
    assert_eq!(get(&client, "/api").await.0, StatusCode::OK);

    // Bound service-account tokens rotate.
    std::fs::write(sa.path().join("token"), "sa-token-2").unwrap();
    set(&tokens, &["sa-token-2"]);
    assert_eq!(get(&client, "/api").await.0, StatusCode::OK);
    assert_eq!(bearer_of(&server.last()).as_deref(), Some("sa-token-2"));
}

fn jwt(exp: i64, n: usize) -> String {
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(serde_json::json!({"alg": "RS256"})),
        b64(serde_json::json!({"iss": "test", "sub": "alice", "exp": exp, "n": n}))
    )
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A fake OpenID issuer: discovery, and a token endpoint that trades refresh token
/// `refresh-<k>` for a fresh id-token and `refresh-<k+1>`.
struct Issuer {
    server: TestServer,
    pki: Pki,
    issued: Arc<Mutex<HashSet<String>>>,
}

async fn issuer() -> Issuer {
    let pki = Pki::new("idp-ca");
    let issued = Arc::new(Mutex::new(HashSet::new()));
    let own_url = Arc::new(Mutex::new(String::new()));
    let (url, tokens) = (own_url.clone(), issued.clone());
    let counter = Arc::new(Mutex::new(0usize));
    let handler: Handler = Arc::new(move |s: &Seen| {
        if s.path == "/.well-known/openid-configuration" {
            let base = url.lock().unwrap().clone();
            return reply(
                StatusCode::OK,
                &format!(r#"{{"issuer":"{base}","token_endpoint":"{base}/token"}}"#),
            );
        }
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&s.body).into_owned().collect();
        let refresh = form.get("refresh_token").cloned().unwrap_or_default();
        let Some(k) = refresh
            .strip_prefix("refresh-")
            .and_then(|k| k.parse::<usize>().ok())
        else {
            return reply(
                StatusCode::BAD_REQUEST,
                r#"{"error":"invalid_grant","error_description":"Token is not active"}"#,
            );
        };
        let mut n = counter.lock().unwrap();
        *n += 1;
        let id_token = jwt(now() + 3600, *n);
        tokens.lock().unwrap().insert(id_token.clone());
        reply(
            StatusCode::OK,
            &format!(
                r#"{{"id_token":"{id_token}","refresh_token":"refresh-{}","token_type":"Bearer"}}"#,
                k + 1
            ),
        )
    });
    let server = TestServer::start(&pki, handler).await;
    *own_url.lock().unwrap() = server.url();
    Issuer {
        server,
        pki,
        issued,
    }
}

fn oidc_user(issuer: &Issuer, secret: Option<&str>, id_token: &str, refresh: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(&issuer.pki.ca_pem);
    let secret = secret
        .map(|s| format!("        client-secret: {s}\n"))
        .unwrap_or_default();
    format!(
        "    auth-provider:\n      name: oidc\n      config:\n        idp-issuer-url: {}\n        client-id: kgate-cli\n{secret}        id-token: {id_token}\n        refresh-token: {refresh}\n        idp-certificate-authority-data: {ca}\n",
        issuer.server.url()
    )
}

#[tokio::test]
async fn oidc_refresh_with_client_secret() {
    let issuer = issuer().await;
    let pki = Pki::new("cluster-ca");
    let api = TestServer::start(&pki, accepting(&issuer.issued)).await;
    let dir = tempfile::tempdir().unwrap();
    let user = oidc_user(&issuer, Some("cs-secret"), &jwt(now() - 60, 0), "refresh-1");
    let config = load_kubeconfig(dir.path(), &kubeconfig_yaml(&api.url(), &pki.ca_pem, &user));
    let client = client(&config);
    assert_eq!(get(&client, "/api").await.0, StatusCode::OK);
    assert_eq!(get(&client, "/api").await.0, StatusCode::OK);
    let token_calls: Vec<Seen> = issuer
        .server
        .requests()
        .into_iter()
        .filter(|s| s.path == "/token")
        .collect();
    assert_eq!(token_calls.len(), 1, "a fresh id-token is reused");
    let basic = base64::engine::general_purpose::STANDARD.encode("kgate-cli:cs-secret");
    assert_eq!(
        token_calls[0].header("authorization"),
        Some(format!("Basic {basic}"))
    );

    // After expiry, the rotated refresh token is the one used.
    advance(Duration::from_secs(3600)).await;
    assert_eq!(get(&client, "/api").await.0, StatusCode::OK);
    let token_calls: Vec<Seen> = issuer
        .server
        .requests()
        .into_iter()
        .filter(|s| s.path == "/token")
        .collect();
    assert_eq!(token_calls.len(), 2);
    assert!(String::from_utf8_lossy(&token_calls[1].body).contains("refresh_token=refresh-2"));
}

#[tokio::test]
async fn oidc_public_client_and_valid_id_token() {
    let issuer = issuer().await;
    let pki = Pki::new("cluster-ca");
    let api = TestServer::start(&pki, accepting(&issuer.issued)).await;
    let dir = tempfile::tempdir().unwrap();

    // A still-valid id-token is sent as is, without asking the issuer.
    let valid = jwt(now() + 600, 99);
    issuer.issued.lock().unwrap().insert(valid.clone());
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(
            &api.url(),
            &pki.ca_pem,
            &oidc_user(&issuer, None, &valid, "refresh-1"),
        ),
    );
    assert_eq!(get(&client(&config), "/api").await.0, StatusCode::OK);
    assert_eq!(bearer_of(&api.last()), Some(valid));
    assert!(issuer.server.requests().is_empty());

    // A public client (no client-secret) refreshes with its client_id only.
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(
            &api.url(),
            &pki.ca_pem,
            &oidc_user(&issuer, None, &jwt(now() - 1, 0), "refresh-1"),
        ),
    );
    assert_eq!(get(&client(&config), "/api").await.0, StatusCode::OK);
    let call = issuer.server.last();
    assert_eq!(call.path, "/token");
    assert!(call.header("authorization").is_none());
    let body = String::from_utf8_lossy(&call.body).into_owned();
    assert!(
        body.contains("client_id=kgate-cli") && body.contains("grant_type=refresh_token"),
        "{body}"
    );
}

#[tokio::test]
async fn oidc_expired_refresh_token_says_log_in_again() {
    let issuer = issuer().await;
    let dir = tempfile::tempdir().unwrap();
    let user = oidc_user(
        &issuer,
        Some("cs-secret"),
        &jwt(now() - 60, 0),
        "expired-refresh-token",
    );
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml("https://127.0.0.1:1", &Pki::new("x").ca_pem, &user),
    );
    let client = ApiClient::new(&config, ClientOptions::default()).unwrap();
    let error = client
        .send(Request::get("/api").body(auth::empty_body()).unwrap())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(
            error,
            SendError::Credential(CredentialError::OidcRefreshRejected { .. })
        ),
        "{text}"
    );
    assert!(
        text.contains("invalid_grant: Token is not active"),
        "{text}"
    );
    assert!(text.contains("log in again"), "{text}");
    assert!(
        !text.contains("expired-refresh-token") && !text.contains("cs-secret"),
        "{text}"
    );
}
