//! Against the simulated API server (`simcluster`), which checks bearer tokens, basic auth
//! and client certificates as the real one does: each credential kind end to end.

use auth::{ApiClient, ClientOptions};
use base64::Engine as _;
use http::StatusCode;
use simcluster::SimCluster;

use crate::support::*;

async fn cluster() -> SimCluster {
    install_provider();
    SimCluster::builder()
        .sample_apps(false)
        .token("dev", "dev-token-123")
        .basic("ops", "ops-password")
        .client_cert_user("carol")
        .start()
        .await
        .unwrap()
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn admin_kubeconfig_lists_namespaces() {
    let cluster = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let config = load_kubeconfig(dir.path(), &cluster.kubeconfig_yaml());
    let client = ApiClient::new(&config, ClientOptions::default()).unwrap();
    let list: serde_json::Value = client.get_json("/api/v1/namespaces").await.unwrap();
    assert_eq!(list["kind"], "NamespaceList");
    cluster.shutdown().await;
}

#[tokio::test]
async fn token_basic_and_client_certificate() {
    let cluster = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cluster.client_cert_pem("carol").unwrap();
    let cases = [
        ("    token: dev-token-123".to_owned(), StatusCode::OK),
        (
            "    token: wrong-token".to_owned(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "    username: ops\n    password: ops-password".to_owned(),
            StatusCode::OK,
        ),
        (
            "    username: ops\n    password: wrong".to_owned(),
            StatusCode::UNAUTHORIZED,
        ),
        // The x509 authenticator wins over a bad token, so 200 proves the certificate was used.
        (
            format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n    token: wrong-token",
                b64(&cert),
                b64(&key)
            ),
            StatusCode::OK,
        ),
    ];
    for (user, expected) in cases {
        let config = load_kubeconfig(
            dir.path(),
            &kubeconfig_yaml(&cluster.url(), cluster.ca_pem(), &user),
        );
        let (status, body) = get(&client(&config), "/version").await;
        assert_eq!(status, expected, "{user}: {body}");
    }
    cluster.shutdown().await;
}
