//! An Elasticsearch-like endpoint (`kube-system/elasticsearch-logging`, port 9200):
//! `/` (node info), `/_cluster/health` with a status that tests and the demo can set to
//! green, yellow or red, `/_cat/health`, `?pretty` honoured as Elasticsearch formats it.

use std::sync::Arc;

use http::{Method, Request};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::{AppState, RespFuture, has_param};
use crate::body::respond;

/// Elasticsearch's pretty JSON: two-space indent and `" : "` between keys and values.
fn render(value: &Value, pretty: bool) -> String {
    if !pretty {
        return value.to_string();
    }
    let s = serde_json::to_string_pretty(value).unwrap_or_default();
    let mut out = String::with_capacity(s.len() + 64);
    for line in s.lines() {
        // Only the first `": ` on a line separates a key from its value.
        match line.find("\": ") {
            Some(i) if line.trim_start().starts_with('"') => {
                out.push_str(&line[..i + 1]);
                out.push_str(" : ");
                out.push_str(&line[i + 3..]);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

pub(crate) fn handle(req: Request<Incoming>, app: Arc<AppState>) -> RespFuture {
    Box::pin(async move {
        let pretty = has_param(&req, "pretty");
        let status = app.es_status.lock().map(|s| *s).unwrap_or("red");
        let ct = "application/json; charset=UTF-8";
        let path = req.uri().path();
        match (req.method(), path) {
            (&Method::GET | &Method::HEAD, "/") => {
                let v = json!({
                    "name": "elasticsearch-logging-0",
                    "cluster_name": "kubernetes-logging",
                    "cluster_uuid": "k8sLoggingSimCluster01",
                    "version": {"number": "7.10.2", "build_flavor": "oss", "lucene_version": "8.7.0"},
                    "tagline": "You Know, for Search",
                });
                respond(200, ct, render(&v, pretty))
            }
            (&Method::GET | &Method::HEAD, "/_cluster/health") => {
                let (active, unassigned) = match status {
                    "green" => (10, 0),
                    "yellow" => (5, 5),
                    _ => (3, 7),
                };
                let v = json!({
                    "cluster_name": "kubernetes-logging",
                    "status": status,
                    "timed_out": false,
                    "number_of_nodes": 1,
                    "number_of_data_nodes": 1,
                    "active_primary_shards": 5,
                    "active_shards": active,
                    "relocating_shards": 0,
                    "initializing_shards": 0,
                    "unassigned_shards": unassigned,
                    "delayed_unassigned_shards": 0,
                    "number_of_pending_tasks": 0,
                    "number_of_in_flight_fetch": 0,
                    "task_max_waiting_in_queue_millis": 0,
                    "active_shards_percent_as_number": f64::from(active) * 10.0,
                });
                respond(200, ct, render(&v, pretty))
            }
            (&Method::GET, "/_cat/health") => {
                let line = format!(
                    "1700000000 00:00:00 kubernetes-logging {status} 1 1 5 5 0 0 0 0 - 100.0%\n"
                );
                respond(200, "text/plain; charset=UTF-8", line)
            }
            (method, _) => {
                let v = json!({"error": format!("no handler found for uri [{path}] and method [{method}]")});
                respond(400, ct, render(&v, pretty))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_like_elasticsearch() {
        let out = render(&json!({"status": "green", "n": {"a": 1}}), true);
        assert!(out.contains("\"status\" : \"green\""), "{out}");
        assert!(out.contains("  \"n\" : {"), "{out}");
        assert_eq!(render(&json!({"a": 1}), false), "{\"a\":1}");
    }
}
