//! The cluster's objects: namespaces, services with their Endpoints and EndpointSlices, the pods
//! behind them and one node, rendered as the API server's JSON (items of a list carry no
//! `kind`/`apiVersion`, as Go's typed lists serialise).
//!
//! Each service with endpoints is backed by its pods (replicas), one endpoint address each, whose
//! container ports are the endpoint ports, so the Endpoints `targetRef` check of the service
//! proxy (kubernetes `pkg/registry/core/service/storage/storage.go` `isValidAddress`) holds. The
//! replicas of one service listen on the same port at different loopback addresses, as pods
//! listen on the same container port at different pod IPs.

use std::net::IpAddr;

use serde_json::{Value, json};

/// One `spec.ports` entry and the endpoint port it leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortSpec {
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) protocol: &'static str,
    /// The port the endpoint really listens on.
    pub(crate) target: u16,
}

/// One pod behind a service: its endpoint address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Replica {
    /// The pod's name (`<service>-<suffix>`).
    pub(crate) pod: String,
    /// The pod IP: where its containers listen.
    pub(crate) ip: IpAddr,
    pub(crate) ready: bool,
}

/// A service, its endpoints and the pods behind them.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) ports: Vec<PortSpec>,
    pub(crate) cluster_ip: String,
    /// The pods; empty: an Endpoints object with no subsets.
    pub(crate) replicas: Vec<Replica>,
    /// Whether the endpoint addresses point at a pod (`targetRef`); the `kubernetes` service's
    /// do not, as in a real cluster.
    pub(crate) has_pod: bool,
    pub(crate) resource_version: u64,
}

impl Service {
    /// The name of the service's `n`-th pod (the first keeps the name it always had).
    pub(crate) fn pod_name(&self, n: usize) -> String {
        let seed = if n == 0 {
            format!("{}/{}", self.namespace, self.name)
        } else {
            format!("{}/{}/{n}", self.namespace, self.name)
        };
        format!("{}-{}", self.name, name_suffix(&seed))
    }

    /// The ready pods, which the service proxy and port-forward choose from.
    pub(crate) fn ready_replicas(&self) -> impl Iterator<Item = &Replica> {
        self.replicas.iter().filter(|r| r.ready)
    }
}

/// A namespace.
#[derive(Debug, Clone)]
pub(crate) struct Namespace {
    pub(crate) name: String,
    pub(crate) resource_version: u64,
}

/// An `Opaque` Secret: what a page must never read through a user's proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Secret {
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// Keys and their values, before base64.
    pub(crate) data: Vec<(String, String)>,
    pub(crate) resource_version: u64,
}

/// Everything the API serves.
#[derive(Debug, Clone)]
pub(crate) struct ClusterState {
    pub(crate) namespaces: Vec<Namespace>,
    pub(crate) services: Vec<Service>,
    pub(crate) secrets: Vec<Secret>,
    pub(crate) resource_version: u64,
    pub(crate) node_name: String,
    pub(crate) kubelet_port: u16,
    pub(crate) created: jiff::Timestamp,
}

/// A stable, pod-name-like suffix (`7d9f8c6b5-x2k4q`) from a string.
fn name_suffix(seed: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut out = String::new();
    for i in 0..15 {
        if i == 9 {
            out.push('-');
            continue;
        }
        let idx = usize::try_from(h % ALPHABET.len() as u64).unwrap_or(0);
        out.push(char::from(ALPHABET[idx]));
        h = h.rotate_right(7).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64);
    }
    out
}

/// The one container of a service's pods: named as the service, its container ports the
/// endpoint ports.
fn container_json(svc: &Service) -> Value {
    let ports: Vec<Value> = svc
        .ports
        .iter()
        .map(|p| {
            let mut v = json!({"containerPort": p.target, "protocol": p.protocol});
            if !p.name.is_empty() {
                v["name"] = json!(p.name);
            }
            v
        })
        .collect();
    json!({"name": svc.name, "image": format!("simcluster/{}:latest", svc.name), "ports": ports})
}

/// A stable UID-shaped string for an object.
pub(crate) fn uid(kind: &str, namespace: &str, name: &str) -> String {
    let s = name_suffix(&format!("{kind}/{namespace}/{name}"));
    let hex: String = s
        .bytes()
        .chain(name_suffix(&format!("{name}/{namespace}/{kind}")).bytes())
        .map(|b| format!("{:x}", b % 16))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &format!("{hex}{hex}")[20..32]
    )
}

fn labels_json(labels: &[(String, String)]) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

impl ClusterState {
    fn ts(&self) -> String {
        self.created.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    fn meta(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        rv: u64,
        labels: &[(String, String)],
    ) -> Value {
        let mut meta = json!({
            "name": name,
            "uid": uid(kind, namespace, name),
            "resourceVersion": rv.to_string(),
            "creationTimestamp": self.ts(),
        });
        if !namespace.is_empty() {
            meta["namespace"] = json!(namespace);
        }
        if !labels.is_empty() {
            meta["labels"] = labels_json(labels);
        }
        meta
    }

    pub(crate) fn secret_json(&self, secret: &Secret) -> Value {
        use base64::Engine as _;
        let data: serde_json::Map<String, Value> = secret
            .data
            .iter()
            .map(|(k, v)| {
                let encoded = base64::engine::general_purpose::STANDARD.encode(v);
                (k.clone(), json!(encoded))
            })
            .collect();
        json!({
            "metadata": self.meta("Secret", &secret.namespace, &secret.name,
                secret.resource_version, &[]),
            "type": "Opaque",
            "data": data,
        })
    }

    /// Adds or replaces the secret `namespace/name`, creating the namespace if needed.
    pub(crate) fn upsert_secret(&mut self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        self.ensure_namespace(namespace);
        self.resource_version += 1;
        let secret = Secret {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            data: data
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            resource_version: self.resource_version,
        };
        self.secrets
            .retain(|s| !(s.namespace == namespace && s.name == name));
        self.secrets.push(secret);
        self.secrets
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    }

    pub(crate) fn namespace_json(&self, ns: &Namespace) -> Value {
        json!({
            "metadata": self.meta("Namespace", "", &ns.name, ns.resource_version,
                &[("kubernetes.io/metadata.name".to_owned(), ns.name.clone())]),
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        })
    }

    pub(crate) fn service_json(&self, svc: &Service) -> Value {
        let ports: Vec<Value> = svc
            .ports
            .iter()
            .map(|p| {
                let mut v = json!({"protocol": p.protocol, "port": p.port, "targetPort": p.target});
                if !p.name.is_empty() {
                    v["name"] = json!(p.name);
                }
                v
            })
            .collect();
        let mut spec = json!({
            "ports": ports,
            "clusterIP": svc.cluster_ip,
            "clusterIPs": [svc.cluster_ip],
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        });
        if svc.has_pod {
            spec["selector"] = json!({"app": svc.name});
        }
        json!({
            "metadata": self.meta("Service", &svc.namespace, &svc.name, svc.resource_version, &svc.labels),
            "spec": spec,
            "status": {"loadBalancer": {}},
        })
    }

    fn address_json(&self, svc: &Service, replica: &Replica) -> Value {
        let mut addr = json!({"ip": replica.ip.to_string()});
        if svc.has_pod {
            addr["nodeName"] = json!(self.node_name);
            addr["targetRef"] = json!({
                "kind": "Pod",
                "namespace": svc.namespace,
                "name": replica.pod,
                "uid": uid("Pod", &svc.namespace, &replica.pod),
            });
        }
        addr
    }

    pub(crate) fn endpoints_json(&self, svc: &Service) -> Value {
        let mut value = json!({
            "metadata": self.meta("Endpoints", &svc.namespace, &svc.name, svc.resource_version, &svc.labels),
        });
        if !svc.replicas.is_empty() {
            let ports: Vec<Value> = svc
                .ports
                .iter()
                .map(|p| {
                    let mut v = json!({"port": p.target, "protocol": p.protocol});
                    if !p.name.is_empty() {
                        v["name"] = json!(p.name);
                    }
                    v
                })
                .collect();
            let (ready, not_ready): (Vec<&Replica>, Vec<&Replica>) =
                svc.replicas.iter().partition(|r| r.ready);
            let mut subset = json!({ "ports": ports });
            // Go's `omitempty`: an empty list is left out.
            if !ready.is_empty() {
                subset["addresses"] = ready.iter().map(|r| self.address_json(svc, r)).collect();
            }
            if !not_ready.is_empty() {
                subset["notReadyAddresses"] = not_ready
                    .iter()
                    .map(|r| self.address_json(svc, r))
                    .collect();
            }
            value["subsets"] = json!([subset]);
        }
        value
    }

    pub(crate) fn endpoint_slice_name(svc: &Service) -> String {
        format!(
            "{}-{}",
            svc.name,
            &name_suffix(&format!("eps/{}/{}", svc.namespace, svc.name))[10..]
        )
    }

    pub(crate) fn endpoint_slice_json(&self, svc: &Service) -> Value {
        let name = Self::endpoint_slice_name(svc);
        let mut labels = vec![
            (
                "endpointslice.kubernetes.io/managed-by".to_owned(),
                "endpointslice-controller.k8s.io".to_owned(),
            ),
            ("kubernetes.io/service-name".to_owned(), svc.name.clone()),
        ];
        labels.extend(svc.labels.iter().cloned());
        let ports: Vec<Value> = svc
            .ports
            .iter()
            .map(|p| json!({"name": p.name, "port": p.target, "protocol": p.protocol}))
            .collect();
        let endpoints: Vec<Value> = svc
            .replicas
            .iter()
            .map(|replica| {
                let a = self.address_json(svc, replica);
                let mut e = json!({
                    "addresses": [replica.ip.to_string()],
                    "conditions": {"ready": replica.ready, "serving": replica.ready, "terminating": false},
                });
                if let Some(t) = a.get("targetRef") {
                    e["targetRef"] = t.clone();
                    e["nodeName"] = json!(self.node_name);
                }
                e
            })
            .collect();
        json!({
            "metadata": self.meta("EndpointSlice", &svc.namespace, &name, svc.resource_version, &labels),
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": ports,
        })
    }

    /// The deployment that runs a service's pods (one per service whose endpoints are pods,
    /// named as the service, selecting `app=<name>`).
    pub(crate) fn deployment_json(&self, svc: &Service) -> Value {
        let replicas = svc.replicas.len();
        let ready = svc.ready_replicas().count();
        let labels = json!({"app": svc.name});
        json!({
            "metadata": self.meta("Deployment", &svc.namespace, &svc.name, svc.resource_version, &svc.labels),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [container_json(svc)]},
                },
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            },
            "status": {
                "observedGeneration": 1,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
            },
        })
    }

    /// The pods: the replicas of every service whose endpoints point at pods.
    pub(crate) fn pods(&self) -> impl Iterator<Item = (&Service, &Replica)> {
        self.services
            .iter()
            .filter(|s| s.has_pod)
            .flat_map(|s| s.replicas.iter().map(move |r| (s, r)))
    }

    pub(crate) fn pod_json(&self, svc: &Service, replica: &Replica) -> Value {
        let ip = replica.ip.to_string();
        let name = replica.pod.clone();
        let ready = if replica.ready { "True" } else { "False" };
        let ts = self.ts();
        json!({
            "metadata": self.meta("Pod", &svc.namespace, &name, svc.resource_version,
                &[("app".to_owned(), svc.name.clone())]),
            "spec": {
                "containers": [container_json(svc)],
                "nodeName": self.node_name,
                "restartPolicy": "Always",
            },
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": ready, "lastTransitionTime": ts},
                    {"type": "ContainersReady", "status": ready, "lastTransitionTime": ts},
                ],
                "hostIP": "127.0.0.1",
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "startTime": ts,
                "containerStatuses": [{
                    "name": svc.name,
                    "ready": replica.ready,
                    "restartCount": 0,
                    "started": true,
                    "image": format!("simcluster/{}:latest", svc.name),
                    "imageID": "",
                    "state": {"running": {"startedAt": ts}},
                }],
            },
        })
    }

    pub(crate) fn node_json(&self) -> Value {
        let labels = vec![
            ("kubernetes.io/hostname".to_owned(), self.node_name.clone()),
            ("kubernetes.io/os".to_owned(), "linux".to_owned()),
            (
                "node-role.kubernetes.io/control-plane".to_owned(),
                String::new(),
            ),
        ];
        json!({
            "metadata": self.meta("Node", "", &self.node_name, 1, &labels),
            "spec": {"podCIDR": "10.244.0.0/24"},
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": "127.0.0.1"},
                    {"type": "Hostname", "address": self.node_name},
                ],
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "kubelet is posting ready status", "lastHeartbeatTime": self.ts(),
                    "lastTransitionTime": self.ts()}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
                "nodeInfo": {"kubeletVersion": crate::api::GIT_VERSION, "kubeProxyVersion": crate::api::GIT_VERSION,
                    "operatingSystem": "linux", "architecture": "amd64", "containerRuntimeVersion": "containerd://2.0.0",
                    "osImage": "simcluster", "kernelVersion": "6.0.0", "machineID": "", "systemUUID": "", "bootID": ""},
            },
        })
    }

    pub(crate) fn service(&self, namespace: &str, name: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.namespace == namespace && s.name == name)
    }

    pub(crate) fn pod(&self, namespace: &str, name: &str) -> Option<(&Service, &Replica)> {
        self.pods()
            .find(|(s, r)| s.namespace == namespace && r.pod == name)
    }

    pub(crate) fn has_namespace(&self, name: &str) -> bool {
        self.namespaces.iter().any(|n| n.name == name)
    }

    /// Adds the namespace if it is missing.
    pub(crate) fn ensure_namespace(&mut self, name: &str) {
        if !self.has_namespace(name) {
            self.resource_version += 1;
            self.namespaces.push(Namespace {
                name: name.to_owned(),
                resource_version: self.resource_version,
            });
        }
    }

    /// Adds or replaces a service (by namespace and name).
    pub(crate) fn upsert_service(&mut self, mut svc: Service) {
        self.ensure_namespace(&svc.namespace);
        self.resource_version += 1;
        svc.resource_version = self.resource_version;
        if svc.cluster_ip.is_empty() {
            let n = self.services.len() + 10;
            svc.cluster_ip = format!("10.96.{}.{}", n / 250, n % 250 + 1);
        }
        match self
            .services
            .iter_mut()
            .find(|s| s.namespace == svc.namespace && s.name == svc.name)
        {
            Some(existing) => *existing = svc,
            None => self.services.push(svc),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_stable_and_pod_like() {
        let a = name_suffix("demo/shop");
        assert_eq!(a, name_suffix("demo/shop"));
        assert_eq!(a.len(), 15);
        assert_eq!(a.as_bytes()[9], b'-');
        assert_ne!(a, name_suffix("demo/shop2"));
        assert_eq!(uid("Pod", "a", "b").len(), 36);
    }
}
