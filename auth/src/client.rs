//! [`ApiClient`]: the authenticated, pooled upstream to one API server.
//!
//! Contract:
//! - Requests carry an origin-form URI (path and query, relative to the API server). The
//!   client sets scheme and authority from the kubeconfig's server, and the server URL's path
//!   prefix too when [`ClientOptions::append_server_path`] is set (kubectl proxy drops it
//!   unless `--append-server-path`; [`ApiClient::get_json`] always keeps it, as client-go).
//!   `Host` is set from the server address (kubectl proxy's `UseLocationHost`).
//! - Ordinary requests go over a pool that offers HTTP/2 and HTTP/1.1 by ALPN; requests with
//!   `Connection: upgrade` go over HTTP/1.1-only connections, so `hyper::upgrade::on(response)`
//!   yields the tunnel (an upgrade cannot run over HTTP/2; kube-rs#1923).
//! - Credentials follow the request's [`ClientAuthorization`] extension (default
//!   [`ClientAuthorization::Replace`]).
//! - On a 401 to our own refreshable credential, the credential is dropped; the request is
//!   sent once more with a fresh one when its body was empty or small enough to have been
//!   buffered ([`ClientOptions::max_replay_body`]); otherwise the 401 is returned.
//! - Nothing is retried otherwise, nothing is decompressed, no `Accept-Encoding` is added
//!   (so a cluster's `disable-compression` holds by construction), and hop-by-hop headers
//!   are the caller's to strip (the gateway's `build` phase).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use config::ClusterConfig;
use http::header::{AUTHORIZATION, HOST, HeaderName, USER_AGENT};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::de::DeserializeOwned;
use url::Url;

use crate::connector::{ProxyConnector, redacted_proxy};
use crate::credential::{Source, Timeouts};
use crate::error::{BuildError, SendError};
use crate::tls::ClientCertSlot;

/// HTTP/2 flow-control window per stream: enough for loopback and LAN bandwidth-delay
/// products, so one large download is not window-bound.
const STREAM_WINDOW: u32 = 2 << 20;
/// HTTP/2 flow-control window per connection: the most the pooled connection buffers for
/// responses nobody is reading yet.
const CONNECTION_WINDOW: u32 = 8 << 20;

/// Boxed error type of request bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request body type: an unsync boxed body (`axum::body::Body` converts with
/// `UnsyncBoxBody::new(body.map_err(Into::into))`, no buffering).
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// An empty request body.
pub fn empty_body() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A request body of known bytes.
pub fn full_body(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// What to do with an `Authorization` (and `Impersonate-*`) header sent by the gateway's client.
/// Put it in the request's extensions; absent means [`ClientAuthorization::Replace`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuthorization {
    /// Remove the client's `Authorization` and `Impersonate-*` headers and use the
    /// kubeconfig's credentials and impersonation (service origins).
    #[default]
    Replace,
    /// kubectl proxy's behaviour (client-go's round trippers skip a request that already has
    /// `Authorization`, and impersonation one that has `Impersonate-User`): a client-sent
    /// `Authorization` is forwarded instead of the kubeconfig's; a client-sent
    /// `Impersonate-User` is forwarded instead of the kubeconfig's impersonation.
    KeepIfPresent,
}

/// Settings of the client itself (not of the cluster).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Keep the server URL's path in front of each request path (`--append-server-path`).
    pub append_server_path: bool,
    /// TCP connect limit (kube-rs and client-go use 30 s).
    pub connect_timeout: Duration,
    /// Limit for one exec-plugin run or OIDC refresh.
    pub credential_timeout: Duration,
    /// Request bodies of at most this many bytes (known from their size hint) are buffered,
    /// so the request can be replayed after a 401.
    pub max_replay_body: u64,
    /// `User-Agent` set when the request has none (client-go does the same).
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            append_server_path: false,
            connect_timeout: Duration::from_secs(30),
            credential_timeout: Duration::from_secs(120),
            max_replay_body: 64 * 1024,
            user_agent: concat!("kgate/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// An authenticated HTTP client for one API server. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct ApiClient {
    inner: Arc<Inner>,
}

type Pool = Client<HttpsConnector<ProxyConnector>, Body>;

struct Inner {
    server: Url,
    scheme: Scheme,
    authority: Authority,
    /// The server URL's path without its trailing slash ("" for `https://h/`).
    prefix: String,
    append_server_path: bool,
    pooled: Pool,
    upgrades: Pool,
    credentials: Source,
    impersonation: Vec<(HeaderName, HeaderValue)>,
    server_name: String,
    ca: String,
    proxy: Option<String>,
    connect_timeout: Duration,
    request_timeout: Option<Duration>,
    max_replay_body: u64,
    user_agent: HeaderValue,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("server", &self.inner.server.as_str())
            .field("append_server_path", &self.inner.append_server_path)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// Builds the client: TLS per the cluster's settings, the credential source, and two
    /// connection pools. Does no I/O except reading system roots when no CA is configured.
    pub fn new(config: &ClusterConfig, options: ClientOptions) -> Result<ApiClient, BuildError> {
        let server = config.server.clone();
        let host = server.host_str().unwrap_or_default().to_owned();
        let authority_text = match server.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        let authority: Authority = authority_text.parse().map_err(|_| BuildError::Tls {
            reason: format!("the server address {server} has no usable host"),
        })?;
        let scheme: Scheme = if server.scheme() == "http" {
            Scheme::HTTP
        } else {
            Scheme::HTTPS
        };
        let prefix = server.path().trim_end_matches('/').to_owned();

        let slot = Arc::new(ClientCertSlot::default());
        if let Some(identity) = &config.tls.client_identity {
            slot.set(Some(crate::tls::identity_key(identity)?));
        }
        let tls = crate::tls::client_config(&config.tls, slot.clone())?;
        if config.tls.insecure_skip_verify {
            tracing::warn!(
                server = %server,
                "TLS verification of the API server is DISABLED (insecure-skip-tls-verify): anyone \
                 on the network path can read and change this traffic, credentials included"
            );
        }
        let server_name = config
            .tls
            .server_name
            .clone()
            .unwrap_or_else(|| host.trim_matches(['[', ']']).to_owned());
        let connector = ProxyConnector::new(config.proxy_url.as_ref(), options.connect_timeout)?;

        let builder = || {
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http()
        };
        let (h2, h1) = match &config.tls.server_name {
            Some(name) => {
                let name = crate::tls::server_name(name)?;
                let resolver = || hyper_rustls::FixedServerNameResolver::new(name.clone());
                (
                    builder()
                        .with_server_name_resolver(resolver())
                        .enable_all_versions()
                        .wrap_connector(connector.clone()),
                    builder()
                        .with_server_name_resolver(resolver())
                        .enable_http1()
                        .wrap_connector(connector),
                )
            }
            None => (
                builder()
                    .enable_all_versions()
                    .wrap_connector(connector.clone()),
                builder().enable_http1().wrap_connector(connector),
            ),
        };
        let pool = |connector| {
            Client::builder(TokioExecutor::new())
                .timer(TokioTimer::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .http2_keep_alive_interval(Duration::from_secs(30))
                .http2_keep_alive_while_idle(false)
                // Fixed, generous windows rather than hyper's adaptive (BDP) window: under many
                // concurrent streams the adaptive one was measured failing connections with
                // `too_many_data_frames` (bench soak); the connection window bounds what one
                // slow reader can make the pool buffer.
                .http2_initial_stream_window_size(STREAM_WINDOW)
                .http2_initial_connection_window_size(CONNECTION_WINDOW)
                .build(connector)
        };

        let credentials = Source::new(
            &config.credentials,
            slot,
            &Timeouts {
                connect: options.connect_timeout,
                exec: options.credential_timeout,
            },
        )?;
        let impersonation = impersonation_headers(&config.impersonation)?;
        let user_agent = HeaderValue::from_str(&options.user_agent)
            .unwrap_or_else(|_| HeaderValue::from_static("kgate"));
        Ok(ApiClient {
            inner: Arc::new(Inner {
                server,
                scheme,
                authority,
                prefix,
                append_server_path: options.append_server_path,
                pooled: pool(h2),
                upgrades: pool(h1),
                credentials,
                impersonation,
                server_name,
                ca: config.tls.ca_description(),
                proxy: config.proxy_url.as_ref().map(redacted_proxy),
                connect_timeout: options.connect_timeout,
                request_timeout: config.request_timeout,
                max_replay_body: options.max_replay_body,
                user_agent,
            }),
        })
    }

    /// The API server URL, as configured.
    pub fn server(&self) -> &Url {
        &self.inner.server
    }

    /// The absolute URI a request path is sent to (with or without the server path, per
    /// [`ClientOptions::append_server_path`]).
    pub fn upstream_uri(&self, path_and_query: &str) -> Result<Uri, SendError> {
        let pq: PathAndQuery = path_and_query
            .parse()
            .map_err(|e| SendError::InvalidRequest {
                reason: format!("bad path {path_and_query:?}: {e}"),
            })?;
        self.target(&pq, self.inner.append_server_path)
    }

    /// Sends a request (origin-form URI) to the API server; see the module docs for what is
    /// added. `Connection: upgrade` requests are sent over HTTP/1.1.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Incoming>, SendError> {
        let upgrade = wire::headers::is_upgrade(request.headers());
        self.send_inner(request, self.inner.append_server_path, upgrade)
            .await
    }

    /// Sends a request over an HTTP/1.1-only connection, for `Upgrade` requests (WebSocket,
    /// SPDY): on `101 Switching Protocols`, `hyper::upgrade::on(response)` yields the tunnel.
    pub async fn send_upgrade(
        &self,
        request: Request<Body>,
    ) -> Result<Response<Incoming>, SendError> {
        self.send_inner(request, self.inner.append_server_path, true)
            .await
    }

    /// GETs `path_and_query` (always under the server URL's path, as client-go) and decodes the
    /// JSON answer, within `--request-timeout` when one is set. For discovery commands.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<T, SendError> {
        let work = async {
            let request = Request::get(path_and_query)
                .header(http::header::ACCEPT, "application/json")
                .body(empty_body())
                .map_err(|e| SendError::InvalidRequest {
                    reason: format!("bad path {path_and_query:?}: {e}"),
                })?;
            let response = self.send_inner(request, true, false).await?;
            let status = response.status();
            let body = http_body_util::Limited::new(response.into_body(), 64 << 20)
                .collect()
                .await
                .map_err(|e| SendError::Protocol {
                    server: self.inner.server.to_string(),
                    reason: format!("reading the answer failed: {e}"),
                })?
                .to_bytes();
            let path = path_and_query
                .split('?')
                .next()
                .unwrap_or_default()
                .to_owned();
            if !status.is_success() {
                return Err(SendError::Status {
                    server: self.inner.server.to_string(),
                    path,
                    status,
                    message: wire::status::message(&body),
                });
            }
            serde_json::from_slice(&body).map_err(|e| SendError::Decode {
                server: self.inner.server.to_string(),
                path,
                reason: e.to_string(),
            })
        };
        match self.inner.request_timeout {
            Some(limit) => {
                tokio::time::timeout(limit, work)
                    .await
                    .map_err(|_| SendError::Timeout {
                        server: self.inner.server.to_string(),
                        after: limit,
                    })?
            }
            None => work.await,
        }
    }

    fn target(&self, pq: &PathAndQuery, keep_server_path: bool) -> Result<Uri, SendError> {
        let inner = &self.inner;
        if !pq.path().starts_with('/') {
            return Err(SendError::InvalidRequest {
                reason: format!("path {:?} does not start with /", pq.path()),
            });
        }
        let joined;
        let pq = if keep_server_path && !inner.prefix.is_empty() {
            joined = format!("{}{}", inner.prefix, pq.as_str());
            joined
                .parse::<PathAndQuery>()
                .map_err(|e| SendError::InvalidRequest {
                    reason: e.to_string(),
                })?
        } else {
            pq.clone()
        };
        Uri::builder()
            .scheme(inner.scheme.clone())
            .authority(inner.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|e| SendError::InvalidRequest {
                reason: e.to_string(),
            })
    }

    async fn send_inner(
        &self,
        request: Request<Body>,
        keep_server_path: bool,
        upgrade: bool,
    ) -> Result<Response<Incoming>, SendError> {
        let inner = &self.inner;
        let (mut parts, body) = request.into_parts();
        let policy = parts
            .extensions
            .get::<ClientAuthorization>()
            .copied()
            .unwrap_or_default();
        let pq = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        parts.uri = self.target(&pq, keep_server_path)?;
        parts.version = Version::HTTP_11;
        parts.headers.remove(HOST);
        if !parts.headers.contains_key(USER_AGENT) {
            parts.headers.insert(USER_AGENT, inner.user_agent.clone());
        }

        let client_auth = policy == ClientAuthorization::KeepIfPresent
            && parts.headers.contains_key(AUTHORIZATION);
        match policy {
            ClientAuthorization::Replace => {
                wire::headers::strip_credentials(&mut parts.headers);
                add_impersonation(&mut parts.headers, &inner.impersonation);
            }
            ClientAuthorization::KeepIfPresent => {
                if !parts.headers.contains_key("impersonate-user") {
                    add_impersonation(&mut parts.headers, &inner.impersonation);
                }
            }
        }
        let ours = !client_auth && !inner.credentials.is_none();
        let refreshable = ours && !matches!(inner.credentials, Source::Static(_));
        tracing::debug!(method = %parts.method, path = %pq.path(), upgrade, "request to the API server");

        let mut body = Some(body);
        let replay = if refreshable {
            self.buffer_if_small(&mut body).await?
        } else {
            None
        };
        let pool = if upgrade {
            &inner.upgrades
        } else {
            &inner.pooled
        };
        for attempt in 0..2 {
            let applied = if ours || (client_auth && inner.credentials.may_issue_client_cert()) {
                Some(inner.credentials.current().await?)
            } else {
                None
            };
            let mut headers = parts.headers.clone();
            if ours && let Some(value) = applied.as_ref().and_then(|a| a.header.clone()) {
                headers.insert(AUTHORIZATION, value);
            }
            let attempt_body = match (&replay, body.take()) {
                (Some(bytes), _) => full_body(bytes.clone()),
                (None, Some(body)) => body,
                (None, None) => empty_body(),
            };
            let mut request = Request::new(attempt_body);
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = parts.uri.clone();
            *request.version_mut() = parts.version;
            *request.headers_mut() = headers;
            *request.extensions_mut() = parts.extensions.clone();
            let response = pool.request(request).await.map_err(|e| self.classify(&e))?;
            if response.status() == StatusCode::UNAUTHORIZED
                && ours
                && let Some(generation) = applied.as_ref().and_then(|a| a.generation)
            {
                tracing::debug!(
                    attempt,
                    "the API server answered 401; dropping the cached credential"
                );
                inner.credentials.invalidate(generation);
                if attempt == 0 && replay.is_some() {
                    continue;
                }
            }
            return Ok(response);
        }
        Err(SendError::InvalidRequest {
            reason: "retry loop ended without a response".to_owned(),
        })
    }

    /// Buffers the body when it is known to be at most `max_replay_body` bytes; an empty body
    /// is replayable as is.
    async fn buffer_if_small(&self, body: &mut Option<Body>) -> Result<Option<Bytes>, SendError> {
        let Some(current) = body.as_ref() else {
            return Ok(None);
        };
        if current.is_end_stream() {
            return Ok(Some(Bytes::new()));
        }
        let small = current
            .size_hint()
            .exact()
            .is_some_and(|n| n <= self.inner.max_replay_body);
        if !small {
            return Ok(None);
        }
        let Some(taken) = body.take() else {
            return Ok(None);
        };
        let bytes = taken
            .collect()
            .await
            .map_err(|e| SendError::RequestBody {
                reason: e.to_string(),
            })?
            .to_bytes();
        Ok(Some(bytes))
    }

    fn classify(&self, error: &hyper_util::client::legacy::Error) -> SendError {
        let inner = &self.inner;
        let server = inner.server.to_string();
        if let Some(tls) = find_rustls_error(error) {
            return SendError::Tls {
                server,
                server_name: inner.server_name.clone(),
                ca: inner.ca.clone(),
                reason: tls.to_string(),
            };
        }
        let reason = crate::error_chain(error);
        if find_io_kind(error) == Some(std::io::ErrorKind::TimedOut) {
            return SendError::Timeout {
                server,
                after: inner.connect_timeout,
            };
        }
        if error.is_connect() {
            return SendError::Connect {
                server,
                via: inner.proxy.clone(),
                reason,
            };
        }
        SendError::Protocol { server, reason }
    }
}

fn add_impersonation(headers: &mut HeaderMap, impersonation: &[(HeaderName, HeaderValue)]) {
    for (name, value) in impersonation {
        headers.append(name.clone(), value.clone());
    }
}

/// client-go's `impersonatingRoundTripper`: `Impersonate-User`, `-Uid`, one `-Group` per
/// group, one `Impersonate-Extra-<key>` per value, the key escaped like `headerKeyEscape`.
fn impersonation_headers(
    imp: &config::Impersonation,
) -> Result<Vec<(HeaderName, HeaderValue)>, BuildError> {
    let value = |header: &str, v: &str| {
        HeaderValue::from_str(v).map_err(|_| BuildError::InvalidImpersonation {
            header: header.to_owned(),
        })
    };
    let mut out = Vec::new();
    if let Some(user) = &imp.user {
        out.push((
            HeaderName::from_static("impersonate-user"),
            value("Impersonate-User", user)?,
        ));
    }
    if let Some(uid) = &imp.uid {
        out.push((
            HeaderName::from_static("impersonate-uid"),
            value("Impersonate-Uid", uid)?,
        ));
    }
    for group in &imp.groups {
        out.push((
            HeaderName::from_static("impersonate-group"),
            value("Impersonate-Group", group)?,
        ));
    }
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'\'')
        .remove(b'*')
        .remove(b'+')
        .remove(b'^')
        .remove(b'`')
        .remove(b'|');
    for (key, values) in &imp.extra {
        let header = format!(
            "impersonate-extra-{}",
            percent_encoding::utf8_percent_encode(key, KEEP)
        );
        let name =
            HeaderName::from_bytes(header.to_ascii_lowercase().as_bytes()).map_err(|_| {
                BuildError::InvalidImpersonation {
                    header: header.clone(),
                }
            })?;
        for v in values {
            out.push((name.clone(), value(&header, v)?));
        }
    }
    Ok(out)
}

/// The next error in a chain; io::Error's `source()` skips its custom payload, so descend
/// into that payload explicitly.
fn next_cause<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
    {
        return Some(inner);
    }
    error.source()
}

fn find_rustls_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = next_cause(e);
    }
    None
}

fn find_io_kind(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut current = Some(error);
    let mut kind = None;
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            kind = Some(io.kind());
        }
        current = next_cause(e);
    }
    kind
}
