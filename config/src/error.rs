//! Why a cluster configuration could not be loaded, with what to do about it.
//!
//! Messages name files, contexts and fields, never their secret contents: YAML parse errors
//! are reduced to their position because a parser's snippet could quote a token.

use std::path::PathBuf;

/// A kubeconfig or in-cluster configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Nothing to load.
    #[error(
        "no cluster configuration found: {searched}; point --kubeconfig or KUBECONFIG at a \
         kubeconfig file, or pass --server"
    )]
    NoConfiguration {
        /// What was looked at.
        searched: String,
    },
    /// `--kubeconfig` (or a file it reads) cannot be read.
    #[error("cannot read kubeconfig {path}: {reason}")]
    ReadKubeconfig {
        /// The file.
        path: PathBuf,
        /// Why (an I/O error or a YAML position).
        reason: String,
    },
    /// The files of `KUBECONFIG` cannot be merged.
    #[error("cannot merge kubeconfig {path} into the previous files: {reason}")]
    Merge {
        /// The file that did not fit.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `--context` names a context that does not exist.
    #[error("context {name:?} does not exist in {source_files}; available contexts: {available}")]
    ContextNotFound {
        /// The requested name.
        name: String,
        /// The kubeconfig files searched.
        source_files: String,
        /// The contexts that do exist.
        available: String,
    },
    /// No `--context` and no `current-context`.
    #[error(
        "no context selected in {source_files}: current-context is not set; pass --context \
         (available: {available}) or run `kubectl config use-context <name>`"
    )]
    NoCurrentContext {
        /// The kubeconfig files searched.
        source_files: String,
        /// The contexts that do exist.
        available: String,
    },
    /// A context, or `--cluster`, names a cluster that does not exist.
    #[error("cluster {name:?} does not exist in {source_files} (used by {used_by})")]
    ClusterNotFound {
        /// The cluster name.
        name: String,
        /// The kubeconfig files searched.
        source_files: String,
        /// The context or flag that named it.
        used_by: String,
    },
    /// A context, or `--user`, names a user that does not exist.
    #[error("user {name:?} does not exist in {source_files} (used by {used_by})")]
    UserNotFound {
        /// The user name.
        name: String,
        /// The kubeconfig files searched.
        source_files: String,
        /// The context or flag that named it.
        used_by: String,
    },
    /// The cluster has no `server`.
    #[error(
        "cluster {cluster:?} has no server address; set clusters[].cluster.server or pass --server"
    )]
    NoServer {
        /// The cluster entry.
        cluster: String,
    },
    /// The server address is not a usable URL.
    #[error("invalid API server address {server:?}: {reason}")]
    InvalidServer {
        /// The address as written.
        server: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A file named by the kubeconfig or a flag cannot be read.
    #[error(
        "cannot read {what} {path}: {source}; check the path (relative paths in a kubeconfig \
         are relative to that file)"
    )]
    ReadFile {
        /// What the file is for, like "certificate-authority".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Inline `*-data` is not valid base64.
    #[error("{field} of {entry:?} is not valid base64; paste the output of `base64 -w0 <file>`")]
    InvalidBase64 {
        /// The field.
        field: &'static str,
        /// The cluster or user entry.
        entry: String,
    },
    /// A client certificate without its key, or the other way round.
    #[error("user {user:?} has {present} but no {missing}; a TLS client identity needs both")]
    IncompleteClientIdentity {
        /// The user entry.
        user: String,
        /// What is there.
        present: &'static str,
        /// What is missing.
        missing: &'static str,
    },
    /// Both a CA and `insecure-skip-tls-verify`, which kubectl refuses too.
    #[error(
        "cluster {cluster:?} sets both a certificate authority and insecure-skip-tls-verify; \
         remove one of them"
    )]
    CaWithInsecure {
        /// The cluster entry.
        cluster: String,
    },
    /// The `exec` stanza cannot be used.
    #[error("user {user:?} has an invalid exec plugin configuration: {reason}")]
    InvalidExec {
        /// The user entry.
        user: String,
        /// What is wrong.
        reason: String,
    },
    /// An `auth-provider` kgate (like current kubectl) does not support.
    #[error("user {user:?} uses the {name:?} auth-provider, which is not supported: {hint}")]
    UnsupportedAuthProvider {
        /// The user entry.
        user: String,
        /// The provider name.
        name: String,
        /// What to use instead.
        hint: &'static str,
    },
    /// The `oidc` auth-provider settings are incomplete.
    #[error("user {user:?} has an invalid oidc auth-provider configuration: {reason}")]
    InvalidOidc {
        /// The user entry.
        user: String,
        /// What is wrong.
        reason: String,
    },
    /// More than one way to authenticate was given where kubectl refuses it.
    #[error("user {user:?} sets more than one authentication method ({methods}); keep only one")]
    ConflictingCredentials {
        /// The user entry.
        user: String,
        /// The methods found.
        methods: String,
    },
    /// In-cluster configuration was chosen but is not usable.
    #[error("cannot use the in-cluster service account: {reason}")]
    InCluster {
        /// Why.
        reason: String,
    },
}
