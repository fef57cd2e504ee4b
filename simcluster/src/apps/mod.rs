//! The sample apps: real HTTP servers on 127.0.0.1 random ports behind the simulated services,
//! so the proxy verb really forwards over sockets. Every request an app receives is recorded in
//! the request log (what the endpoint saw, for tests that assert stripped or added headers).

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::Error;
use crate::body::Resp;

pub(crate) mod bulk;
pub(crate) mod echo;
pub(crate) mod es;
pub(crate) mod misc;
pub(crate) mod pods;
pub(crate) mod shop;
pub(crate) mod ws;

/// How many requests the log keeps (the oldest are dropped first).
const LOG_CAPACITY: usize = 10_000;

/// One request as an endpoint received it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// `namespace/name:port-name` of the service the endpoint backs.
    pub service: String,
    /// The method.
    pub method: String,
    /// The request target (path and query) as received.
    pub uri: String,
    /// The headers as received.
    pub headers: http::HeaderMap,
}

/// State the apps share with the cluster's control methods.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) es_status: Mutex<&'static str>,
    pub(crate) log: Mutex<VecDeque<LoggedRequest>>,
    /// Bytes received by the last completed upload to `demo/bulk`.
    pub(crate) last_upload: AtomicU64,
}

impl AppState {
    pub(crate) fn new() -> Self {
        Self {
            es_status: Mutex::new("green"),
            log: Mutex::new(VecDeque::new()),
            last_upload: AtomicU64::new(0),
        }
    }

    fn record(&self, service: &str, req: &Request<Incoming>) {
        let entry = LoggedRequest {
            service: service.to_owned(),
            method: req.method().to_string(),
            uri: req.uri().to_string(),
            headers: req.headers().clone(),
        };
        if let Ok(mut log) = self.log.lock() {
            if log.len() >= LOG_CAPACITY {
                log.pop_front();
            }
            log.push_back(entry);
        }
    }
}

/// A boxed response future.
pub(crate) type RespFuture = Pin<Box<dyn Future<Output = Resp> + Send>>;

/// An app: a function from a request (and the shared state) to a response.
pub(crate) type Handler = fn(Request<Incoming>, Arc<AppState>) -> RespFuture;

/// Binds 127.0.0.1:0 and serves `handler` there (over TLS when `tls` is given) until the
/// task set is dropped. Returns the bound address.
pub(crate) async fn spawn_app(
    tasks: &mut JoinSet<()>,
    label: String,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: Handler,
    state: Arc<AppState>,
) -> Result<SocketAddr, Error> {
    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let bound = local_addr(&listener)?;
    let app = App {
        label: Arc::new(label),
        pod: None,
        tls,
        handler,
        state,
    };
    tasks.spawn(serve_app(listener, app));
    Ok(bound)
}

/// What one app listener serves.
pub(crate) struct App {
    /// `namespace/name:port-name`, for the request log.
    pub(crate) label: Arc<String>,
    /// The pod this listener is, when the app answers with its name.
    pub(crate) pod: Option<Arc<str>>,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) handler: Handler,
    pub(crate) state: Arc<AppState>,
}

/// The name of the pod a request reached, in its extensions (for apps that say who they are).
#[derive(Debug, Clone)]
pub(crate) struct PodName(pub(crate) Arc<str>);

pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

pub(crate) fn local_addr(listener: &TcpListener) -> Result<SocketAddr, Error> {
    listener.local_addr().map_err(|source| Error::Bind {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        source,
    })
}

/// Serves `app` on `listener` until the task is dropped; the connections die with it.
pub(crate) async fn serve_app(listener: TcpListener, app: App) {
    let App {
        label,
        pod,
        tls,
        handler,
        state,
    } = app;
    let mut conns = JoinSet::new();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(_) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let _ = tcp.set_nodelay(true);
        let (label, state, acceptor, pod) =
            (label.clone(), state.clone(), acceptor.clone(), pod.clone());
        conns.spawn(async move {
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                state.record(&label, &req);
                if let Some(pod) = &pod {
                    req.extensions_mut().insert(PodName(pod.clone()));
                }
                let fut = handler(req, state.clone());
                async move { Ok::<_, std::convert::Infallible>(fut.await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match acceptor {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let _ = builder
                            .serve_connection_with_upgrades(TokioIo::new(stream), service)
                            .await;
                    }
                }
                None => {
                    let _ = builder
                        .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                        .await;
                }
            }
        });
    }
}

/// A TCP listener that accepts and closes at once: the DNS port of the CoreDNS-like service,
/// which does not speak HTTP (proxying to it fails as it does against a real DNS server).
pub(crate) async fn spawn_closing_listener(tasks: &mut JoinSet<()>) -> Result<SocketAddr, Error> {
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    tasks.spawn(async move {
        loop {
            match listener.accept().await {
                Ok((tcp, _)) => drop(tcp),
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    });
    Ok(bound)
}

/// The query parameter `name`, decoded.
pub(crate) fn query_param(req: &Request<Incoming>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Whether the query has the parameter at all (`?pretty`).
pub(crate) fn has_param(req: &Request<Incoming>, name: &str) -> bool {
    url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .any(|(k, _)| k == name)
}
