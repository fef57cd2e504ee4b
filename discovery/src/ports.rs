//! The port an address without one stands for: a service origin
//! (`http://grafana.monitoring.svc.localhost:8001/`) or a mount names a service, not a port.
//!
//! Contract: [`DefaultPorts::resolve`] returns the target with the port and scheme the API
//! server must be asked for:
//!
//! - a service: its only port; else its port named `http`, then `https`, then the first one
//!   numbered 80, 443 or 8080, else its first port ([`preferred_service_port`]). A named port
//!   is sent by name (what the API server matches endpoints by); the single unnamed port is
//!   left out, and the API server picks it by itself;
//! - a pod: of its declared container ports, by number alone (the pod proxy never resolves
//!   names): its only one; else the first numbered 80, 443 or 8080, else the first
//!   ([`preferred_pod_port`]);
//! - the scheme is `https` for a port named `https` or numbered 443 ([`ServicePort::is_https`]),
//!   unless the target was written with a scheme.
//!
//! A target with a port, a node, or one that cannot be looked up (not found, forbidden, the
//! API server down, slower than [`LOOKUP_TIMEOUT`]) is returned unchanged, and the API server
//! then says what is wrong. What was found, or not found, is kept for [`TTL`] on tokio's clock
//! (so one page load with fifty assets costs one lookup, and a fixed Service is seen within
//! seconds), for at most [`ENTRIES`] targets.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use urlgrammar::{Kind, Port, PortName, Scheme, Target};

use crate::client::KubeApi;
use crate::model::{PodPort, ServicePort, WirePod, WireService};

/// How long a looked-up default port is used before it is looked up again.
pub const TTL: Duration = Duration::from_secs(10);

/// At most this many targets are remembered (the map is cleared beyond).
pub const ENTRIES: usize = 1024;

/// The bound on one lookup.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Pod and Service objects larger than this are not read for their ports.
const MAX_OBJECT_BODY: usize = 1 << 20;

/// A target's default port, as found in its Service or Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultPort {
    /// `None`: the service's single port is unnamed and the API server picks it by itself.
    pub port: Option<Port>,
    /// The port is reached over TLS.
    pub https: bool,
}

/// (namespace, kind, name) → when it was looked up, and what was found.
type Cache = HashMap<(String, Kind, String), (Instant, Option<DefaultPort>)>;

/// Default ports through `client`, cached; see the module contract.
pub struct DefaultPorts<C> {
    client: C,
    cache: Mutex<Cache>,
}

impl<C: KubeApi> DefaultPorts<C> {
    pub fn new(client: C) -> Self {
        Self {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// `target` with its default port and scheme; see the module contract.
    pub async fn resolve(&self, target: Target) -> Target {
        let Some(namespace) = target.namespace() else {
            return target;
        };
        if target.port().is_some() || target.kind() == Kind::Node {
            return target;
        }
        let key = (
            namespace.to_owned(),
            target.kind(),
            target.name().to_owned(),
        );
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            cache
                .get(&key)
                .filter(|(at, _)| at.elapsed() < TTL)
                .map(|(_, found)| found.clone())
        };
        let found = match cached {
            Some(found) => found,
            None => {
                let lookup = self.lookup(target.kind(), namespace, target.name());
                let found = tokio::time::timeout(LOOKUP_TIMEOUT, lookup)
                    .await
                    .unwrap_or(None);
                let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                if cache.len() >= ENTRIES {
                    cache.clear();
                }
                cache.insert(key, (Instant::now(), found.clone()));
                found
            }
        };
        let Some(found) = found else {
            return target;
        };
        let written = target.scheme();
        let target = target.with_port(found.port);
        if written == Scheme::Unspecified && found.https {
            target.with_scheme(Scheme::Https)
        } else {
            target
        }
    }

    async fn lookup(&self, kind: Kind, namespace: &str, name: &str) -> Option<DefaultPort> {
        let path = format!(
            "/api/v1/namespaces/{}/{}/{}",
            percent_encoding::utf8_percent_encode(namespace, crate::PATH_SEGMENT),
            kind.resource(),
            percent_encoding::utf8_percent_encode(name, crate::PATH_SEGMENT),
        );
        let res = self.client.get(&path, MAX_OBJECT_BODY).await.ok()?;
        if res.status != 200 || res.truncated {
            return None;
        }
        match kind {
            Kind::Service => {
                let service: WireService = serde_json::from_slice(&res.body).ok()?;
                service_default(&service.into_info(None).ports)
            }
            Kind::Pod => {
                let pod: WirePod = serde_json::from_slice(&res.body).ok()?;
                pod_default(&pod.into_info()?.ports)
            }
            Kind::Node => None,
        }
    }
}

/// The default port of a service with `ports` (in spec order); see the module contract.
pub fn service_default(ports: &[ServicePort]) -> Option<DefaultPort> {
    let preferred = preferred_service_port(ports)?;
    let port = if ports.len() == 1 && preferred.name.is_empty() {
        None
    } else if preferred.name.is_empty() {
        Some(Port::number(preferred.port).ok()?)
    } else {
        Some(Port::Name(PortName::new(&preferred.name).ok()?))
    };
    Some(DefaultPort {
        port,
        https: preferred.is_https(),
    })
}

/// The default port of a pod with declared `ports`; see the module contract.
pub fn pod_default(ports: &[PodPort]) -> Option<DefaultPort> {
    let preferred = preferred_pod_port(ports)?;
    Some(DefaultPort {
        port: Some(Port::number(preferred.port).ok()?),
        https: preferred.port == 443,
    })
}

/// The port of a service an address without one means.
pub fn preferred_service_port(ports: &[ServicePort]) -> Option<&ServicePort> {
    if let [only] = ports {
        return Some(only);
    }
    ports
        .iter()
        .find(|p| p.name == "http")
        .or_else(|| ports.iter().find(|p| p.name == "https"))
        .or_else(|| by_number(ports, |p| p.port))
}

/// The port of a pod an address without one means (by number only).
pub fn preferred_pod_port(ports: &[PodPort]) -> Option<&PodPort> {
    if let [only] = ports {
        return Some(only);
    }
    by_number(ports, |p| p.port)
}

/// The first port numbered 80, 443 or 8080, else the first port.
fn by_number<P>(ports: &[P], number: impl Fn(&P) -> u16) -> Option<&P> {
    ports
        .iter()
        .find(|p| matches!(number(p), 80 | 443 | 8080))
        .or_else(|| ports.first())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::client::fake::Fake;
    use crate::model::Readiness;

    fn service_ports(v: &[(&str, u16)]) -> Vec<ServicePort> {
        v.iter()
            .map(|(name, port)| ServicePort {
                name: (*name).to_owned(),
                port: *port,
                protocol: "TCP".into(),
                app_protocol: None,
                readiness: Readiness::default(),
            })
            .collect()
    }

    fn pick(v: &[(&str, u16)]) -> Option<(String, u16)> {
        preferred_service_port(&service_ports(v)).map(|p| (p.name.clone(), p.port))
    }

    #[test]
    fn default_port_preference() {
        assert_eq!(pick(&[("metrics", 9090)]), Some(("metrics".into(), 9090)));
        assert_eq!(
            pick(&[("admin", 8081), ("http", 80)]),
            Some(("http".into(), 80))
        );
        assert_eq!(
            pick(&[("grpc", 9000), ("https", 8443)]),
            Some(("https".into(), 8443))
        );
        assert_eq!(
            pick(&[("grpc", 9000), ("web", 8080)]),
            Some(("web".into(), 8080))
        );
        assert_eq!(pick(&[("a", 1), ("b", 2)]), Some(("a".into(), 1)));
        assert_eq!(pick(&[]), None);
    }

    #[test]
    fn the_port_is_named_numbered_or_left_to_the_api_server() {
        let only_unnamed = service_default(&service_ports(&[("", 443)])).unwrap();
        assert_eq!(only_unnamed.port, None);
        assert!(only_unnamed.https);
        let named = service_default(&service_ports(&[("web", 8080), ("https", 8443)])).unwrap();
        assert_eq!(named.port.map(|p| p.to_string()).as_deref(), Some("https"));
        assert!(named.https);
        let pod = pod_default(&[
            PodPort {
                name: "http".into(),
                port: 9000,
            },
            PodPort {
                name: String::new(),
                port: 8080,
            },
        ])
        .unwrap();
        assert_eq!(
            pod.port.map(|p| p.to_string()).as_deref(),
            Some("8080"),
            "pods are chosen by number; names are not proxyable"
        );
        assert!(!pod.https);
    }

    fn target(text: &str) -> Target {
        urlgrammar::Address::parse(text, None).unwrap().target
    }

    fn grafana() -> Fake {
        Fake::default().with(
            "/api/v1/namespaces/monitoring/services/grafana",
            200,
            json!({"metadata": {"name": "grafana", "namespace": "monitoring"},
                   "spec": {"ports": [{"name": "metrics", "port": 9090},
                                      {"name": "https", "port": 3000}]}}),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn lookups_are_cached_for_the_ttl_on_tokios_clock() {
        let ports = DefaultPorts::new(grafana());
        let resolved = ports.resolve(target("svc/monitoring/grafana")).await;
        assert_eq!(resolved.to_string(), "svc/monitoring/https:grafana:https");
        let again = ports.resolve(target("svc/monitoring/grafana")).await;
        assert_eq!(again, resolved);
        assert_eq!(ports.client.seen.lock().unwrap().len(), 1, "one lookup");
        tokio::time::advance(TTL).await;
        ports.resolve(target("svc/monitoring/grafana")).await;
        assert_eq!(
            ports.client.seen.lock().unwrap().len(),
            2,
            "looked up again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn what_cannot_be_looked_up_is_left_to_the_api_server() {
        let ports = DefaultPorts::new(grafana());
        // Not found: unchanged, and the miss is cached too.
        for _ in 0..2 {
            let missing = ports.resolve(target("svc/monitoring/nope")).await;
            assert_eq!(missing.to_string(), "svc/monitoring/nope");
        }
        assert_eq!(ports.client.seen.lock().unwrap().len(), 1);
        // A port, a written scheme or a node is never looked up.
        for text in ["svc/monitoring/grafana:metrics", "node/n1"] {
            assert_eq!(ports.resolve(target(text)).await.to_string(), text);
        }
        assert_eq!(ports.client.seen.lock().unwrap().len(), 1);
        let written = ports.resolve(target("svc/monitoring/http:grafana")).await;
        assert_eq!(written.to_string(), "svc/monitoring/http:grafana:https");
    }

    /// An API server that never answers.
    struct Stuck;

    impl KubeApi for Stuck {
        async fn get(
            &self,
            _: &str,
            _: usize,
        ) -> Result<crate::ApiResponse, crate::TransportError> {
            std::future::pending().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_lookup_gives_up_after_its_bound() {
        let ports = DefaultPorts::new(Stuck);
        let started = Instant::now();
        let resolved = ports.resolve(target("svc/monitoring/grafana")).await;
        assert_eq!(resolved.to_string(), "svc/monitoring/grafana");
        assert_eq!(started.elapsed(), LOOKUP_TIMEOUT);
    }
}
