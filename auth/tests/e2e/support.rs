//! Test helpers: a throw-away PKI (rcgen), an HTTPS server (tokio-rustls + hyper, HTTP/2 and
//! HTTP/1.1 by ALPN, optional client certificates, upgrades echoed) that records what it saw,
//! and kubeconfig writing. Loopback only, port 0.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use auth::{ApiClient, ClientOptions};
use bytes::Bytes;
use config::{ClusterConfig, Env, KubeArgs};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

pub(crate) fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub(crate) struct Pki {
    pub(crate) ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    pub(crate) fn new(name: &str) -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    pub(crate) fn server_cert(
        &self,
        names: &[&str],
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            vec![cert.der().clone()],
            PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
    }

    /// A client certificate for `cn` over `key` (PEM of the certificate).
    pub(crate) fn client_cert(&self, cn: &str, key: &KeyPair) -> String {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.signed_by(key, &self.issuer).unwrap().pem()
    }
}

/// One request as the test server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) version: http::Version,
    pub(crate) headers: HeaderMap,
    pub(crate) client_cert: Option<Vec<u8>>,
    pub(crate) body: Bytes,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

pub(crate) type Handler = Arc<dyn Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync>;

pub(crate) fn reply(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

pub(crate) fn unauthorized() -> Response<Full<Bytes>> {
    reply(
        StatusCode::UNAUTHORIZED,
        r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#,
    )
}

/// A handler that answers 200 `{"ok":true}` when `check` accepts the request, else 401.
pub(crate) fn guarded(check: impl Fn(&Seen) -> bool + Send + Sync + 'static) -> Handler {
    Arc::new(move |seen| {
        if check(seen) {
            reply(StatusCode::OK, r#"{"ok":true}"#)
        } else {
            unauthorized()
        }
    })
}

pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) struct ServerOptions {
    /// Ask for (but do not require) client certificates signed by the PKI's CA.
    pub(crate) client_certs: bool,
    /// Names in the serving certificate.
    pub(crate) names: Vec<&'static str>,
    /// ALPN protocols offered.
    pub(crate) alpn: Vec<Vec<u8>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            client_certs: false,
            names: vec!["127.0.0.1", "localhost"],
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }
}

impl TestServer {
    pub(crate) async fn start(pki: &Pki, handler: Handler) -> TestServer {
        Self::start_with(pki, ServerOptions::default(), handler).await
    }

    pub(crate) async fn start_with(
        pki: &Pki,
        options: ServerOptions,
        handler: Handler,
    ) -> TestServer {
        install_provider();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (chain, key) = pki.server_cert(&options.names);
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if options.client_certs {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
                roots.add(cert.unwrap()).unwrap();
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_single_cert(chain, key).unwrap();
        config.alpn_protocols = options.alpn.clone();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let handler = handler.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let client_cert = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| c.as_ref().to_vec());
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let handler = handler.clone();
                        let log = log.clone();
                        let client_cert = client_cert.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                serve(req, handler, log, client_cert).await,
                            )
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TestServer { addr, seen, task }
    }

    pub(crate) fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub(crate) fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn last(&self) -> Seen {
        self.requests()
            .last()
            .cloned()
            .expect("the server saw no request")
    }
}

async fn serve(
    mut req: Request<Incoming>,
    handler: Handler,
    log: Arc<Mutex<Vec<Seen>>>,
    client_cert: Option<Vec<u8>>,
) -> Response<Full<Bytes>> {
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        version: parts.version,
        headers: parts.headers,
        client_cert,
        body,
    };
    let response = handler(&seen);
    log.lock().unwrap().push(seen);
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let (mut r, mut w) = tokio::io::split(&mut io);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
    }
    response
}

/// Writes `yaml` to `dir/config` and loads it as kubectl would with `--kubeconfig`.
pub(crate) fn load_kubeconfig(dir: &Path, yaml: &str) -> ClusterConfig {
    try_load_kubeconfig(dir, yaml, KubeArgs::default()).unwrap()
}

pub(crate) fn try_load_kubeconfig(
    dir: &Path,
    yaml: &str,
    mut args: KubeArgs,
) -> Result<ClusterConfig, config::ConfigError> {
    let path = dir.join("config");
    std::fs::write(&path, yaml).unwrap();
    args.kubeconfig = Some(path);
    ClusterConfig::load_with_env(&args, &Env::empty())
}

/// A kubeconfig with one cluster (`server`, inline CA) and one user whose YAML body is `user`
/// (indented by the caller for the `user:` mapping).
pub(crate) fn kubeconfig_yaml(server: &str, ca_pem: &str, user: &str) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: tester\n    namespace: testns\ncurrent-context: test\nusers:\n- name: tester\n  user:\n{user}\n"
    )
}

pub(crate) fn client(config: &ClusterConfig) -> ApiClient {
    ApiClient::new(config, ClientOptions::default()).unwrap()
}

pub(crate) async fn get(client: &ApiClient, path: &str) -> (StatusCode, String) {
    let request = Request::get(path).body(auth::empty_body()).unwrap();
    let response = client.send(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

pub(crate) fn bearer_of(seen: &Seen) -> Option<String> {
    seen.header("authorization")
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned))
}
