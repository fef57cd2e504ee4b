//! The parts of the process environment that kubeconfig loading reads, as a plain value.
//!
//! The loader never calls `std::env` itself: the binary builds an [`Env`] once with
//! [`Env::from_process`], and tests build one by hand, so no test mutates the process
//! environment (which is unsound with threads and leaks between tests).

use std::ffi::OsString;
use std::path::PathBuf;

/// Where in-cluster credentials live, as client-go's `rest.InClusterConfig`.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Environment inputs of the kubeconfig loader.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `KUBECONFIG`: a list of files separated like `PATH` (`:` on Unix, `;` on Windows).
    pub kubeconfig: Option<OsString>,
    /// The home directory, for `~/.kube/config` (`HOME`, or `USERPROFILE` on Windows).
    pub home: Option<PathBuf>,
    /// `KUBERNETES_SERVICE_HOST`, set by the kubelet in every pod.
    pub kubernetes_service_host: Option<String>,
    /// `KUBERNETES_SERVICE_PORT`.
    pub kubernetes_service_port: Option<String>,
    /// `POD_NAMESPACE`, which kubectl prefers over the service-account namespace file.
    pub pod_namespace: Option<String>,
    /// The service-account folder (`token`, `ca.crt`, `namespace`).
    pub service_account_dir: PathBuf,
}

impl Env {
    /// Reads the real process environment.
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let home = std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Env {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            home,
            kubernetes_service_host: var("KUBERNETES_SERVICE_HOST"),
            kubernetes_service_port: var("KUBERNETES_SERVICE_PORT"),
            pod_namespace: var("POD_NAMESPACE"),
            service_account_dir: PathBuf::from(SERVICE_ACCOUNT_DIR),
        }
    }

    /// An environment with nothing set and a service-account folder that does not exist;
    /// the starting point for tests.
    pub fn empty() -> Self {
        Env {
            service_account_dir: PathBuf::from(SERVICE_ACCOUNT_DIR),
            ..Env::default()
        }
    }
}
