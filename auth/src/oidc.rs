//! The `oidc` auth-provider, as client-go's `plugin/pkg/client/auth/oidc` uses it: send the
//! `id-token` while its JWT `exp` lies ahead; otherwise trade the `refresh-token` for a new
//! one at the issuer's token endpoint (found by OpenID discovery).
//!
//! Differences from kube-rs, on purpose: a public client (no `client-secret`) can refresh,
//! and the issuer is trusted through `idp-certificate-authority[-data]` when given (else the
//! system roots). A rotated refresh token is kept in memory for later refreshes; it is not
//! written back to the kubeconfig (client-go persists it; kgate never edits the user's file).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use config::OidcConfig;
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::cache::{Entry, Fetched, RefreshCell};
use crate::error::{BuildError, CredentialError};

/// Largest issuer answer read.
const MAX_ANSWER: usize = 1 << 20;

pub(crate) struct OidcProvider {
    config: OidcConfig,
    cell: RefreshCell,
    refresh_token: Mutex<Option<SecretString>>,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

#[derive(Deserialize)]
struct Discovery {
    token_endpoint: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
    error_description: Option<String>,
}

impl OidcProvider {
    pub(crate) fn new(
        config: OidcConfig,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, BuildError> {
        let tls = crate::tls::plain_client_config(config.idp_ca.as_ref())?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(crate::connector::tcp_connector(connect_timeout));
        let http = Client::builder(TokioExecutor::new()).build(https);
        let cell = RefreshCell::default();
        if let Some(token) = &config.id_token
            && let Some(exp) = jwt_expiry(token.expose_secret())
            && exp > jiff::Timestamp::now()
            && let Some(header) = crate::exec::bearer(token)
        {
            cell.seed(Fetched {
                header: Some(header),
                expires: Some(crate::exec::instant_of(exp)),
            });
        }
        let refresh_token = Mutex::new(config.refresh_token.clone());
        Ok(OidcProvider {
            config,
            cell,
            refresh_token,
            http,
            timeout,
        })
    }

    pub(crate) async fn current(&self) -> Result<Arc<Entry>, CredentialError> {
        self.cell.get(|| self.refresh()).await
    }

    pub(crate) fn invalidate(&self, generation: u64) {
        self.cell.invalidate(generation);
    }

    fn issuer_error(&self, at: &str, reason: impl Into<String>) -> CredentialError {
        CredentialError::OidcIssuer {
            user: self.config.user.clone(),
            issuer: at.to_owned(),
            reason: reason.into(),
        }
    }

    async fn refresh(&self) -> Result<Fetched, CredentialError> {
        let refresh_token = self
            .refresh_token
            .lock()
            .ok()
            .and_then(|t| t.clone())
            .ok_or_else(|| CredentialError::OidcNoRefreshToken {
                user: self.config.user.clone(),
            })?;
        let issuer = self
            .config
            .issuer_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let discovery_url = format!("{issuer}/.well-known/openid-configuration");
        let request = http::Request::get(&discovery_url)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| self.issuer_error(&discovery_url, e.to_string()))?;
        let (status, body) = self.exchange(&discovery_url, request).await?;
        if !status.is_success() {
            return Err(self.issuer_error(
                &discovery_url,
                format!("OpenID discovery answered {status}"),
            ));
        }
        let discovery: Discovery = serde_json::from_slice(&body).map_err(|e| {
            self.issuer_error(
                &discovery_url,
                format!("discovery document without token_endpoint ({e})"),
            )
        })?;
        let endpoint = discovery.token_endpoint;

        // Built in one expression: the serializer is not `Send` and must not live across an await.
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", refresh_token.expose_secret())
            .append_pair("client_id", &self.config.client_id)
            .finish();
        let mut request = http::Request::post(&endpoint)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json");
        // client_secret_basic, the default client authentication of OpenID Connect; a public
        // client sends only its client_id.
        if let Some(secret) = &self.config.client_secret {
            let encode =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                encode(&self.config.client_id),
                encode(secret.expose_secret())
            ));
            let mut value =
                http::HeaderValue::from_str(&format!("Basic {credentials}")).map_err(|_| {
                    self.issuer_error(&endpoint, "client-secret cannot be sent in a header")
                })?;
            value.set_sensitive(true);
            request = request.header(http::header::AUTHORIZATION, value);
        }
        let request = request
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| self.issuer_error(&endpoint, e.to_string()))?;
        let (status, body) = self.exchange(&endpoint, request).await?;
        if !status.is_success() {
            if let Ok(answer) = serde_json::from_slice::<ErrorAnswer>(&body) {
                return Err(CredentialError::OidcRefreshRejected {
                    user: self.config.user.clone(),
                    issuer: issuer.clone(),
                    error: answer.error.chars().take(64).collect(),
                    description: answer
                        .error_description
                        .map(|d| d.chars().take(200).collect()),
                });
            }
            return Err(
                self.issuer_error(&endpoint, format!("the token endpoint answered {status}"))
            );
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
            self.issuer_error(
                &endpoint,
                format!(
                    "the token answer is not JSON (line {} column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let id_token = answer.id_token.filter(|t| !t.is_empty()).ok_or_else(|| {
            self.issuer_error(
                &endpoint,
                "the token answer has no id_token (was the scope \"openid\" requested at login?)",
            )
        })?;
        if let Some(new_refresh) = answer.refresh_token.filter(|t| !t.is_empty())
            && let Ok(mut slot) = self.refresh_token.lock()
        {
            *slot = Some(SecretString::from(new_refresh));
        }
        let expires = jwt_expiry(&id_token).map(crate::exec::instant_of);
        let token = SecretString::from(id_token);
        let header =
            crate::exec::bearer(&token).ok_or_else(|| CredentialError::InvalidHeaderValue {
                what: "OIDC id-token".to_owned(),
            })?;
        tracing::debug!(user = %self.config.user, "refreshed the OIDC id-token");
        Ok(Fetched {
            header: Some(header),
            expires,
        })
    }

    async fn exchange(
        &self,
        at: &str,
        request: http::Request<Full<Bytes>>,
    ) -> Result<(http::StatusCode, Bytes), CredentialError> {
        let work = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| self.issuer_error(at, crate::error_chain(&e)))?;
            let status = response.status();
            let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| self.issuer_error(at, format!("reading the answer failed: {e}")))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| self.issuer_error(at, format!("no answer within {:?}", self.timeout)))?
    }
}

/// The `exp` claim of a JWT, without verifying it (the API server verifies; client-go's
/// `idTokenExpired` reads it the same way).
pub(crate) fn jwt_expiry(token: &str) -> Option<jiff::Timestamp> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_f64()?;
    jiff::Timestamp::from_second(exp as i64).ok()
}
