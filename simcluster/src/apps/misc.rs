//! The smaller apps: a Grafana-like UI (`monitoring/grafana`), CoreDNS's metrics port
//! (`kube-system/kube-dns:metrics`), an HTTPS-only metrics-server (`kube-system/metrics-server`,
//! port `https`) and the node's kubelet (HTTPS, reached by `nodes/<node>/proxy`).

use std::sync::Arc;

use http::{HeaderValue, Method, Request, header};
use hyper::body::Incoming;
use serde_json::json;

use super::{AppState, RespFuture};
use crate::body::{Resp, json as json_resp, respond};

fn redirect(location: &'static str) -> Resp {
    let mut resp = respond(
        302,
        "text/html; charset=utf-8",
        format!("<a href=\"{location}\">Found</a>.\n"),
    );
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    resp
}

const GRAFANA_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<base href="/">
<title>Grafana</title>
<link rel="stylesheet" href="public/build/grafana.css">
<link rel="icon" href="/public/img/fav32.png">
</head>
<body class="theme-dark">
<div id="reactRoot"><h1>Grafana</h1><p>Welcome to the simulated Grafana.</p>
<p><a href="/dashboards">Dashboards</a> | <a href="/explore">Explore</a> | <a href="/logout">Sign out</a></p>
<pre id="health">loading...</pre></div>
<script>window.grafanaBootData = {"settings": {"appSubUrl": "", "appUrl": "http://localhost:3000/"}};</script>
<script src="/public/build/app.js"></script>
</body>
</html>
"#;

const GRAFANA_JS: &str = "fetch('/api/health').then(function (r) { return r.json(); }).then(function (h) { document.getElementById('health').textContent = JSON.stringify(h); });\n";

fn grafana_session(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(';')
                .any(|c| c.trim().starts_with("grafana_session=") && c.trim().len() > 16)
        })
}

pub(crate) fn grafana(req: Request<Incoming>, _app: Arc<AppState>) -> RespFuture {
    Box::pin(async move {
        let path = req.uri().path().to_owned();
        match (req.method().clone(), path.as_str()) {
            (Method::GET, "/api/health") => json_resp(
                200,
                &json!({"commit": "simcluster", "database": "ok", "version": "11.3.0"}),
            ),
            (Method::GET | Method::HEAD, "/login") => {
                respond(200, "text/html; charset=utf-8", GRAFANA_PAGE)
            }
            (Method::POST, "/login") => {
                let mut resp = json_resp(200, &json!({"message": "Logged in", "redirectUrl": "/"}));
                resp.headers_mut().insert(
                    header::SET_COOKIE,
                    HeaderValue::from_static(
                        "grafana_session=0123456789abcdef; Path=/; HttpOnly; SameSite=Lax",
                    ),
                );
                resp
            }
            (Method::GET | Method::HEAD, "/logout") => {
                let mut resp = redirect("/login");
                resp.headers_mut().insert(
                    header::SET_COOKIE,
                    HeaderValue::from_static("grafana_session=; Path=/; Max-Age=0"),
                );
                resp
            }
            (Method::GET | Method::HEAD, "/public/build/app.js") => {
                respond(200, "application/javascript", GRAFANA_JS)
            }
            (Method::GET | Method::HEAD, "/public/build/grafana.css") => respond(
                200,
                "text/css",
                "body.theme-dark { background: #111217; color: #ccccdc; }\n",
            ),
            (Method::GET | Method::HEAD, _) if grafana_session(&req) => {
                respond(200, "text/html; charset=utf-8", GRAFANA_PAGE)
            }
            (Method::GET | Method::HEAD, _) => redirect("/login"),
            _ => json_resp(404, &json!({"message": "Not found"})),
        }
    })
}

pub(crate) fn coredns_metrics(req: Request<Incoming>, _app: Arc<AppState>) -> RespFuture {
    Box::pin(async move {
        match req.uri().path() {
            "/metrics" => respond(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                "# HELP coredns_build_info A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.\n# TYPE coredns_build_info gauge\ncoredns_build_info{goversion=\"go1.23.0\",revision=\"simcluster\",version=\"1.11.3\"} 1\n# HELP coredns_dns_requests_total Counter of DNS requests made per zone, protocol and family.\n# TYPE coredns_dns_requests_total counter\ncoredns_dns_requests_total{family=\"1\",proto=\"udp\",server=\"dns://:53\",type=\"A\",view=\"\",zone=\".\"} 42\n",
            ),
            _ => respond(404, "text/plain; charset=utf-8", "404 page not found\n"),
        }
    })
}

pub(crate) fn metrics_server(req: Request<Incoming>, _app: Arc<AppState>) -> RespFuture {
    Box::pin(async move {
        match req.uri().path() {
            "/healthz" | "/livez" | "/readyz" => respond(200, "text/plain; charset=utf-8", "ok"),
            "/apis/metrics.k8s.io/v1beta1" => json_resp(
                200,
                &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "metrics.k8s.io/v1beta1",
                    "resources": [{"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]},
                                  {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]}]}),
            ),
            "/" => respond(
                200,
                "text/html; charset=utf-8",
                "<!DOCTYPE html><html><body><h1>metrics-server</h1><p>Served over TLS. <a href=\"/healthz\">healthz</a> <a href=\"/apis/metrics.k8s.io/v1beta1\">API</a></p></body></html>\n",
            ),
            _ => json_resp(
                404,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "the server could not find the requested resource", "reason": "NotFound", "code": 404}),
            ),
        }
    })
}

pub(crate) fn kubelet(req: Request<Incoming>, _app: Arc<AppState>) -> RespFuture {
    Box::pin(async move {
        match req.uri().path() {
            "/healthz" => respond(200, "text/plain; charset=utf-8", "ok"),
            "/pods" | "/pods/" => json_resp(
                200,
                &json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []}),
            ),
            "/metrics" => respond(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                "# HELP kubelet_running_pods Number of pods that have a running pod sandbox\n# TYPE kubelet_running_pods gauge\nkubelet_running_pods 8\n",
            ),
            "/configz" => json_resp(
                200,
                &json!({"kubeletconfig": {"enableServer": true, "port": 10250}}),
            ),
            _ => respond(404, "text/plain; charset=utf-8", "404 page not found\n"),
        }
    })
}
