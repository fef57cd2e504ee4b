//! The server: listeners, connections, the per-request pipeline, and graceful shutdown.
//!
//! Contract: [`start`] binds the listener first (TCP, or a unix socket created owner-only after
//! removing a stale socket, as kubectl's `ListenUnix`), then serves HTTP/1.1 with upgrades on
//! it, and returns a [`RunningServer`] that knows its bound address. Each request goes through
//! [`handle`]: classify (route) → admit (filter, API routes only) → forward / static / local
//! answer, with one access line. [`RunningServer::shutdown`] stops accepting, asks every
//! connection to finish its in-flight request and close, and waits at most the configured
//! grace period. Client connections are bounded by [`crate::limits`] (head size, header read
//! timeout, connection cap, lingering close).
//!
//! Mounts (`kgate serve --mount`, `kgate open --port`) are more listeners of the same server:
//! each answers every path on its own address with one service's origin, behind the filter's
//! host allow-list (so a DNS-rebinding page cannot use it), for tools that do not resolve
//! `*.localhost` names.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch};

use crate::access;
use crate::admit::{Filter, extract_host};
use crate::body::Body;
use crate::forward::{ApiForwarder, Shaping};
use crate::limits::{Limits, LingerSwitch, Lingering};
use crate::local::{self, LocalPages};
use crate::origin::{
    HostClass, Origins, classify_host, escape, foreign_request, page, request_host,
};
use crate::rescue::{bad_request, forbidden, moved_permanently, not_found, status_json};
use crate::route::{Route, Router};
use crate::static_files::StaticFiles;
use crate::upstream::Upstream;
use urlgrammar::{OriginHost, Target};

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Listen {
    /// `address:port` as kubectl formats it (`127.0.0.1:8001`, `[::1]:0`); port 0 picks one.
    Tcp(String),
    /// A unix socket path.
    Unix(PathBuf),
}

/// Everything [`start`] needs.
pub(crate) struct ServerConfig {
    pub(crate) listen: Listen,
    /// `--api-prefix` (a trailing `/` is added when missing).
    pub(crate) api_prefix: String,
    /// `--www` directory and `--www-prefix`.
    pub(crate) www: Option<(PathBuf, String)>,
    /// The request filter; `None` with `--disable-filter`.
    pub(crate) filter: Option<Filter>,
    pub(crate) upstream: Arc<dyn Upstream>,
    /// Bound on the wait for the API server's response head; `None` waits like kubectl.
    pub(crate) header_timeout: Option<Duration>,
    /// How long in-flight requests may take to finish after shutdown starts.
    pub(crate) shutdown_grace: Duration,
    /// Service origins and the gateway's own pages (`kgate serve`); `None` for `kgate proxy`.
    pub(crate) origins: Option<OriginSettings>,
    /// Services bound at the root of addresses of their own; only with `origins`.
    pub(crate) mounts: Vec<Mount>,
}

/// One service at the root of an address of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The service, pod or node, without a path.
    pub(crate) target: Target,
    /// `address:port` (port 0 picks one).
    pub(crate) address: String,
}

/// What service origins need besides the API server.
pub(crate) struct OriginSettings {
    /// The context label origin hosts carry, when several clusters are served.
    pub(crate) context: Option<urlgrammar::ContextLabel>,
    /// The authenticated client, for the index and the "what exists" lists.
    pub(crate) lister: Option<auth::ApiClient>,
    /// The index page's title.
    pub(crate) title: String,
}

/// The bound address, printed the way Go's `net.Addr.String()` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LocalAddr {
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
pub(crate) enum StartError {
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
pub(crate) struct RunningServer {
    local_addr: LocalAddr,
    mounts: Vec<(Target, SocketAddr)>,
    stop: watch::Sender<bool>,
    done: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// The bound address (the real port when port 0 was asked for).
    pub(crate) fn local_addr(&self) -> &LocalAddr {
        &self.local_addr
    }

    /// Each mount's target and bound address, in the order they were given.
    pub(crate) fn mounts(&self) -> &[(Target, SocketAddr)] {
        &self.mounts
    }

    /// Stops accepting, lets in-flight requests finish within the grace period, then returns.
    pub(crate) async fn shutdown(self) {
        let _ = self.stop.send(true);
        for done in self.done {
            let _ = done.await;
        }
    }
}

/// Shared by every connection.
struct State {
    router: Router,
    filter: Option<Filter>,
    api: ApiForwarder,
    static_files: Option<StaticFiles>,
    origins: Option<(Origins, LocalPages)>,
    /// The main listener's port, for the links on a mount's error pages.
    gateway_port: Option<u16>,
}

/// What a listener serves.
enum Role {
    /// The gateway: API passthrough, origins by `Host`, the gateway's own pages.
    Gateway,
    /// One service's origin, on every path and whatever the `Host` names.
    Mount(Target),
}

/// Binds the listeners (the gateway's, then each mount's) and starts serving in the background.
pub(crate) async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
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
    let (local_addr, gateway_port) = match &listener {
        Listener::Tcp(tcp) => {
            let address = match &config.listen {
                Listen::Tcp(address) => address.clone(),
                Listen::Unix(path) => path.display().to_string(),
            };
            let local = tcp
                .local_addr()
                .map_err(|source| StartError::Tcp { address, source })?;
            (LocalAddr::Tcp(local), Some(local.port()))
        }
        Listener::Unix(_, path) => (LocalAddr::Unix(path.clone()), None),
    };
    let static_prefix = config.www.as_ref().map(|(_, prefix)| prefix.as_str());
    let router = Router::new(&config.api_prefix, static_prefix);
    let static_files = config
        .www
        .as_ref()
        .map(|(dir, prefix)| StaticFiles::new(dir.clone(), &with_slash(prefix)));
    let state = Arc::new(State {
        router,
        filter: config.filter,
        api: ApiForwarder::new(config.upstream, config.header_timeout),
        static_files,
        origins: config.origins.map(|o| {
            (
                Origins::new(o.context.clone(), o.lister.clone()),
                LocalPages::new(o.lister, o.title, o.context),
            )
        }),
        gateway_port,
    });
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
    state: Arc<State>,
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
    // One permit per open connection: at the cap, the loop stops accepting and new
    // connections wait in the kernel's listen backlog until one ends.
    let slots = limits.slots();
    let mut at_cap = false;
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                at_cap = false;
                permit
            }
            Err(_) => {
                if !at_cap {
                    at_cap = true;
                    tracing::warn!(
                        "{} client connections open (the limit, KGATE_MAX_CONNECTIONS); \
                         new connections wait until one closes",
                        limits.max_connections
                    );
                }
                tokio::select! {
                    _ = stop.changed() => break,
                    permit = slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                }
            }
        };
        tokio::select! {
            _ = stop.changed() => break,
            accepted = acceptor.accept() => match accepted {
                Ok((io, peer)) => {
                    // The permit travels with the socket (into an upgraded tunnel too), so the
                    // slot is free exactly when the descriptor is closed.
                    let io = Lingering::new(io, permit);
                    let conn = serve_connection(
                        http.clone(),
                        io,
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

async fn serve_connection<I>(
    http: http1::Builder,
    (io, linger): (Lingering<I>, LingerSwitch),
    peer: Option<IpAddr>,
    (state, role): (Arc<State>, Arc<Role>),
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        linger.dispatched();
        // A connection that may become a tunnel must not discard input when it closes.
        if req.headers().contains_key(header::UPGRADE) || req.method() == http::Method::CONNECT {
            linger.disable();
        }
        let (state, role) = (state.clone(), role.clone());
        async move { Ok::<_, std::convert::Infallible>(handle(&state, &role, req, peer).await) }
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

/// The per-request pipeline.
async fn handle(
    state: &State,
    role: &Role,
    req: Request<Incoming>,
    peer: Option<IpAddr>,
) -> Response<Body> {
    let entry = access::enabled().then(|| access::Entry::new(req.method(), req.uri().path()));
    if tracing::enabled!(tracing::Level::TRACE) {
        tracing::trace!(
            method = %req.method(),
            path = req.uri().path(),
            headers = %crate::headers::redacted(req.headers()),
            "request"
        );
    }
    let res = match role {
        Role::Gateway => dispatch(state, req, peer).await,
        Role::Mount(target) => serve_mount(state, target, req, peer).await,
    };
    match entry {
        Some(entry) => access::logged(entry, res),
        None => res,
    }
}

async fn dispatch(state: &State, req: Request<Incoming>, peer: Option<IpAddr>) -> Response<Body> {
    if let Some((origins, local)) = &state.origins {
        let host = request_host(&req).to_owned();
        match classify_host(&host) {
            HostClass::Origin(origin) => {
                return origins.serve(&state.api, *origin, &host, req, peer).await;
            }
            HostClass::BadOrigin(why) => {
                return page(
                    StatusCode::BAD_REQUEST,
                    "Not a service address",
                    &format!(
                        "<p>{}</p><p>Service addresses look like \
                         <code>http://&lt;name&gt;.&lt;namespace&gt;.svc.localhost:&lt;port&gt;/</code>; \
                         <code>kgate urls</code> prints them.</p>",
                        escape(&why)
                    ),
                );
            }
            HostClass::Gateway => {
                let path = req.uri().path();
                if local::is_local(path) {
                    if let Some(filter) = &state.filter
                        && !admit(filter, &req, path)
                    {
                        return forbidden();
                    }
                    return local.serve(&state.api, &req, host_port(&host)).await;
                }
                // DESIGN "Behaviour decisions": no web page but the gateway's own reaches the
                // Kubernetes API with the user's credentials, whatever the method.
                let own = format!("http://{}", host.to_ascii_lowercase());
                if let Some(why) = foreign_request(req.headers(), &own) {
                    tracing::warn!(method = %req.method(), path, "refused a request from a web page to the API: {why}");
                    return status_json(
                        StatusCode::FORBIDDEN,
                        "Forbidden",
                        &format!(
                            "kgate refused this request to the Kubernetes API: {why}. Web pages \
                             may not use the API through the gateway; scripts and kubectl can"
                        ),
                    );
                }
            }
        }
    }
    let route = state
        .router
        .classify(req.method().as_str(), req.uri().path(), req.uri().query());
    match route {
        Route::Api {
            filter_path,
            upstream_path,
        } => {
            if let Some(filter) = &state.filter
                && !admit(filter, &req, &filter_path)
            {
                return forbidden();
            }
            state
                .api
                .forward(req, &upstream_path, peer, &Shaping::Passthrough)
                .await
        }
        Route::Static { rest } => match &state.static_files {
            Some(files) => files.serve(req, &rest).await,
            None => not_found(),
        },
        Route::Redirect { location } => moved_permanently(req.method(), &location),
        Route::NotFound => not_found(),
        Route::BadRequest => bad_request(),
    }
}

/// A request on a mount: the mounted service's origin, whatever the path, once the `Host` is
/// one the filter accepts (a DNS-rebinding page names its own host, which it does not).
async fn serve_mount(
    state: &State,
    target: &Target,
    req: Request<Incoming>,
    peer: Option<IpAddr>,
) -> Response<Body> {
    let Some((origins, _)) = &state.origins else {
        // `start` refuses mounts without origins.
        return not_found();
    };
    let host = request_host(&req).to_owned();
    if let Some(filter) = &state.filter
        && !filter.accept_hosts.matches(extract_host(&host))
    {
        tracing::warn!(
            host,
            "refused a request to a mount: its Host is not accepted"
        );
        return page(
            StatusCode::FORBIDDEN,
            "Host not accepted",
            &format!(
                "<p>This address serves <code>{}</code> only to clients that name it \
                 <code>localhost</code>, <code>127.0.0.1</code> or <code>[::1]</code> \
                 (the filter's accepted hosts), not <code>{}</code>.</p>",
                escape(&target.to_string()),
                escape(&host)
            ),
        );
    }
    let origin = OriginHost {
        target: target.clone(),
        context: origins.context().cloned(),
        port: state.gateway_port,
    };
    origins.serve(&state.api, origin, &host, req, peer).await
}

/// The port of a `Host` value, when it has one.
fn host_port(host: &str) -> Option<u16> {
    let (name, port) = host.rsplit_once(':')?;
    if name.is_empty() || (name.starts_with('[') && !name.ends_with(']')) {
        return None;
    }
    port.parse().ok()
}

/// Admit: kubectl's filter on the method, the decoded path and the host (Go's `r.Host`: the
/// authority of an absolute-form target, else the `Host` header).
fn admit(filter: &Filter, req: &Request<Incoming>, path: &str) -> bool {
    let host = request_host(req);
    let method = req.method().as_str();
    match filter.check(method, path, extract_host(host)) {
        Ok(()) => {
            tracing::debug!("Filter accepting {method} {path} {host}");
            true
        }
        Err(why) => {
            tracing::debug!(reason = ?why, "Filter rejecting {method} {path} {host}");
            false
        }
    }
}
