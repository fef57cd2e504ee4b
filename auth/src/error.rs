//! Errors of the upstream client, each saying whose fault it is and what to do.
//!
//! No variant carries a token, password or key: messages are built from names, paths,
//! addresses and (for a failed exec plugin) the plugin's own trimmed stderr.

use std::path::PathBuf;
use std::time::Duration;

use http::StatusCode;

/// An error and its causes on one line (`outer: inner: innermost`), for messages and logs.
///
/// Many error types put their cause in their own message and also return it from `source()`
/// (thiserror's `#[error("...: {source}")]`); a cause whose text is already on the line is not
/// repeated, so no message says the same thing twice.
///
/// ```
/// use std::error::Error;
/// use std::fmt;
///
/// /// Prints its cause and also returns it from `source()`.
/// #[derive(Debug)]
/// struct Listen(std::io::Error);
/// impl fmt::Display for Listen {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         write!(f, "listen tcp 127.0.0.1:8001: {}", self.0)
///     }
/// }
/// impl Error for Listen {
///     fn source(&self) -> Option<&(dyn Error + 'static)> {
///         Some(&self.0)
///     }
/// }
///
/// let io = || std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use");
/// assert_eq!(
///     auth::error_chain(&Listen(io())),
///     "listen tcp 127.0.0.1:8001: address in use"
/// );
/// assert_eq!(auth::error_chain(&io()), "address in use");
/// ```
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Whose fault a [`SendError`] is, for the gateway's single error-classification point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The API server could not be reached (refused, unreachable, DNS, proxy).
    Network,
    /// The API server's certificate did not verify, or the TLS handshake failed.
    Tls,
    /// No answer in time.
    Timeout,
    /// Credentials could not be obtained (plugin, token file, OIDC issuer).
    Credentials,
    /// The request handed to the client was unusable (a bug in the caller, or the
    /// downstream client's body failed).
    Request,
    /// The API server answered, but not usefully (broken connection, error status,
    /// undecodable JSON).
    Server,
}

/// Failure to obtain a credential. Cloneable so that requests waiting on one plugin run all
/// get its failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialError {
    /// The exec plugin's command does not exist.
    #[error(
        "exec plugin {command:?} for user {user:?} was not found in PATH; {}",
        install_hint.as_deref().unwrap_or("install it, or fix `command` in the kubeconfig's exec section")
    )]
    ExecNotFound {
        /// The command.
        command: String,
        /// The kubeconfig user.
        user: String,
        /// The kubeconfig's `installHint`.
        install_hint: Option<String>,
    },
    /// The plugin could not be started.
    #[error("exec plugin {command:?} for user {user:?} could not be started: {reason}")]
    ExecSpawn {
        /// The command.
        command: String,
        /// The kubeconfig user.
        user: String,
        /// The OS error.
        reason: String,
    },
    /// The plugin exited unsuccessfully.
    #[error(
        "exec plugin {command:?} for user {user:?} failed ({status}){}",
        fmt_stderr(stderr)
    )]
    ExecFailed {
        /// The command.
        command: String,
        /// The kubeconfig user.
        user: String,
        /// Exit status.
        status: String,
        /// Its trimmed standard error (empty when the plugin had the terminal).
        stderr: String,
    },
    /// The plugin did not finish in time.
    #[error(
        "exec plugin {command:?} for user {user:?} did not finish within {after:?}; run it by \
         hand to see whether it waits for input"
    )]
    ExecTimeout {
        /// The command.
        command: String,
        /// The kubeconfig user.
        user: String,
        /// The limit.
        after: Duration,
    },
    /// `interactiveMode: Always` without a terminal.
    #[error(
        "exec plugin {command:?} for user {user:?} needs a terminal (interactiveMode: Always) \
         but standard input is not one; run it once in a terminal to log in, or use a \
         non-interactive credential"
    )]
    ExecNeedsTerminal {
        /// The command.
        command: String,
        /// The kubeconfig user.
        user: String,
    },
    /// The plugin printed something that is not a usable `ExecCredential`.
    #[error(
        "exec plugin {command:?} for user {user:?} returned an unusable ExecCredential: {reason}"
    )]
    ExecOutput {
        /// The command.
        command: String,
        /// The kubeconfig user.
        user: String,
        /// What is wrong.
        reason: String,
    },
    /// A token file cannot be read and no earlier token is known.
    #[error("cannot read token file {path}: {reason}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A token or password that cannot be sent in an HTTP header.
    #[error("the {what} contains characters that cannot be sent in an HTTP header")]
    InvalidHeaderValue {
        /// Which credential.
        what: String,
    },
    /// OIDC: the id-token expired and there is no refresh token.
    #[error(
        "the OIDC id-token of user {user:?} has expired and there is no refresh-token; log in \
         again (for example with `kubectl oidc-login`)"
    )]
    OidcNoRefreshToken {
        /// The kubeconfig user.
        user: String,
    },
    /// OIDC: the issuer refused the refresh token (expired or revoked).
    #[error(
        "the OIDC issuer {issuer} rejected the refresh-token of user {user:?} ({error}{}); it \
         has probably expired or been revoked: log in again (for example with `kubectl oidc-login`)",
        description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    OidcRefreshRejected {
        /// The kubeconfig user.
        user: String,
        /// The issuer URL.
        issuer: String,
        /// The OAuth2 error code, like `invalid_grant`.
        error: String,
        /// The issuer's `error_description`, shortened.
        description: Option<String>,
    },
    /// OIDC: the issuer could not be asked (network, TLS, bad answer).
    #[error("cannot refresh the OIDC token of user {user:?} at {issuer}: {reason}")]
    OidcIssuer {
        /// The kubeconfig user.
        user: String,
        /// The issuer or endpoint URL.
        issuer: String,
        /// Why.
        reason: String,
    },
}

fn fmt_stderr(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// The upstream client cannot be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The CA bundle has no usable certificate.
    #[error("the certificate authority from {origin} holds no usable PEM certificate: {reason}")]
    InvalidCa {
        /// Where it came from.
        origin: String,
        /// Why.
        reason: String,
    },
    /// No CA was configured and the system has no trusted roots.
    #[error(
        "no certificate authority is configured and no system roots could be loaded ({reason}); \
         set certificate-authority in the kubeconfig or pass --certificate-authority"
    )]
    NoSystemRoots {
        /// Why.
        reason: String,
    },
    /// The client certificate or key cannot be used.
    #[error("the client certificate from {origin} cannot be used: {reason}")]
    InvalidClientIdentity {
        /// Where it came from.
        origin: String,
        /// Why (never the key material).
        reason: String,
    },
    /// `tls-server-name` is not a DNS name or IP address.
    #[error("tls-server-name {name:?} is not a valid DNS name or IP address")]
    InvalidServerName {
        /// The name.
        name: String,
    },
    /// The proxy URL cannot be used.
    #[error("proxy-url {url} cannot be used: {reason}")]
    InvalidProxy {
        /// The proxy URL without credentials.
        url: String,
        /// Why.
        reason: String,
    },
    /// The TLS library refused the settings.
    #[error("TLS setup failed: {reason}")]
    Tls {
        /// Why.
        reason: String,
    },
    /// A static credential cannot be sent as a header.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// An impersonation value cannot be sent as a header.
    #[error("impersonation value for {header} cannot be sent in an HTTP header")]
    InvalidImpersonation {
        /// The header.
        header: String,
    },
}

/// Why a request to the API server got no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// TCP (or proxy) connection failed.
    #[error(
        "cannot connect to the API server {server}{}: {reason}; check that the cluster is \
         running and reachable (VPN, proxy) and that the kubeconfig's server address is right",
        via.as_deref().map(|v| format!(" via proxy {v}")).unwrap_or_default()
    )]
    Connect {
        /// The server URL.
        server: String,
        /// The proxy used, if any.
        via: Option<String>,
        /// The cause.
        reason: String,
    },
    /// The server certificate did not verify, or the handshake failed.
    #[error(
        "TLS verification of the API server {server} (as {server_name}) failed using {ca}: \
         {reason}; check certificate-authority (or --certificate-authority) and tls-server-name \
         in the kubeconfig"
    )]
    Tls {
        /// The server URL.
        server: String,
        /// The name verified against.
        server_name: String,
        /// Which trust anchors were used.
        ca: String,
        /// rustls' reason.
        reason: String,
    },
    /// No answer in time.
    #[error(
        "the API server {server} did not answer within {after:?}; raise --request-timeout or check the cluster"
    )]
    Timeout {
        /// The server URL.
        server: String,
        /// The limit.
        after: Duration,
    },
    /// Credentials could not be obtained.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// The request cannot be sent as given.
    #[error("invalid request to the API server: {reason}")]
    InvalidRequest {
        /// Why.
        reason: String,
    },
    /// The request body failed while being read.
    #[error("reading the request body failed: {reason}")]
    RequestBody {
        /// Why.
        reason: String,
    },
    /// The connection broke or the server spoke nonsense.
    #[error("the API server {server} broke off the exchange: {reason}")]
    Protocol {
        /// The server URL.
        server: String,
        /// Why.
        reason: String,
    },
    /// `get_json`: the server answered with an error status.
    #[error("the API server {server} answered {status} to GET {path}: {message}")]
    Status {
        /// The server URL.
        server: String,
        /// The path.
        path: String,
        /// The status.
        status: StatusCode,
        /// The `Status` message or the start of the body.
        message: String,
    },
    /// `get_json`: the body is not the expected JSON.
    #[error("the API server {server} sent unexpected JSON for GET {path}: {reason}")]
    Decode {
        /// The server URL.
        server: String,
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
}

impl SendError {
    /// Whose fault this is.
    pub fn fault(&self) -> Fault {
        match self {
            SendError::Connect { .. } => Fault::Network,
            SendError::Tls { .. } => Fault::Tls,
            SendError::Timeout { .. } => Fault::Timeout,
            SendError::Credential(_) => Fault::Credentials,
            SendError::InvalidRequest { .. } | SendError::RequestBody { .. } => Fault::Request,
            SendError::Protocol { .. } | SendError::Status { .. } | SendError::Decode { .. } => {
                Fault::Server
            }
        }
    }
}
