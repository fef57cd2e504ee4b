//! `proxy-url`: an HTTP CONNECT proxy (with Basic credentials from the URL) between the client
//! and the API server; end-to-end TLS goes through the tunnel.

use std::sync::{Arc, Mutex};

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// A CONNECT proxy that records each request head and tunnels to the named address.
async fn connect_proxy() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let log = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let target = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                log.lock().unwrap().push(head);
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, heads)
}

#[tokio::test]
async fn http_connect_proxy_with_credentials() {
    let pki = Pki::new("ca");
    let server = TestServer::start(&pki, guarded(|s| bearer_of(s).as_deref() == Some("t"))).await;
    let (proxy, heads) = connect_proxy().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = kubeconfig_yaml(&server.url(), &pki.ca_pem, "    token: t").replace(
        "    certificate-authority-data:",
        &format!(
            "    proxy-url: http://proxyuser:pr%40xy-pw@{proxy}\n    certificate-authority-data:"
        ),
    );
    let config = load_kubeconfig(dir.path(), &yaml);
    let (status, body) = get(&client(&config), "/api").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 1);
    assert!(
        heads[0].starts_with(&format!("CONNECT {} HTTP/1.1", server.addr)),
        "{}",
        heads[0]
    );
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode("proxyuser:pr@xy-pw");
    assert!(
        heads[0].to_ascii_lowercase().contains(&format!(
            "proxy-authorization: basic {}",
            expected.to_ascii_lowercase()
        )),
        "{}",
        heads[0]
    );
}

#[tokio::test]
async fn unreachable_proxy_is_named_without_password() {
    let pki = Pki::new("ca");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = listener.local_addr().unwrap();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let yaml = kubeconfig_yaml("https://127.0.0.1:6443", &pki.ca_pem, "    token: t").replace(
        "    certificate-authority-data:",
        &format!("    proxy-url: http://u:hidden-pw@{dead}\n    certificate-authority-data:"),
    );
    let config = load_kubeconfig(dir.path(), &yaml);
    let error = client(&config)
        .send(http::Request::get("/api").body(auth::empty_body()).unwrap())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert_eq!(error.fault(), auth::Fault::Network, "{text}");
    assert!(text.contains(&format!("via proxy http://{dead}")), "{text}");
    assert!(!text.contains("hidden-pw"), "{text}");
}
