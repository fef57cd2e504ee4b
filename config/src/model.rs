//! The resolved settings for one cluster: what the `auth` crate needs to reach and
//! authenticate to the API server. Plain data; no I/O happens through these types.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{SecretSlice, SecretString};
use url::Url;

/// Everything needed to talk to one API server, resolved from kubeconfig, flags and environment.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The API server URL as written in the kubeconfig (or `--server`), path included
    /// (Rancher serves clusters under `https://rancher/k8s/clusters/<id>`).
    pub server: Url,
    /// Default namespace: `--namespace`, else the context's, else `default`
    /// (in a pod: `POD_NAMESPACE`, else the service-account namespace file).
    pub namespace: String,
    /// The kubeconfig context in use; `None` for in-cluster or `--server`-only configuration.
    pub context: Option<String>,
    /// The kubeconfig cluster entry in use, if any.
    pub cluster_name: Option<String>,
    /// The kubeconfig user entry in use, if any.
    pub user_name: Option<String>,
    /// TLS settings towards the API server.
    pub tls: TlsConfig,
    /// How requests are authenticated (besides a TLS client certificate, which is in `tls`).
    pub credentials: Credentials,
    /// `Impersonate-*` headers to send.
    pub impersonation: Impersonation,
    /// The cluster's `proxy-url` (http, https or socks5).
    pub proxy_url: Option<Url>,
    /// The cluster's `disable-compression`: never ask the server for compressed responses.
    pub disable_compression: bool,
    /// `--request-timeout`; `None` means no timeout.
    pub request_timeout: Option<Duration>,
    /// Where this configuration came from, for messages.
    pub source: ConfigSource,
}

/// Where a [`ClusterConfig`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// Merged from these kubeconfig files, in merge order.
    Kubeconfig(Vec<PathBuf>),
    /// From the pod's service account (`KUBERNETES_SERVICE_HOST`/`_PORT` and its folder).
    InCluster,
    /// From command-line flags alone (`--server` with no kubeconfig file).
    Flags,
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Kubeconfig(paths) => {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                write!(f, "kubeconfig {}", names.join(", "))
            }
            ConfigSource::InCluster => f.write_str("in-cluster service account"),
            ConfigSource::Flags => f.write_str("command-line flags"),
        }
    }
}

/// Where a piece of PEM data was read from, so that errors can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataOrigin {
    /// A file on disk (from the kubeconfig, a flag, or the service-account folder).
    File(PathBuf),
    /// Inline base64 data in the kubeconfig: `field` of the cluster or user named `entry`.
    Inline {
        /// The kubeconfig field, like `certificate-authority-data`.
        field: &'static str,
        /// The cluster or user entry that holds it.
        entry: String,
    },
    /// Handed out by an exec credential plugin.
    ExecPlugin(String),
}

impl fmt::Display for DataOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataOrigin::File(path) => write!(f, "file {}", path.display()),
            DataOrigin::Inline { field, entry } => {
                write!(f, "{field} of {entry:?} in the kubeconfig")
            }
            DataOrigin::ExecPlugin(command) => write!(f, "exec plugin {command:?}"),
        }
    }
}

/// PEM bytes (certificates) and where they came from.
#[derive(Debug, Clone)]
pub struct PemData {
    /// The PEM text.
    pub pem: Vec<u8>,
    /// Where it was read from.
    pub origin: DataOrigin,
}

/// A TLS client certificate chain and its private key (RSA, EC or Ed25519, PEM).
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// The certificate chain, leaf first.
    pub cert: PemData,
    /// The private key PEM; secret.
    pub key_pem: SecretSlice<u8>,
    /// Where the key was read from.
    pub key_origin: DataOrigin,
}

/// TLS settings towards the API server.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// The CA bundle to trust; `None` means the operating system's roots.
    pub ca: Option<PemData>,
    /// `insecure-skip-tls-verify`: accept any server certificate.
    pub insecure_skip_verify: bool,
    /// `tls-server-name`: the name to verify the server certificate against (and send as SNI).
    pub server_name: Option<String>,
    /// A static client certificate from the kubeconfig or flags.
    pub client_identity: Option<ClientIdentity>,
}

impl TlsConfig {
    /// Describes the trust anchors for messages: "CA file /x/ca.crt", "the system roots", ...
    pub fn ca_description(&self) -> String {
        if self.insecure_skip_verify {
            return "no verification (insecure-skip-tls-verify)".to_owned();
        }
        match &self.ca {
            Some(ca) => format!("CA from {}", ca.origin),
            None => "the operating system's trusted roots".to_owned(),
        }
    }
}

/// How requests are authenticated by header. Client certificates live in [`TlsConfig`]
/// (and may be combined with these, as kubectl allows).
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    /// No header credential.
    #[default]
    None,
    /// A fixed bearer token (`token`, `--token`).
    Token(SecretString),
    /// A bearer token read from a file and re-read when it changes (`tokenFile`, in-cluster).
    TokenFile {
        /// The token file.
        path: PathBuf,
        /// An inline `token` that also was set, used until the file can be read
        /// (client-go's `NewBearerAuthWithRefreshRoundTripper`).
        initial: Option<SecretString>,
    },
    /// HTTP basic authentication (`username`/`password`).
    Basic {
        /// The user name.
        username: String,
        /// The password; secret.
        password: SecretString,
    },
    /// A client-go credential plugin (`exec`).
    Exec(ExecConfig),
    /// The `oidc` auth-provider.
    Oidc(OidcConfig),
}

impl Credentials {
    /// A short name for messages and logs: "token", "exec plugin aws", ...
    pub fn kind(&self) -> String {
        match self {
            Credentials::None => "none".to_owned(),
            Credentials::Token(_) => "token".to_owned(),
            Credentials::TokenFile { path, .. } => format!("token file {}", path.display()),
            Credentials::Basic { .. } => "basic auth".to_owned(),
            Credentials::Exec(exec) => format!("exec plugin {}", exec.command),
            Credentials::Oidc(_) => "oidc auth-provider".to_owned(),
        }
    }
}

/// `client.authentication.k8s.io` version spoken with an exec plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecApiVersion {
    /// `client.authentication.k8s.io/v1`
    V1,
    /// `client.authentication.k8s.io/v1beta1`
    V1Beta1,
}

impl ExecApiVersion {
    /// The `apiVersion` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecApiVersion::V1 => "client.authentication.k8s.io/v1",
            ExecApiVersion::V1Beta1 => "client.authentication.k8s.io/v1beta1",
        }
    }
}

/// The exec plugin's `interactiveMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InteractiveMode {
    /// Never give the plugin the terminal.
    Never,
    /// Give it the terminal when standard input is one.
    IfAvailable,
    /// The plugin needs a terminal; fail without one.
    Always,
}

/// An exec credential plugin, as the kubeconfig `exec` stanza describes it.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// The command (a bare name is looked up in `PATH`).
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables (added to the inherited environment).
    pub env: Vec<(String, String)>,
    /// Protocol version.
    pub api_version: ExecApiVersion,
    /// Shown when the command cannot be found.
    pub install_hint: Option<String>,
    /// Whether the plugin may use the terminal.
    pub interactive_mode: InteractiveMode,
    /// Cluster information passed in `KUBERNETES_EXEC_INFO` when `provideClusterInfo` is set.
    pub cluster: Option<ExecClusterInfo>,
    /// The kubeconfig user entry, for messages.
    pub user: String,
}

/// The `spec.cluster` object given to an exec plugin (client-go `clientauthentication.Cluster`).
#[derive(Debug, Clone)]
pub struct ExecClusterInfo {
    /// The server URL.
    pub server: String,
    /// The cluster's `tls-server-name`.
    pub tls_server_name: Option<String>,
    /// The cluster's `insecure-skip-tls-verify`.
    pub insecure_skip_tls_verify: bool,
    /// The CA bundle, if any.
    pub certificate_authority_data: Option<Vec<u8>>,
    /// The cluster's `proxy-url`.
    pub proxy_url: Option<String>,
    /// The cluster's `disable-compression`.
    pub disable_compression: bool,
    /// The `client.authentication.k8s.io/exec` cluster extension, passed as `config`.
    pub config: Option<serde_json::Value>,
}

/// The `oidc` auth-provider settings.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// `idp-issuer-url`.
    pub issuer_url: Url,
    /// `client-id`.
    pub client_id: String,
    /// `client-secret`; absent for public clients.
    pub client_secret: Option<SecretString>,
    /// The current `id-token`.
    pub id_token: Option<SecretString>,
    /// The `refresh-token`.
    pub refresh_token: Option<SecretString>,
    /// `idp-certificate-authority[-data]`: the CA that signed the issuer's certificate.
    pub idp_ca: Option<PemData>,
    /// `extra-scopes`.
    pub extra_scopes: Vec<String>,
    /// The kubeconfig user entry, for messages.
    pub user: String,
}

/// Impersonation headers (`--as`, `--as-group`, `--as-uid`, and the kubeconfig's
/// `as`, `as-groups`, `as-uid`, `as-user-extra`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Impersonation {
    /// `Impersonate-User`.
    pub user: Option<String>,
    /// `Impersonate-Uid`.
    pub uid: Option<String>,
    /// `Impersonate-Group`, one header per group.
    pub groups: Vec<String>,
    /// `Impersonate-Extra-<key>`, one header per value.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl Impersonation {
    /// True when no impersonation header is to be sent.
    pub fn is_empty(&self) -> bool {
        self.user.is_none() && self.uid.is_none() && self.groups.is_empty() && self.extra.is_empty()
    }
}
