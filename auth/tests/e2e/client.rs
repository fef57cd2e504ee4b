//! Transport behaviour: ALPN, upgrades, server paths, Host, credentials policy, impersonation,
//! client certificates of each key type, TLS options, and connection failures.

use std::sync::Arc;

use auth::{ApiClient, ClientAuthorization, ClientOptions, Fault, SendError};
use base64::Engine as _;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use rcgen::KeyPair;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn token_over_h2_with_host_and_user_agent() {
    let pki = Pki::new("ca");
    let server = TestServer::start(
        &pki,
        guarded(|s| bearer_of(s).as_deref() == Some("tok-123")),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(&server.url(), &pki.ca_pem, "    token: tok-123"),
    );
    assert_eq!(config.namespace, "testns");
    let client = client(&config);
    let (status, body) = get(&client, "/api/v1/namespaces?limit=1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen = server.last();
    assert_eq!(seen.version, http::Version::HTTP_2, "ALPN should pick h2");
    assert_eq!(seen.path, "/api/v1/namespaces?limit=1");
    assert!(seen.header("user-agent").unwrap().starts_with("kgate/"));
}

#[tokio::test]
async fn basic_auth() {
    let pki = Pki::new("ca");
    let expected = format!("Basic {}", b64("alice:s3cret-pw"));
    let server = TestServer::start(
        &pki,
        guarded(move |s| s.header("authorization").as_deref() == Some(expected.as_str())),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let user = "    username: alice\n    password: s3cret-pw";
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(&server.url(), &pki.ca_pem, user),
    );
    let (status, _) = get(&client(&config), "/version").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn falls_back_to_http11_when_server_has_no_h2() {
    let pki = Pki::new("ca");
    let options = ServerOptions {
        alpn: vec![b"http/1.1".to_vec()],
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(&pki, options, guarded(|_| true)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(&server.url(), &pki.ca_pem, "    {}"),
    );
    let (status, _) = get(&client(&config), "/version").await;
    assert_eq!(status, StatusCode::OK);
    let seen = server.last();
    assert_eq!(seen.version, http::Version::HTTP_11);
    assert_eq!(seen.header("host").unwrap(), server.addr.to_string());
}

#[tokio::test]
async fn upgrade_goes_over_http11_and_tunnels() {
    let pki = Pki::new("ca");
    let handler: Handler = Arc::new(|s: &Seen| {
        if s.header("upgrade").as_deref() == Some("SPDY/3.1") {
            http::Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("connection", "Upgrade")
                .header("upgrade", "SPDY/3.1")
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap()
        } else {
            reply(StatusCode::BAD_REQUEST, "{}")
        }
    });
    let server = TestServer::start(&pki, handler).await;
    let dir = tempfile::tempdir().unwrap();
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(&server.url(), &pki.ca_pem, "    token: t"),
    );
    let client = client(&config);
    // A plain request first, so that an h2 connection sits in the pool.
    let _ = get(&client, "/healthz").await;
    let request = Request::get("/api/v1/namespaces/default/pods/p/exec?command=sh")
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .body(auth::empty_body())
        .unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(server.last().version, http::Version::HTTP_11);
    assert_eq!(bearer_of(&server.last()).as_deref(), Some("t"));
    let upgraded = hyper::upgrade::on(response).await.unwrap();
    let mut io = hyper_util::rt::TokioIo::new(upgraded);
    io.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    io.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
}

#[tokio::test]
async fn server_path_dropped_or_appended() {
    let pki = Pki::new("ca");
    let server = TestServer::start(
        &pki,
        Arc::new(|s: &Seen| reply(StatusCode::OK, &format!("{{\"path\":\"{}\"}}", s.path))),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/k8s/clusters/c-m-abc/", server.url());
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(&url, &pki.ca_pem, "    token: t"),
    );

    let dropping = client(&config);
    let _ = get(&dropping, "/api/v1/pods?watch=1").await;
    assert_eq!(server.last().path, "/api/v1/pods?watch=1");

    let appending = ApiClient::new(
        &config,
        ClientOptions {
            append_server_path: true,
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let _ = get(&appending, "/api/v1/pods?watch=1").await;
    assert_eq!(
        server.last().path,
        "/k8s/clusters/c-m-abc/api/v1/pods?watch=1"
    );
    assert_eq!(
        appending.upstream_uri("/api").unwrap().to_string(),
        format!("{}/k8s/clusters/c-m-abc/api", server.url())
    );

    // get_json always keeps the server path, as client-go does.
    #[derive(serde::Deserialize)]
    struct Echo {
        path: String,
    }
    let echo: Echo = dropping.get_json("/version").await.unwrap();
    assert_eq!(echo.path, "/k8s/clusters/c-m-abc/version");
}

#[tokio::test]
async fn client_authorization_policy_and_impersonation() {
    let pki = Pki::new("ca");
    let server = TestServer::start(&pki, guarded(|_| true)).await;
    let dir = tempfile::tempdir().unwrap();
    let user = "    token: kubeconfig-token\n    as: bob\n    as-uid: \"42\"\n    as-groups: [devs, ops]\n    as-user-extra:\n      scopes.example.com/team: [blue]";
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(&server.url(), &pki.ca_pem, user),
    );
    let client = client(&config);
    let request = |policy: Option<ClientAuthorization>| {
        let mut request = Request::get("/api")
            .header("authorization", "Bearer browser-token")
            .header("impersonate-user", "mallory")
            .header("impersonate-group", "system:masters")
            .body(auth::empty_body())
            .unwrap();
        if let Some(policy) = policy {
            request.extensions_mut().insert(policy);
        }
        request
    };

    // Default: the client's credentials and identity headers never reach the API server.
    client.send(request(None)).await.unwrap();
    let seen = server.last();
    assert_eq!(bearer_of(&seen).as_deref(), Some("kubeconfig-token"));
    assert_eq!(seen.header("impersonate-user").as_deref(), Some("bob"));
    assert_eq!(seen.header("impersonate-uid").as_deref(), Some("42"));
    let groups: Vec<_> = seen
        .headers
        .get_all("impersonate-group")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(groups, ["devs", "ops"]);
    assert_eq!(
        seen.header("impersonate-extra-scopes.example.com%2fteam")
            .as_deref(),
        Some("blue")
    );

    // kubectl proxy: the client's Authorization and Impersonate-User win.
    client
        .send(request(Some(ClientAuthorization::KeepIfPresent)))
        .await
        .unwrap();
    let seen = server.last();
    assert_eq!(bearer_of(&seen).as_deref(), Some("browser-token"));
    assert_eq!(seen.header("impersonate-user").as_deref(), Some("mallory"));

    // KeepIfPresent without a client Authorization uses the kubeconfig's.
    let mut plain = Request::get("/api").body(auth::empty_body()).unwrap();
    plain
        .extensions_mut()
        .insert(ClientAuthorization::KeepIfPresent);
    client.send(plain).await.unwrap();
    assert_eq!(
        bearer_of(&server.last()).as_deref(),
        Some("kubeconfig-token")
    );
}

async fn client_cert_round_trip(cert_pem: &str, key_pem: &str) {
    let pki = Pki::new("ca");
    let options = ServerOptions {
        client_certs: true,
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(&pki, options, guarded(|s| s.client_cert.is_some())).await;
    let dir = tempfile::tempdir().unwrap();
    let user = format!(
        "    client-certificate-data: {}\n    client-key-data: {}",
        b64(cert_pem),
        b64(key_pem)
    );
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(&server.url(), &pki.ca_pem, &user),
    );
    let (status, body) = get(&client(&config), "/api").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let der = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    assert_eq!(server.last().client_cert.as_deref(), Some(der.as_ref()));
}

use rustls::pki_types::pem::PemObject as _;

#[tokio::test]
async fn client_certificates_of_every_key_type() {
    let pki = Pki::new("ca");
    // The server PKI differs per round trip; each issues its own client certificate, so
    // build the PEM inside a fresh PKI shared with the server.
    let fixtures = [
        (
            "rsa-pkcs1",
            include_str!("../fixtures/rsa-pkcs1.key"),
            include_str!("../fixtures/rsa-pkcs8.key"),
        ),
        (
            "ec-sec1",
            include_str!("../fixtures/ec-sec1.key"),
            include_str!("../fixtures/ec-pkcs8.key"),
        ),
    ];
    drop(pki);
    for (name, client_key, pkcs8) in fixtures {
        run_with_key(name, client_key, &KeyPair::from_pem(pkcs8).unwrap()).await;
    }
    for alg in [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_ED25519,
    ] {
        let key = KeyPair::generate_for(alg).unwrap();
        run_with_key(&format!("{alg:?}"), &key.serialize_pem(), &key).await;
    }
}

async fn run_with_key(name: &str, client_key_pem: &str, key: &KeyPair) {
    eprintln!("client key type {name}");
    let pki = Pki::new("ca");
    let options = ServerOptions {
        client_certs: true,
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(&pki, options, guarded(|s| s.client_cert.is_some())).await;
    let cert_pem = pki.client_cert("alice", key);
    let dir = tempfile::tempdir().unwrap();
    // Files this time, relative to the kubeconfig, as kubeadm writes them.
    std::fs::write(dir.path().join("alice.crt"), &cert_pem).unwrap();
    std::fs::write(dir.path().join("alice.key"), client_key_pem).unwrap();
    let user = "    client-certificate: alice.crt\n    client-key: alice.key";
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(&server.url(), &pki.ca_pem, user),
    );
    let (status, body) = get(&client(&config), "/api").await;
    assert_eq!(status, StatusCode::OK, "{name}: {body}");
    let der = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    assert_eq!(
        server.last().client_cert.as_deref(),
        Some(der.as_ref()),
        "{name}"
    );
    let _ = client_cert_round_trip;
}

#[tokio::test]
async fn mismatched_client_key_is_refused_at_build() {
    let pki = Pki::new("ca");
    let key = KeyPair::generate().unwrap();
    let other = KeyPair::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let user = format!(
        "    client-certificate-data: {}\n    client-key-data: {}",
        b64(&pki.client_cert("a", &key)),
        b64(&other.serialize_pem())
    );
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml("https://127.0.0.1:1", &pki.ca_pem, &user),
    );
    let error = ApiClient::new(&config, ClientOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("client-certificate-data of \"tester\""),
        "{error}"
    );
    assert!(error.contains("does not match"), "{error}");
    assert!(!error.contains("PRIVATE KEY"), "{error}");
}

#[tokio::test]
async fn tls_failure_names_server_and_ca() {
    let pki = Pki::new("ca");
    let other = Pki::new("some-other-ca");
    let server = TestServer::start(&pki, guarded(|_| true)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wrong-ca.crt"), &other.ca_pem).unwrap();
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority: wrong-ca.crt\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\nusers:\n- name: u\n  user: {{token: t}}\n",
        server.url()
    );
    let config = load_kubeconfig(dir.path(), &yaml);
    let error = client(&config)
        .send(Request::get("/api").body(auth::empty_body()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.fault(), Fault::Tls);
    let text = error.to_string();
    assert!(text.contains(&server.url()), "{text}");
    assert!(text.contains("wrong-ca.crt"), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(matches!(error, SendError::Tls { .. }));
    eprintln!("{text}");
}

#[tokio::test]
async fn tls_server_name_and_insecure() {
    let pki = Pki::new("ca");
    let options = ServerOptions {
        names: vec!["api.internal.example"],
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(&pki, options, guarded(|_| true)).await;
    let dir = tempfile::tempdir().unwrap();

    // The certificate does not name 127.0.0.1: verification fails...
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(&server.url(), &pki.ca_pem, "    token: t"),
    );
    let error = client(&config)
        .send(Request::get("/api").body(auth::empty_body()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.fault(), Fault::Tls, "{error}");

    // ...unless tls-server-name says which name to check.
    let args = config::KubeArgs {
        tls_server_name: Some("api.internal.example".into()),
        ..Default::default()
    };
    let config = try_load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(&server.url(), &pki.ca_pem, "    token: t"),
        args,
    )
    .unwrap();
    let (status, _) = get(&client(&config), "/api").await;
    assert_eq!(status, StatusCode::OK);

    // --insecure-skip-tls-verify accepts it too (and drops the CA, as clientcmd does).
    let args = config::KubeArgs {
        insecure_skip_tls_verify: true,
        ..Default::default()
    };
    let config = try_load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(&server.url(), &pki.ca_pem, "    token: t"),
        args,
    )
    .unwrap();
    assert!(config.tls.ca.is_none());
    let (status, _) = get(&client(&config), "/api").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn connection_refused_says_so() {
    let pki = Pki::new("ca");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(
            &format!("https://127.0.0.1:{port}"),
            &pki.ca_pem,
            "    token: t0ps3cret",
        ),
    );
    let error = client(&config)
        .send(Request::get("/api").body(auth::empty_body()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.fault(), Fault::Network, "{error}");
    let text = error.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("refused"), "{text}");
    assert!(!text.contains("t0ps3cret"));
}

#[tokio::test]
async fn get_json_reports_status_message() {
    let pki = Pki::new("ca");
    let server = TestServer::start(
        &pki,
        Arc::new(|_: &Seen| {
            reply(
                StatusCode::FORBIDDEN,
                r#"{"kind":"Status","message":"services is forbidden: User \"x\" cannot list"}"#,
            )
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(&server.url(), &pki.ca_pem, "    token: t"),
    );
    let error = client(&config)
        .get_json::<serde_json::Value>("/api/v1/services")
        .await
        .unwrap_err();
    assert!(matches!(&error, SendError::Status { status, .. } if *status == StatusCode::FORBIDDEN));
    assert!(
        error.to_string().contains("services is forbidden"),
        "{error}"
    );
}

#[tokio::test]
async fn streaming_body_arrives_whole() {
    let pki = Pki::new("ca");
    let server = TestServer::start(&pki, guarded(|_| true)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = load_kubeconfig(
        dir.path(),
        &kubeconfig_yaml(&server.url(), &pki.ca_pem, "    token: t"),
    );
    let chunks: Vec<Result<http_body::Frame<bytes::Bytes>, auth::BoxError>> = (0..100)
        .map(|_| Ok(http_body::Frame::data(bytes::Bytes::from(vec![b'x'; 1000]))))
        .collect();
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(chunks)).boxed_unsync();
    let response = client(&config)
        .send(Request::post("/upload").body(body).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let _ = response.into_body().collect().await.unwrap();
    assert_eq!(server.last().method, "POST");
    assert_eq!(server.last().body.len(), 100_000);
}
