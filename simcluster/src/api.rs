//! The read API: discovery (`/version`, `/api`, `/apis`, `/api/v1`, the `apps` and
//! `discovery.k8s.io` groups), list and get of namespaces, services, endpoints,
//! EndpointSlices, pods, deployments, nodes and secrets,
//! label and field selectors, and `meta.k8s.io/v1` `Table` output when the client asks for it
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, as `kubectl get` does), with the
//! columns of kubernetes `pkg/printers/internalversion/printers.go`.
//!
//! Watches (`?watch=true`) send the current objects as `ADDED` events and then hold the stream
//! open until `timeoutSeconds` (the objects of this cluster do not change through the API).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::body::{Resp, json as json_resp};
use crate::cluster::ClusterState;
use crate::requestinfo::RequestInfo;
use crate::selector;
use crate::status::Status;

/// The version this API server reports.
pub(crate) const GIT_VERSION: &str = "v1.32.0";

/// A resource this API server lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Namespaces,
    Services,
    Endpoints,
    Pods,
    Nodes,
    EndpointSlices,
    Secrets,
    Deployments,
}

impl Kind {
    fn from(group: &str, resource: &str) -> Option<Self> {
        Some(match (group, resource) {
            ("", "namespaces") => Kind::Namespaces,
            ("", "services") => Kind::Services,
            ("", "endpoints") => Kind::Endpoints,
            ("", "pods") => Kind::Pods,
            ("", "nodes") => Kind::Nodes,
            ("", "secrets") => Kind::Secrets,
            ("discovery.k8s.io", "endpointslices") => Kind::EndpointSlices,
            ("apps", "deployments") => Kind::Deployments,
            _ => return None,
        })
    }

    fn kind(self) -> &'static str {
        match self {
            Kind::Namespaces => "Namespace",
            Kind::Services => "Service",
            Kind::Endpoints => "Endpoints",
            Kind::Pods => "Pod",
            Kind::Nodes => "Node",
            Kind::EndpointSlices => "EndpointSlice",
            Kind::Secrets => "Secret",
            Kind::Deployments => "Deployment",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Kind::EndpointSlices => "discovery.k8s.io/v1",
            Kind::Deployments => "apps/v1",
            _ => "v1",
        }
    }

    fn namespaced(self) -> bool {
        !matches!(self, Kind::Namespaces | Kind::Nodes)
    }
}

pub(crate) fn version_json() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn resource(
    name: &str,
    singular: &str,
    namespaced: bool,
    kind: &str,
    verbs: &[&str],
    short: &[&str],
    all: bool,
) -> Value {
    let mut v = json!({
        "name": name, "singularName": singular, "namespaced": namespaced, "kind": kind, "verbs": verbs,
    });
    if !short.is_empty() {
        v["shortNames"] = json!(short);
    }
    if all {
        v["categories"] = json!(["all"]);
    }
    v
}

/// The verbs of a `proxy` subresource (its `ConnectMethods`, as the installer maps them).
const PROXY_VERBS: [&str; 5] = ["create", "delete", "get", "patch", "update"];
const READ_VERBS: [&str; 3] = ["get", "list", "watch"];

fn core_v1_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            resource("endpoints", "endpoints", true, "Endpoints", &READ_VERBS, &["ep"], false),
            resource("namespaces", "namespace", false, "Namespace", &READ_VERBS, &["ns"], false),
            resource("nodes", "node", false, "Node", &READ_VERBS, &["no"], false),
            resource("nodes/proxy", "", false, "NodeProxyOptions", &PROXY_VERBS, &[], false),
            resource("pods", "pod", true, "Pod", &READ_VERBS, &["po"], true),
            resource("pods/portforward", "", true, "PodPortForwardOptions", &["create", "get"], &[], false),
            resource("pods/proxy", "", true, "PodProxyOptions", &PROXY_VERBS, &[], false),
            resource("secrets", "secret", true, "Secret", &READ_VERBS, &[], false),
            resource("services", "service", true, "Service", &READ_VERBS, &["svc"], true),
            resource("services/proxy", "", true, "ServiceProxyOptions", &PROXY_VERBS, &[], false),
        ],
    })
}

/// An API group with one version, `v1`, as `/apis` lists it.
fn group(name: &str) -> Value {
    let version = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
    json!({"name": name, "versions": [version], "preferredVersion": version})
}

/// Discovery documents; `None` when `path` is not one.
pub(crate) fn discovery(path: &str, server_addr: &str) -> Option<Value> {
    let path = path.trim_end_matches('/');
    Some(match path {
        "/version" => version_json(),
        "/api" => json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_addr}],
        }),
        "/apis" => json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [group("apps"), group("discovery.k8s.io")],
        }),
        "/api/v1" => core_v1_resources(),
        "/apis/discovery.k8s.io" | "/apis/apps" => {
            let mut g = group(&path["/apis/".len()..]);
            g["kind"] = json!("APIGroup");
            g["apiVersion"] = json!("v1");
            g
        }
        "/apis/apps/v1" => json!({
            "kind": "APIResourceList",
            "groupVersion": "apps/v1",
            "resources": [resource("deployments", "deployment", true, "Deployment", &READ_VERBS, &["deploy"], true)],
        }),
        "/apis/discovery.k8s.io/v1" => json!({
            "kind": "APIResourceList",
            "groupVersion": "discovery.k8s.io/v1",
            "resources": [resource("endpointslices", "endpointslice", true, "EndpointSlice", &READ_VERBS, &[], false)],
        }),
        _ => return None,
    })
}

fn labels_of(item: &Value) -> BTreeMap<String, String> {
    item["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn items(state: &ClusterState, kind: Kind, namespace: &str) -> Vec<Value> {
    let in_ns = |ns: &str| namespace.is_empty() || ns == namespace;
    match kind {
        Kind::Namespaces => state
            .namespaces
            .iter()
            .map(|n| state.namespace_json(n))
            .collect(),
        Kind::Nodes => vec![state.node_json()],
        Kind::Services => state
            .services
            .iter()
            .filter(|s| in_ns(&s.namespace))
            .map(|s| state.service_json(s))
            .collect(),
        Kind::Endpoints => state
            .services
            .iter()
            .filter(|s| in_ns(&s.namespace))
            .map(|s| state.endpoints_json(s))
            .collect(),
        Kind::EndpointSlices => state
            .services
            .iter()
            .filter(|s| in_ns(&s.namespace))
            .map(|s| state.endpoint_slice_json(s))
            .collect(),
        Kind::Pods => state
            .pods()
            .filter(|(s, _)| in_ns(&s.namespace))
            .map(|(s, r)| state.pod_json(s, r))
            .collect(),
        Kind::Secrets => state
            .secrets
            .iter()
            .filter(|s| in_ns(&s.namespace))
            .map(|s| state.secret_json(s))
            .collect(),
        Kind::Deployments => state
            .services
            .iter()
            .filter(|s| s.has_pod && in_ns(&s.namespace))
            .map(|s| state.deployment_json(s))
            .collect(),
    }
}

/// Query parameters, decoded.
fn query_params(query: Option<&str>) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Serves a resource request (list, get or watch) from the cluster state.
pub(crate) fn serve(
    state: &ClusterState,
    info: &RequestInfo,
    query: Option<&str>,
    accept: &str,
) -> Resp {
    let Selected {
        kind,
        items: all,
        params,
    } = match select(state, info, query) {
        Ok(selected) => selected,
        Err(refusal) => return *refusal,
    };
    let wants_table = accept.split(',').any(|a| a.contains("as=Table"));
    if info.verb == "get" {
        let Some(item) = all
            .into_iter()
            .find(|i| i["metadata"]["name"] == info.name.as_str())
        else {
            return Status::not_found(&info.api_group, &info.resource, &info.name).into_response();
        };
        if wants_table {
            return json_resp(200, &table(kind, &[item], state.resource_version, &params));
        }
        let mut item = item;
        if let Some(obj) = item.as_object_mut() {
            let mut typed = serde_json::Map::new();
            typed.insert("kind".to_owned(), json!(kind.kind()));
            typed.insert("apiVersion".to_owned(), json!(kind.api_version()));
            typed.extend(std::mem::take(obj));
            *obj = typed;
        }
        return json_resp(200, &item);
    }
    if info.verb == "watch" {
        return watch(kind, all, &params);
    }
    if wants_table {
        return json_resp(200, &table(kind, &all, state.resource_version, &params));
    }
    json_resp(
        200,
        &json!({
            "kind": format!("{}List", kind.kind()),
            "apiVersion": kind.api_version(),
            "metadata": {"resourceVersion": state.resource_version.to_string()},
            "items": all,
        }),
    )
}

/// What a request names: the kind, the objects (after its selectors) and its parameters.
struct Selected {
    kind: Kind,
    items: Vec<Value>,
    params: BTreeMap<String, String>,
}

/// The objects a request names, after its selectors: or the refusal to name any.
fn select(
    state: &ClusterState,
    info: &RequestInfo,
    query: Option<&str>,
) -> Result<Selected, Box<Resp>> {
    let Some(kind) = Kind::from(&info.api_group, &info.resource) else {
        return Err(Box::new(Status::path_not_found().into_response()));
    };
    if !info.subresource.is_empty() || info.parts.len() > 2 {
        return Err(Box::new(Status::path_not_found().into_response()));
    }
    if !matches!(info.verb.as_str(), "get" | "list" | "watch") {
        return Err(Box::new(
            Status::method_not_supported(&info.api_group, &info.resource, &info.verb)
                .into_response(),
        ));
    }
    let params = query_params(query);
    // A namespaced path for a cluster-scoped kind is not routed.
    if !kind.namespaced() && !info.namespace.is_empty() && kind != Kind::Namespaces {
        return Err(Box::new(Status::path_not_found().into_response()));
    }
    let namespace = if kind == Kind::Namespaces {
        ""
    } else {
        info.namespace.as_str()
    };
    let mut all = items(state, kind, namespace);
    if info.verb == "get" {
        return Ok(Selected {
            kind,
            items: all,
            params,
        });
    }
    if let Some(sel) = params.get("labelSelector") {
        match selector::parse_labels(sel) {
            Ok(reqs) => all.retain(|i| selector::matches(&reqs, &labels_of(i))),
            Err(msg) => return Err(Box::new(Status::bad_request(msg).into_response())),
        }
    }
    if let Some(sel) = params.get("fieldSelector") {
        match selector::parse_fields(sel) {
            Ok(terms) => all.retain(|i| {
                terms.iter().all(|(field, value, eq)| {
                    let key = if field == "metadata.name" {
                        "name"
                    } else {
                        "namespace"
                    };
                    let have = i["metadata"][key].as_str().unwrap_or_default();
                    (have == value) == *eq
                })
            }),
            Err(msg) => return Err(Box::new(Status::bad_request(msg).into_response())),
        }
    }
    Ok(Selected {
        kind,
        items: all,
        params,
    })
}

/// The `ADDED` events of a watch's initial objects, one JSON document each (with the
/// newline the JSON serializer ends each with).
fn added_events(kind: Kind, items: Vec<Value>) -> Vec<String> {
    items
        .into_iter()
        .map(|mut item| {
            item["kind"] = json!(kind.kind());
            item["apiVersion"] = json!(kind.api_version());
            let mut event = json!({"type": "ADDED", "object": item}).to_string();
            event.push('\n');
            event
        })
        .collect()
}

/// How long a watch stays open: `timeoutSeconds`, default 30 minutes (within the API server's
/// `--min-request-timeout` range).
fn watch_timeout(params: &BTreeMap<String, String>) -> Duration {
    let seconds = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    Duration::from_secs(seconds)
}

/// A watch: `ADDED` for each current object, then the stream stays open until its timeout.
fn watch(kind: Kind, items: Vec<Value>, params: &BTreeMap<String, String>) -> Resp {
    let timeout = watch_timeout(params);
    let initial = added_events(kind, items).concat();
    let stream = futures_util::stream::once(async move {
        Ok::<_, crate::body::BoxError>(http_body::Frame::data(Bytes::from(initial)))
    })
    .chain(futures_util::stream::once(async move {
        tokio::time::sleep(timeout).await;
        Ok(http_body::Frame::data(Bytes::new()))
    }));
    let body = BodyExt::boxed(http_body_util::StreamBody::new(stream));
    let mut resp = http::Response::new(body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A watch asked for over a WebSocket (`wsstream.IsWebSocketRequest`): the events of
/// [`watch`] as text messages, one per event, as apiserver's `WatchServer.HandleWS` sends
/// them (JSON encodes as text, so `UseTextFraming`); what the client sends is ignored
/// (`wsstream.IgnoreReceives`), and the stream ends when it closes or at the timeout. The
/// handshake is golang.org/x/net/websocket's: version 13 only (else 400 with
/// `Sec-WebSocket-Version: 13`), an `Origin` that parses as a URL (else 403; `checkOrigin`
/// accepts any origin that parses, which is why a web page on any site may open it), at most
/// one subprotocol, echoed.
pub(crate) fn serve_websocket_watch(
    state: &ClusterState,
    info: &RequestInfo,
    query: Option<&str>,
    req: &mut http::Request<hyper::body::Incoming>,
) -> Resp {
    let Selected {
        kind,
        items,
        params,
    } = match select(state, info, query) {
        Ok(selected) => selected,
        Err(refusal) => return *refusal,
    };
    match crate::watchws::handshake(req) {
        Ok(handshake) => {
            crate::watchws::serve(handshake, added_events(kind, items), watch_timeout(&params))
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// `duration.HumanDuration` (apimachinery `pkg/util/duration`), as the printers' AGE column.
pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 120 {
        return format!("{s}s");
    }
    let m = s / 60;
    if m < 10 {
        let rem = s % 60;
        return if rem == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{rem}s")
        };
    }
    if m < 180 {
        return format!("{m}m");
    }
    let h = s / 3600;
    if h < 8 {
        let rem = m % 60;
        return if rem == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{rem}m")
        };
    }
    if h < 48 {
        return format!("{h}h");
    }
    if h < 24 * 8 {
        let rem = h % 24;
        return if rem == 0 {
            format!("{}d", h / 24)
        } else {
            format!("{}d{rem}h", h / 24)
        };
    }
    if h < 24 * 365 * 2 {
        return format!("{}d", h / 24);
    }
    format!("{}y", h / 24 / 365)
}

fn age(item: &Value) -> String {
    let created = item["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    match created {
        Some(t) => {
            let secs = jiff::Timestamp::now().duration_since(t).as_secs().max(0);
            human_duration(Duration::from_secs(secs.unsigned_abs()))
        }
        None => "<unknown>".to_owned(),
    }
}

fn column(name: &str, ty: &str, format: &str, priority: u8) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": "", "priority": priority})
}

/// The `PORT(S)` column of services: `port/protocol`, comma-separated.
fn ports_text(item: &Value) -> String {
    let ports: Vec<String> = item["spec"]["ports"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                .collect()
        })
        .unwrap_or_default();
    if ports.is_empty() {
        "<none>".to_owned()
    } else {
        ports.join(",")
    }
}

fn row_cells(kind: Kind, item: &Value) -> Vec<Value> {
    let name = item["metadata"]["name"].clone();
    match kind {
        Kind::Namespaces => vec![name, item["status"]["phase"].clone(), json!(age(item))],
        Kind::Services => {
            let selector = item["spec"]["selector"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_else(|| "<none>".to_owned());
            vec![
                name,
                item["spec"]["type"].clone(),
                item["spec"]["clusterIP"].clone(),
                json!("<none>"),
                json!(ports_text(item)),
                json!(age(item)),
                json!(selector),
            ]
        }
        Kind::Endpoints => {
            let mut eps = Vec::new();
            for subset in item["subsets"].as_array().into_iter().flatten() {
                for addr in subset["addresses"].as_array().into_iter().flatten() {
                    for port in subset["ports"].as_array().into_iter().flatten() {
                        eps.push(format!(
                            "{}:{}",
                            addr["ip"].as_str().unwrap_or_default(),
                            port["port"]
                        ));
                    }
                }
            }
            let text = if eps.is_empty() {
                "<none>".to_owned()
            } else {
                eps.join(",")
            };
            vec![name, json!(text), json!(age(item))]
        }
        Kind::EndpointSlices => {
            let ports: Vec<String> = item["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p["port"].to_string())
                .collect();
            let addrs: Vec<String> = item["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["addresses"][0].as_str().map(str::to_owned))
                .collect();
            vec![
                name,
                item["addressType"].clone(),
                json!(if ports.is_empty() {
                    "<unset>".to_owned()
                } else {
                    ports.join(",")
                }),
                json!(if addrs.is_empty() {
                    "<unset>".to_owned()
                } else {
                    addrs.join(",")
                }),
                json!(age(item)),
            ]
        }
        Kind::Pods => {
            let ready = item["status"]["containerStatuses"][0]["ready"]
                .as_bool()
                .unwrap_or(false);
            vec![
                name,
                json!(format!("{}/1", u8::from(ready))),
                item["status"]["phase"].clone(),
                json!("0"),
                json!(age(item)),
                item["status"]["podIP"].clone(),
                item["spec"]["nodeName"].clone(),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        Kind::Secrets => vec![
            name,
            item["type"].clone(),
            json!(item["data"].as_object().map_or(0, serde_json::Map::len)),
            json!(age(item)),
        ],
        Kind::Deployments => {
            let status = &item["status"];
            let count = |field: &str| status[field].as_u64().unwrap_or(0);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    count("readyReplicas"),
                    item["spec"]["replicas"]
                )),
                json!(count("updatedReplicas")),
                json!(count("availableReplicas")),
                json!(age(item)),
                item["spec"]["template"]["spec"]["containers"][0]["name"].clone(),
                item["spec"]["template"]["spec"]["containers"][0]["image"].clone(),
                json!(format!(
                    "app={}",
                    item["spec"]["selector"]["matchLabels"]["app"]
                        .as_str()
                        .unwrap_or_default()
                )),
            ]
        }
        Kind::Nodes => vec![
            name,
            json!("Ready"),
            json!("control-plane"),
            json!(age(item)),
            item["status"]["nodeInfo"]["kubeletVersion"].clone(),
        ],
    }
}

fn columns(kind: Kind) -> Vec<Value> {
    let name = column("Name", "string", "name", 0);
    match kind {
        Kind::Namespaces => vec![
            name,
            column("Status", "string", "", 0),
            column("Age", "string", "", 0),
        ],
        Kind::Services => vec![
            name,
            column("Type", "string", "", 0),
            column("Cluster-IP", "string", "", 0),
            column("External-IP", "string", "", 0),
            column("Port(s)", "string", "", 0),
            column("Age", "string", "", 0),
            column("Selector", "string", "", 1),
        ],
        Kind::Endpoints => vec![
            name,
            column("Endpoints", "string", "", 0),
            column("Age", "string", "", 0),
        ],
        Kind::EndpointSlices => vec![
            name,
            column("AddressType", "string", "", 0),
            column("Ports", "string", "", 0),
            column("Endpoints", "string", "", 0),
            column("Age", "string", "", 0),
        ],
        Kind::Pods => vec![
            name,
            column("Ready", "string", "", 0),
            column("Status", "string", "", 0),
            column("Restarts", "string", "", 0),
            column("Age", "string", "", 0),
            column("IP", "string", "", 1),
            column("Node", "string", "", 1),
            column("Nominated Node", "string", "", 1),
            column("Readiness Gates", "string", "", 1),
        ],
        Kind::Secrets => vec![
            name,
            column("Type", "string", "", 0),
            column("Data", "integer", "", 0),
            column("Age", "string", "", 0),
        ],
        Kind::Deployments => vec![
            name,
            column("Ready", "string", "", 0),
            column("Up-to-date", "string", "", 0),
            column("Available", "string", "", 0),
            column("Age", "string", "", 0),
            column("Containers", "string", "", 1),
            column("Images", "string", "", 1),
            column("Selector", "string", "", 1),
        ],
        Kind::Nodes => vec![
            name,
            column("Status", "string", "", 0),
            column("Roles", "string", "", 0),
            column("Age", "string", "", 0),
            column("Version", "string", "", 0),
        ],
    }
}

/// A `meta.k8s.io/v1` Table; rows carry the object as `includeObject` asks (default
/// `Metadata`: a `PartialObjectMetadata`).
fn table(kind: Kind, items: &[Value], rv: u64, params: &BTreeMap<String, String>) -> Value {
    let include = params
        .get("includeObject")
        .map(String::as_str)
        .unwrap_or("Metadata");
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut row = json!({"cells": row_cells(kind, item)});
            match include {
                "None" => {}
                "Object" => {
                    let mut obj = item.clone();
                    obj["kind"] = json!(kind.kind());
                    obj["apiVersion"] = json!(kind.api_version());
                    row["object"] = obj;
                }
                _ => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": item["metadata"],
                    });
                }
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": columns(kind),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_like_apimachinery() {
        assert_eq!(human_duration(Duration::from_secs(5)), "5s");
        assert_eq!(human_duration(Duration::from_secs(125)), "2m5s");
        assert_eq!(human_duration(Duration::from_secs(600)), "10m");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600 + 60)), "3h1m");
        assert_eq!(human_duration(Duration::from_secs(50 * 3600)), "2d2h");
    }
}
