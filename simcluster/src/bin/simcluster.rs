//! `simcluster`: runs the simulated API server until Ctrl-C, prints where it listens, and writes
//! a kubeconfig for it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use simcluster::{ServiceMapping, SimCluster};

/// A simulated Kubernetes API server with sample services, for trying kgate or kubectl proxy
/// without a cluster.
#[derive(Debug, Parser)]
#[command(name = "simcluster", version, about)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write the kubeconfig (default: a file in the temporary directory, removed on exit).
    #[arg(long, value_name = "PATH")]
    kubeconfig_out: Option<PathBuf>,
    /// Map a simulated service onto a local process: <ns>/<name>[:<port>]=<url>. Repeatable.
    #[arg(long = "service", value_name = "NS/NAME[:PORT]=URL")]
    services: Vec<String>,
    /// Start without the sample apps.
    #[arg(long)]
    no_sample_apps: bool,
    /// The API server cannot reach any pod for the proxy verb (a control plane outside the
    /// pod network); pods/portforward still works.
    #[arg(long)]
    unreachable_pods: bool,
    /// The pods of this service alone cannot be reached: <ns>/<name>. Repeatable.
    #[arg(long = "unreachable-service", value_name = "NS/NAME")]
    unreachable_services: Vec<String>,
    /// How long a dial to an unreachable pod takes to fail, in milliseconds (a real API
    /// server: 30000).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    unreachable_delay_ms: u64,
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The crate's errors carry their cause in their message; `{e:#}` would repeat it.
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut builder = SimCluster::builder()
        .port(args.port)
        .sample_apps(!args.no_sample_apps);
    for spec in &args.services {
        builder = builder.service(ServiceMapping::parse(spec)?);
    }
    builder = builder
        .reachable_pods(!args.unreachable_pods)
        .unreachable_delay(std::time::Duration::from_millis(args.unreachable_delay_ms));
    for spec in &args.unreachable_services {
        let Some((namespace, name)) = spec
            .split_once('/')
            .filter(|(n, s)| !n.is_empty() && !s.is_empty() && !s.contains('/'))
        else {
            anyhow::bail!("--unreachable-service {spec:?}: give it as <namespace>/<name>");
        };
        builder = builder.unreachable_service(namespace, name);
    }
    let cluster = builder.start().await?;
    let (path, temporary) = match args.kubeconfig_out {
        Some(p) => (p, false),
        None => (
            std::env::temp_dir().join(format!("simcluster-{}.kubeconfig", cluster.addr().port())),
            true,
        ),
    };
    cluster.write_kubeconfig(&path)?;
    println!("simcluster: API server listening on {}", cluster.url());
    println!("kubeconfig: {}", path.display());
    println!("export KUBECONFIG={}", path.display());
    for (ns, name, ports) in cluster.services() {
        println!("  service {ns}/{name} ports [{}]", ports.join(", "));
    }
    println!("Press Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    cluster.shutdown().await;
    if temporary {
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}
