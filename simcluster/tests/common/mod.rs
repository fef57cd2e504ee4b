//! Test helpers: a started cluster and an HTTPS client (hyper-util + rustls) that trusts its CA.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a test failure"
)]

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use simcluster::SimCluster;

pub(crate) type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Resp {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
}

pub(crate) fn roots(cluster: &SimCluster) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut cluster.ca_pem().as_bytes()).flatten() {
        roots.add(cert).unwrap();
    }
    roots
}

/// A client configuration trusting the cluster CA; `alpn` picks the HTTP versions offered.
pub(crate) fn tls_config(
    cluster: &SimCluster,
    client_cert: Option<(String, String)>,
    alpn: &[&[u8]],
) -> (rustls::ClientConfig, Vec<Vec<u8>>) {
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots(cluster));
    let config = match client_cert {
        Some((cert, key)) => {
            let certs = rustls_pemfile::certs(&mut cert.as_bytes())
                .flatten()
                .collect();
            let key = rustls_pemfile::private_key(&mut key.as_bytes())
                .unwrap()
                .unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    (config, alpn.iter().map(|p| p.to_vec()).collect())
}

pub(crate) fn client_with((config, alpn): (rustls::ClientConfig, Vec<Vec<u8>>)) -> HttpsClient {
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only();
    let h1 = alpn.iter().any(|p| p == b"http/1.1");
    let h2 = alpn.iter().any(|p| p == b"h2");
    let connector = match (h1, h2) {
        (true, false) => builder.enable_http1().build(),
        (false, true) => builder.enable_http2().build(),
        _ => builder.enable_http1().enable_http2().build(),
    };
    Client::builder(TokioExecutor::new()).build(connector)
}

pub(crate) fn client(cluster: &SimCluster) -> HttpsClient {
    client_with(tls_config(cluster, None, &[b"h2", b"http/1.1"]))
}

pub(crate) async fn start() -> (SimCluster, HttpsClient) {
    start_with(
        SimCluster::builder()
            .token("alice", "alice-token")
            .basic("bob", "bob-password")
            .client_cert_user("carol")
            .forbid_proxy("mallory")
            .token("mallory", "mallory-token"),
    )
    .await
}

/// A cluster from `builder`, and a client that trusts it.
pub(crate) async fn start_with(
    builder: simcluster::SimClusterBuilder,
) -> (SimCluster, HttpsClient) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cluster = builder.start().await.unwrap();
    let client = client(&cluster);
    (cluster, client)
}

pub(crate) async fn send(
    client: &HttpsClient,
    cluster: &SimCluster,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{}{}", cluster.url(), path));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Full::new(Bytes::copy_from_slice(body))).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub(crate) async fn get(client: &HttpsClient, cluster: &SimCluster, path: &str) -> Resp {
    send(
        client,
        cluster,
        "GET",
        path,
        Some(cluster.admin_token()),
        &[],
        b"",
    )
    .await
}

pub(crate) fn status_json(code: u16, reason: &str, message: &str) -> serde_json::Value {
    let mut v = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "code": code});
    if !reason.is_empty() {
        v["reason"] = serde_json::json!(reason);
    }
    v
}

/// A raw TLS connection to the API server offering HTTP/1.1 only, for upgrades by hand.
pub(crate) async fn raw_tls(
    cluster: &simcluster::SimCluster,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let (config, _) = tls_config(cluster, None, &[]);
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(cluster.addr())
        .await
        .unwrap();
    connector
        .connect(
            rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
            tcp,
        )
        .await
        .unwrap()
}
