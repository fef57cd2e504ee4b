//! The crate's error type: what failed while starting or driving a simulated cluster, with the
//! context needed to fix it. Never carries token or key material.

use std::net::SocketAddr;

/// Why the simulated cluster could not start or do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be bound (port taken, permission).
    #[error("cannot listen on {addr}: {source}; choose another port or 0 for a free one")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Generating the CA, a server or a client certificate failed.
    #[error("cannot generate the {what} certificate: {source}")]
    Certificate {
        /// Which certificate.
        what: String,
        /// The rcgen error.
        source: rcgen::Error,
    },
    /// The TLS configuration was rejected by rustls.
    #[error("cannot build the {what} TLS configuration: {source}")]
    Tls {
        /// Which configuration.
        what: &'static str,
        /// The rustls error.
        source: rustls::Error,
    },
    /// A `--service` mapping or `map_service` call was not usable.
    #[error("invalid service mapping {spec:?}: {reason}")]
    ServiceMapping {
        /// The mapping as given.
        spec: String,
        /// What was wrong and what is expected.
        reason: String,
    },
    /// A client certificate was asked for a user that was not registered with
    /// `client_cert_user`.
    #[error("no client certificate for user {user:?}; register it with `client_cert_user` first")]
    UnknownCertUser {
        /// The user asked for.
        user: String,
    },
    /// A service named by a control call (`set_endpoints_ready`) does not exist.
    #[error("no service {namespace}/{name} in the simulated cluster")]
    UnknownService {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A pod named by a control call (`delete_pod`) does not exist.
    #[error("no pod {namespace}/{name} in the simulated cluster")]
    UnknownPod {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// An invalid value for a control call (for example an Elasticsearch status).
    #[error("invalid value {value:?}: {reason}")]
    InvalidValue {
        /// The value given.
        value: String,
        /// What is accepted.
        reason: &'static str,
    },
    /// Writing the kubeconfig failed.
    #[error("cannot write the kubeconfig to {path}: {source}")]
    WriteKubeconfig {
        /// Where.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The operating system's random source failed.
    #[error("the system random number generator failed")]
    Random,
}
