//! Which pods a forward may use now, and which container port each pair reaches on each.
//!
//! Contract:
//!
//! - [`Resolver::new`] reads the workload once and checks the ports as kubectl does before it
//!   forwards anything (kubectl `translateServicePortToTargetPort`, `checkUDPPortInService`,
//!   `convertPodNamedPortToNumber`; its error texts);
//! - [`Resolver::endpoints`] lists the pods usable now. A **service**'s are the ready endpoints
//!   of its EndpointSlices (`kubernetes.io/service-name=<name>`; `conditions.ready` absent counts
//!   as ready, as discovery/v1 says) that are pods (`targetRef.kind: Pod`), and the container
//!   port of each is the slice's port with the service port's name: the endpoints controller
//!   has already resolved a named `targetPort` per pod, which kubectl redoes for the one pod it
//!   picks. A **deployment**'s are the pods its selector matches that are running, ready and
//!   not being deleted, a named port looked up in each pod's containers. A **pod** is itself
//!   while it is running (ready or not, as kubectl).
//!
//! Every read is one `GET` through the caller's authenticated client.

use std::collections::BTreeMap;
use std::time::Duration;

use http::StatusCode;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::target::{Kind, LocalPort, PortPair, RemotePort, Workload};

/// Characters escaped in a query value (a label selector).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');

/// A pod a forward may use, and the container port each pair reaches on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The pod's name.
    pub pod: String,
    /// Per pair, in order: the port in the pod.
    pub ports: Vec<u16>,
}

/// Why the workload cannot be forwarded to.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    /// The workload does not exist.
    #[error("{resource} \"{name}\" not found in namespace {namespace:?}")]
    NotFound {
        /// `pods`, `services`, `deployments.apps`.
        resource: &'static str,
        /// Its name.
        name: String,
        /// Its namespace.
        namespace: String,
    },
    /// RBAC said no.
    #[error("the API server refused: {0}")]
    Forbidden(String),
    /// A port that the workload does not have, or UDP (kubectl's words).
    #[error("{0}")]
    Port(String),
    /// A pod that is not running (kubectl's words).
    #[error("unable to forward port because pod is not running. Current status={0}")]
    NotRunning(String),
    /// A service whose endpoints are not pods.
    #[error(
        "service {0} has no selector, so its endpoints are not pods; port-forward reaches pods \
         only (forward to a pod with pod/NAME)"
    )]
    NotPods(String),
    /// No pod was usable within the wait.
    #[error(
        "no ready pod behind {workload} after {waited:?}; check `kubectl get pods -n {namespace}` \
         (or raise --pod-running-timeout)"
    )]
    NoPods {
        /// The workload.
        workload: String,
        /// Its namespace.
        namespace: String,
        /// How long kgate waited.
        waited: Duration,
    },
    /// The API server could not be asked, or answered nonsense.
    #[error("{0}")]
    Api(String),
}

/// How one pair's remote port is found on a pod.
#[derive(Debug, Clone)]
enum Rule {
    /// This number on every pod.
    Number(u16),
    /// The container port of this name (pods, deployments).
    ContainerName(String),
    /// The EndpointSlice port of this service port name (services).
    SlicePort(String),
}

/// A workload's pods, read on demand; see the module contract.
#[derive(Debug, Clone)]
pub struct Resolver {
    client: auth::ApiClient,
    workload: Workload,
    rules: Vec<Rule>,
    /// The deployment's label selector, URL-encoded.
    selector: Option<String>,
    /// Per pair, the local port to listen on, where the workload decides it (`Same` with a
    /// service port: the service port's number).
    fixed_local: Vec<Option<u16>>,
}

impl Resolver {
    /// Reads the workload and checks `pairs` against it.
    pub async fn new(
        client: auth::ApiClient,
        workload: Workload,
        pairs: &[PortPair],
    ) -> Result<Resolver, ResolveError> {
        let ns = &workload.namespace;
        let name = &workload.name;
        let mut selector = None;
        let (rules, fixed_local) = match workload.kind {
            Kind::Service => {
                let path = format!("/api/v1/namespaces/{ns}/services/{name}");
                let svc: WireService = get(&client, &path, &workload).await?;
                if svc.spec.selector.is_empty() {
                    return Err(ResolveError::NotPods(workload.to_string()));
                }
                service_rules(&svc, name, pairs)?
            }
            Kind::Pod => {
                let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
                let pod: WirePod = get(&client, &path, &workload).await?;
                if pod.status.phase != "Running" {
                    return Err(ResolveError::NotRunning(pod.status.phase));
                }
                pod_rules(&pod, pairs)?
            }
            Kind::Deployment => {
                let path = format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}");
                let deploy: WireDeployment = get(&client, &path, &workload).await?;
                let text = deploy.spec.selector.to_selector().ok_or_else(|| {
                    ResolveError::Api(format!("deployment {name} has an empty selector"))
                })?;
                selector = Some(utf8_percent_encode(&text, QUERY_VALUE).to_string());
                pairs
                    .iter()
                    .map(|p| match &p.remote {
                        RemotePort::Number(n) => (Rule::Number(*n), None),
                        RemotePort::Name(port) => (Rule::ContainerName(port.clone()), None),
                    })
                    .unzip()
            }
        };
        Ok(Resolver {
            client,
            workload,
            rules,
            selector,
            fixed_local,
        })
    }

    /// The workload.
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// The local port pair `index` listens on, given the port it reaches on a pod: the number
    /// asked for, else (no `LOCAL:`) the service port's number or the remote number.
    pub fn local_port(&self, index: usize, pair: &PortPair, remote: u16) -> u16 {
        match pair.local {
            LocalPort::Port(port) => port,
            LocalPort::Same => self
                .fixed_local
                .get(index)
                .copied()
                .flatten()
                .unwrap_or(remote),
        }
    }

    /// The pods usable now; see the module contract.
    pub async fn endpoints(&self) -> Result<Vec<Endpoint>, ResolveError> {
        let ns = &self.workload.namespace;
        let name = &self.workload.name;
        match self.workload.kind {
            Kind::Service => {
                let selector = format!("kubernetes.io/service-name={name}");
                let selector = utf8_percent_encode(&selector, QUERY_VALUE);
                let path = format!(
                    "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector={selector}"
                );
                let slices: WireList<WireSlice> = get(&self.client, &path, &self.workload).await?;
                Ok(slice_endpoints(&slices.items, &self.rules))
            }
            Kind::Pod => {
                let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
                match get::<WirePod>(&self.client, &path, &self.workload).await {
                    Ok(pod) if pod.status.phase == "Running" => {
                        Ok(pod_endpoint(&pod, &self.rules).into_iter().collect())
                    }
                    Ok(_) | Err(ResolveError::NotFound { .. }) => Ok(Vec::new()),
                    Err(other) => Err(other),
                }
            }
            Kind::Deployment => {
                let selector = self.selector.as_deref().unwrap_or_default();
                let path = format!("/api/v1/namespaces/{ns}/pods?labelSelector={selector}");
                let pods: WireList<WirePod> = get(&self.client, &path, &self.workload).await?;
                let mut ready: Vec<Endpoint> = pods
                    .items
                    .iter()
                    .filter(|p| p.is_ready())
                    .filter_map(|p| pod_endpoint(p, &self.rules))
                    .collect();
                ready.sort_by(|a, b| a.pod.cmp(&b.pod));
                Ok(ready)
            }
        }
    }

    /// [`Resolver::endpoints`], waiting up to `limit` for at least one.
    pub async fn wait_for_endpoints(&self, limit: Duration) -> Result<Vec<Endpoint>, ResolveError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let found = self.endpoints().await?;
            if !found.is_empty() {
                return Ok(found);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ResolveError::NoPods {
                    workload: self.workload.to_string(),
                    namespace: self.workload.namespace.clone(),
                    waited: limit,
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// One `GET`, its failures as [`ResolveError`]s.
async fn get<T: serde::de::DeserializeOwned>(
    client: &auth::ApiClient,
    path: &str,
    workload: &Workload,
) -> Result<T, ResolveError> {
    client.get_json(path).await.map_err(|err| match err {
        auth::SendError::Status {
            status: StatusCode::NOT_FOUND,
            ..
        } => ResolveError::NotFound {
            resource: workload.kind.resource(),
            name: workload.name.clone(),
            namespace: workload.namespace.clone(),
        },
        auth::SendError::Status {
            status: StatusCode::FORBIDDEN,
            message,
            ..
        } => ResolveError::Forbidden(message),
        other => ResolveError::Api(other.to_string()),
    })
}

/// A service's rules and fixed local ports, with kubectl's checks and wording.
fn service_rules(
    svc: &WireService,
    name: &str,
    pairs: &[PortPair],
) -> Result<(Vec<Rule>, Vec<Option<u16>>), ResolveError> {
    let mut rules = Vec::new();
    let mut locals = Vec::new();
    for pair in pairs {
        let port = match &pair.remote {
            RemotePort::Number(n) => {
                svc.spec
                    .ports
                    .iter()
                    .find(|p| p.port == *n)
                    .ok_or_else(|| {
                        ResolveError::Port(format!(
                            "Service {name} does not have a service port {n}"
                        ))
                    })?
            }
            RemotePort::Name(wanted) => svc
                .spec
                .ports
                .iter()
                .find(|p| &p.name == wanted)
                .ok_or_else(|| {
                    ResolveError::Port(format!(
                        "Service '{name}' does not have a named port '{wanted}'"
                    ))
                })?,
        };
        // Only a port that is UDP and not also TCP is refused (`checkUDPPortInService`).
        let tcp_too = svc
            .spec
            .ports
            .iter()
            .any(|p| p.port == port.port && p.protocol() == "TCP");
        if port.protocol() == "UDP" && !tcp_too {
            return Err(ResolveError::Port(format!(
                "UDP protocol is not supported for {}",
                pair.remote
            )));
        }
        rules.push(Rule::SlicePort(port.name.clone()));
        locals.push(Some(port.port));
    }
    Ok((rules, locals))
}

/// A pod's rules: numbers as given, names looked up now (kubectl's wording when absent).
fn pod_rules(
    pod: &WirePod,
    pairs: &[PortPair],
) -> Result<(Vec<Rule>, Vec<Option<u16>>), ResolveError> {
    let mut rules = Vec::new();
    for pair in pairs {
        let number = match &pair.remote {
            RemotePort::Number(n) => *n,
            RemotePort::Name(wanted) => pod.container_port(wanted).ok_or_else(|| {
                ResolveError::Port(format!(
                    "Pod '{}' does not have a named port '{wanted}'",
                    pod.metadata.name
                ))
            })?,
        };
        let udp_only = pod
            .ports()
            .any(|p| p.container_port == number && p.protocol() == "UDP")
            && !pod
                .ports()
                .any(|p| p.container_port == number && p.protocol() == "TCP");
        if udp_only {
            return Err(ResolveError::Port(format!(
                "UDP protocol is not supported for {}",
                pair.remote
            )));
        }
        rules.push(Rule::Number(number));
    }
    let locals = vec![None; rules.len()];
    Ok((rules, locals))
}

fn slice_endpoints(slices: &[WireSlice], rules: &[Rule]) -> Vec<Endpoint> {
    let mut found: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for slice in slices {
        let ports: Option<Vec<u16>> = rules
            .iter()
            .map(|rule| match rule {
                Rule::SlicePort(name) => slice
                    .ports
                    .iter()
                    .find(|p| p.name.as_deref().unwrap_or_default() == name)
                    .and_then(|p| p.port),
                Rule::Number(n) => Some(*n),
                Rule::ContainerName(_) => None,
            })
            .collect();
        let Some(ports) = ports else { continue };
        for endpoint in &slice.endpoints {
            let ready = endpoint.conditions.ready != Some(false)
                && endpoint.conditions.terminating != Some(true);
            let pod = endpoint
                .target_ref
                .as_ref()
                .filter(|t| t.kind == "Pod")
                .map(|t| t.name.clone());
            if let (true, Some(pod)) = (ready, pod) {
                // Dual-stack services list each pod once per address family.
                found.entry(pod).or_insert_with(|| ports.clone());
            }
        }
    }
    found
        .into_iter()
        .map(|(pod, ports)| Endpoint { pod, ports })
        .collect()
}

fn pod_endpoint(pod: &WirePod, rules: &[Rule]) -> Option<Endpoint> {
    let ports = rules
        .iter()
        .map(|rule| match rule {
            Rule::Number(n) => Some(*n),
            Rule::ContainerName(name) => pod.container_port(name),
            Rule::SlicePort(_) => None,
        })
        .collect::<Option<Vec<u16>>>()?;
    Some(Endpoint {
        pod: pod.metadata.name.clone(),
        ports,
    })
}

// ---- wire types: only what is read; every field optional ------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireList<T> {
    items: Vec<T>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireMeta {
    name: String,
    #[serde(rename = "deletionTimestamp")]
    deletion_timestamp: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireService {
    spec: WireServiceSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireServiceSpec {
    ports: Vec<WireServicePort>,
    selector: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireServicePort {
    name: String,
    port: u16,
    protocol: Option<String>,
}

impl WireServicePort {
    fn protocol(&self) -> &str {
        self.protocol.as_deref().unwrap_or("TCP")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireSlice {
    endpoints: Vec<WireSliceEndpoint>,
    ports: Vec<WireSlicePort>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireSliceEndpoint {
    conditions: WireConditions,
    #[serde(rename = "targetRef")]
    target_ref: Option<WireRef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireConditions {
    ready: Option<bool>,
    terminating: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireRef {
    kind: String,
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireSlicePort {
    name: Option<String>,
    port: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WirePod {
    metadata: WireMeta,
    spec: WirePodSpec,
    status: WirePodStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WirePodSpec {
    containers: Vec<WireContainer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireContainer {
    ports: Vec<WireContainerPort>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireContainerPort {
    name: String,
    #[serde(rename = "containerPort")]
    container_port: u16,
    protocol: Option<String>,
}

impl WireContainerPort {
    fn protocol(&self) -> &str {
        self.protocol.as_deref().unwrap_or("TCP")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WirePodStatus {
    phase: String,
    conditions: Vec<WireCondition>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireCondition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
}

impl WirePod {
    fn ports(&self) -> impl Iterator<Item = &WireContainerPort> {
        self.spec.containers.iter().flat_map(|c| c.ports.iter())
    }

    /// `LookupContainerPortNumberByName`: the first container port with that name.
    fn container_port(&self, name: &str) -> Option<u16> {
        self.ports()
            .find(|p| p.name == name)
            .map(|p| p.container_port)
    }

    fn is_ready(&self) -> bool {
        self.status.phase == "Running"
            && self.metadata.deletion_timestamp.is_none()
            && self
                .status
                .conditions
                .iter()
                .any(|c| c.kind == "Ready" && c.status == "True")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireDeployment {
    spec: WireDeploymentSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireDeploymentSpec {
    selector: WireSelector,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireSelector {
    #[serde(rename = "matchLabels")]
    match_labels: BTreeMap<String, String>,
    #[serde(rename = "matchExpressions")]
    match_expressions: Vec<WireRequirement>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireRequirement {
    key: String,
    operator: String,
    values: Vec<String>,
}

impl WireSelector {
    /// The label selector text (`metav1.LabelSelectorAsSelector`); `None` when empty or when
    /// an operator is unknown.
    fn to_selector(&self) -> Option<String> {
        let mut terms: Vec<String> = self
            .match_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for req in &self.match_expressions {
            let values = req.values.join(",");
            terms.push(match req.operator.as_str() {
                "In" => format!("{} in ({values})", req.key),
                "NotIn" => format!("{} notin ({values})", req.key),
                "Exists" => req.key.clone(),
                "DoesNotExist" => format!("!{}", req.key),
                _ => return None,
            });
        }
        (!terms.is_empty()).then(|| terms.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(local: LocalPort, remote: RemotePort) -> PortPair {
        PortPair { local, remote }
    }

    fn service(json: serde_json::Value) -> WireService {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_service_port_is_found_by_number_or_name_with_kubectls_errors() {
        let svc = service(
            serde_json::json!({"spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": "web"},
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "metrics", "port": 9090, "protocol": "TCP"},
            ]}}),
        );
        let (rules, locals) = service_rules(
            &svc,
            "web",
            &[
                pair(LocalPort::Same, RemotePort::Name("http".into())),
                pair(LocalPort::Port(0), RemotePort::Number(9090)),
            ],
        )
        .unwrap();
        assert!(matches!(&rules[0], Rule::SlicePort(n) if n == "http"));
        assert_eq!(locals, vec![Some(80), Some(9090)]);
        let err = |remote| {
            service_rules(&svc, "web", &[pair(LocalPort::Same, remote)])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(RemotePort::Number(81)),
            "Service web does not have a service port 81"
        );
        assert_eq!(
            err(RemotePort::Name("grpc".into())),
            "Service 'web' does not have a named port 'grpc'"
        );
        assert_eq!(
            err(RemotePort::Number(53)),
            "UDP protocol is not supported for 53"
        );
    }

    #[test]
    fn slices_give_ready_pods_and_the_port_per_slice() {
        let slices: WireList<WireSlice> = serde_json::from_value(serde_json::json!({"items": [
            {"ports": [{"name": "http", "port": 8080}], "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "web-a"}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false}, "targetRef": {"kind": "Pod", "name": "web-b"}},
                {"addresses": ["10.0.0.3"], "conditions": {}, "targetRef": {"kind": "Pod", "name": "web-c"}},
                {"addresses": ["10.0.0.4"], "conditions": {"ready": true}},
            ]},
            // A pod whose named targetPort resolves to another number is in another slice.
            {"ports": [{"name": "http", "port": 8081}], "endpoints": [
                {"addresses": ["10.0.0.5"], "targetRef": {"kind": "Pod", "name": "web-d"}},
            ]},
            // The IPv6 slice of a dual-stack service repeats the pods.
            {"ports": [{"name": "http", "port": 8080}], "endpoints": [
                {"addresses": ["fd00::1"], "targetRef": {"kind": "Pod", "name": "web-a"}},
            ]},
            {"ports": [{"name": "other", "port": 1}], "endpoints": [
                {"addresses": ["10.0.0.9"], "targetRef": {"kind": "Pod", "name": "web-z"}},
            ]},
        ]}))
        .unwrap();
        let found = slice_endpoints(&slices.items, &[Rule::SlicePort("http".into())]);
        let pods: Vec<(&str, u16)> = found.iter().map(|e| (e.pod.as_str(), e.ports[0])).collect();
        assert_eq!(pods, [("web-a", 8080), ("web-c", 8080), ("web-d", 8081)]);
    }

    #[test]
    fn pods_resolve_named_ports_and_only_ready_ones_serve_a_deployment() {
        let pod: WirePod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-a"},
            "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]},
                                    {"ports": [{"name": "syslog", "containerPort": 514, "protocol": "UDP"}]}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap();
        assert!(pod.is_ready());
        let (rules, _) = pod_rules(
            &pod,
            &[pair(LocalPort::Same, RemotePort::Name("http".into()))],
        )
        .unwrap();
        assert_eq!(pod_endpoint(&pod, &rules).unwrap().ports, [8080]);
        let err = pod_rules(
            &pod,
            &[pair(LocalPort::Same, RemotePort::Name("grpc".into()))],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "Pod 'web-a' does not have a named port 'grpc'");
        let err = pod_rules(&pod, &[pair(LocalPort::Same, RemotePort::Number(514))])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "UDP protocol is not supported for 514");
        let deleting: WirePod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-b", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap();
        assert!(!deleting.is_ready());
    }

    #[test]
    fn deployment_selectors_read_as_label_selectors() {
        let sel: WireSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "web", "tier": "front"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["a", "b"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }))
        .unwrap();
        assert_eq!(
            sel.to_selector().unwrap(),
            "app=web,tier=front,env in (a,b),!canary"
        );
        assert_eq!(WireSelector::default().to_selector(), None);
        assert_eq!(
            utf8_percent_encode("env in (a,b),!x", QUERY_VALUE).to_string(),
            "env%20in%20%28a%2Cb%29%2C%21x"
        );
    }
}
