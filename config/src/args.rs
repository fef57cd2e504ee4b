//! kubectl's global connection flags as a `clap::Args` struct, flattened into every subcommand
//! that talks to a cluster. Names, short forms and help texts follow kubectl
//! (`k8s.io/cli-runtime/pkg/genericclioptions/config_flags.go`), so scripts written for
//! kubectl keep working.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// The flags kubectl accepts on every command to choose and override a kubeconfig.
///
/// `Debug` is derived: `--token` and `--password` are `SecretString`s and print redacted.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KubeArgs {
    /// Path to the kubeconfig file to use for CLI requests.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The name of the kubeconfig context to use
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// The name of the kubeconfig cluster to use
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,

    /// The name of the kubeconfig user to use
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// If present, the namespace scope for this CLI request
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// The address and port of the Kubernetes API server
    #[arg(short = 's', long, value_name = "URL")]
    pub server: Option<String>,

    /// Bearer token for authentication to the API server
    #[arg(long, value_name = "TOKEN", value_parser = parse_secret)]
    pub token: Option<SecretString>,

    /// Username for basic authentication to the API server
    #[arg(long, value_name = "NAME")]
    pub username: Option<String>,

    /// Password for basic authentication to the API server
    #[arg(long, value_name = "PASSWORD", value_parser = parse_secret)]
    pub password: Option<SecretString>,

    /// Path to a cert file for the certificate authority
    #[arg(long, value_name = "PATH")]
    pub certificate_authority: Option<PathBuf>,

    /// Path to a client certificate file for TLS
    #[arg(long, value_name = "PATH")]
    pub client_certificate: Option<PathBuf>,

    /// Path to a client key file for TLS
    #[arg(long, value_name = "PATH")]
    pub client_key: Option<PathBuf>,

    /// If true, the server's certificate will not be checked for validity. This will make
    /// your HTTPS connections insecure
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,

    /// Server name to use for server certificate validation. If it is not provided, the
    /// hostname used to contact the server is used
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,

    /// Username to impersonate for the operation. User could be a regular user or a service
    /// account in a namespace.
    #[arg(long = "as", value_name = "USER")]
    pub as_user: Option<String>,

    /// Group to impersonate for the operation, this flag can be repeated to specify multiple
    /// groups.
    #[arg(long = "as-group", value_name = "GROUP")]
    pub as_group: Vec<String>,

    /// UID to impersonate for the operation.
    #[arg(long = "as-uid", value_name = "UID")]
    pub as_uid: Option<String>,

    /// The length of time to wait before giving up on a single server request. Non-zero values
    /// should contain a corresponding time unit (e.g. 1s, 2m, 3h). A value of zero means don't
    /// timeout requests.
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_timeout)]
    pub request_timeout: Duration,
}

fn parse_secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value))
}

/// kubectl accepts a bare integer as seconds, otherwise a Go duration; zero means "no timeout".
fn parse_timeout(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => crate::duration::parse_go_duration(value).map_err(|e| {
            format!("{e}; use a number of seconds or a duration with a unit like 1s, 2m, 3h")
        }),
    }
}

impl KubeArgs {
    /// `--request-timeout`, with zero meaning none.
    pub fn request_timeout(&self) -> Option<Duration> {
        (!self.request_timeout.is_zero()).then_some(self.request_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use secrecy::ExposeSecret;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        kube: KubeArgs,
    }

    #[test]
    fn parses_kubectl_flags() {
        let cli = Cli::try_parse_from([
            "kgate",
            "--kubeconfig=/tmp/k",
            "--context",
            "c",
            "-n",
            "ns",
            "-s",
            "https://h:6443",
            "--token=t0k",
            "--as=alice",
            "--as-group=a",
            "--as-group=b",
            "--as-uid=1",
            "--request-timeout=1m30s",
            "--insecure-skip-tls-verify",
        ])
        .unwrap();
        let k = cli.kube;
        assert_eq!(k.context.as_deref(), Some("c"));
        assert_eq!(k.namespace.as_deref(), Some("ns"));
        assert_eq!(k.server.as_deref(), Some("https://h:6443"));
        assert_eq!(k.token.as_ref().map(|t| t.expose_secret()), Some("t0k"));
        assert_eq!(k.as_group, ["a", "b"]);
        assert_eq!(k.request_timeout(), Some(Duration::from_secs(90)));
        assert!(k.insecure_skip_tls_verify);
        assert!(!format!("{k:?}").contains("t0k"));
    }

    #[test]
    fn request_timeout_forms() {
        let parse = |v: &str| Cli::try_parse_from(["kgate", "--request-timeout", v]);
        assert_eq!(parse("0").unwrap().kube.request_timeout(), None);
        assert_eq!(
            parse("5").unwrap().kube.request_timeout(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse("250ms").unwrap().kube.request_timeout(),
            Some(Duration::from_millis(250))
        );
        assert!(parse("5 parsecs").is_err());
        assert_eq!(
            Cli::try_parse_from(["kgate"])
                .unwrap()
                .kube
                .request_timeout(),
            None
        );
    }
}
