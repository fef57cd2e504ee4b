//! Bearer tokens read from a file (`tokenFile`, the in-cluster service-account token), which
//! kubelet rotates for bound service-account tokens.
//!
//! Contract: the file is re-read at most once per [`REREAD_INTERVAL`] and at once after a 401,
//! so a rotated token is used within a second; if a re-read fails, the last good token (or the
//! kubeconfig's inline `token`) stays in use, as client-go's `cachingTokenSource` does
//! (kubernetes#68164), and only a file that was never readable is an error.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderValue;
use secrecy::SecretString;
use tokio::time::Instant;

use crate::cache::{Entry, Fetched, RefreshCell};
use crate::error::CredentialError;

/// How often the token file is re-read.
pub(crate) const REREAD_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) struct TokenFileProvider {
    path: PathBuf,
    cell: RefreshCell,
    last_good: Mutex<Option<HeaderValue>>,
}

impl TokenFileProvider {
    pub(crate) fn new(path: PathBuf, initial: Option<&SecretString>) -> Self {
        let last_good = initial.and_then(crate::exec::bearer);
        TokenFileProvider {
            path,
            cell: RefreshCell::default(),
            last_good: Mutex::new(last_good),
        }
    }

    pub(crate) async fn current(&self) -> Result<Arc<Entry>, CredentialError> {
        self.cell.get(|| self.read()).await
    }

    pub(crate) fn invalidate(&self, generation: u64) {
        self.cell.invalidate(generation);
    }

    fn last_good(&self) -> Option<HeaderValue> {
        self.last_good.lock().ok().and_then(|g| g.clone())
    }

    async fn read(&self) -> Result<Fetched, CredentialError> {
        let expires = Some(Instant::now() + REREAD_INTERVAL);
        let failure = match tokio::fs::read_to_string(&self.path).await {
            Ok(text) if !text.trim().is_empty() => {
                let header =
                    crate::exec::bearer(&SecretString::from(text.trim())).ok_or_else(|| {
                        CredentialError::InvalidHeaderValue {
                            what: format!("token in {}", self.path.display()),
                        }
                    })?;
                if let Ok(mut last) = self.last_good.lock() {
                    *last = Some(header.clone());
                }
                return Ok(Fetched {
                    header: Some(header),
                    expires,
                });
            }
            Ok(_) => "the file is empty".to_owned(),
            Err(e) => e.to_string(),
        };
        match self.last_good() {
            Some(header) => {
                tracing::warn!(path = %self.path.display(), reason = %failure, "cannot re-read the token file; keeping the previous token");
                Ok(Fetched {
                    header: Some(header),
                    expires,
                })
            }
            None => Err(CredentialError::TokenFile {
                path: self.path.clone(),
                reason: failure,
            }),
        }
    }
}
