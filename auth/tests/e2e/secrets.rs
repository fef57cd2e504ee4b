//! No token, password or key appears in `Debug` output, error messages or tracing output at
//! any level, for every credential kind that carries one.

use std::io::Write;
use std::sync::{Arc, Mutex};

use auth::ApiClient;
use base64::Engine as _;
use http::{Request, StatusCode};
use tracing_subscriber::fmt::MakeWriter;

use crate::support::*;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

const SECRETS: [&str; 5] = [
    "tok-SECRET-1",
    "pw-SECRET-2",
    "exec-SECRET-3",
    "key-SECRET",
    "SECRET",
];

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} leaks {secret:?}:\n{text}");
    }
}

#[tokio::test]
async fn secrets_never_reach_debug_errors_or_logs() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(buffer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let pki = Pki::new("ca");
    // Accept nothing: every credential is sent, refused, refreshed and sent again.
    let server = TestServer::start(&pki, guarded(|_| false)).await;
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let key_pem = key.serialize_pem();
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(&key_pem);
    let cert_b64 = base64::engine::general_purpose::STANDARD.encode(pki.client_cert("u", &key));
    let plugin = dir.path().join("plugin.sh");
    std::fs::write(
        &plugin,
        "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"exec-SECRET-3\"}}'\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let users = [
        "    token: tok-SECRET-1".to_owned(),
        "    username: admin\n    password: pw-SECRET-2".to_owned(),
        format!(
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n",
            plugin.display()
        ),
        format!(
            "    client-certificate-data: {cert_b64}\n    client-key-data: {key_b64}\n    token: tok-SECRET-1"
        ),
    ];
    let mut texts = Vec::new();
    for user in &users {
        let config = load_kubeconfig(
            dir.path(),
            &kubeconfig_yaml(&server.url(), &pki.ca_pem, user),
        );
        texts.push(format!("{config:?}"));
        let client = ApiClient::new(&config, auth::ClientOptions::default()).unwrap();
        texts.push(format!("{client:?}"));
        let (status, _) = get(&client, "/api/v1/secrets").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let error = client
            .get_json::<serde_json::Value>("/api")
            .await
            .unwrap_err();
        texts.push(format!("{error} {error:?}"));
        // A failing connection's error too.
        let mut broken = config.clone();
        broken.server = "https://127.0.0.1:1/".parse().unwrap();
        let error = ApiClient::new(&broken, auth::ClientOptions::default())
            .unwrap()
            .send(Request::get("/api").body(auth::empty_body()).unwrap())
            .await
            .unwrap_err();
        texts.push(format!("{error} {error:?}"));
    }
    // The server really received them (so the test can fail), and the log has content.
    let seen: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|s| s.header("authorization"))
        .collect();
    assert!(seen.iter().any(|a| a.contains("tok-SECRET-1")));
    assert!(seen.iter().any(|a| a.contains("exec-SECRET-3")));
    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("request to the API server"),
        "tracing captured nothing:\n{logs}"
    );
    assert_clean("tracing output", &logs);
    assert!(!logs.contains(key_b64.as_str()) && !logs.contains("PRIVATE KEY"));
    for text in &texts {
        assert_clean("Debug or error text", text);
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains(key_b64.as_str()),
            "{text}"
        );
    }
}
