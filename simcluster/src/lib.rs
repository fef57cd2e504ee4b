//! A simulated Kubernetes API server, faithful to the real proxy verb, with sample apps.
//!
//! [`SimCluster`] serves HTTPS with its own CA on 127.0.0.1 (h2 and http/1.1 by ALPN),
//! authenticates bearer tokens, basic auth and client certificates as the API server does,
//! answers discovery and list/get of namespaces, services, endpoints, EndpointSlices, pods and
//! nodes, and implements the `proxy` subresource of services, pods and nodes as kube-apiserver
//! and apimachinery's `pkg/util/proxy` do (see the `proxy` and `rewrite` modules for each
//! behaviour and its source). Services are backed by real HTTP servers on loopback ports, or by
//! any local process with [`SimClusterBuilder::map_service`].
//!
//! # Differences from a real kube-apiserver
//!
//! Kept on purpose small, and listed so tests do not rely on them:
//! * Pod and endpoint IPs are `127.0.0.1` (all pods share it; the real pod proxy refuses
//!   non-global-unicast IPs with `400 address not allowed`, this one allows loopback). The node's
//!   address is `127.0.0.1` too, and its kubelet is a small HTTPS app (`/healthz`, `/pods`,
//!   `/metrics`, `/configz`).
//! * Services resolve through Endpoints as every release up to 1.36 does (the `targetRef` check
//!   included); the 2026 EndpointSlice port (kubernetes#134860) is not simulated.
//! * Read-only: create, update, patch and delete of objects answer 405. Watches send the current
//!   objects and then stay quiet. No `/openapi`, no aggregated discovery (clients fall back to
//!   the legacy documents, as kubectl does), no protobuf, no impersonation (the `Impersonate-*`
//!   headers are removed before proxying, not acted on). Basic auth is accepted although Kubernetes removed it in 1.19.
//! * HTML rewriting changes only the URL attributes it rewrites; Go's tokenizer re-serialises
//!   every start tag (lower-cased names, `&#34;`-style escaping). Unchanged URLs keep their
//!   original spelling instead of Go's `url.String()` re-serialisation.
//! * Upgrades: the 101 head is re-written by hyper from the backend's status and headers rather
//!   than copied byte for byte; a refused upgrade (≥ 400) is passed back as a parsed response.
//! * Methods outside `ConnectMethods` on a proxy path answer a 405 `Status`.
//! * Endpoint connections are HTTP/1.1 only (Go may negotiate h2 with `https` endpoints).
//!
//! ```no_run
//! # async fn demo() -> Result<(), simcluster::Error> {
//! let cluster = simcluster::SimCluster::builder().token("alice", "t0k").start().await?;
//! println!("{} (CA: {} bytes)", cluster.url(), cluster.ca_pem().len());
//! cluster.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

mod api;
mod apps;
mod auth;
mod body;
mod cluster;
mod error;
mod forwarding;
pub mod pki;
mod proxy;
mod requestinfo;
mod rewrite;
mod sample;
mod selector;
mod server;
mod shared;
mod status;
mod upstream;
mod watchws;

pub use apps::LoggedRequest;
pub use error::Error;

/// The user of [`SimCluster::admin_token`]; it is in `system:masters`.
pub const ADMIN_USER: &str = "simcluster-admin";

/// The name of the cluster, context and user in the written kubeconfig.
pub const CONTEXT_NAME: &str = "simcluster";

/// The one node of the cluster.
pub const NODE_NAME: &str = "simcluster-control-plane";

/// A simulated service mapped onto a local process: `<ns>/<name>[:<port>]=<url>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceMapping {
    /// The service's namespace (created if missing).
    pub namespace: String,
    /// The service's name.
    pub name: String,
    /// The service port: a name (`http`) or a number (`3000`, an unnamed port with that
    /// number); `None` for one unnamed port (named `https` when the URL is `https:`).
    pub port: Option<String>,
    /// Where the endpoint really is: `http://host:port` or `https://host:port` (TLS, not verified).
    pub url: String,
}

impl ServiceMapping {
    /// Parses `<ns>/<name>[:<port>]=<url>`, the `--service` flag's syntax.
    pub fn parse(spec: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::ServiceMapping {
            spec: spec.to_owned(),
            reason: format!("{reason}; expected <namespace>/<name>[:<port>]=<http(s)://host:port>"),
        };
        let (target, url) = spec.split_once('=').ok_or_else(|| bad("no '='"))?;
        let (namespace, rest) = target
            .split_once('/')
            .ok_or_else(|| bad("no '/' between namespace and name"))?;
        let (name, port) = match rest.split_once(':') {
            Some((n, p)) => (n, Some(p.to_owned()).filter(|p| !p.is_empty())),
            None => (rest, None),
        };
        let dns_label = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !s.starts_with('-')
                && !s.ends_with('-')
        };
        if !dns_label(namespace) || !dns_label(name) {
            return Err(bad(
                "namespace and name must be DNS labels (lower-case letters, digits, '-')",
            ));
        }
        Ok(Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            port,
            url: url.to_owned(),
        })
    }
}

/// Configures and starts a [`SimCluster`].
pub struct SimClusterBuilder {
    port: u16,
    tokens: Vec<(String, SecretString)>,
    basic: Vec<(String, SecretString)>,
    cert_users: BTreeSet<String>,
    forbid_proxy: BTreeSet<String>,
    forbid_portforward: BTreeSet<String>,
    mappings: Vec<ServiceMapping>,
    sample_apps: bool,
    portforward: shared::PortForwardForms,
    reach: shared::PodNetwork,
}

impl std::fmt::Debug for SimClusterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimClusterBuilder")
            .field("port", &self.port)
            .field(
                "token_users",
                &self.tokens.iter().map(|(u, _)| u).collect::<Vec<_>>(),
            )
            .field(
                "basic_users",
                &self.basic.iter().map(|(u, _)| u).collect::<Vec<_>>(),
            )
            .field("cert_users", &self.cert_users)
            .field("forbid_proxy", &self.forbid_proxy)
            .field("forbid_portforward", &self.forbid_portforward)
            .field("mappings", &self.mappings)
            .field("sample_apps", &self.sample_apps)
            .field("portforward", &self.portforward)
            .field("reach", &self.reach)
            .finish()
    }
}

impl SimClusterBuilder {
    /// The port on 127.0.0.1 (default 0: a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Accepts `Authorization: Bearer <token>` as `user`.
    pub fn token(mut self, user: &str, token: &str) -> Self {
        self.tokens
            .push((user.to_owned(), SecretString::from(token.to_owned())));
        self
    }

    /// Accepts basic auth `user:password` (removed from Kubernetes in 1.19; kept for clients
    /// whose kubeconfig still has it).
    pub fn basic(mut self, user: &str, password: &str) -> Self {
        self.basic
            .push((user.to_owned(), SecretString::from(password.to_owned())));
        self
    }

    /// Allows [`SimCluster::client_cert_pem`] for `user` (any certificate the CA signed is
    /// accepted; its CN is the user).
    pub fn client_cert_user(mut self, user: &str) -> Self {
        self.cert_users.insert(user.to_owned());
        self
    }

    /// Denies `user` every `*/proxy` subresource (403, as RBAC would).
    pub fn forbid_proxy(mut self, user: &str) -> Self {
        self.forbid_proxy.insert(user.to_owned());
        self
    }

    /// Denies `user` the `pods/portforward` subresource (403, as RBAC would).
    pub fn forbid_portforward(mut self, user: &str) -> Self {
        self.forbid_portforward.insert(user.to_owned());
        self
    }

    /// Whether `pods/portforward` tunnels SPDY through a WebSocket (KEP-4006). `false` is an
    /// API server before 1.30 (or with the `PortForwardWebsockets` gate off): the WebSocket
    /// reaches the kubelet, whose channel protocol knows no such subprotocol and answers 400.
    pub fn portforward_websockets(mut self, on: bool) -> Self {
        self.portforward.tunnel = on;
        self
    }

    /// Whether `Upgrade: SPDY/3.1` reaches `pods/portforward`. `false` is an API server behind
    /// a proxy that passes WebSockets only: the request arrives without its upgrade and is
    /// `400 Upgrade request required`.
    pub fn portforward_spdy(mut self, on: bool) -> Self {
        self.portforward.spdy = on;
        self
    }

    /// Whether the API server can reach pods for the proxy verb (default `true`). `false` is
    /// a control plane outside the pod network: every service and pod proxy request fails
    /// after [`SimClusterBuilder::unreachable_delay`] with `503` `error trying to reach
    /// service: dial tcp <pod>: i/o timeout` (`error dialing backend: ...` for an upgrade),
    /// as apimachinery's proxy transport words a dial timeout; `pods/portforward` still works.
    pub fn reachable_pods(mut self, on: bool) -> Self {
        self.reach.none = !on;
        self
    }

    /// The pods of the service `namespace/name` alone cannot be reached (as
    /// [`SimClusterBuilder::reachable_pods`] for one service: a port the firewall rule
    /// does not open).
    pub fn unreachable_service(mut self, namespace: &str, name: &str) -> Self {
        self.reach.services.insert(format!("{namespace}/{name}"));
        self
    }

    /// How long a dial to an unreachable pod takes to fail (default 1 s; a real API server
    /// waits for Go's 30 s dial timeout).
    pub fn unreachable_delay(mut self, delay: std::time::Duration) -> Self {
        self.reach.delay = delay;
        self
    }

    /// Maps the service `namespace/name` (port `port`, see [`ServiceMapping::port`]) onto `url`.
    pub fn map_service(
        mut self,
        namespace: &str,
        name: &str,
        port: Option<&str>,
        url: &str,
    ) -> Self {
        self.mappings.push(ServiceMapping {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            port: port.map(str::to_owned),
            url: url.to_owned(),
        });
        self
    }

    /// Adds a parsed mapping.
    pub fn service(mut self, mapping: ServiceMapping) -> Self {
        self.mappings.push(mapping);
        self
    }

    /// Whether to start the sample apps (default `true`).
    pub fn sample_apps(mut self, on: bool) -> Self {
        self.sample_apps = on;
        self
    }

    /// Binds, generates the certificates, starts the apps and serves.
    pub async fn start(self) -> Result<SimCluster, Error> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let pki = pki::Pki::generate()?;
        let tls = Arc::new(pki.server_config()?);

        let admin_token = SecretString::from(random_token()?);
        let mut tokens: Vec<(SecretString, String)> =
            vec![(admin_token.clone(), ADMIN_USER.to_owned())];
        tokens.extend(self.tokens.into_iter().map(|(u, t)| (t, u)));
        let authn = auth::Authn {
            tokens,
            basic: self.basic.into_iter().collect::<BTreeMap<_, _>>(),
            forbid_proxy: self.forbid_proxy,
            forbid_portforward: self.forbid_portforward,
        };

        let mut tasks = JoinSet::new();
        let app_state = Arc::new(apps::AppState::new());
        let mut state = cluster::ClusterState {
            namespaces: Vec::new(),
            services: Vec::new(),
            secrets: Vec::new(),
            resource_version: 100,
            node_name: NODE_NAME.to_owned(),
            kubelet_port: 0,
            created: jiff::Timestamp::now(),
        };
        let kubelet = apps::spawn_app(
            &mut tasks,
            format!("node/{NODE_NAME}:kubelet"),
            Some(Arc::new(pki::self_signed_server_config(NODE_NAME)?)),
            apps::misc::kubelet,
            app_state.clone(),
        )
        .await?;
        state.kubelet_port = kubelet.port();
        sample::base(&mut state, addr);
        let mut pods = apps::pods::Pods::default();
        if self.sample_apps {
            sample::start(&mut tasks, &mut state, &app_state).await?;
            apps::pods::start(&mut pods, &mut state, &app_state).await?;
        }
        for mapping in &self.mappings {
            apply_mapping(&mut state, mapping).await?;
        }
        let endpoint_tls = upstream::insecure_client_config()?;
        let shared = Arc::new(shared::Shared {
            cluster: RwLock::new(state),
            authn,
            addr,
            endpoints: upstream::endpoint_client(endpoint_tls.clone()),
            endpoint_tls,
            received: Arc::default(),
            next_endpoint: Default::default(),
            forwards: Default::default(),
            stopping: Default::default(),
            portforward: self.portforward,
            reach: self.reach,
        });
        tasks.spawn(server::run(listener, tls, shared.clone()));
        Ok(SimCluster {
            addr,
            pki: Arc::new(pki),
            shared,
            apps: app_state,
            admin_token,
            cert_users: self.cert_users,
            tasks,
            pods: tokio::sync::Mutex::new(pods),
        })
    }
}

/// 32 random bytes, hex.
fn random_token() -> Result<String, Error> {
    use ring::rand::SecureRandom;
    let mut buf = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| Error::Random)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

async fn apply_mapping(state: &mut cluster::ClusterState, m: &ServiceMapping) -> Result<(), Error> {
    let spec = format!(
        "{}/{}{}={}",
        m.namespace,
        m.name,
        m.port
            .as_deref()
            .map(|p| format!(":{p}"))
            .unwrap_or_default(),
        m.url
    );
    let bad = |reason: String| Error::ServiceMapping {
        spec: spec.clone(),
        reason,
    };
    let url = url::Url::parse(&m.url).map_err(|e| bad(format!("the URL does not parse: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(bad(format!(
            "scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    let host = url
        .host_str()
        .ok_or_else(|| bad("the URL has no host".to_owned()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let target_port = url.port_or_known_default().unwrap_or(80);
    let ip = tokio::net::lookup_host((host, target_port))
        .await
        .map_err(|e| bad(format!("cannot resolve {host}: {e}")))?
        .min_by_key(|a| !a.is_ipv4())
        .map(|a| a.ip())
        .ok_or_else(|| bad(format!("{host} resolves to no address")))?;
    let (name, number) = match m.port.as_deref() {
        Some(p) => match p.parse::<u16>() {
            Ok(n) => (String::new(), n),
            Err(_) => (p.to_owned(), target_port),
        },
        None if url.scheme() == "https" => ("https".to_owned(), 443),
        None => (String::new(), target_port),
    };
    let port = cluster::PortSpec {
        name,
        port: number,
        protocol: "TCP",
        target: target_port,
    };
    let mut svc = match state.service(&m.namespace, &m.name) {
        // Another port of a service already mapped to the same address joins it.
        Some(existing)
            if existing.replicas.first().map(|r| r.ip) == Some(ip) && existing.has_pod =>
        {
            let mut svc = existing.clone();
            svc.ports.retain(|p| p.name != port.name);
            svc.ports.push(port);
            svc
        }
        Some(existing) => {
            let mut svc = sample::service(
                &m.namespace,
                &m.name,
                existing.labels.clone(),
                vec![port],
                Some(ip),
            );
            svc.cluster_ip = existing.cluster_ip.clone();
            svc
        }
        None => sample::service(
            &m.namespace,
            &m.name,
            vec![("app".to_owned(), m.name.clone())],
            vec![port],
            Some(ip),
        ),
    };
    for replica in &mut svc.replicas {
        replica.ready = true;
    }
    state.upsert_service(svc);
    Ok(())
}

/// A running simulated cluster. Dropping it stops every server it started.
pub struct SimCluster {
    addr: SocketAddr,
    pki: Arc<pki::Pki>,
    shared: Arc<shared::Shared>,
    apps: Arc<apps::AppState>,
    admin_token: SecretString,
    cert_users: BTreeSet<String>,
    tasks: JoinSet<()>,
    /// The listeners of the pods that tests may delete (`demo/whoami`, `demo/tcp-echo`).
    pods: tokio::sync::Mutex<apps::pods::Pods>,
}

impl std::fmt::Debug for SimCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCluster")
            .field("addr", &self.addr)
            .field("admin_token", &"<redacted>")
            .field("cert_users", &self.cert_users)
            .finish_non_exhaustive()
    }
}

impl SimCluster {
    /// A builder with the defaults: a free port, sample apps, only the admin token.
    pub fn builder() -> SimClusterBuilder {
        SimClusterBuilder {
            port: 0,
            tokens: Vec::new(),
            basic: Vec::new(),
            cert_users: BTreeSet::new(),
            forbid_proxy: BTreeSet::new(),
            forbid_portforward: BTreeSet::new(),
            mappings: Vec::new(),
            sample_apps: true,
            portforward: shared::PortForwardForms {
                tunnel: true,
                spdy: true,
            },
            reach: shared::PodNetwork {
                delay: std::time::Duration::from_secs(1),
                ..shared::PodNetwork::default()
            },
        }
    }

    /// Where the API server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The cluster CA certificate (PEM), which signed the server and client certificates.
    pub fn ca_pem(&self) -> &str {
        self.pki.ca_pem()
    }

    /// The admin's bearer token (user [`ADMIN_USER`], group `system:masters`).
    pub fn admin_token(&self) -> &str {
        self.admin_token.expose_secret()
    }

    /// A kubeconfig with the CA, the server and the admin token; context [`CONTEXT_NAME`],
    /// namespace `default`.
    pub fn kubeconfig_yaml(&self) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {url}\n  name: {CONTEXT_NAME}\ncontexts:\n- context:\n    cluster: {CONTEXT_NAME}\n    namespace: default\n    user: {ADMIN_USER}\n  name: {CONTEXT_NAME}\ncurrent-context: {CONTEXT_NAME}\npreferences: {{}}\nusers:\n- name: {ADMIN_USER}\n  user:\n    token: {token}\n",
            url = self.url(),
            token = self.admin_token(),
        )
    }

    /// Writes [`kubeconfig_yaml`](Self::kubeconfig_yaml) to `path` (mode 0600 on Unix).
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let err = |source| Error::WriteKubeconfig {
            path: path.display().to_string(),
            source,
        };
        std::fs::write(path, self.kubeconfig_yaml()).map_err(err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        }
        Ok(())
    }

    /// A fresh client certificate and key (PEM) for a user registered with
    /// [`SimClusterBuilder::client_cert_user`].
    pub fn client_cert_pem(&self, user: &str) -> Result<(String, String), Error> {
        if !self.cert_users.contains(user) {
            return Err(Error::UnknownCertUser {
                user: user.to_owned(),
            });
        }
        self.pki.client_cert(user, &[])
    }

    /// Sets what `elasticsearch-logging`'s `/_cluster/health` reports: `green`, `yellow` or `red`.
    pub fn set_es_status(&self, status: &str) -> Result<(), Error> {
        let status = match status {
            "green" => "green",
            "yellow" => "yellow",
            "red" => "red",
            other => {
                return Err(Error::InvalidValue {
                    value: other.to_owned(),
                    reason: "expected green, yellow or red",
                });
            }
        };
        if let Ok(mut s) = self.apps.es_status.lock() {
            *s = status;
        }
        Ok(())
    }

    /// Marks the endpoints of `namespace/name` ready or not ready (not-ready addresses are not
    /// proxied to: 503 `no endpoints available`).
    pub fn set_endpoints_ready(
        &self,
        namespace: &str,
        name: &str,
        ready: bool,
    ) -> Result<(), Error> {
        let unknown = || Error::UnknownService {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        let mut state = self.shared.cluster.write().map_err(|_| unknown())?;
        let mut svc = state
            .service(namespace, name)
            .cloned()
            .ok_or_else(unknown)?;
        for replica in &mut svc.replicas {
            replica.ready = ready;
        }
        state.upsert_service(svc);
        Ok(())
    }

    /// Adds (or replaces) an `Opaque` Secret `namespace/name` with `data` (values before
    /// base64), readable through `GET`, list and watch like any other object.
    pub fn set_secret(
        &self,
        namespace: &str,
        name: &str,
        data: &[(&str, &str)],
    ) -> Result<(), Error> {
        let mut state = self
            .shared
            .cluster
            .write()
            .map_err(|_| Error::UnknownService {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })?;
        state.upsert_secret(namespace, name, data);
        Ok(())
    }

    /// Bytes the API server has received from clients so far, counted on the wire (TLS
    /// included): unchanged across a request means not one byte of it arrived.
    pub fn received_bytes(&self) -> u64 {
        self.shared
            .received
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every request the sample apps received, oldest first (at most the last 10,000).
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.apps
            .log
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Empties the request log.
    pub fn clear_request_log(&self) {
        if let Ok(mut l) = self.apps.log.lock() {
            l.clear();
        }
    }

    /// Bytes received by the last completed upload to `demo/bulk`'s `/upload`.
    pub fn last_upload_bytes(&self) -> u64 {
        self.apps
            .last_upload
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `(namespace, name, port names)` of every service, for listings.
    pub fn services(&self) -> Vec<(String, String, Vec<String>)> {
        self.shared
            .cluster
            .read()
            .map(|s| {
                s.services
                    .iter()
                    .map(|svc| {
                        (
                            svc.namespace.clone(),
                            svc.name.clone(),
                            svc.ports.iter().map(|p| p.name.clone()).collect(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Where the endpoint behind `namespace/name`'s port `port_name` (`""` for an unnamed
    /// port) really listens, to reach an app directly (for example as the "direct" reference
    /// of a benchmark). `None` for a missing service or port, or a service without endpoints.
    pub fn endpoint_addr(
        &self,
        namespace: &str,
        name: &str,
        port_name: &str,
    ) -> Option<SocketAddr> {
        let state = self.shared.cluster.read().ok()?;
        let svc = state.service(namespace, name)?;
        let ip = svc.replicas.first()?.ip;
        svc.ports
            .iter()
            .find(|p| p.name == port_name)
            .map(|p| SocketAddr::new(ip, p.target))
    }

    /// The protocol of every `pods/portforward` upgrade served so far, in order: `spdy`,
    /// `spdy-over-websocket` or `websocket-channels`.
    pub fn portforward_protocols(&self) -> Vec<&'static str> {
        self.shared
            .forwards
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// The pods of the service `namespace/name`, in order; empty for an unknown service.
    pub fn pods_of(&self, namespace: &str, name: &str) -> Vec<String> {
        let Ok(state) = self.shared.cluster.read() else {
            return Vec::new();
        };
        state
            .service(namespace, name)
            .map(|s| s.replicas.iter().map(|r| r.pod.clone()).collect())
            .unwrap_or_default()
    }

    /// Deletes the pod `namespace/pod` (of `demo/whoami` or `demo/tcp-echo`): its endpoint
    /// goes from its service, its listener stops and its open connections are dropped, as when
    /// a pod dies.
    pub async fn delete_pod(&self, namespace: &str, pod: &str) -> Result<(), Error> {
        let unknown = || Error::UnknownPod {
            namespace: namespace.to_owned(),
            name: pod.to_owned(),
        };
        let mut pods = self.pods.lock().await;
        let mut state = self.shared.cluster.write().map_err(|_| unknown())?;
        let (svc, _) = state.pod(namespace, pod).ok_or_else(unknown)?;
        let mut svc = svc.clone();
        svc.replicas.retain(|r| r.pod != pod);
        state.upsert_service(svc);
        drop(state);
        pods.stop(pod);
        Ok(())
    }

    /// Stops the app of `namespace/pod` and leaves its endpoint ready, as in the seconds
    /// between a crash and the readiness probe noticing it: dials to the pod are refused, and
    /// the kubelet says so on the port-forward error stream.
    pub async fn crash_pod(&self, namespace: &str, pod: &str) -> Result<(), Error> {
        let unknown = || Error::UnknownPod {
            namespace: namespace.to_owned(),
            name: pod.to_owned(),
        };
        {
            let state = self.shared.cluster.read().map_err(|_| unknown())?;
            state.pod(namespace, pod).ok_or_else(unknown)?;
        }
        self.pods.lock().await.stop(pod);
        Ok(())
    }

    /// Deletes `namespace/pod` and starts a pod in its place with a new name and address (same
    /// container port), as a restart or a rollout does: the new pod's name.
    pub async fn replace_pod(&self, namespace: &str, pod: &str) -> Result<String, Error> {
        let unknown = || Error::UnknownPod {
            namespace: namespace.to_owned(),
            name: pod.to_owned(),
        };
        let svc = {
            let state = self.shared.cluster.read().map_err(|_| unknown())?;
            state.pod(namespace, pod).ok_or_else(unknown)?.0.clone()
        };
        let fresh = {
            let mut pods = self.pods.lock().await;
            apps::pods::replacement(&mut pods, &svc, &self.apps).await?
        };
        self.delete_pod(namespace, pod).await?;
        let mut state = self.shared.cluster.write().map_err(|_| unknown())?;
        let mut current = state
            .service(namespace, &svc.name)
            .cloned()
            .ok_or_else(unknown)?;
        let name = fresh.pod.clone();
        current.replicas.push(fresh);
        state.upsert_service(current);
        Ok(name)
    }

    /// Stops the API server and every app.
    pub async fn shutdown(mut self) {
        self.shared.stopping.cancel();
        self.tasks.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_handles_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<SimCluster>();
        send_sync::<SimClusterBuilder>();
    }

    #[test]
    fn mapping_syntax() {
        let m = ServiceMapping::parse("monitoring/grafana:3000=http://127.0.0.1:3000").unwrap();
        assert_eq!(
            (
                m.namespace.as_str(),
                m.name.as_str(),
                m.port.as_deref(),
                m.url.as_str()
            ),
            (
                "monitoring",
                "grafana",
                Some("3000"),
                "http://127.0.0.1:3000"
            )
        );
        assert_eq!(ServiceMapping::parse("a/b=http://x").unwrap().port, None);
        for bad in [
            "a/b",
            "ab=http://x",
            "A/b=http://x",
            "a/-b=http://x",
            "/b=http://x",
        ] {
            assert!(ServiceMapping::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_output_has_no_secrets() {
        let b = SimCluster::builder()
            .token("alice", "sekrit-token")
            .basic("bob", "sekrit-pw");
        let text = format!("{b:?}");
        assert!(!text.contains("sekrit"), "{text}");
        assert!(text.contains("alice") && text.contains("bob"));
    }
}
