//! `kgate cluster-info`: byte for byte what `kubectl cluster-info` prints (the logic and its
//! documented limits are in `discovery::cluster_info`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use discovery::cluster_info::ClusterInfoOutput;

/// Arguments of `kgate cluster-info`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    kube: config::KubeArgs,
}

pub(crate) fn run(args: Args) -> ExitCode {
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    ExitCode::from(run_to(&args, &mut stdout, &mut stderr))
}

/// Runs the command, writing what kubectl would print to `stdout` and `stderr`; returns the
/// exit code.
fn run_to(args: &Args, stdout: &mut impl Write, stderr: &mut impl Write) -> u8 {
    // Write errors (a closed pipe) cannot be reported anywhere useful; the exit code stands.
    match run_inner(args) {
        Ok(out) => {
            let _ = stdout.write_all(out.stdout.as_bytes());
            let _ = stderr.write_all(out.stderr.as_bytes());
            out.exit_code
        }
        Err(err) => {
            let _ = writeln!(stderr, "error: {}", auth::error_chain(&*err));
            1
        }
    }
}

fn run_inner(args: &Args) -> anyhow::Result<ClusterInfoOutput> {
    let config = config::ClusterConfig::load(&args.kube).context("loading the kubeconfig")?;
    let client = auth::ApiClient::new(&config, auth::ClientOptions::default())
        .context("setting up the API server client")?;
    let server = server_as_written(&config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(runtime.block_on(discovery::cluster_info::cluster_info(
        &client,
        &server,
        args.kube.namespace.as_deref(),
    )))
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

    fn output(argv: &[&str]) -> (String, String, u8) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_to(&Cli::parse_from(argv).args, &mut out, &mut err);
        (
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
            code,
        )
    }

    /// `kgate cluster-info` and `/usr/bin/kubectl cluster-info`, same kubeconfig, same flags:
    /// the same stdout and exit code, and the same last stderr line (kubectl's klog discovery
    /// lines before it are documented as not reproduced).
    #[test]
    fn equals_kubectl() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let cluster = rt
            .block_on(simcluster::SimCluster::builder().start())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kc = dir.path().join("config");
        cluster.write_kubeconfig(&kc).unwrap();
        let kc = kc.to_str().unwrap_or_default().to_owned();
        let kubectl = std::path::Path::new("/usr/bin/kubectl");
        let mut cases = vec![vec!["cluster-info", "--kubeconfig", kc.as_str()]];
        cases.push(vec![
            "cluster-info",
            "--kubeconfig",
            kc.as_str(),
            "-n",
            "monitoring",
        ]);
        cases.push(vec![
            "cluster-info",
            "--kubeconfig",
            kc.as_str(),
            "--namespace=demo",
        ]);
        let mut results = Vec::new();
        for argv in &cases {
            results.push(output(argv));
        }
        // The same kubeconfig, once nothing listens there (shut down, not just dropped: a
        // listener still closing resets connections instead of refusing them).
        rt.block_on(cluster.shutdown());
        let (out, err, code) = output(&cases[0]);
        assert_eq!(code, 1);
        assert!(
            err.starts_with("The connection to the server 127.0.0.1:"),
            "{err}"
        );
        if !kubectl.exists() {
            eprintln!(
                "SKIPPED: /usr/bin/kubectl is not installed; kgate cluster-info not compared with it"
            );
            return;
        }
        let run_kubectl = |argv: &[&str]| {
            let o = std::process::Command::new(kubectl)
                .args(argv)
                .env("HOME", dir.path())
                .env_remove("KUBECONFIG")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
            (
                String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr,
                o.status.code(),
            )
        };
        let (k_out, k_err, k_code) = run_kubectl(&cases[0]);
        assert_eq!((out.as_str(), k_code), (k_out.as_str(), Some(1)));
        assert_eq!(err.lines().last(), k_err.lines().last());
        // kubectl against the running cluster needs it back: compare those outputs now,
        // against a second cluster with the same objects.
        let cluster = rt
            .block_on(simcluster::SimCluster::builder().start())
            .unwrap();
        cluster.write_kubeconfig(dir.path().join("config")).unwrap();
        for argv in &cases {
            let ours = output(argv);
            let theirs = run_kubectl(argv);
            assert_eq!(
                (ours.0.as_str(), Some(i32::from(ours.2))),
                (theirs.0.as_str(), theirs.2),
                "{argv:?}: {}",
                theirs.1
            );
            assert!(ours.0.contains(" is running at "), "{argv:?}");
        }
        assert!(results.iter().all(|r| r.2 == 0));
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
        rt.block_on(cluster.shutdown());
        // The cluster is gone: kubectl's "connection refused" line, exit 1.
        assert_eq!(run(Cli::parse_from(argv).args), ExitCode::from(1));
    }
}
