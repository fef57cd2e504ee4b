//! The sample services and the servers behind them. Namespaces, names, ports and labels follow
//! what real clusters run (kube-dns, elasticsearch-logging addon, metrics-server, Grafana).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::Error;
use crate::apps::{self, AppState, Handler};
use crate::cluster::{ClusterState, PortSpec, Replica, Service};

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub(crate) fn service(
    namespace: &str,
    name: &str,
    labels: Vec<(String, String)>,
    ports: Vec<PortSpec>,
    ip: Option<IpAddr>,
) -> Service {
    let mut svc = Service {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        labels,
        ports,
        cluster_ip: String::new(),
        replicas: Vec::new(),
        has_pod: true,
        resource_version: 0,
    };
    if let Some(ip) = ip {
        svc.replicas.push(Replica {
            pod: svc.pod_name(0),
            ip,
            ready: true,
        });
    }
    svc
}

fn port(name: &str, port: u16, target: SocketAddr) -> PortSpec {
    PortSpec {
        name: name.to_owned(),
        port,
        protocol: "TCP",
        target: target.port(),
    }
}

async fn app(
    tasks: &mut JoinSet<()>,
    state: &Arc<AppState>,
    label: &str,
    handler: Handler,
    tls: bool,
) -> Result<SocketAddr, Error> {
    let tls = if tls {
        Some(Arc::new(crate::pki::self_signed_server_config(
            label.split(':').next().unwrap_or(label),
        )?))
    } else {
        None
    };
    apps::spawn_app(tasks, label.to_owned(), tls, handler, state.clone()).await
}

/// The cluster's fixed objects: namespaces and the `kubernetes` service.
pub(crate) fn base(cluster: &mut ClusterState, api_addr: SocketAddr) {
    for ns in ["default", "kube-node-lease", "kube-public", "kube-system"] {
        cluster.ensure_namespace(ns);
    }
    // Its endpoints are the API server itself and have no Pod targetRef, so, as in a real
    // cluster, `services/kubernetes/proxy` answers 503.
    let mut svc = service(
        "default",
        "kubernetes",
        labels(&[("component", "apiserver"), ("provider", "kubernetes")]),
        vec![PortSpec {
            name: "https".to_owned(),
            port: 443,
            protocol: "TCP",
            target: api_addr.port(),
        }],
        Some(api_addr.ip()),
    );
    svc.has_pod = false;
    svc.cluster_ip = "10.96.0.1".to_owned();
    cluster.upsert_service(svc);
}

/// The sample apps' Secret: what a cluster holds that no web page should read.
fn sample_secrets(cluster: &mut ClusterState) {
    cluster.upsert_secret(
        "demo",
        "shop-db",
        &[
            ("username", "shop"),
            ("password", "demo-only-not-a-real-password"),
        ],
    );
}

/// Starts every sample app and registers its service.
pub(crate) async fn start(
    tasks: &mut JoinSet<()>,
    cluster: &mut ClusterState,
    state: &Arc<AppState>,
) -> Result<(), Error> {
    let lo = Some(IpAddr::from([127, 0, 0, 1]));
    sample_secrets(cluster);

    let es = app(
        tasks,
        state,
        "kube-system/elasticsearch-logging:",
        apps::es::handle,
        false,
    )
    .await?;
    cluster.upsert_service(service(
        "kube-system",
        "elasticsearch-logging",
        labels(&[
            ("k8s-app", "elasticsearch-logging"),
            ("kubernetes.io/cluster-service", "true"),
            ("addonmanager.kubernetes.io/mode", "Reconcile"),
            ("kubernetes.io/name", "Elasticsearch"),
        ]),
        vec![port("", 9200, es)],
        lo,
    ));

    let dns = apps::spawn_closing_listener(tasks).await?;
    let dns_metrics = app(
        tasks,
        state,
        "kube-system/kube-dns:metrics",
        apps::misc::coredns_metrics,
        false,
    )
    .await?;
    let mut kube_dns = service(
        "kube-system",
        "kube-dns",
        labels(&[
            ("k8s-app", "kube-dns"),
            ("kubernetes.io/cluster-service", "true"),
            ("kubernetes.io/name", "CoreDNS"),
        ]),
        vec![
            PortSpec {
                name: "dns".to_owned(),
                port: 53,
                protocol: "UDP",
                target: dns.port(),
            },
            port("dns-tcp", 53, dns),
            port("metrics", 9153, dns_metrics),
        ],
        lo,
    );
    kube_dns.cluster_ip = "10.96.0.10".to_owned();
    cluster.upsert_service(kube_dns);

    let ms = app(
        tasks,
        state,
        "kube-system/metrics-server:https",
        apps::misc::metrics_server,
        true,
    )
    .await?;
    cluster.upsert_service(service(
        "kube-system",
        "metrics-server",
        labels(&[("k8s-app", "metrics-server")]),
        vec![port("https", 443, ms)],
        lo,
    ));

    let grafana = app(
        tasks,
        state,
        "monitoring/grafana:http",
        apps::misc::grafana,
        false,
    )
    .await?;
    cluster.upsert_service(service(
        "monitoring",
        "grafana",
        labels(&[
            ("app.kubernetes.io/name", "grafana"),
            ("kubernetes.io/cluster-service", "true"),
            ("kubernetes.io/name", "Grafana"),
        ]),
        vec![port("http", 3000, grafana)],
        lo,
    ));

    let shop = app(tasks, state, "demo/shop:http", apps::shop::handle, false).await?;
    cluster.upsert_service(service(
        "demo",
        "shop",
        labels(&[("app", "shop")]),
        vec![port("http", 80, shop)],
        lo,
    ));

    let echo_http = app(
        tasks,
        state,
        "demo/echo:http",
        apps::echo::handle_http,
        false,
    )
    .await?;
    let echo_admin = app(
        tasks,
        state,
        "demo/echo:admin",
        apps::echo::handle_admin,
        false,
    )
    .await?;
    let echo_metrics = app(
        tasks,
        state,
        "demo/echo:metrics",
        apps::echo::handle_metrics,
        false,
    )
    .await?;
    cluster.upsert_service(service(
        "demo",
        "echo",
        labels(&[("app", "echo")]),
        vec![
            port("http", 80, echo_http),
            port("admin", 8080, echo_admin),
            port("metrics", 9090, echo_metrics),
        ],
        lo,
    ));

    let bulk = app(tasks, state, "demo/bulk:http", apps::bulk::handle, false).await?;
    cluster.upsert_service(service(
        "demo",
        "bulk",
        labels(&[("app", "bulk")]),
        vec![port("http", 80, bulk)],
        lo,
    ));

    // A service whose Endpoints object has no subsets (nothing selected).
    cluster.upsert_service(service(
        "demo",
        "offline",
        labels(&[("app", "offline")]),
        vec![PortSpec {
            name: "http".to_owned(),
            port: 80,
            protocol: "TCP",
            target: 8080,
        }],
        None,
    ));
    Ok(())
}
