//! `kgate urls`: one row per service port (and, on request, per pod port), with every address
//! that reaches it, in table, wide, JSON or YAML form.
//!
//! Rows are sorted by namespace, kind (services before pods), name, port number and port name,
//! so the output is stable for scripts. The JSON and YAML shape is [`UrlList`]; its field names
//! are part of kgate's interface and only ever gain fields.

use serde::Serialize;

use crate::addr::{self, Kind};
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

/// A local gateway's listening address, as `scheme://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayAddr {
    /// `http` or `https`.
    pub scheme: String,
    /// The port the gateway listens on.
    pub port: u16,
}

impl Default for GatewayAddr {
    /// `kubectl proxy`'s default listener, `http://localhost:8001`.
    fn default() -> Self {
        GatewayAddr {
            scheme: "http".to_owned(),
            port: 8001,
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
    pub target: String,
    /// Through the API server directly (needs the user's credentials).
    pub api_proxy_url: String,
    /// The same path through a local kgate gateway (or `kubectl proxy`).
    pub gateway_url: String,
    /// The service's own origin on a local kgate gateway.
    pub origin_url: String,
    /// Ready endpoints.
    pub ready: u32,
    /// All endpoints.
    pub total: u32,
}

/// Builds the sorted rows for `services` and `pods`.
pub fn url_entries(services: &[ServiceInfo], pods: &[PodInfo], opts: &UrlOptions) -> UrlList {
    let mut items = Vec::new();
    for svc in services {
        let single = svc.ports.len() == 1;
        for p in &svc.ports {
            // Named ports are addressed by name (what the API server matches endpoints by);
            // an unnamed port by its number, which the API server maps back to the port.
            let port_ref = if p.name.is_empty() {
                p.port.to_string()
            } else {
                p.name.clone()
            };
            let https = p.is_https();
            let path = addr::proxy_path(Kind::Service, &svc.namespace, &svc.name, https, &port_ref);
            items.push(UrlEntry {
                kind: "service",
                namespace: svc.namespace.clone(),
                name: svc.name.clone(),
                port: p.port,
                port_name: p.name.clone(),
                protocol: p.protocol.clone(),
                scheme: if https { "https" } else { "http" },
                target: addr::short_target(Kind::Service, &svc.namespace, &svc.name, &port_ref),
                api_proxy_url: format!("{}{path}", opts.server.trim_end_matches('/')),
                gateway_url: format!("{}{path}", gateway_base(&opts.gateway)),
                origin_url: addr::origin_url(
                    Kind::Service,
                    &svc.namespace,
                    &svc.name,
                    (!single).then_some(port_ref.as_str()),
                    &opts.gateway,
                ),
                ready: p.readiness.ready,
                total: p.readiness.total,
            });
        }
    }
    for pod in pods {
        let single = pod.ports.len() == 1;
        for p in &pod.ports {
            let port_ref = p.port.to_string();
            let https = p.name == "https" || p.port == 443;
            let path = addr::proxy_path(Kind::Pod, &pod.namespace, &pod.name, https, &port_ref);
            items.push(UrlEntry {
                kind: "pod",
                namespace: pod.namespace.clone(),
                name: pod.name.clone(),
                port: p.port,
                port_name: p.name.clone(),
                protocol: "TCP".to_owned(),
                scheme: if https { "https" } else { "http" },
                target: addr::short_target(Kind::Pod, &pod.namespace, &pod.name, &port_ref),
                api_proxy_url: format!("{}{path}", opts.server.trim_end_matches('/')),
                gateway_url: format!("{}{path}", gateway_base(&opts.gateway)),
                origin_url: addr::origin_url(
                    Kind::Pod,
                    &pod.namespace,
                    &pod.name,
                    (!single).then_some(port_ref.as_str()),
                    &opts.gateway,
                ),
                ready: u32::from(pod.ready),
                total: 1,
            });
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

fn gateway_base(g: &GatewayAddr) -> String {
    format!("{}://localhost:{}", g.scheme, g.port)
}

/// Output formats of `kgate urls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlFormat {
    /// Columns NAMESPACE, NAME, PORT, READY, URL (the origin URL).
    Table,
    /// The table plus SCHEME, TARGET, API PROXY URL and GATEWAY URL.
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
        header.extend(["SCHEME", "TARGET", "API PROXY URL", "GATEWAY URL"]);
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
            e.origin_url.clone(),
        ];
        if wide {
            row.extend([
                e.scheme.to_owned(),
                e.target.clone(),
                e.api_proxy_url.clone(),
                e.gateway_url.clone(),
            ]);
        }
        rows.push(row);
    }
    columns(&rows)
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
        assert_eq!(
            api.api_proxy_url,
            "https://127.0.0.1:6443/api/v1/namespaces/web/services/https:api:443/proxy/"
        );
        assert_eq!(
            api.gateway_url,
            "http://localhost:8001/api/v1/namespaces/web/services/https:api:443/proxy/"
        );
        assert_eq!(api.origin_url, "http://api.web.svc.localhost:8001/");
        let shop_https = &list.items[3];
        assert_eq!(shop_https.target, "svc/web/shop:https");
        assert_eq!(
            shop_https.origin_url,
            "http://https.shop.web.svc.localhost:8001/"
        );
        assert_eq!(
            list.items[4].api_proxy_url,
            "https://127.0.0.1:6443/api/v1/namespaces/web/pods/shop-0:8080/proxy/"
        );
        assert_eq!((list.items[4].ready, list.items[4].total), (0, 1));
    }

    #[test]
    fn table_aligns_columns_and_prefixes_kinds_with_pods() {
        let table = render_urls(&sample(), UrlFormat::Table).unwrap();
        let expected = "\
NAMESPACE     NAME                            PORT         READY   URL
kube-system   service/elasticsearch-logging   9200/db      1/1     http://elasticsearch-logging.kube-system.svc.localhost:8001/
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
