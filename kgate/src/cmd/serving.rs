//! What `kgate proxy` and `kgate serve` share: the cluster flags, the runtime, start-up and
//! the wait for SIGINT/SIGTERM.
//!
//! Contract: [`run`] loads the kubeconfig (`config`), builds the authenticated client (`auth`),
//! starts the server, calls `on_listening` with the running server once its listeners exist
//! (so `--port=0` reports the real port), serves until SIGINT or SIGTERM, then shuts down
//! gracefully within [`SHUTDOWN_GRACE`] and exits 0. Start-up failures print one
//! `error: ...` line on stderr and exit 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use gateway::filter::Filter;
use gateway::server::{self, Listen, Mount, OriginSettings, RunningServer, ServerConfig};

/// How long in-flight requests may run on after SIGINT/SIGTERM.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// kubectl's global flags that these commands use: the kubeconfig flags and `-v`.
#[derive(Debug, clap::Args)]
pub(crate) struct ClusterArgs {
    #[command(flatten)]
    kube: config::KubeArgs,

    /// number for the log level verbosity
    #[arg(short = 'v', long = "v", value_name = "Level", default_value_t = 0)]
    v: u8,
}

impl ClusterArgs {
    pub(crate) fn verbosity(&self) -> u8 {
        self.v
    }

    pub(crate) fn kube(&self) -> &config::KubeArgs {
        &self.kube
    }
}

/// The server settings a command chose.
pub(crate) struct Serving {
    pub(crate) listen: Listen,
    pub(crate) api_prefix: String,
    pub(crate) www: Option<(PathBuf, String)>,
    pub(crate) filter: Option<Filter>,
    pub(crate) append_server_path: bool,
    pub(crate) header_timeout: Option<Duration>,
    /// Warn, as kubectl, when the kubeconfig server has a path that is dropped.
    pub(crate) warn_server_path: bool,
    /// Serve service origins and the gateway's own pages (`kgate serve`).
    pub(crate) origins: bool,
    /// Services to bind at the root of addresses of their own (`--mount`), resolved against
    /// the kubeconfig's namespace once it is loaded.
    pub(crate) mounts: Vec<MountArg>,
    /// Origins whose pages may use the gateway like its own (`--allow-origin`).
    pub(crate) allow_origins: Vec<String>,
    /// The gateway's own token, which every request must carry (`--gateway-token auto`).
    pub(crate) token: Option<gateway::AccessToken>,
}

impl Serving {
    /// The gateway with kgate's own defaults (`kgate serve`, `kgate open`): the API at `/`
    /// behind `filter` with the kubeconfig server's path kept, service origins, `mounts`, and
    /// `header_timeout` (zero: no bound) on the wait for the API server's response head.
    pub(crate) fn gateway(
        listen: Listen,
        filter: Filter,
        header_timeout: Duration,
        mounts: Vec<MountArg>,
    ) -> Self {
        Self {
            listen,
            api_prefix: "/".to_owned(),
            www: None,
            filter: Some(filter),
            append_server_path: true,
            header_timeout: (!header_timeout.is_zero()).then_some(header_timeout),
            warn_server_path: false,
            origins: true,
            mounts,
            allow_origins: Vec::new(),
            token: None,
        }
    }
}

/// clap's parser for `--allow-origin`: an origin as a browser sends it in `Origin`
/// (`http://localhost:3000`), a scheme and a host with an optional port, nothing after.
pub(crate) fn parse_origin(arg: &str) -> Result<String, String> {
    let origin = arg.strip_suffix('/').unwrap_or(arg);
    let Some((scheme, authority)) = origin.split_once("://") else {
        return Err(format!(
            "expected an origin such as http://localhost:3000, not {arg:?}"
        ));
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return Err(format!(
            "an origin's scheme is http or https, not {scheme:?}"
        ));
    }
    let bad = |c: char| matches!(c, '/' | '?' | '#' | '@') || c.is_whitespace() || c.is_control();
    if authority.is_empty() || authority.contains(bad) {
        return Err(format!(
            "an origin is a scheme and a host[:port] with no path, query or user, not {arg:?}"
        ));
    }
    Ok(origin.to_ascii_lowercase())
}

/// One `--mount <target>=<address>`, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountArg {
    /// `svc/<ns>/<name>[:<port>]` or any other address form, without a path.
    pub(crate) target: String,
    /// `host:port`; a bare port means `127.0.0.1:<port>`.
    pub(crate) address: String,
}

impl MountArg {
    /// clap's parser for `--mount`.
    pub(crate) fn parse(arg: &str) -> Result<Self, String> {
        let Some((target, address)) = arg.rsplit_once('=') else {
            return Err(format!(
                "expected <target>=<address>, e.g. svc/monitoring/grafana=127.0.0.1:3000, not {arg:?}"
            ));
        };
        if target.is_empty() {
            return Err("the target before '=' is empty".to_owned());
        }
        let address = if !address.is_empty() && address.bytes().all(|b| b.is_ascii_digit()) {
            format!("127.0.0.1:{address}")
        } else {
            address.to_owned()
        };
        if address.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "the address after '=' must be <ip>:<port> or a port (127.0.0.1:3000, [::1]:3000, 3000), not {address:?}"
            ));
        }
        Ok(Self {
            target: target.to_owned(),
            address,
        })
    }

    /// The mount, with a target written without its namespace put in `namespace`.
    pub(crate) fn resolve(&self, namespace: &str) -> anyhow::Result<Mount> {
        let address = urlgrammar::Address::parse(&self.target, Some(namespace))
            .with_context(|| format!("--mount {}", self.target))?;
        if !address.rest.is_empty() {
            anyhow::bail!(
                "--mount {}: a mount serves the whole service at its root; drop the path {:?}",
                self.target,
                address.rest.to_string()
            );
        }
        Ok(Mount {
            target: address.target,
            address: self.address.clone(),
        })
    }
}

/// Runs the server until a signal; returns the process exit code.
pub(crate) fn run(
    cluster: &ClusterArgs,
    serving: Serving,
    on_listening: impl FnOnce(&RunningServer),
) -> ExitCode {
    let runtime = match runtime_builder().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(cluster, serving, on_listening)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", auth::error_chain(&*err));
            ExitCode::from(1)
        }
    }
}

/// The async runtime: `KGATE_THREADS` worker threads (`0` for a single-threaded event loop);
/// one worker by default (see [`DEFAULT_THREADS`]).
pub(crate) fn runtime_builder() -> tokio::runtime::Builder {
    let threads = std::env::var("KGATE_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(DEFAULT_THREADS);
    if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    }
}

/// Worker threads when `KGATE_THREADS` is not set: one event loop measured fastest and
/// cheapest on a 2-core machine shared with the client (bench/RESULTS.md); a laptop-side proxy
/// is bound by the API server, not by one core.
const DEFAULT_THREADS: usize = 1;

async fn serve(
    cluster: &ClusterArgs,
    serving: Serving,
    on_listening: impl FnOnce(&RunningServer),
) -> anyhow::Result<()> {
    let config = config::ClusterConfig::load(&cluster.kube).context("loading the kubeconfig")?;
    let server_path = config.server.path().to_owned();
    let has_path = !(server_path.is_empty() || server_path == "/");
    if has_path && !serving.append_server_path && serving.warn_server_path {
        tracing::warn!(
            "Your kube context contains a server path {server_path}, use --append-server-path to \
             automatically append the path to each request"
        );
    }
    let client = gateway::connect_client(&config, serving.append_server_path)
        .with_context(|| format!("setting up the client for {}", config.server))?;
    let origins = serving.origins.then(|| origin_settings(&config, &client));
    let mounts = serving
        .mounts
        .iter()
        .map(|mount| mount.resolve(&config.namespace))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let header_timeout = serving.header_timeout.or(config.request_timeout);
    let running = server::start(ServerConfig {
        listen: serving.listen,
        api_prefix: serving.api_prefix,
        www: serving.www,
        filter: serving.filter,
        allow_origins: serving.allow_origins,
        token: serving.token,
        upstream: Arc::from(gateway::upstream_of(client)),
        header_timeout,
        shutdown_grace: SHUTDOWN_GRACE,
        origins,
        mounts,
    })
    .await?;
    on_listening(&running);
    tracing::info!(
        "serving on {} in front of {}",
        running.local_addr(),
        config.server
    );
    wait_for_signal().await;
    tracing::info!("shutting down: finishing in-flight requests (at most {SHUTDOWN_GRACE:?})");
    running.shutdown().await;
    Ok(())
}

/// Service origins for the cluster of `config`, listing through `client`.
pub(crate) fn origin_settings(
    config: &config::ClusterConfig,
    client: &auth::ApiClient,
) -> OriginSettings {
    let name = config
        .context
        .clone()
        .unwrap_or_else(|| config.server.to_string());
    OriginSettings {
        context: None,
        lister: Some(client.clone()),
        title: format!("kgate: {name}"),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // Without signal handlers the default disposition (exit) applies; wait forever.
            std::future::pending::<()>().await;
        }
    }
}
