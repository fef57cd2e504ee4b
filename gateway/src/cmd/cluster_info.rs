//! `kgate cluster-info`: byte for byte what `kubectl cluster-info` prints (the logic and its
//! documented limits are in `discovery::cluster_info`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

/// Arguments of `kgate cluster-info`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    kube: config::KubeArgs,
}

pub(crate) fn run(args: Args) -> ExitCode {
    match run_inner(&args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn run_inner(args: &Args) -> anyhow::Result<u8> {
    let config = config::ClusterConfig::load(&args.kube).context("loading the kubeconfig")?;
    let client = auth::ApiClient::new(&config, auth::ClientOptions::default())
        .context("setting up the API server client")?;
    let server = server_as_written(&config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let out = runtime.block_on(discovery::cluster_info::cluster_info(
        &client,
        &server,
        args.kube.namespace.as_deref(),
    ));
    // Write errors (a closed pipe) cannot be reported anywhere useful; the exit code stands.
    let _ = std::io::stdout().write_all(out.stdout.as_bytes());
    let _ = std::io::stderr().write_all(out.stderr.as_bytes());
    Ok(out.exit_code)
}

/// The server URL as the kubeconfig most likely wrote it: `url` adds a `/` to a URL without a
/// path, which kubectl (printing `rest.Config.Host` verbatim) does not show.
pub(crate) fn server_as_written(config: &config::ClusterConfig) -> String {
    let server = &config.server;
    let s = server.as_str();
    if server.path() == "/" && server.query().is_none() && server.fragment().is_none() {
        s.trim_end_matches('/').to_owned()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn exit_codes() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let cluster = rt
            .block_on(simcluster::SimCluster::builder().start())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kc = dir.path().join("config");
        cluster.write_kubeconfig(&kc).unwrap();
        let argv = [
            "cluster-info",
            "--kubeconfig",
            kc.to_str().unwrap_or_default(),
        ];
        assert_eq!(run(Cli::parse_from(argv).args), ExitCode::from(0));
        let config = config::ClusterConfig::load_with_env(
            &Cli::parse_from(argv).args.kube,
            &config::Env::empty(),
        )
        .unwrap();
        assert_eq!(server_as_written(&config), cluster.url());
        drop(cluster);
        // The cluster is gone: kubectl's "connection refused" line, exit 1.
        assert_eq!(run(Cli::parse_from(argv).args), ExitCode::from(1));
    }
}
