//! The index page of a running gateway: every service by namespace, each port linked to its
//! origin, with its readiness; a filter box; usable with the keyboard alone; light and dark
//! colours from `prefers-color-scheme`.
//!
//! Contract: [`render_index`] is a pure function of its inputs and returns one self-contained
//! HTML document (inline CSS and script, no external assets, no timestamps), so it can be
//! served with a strict `Content-Security-Policy` and compared in tests. Every text from the
//! cluster is HTML-escaped. Keyboard: `/` focuses the filter, `Escape` clears it, `Enter` in
//! the filter opens the first visible link, and every link is reachable with `Tab`.

use std::fmt::Write as _;
use wire::html::escape;

use crate::client::{KubeApi, ListError, NamespaceScope, list_services};
use crate::model::ServiceInfo;
use crate::urls::{GatewayAddr, UrlOptions, url_entries};

/// What the page needs besides the services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexOptions {
    /// The page title and heading (e.g. `kgate: my-context`).
    pub title: String,
    /// The gateway's own listener, for origin links.
    pub gateway: GatewayAddr,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            title: "kgate".to_owned(),
            gateway: GatewayAddr::default(),
        }
    }
}

/// The inline script's SHA-256 is not pinned: the gateway serving this page may send
/// `Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'`.
const STYLE: &str = r#"
:root { color-scheme: light dark; --bg: #fff; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de;
  --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --link: #0550ae; --focus: #0969da; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #30363d;
    --ok: #3fb950; --warn: #d29922; --bad: #f85149; --link: #79c0ff; --focus: #58a6ff; } }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 72rem; padding: 1.5rem; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
h1 { font-size: 1.4rem; margin: 0 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; border-bottom: 1px solid var(--line); }
label { display: block; color: var(--muted); margin-bottom: .25rem; }
input { width: 100%; padding: .5rem .75rem; font: inherit; color: var(--fg); background: var(--bg);
  border: 1px solid var(--line); border-radius: 6px; }
:focus-visible { outline: 2px solid var(--focus); outline-offset: 2px; }
table { width: 100%; border-collapse: collapse; table-layout: fixed; }
th:nth-child(1) { width: 26%; } th:nth-child(2) { width: 16%; } th:nth-child(3) { width: 8%; }
td { overflow-wrap: anywhere; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
a { color: var(--link); }
code { font-size: .85em; color: var(--muted); }
.ready { font-variant-numeric: tabular-nums; font-weight: 600; }
.ok { color: var(--ok); } .partial { color: var(--warn); } .down { color: var(--bad); }
.empty { color: var(--muted); }
[hidden] { display: none !important; }
"#;

const SCRIPT: &str = r#"
(function () {
  var box = document.getElementById('filter');
  var rows = Array.prototype.slice.call(document.querySelectorAll('tr[data-search]'));
  var sections = Array.prototype.slice.call(document.querySelectorAll('section[data-ns]'));
  var none = document.getElementById('no-match');
  function apply() {
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (r) {
      var text = r.getAttribute('data-search');
      var ok = words.every(function (w) { return text.indexOf(w) !== -1; });
      r.hidden = !ok; if (ok) { shown++; }
    });
    sections.forEach(function (s) { s.hidden = !s.querySelector('tr[data-search]:not([hidden])'); });
    none.hidden = shown !== 0;
  }
  box.addEventListener('input', apply);
  box.addEventListener('keydown', function (e) {
    if (e.key === 'Escape') { box.value = ''; apply(); }
    if (e.key === 'Enter') {
      var first = document.querySelector('tr[data-search]:not([hidden]) a');
      if (first) { first.click(); }
    }
  });
  document.addEventListener('keydown', function (e) {
    if (e.key === '/' && document.activeElement !== box) { e.preventDefault(); box.focus(); }
  });
  apply();
})();
"#;

/// Renders the index page for `services` (any order; they are sorted here).
pub fn render_index(services: &[ServiceInfo], opts: &IndexOptions) -> String {
    let list = url_entries(
        services,
        &[],
        &UrlOptions {
            server: String::new(),
            gateway: opts.gateway.clone(),
        },
    );
    let title = escape(&opts.title);
    let mut html = String::with_capacity(8192);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n\
         <label for=\"filter\">Filter services (press <kbd>/</kbd>)</label>\n\
         <input id=\"filter\" type=\"search\" autocomplete=\"off\" placeholder=\"namespace, name or port\" autofocus>\n"
    );
    let mut current_ns: Option<&str> = None;
    for e in &list.items {
        if current_ns != Some(e.namespace.as_str()) {
            if current_ns.is_some() {
                html.push_str("</tbody>\n</table>\n</section>\n");
            }
            let ns = escape(&e.namespace);
            let _ = write!(
                html,
                "<section data-ns=\"{ns}\" aria-labelledby=\"ns-{ns}\">\n<h2 id=\"ns-{ns}\">{ns}</h2>\n\
                 <table>\n<thead><tr><th scope=\"col\">Service</th><th scope=\"col\">Port</th>\
                 <th scope=\"col\">Ready</th><th scope=\"col\">API proxy path</th></tr></thead>\n<tbody>\n"
            );
            current_ns = Some(e.namespace.as_str());
        }
        let port = if e.port_name.is_empty() {
            e.port.to_string()
        } else {
            format!("{}/{}", e.port, e.port_name)
        };
        let class = if e.total == 0 || e.ready == 0 {
            "down"
        } else if e.ready < e.total {
            "partial"
        } else {
            "ok"
        };
        let search =
            format!("{} {} {} {}", e.namespace, e.name, e.port, e.port_name).to_lowercase();
        // The API proxy path, relative to the page, so it works whatever host reached it.
        let api_path = e
            .gateway_url
            .as_deref()
            .and_then(|u| u.split_once("://"))
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or("");
        let _ = writeln!(
            html,
            "<tr data-search=\"{search}\"><td><a href=\"{origin}\">{name}</a></td><td>{port}{scheme}</td>\
             <td class=\"ready {class}\" title=\"{ready} of {total} endpoints ready\">{ready}/{total}</td>\
             <td><a href=\"{api}\"><code>{api_text}</code></a></td></tr>",
            search = escape(&search),
            origin = escape(e.origin_url.as_deref().unwrap_or(api_path)),
            name = escape(&e.name),
            port = escape(&port),
            scheme = if e.scheme == "https" { " (https)" } else { "" },
            ready = e.ready,
            total = e.total,
            api = escape(api_path),
            api_text = escape(api_path),
        );
    }
    if current_ns.is_some() {
        html.push_str("</tbody>\n</table>\n</section>\n");
    } else {
        html.push_str("<p class=\"empty\">No services found.</p>\n");
    }
    let _ = write!(
        html,
        "<p id=\"no-match\" class=\"empty\" hidden>No service matches the filter.</p>\n</main>\n\
         <script>{SCRIPT}</script>\n</body>\n</html>\n"
    );
    html
}

/// Lists every service (all namespaces, with readiness) through `client` and renders the page:
/// what the gateway's index route serves. A listing error is returned for the gateway to turn
/// into its own error page.
pub async fn index_page<C: KubeApi>(client: &C, opts: &IndexOptions) -> Result<String, ListError> {
    let services = list_services(client, &NamespaceScope::All, None).await?;
    Ok(render_index(&services, opts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Readiness, ServicePort};

    fn svc(ns: &str, name: &str, ports: &[(&str, u16, u32, u32)]) -> ServiceInfo {
        ServiceInfo {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            labels: Default::default(),
            service_type: "ClusterIP".to_owned(),
            load_balancer_ingress: vec![],
            ports: ports
                .iter()
                .map(|&(n, p, ready, total)| ServicePort {
                    name: n.to_owned(),
                    port: p,
                    protocol: "TCP".to_owned(),
                    app_protocol: None,
                    readiness: Readiness { ready, total },
                })
                .collect(),
        }
    }

    #[test]
    fn groups_by_namespace_with_links_and_readiness() {
        let services = [
            svc("monitoring", "grafana", &[("http", 3000, 1, 1)]),
            svc(
                "kube-system",
                "elasticsearch-logging",
                &[("db", 9200, 1, 2)],
            ),
            svc("kube-system", "dead", &[("", 80, 0, 0)]),
        ];
        let html = render_index(&services, &IndexOptions::default());
        let ks = html.find("<h2 id=\"ns-kube-system\">").unwrap();
        let mon = html.find("<h2 id=\"ns-monitoring\">").unwrap();
        assert!(ks < mon);
        assert!(html.contains(
            "<a href=\"http://http.grafana.monitoring.svc.localhost:8001/\">grafana</a>"
        ));
        assert!(
            html.contains(
                "<a href=\"/api/v1/namespaces/monitoring/services/grafana:http/proxy/\">"
            )
        );
        assert!(html.contains("class=\"ready partial\" title=\"1 of 2 endpoints ready\">1/2</td>"));
        assert!(html.contains("class=\"ready down\" title=\"0 of 0 endpoints ready\">0/0</td>"));
        assert!(html.contains("prefers-color-scheme: dark"));
        assert!(
            !html.contains("src=\"http") && !html.contains("<link"),
            "no external assets"
        );
    }

    #[tokio::test]
    async fn index_page_lists_every_namespace() {
        let fake = crate::client::fake::Fake::default()
            .with(
                "/api/v1/services",
                200,
                serde_json::json!({"items": [{"metadata": {"name": "web", "namespace": "shop"},
                                          "spec": {"ports": [{"port": 80}]}}]}),
            )
            .with(
                "/apis/discovery.k8s.io/v1/endpointslices",
                200,
                serde_json::json!({"items": []}),
            );
        let html = index_page(&fake, &IndexOptions::default()).await.unwrap();
        assert!(
            html.contains("<a href=\"http://web.shop.svc.localhost:8001/\">web</a>"),
            "{html}"
        );
        let empty = crate::client::fake::Fake::default();
        assert!(index_page(&empty, &IndexOptions::default()).await.is_err());
    }

    #[test]
    fn escapes_everything_from_the_cluster() {
        let html = render_index(
            &[svc("x", "a", &[("<b>", 1, 0, 1)])],
            &IndexOptions {
                title: "<script>alert(1)</script>".to_owned(),
                ..Default::default()
            },
        );
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("1/&lt;b&gt;"));
        assert!(render_index(&[], &IndexOptions::default()).contains("No services found."));
    }
}
