//! client-go credential plugins (`client.authentication.k8s.io/v1` and `v1beta1`), as
//! `k8s.io/client-go/plugin/pkg/client/auth/exec/exec.go` runs them.
//!
//! Contract: the plugin runs through `tokio::process` under a timeout, with the kubeconfig's
//! `env` added to ours and `KUBERNETES_EXEC_INFO` describing the request (and the cluster when
//! `provideClusterInfo` is set). It gets the terminal only when `interactiveMode` allows it and
//! standard input is a terminal (client-go's `isInteractive`); otherwise its stderr is captured
//! for the error message. The returned token and/or client certificate are cached until
//! `expirationTimestamp` (minus a small margin) or until the API server answers 401; one run
//! serves every waiting request (see `cache`). A certificate goes into the TLS client-cert
//! slot, so new connections present it without rebuilding the client.

use std::io::IsTerminal as _;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use config::{ExecConfig, InteractiveMode};
use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::time::Instant;

use crate::cache::{Entry, Fetched, RefreshCell};
use crate::error::CredentialError;
use crate::tls::ClientCertSlot;

/// Renew this long before the plugin's `expirationTimestamp`, so that a credential does not
/// expire between being attached and being checked by the API server.
pub(crate) const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// Longest stderr excerpt put into an error message.
const STDERR_LIMIT: usize = 2048;

pub(crate) struct ExecProvider {
    config: ExecConfig,
    cell: RefreshCell,
    slot: Arc<ClientCertSlot>,
    timeout: Duration,
}

#[derive(Deserialize)]
struct ExecCredential {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
    status: Option<ExecStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecStatus {
    token: Option<String>,
    expiration_timestamp: Option<String>,
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
}

impl ExecProvider {
    pub(crate) fn new(config: ExecConfig, slot: Arc<ClientCertSlot>, timeout: Duration) -> Self {
        ExecProvider {
            config,
            cell: RefreshCell::default(),
            slot,
            timeout,
        }
    }

    pub(crate) async fn current(&self) -> Result<Arc<Entry>, CredentialError> {
        self.cell.get(|| self.run()).await
    }

    pub(crate) fn invalidate(&self, generation: u64) {
        self.cell.invalidate(generation);
    }

    fn output_error(&self, reason: impl Into<String>) -> CredentialError {
        CredentialError::ExecOutput {
            command: self.config.command.clone(),
            user: self.config.user.clone(),
            reason: reason.into(),
        }
    }

    fn exec_info(&self, interactive: bool) -> serde_json::Value {
        let mut spec = serde_json::json!({ "interactive": interactive });
        if let Some(cluster) = &self.config.cluster {
            let mut c = serde_json::Map::new();
            c.insert("server".into(), cluster.server.clone().into());
            if let Some(name) = &cluster.tls_server_name {
                c.insert("tls-server-name".into(), name.clone().into());
            }
            if cluster.insecure_skip_tls_verify {
                c.insert("insecure-skip-tls-verify".into(), true.into());
            }
            if let Some(ca) = &cluster.certificate_authority_data {
                c.insert(
                    "certificate-authority-data".into(),
                    base64::engine::general_purpose::STANDARD.encode(ca).into(),
                );
            }
            if let Some(proxy) = &cluster.proxy_url {
                c.insert("proxy-url".into(), proxy.clone().into());
            }
            if cluster.disable_compression {
                c.insert("disable-compression".into(), true.into());
            }
            if let Some(config) = &cluster.config {
                c.insert("config".into(), config.clone());
            }
            spec["cluster"] = serde_json::Value::Object(c);
        }
        serde_json::json!({
            "apiVersion": self.config.api_version.as_str(),
            "kind": "ExecCredential",
            "spec": spec,
        })
    }

    async fn run(&self) -> Result<Fetched, CredentialError> {
        let command = &self.config.command;
        let user = &self.config.user;
        let stdin_is_terminal = std::io::stdin().is_terminal();
        let interactive = match self.config.interactive_mode {
            InteractiveMode::Never => false,
            InteractiveMode::IfAvailable => stdin_is_terminal,
            InteractiveMode::Always if stdin_is_terminal => true,
            InteractiveMode::Always => {
                return Err(CredentialError::ExecNeedsTerminal {
                    command: command.clone(),
                    user: user.clone(),
                });
            }
        };
        let mut cmd = tokio::process::Command::new(command);
        cmd.args(&self.config.args)
            .envs(
                self.config
                    .env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .env(
                "KUBERNETES_EXEC_INFO",
                self.exec_info(interactive).to_string(),
            )
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if interactive {
            cmd.stdin(Stdio::inherit()).stderr(Stdio::inherit());
        } else {
            cmd.stdin(Stdio::null()).stderr(Stdio::piped());
        }
        tracing::debug!(command = %command, user = %user, interactive, "running exec credential plugin");
        let child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => CredentialError::ExecNotFound {
                command: command.clone(),
                user: user.clone(),
                install_hint: self
                    .config
                    .install_hint
                    .as_ref()
                    .map(|h| h.trim().to_owned()),
            },
            _ => CredentialError::ExecSpawn {
                command: command.clone(),
                user: user.clone(),
                reason: e.to_string(),
            },
        })?;
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| CredentialError::ExecTimeout {
                command: command.clone(),
                user: user.clone(),
                after: self.timeout,
            })?
            .map_err(|e| CredentialError::ExecSpawn {
                command: command.clone(),
                user: user.clone(),
                reason: e.to_string(),
            })?;
        if !output.status.success() {
            return Err(CredentialError::ExecFailed {
                command: command.clone(),
                user: user.clone(),
                status: output.status.to_string(),
                stderr: trimmed_stderr(&output.stderr),
            });
        }
        self.parse(&output.stdout)
    }

    fn parse(&self, stdout: &[u8]) -> Result<Fetched, CredentialError> {
        // serde_json's messages can quote input, which here holds the token: keep the position only.
        let credential: ExecCredential = serde_json::from_slice(stdout).map_err(|e| {
            self.output_error(format!(
                "stdout is not an ExecCredential JSON object (error at line {} column {})",
                e.line(),
                e.column()
            ))
        })?;
        if credential
            .kind
            .as_deref()
            .is_some_and(|k| k != "ExecCredential")
        {
            return Err(self.output_error("its kind is not ExecCredential"));
        }
        let expected = self.config.api_version.as_str();
        if credential.api_version.as_deref() != Some(expected) {
            return Err(self.output_error(format!(
                "the plugin is configured for apiVersion {expected} but returned {:?}",
                credential.api_version.as_deref().unwrap_or("none")
            )));
        }
        let status = credential
            .status
            .ok_or_else(|| self.output_error("it has no status"))?;
        let token = status
            .token
            .filter(|t| !t.is_empty())
            .map(SecretString::from);
        let cert = status.client_certificate_data.filter(|c| !c.is_empty());
        let key = status
            .client_key_data
            .filter(|k| !k.is_empty())
            .map(SecretString::from);
        if token.is_none() && cert.is_none() && key.is_none() {
            return Err(
                self.output_error("it holds neither a token nor a client certificate and key")
            );
        }
        match (&cert, &key) {
            (Some(cert), Some(key)) => {
                let identity = crate::tls::certified_key(
                    cert.as_bytes(),
                    key.expose_secret().as_bytes(),
                    &format!("exec plugin {:?}", self.config.command),
                )
                .map_err(|e| self.output_error(e.to_string()))?;
                self.slot.set(Some(identity));
            }
            (None, None) => {}
            _ => {
                return Err(self
                    .output_error("it holds only one of clientCertificateData and clientKeyData"));
            }
        }
        let header =
            match token {
                Some(token) => Some(bearer(&token).ok_or_else(|| {
                    self.output_error("its token cannot be sent in an HTTP header")
                })?),
                None => None,
            };
        let expires = match status.expiration_timestamp.filter(|t| !t.is_empty()) {
            Some(text) => {
                let at: jiff::Timestamp = text.parse().map_err(|_| {
                    self.output_error(format!(
                        "expirationTimestamp {text:?} is not an RFC 3339 time"
                    ))
                })?;
                Some(instant_of(at))
            }
            None => None,
        };
        Ok(Fetched { header, expires })
    }
}

/// The tokio instant, `EXPIRY_MARGIN` before the wall-clock `at`.
pub(crate) fn instant_of(at: jiff::Timestamp) -> Instant {
    let remaining = at.duration_since(jiff::Timestamp::now());
    let remaining = Duration::try_from(remaining).unwrap_or(Duration::ZERO);
    Instant::now() + remaining.saturating_sub(EXPIRY_MARGIN)
}

/// `Bearer <token>`, marked sensitive (hyper then never indexes it in HPACK and `Debug`
/// shows `Sensitive`).
pub(crate) fn bearer(token: &SecretString) -> Option<HeaderValue> {
    let mut value =
        HeaderValue::from_str(&format!("Bearer {}", token.expose_secret().trim())).ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn trimmed_stderr(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.len() <= STDERR_LIMIT {
        return text.to_owned();
    }
    let mut end = STDERR_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
