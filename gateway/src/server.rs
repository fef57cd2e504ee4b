//! The server: listeners, connections, the per-request pipeline, and graceful shutdown.
//!
//! Contract: [`start`] binds the listener first (TCP, or a unix socket created owner-only after
//! removing a stale socket, as kubectl's `ListenUnix`), then serves HTTP/1.1 with upgrades on
//! it, and returns a [`RunningServer`] that knows its bound address. Each request goes through
//! the phases in `crate::dispatch`. [`RunningServer::shutdown`] stops accepting, asks every
//! connection to finish its in-flight request and close, and waits at most the configured
//! grace period. Every connection's bytes pass the `framing` scanner, which marks requests
//! whose length is ambiguous for `admit` to refuse. Client connections are bounded by the
//! `limits` module (head size, header read
//! timeout, connection cap, lingering close).
//!
//! Mounts (`kgate serve --mount`, `kgate open --port`) are more listeners of the same server
//! (a mount role, in `classify`): each answers every path on its own address with one service's origin,
//! for tools that do not resolve `*.localhost` names.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch};

use crate::admit::Admission;
use crate::admit::filter::Filter;
use crate::classify::mux::Router;
use crate::classify::{Classifier, Role};
use crate::dispatch::Gateway;
use crate::framing::{AmbiguousLength, Framed, Verdicts};
use crate::limits::{Limits, LingerSwitch, Lingering};
use crate::local::LocalPages;
use crate::rescue::Rescue;
use crate::send::{Sender, Upstream};
use crate::static_files::StaticFiles;
use urlgrammar::Target;

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// `address:port` as kubectl formats it (`127.0.0.1:8001`, `[::1]:0`); port 0 picks one.
    Tcp(String),
    /// A unix socket path.
    Unix(PathBuf),
}

/// Everything [`start`] needs.
pub struct ServerConfig {
    pub listen: Listen,
    /// `--api-prefix` (a trailing `/` is added when missing).
    pub api_prefix: String,
    /// `--www` directory and `--www-prefix`.
    pub www: Option<(PathBuf, String)>,
    /// The request filter; `None` with `--disable-filter`.
    pub filter: Option<Filter>,
    /// Origins whose pages may use the gateway like its own (`--allow-origin`).
    pub allow_origins: Vec<String>,
    /// The gateway's own token, which every request must then carry (`--gateway-token`).
    pub token: Option<crate::secret::AccessToken>,
    pub upstream: Arc<dyn Upstream>,
    /// Bound on the wait for the API server's response head; `None` waits like kubectl.
    pub header_timeout: Option<Duration>,
    /// How long in-flight requests may take to finish after shutdown starts.
    pub shutdown_grace: Duration,
    /// Service origins and the gateway's own pages (`kgate serve`); `None` for `kgate proxy`.
    pub origins: Option<OriginSettings>,
    /// Services bound at the root of addresses of their own; only with `origins`.
    pub mounts: Vec<Mount>,
}

/// One service at the root of an address of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The service, pod or node, without a path.
    pub target: Target,
    /// `address:port` (port 0 picks one).
    pub address: String,
}

/// What service origins need besides the API server.
pub struct OriginSettings {
    /// The context label origin hosts carry, when several clusters are served.
    pub context: Option<urlgrammar::ContextLabel>,
    /// The authenticated client, for the index and the "what exists" lists.
    pub lister: Option<auth::ApiClient>,
    /// The index page's title.
    pub title: String,
}

/// The bound address, printed the way Go's `net.Addr.String()` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for LocalAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Rust and Go agree: `127.0.0.1:8001`, `[::1]:8001`.
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listen tcp {address}: {source}")]
    Tcp {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("listen unix {path}: {source}", path = path.display())]
    Unix {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mounts need service origins, which `kgate proxy` does not serve")]
    MountWithoutOrigins,
}

/// A server that is accepting connections.
pub struct RunningServer {
    local_addr: LocalAddr,
    mounts: Vec<(Target, SocketAddr)>,
    stop: watch::Sender<bool>,
    done: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// The bound address (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> &LocalAddr {
        &self.local_addr
    }

    /// Each mount's target and bound address, in the order they were given.
    pub fn mounts(&self) -> &[(Target, SocketAddr)] {
        &self.mounts
    }

    /// Stops accepting, lets in-flight requests finish within the grace period, then returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for done in self.done {
            let _ = done.await;
        }
    }
}

/// Binds the listeners (the gateway's, then each mount's) and starts serving in the background.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    if !config.mounts.is_empty() && config.origins.is_none() {
        return Err(StartError::MountWithoutOrigins);
    }
    let (stop, stop_rx) = watch::channel(false);
    let grace = config.shutdown_grace;
    let listener = match &config.listen {
        Listen::Tcp(address) => Listener::Tcp(bind_tcp(address).await?),
        Listen::Unix(path) => Listener::Unix(bind_unix(path)?, path.clone()),
    };
    let mut mounted = Vec::with_capacity(config.mounts.len());
    for mount in &config.mounts {
        mounted.push((mount.target.clone(), bind_tcp(&mount.address).await?));
    }
    let local_addr = listener.local_addr(&config.listen)?;
    let gateway_port = match &local_addr {
        LocalAddr::Tcp(local) => Some(local.port()),
        LocalAddr::Unix(_) => None,
    };
    let state = Arc::new(gateway(config, gateway_port));
    let mut done = Vec::with_capacity(1 + mounted.len());
    let mut mounts = Vec::with_capacity(mounted.len());
    for (target, tcp) in mounted {
        let local = tcp.local_addr().map_err(|source| StartError::Tcp {
            address: target.to_string(),
            source,
        })?;
        mounts.push((target.clone(), local));
        let role = Arc::new(Role::Mount(target));
        done.push(tokio::spawn(accept_loop(
            TcpAcceptor(tcp),
            state.clone(),
            role,
            stop_rx.clone(),
            grace,
        )));
    }
    let role = Arc::new(Role::Gateway);
    done.push(match listener {
        Listener::Tcp(tcp) => {
            tokio::spawn(accept_loop(TcpAcceptor(tcp), state, role, stop_rx, grace))
        }
        Listener::Unix(listener, path) => tokio::spawn(accept_loop(
            UnixAcceptor { listener, path },
            state,
            role,
            stop_rx,
            grace,
        )),
    });
    Ok(RunningServer {
        local_addr,
        mounts,
        stop,
        done,
    })
}

/// A bound listener of the gateway.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// The bound address (the real port when port 0 was asked for), for `listen`.
    fn local_addr(&self, listen: &Listen) -> Result<LocalAddr, StartError> {
        match self {
            Self::Tcp(tcp) => tcp.local_addr().map(LocalAddr::Tcp).map_err(|source| {
                let address = match listen {
                    Listen::Tcp(address) => address.clone(),
                    Listen::Unix(path) => path.display().to_string(),
                };
                StartError::Tcp { address, source }
            }),
            Self::Unix(_, path) => Ok(LocalAddr::Unix(path.clone())),
        }
    }
}

async fn bind_tcp(address: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| StartError::Tcp {
            address: address.to_owned(),
            source,
        })
}

fn with_slash(prefix: &str) -> String {
    if prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    }
}

/// kubectl's `ListenUnix`: a stale *socket* at `path` is removed (any other file is left, and
/// the bind then fails); the socket is created with umask 0077, i.e. owner-only.
fn bind_unix(path: &Path) -> Result<UnixListener, StartError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let err = |source| StartError::Unix {
        path: path.to_owned(),
        source,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.file_type().is_socket()
    {
        std::fs::remove_file(path).map_err(err)?;
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    // Tighten right after bind; the socket is not yet accepting, so nobody can connect
    // in between (there is no portable, thread-safe umask in std).
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(listener)
}

/// One kind of listener.
trait Acceptor: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&self) -> impl Future<Output = std::io::Result<(Self::Io, Option<IpAddr>)>> + Send;
    fn close(self);
}

struct TcpAcceptor(TcpListener);

impl Acceptor for TcpAcceptor {
    type Io = tokio::net::TcpStream;
    async fn accept(&self) -> std::io::Result<(Self::Io, Option<IpAddr>)> {
        let (stream, peer) = self.0.accept().await?;
        // Small responses go out at once; the proxy never batches writes on purpose.
        let _ = stream.set_nodelay(true);
        Ok((stream, Some(peer.ip())))
    }
    fn close(self) {}
}

struct UnixAcceptor {
    listener: UnixListener,
    path: PathBuf,
}

impl Acceptor for UnixAcceptor {
    type Io = tokio::net::UnixStream;
    async fn accept(&self) -> std::io::Result<(Self::Io, Option<IpAddr>)> {
        let (stream, _) = self.listener.accept().await?;
        Ok((stream, None))
    }
    fn close(self) {
        // kubectl leaves the socket behind when it exits; removing it is tidier and the next
        // start would remove it anyway.
        drop(self.listener);
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept_loop<A: Acceptor>(
    acceptor: A,
    state: Arc<Gateway>,
    role: Arc<Role>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    // Every connection task holds a sender; when all are gone, `recv` returns `None`.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    let limits = Limits::from_env();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new());
    limits.configure(&mut http);
    let mut slots = Slots {
        free: limits.slots(),
        cap: limits.max_connections,
        at_cap: false,
    };
    loop {
        let Some(permit) = slots.next(&mut stop).await else {
            break;
        };
        tokio::select! {
            _ = stop.changed() => break,
            accepted = acceptor.accept() => match accepted {
                Ok((io, peer)) => {
                    // The permit travels with the socket (into an upgraded tunnel too), so the
                    // slot is free exactly when the descriptor is closed.
                    let (io, framing) = Framed::new(io);
                    let io = Lingering::new(io, permit);
                    let conn = serve_connection(
                        http.clone(),
                        (io, framing),
                        peer,
                        (state.clone(), role.clone()),
                        stop.clone(),
                    );
                    let alive = alive.clone();
                    tokio::spawn(async move {
                        conn.await;
                        drop(alive);
                    });
                }
                Err(err) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!("accept failed: {err}");
                    drop(permit);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    acceptor.close();
    drop(alive);
    if tokio::time::timeout(grace, all_closed.recv())
        .await
        .is_err()
    {
        tracing::warn!(
            "shutdown: in-flight requests did not finish within {grace:?}; closing them"
        );
    }
}

/// One permit per open connection: at the cap, the loop stops accepting and new connections
/// wait in the kernel's listen backlog until one ends.
struct Slots {
    free: Arc<tokio::sync::Semaphore>,
    cap: usize,
    /// The cap was reached and said so; said again only after it was left.
    at_cap: bool,
}

impl Slots {
    /// The next free slot; `None` once the server stops.
    async fn next(
        &mut self,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if let Ok(permit) = self.free.clone().try_acquire_owned() {
            self.at_cap = false;
            return Some(permit);
        }
        if !self.at_cap {
            self.at_cap = true;
            tracing::warn!(
                "{} client connections open (the limit, KGATE_MAX_CONNECTIONS); new \
                 connections wait until one closes",
                self.cap
            );
        }
        tokio::select! {
            _ = stop.changed() => None,
            permit = self.free.clone().acquire_owned() => permit.ok(),
        }
    }
}

async fn serve_connection<I>(
    http: http1::Builder,
    ((io, linger), framing): ((Lingering<Framed<I>>, LingerSwitch), Arc<Verdicts>),
    peer: Option<IpAddr>,
    (state, role): (Arc<Gateway>, Arc<Role>),
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        linger.dispatched();
        if framing.next_is_ambiguous() {
            req.extensions_mut().insert(AmbiguousLength);
        }
        // A connection that may become a tunnel must not discard input when it closes.
        if req.headers().contains_key(header::UPGRADE) || req.method() == http::Method::CONNECT {
            linger.disable();
        }
        let (state, role) = (state.clone(), role.clone());
        async move { Ok::<_, std::convert::Infallible>(state.handle(&role, req, peer).await) }
    });
    let conn = http
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => log_connection_end(result),
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            log_connection_end(conn.await);
        }
    }
}

fn log_connection_end(result: Result<(), hyper::Error>) {
    if let Err(err) = result {
        tracing::debug!("connection ended: {err}");
    }
}

/// The phases' shared state for `config`; `gateway_port` is the main listener's port.
fn gateway(config: ServerConfig, gateway_port: Option<u16>) -> Gateway {
    let static_prefix = config.www.as_ref().map(|(_, prefix)| prefix.as_str());
    let router = Router::new(&config.api_prefix, static_prefix);
    let static_files = config
        .www
        .as_ref()
        .map(|(dir, prefix)| StaticFiles::new(dir.clone(), &with_slash(prefix)));
    let context = config.origins.as_ref().and_then(|o| o.context.clone());
    let lister = config.origins.as_ref().and_then(|o| o.lister.clone());
    let served = config.origins.is_some();
    let token = config.token.clone();
    Gateway {
        classifier: Classifier::new(router, served, context.clone(), gateway_port),
        admission: Admission::new(config.filter, &config.allow_origins, context)
            .with_token(token.clone()),
        sender: Sender::new(config.upstream, config.header_timeout),
        ports: lister.clone().map(discovery::ports::DefaultPorts::new),
        static_files,
        local: config
            .origins
            .map(|o| LocalPages::new(o.lister, o.title, o.context, token.clone())),
        rescue: Rescue::new(lister, token),
    }
}
