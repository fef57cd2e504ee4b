//! kubectl's loading rules (`k8s.io/client-go/tools/clientcmd`: `ClientConfigLoadingRules`,
//! `DirectClientConfig`, `inClusterClientConfig`), resolved into a [`ClusterConfig`].
//!
//! Parsing and first-wins merging of kubeconfig files is kube's (`kube::config::Kubeconfig`),
//! which also makes paths inside a file relative to that file. Selection, flag overrides,
//! validation and in-cluster configuration are ours, so that every rule below can cite
//! clientcmd and every failure names the file, context or field involved.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use kube::config::{AuthInfo, Cluster, Kubeconfig, KubeconfigError, NamedContext};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use url::Url;

use crate::args::KubeArgs;
use crate::env::Env;
use crate::error::ConfigError;
use crate::model::{
    ClientIdentity, ClusterConfig, ConfigSource, Credentials, DataOrigin, ExecApiVersion,
    ExecClusterInfo, ExecConfig, Impersonation, InteractiveMode, OidcConfig, PemData, TlsConfig,
};

/// The cluster extension whose `extension` object is handed to exec plugins as
/// `spec.cluster.config` (client-go `clusterExtensionKey`).
const EXEC_CLUSTER_EXTENSION: &str = "client.authentication.k8s.io/exec";

impl ClusterConfig {
    /// Loads the configuration kubectl would use for these flags, from the process environment.
    pub fn load(args: &KubeArgs) -> Result<ClusterConfig, ConfigError> {
        ClusterConfig::load_with_env(args, &Env::from_process())
    }

    /// Loads the configuration kubectl would use for these flags and this environment.
    pub fn load_with_env(args: &KubeArgs, env: &Env) -> Result<ClusterConfig, ConfigError> {
        let files = kubeconfig_files(args, env);
        let kubeconfig = read_and_merge(&files)?;
        let empty = kubeconfig.contexts.is_empty()
            && kubeconfig.clusters.is_empty()
            && kubeconfig.auth_infos.is_empty()
            && kubeconfig.current_context.is_none();
        // clientcmd's DeferredLoadingClientConfig falls back to the pod's service account
        // only when the merged kubeconfig plus flags is the empty default.
        if empty && args.server.is_none() {
            if in_cluster_possible(env) {
                return in_cluster(args, env);
            }
            return Err(ConfigError::NoConfiguration {
                searched: searched_description(args, env, &files),
            });
        }
        from_kubeconfig(args, &kubeconfig, files)
    }

    /// Builds an in-cluster configuration from `KUBERNETES_SERVICE_HOST`/`_PORT` and the
    /// service-account folder of `env`, applying the flags that make sense in a pod.
    pub fn in_cluster(args: &KubeArgs, env: &Env) -> Result<ClusterConfig, ConfigError> {
        in_cluster(args, env)
    }
}

/// `--kubeconfig` alone; else the existing files of `KUBECONFIG` (missing ones are skipped,
/// duplicates dropped, as clientcmd's `ClientConfigLoadingRules.Load`); else `~/.kube/config`
/// when it exists.
fn kubeconfig_files(args: &KubeArgs, env: &Env) -> Vec<PathBuf> {
    if let Some(path) = &args.kubeconfig {
        return vec![path.clone()];
    }
    if let Some(list) = env.kubeconfig.as_ref().filter(|v| !v.is_empty()) {
        let mut seen = HashSet::new();
        return std::env::split_paths(list)
            .filter(|p| !p.as_os_str().is_empty())
            .filter(|p| seen.insert(p.clone()))
            .filter(|p| p.exists())
            .collect();
    }
    match &env.home {
        Some(home) => {
            let path = home.join(".kube").join("config");
            if path.exists() {
                vec![path]
            } else {
                Vec::new()
            }
        }
        None => Vec::new(),
    }
}

fn searched_description(args: &KubeArgs, env: &Env, files: &[PathBuf]) -> String {
    let mut parts = Vec::new();
    if args.kubeconfig.is_some() || !files.is_empty() {
        parts.push(format!(
            "the kubeconfig files {} hold no contexts",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    } else if let Some(list) = env.kubeconfig.as_ref().filter(|v| !v.is_empty()) {
        parts.push(format!(
            "none of the KUBECONFIG files {} exists",
            list.to_string_lossy()
        ));
    } else {
        match &env.home {
            Some(home) => parts.push(format!(
                "{} does not exist",
                home.join(".kube").join("config").display()
            )),
            None => parts.push("KUBECONFIG and HOME are not set".to_owned()),
        }
    }
    parts.push(
        "and KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set (not in a pod)".to_owned(),
    );
    parts.join(", ")
}

fn read_and_merge(files: &[PathBuf]) -> Result<Kubeconfig, ConfigError> {
    let mut merged = Kubeconfig::default();
    for path in files {
        let next = Kubeconfig::read_from(path).map_err(|e| ConfigError::ReadKubeconfig {
            path: path.clone(),
            reason: describe_kubeconfig_error(&e),
        })?;
        merged = merged.merge(next).map_err(|e| ConfigError::Merge {
            path: path.clone(),
            reason: describe_kubeconfig_error(&e),
        })?;
    }
    Ok(merged)
}

/// kube's messages, minus anything that could quote file content: a YAML error keeps only
/// its position.
fn describe_kubeconfig_error(error: &KubeconfigError) -> String {
    match error {
        KubeconfigError::ReadConfig(io, _) => io.to_string(),
        KubeconfigError::Parse(parse) => {
            let text = parse.to_string();
            let position = text.find("line ").map(|at| {
                text[at..]
                    .split(['\n', ':'])
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            });
            match position {
                Some(position) if !position.is_empty() => {
                    format!("not a valid kubeconfig (YAML error at {position})")
                }
                _ => "not a valid kubeconfig (YAML syntax or field types are wrong)".to_owned(),
            }
        }
        KubeconfigError::KindMismatch => "its `kind` differs from the previous files".to_owned(),
        KubeconfigError::ApiVersionMismatch => {
            "its `apiVersion` differs from the previous files".to_owned()
        }
        other => other.to_string(),
    }
}

fn names<T>(items: &[T], name: impl Fn(&T) -> &str) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    items
        .iter()
        .map(|i| format!("{:?}", name(i)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn files_description(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn from_kubeconfig(
    args: &KubeArgs,
    kubeconfig: &Kubeconfig,
    files: Vec<PathBuf>,
) -> Result<ClusterConfig, ConfigError> {
    let source_files = files_description(&files);
    let available = names(&kubeconfig.contexts, |c: &NamedContext| c.name.as_str());

    let context_name = args
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .filter(|c| !c.is_empty());
    let context = match &context_name {
        Some(name) => Some(
            kubeconfig
                .contexts
                .iter()
                .find(|c| &c.name == name)
                .map(|c| c.context.clone().unwrap_or_default())
                .ok_or_else(|| ConfigError::ContextNotFound {
                    name: name.clone(),
                    source_files: source_files.clone(),
                    available: available.clone(),
                })?,
        ),
        None if args.server.is_some() => None,
        None => {
            return Err(ConfigError::NoCurrentContext {
                source_files,
                available,
            });
        }
    };
    let used_by = |flag: bool| match (&context_name, flag) {
        (_, true) => "a command-line flag".to_owned(),
        (Some(name), false) => format!("context {name:?}"),
        (None, false) => "no context".to_owned(),
    };

    let cluster_name = args
        .cluster
        .clone()
        .or_else(|| context.as_ref().map(|c| c.cluster.clone()))
        .filter(|c| !c.is_empty());
    let cluster = match &cluster_name {
        Some(name) => kubeconfig
            .clusters
            .iter()
            .find(|c| &c.name == name)
            .map(|c| c.cluster.clone().unwrap_or_default())
            .ok_or_else(|| ConfigError::ClusterNotFound {
                name: name.clone(),
                source_files: source_files.clone(),
                used_by: used_by(args.cluster.is_some()),
            })?,
        None => Cluster::default(),
    };

    let user_name = args
        .user
        .clone()
        .or_else(|| context.as_ref().and_then(|c| c.user.clone()))
        .filter(|u| !u.is_empty());
    let auth_info = match &user_name {
        Some(name) => kubeconfig
            .auth_infos
            .iter()
            .find(|u| &u.name == name)
            .map(|u| u.auth_info.clone().unwrap_or_default())
            .ok_or_else(|| ConfigError::UserNotFound {
                name: name.clone(),
                source_files: source_files.clone(),
                used_by: used_by(args.user.is_some()),
            })?,
        None => AuthInfo::default(),
    };

    let cluster_label = cluster_name
        .clone()
        .unwrap_or_else(|| "(command line)".to_owned());
    let user_label = user_name
        .clone()
        .unwrap_or_else(|| "(command line)".to_owned());

    let tls = cluster_tls(args, &cluster, &cluster_label, &auth_info, &user_label)?;
    let server_text = args
        .server
        .clone()
        .or_else(|| cluster.server.clone())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ConfigError::NoServer {
            cluster: cluster_label.clone(),
        })?;
    let server = parse_server(&server_text, tls_configured(&tls))?;

    let credentials = credentials(args, &auth_info, &user_label, &cluster, &server_text, &tls)?;
    let impersonation = impersonation(args, &auth_info);
    let namespace = args
        .namespace
        .clone()
        .or_else(|| context.as_ref().and_then(|c| c.namespace.clone()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    let proxy_url = match cluster.proxy_url.as_deref().filter(|p| !p.is_empty()) {
        Some(text) => Some(parse_proxy_url(text, &cluster_label)?),
        None => None,
    };

    Ok(ClusterConfig {
        server,
        namespace,
        context: context_name,
        cluster_name,
        user_name,
        tls,
        credentials,
        impersonation,
        proxy_url,
        disable_compression: cluster.disable_compression.unwrap_or(false),
        request_timeout: args.request_timeout(),
        source: if files.is_empty() {
            ConfigSource::Flags
        } else {
            ConfigSource::Kubeconfig(files)
        },
    })
}

/// client-go's `rest.DefaultServerURL`: a server without a scheme gets `https://` when TLS is
/// configured, `http://` otherwise.
fn tls_configured(tls: &TlsConfig) -> bool {
    tls.ca.is_some()
        || tls.insecure_skip_verify
        || tls.server_name.is_some()
        || tls.client_identity.is_some()
}

fn parse_server(text: &str, default_tls: bool) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidServer {
        server: text.to_owned(),
        reason,
    };
    let with_scheme = if text.contains("://") {
        text.to_owned()
    } else if default_tls {
        format!("https://{text}")
    } else {
        format!("http://{text}")
    };
    let url = Url::parse(&with_scheme)
        .map_err(|e| invalid(format!("{e}; expected https://host[:port][/path]")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(invalid(format!(
            "scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host".to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials in the server URL are not supported; use a kubeconfig user".to_owned(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "a server URL cannot have a query or fragment".to_owned(),
        ));
    }
    Ok(url)
}

fn parse_proxy_url(text: &str, cluster: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidServer {
        server: format!("proxy-url of cluster {cluster:?}"),
        reason,
    };
    let url = Url::parse(text).map_err(|e| invalid(format!("{e}")))?;
    if !matches!(url.scheme(), "http" | "https" | "socks5") {
        return Err(invalid(format!(
            "scheme {:?} is not supported; use http, https or socks5 (as kubectl)",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host".to_owned()));
    }
    Ok(url)
}

/// Cluster TLS plus the user's client certificate, with clientcmd's override rules
/// (`DirectClientConfig.getClusterInfo`): `--insecure-skip-tls-verify` or
/// `--certificate-authority` replace all three of the cluster's CA settings, and `--server`
/// or `--tls-server-name` replace its `tls-server-name`.
fn cluster_tls(
    args: &KubeArgs,
    cluster: &Cluster,
    cluster_label: &str,
    auth_info: &AuthInfo,
    user_label: &str,
) -> Result<TlsConfig, ConfigError> {
    let (ca, insecure) = if args.insecure_skip_tls_verify || args.certificate_authority.is_some() {
        let ca = match &args.certificate_authority {
            Some(path) => Some(read_pem_file("certificate-authority", path)?),
            None => None,
        };
        (ca, args.insecure_skip_tls_verify)
    } else {
        let ca = load_data(
            cluster.certificate_authority_data.as_deref(),
            cluster.certificate_authority.as_deref(),
            "certificate-authority-data",
            "certificate-authority",
            cluster_label,
        )?;
        (
            ca.map(|(pem, origin)| PemData { pem, origin }),
            cluster.insecure_skip_tls_verify.unwrap_or(false),
        )
    };
    if insecure && ca.is_some() {
        return Err(ConfigError::CaWithInsecure {
            cluster: cluster_label.to_owned(),
        });
    }
    let server_name = if args.tls_server_name.is_some() || args.server.is_some() {
        args.tls_server_name.clone()
    } else {
        cluster.tls_server_name.clone()
    }
    .filter(|n| !n.is_empty());

    let cert = match &args.client_certificate {
        Some(path) => Some((
            read_file("client-certificate", path)?,
            DataOrigin::File(path.clone()),
        )),
        None => load_data(
            auth_info.client_certificate_data.as_deref(),
            auth_info.client_certificate.as_deref(),
            "client-certificate-data",
            "client-certificate",
            user_label,
        )?,
    };
    let key = match &args.client_key {
        Some(path) => Some((
            read_file("client-key", path)?,
            DataOrigin::File(path.clone()),
        )),
        None => load_data(
            auth_info
                .client_key_data
                .as_ref()
                .map(|k| k.expose_secret()),
            auth_info.client_key.as_deref(),
            "client-key-data",
            "client-key",
            user_label,
        )?,
    };
    let client_identity = match (cert, key) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::IncompleteClientIdentity {
                user: user_label.to_owned(),
                present: "a client certificate",
                missing: "client key (client-key or client-key-data)",
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::IncompleteClientIdentity {
                user: user_label.to_owned(),
                present: "a client key",
                missing: "client certificate (client-certificate or client-certificate-data)",
            });
        }
        (Some((cert, cert_origin)), Some((key, key_origin))) => Some(ClientIdentity {
            cert: PemData {
                pem: cert,
                origin: cert_origin,
            },
            key_pem: SecretSlice::from(key),
            key_origin,
        }),
    };
    Ok(TlsConfig {
        ca,
        insecure_skip_verify: insecure,
        server_name,
        client_identity,
    })
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::ReadFile {
        what,
        path: path.to_owned(),
        source,
    })
}

fn read_pem_file(what: &'static str, path: &Path) -> Result<PemData, ConfigError> {
    Ok(PemData {
        pem: read_file(what, path)?,
        origin: DataOrigin::File(path.to_owned()),
    })
}

/// client-go's `dataFromSliceOrFile`: inline data wins over the file.
fn load_data(
    data: Option<&str>,
    file: Option<&str>,
    data_field: &'static str,
    file_field: &'static str,
    entry: &str,
) -> Result<Option<(Vec<u8>, DataOrigin)>, ConfigError> {
    if let Some(data) = data.map(str::trim).filter(|d| !d.is_empty()) {
        let compact: String = data.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| ConfigError::InvalidBase64 {
                field: data_field,
                entry: entry.to_owned(),
            })?;
        return Ok(Some((
            bytes,
            DataOrigin::Inline {
                field: data_field,
                entry: entry.to_owned(),
            },
        )));
    }
    match file.filter(|f| !f.is_empty()) {
        Some(file) => {
            let path = PathBuf::from(file);
            Ok(Some((
                read_file(file_field, &path)?,
                DataOrigin::File(path),
            )))
        }
        None => Ok(None),
    }
}

/// The header credential, with client-go's precedence: a token (inline or file) wins over
/// exec and auth-provider (its round tripper runs first and the exec one skips requests that
/// already carry `Authorization`); token and basic together are refused, as clientcmd's
/// `validateAuthInfo` does. `--token` and `--username`/`--password` replace the user's own.
fn credentials(
    args: &KubeArgs,
    auth_info: &AuthInfo,
    user: &str,
    cluster: &Cluster,
    server: &str,
    tls: &TlsConfig,
) -> Result<Credentials, ConfigError> {
    if let Some(token) = args
        .token
        .as_ref()
        .filter(|t| !t.expose_secret().is_empty())
    {
        return Ok(Credentials::Token(token.clone()));
    }
    if let Some(username) = args.username.as_ref().filter(|u| !u.is_empty()) {
        return Ok(Credentials::Basic {
            username: username.clone(),
            password: args.password.clone().unwrap_or_default(),
        });
    }
    let token = auth_info
        .token
        .as_ref()
        .filter(|t| !t.expose_secret().is_empty());
    let token_file = auth_info.token_file.as_deref().filter(|f| !f.is_empty());
    let basic = auth_info.username.as_deref().filter(|u| !u.is_empty());
    if (token.is_some() || token_file.is_some()) && basic.is_some() {
        return Err(ConfigError::ConflictingCredentials {
            user: user.to_owned(),
            methods: "token, basic auth".to_owned(),
        });
    }
    if auth_info.exec.is_some() && auth_info.auth_provider.is_some() {
        return Err(ConfigError::ConflictingCredentials {
            user: user.to_owned(),
            methods: "exec, auth-provider".to_owned(),
        });
    }
    if let Some(path) = token_file {
        return Ok(Credentials::TokenFile {
            path: PathBuf::from(path),
            initial: token.cloned(),
        });
    }
    if let Some(token) = token {
        return Ok(Credentials::Token(token.clone()));
    }
    if let Some(username) = basic {
        return Ok(Credentials::Basic {
            username: username.to_owned(),
            password: auth_info.password.clone().unwrap_or_default(),
        });
    }
    if let Some(exec) = &auth_info.exec {
        return exec_config(exec, user, cluster, server, tls).map(Credentials::Exec);
    }
    if let Some(provider) = &auth_info.auth_provider {
        return match provider.name.as_str() {
            "oidc" => oidc_config(&provider.config, user).map(Credentials::Oidc),
            "gcp" => Err(ConfigError::UnsupportedAuthProvider {
                user: user.to_owned(),
                name: provider.name.clone(),
                hint: "kubectl removed it in 1.26; install gke-gcloud-auth-plugin and run \
                       `gcloud container clusters get-credentials` to get an exec-plugin kubeconfig",
            }),
            "azure" => Err(ConfigError::UnsupportedAuthProvider {
                user: user.to_owned(),
                name: provider.name.clone(),
                hint: "kubectl removed it in 1.26; install kubelogin and run \
                       `kubelogin convert-kubeconfig` to get an exec-plugin kubeconfig",
            }),
            _ => Err(ConfigError::UnsupportedAuthProvider {
                user: user.to_owned(),
                name: provider.name.clone(),
                hint: "only `oidc` is; use an exec credential plugin instead",
            }),
        };
    }
    Ok(Credentials::None)
}

fn exec_config(
    exec: &kube::config::ExecConfig,
    user: &str,
    cluster: &Cluster,
    server: &str,
    tls: &TlsConfig,
) -> Result<ExecConfig, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidExec {
        user: user.to_owned(),
        reason,
    };
    let command = exec
        .command
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| invalid("it has no command".to_owned()))?;
    let api_version = match exec.api_version.as_deref() {
        Some("client.authentication.k8s.io/v1") => ExecApiVersion::V1,
        Some("client.authentication.k8s.io/v1beta1") => ExecApiVersion::V1Beta1,
        Some(other) => {
            return Err(invalid(format!(
                "apiVersion {other:?} is not supported; use client.authentication.k8s.io/v1 \
                 or v1beta1 (v1alpha1 was removed in Kubernetes 1.24)"
            )));
        }
        None => {
            return Err(invalid(
                "apiVersion is missing; use client.authentication.k8s.io/v1".to_owned(),
            ));
        }
    };
    // client-go's `validateAuthInfo`: v1 must say how interactive the plugin is; v1beta1
    // defaults to IfAvailable.
    let interactive_mode = match (&exec.interactive_mode, api_version) {
        (Some(kube::config::ExecInteractiveMode::Never), _) => InteractiveMode::Never,
        (Some(kube::config::ExecInteractiveMode::IfAvailable), _) => InteractiveMode::IfAvailable,
        (Some(kube::config::ExecInteractiveMode::Always), _) => InteractiveMode::Always,
        (None, ExecApiVersion::V1Beta1) => InteractiveMode::IfAvailable,
        (None, ExecApiVersion::V1) => {
            return Err(invalid(
                "interactiveMode must be set for client.authentication.k8s.io/v1 \
                 (Never, IfAvailable or Always)"
                    .to_owned(),
            ));
        }
    };
    let mut env = Vec::new();
    for entry in exec.env.iter().flatten() {
        let name = entry
            .get("name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("an env entry has no name".to_owned()))?;
        env.push((
            name.clone(),
            entry.get("value").cloned().unwrap_or_default(),
        ));
    }
    let cluster_info = exec.provide_cluster_info.then(|| ExecClusterInfo {
        server: server.to_owned(),
        tls_server_name: tls.server_name.clone(),
        insecure_skip_tls_verify: tls.insecure_skip_verify,
        certificate_authority_data: tls.ca.as_ref().map(|ca| ca.pem.clone()),
        proxy_url: cluster.proxy_url.clone(),
        disable_compression: cluster.disable_compression.unwrap_or(false),
        config: cluster
            .extensions
            .iter()
            .flatten()
            .find(|e| e.name == EXEC_CLUSTER_EXTENSION)
            .map(|e| e.extension.clone()),
    });
    Ok(ExecConfig {
        command,
        args: exec.args.clone().unwrap_or_default(),
        env,
        api_version,
        install_hint: exec.install_hint.clone().filter(|h| !h.trim().is_empty()),
        interactive_mode,
        cluster: cluster_info,
        user: user.to_owned(),
    })
}

/// The keys of client-go's `plugin/pkg/client/auth/oidc` provider.
fn oidc_config(
    config: &std::collections::HashMap<String, String>,
    user: &str,
) -> Result<OidcConfig, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidOidc {
        user: user.to_owned(),
        reason,
    };
    let get = |key: &str| config.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    let issuer =
        get("idp-issuer-url").ok_or_else(|| invalid("idp-issuer-url is missing".to_owned()))?;
    let issuer_url = Url::parse(issuer)
        .map_err(|e| invalid(format!("idp-issuer-url {issuer:?} is not a URL: {e}")))?;
    let client_id = get("client-id")
        .ok_or_else(|| invalid("client-id is missing".to_owned()))?
        .to_owned();
    let idp_ca = load_data(
        get("idp-certificate-authority-data"),
        get("idp-certificate-authority"),
        "idp-certificate-authority-data",
        "idp-certificate-authority",
        user,
    )?
    .map(|(pem, origin)| PemData { pem, origin });
    Ok(OidcConfig {
        issuer_url,
        client_id,
        client_secret: get("client-secret").map(SecretString::from),
        id_token: get("id-token").map(SecretString::from),
        refresh_token: get("refresh-token").map(SecretString::from),
        idp_ca,
        extra_scopes: get("extra-scopes")
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        user: user.to_owned(),
    })
}

/// Flags win over the kubeconfig's `as`, `as-groups`, `as-uid`; `as-user-extra` has no flag.
fn impersonation(args: &KubeArgs, auth_info: &AuthInfo) -> Impersonation {
    let user = args
        .as_user
        .clone()
        .or_else(|| auth_info.impersonate.clone())
        .filter(|u| !u.is_empty());
    let uid = args
        .as_uid
        .clone()
        .or_else(|| auth_info.impersonate_uid.clone())
        .filter(|u| !u.is_empty());
    let groups = if args.as_group.is_empty() {
        auth_info.impersonate_groups.clone().unwrap_or_default()
    } else {
        args.as_group.clone()
    };
    let extra: BTreeMap<String, Vec<String>> = auth_info
        .impersonate_user_extra
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    Impersonation {
        user,
        uid,
        groups,
        extra,
    }
}

fn in_cluster_possible(env: &Env) -> bool {
    env.kubernetes_service_host
        .as_deref()
        .is_some_and(|h| !h.is_empty())
        && env
            .kubernetes_service_port
            .as_deref()
            .is_some_and(|p| !p.is_empty())
}

/// client-go's `rest.InClusterConfig`: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`,
/// the service-account token (re-read as it rotates) and CA; namespace from `POD_NAMESPACE`
/// or the `namespace` file (kubectl's `inClusterClientConfig.Namespace`).
fn in_cluster(args: &KubeArgs, env: &Env) -> Result<ClusterConfig, ConfigError> {
    let (Some(host), Some(port)) = (
        env.kubernetes_service_host
            .as_deref()
            .filter(|h| !h.is_empty()),
        env.kubernetes_service_port
            .as_deref()
            .filter(|p| !p.is_empty()),
    ) else {
        return Err(ConfigError::InCluster {
            reason: "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set"
                .to_owned(),
        });
    };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let text = format!("https://{host}:{port}");
    let server = Url::parse(&text).map_err(|e| ConfigError::InCluster {
        reason: format!("KUBERNETES_SERVICE_HOST/PORT give the invalid address {text:?}: {e}"),
    })?;
    let dir = &env.service_account_dir;
    let token_path = dir.join("token");
    // Read once now so that a missing mount fails at start-up with the path.
    read_file("service-account token", &token_path)?;
    let ca = match &args.certificate_authority {
        Some(path) => Some(read_pem_file("certificate-authority", path)?),
        None if args.insecure_skip_tls_verify => None,
        None => Some(read_pem_file(
            "service-account ca.crt",
            &dir.join("ca.crt"),
        )?),
    };
    let namespace = args
        .namespace
        .clone()
        .or_else(|| env.pod_namespace.clone())
        .or_else(|| {
            std::fs::read_to_string(dir.join("namespace"))
                .ok()
                .map(|n| n.trim().to_owned())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    let credentials = match args
        .token
        .as_ref()
        .filter(|t| !t.expose_secret().is_empty())
    {
        Some(token) => Credentials::Token(token.clone()),
        None => Credentials::TokenFile {
            path: token_path,
            initial: None,
        },
    };
    Ok(ClusterConfig {
        server,
        namespace,
        context: None,
        cluster_name: None,
        user_name: None,
        tls: TlsConfig {
            ca,
            insecure_skip_verify: args.insecure_skip_tls_verify,
            server_name: args.tls_server_name.clone(),
            client_identity: None,
        },
        credentials,
        impersonation: impersonation(args, &AuthInfo::default()),
        proxy_url: None,
        disable_compression: false,
        request_timeout: args.request_timeout(),
        source: ConfigSource::InCluster,
    })
}
