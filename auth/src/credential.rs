//! The credential attached to each request, by kind, behind one interface.
//!
//! Contract: `current()` gives the `Authorization` value to send (if any) and a generation;
//! `invalidate(generation)` after a 401 makes the next `current()` fetch a fresh credential
//! for the kinds that can change (token file, exec plugin, OIDC). Fixed tokens and basic auth
//! cannot be refreshed, so a 401 for them is final.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use config::Credentials;
use http::HeaderValue;
use secrecy::ExposeSecret;

use crate::error::{BuildError, CredentialError};
use crate::exec::ExecProvider;
use crate::oidc::OidcProvider;
use crate::tls::ClientCertSlot;
use crate::token_file::TokenFileProvider;

/// The credential for one attempt.
pub(crate) struct Applied {
    pub(crate) header: Option<HeaderValue>,
    /// Set for refreshable kinds.
    pub(crate) generation: Option<u64>,
}

pub(crate) enum Source {
    None,
    Static(HeaderValue),
    TokenFile(TokenFileProvider),
    Exec(Box<ExecProvider>),
    Oidc(Box<OidcProvider>),
}

pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) exec: Duration,
}

impl Source {
    pub(crate) fn new(
        credentials: &Credentials,
        slot: Arc<ClientCertSlot>,
        timeouts: &Timeouts,
    ) -> Result<Source, BuildError> {
        Ok(match credentials {
            Credentials::None => Source::None,
            Credentials::Token(token) => {
                Source::Static(crate::exec::bearer(token).ok_or_else(|| {
                    CredentialError::InvalidHeaderValue {
                        what: "token".to_owned(),
                    }
                })?)
            }
            Credentials::Basic { username, password } => {
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose_secret()));
                let mut value =
                    HeaderValue::from_str(&format!("Basic {encoded}")).map_err(|_| {
                        CredentialError::InvalidHeaderValue {
                            what: "basic-auth password".to_owned(),
                        }
                    })?;
                value.set_sensitive(true);
                Source::Static(value)
            }
            Credentials::TokenFile { path, initial } => {
                Source::TokenFile(TokenFileProvider::new(path.clone(), initial.as_ref()))
            }
            Credentials::Exec(exec) => Source::Exec(Box::new(ExecProvider::new(
                exec.clone(),
                slot,
                timeouts.exec,
            ))),
            Credentials::Oidc(oidc) => Source::Oidc(Box::new(OidcProvider::new(
                oidc.clone(),
                timeouts.connect,
                timeouts.exec,
            )?)),
        })
    }

    pub(crate) async fn current(&self) -> Result<Applied, CredentialError> {
        let entry = match self {
            Source::None => {
                return Ok(Applied {
                    header: None,
                    generation: None,
                });
            }
            Source::Static(value) => {
                return Ok(Applied {
                    header: Some(value.clone()),
                    generation: None,
                });
            }
            Source::TokenFile(p) => p.current().await?,
            Source::Exec(p) => p.current().await?,
            Source::Oidc(p) => p.current().await?,
        };
        Ok(Applied {
            header: entry.header.clone(),
            generation: Some(entry.generation),
        })
    }

    pub(crate) fn invalidate(&self, generation: u64) {
        match self {
            Source::None | Source::Static(_) => {}
            Source::TokenFile(p) => p.invalidate(generation),
            Source::Exec(p) => p.invalidate(generation),
            Source::Oidc(p) => p.invalidate(generation),
        }
    }

    /// Whether the credential must be obtained even when the client's own `Authorization`
    /// is forwarded: an exec plugin may hand out the TLS client certificate.
    pub(crate) fn may_issue_client_cert(&self) -> bool {
        matches!(self, Source::Exec(_))
    }

    pub(crate) fn is_none(&self) -> bool {
        matches!(self, Source::None)
    }
}
