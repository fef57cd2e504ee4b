//! `kgate urls`: one row per service port (and, on request, per pod port), with every address
//! that reaches it, in table, wide, JSON or YAML form.
//!
//! Rows are sorted by namespace, kind (services before pods), name, port number and port name,
//! so the output is stable for scripts. The JSON and YAML shape is [`UrlList`]; its field names
//! are part of kgate's interface and only ever gain fields.

use serde::Serialize;

use urlgrammar::{ContextLabel, Kind};

use crate::addr::{Addresses, Local, addresses};
use crate::model::{PodInfo, ServiceInfo};

/// Where the addresses point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlOptions {
    /// The API server URL as written in the kubeconfig (`https://10.0.0.1:6443`).
    pub server: String,
    /// The base URL of a local kgate gateway (`http://localhost:8001`); API proxy paths and
    /// service origins are given relative to it.
    pub gateway: GatewayAddr,
}

/// A local gateway's listener: `http://localhost:<port>`, and the context label its origin
/// hosts carry when it serves several clusters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayAddr {
    /// The port the gateway listens on.
    pub port: u16,
    /// The context label in origin hosts, when several clusters are served.
    pub context: Option<ContextLabel>,
    /// The gateway's own token (`kgate serve --gateway-token auto`), which its URLs then carry as
    /// `?kgate-token=`.
    pub token: Option<String>,
}

impl Default for GatewayAddr {
    /// `kubectl proxy`'s default listener, port 8001, one cluster, no token.
    fn default() -> Self {
        GatewayAddr {
            port: 8001,
            context: None,
            token: None,
        }
    }
}

/// The JSON and YAML document printed by `kgate urls -o json|yaml`.
///
/// ```json
/// {
///   "items": [
///     {
///       "kind": "service",
///       "namespace": "kube-system",
///       "name": "elasticsearch-logging",
///       "port": 9200,
///       "portName": "db",
///       "protocol": "TCP",
///       "scheme": "http",
///       "target": "svc/kube-system/elasticsearch-logging:db",
///       "apiProxyUrl": "https://127.0.0.1:6443/api/v1/namespaces/kube-system/services/elasticsearch-logging:db/proxy/",
///       "gatewayUrl": "http://localhost:8001/api/v1/namespaces/kube-system/services/elasticsearch-logging:db/proxy/",
///       "originUrl": "http://db.elasticsearch-logging.kube-system.svc.localhost:8001/",
///       "ready": 1,
///       "total": 1
///     }
///   ]
/// }
/// ```
///
/// `kind` is `service` or `pod`; `portName` is `""` for an unnamed port; `scheme` is the scheme
/// the API server uses to reach the endpoint (`https` for a port named `https` or numbered 443);
/// `ready`/`total` count endpoints (for a pod: 1 if its `Ready` condition is true, out of 1).
/// `target`, `apiProxyUrl`, `gatewayUrl` and `originUrl` are `null` when kgate's address
/// grammar cannot represent the object (a pod whose name holds a `.` has no origin host).
/// The origin of a service whose only port is unnamed has no port label (the API server picks
/// the unnamed port); every other origin names its port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UrlList {
    /// One entry per service port or pod port, sorted.
    pub items: Vec<UrlEntry>,
}

/// One service port or pod port and its addresses; see [`UrlList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlEntry {
    /// `service` or `pod`.
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Service or pod name.
    pub name: String,
    /// Port number.
    pub port: u16,
    /// Port name; empty when unnamed.
    pub port_name: String,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// `http` or `https`: how the API server reaches the endpoint.
    pub scheme: &'static str,
    /// The short target kgate's commands accept (`svc/<ns>/<name>:<port>`).
    pub target: Option<String>,
    /// Through the API server directly (needs the user's credentials).
    pub api_proxy_url: Option<String>,
    /// The same path through a local kgate gateway (or `kubectl proxy`).
    pub gateway_url: Option<String>,
    /// The service's own origin on a local kgate gateway.
    pub origin_url: Option<String>,
    /// Ready endpoints.
    pub ready: u32,
    /// All endpoints.
    pub total: u32,
}

/// Builds the sorted rows for `services` and `pods`.
pub fn url_entries(services: &[ServiceInfo], pods: &[PodInfo], opts: &UrlOptions) -> UrlList {
    let local = Local {
        port: opts.gateway.port,
        context: opts.gateway.context.as_ref(),
        token: opts.gateway.token.as_deref(),
    };
    let server = opts.server.trim_end_matches('/');
    let mut items = Vec::new();
    let mut push = |kind: Kind, ns: &str, name: &str, row: PortRow<'_>| {
        let a: Addresses = addresses(kind, ns, name, &row.port_ref, row.https, row.single, &local);
        items.push(UrlEntry {
            kind: if kind == Kind::Pod { "pod" } else { "service" },
            namespace: ns.to_owned(),
            name: name.to_owned(),
            port: row.port,
            port_name: row.port_name.to_owned(),
            protocol: row.protocol.to_owned(),
            scheme: if row.https { "https" } else { "http" },
            target: a.short,
            // The kubeconfig's server URL may carry a path prefix (Rancher, some gateways);
            // the API proxy path goes after it, as client-go appends request paths.
            api_proxy_url: a.api_path.map(|p| format!("{server}{p}")),
            gateway_url: a.gateway_url,
            origin_url: a.origin_url,
            ready: row.ready,
            total: row.total,
        });
    };
    for svc in services {
        for p in &svc.ports {
            let port_ref = p.port_ref();
            push(
                Kind::Service,
                &svc.namespace,
                &svc.name,
                PortRow {
                    port_ref,
                    port: p.port,
                    port_name: &p.name,
                    protocol: &p.protocol,
                    https: p.is_https(),
                    // Without a port label the API server picks the *unnamed* port, so only a
                    // service whose single port is unnamed has a port-less origin.
                    single: svc.ports.len() == 1 && p.name.is_empty(),
                    ready: p.readiness.ready,
                    total: p.readiness.total,
                },
            );
        }
    }
    for pod in pods {
        for p in &pod.ports {
            // The pod proxy never resolves container port names: always the number.
            push(
                Kind::Pod,
                &pod.namespace,
                &pod.name,
                PortRow {
                    port_ref: p.port.to_string(),
                    port: p.port,
                    port_name: &p.name,
                    protocol: "TCP",
                    https: p.name == "https" || p.port == 443,
                    single: pod.ports.len() == 1,
                    ready: u32::from(pod.ready),
                    total: 1,
                },
            );
        }
    }
    items.sort_by(|a, b| {
        (
            &a.namespace,
            a.kind != "service",
            &a.name,
            a.port,
            &a.port_name,
        )
            .cmp(&(
                &b.namespace,
                b.kind != "service",
                &b.name,
                b.port,
                &b.port_name,
            ))
    });
    UrlList { items }
}

struct PortRow<'a> {
    port_ref: String,
    port: u16,
    port_name: &'a str,
    protocol: &'a str,
    https: bool,
    single: bool,
    ready: u32,
    total: u32,
}

/// Output formats of `kgate urls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlFormat {
    /// Columns NAMESPACE, NAME, PORT, READY, URL (the origin URL).
    Table,
    /// The table plus PROTOCOL, SCHEME, TARGET, API PROXY URL and GATEWAY URL. The API
    /// server proxies TCP only; UDP ports are listed so the list is complete.
    Wide,
    /// [`UrlList`] as pretty JSON.
    Json,
    /// [`UrlList`] as YAML.
    Yaml,
}

/// Why a listing could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The YAML serializer failed.
    #[error("writing YAML: {0}")]
    Yaml(String),
    /// The JSON serializer failed.
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Renders the list in `format`; the text always ends with a newline (tables print
/// `No resources found` as kubectl does when there is nothing to show).
pub fn render_urls(list: &UrlList, format: UrlFormat) -> Result<String, RenderError> {
    match format {
        UrlFormat::Json => {
            let mut s = serde_json::to_string_pretty(list)?;
            s.push('\n');
            Ok(s)
        }
        UrlFormat::Yaml => {
            // Plain scalars only: folded (`>-`) URLs are valid YAML but useless to `grep`.
            let mut options = serde_saphyr::SerializerOptions::default();
            options.prefer_block_scalars = false;
            serde_saphyr::to_string_with_options(list, options)
                .map_err(|e| RenderError::Yaml(e.to_string()))
        }
        UrlFormat::Table | UrlFormat::Wide => Ok(render_table(list, format == UrlFormat::Wide)),
    }
}

fn render_table(list: &UrlList, wide: bool) -> String {
    if list.items.is_empty() {
        return "No resources found\n".to_owned();
    }
    let with_kind = list.items.iter().any(|e| e.kind != "service");
    let mut header = vec!["NAMESPACE", "NAME", "PORT", "READY", "URL"];
    if wide {
        header.extend([
            "PROTOCOL",
            "SCHEME",
            "TARGET",
            "API PROXY URL",
            "GATEWAY URL",
        ]);
    }
    let mut rows: Vec<Vec<String>> = vec![header.into_iter().map(str::to_owned).collect()];
    for e in &list.items {
        let name = if with_kind {
            format!("{}/{}", e.kind, e.name)
        } else {
            e.name.clone()
        };
        let port = if e.port_name.is_empty() {
            e.port.to_string()
        } else {
            format!("{}/{}", e.port, e.port_name)
        };
        let mut row = vec![
            e.namespace.clone(),
            name,
            port,
            format!("{}/{}", e.ready, e.total),
            or_dash(&e.origin_url),
        ];
        if wide {
            row.extend([
                e.protocol.clone(),
                e.scheme.to_owned(),
                or_dash(&e.target),
                or_dash(&e.api_proxy_url),
                or_dash(&e.gateway_url),
            ]);
        }
        rows.push(row);
    }
    columns(&rows)
}

fn or_dash(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".to_owned())
}

/// Left-aligned columns separated by three spaces, as kubectl's tabwriter prints them; the
/// last column is not padded.
pub(crate) fn columns(rows: &[Vec<String>]) -> String {
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..ncols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 3;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PodPort, Readiness, ServicePort};

    fn port(name: &str, port: u16, ready: u32, total: u32) -> ServicePort {
        ServicePort {
            name: name.to_owned(),
            port,
            protocol: "TCP".to_owned(),
            app_protocol: None,
            readiness: Readiness { ready, total },
        }
    }

    fn svc(ns: &str, name: &str, ports: Vec<ServicePort>) -> ServiceInfo {
        ServiceInfo {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            labels: Default::default(),
            service_type: "ClusterIP".to_owned(),
            load_balancer_ingress: vec![],
            ports,
        }
    }

    fn opts() -> UrlOptions {
        UrlOptions {
            server: "https://127.0.0.1:6443/".to_owned(),
            gateway: GatewayAddr::default(),
        }
    }

    fn sample() -> UrlList {
        let services = vec![
            svc(
                "web",
                "shop",
                vec![port("https", 8443, 0, 2), port("", 80, 2, 2)],
            ),
            svc(
                "kube-system",
                "elasticsearch-logging",
                vec![port("db", 9200, 1, 1)],
            ),
            svc("web", "api", vec![port("", 443, 1, 1)]),
        ];
        let pods = vec![PodInfo {
            namespace: "web".to_owned(),
            name: "shop-0".to_owned(),
            ready: false,
            ports: vec![PodPort {
                name: "http".to_owned(),
                port: 8080,
            }],
        }];
        url_entries(&services, &pods, &opts())
    }

    #[test]
    fn rows_are_sorted_and_schemes_follow_port_name_or_443() {
        let list = sample();
        let keys: Vec<_> = list
            .items
            .iter()
            .map(|e| {
                (
                    e.namespace.as_str(),
                    e.kind,
                    e.name.as_str(),
                    e.port,
                    e.scheme,
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                (
                    "kube-system",
                    "service",
                    "elasticsearch-logging",
                    9200,
                    "http"
                ),
                ("web", "service", "api", 443, "https"),
                ("web", "service", "shop", 80, "http"),
                ("web", "service", "shop", 8443, "https"),
                ("web", "pod", "shop-0", 8080, "http"),
            ]
        );
        let api = &list.items[1];
        let get = |o: &Option<String>| o.clone().unwrap_or_default();
        assert_eq!(
            get(&api.api_proxy_url),
            "https://127.0.0.1:6443/api/v1/namespaces/web/services/https:api:443/proxy/"
        );
        assert_eq!(
            get(&api.gateway_url),
            "http://localhost:8001/api/v1/namespaces/web/services/https:api:443/proxy/"
        );
        assert_eq!(get(&api.origin_url), "http://api.web.svc.localhost:8001/");
        let shop_https = &list.items[3];
        assert_eq!(get(&shop_https.target), "svc/web/shop:https");
        assert_eq!(
            get(&shop_https.origin_url),
            "http://https.shop.web.svc.localhost:8001/"
        );
        assert_eq!(
            get(&list.items[4].api_proxy_url),
            "https://127.0.0.1:6443/api/v1/namespaces/web/pods/shop-0:8080/proxy/"
        );
        assert_eq!((list.items[4].ready, list.items[4].total), (0, 1));
    }

    #[test]
    fn table_aligns_columns_and_prefixes_kinds_with_pods() {
        let table = render_urls(&sample(), UrlFormat::Table).unwrap();
        let expected = "\
NAMESPACE     NAME                            PORT         READY   URL
kube-system   service/elasticsearch-logging   9200/db      1/1     http://db.elasticsearch-logging.kube-system.svc.localhost:8001/
web           service/api                     443          1/1     http://api.web.svc.localhost:8001/
web           service/shop                    80           2/2     http://80.shop.web.svc.localhost:8001/
web           service/shop                    8443/https   0/2     http://https.shop.web.svc.localhost:8001/
web           pod/shop-0                      8080/http    0/1     http://shop-0.web.pod.localhost:8001/
";
        assert_eq!(table, expected);
        assert_eq!(
            render_urls(&UrlList { items: vec![] }, UrlFormat::Table).unwrap(),
            "No resources found\n"
        );
    }

    #[test]
    fn json_shape_is_stable() {
        let json: serde_json::Value =
            serde_json::from_str(&render_urls(&sample(), UrlFormat::Json).unwrap()).unwrap();
        let first = &json["items"][0];
        let keys: Vec<&str> = first
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = [
            "kind",
            "namespace",
            "name",
            "port",
            "portName",
            "protocol",
            "scheme",
            "target",
            "apiProxyUrl",
            "gatewayUrl",
            "originUrl",
            "ready",
            "total",
        ];
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(first["portName"], "db");
        assert_eq!(first["ready"], 1);
    }

    #[test]
    fn yaml_round_trips_the_same_document() {
        let yaml = render_urls(&sample(), UrlFormat::Yaml).unwrap();
        assert!(yaml.starts_with("items:\n"), "{yaml}");
        assert!(yaml.contains("apiProxyUrl: https://127.0.0.1:6443/api/v1/namespaces/kube-system/services/elasticsearch-logging:db/proxy/"), "{yaml}");
        assert!(yaml.contains("\n  portName: \"\"\n"), "{yaml}");
        assert!(!yaml.contains(">-"), "{yaml}");
    }
}
