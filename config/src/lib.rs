//! Command line, environment and kubeconfig selection, resolved into one typed settings value.
//!
//! Contract: [`ClusterConfig::load`] turns kubectl's global flags ([`KubeArgs`]) and an explicit
//! [`Env`] (never the process environment directly, so tests stay hermetic) into a
//! [`ClusterConfig`]: the API server URL, default namespace, TLS material, credentials and
//! impersonation, following kubectl's loading rules (`--kubeconfig`, else `KUBECONFIG` merged
//! first-wins, else `~/.kube/config`, else in-cluster). Files named by the kubeconfig (CA,
//! client certificate and key) are read here so that a bad path fails at start-up with the
//! file's name; credentials that change over time (token files, exec plugins, OIDC) are only
//! described here and resolved by the `auth` crate.
//!
//! Secrets are held in `secrecy` types, so the derived `Debug` of every type here is redacted.

mod args;
mod duration;
mod env;
mod error;
mod load;
mod model;

pub use args::KubeArgs;
pub use duration::parse_go_duration;
pub use env::{Env, SERVICE_ACCOUNT_DIR};
pub use error::ConfigError;
pub use model::{
    ClientIdentity, ClusterConfig, ConfigSource, Credentials, DataOrigin, ExecApiVersion,
    ExecClusterInfo, ExecConfig, Impersonation, InteractiveMode, OidcConfig, PemData, TlsConfig,
};
