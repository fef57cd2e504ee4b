//! `kgate demo`: a simulated cluster with sample services, and the gateway in front of it.
//!
//! Contract: starts `simcluster` in this process (its API server on a free loopback port),
//! writes a kubeconfig for it into a fresh temporary directory, starts the gateway on
//! `127.0.0.1:<--port>` (default 8001) in front of it with `kgate serve`'s defaults, prints
//! `export KUBECONFIG=...` and URLs to try with curl, a browser and kubectl, and runs until
//! Ctrl-C (or SIGTERM), then stops both and removes the temporary directory. When the port is
//! taken it says so and serves on a free port instead, unless `--port` was given explicitly.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use simcluster::{ServiceMapping, SimCluster};

use crate::cmd::serving;
use gateway::filter::{Filter, FilterSpec};
use gateway::server::{self, Listen, LocalAddr, RunningServer, ServerConfig};

/// The gateway's port when none is given, as `kubectl proxy`'s.
const DEFAULT_PORT: u16 = 8001;

/// Arguments of `kgate demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The gateway's port on 127.0.0.1 (default 8001; 0 picks a free one).
    #[arg(short = 'p', long)]
    port: Option<u16>,

    /// The simulated API server's port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    cluster_port: u16,

    /// Map a simulated service onto a local process: <ns>/<name>[:<port>]=<url>. Repeatable.
    #[arg(long = "service", value_name = "NS/NAME[:PORT]=URL")]
    services: Vec<String>,

    /// Start only the simulated cluster, without the gateway.
    #[arg(long)]
    no_gateway: bool,
}

pub(crate) fn run(args: Args) -> ExitCode {
    crate::logging::init(0);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(demo(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", auth::error_chain(&*err));
            ExitCode::from(1)
        }
    }
}

/// A directory removed when dropped (also on errors after it was made).
struct TempDir(PathBuf);

impl TempDir {
    fn new(port: u16) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("kgate-demo-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("restricting {}", path.display()))?;
        }
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn demo(args: Args) -> anyhow::Result<()> {
    let mut builder = SimCluster::builder().port(args.cluster_port);
    for spec in &args.services {
        builder = builder.service(ServiceMapping::parse(spec)?);
    }
    let cluster = builder
        .start()
        .await
        .context("starting the simulated cluster")?;
    let dir = TempDir::new(cluster.addr().port())?;
    let kubeconfig = dir.0.join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig)?;

    let gateway = if args.no_gateway {
        None
    } else {
        Some(start_gateway(&kubeconfig, args.port).await?)
    };
    print_banner(
        &cluster,
        &kubeconfig,
        gateway.as_ref().map(RunningServer::local_addr),
    );

    serving::wait_for_signal().await;
    println!("\nStopping the demo and removing {}", dir.0.display());
    if let Some(gateway) = gateway {
        gateway.shutdown().await;
    }
    cluster.shutdown().await;
    drop(dir);
    Ok(())
}

/// The gateway as `kgate serve` runs it, in front of the kubeconfig just written.
async fn start_gateway(kubeconfig: &Path, port: Option<u16>) -> anyhow::Result<RunningServer> {
    let kube = config::KubeArgs {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        ..config::KubeArgs::default()
    };
    let config = config::ClusterConfig::load(&kube).context("loading the demo kubeconfig")?;
    let client = gateway::connect_client(&config, true)
        .context("setting up the client for the simulated cluster")?;
    let upstream: Arc<dyn gateway::Upstream> = Arc::from(gateway::upstream_of(client.clone()));
    let filter = Filter::compile(&FilterSpec::default()).context("compiling the request filter")?;
    let server_config =
        |port: u16, filter: Filter, upstream: Arc<dyn gateway::Upstream>| ServerConfig {
            listen: Listen::Tcp(format!("127.0.0.1:{port}")),
            api_prefix: "/".to_owned(),
            www: None,
            filter: Some(filter),
            allow_origins: Vec::new(),
            token: None,
            upstream,
            header_timeout: Some(Duration::from_secs(300)),
            shutdown_grace: Duration::from_secs(5),
            origins: Some(serving::origin_settings(&config, &client)),
            mounts: Vec::new(),
        };
    let wanted = port.unwrap_or(DEFAULT_PORT);
    match server::start(server_config(wanted, filter.clone(), upstream.clone())).await {
        Ok(running) => Ok(running),
        Err(err) if port.is_none() => {
            eprintln!(
                "note: 127.0.0.1:{DEFAULT_PORT} is not available ({err}); serving the gateway on a free port \
                 instead (choose one with --port)"
            );
            Ok(server::start(server_config(0, filter, upstream)).await?)
        }
        Err(err) => Err(anyhow::anyhow!(
            "the gateway cannot start ({err}); try another --port"
        )),
    }
}

fn print_banner(cluster: &SimCluster, kubeconfig: &Path, gateway: Option<&LocalAddr>) {
    let mut out = std::io::stdout().lock();
    let api = cluster.url();
    let _ = writeln!(out, "Simulated cluster: API server at {api}");
    let _ = writeln!(
        out,
        "\nUse it with kubectl:\n  export KUBECONFIG={}",
        kubeconfig.display()
    );
    let _ = writeln!(out, "  kubectl get svc -A\n  kubectl cluster-info");
    let _ = writeln!(out, "\nServices:");
    for (ns, name, ports) in cluster.services() {
        let ports = if ports.iter().all(String::is_empty) {
            "(unnamed port)".to_owned()
        } else {
            ports.join(", ")
        };
        let _ = writeln!(out, "  {ns}/{name}: {ports}");
    }
    let es = "/api/v1/namespaces/kube-system/services/elasticsearch-logging:9200/proxy/_cluster/health?pretty";
    let shop = "/api/v1/namespaces/demo/services/shop:http/proxy/";
    let grafana = "/api/v1/namespaces/monitoring/services/grafana:http/proxy/";
    match gateway {
        Some(addr) => {
            let base = format!("http://{addr}");
            let port = match addr {
                LocalAddr::Tcp(socket) => socket.port(),
                LocalAddr::Unix(_) => DEFAULT_PORT,
            };
            let _ = writeln!(
                out,
                "\nGateway: {base} (in front of the simulated cluster, no credentials needed)"
            );
            let _ = writeln!(
                out,
                "\nIn a browser, every service at the root of its own origin:\n  \
                 http://localhost:{port}{index}   all services, with links\n  \
                 http://shop.demo.svc.localhost:{port}/   the shop app (links, login, fetch, WebSocket)\n  \
                 http://grafana.monitoring.svc.localhost:{port}/",
                index = gateway::INDEX_PATH
            );
            let flag = if port == DEFAULT_PORT {
                String::new()
            } else {
                format!(" --gateway-port={port}")
            };
            let _ = writeln!(
                out,
                "  kgate open{flag} svc/demo/shop   (from another terminal, with the KUBECONFIG \
                 above: opens your browser through this gateway)"
            );
            let _ = writeln!(
                out,
                "\nWith curl, the kubectl proxy paths:\n  curl '{base}{es}'"
            );
            let _ = writeln!(
                out,
                "  curl '{base}/api/v1/namespaces/demo/services/echo:http/proxy/hello'"
            );
            let _ = writeln!(
                out,
                "  {base}{shop} (the same shop under the API server's prefix, where it breaks)"
            );
            let _ = writeln!(out, "  {base}{grafana}");
        }
        None => {
            let _ = writeln!(out, "\nTry (the API server needs the kubeconfig's token):");
            let _ = writeln!(out, "  kubectl get --raw '{es}'");
            let _ = writeln!(
                out,
                "  kubectl proxy --port=8001 &   # then open http://127.0.0.1:8001{shop}"
            );
        }
    }
    let _ = writeln!(
        out,
        "\nPress Ctrl-C to stop; the temporary kubeconfig is removed on exit."
    );
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn http_get(addr: &LocalAddr, path: &str) -> String {
        let LocalAddr::Tcp(addr) = addr else {
            panic!("the demo gateway listens on TCP");
        };
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            addr.port()
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        tcp.read_to_string(&mut out).await.unwrap();
        out
    }

    /// The demo's wiring: the gateway, started from the written kubeconfig, reaches the
    /// simulated cluster's sample apps through the proxy verb.
    #[tokio::test]
    async fn gateway_in_front_of_the_simulated_cluster() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cluster = SimCluster::builder().start().await.unwrap();
        let dir = TempDir::new(cluster.addr().port()).unwrap();
        let kubeconfig = dir.0.join("kubeconfig");
        cluster.write_kubeconfig(&kubeconfig).unwrap();
        let gateway = start_gateway(&kubeconfig, Some(0)).await.unwrap();

        let es = http_get(
            gateway.local_addr(),
            "/api/v1/namespaces/kube-system/services/elasticsearch-logging:9200/proxy/_cluster/health",
        )
        .await;
        assert!(es.starts_with("HTTP/1.1 200"), "{es}");
        assert!(es.contains("\"status\":\"green\""), "{es}");
        let shop = http_get(
            gateway.local_addr(),
            "/api/v1/namespaces/demo/services/shop:http/proxy/",
        )
        .await;
        assert!(
            shop.contains(
                "href=\"/api/v1/namespaces/demo/services/shop:http/proxy/static/style.css\""
            ),
            "{shop}"
        );

        gateway.shutdown().await;
        cluster.shutdown().await;
        let path = dir.0.clone();
        drop(dir);
        assert!(!path.exists(), "the temporary directory is removed");
    }
}
