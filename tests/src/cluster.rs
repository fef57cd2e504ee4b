//! A simulated cluster with a kubeconfig on disk, and the proxies under test in front of it.

use std::path::PathBuf;

use simcluster::SimCluster;

use crate::proc::{Proxy, kubectl_bin};

/// A running simcluster and a kubeconfig for it.
pub struct Cluster {
    pub sim: SimCluster,
    pub kubeconfig: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts simcluster with its sample apps and writes `<tmp>/kubeconfig`.
    pub async fn start() -> Cluster {
        Cluster::start_with(SimCluster::builder()).await
    }

    /// [`Cluster::start`] with a simcluster built by `builder` (users, refusals).
    pub async fn start_with(builder: simcluster::SimClusterBuilder) -> Cluster {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = builder.start().await.expect("simcluster starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).expect("write kubeconfig");
        Cluster {
            sim,
            kubeconfig,
            dir,
        }
    }

    fn args(&self, cmd: &[&str], extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = cmd.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--kubeconfig={}", self.kubeconfig.display()));
        if !extra.iter().any(|a| {
            a.starts_with("--port") || a.starts_with("-u") || a.starts_with("--unix-socket")
        }) {
            args.push("--port=0".to_owned());
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    }

    /// `kgate proxy --kubeconfig=... --port=0 <extra>`.
    pub fn kgate_proxy(&self, extra: &[&str]) -> Proxy {
        Proxy::kgate(&self.args(&["proxy"], extra))
    }

    /// `kgate serve --kubeconfig=... --port=0 <extra>`: service origins and the gateway's pages.
    pub fn kgate_serve(&self, extra: &[&str]) -> Proxy {
        Proxy::kgate(&self.args(&["serve"], extra))
    }

    /// `kubectl proxy --kubeconfig=... --port=0 <extra>`, or `None` (with a message on
    /// stderr) when kubectl is not installed.
    pub fn kubectl_proxy(&self, extra: &[&str]) -> Option<Proxy> {
        let Some(kubectl) = kubectl_bin() else {
            eprintln!(
                "SKIPPED: kubectl is not installed; the kubectl side of this test did not run"
            );
            return None;
        };
        Some(Proxy::start(&kubectl, &self.args(&["proxy"], extra)))
    }
}
