//! The Kubernetes objects discovery reads, decoded from the API server's JSON, and the
//! per-port readiness derived from them.
//!
//! Only the fields kgate uses are decoded; every field is optional on the wire (`#[serde(default)]`)
//! so that an object from an older or newer API server never fails to decode. Readiness follows
//! the API server's own view of a proxyable endpoint: an EndpointSlice endpoint counts as ready
//! unless `conditions.ready` is `false` (as discovery/v1 documents: "nil should be interpreted as
//! ready"), and an Endpoints address counts as ready when it is in `addresses`, not
//! `notReadyAddresses`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Ready endpoints out of all endpoints, for one service port (or one pod).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Readiness {
    /// Endpoints that would receive proxied requests.
    pub ready: u32,
    /// All endpoints, ready or not.
    pub total: u32,
}

impl Readiness {
    /// `ready/total`, as printed in tables.
    pub fn fraction(self) -> String {
        format!("{}/{}", self.ready, self.total)
    }
}

/// One entry of a Service's `spec.ports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    /// The port name; empty for the single unnamed port.
    pub name: String,
    /// The service port number (what a numeric port in a proxy path is matched against).
    pub port: u16,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// `spec.ports[].appProtocol`, when set.
    pub app_protocol: Option<String>,
    /// Readiness of the endpoints behind this port.
    pub readiness: Readiness,
}

impl ServicePort {
    /// How a target names this port: a named port by its name (what the API server matches
    /// endpoints by), the unnamed port by its number (which the API server maps back to it).
    pub fn port_ref(&self) -> String {
        if self.name.is_empty() {
            self.port.to_string()
        } else {
            self.name.clone()
        }
    }

    /// Whether the API server must be told to reach this port over TLS: the port is named
    /// `https` or is 443, the same rule `kubectl cluster-info` uses
    /// (`pkg/cmd/clusterinfo/clusterinfo.go`).
    pub fn is_https(&self) -> bool {
        self.name == "https" || self.port == 443
    }
}

/// A Service and what kgate needs to list and link it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// Namespace of the service.
    pub namespace: String,
    /// Name of the service.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `spec.type` (`ClusterIP` when absent).
    pub service_type: String,
    /// `status.loadBalancer.ingress[].ip` (or `.hostname` when the IP is empty), in order.
    pub load_balancer_ingress: Vec<String>,
    /// `spec.ports`, in the order the API server returned them.
    pub ports: Vec<ServicePort>,
}

impl ServiceInfo {
    /// The name `kubectl cluster-info` shows: the `kubernetes.io/name` label, else the name.
    pub fn display_name(&self) -> &str {
        self.labels
            .get("kubernetes.io/name")
            .map_or(self.name.as_str(), String::as_str)
    }
}

/// A pod that declares container ports (listed by `kgate urls --pods`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodInfo {
    /// Namespace of the pod.
    pub namespace: String,
    /// Name of the pod.
    pub name: String,
    /// Whether the pod's `Ready` condition is `True`.
    pub ready: bool,
    /// Declared container ports, in spec order, deduplicated by number.
    pub ports: Vec<PodPort>,
}

/// One declared container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodPort {
    /// The container port's name; empty when unnamed.
    pub name: String,
    /// The container port number. The pod proxy uses numbers verbatim and never resolves
    /// names (`pkg/registry/core/pod/strategy.go` `ResourceLocation`), so URLs use this.
    pub port: u16,
}

// ---- wire types ------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct List<T> {
    pub(crate) items: Vec<T>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Meta {
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireService {
    pub(crate) metadata: Meta,
    pub(crate) spec: WireServiceSpec,
    pub(crate) status: WireServiceStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct WireServiceSpec {
    #[serde(rename = "type")]
    pub(crate) type_: Option<String>,
    pub(crate) ports: Vec<WireServicePort>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct WireServicePort {
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) protocol: Option<String>,
    pub(crate) app_protocol: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct WireServiceStatus {
    pub(crate) load_balancer: WireLoadBalancer,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireLoadBalancer {
    pub(crate) ingress: Vec<WireIngress>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireIngress {
    pub(crate) ip: String,
    pub(crate) hostname: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireEndpointSlice {
    pub(crate) metadata: Meta,
    pub(crate) endpoints: Vec<WireSliceEndpoint>,
    pub(crate) ports: Option<Vec<WireSlicePort>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireSliceEndpoint {
    pub(crate) conditions: WireConditions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireConditions {
    pub(crate) ready: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireSlicePort {
    pub(crate) name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireEndpoints {
    pub(crate) metadata: Meta,
    pub(crate) subsets: Vec<WireSubset>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct WireSubset {
    pub(crate) addresses: Vec<serde_json::Value>,
    pub(crate) not_ready_addresses: Vec<serde_json::Value>,
    pub(crate) ports: Vec<WireSlicePort>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WirePod {
    pub(crate) metadata: Meta,
    pub(crate) spec: WirePodSpec,
    pub(crate) status: WirePodStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WirePodSpec {
    pub(crate) containers: Vec<WireContainer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireContainer {
    pub(crate) ports: Vec<WireContainerPort>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct WireContainerPort {
    pub(crate) name: String,
    pub(crate) container_port: u16,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WirePodStatus {
    pub(crate) conditions: Vec<WirePodCondition>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WirePodCondition {
    #[serde(rename = "type")]
    pub(crate) type_: String,
    pub(crate) status: String,
}

/// Where endpoint readiness comes from.
pub(crate) enum EndpointSource {
    /// `discovery.k8s.io/v1` EndpointSlices, labelled `kubernetes.io/service-name`.
    Slices(Vec<WireEndpointSlice>),
    /// `v1` Endpoints, named like their service.
    Endpoints(Vec<WireEndpoints>),
}

impl EndpointSource {
    /// Readiness of the endpoints behind `port_name` of service `ns/name`.
    ///
    /// A port matches by name, as the API server's proxy matches it (`""` is the unnamed port).
    /// An endpoint is counted once per slice that lists the port.
    pub(crate) fn readiness(&self, ns: &str, name: &str, port_name: &str) -> Readiness {
        let mut r = Readiness::default();
        match self {
            EndpointSource::Slices(slices) => {
                for slice in slices {
                    let owner = slice.metadata.labels.get("kubernetes.io/service-name");
                    if slice.metadata.namespace != ns || owner.map(String::as_str) != Some(name) {
                        continue;
                    }
                    // A slice with no `ports` list means "all ports" (discovery/v1 docs).
                    let has_port = slice.ports.as_ref().is_none_or(|ports| {
                        ports
                            .iter()
                            .any(|p| p.name.as_deref().unwrap_or("") == port_name)
                    });
                    if !has_port {
                        continue;
                    }
                    for ep in &slice.endpoints {
                        r.total += 1;
                        if ep.conditions.ready != Some(false) {
                            r.ready += 1;
                        }
                    }
                }
            }
            EndpointSource::Endpoints(all) => {
                for eps in all {
                    if eps.metadata.namespace != ns || eps.metadata.name != name {
                        continue;
                    }
                    for subset in &eps.subsets {
                        let has_port = subset
                            .ports
                            .iter()
                            .any(|p| p.name.as_deref().unwrap_or("") == port_name);
                        if !has_port {
                            continue;
                        }
                        let ready = u32::try_from(subset.addresses.len()).unwrap_or(u32::MAX);
                        let not_ready =
                            u32::try_from(subset.not_ready_addresses.len()).unwrap_or(u32::MAX);
                        r.ready = r.ready.saturating_add(ready);
                        r.total = r.total.saturating_add(ready.saturating_add(not_ready));
                    }
                }
            }
        }
        r
    }
}

impl WireService {
    pub(crate) fn into_info(self, endpoints: Option<&EndpointSource>) -> ServiceInfo {
        let ns = self.metadata.namespace;
        let name = self.metadata.name;
        let ports = self
            .spec
            .ports
            .into_iter()
            .map(|p| {
                let readiness = endpoints
                    .map(|e| e.readiness(&ns, &name, &p.name))
                    .unwrap_or_default();
                ServicePort {
                    name: p.name,
                    port: p.port,
                    protocol: p.protocol.unwrap_or_else(|| "TCP".to_owned()),
                    app_protocol: p.app_protocol,
                    readiness,
                }
            })
            .collect();
        let load_balancer_ingress = self
            .status
            .load_balancer
            .ingress
            .into_iter()
            .map(|i| if i.ip.is_empty() { i.hostname } else { i.ip })
            .collect();
        ServiceInfo {
            namespace: ns,
            name,
            labels: self.metadata.labels,
            service_type: self.spec.type_.unwrap_or_else(|| "ClusterIP".to_owned()),
            load_balancer_ingress,
            ports,
        }
    }
}

impl WirePod {
    pub(crate) fn into_info(self) -> Option<PodInfo> {
        let mut ports: Vec<PodPort> = Vec::new();
        for c in self.spec.containers {
            for p in c.ports {
                if p.container_port != 0 && !ports.iter().any(|q| q.port == p.container_port) {
                    ports.push(PodPort {
                        name: p.name,
                        port: p.container_port,
                    });
                }
            }
        }
        if ports.is_empty() {
            return None;
        }
        let ready = self
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        Some(PodInfo {
            namespace: self.metadata.namespace,
            name: self.metadata.name,
            ready,
            ports,
        })
    }
}

/// Sorts services by namespace, then name; the order every listing uses.
pub fn sort_services(services: &mut [ServiceInfo]) {
    services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slices(json: serde_json::Value) -> EndpointSource {
        let list: List<WireEndpointSlice> = serde_json::from_value(json).unwrap();
        EndpointSource::Slices(list.items)
    }

    #[test]
    fn slice_readiness_counts_nil_as_ready_and_matches_port_names() {
        let src = slices(serde_json::json!({"items": [
            {"metadata": {"name": "a-1", "namespace": "ns", "labels": {"kubernetes.io/service-name": "a"}},
             "ports": [{"name": "http", "port": 8080}],
             "endpoints": [{"conditions": {"ready": true}}, {"conditions": {}}, {"conditions": {"ready": false}}]},
            {"metadata": {"name": "a-2", "namespace": "ns", "labels": {"kubernetes.io/service-name": "a"}},
             "ports": [{"name": "metrics", "port": 9090}],
             "endpoints": [{"conditions": {"ready": true}}]},
            {"metadata": {"name": "b-1", "namespace": "ns", "labels": {"kubernetes.io/service-name": "b"}},
             "endpoints": [{"conditions": {"ready": true}}]}
        ]}));
        assert_eq!(
            src.readiness("ns", "a", "http"),
            Readiness { ready: 2, total: 3 }
        );
        assert_eq!(
            src.readiness("ns", "a", "metrics"),
            Readiness { ready: 1, total: 1 }
        );
        assert_eq!(src.readiness("ns", "a", ""), Readiness::default());
        // No `ports` list on the slice: it covers every port.
        assert_eq!(
            src.readiness("ns", "b", "anything"),
            Readiness { ready: 1, total: 1 }
        );
        assert_eq!(src.readiness("other", "a", "http"), Readiness::default());
    }

    #[test]
    fn endpoints_readiness_counts_not_ready_addresses() {
        let list: List<WireEndpoints> = serde_json::from_value(serde_json::json!({"items": [
            {"metadata": {"name": "a", "namespace": "ns"},
             "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                          "notReadyAddresses": [{"ip": "10.0.0.3"}],
                          "ports": [{"port": 80}]}]}
        ]}))
        .unwrap();
        let src = EndpointSource::Endpoints(list.items);
        assert_eq!(
            src.readiness("ns", "a", ""),
            Readiness { ready: 2, total: 3 }
        );
        assert_eq!(src.readiness("ns", "a", "http"), Readiness::default());
    }

    #[test]
    fn service_decodes_with_missing_fields_and_load_balancers() {
        let svc: WireService = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns", "labels": {"kubernetes.io/name": "Web"}},
            "spec": {"ports": [{"port": 443}, {"name": "https", "port": 8443, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example"}, {"ip": "1.2.3.4"}]}}
        }))
        .unwrap();
        let info = svc.into_info(None);
        assert_eq!(info.display_name(), "Web");
        assert_eq!(info.service_type, "ClusterIP");
        assert_eq!(info.load_balancer_ingress, ["lb.example", "1.2.3.4"]);
        assert!(info.ports.iter().all(ServicePort::is_https));
        assert_eq!(info.ports[0].protocol, "TCP");
    }

    #[test]
    fn pods_without_ports_are_skipped_and_ports_deduplicated() {
        let pod: WirePod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"ports": [{"containerPort": 80, "name": "http"}]},
                                    {"ports": [{"containerPort": 80}, {"containerPort": 9090}]}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let info = pod.into_info().unwrap();
        assert!(info.ready);
        assert_eq!(
            info.ports.iter().map(|p| p.port).collect::<Vec<_>>(),
            [80, 9090]
        );
        let empty: WirePod =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "q"}})).unwrap();
        assert!(empty.into_info().is_none());
    }
}
