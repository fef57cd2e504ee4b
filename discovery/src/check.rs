//! `kgate check`: health checks through the API server's proxy verb, with no gateway running.
//!
//! Contract:
//! - Each target is one `GET` of an API proxy path ([`CheckTarget`]), tried up to
//!   `1 + retries` times, each try bounded by `timeout`, tries `retry_interval` apart; the first
//!   try that meets every expectation ends it. The result is the last try's.
//! - Expectations ([`Expectations`]): the status ([`StatusMatcher`], `2xx` by default), then
//!   optionally a jq expression on the JSON body ([`JsonExpr`]) and a regular expression that
//!   must match somewhere in the body (decoded as UTF-8, invalid bytes replaced).
//! - Targets run at most `parallel` at a time; results come back in the order of the targets.
//! - When the API server answers 503 for a service target because of its port or endpoints
//!   (`no endpoints available`, `no service port`), the service is read and the reason says
//!   why: the ports it does have, as targets to copy, or that no endpoint is ready.
//! - [`exit_code`]: 0 when every target passed, 1 when any failed. A transport failure (API
//!   server unreachable, timeout) is a failed check, not a usage error: a script asking "is it
//!   healthy?" gets "no".
//! - Latency is measured with `tokio::time`, so tests with paused time see exact values.

use std::time::Duration;

use futures_util::StreamExt;
use regex::Regex;
use serde::Serialize;
use tokio::time::Instant;

use urlgrammar::{Kind, Port, Rest, Target};

use crate::client::{ApiResponse, KubeApi, NamespaceScope, TransportError, list_services};
use crate::expr::{ExprOutcome, JsonExpr};
use crate::model::{Readiness, ServiceInfo};

/// At most this much of a checked body is read.
pub const MAX_CHECK_BODY: usize = 8 << 20;

/// One thing to check: a label for people and the API server path to `GET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckTarget {
    /// The target as the user wrote it (`svc/kube-system/es:9200/_cluster/health`).
    pub label: String,
    /// The API proxy path and query, encoded, beginning with `/api/v1/`.
    pub path: String,
}

/// `--expect-status`: a comma-separated list of codes (`200`), classes (`2xx`) and inclusive
/// ranges (`200-299`); a status passes when any item matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMatcher {
    items: Vec<(u16, u16)>,
    source: String,
}

/// A malformed `--expect-status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid --expect-status {given:?}: {item:?} is not a status code (200), class (2xx) or range (200-299)"
)]
pub struct StatusMatcherError {
    /// The whole value given.
    pub given: String,
    /// The item that did not parse.
    pub item: String,
}

impl StatusMatcher {
    /// Parses the flag's value.
    pub fn parse(s: &str) -> Result<StatusMatcher, StatusMatcherError> {
        let bad = |item: &str| StatusMatcherError {
            given: s.to_owned(),
            item: item.to_owned(),
        };
        let code = |t: &str| t.parse::<u16>().ok().filter(|c| (100..=599).contains(c));
        let mut items = Vec::new();
        for item in s.split(',').map(str::trim) {
            let lower = item.to_ascii_lowercase();
            let range = if let Some(class) = lower.strip_suffix("xx") {
                match class.parse::<u16>() {
                    Ok(d) if (1..=5).contains(&d) && class.len() == 1 => (d * 100, d * 100 + 99),
                    _ => return Err(bad(item)),
                }
            } else if let Some((lo, hi)) = item.split_once('-') {
                match (code(lo.trim()), code(hi.trim())) {
                    (Some(lo), Some(hi)) if lo <= hi => (lo, hi),
                    _ => return Err(bad(item)),
                }
            } else {
                let c = code(item).ok_or_else(|| bad(item))?;
                (c, c)
            };
            items.push(range);
        }
        Ok(StatusMatcher {
            items,
            source: s.to_owned(),
        })
    }

    /// Whether `status` is accepted.
    pub fn matches(&self, status: u16) -> bool {
        self.items
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

impl Default for StatusMatcher {
    /// `2xx`.
    fn default() -> Self {
        StatusMatcher {
            items: vec![(200, 299)],
            source: "2xx".to_owned(),
        }
    }
}

impl std::fmt::Display for StatusMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

/// What a response must satisfy.
#[derive(Debug, Default)]
pub struct Expectations {
    /// The accepted statuses.
    pub status: StatusMatcher,
    /// A jq expression the JSON body must satisfy.
    pub json: Option<JsonExpr>,
    /// A regular expression that must match somewhere in the body.
    pub body: Option<Regex>,
}

/// How checks are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    /// Bound on each try, from sending the request to the end of the body.
    pub timeout: Duration,
    /// Extra tries after a failed one.
    pub retries: u32,
    /// Pause between tries.
    pub retry_interval: Duration,
    /// Targets checked at the same time (at least 1).
    pub parallel: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            timeout: Duration::from_secs(10),
            retries: 0,
            retry_interval: Duration::from_secs(1),
            parallel: 4,
        }
    }
}

/// Pass or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every expectation was met.
    Pass,
    /// At least one was not, or no response came.
    Fail,
}

/// The result of checking one target; one element of [`CheckReport::results`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// The target as given.
    pub target: String,
    /// The API server path that was requested.
    pub path: String,
    /// The HTTP status of the last try; `null` when no response came.
    pub status: Option<u16>,
    /// Time of the last try, in milliseconds.
    pub latency_ms: f64,
    /// `pass` or `fail`.
    pub verdict: Verdict,
    /// Why it failed, or what passed.
    pub reason: String,
    /// Tries made (1 + retries used).
    pub attempts: u32,
}

/// The JSON document `kgate check -o json` prints:
///
/// ```json
/// {"results": [{"target": "svc/kube-system/elasticsearch-logging:9200/_cluster/health",
///               "path": "/api/v1/namespaces/kube-system/services/elasticsearch-logging:9200/proxy/_cluster/health",
///               "status": 200, "latencyMs": 3.2, "verdict": "pass",
///               "reason": "status 200 matches 2xx; .status != \"red\" holds", "attempts": 1}],
///  "passed": 1, "failed": 0}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// One result per target, in the order given.
    pub results: Vec<CheckResult>,
    /// Targets that passed.
    pub passed: usize,
    /// Targets that failed.
    pub failed: usize,
}

impl CheckReport {
    fn new(results: Vec<CheckResult>) -> CheckReport {
        let passed = results
            .iter()
            .filter(|r| r.verdict == Verdict::Pass)
            .count();
        let failed = results.len() - passed;
        CheckReport {
            results,
            passed,
            failed,
        }
    }
}

/// 0 when every result passed, else 1.
pub fn exit_code(report: &CheckReport) -> u8 {
    u8::from(report.failed > 0)
}

/// Checks every target; results are in the order of `targets`.
pub async fn run_checks<C: KubeApi>(
    client: &C,
    targets: &[CheckTarget],
    expect: &Expectations,
    opts: &CheckOptions,
) -> CheckReport {
    let results = futures_util::stream::iter(targets)
        .map(|t| check_one(client, t, expect, opts))
        .buffered(opts.parallel.max(1))
        .collect::<Vec<_>>()
        .await;
    CheckReport::new(results)
}

async fn check_one<C: KubeApi>(
    client: &C,
    target: &CheckTarget,
    expect: &Expectations,
    opts: &CheckOptions,
) -> CheckResult {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let start = Instant::now();
        let response = match tokio::time::timeout(
            opts.timeout,
            client.get(&target.path, MAX_CHECK_BODY),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout {
                seconds: opts.timeout.as_secs_f64(),
            }),
        };
        // Microsecond precision: more digits are noise, and they clutter the JSON.
        let latency_ms = (start.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
        let (status, verdict, reason) = match &response {
            Ok(resp) => {
                let (verdict, reason) = judge(resp, expect);
                (Some(resp.status), verdict, reason)
            }
            Err(e) => (None, Verdict::Fail, e.to_string()),
        };
        if verdict == Verdict::Pass || attempts > opts.retries {
            let mut reason = reason;
            if status == Some(503)
                && let Some(hint) = explain_unavailable(client, &target.path, &reason).await
            {
                reason.push_str("; ");
                reason.push_str(&hint);
            }
            return CheckResult {
                target: target.label.clone(),
                path: target.path.clone(),
                status,
                latency_ms,
                verdict,
                reason,
                attempts,
            };
        }
        tokio::time::sleep(opts.retry_interval).await;
    }
}

/// What the service itself says about a 503 the API server gave for it: the port the target
/// names is not one of the service's (the commonest trip, kubernetes/kubectl#1479: a service
/// whose only port is named needs that name in the target), or no endpoint behind the port is
/// ready. `None` for other targets and answers, or when the service cannot be read.
async fn explain_unavailable<C: KubeApi>(client: &C, path: &str, reason: &str) -> Option<String> {
    // The API server's two messages for a port it cannot reach (kubectl-proxy-semantics §2.3).
    if !(reason.contains("no endpoints available for service")
        || reason.contains("no service port"))
    {
        return None;
    }
    let (target, rest) = Target::parse_api_path(path).ok()?;
    if target.kind() != Kind::Service {
        return None;
    }
    let scope = NamespaceScope::One(target.namespace()?.to_owned());
    let services = list_services(client, &scope, None).await.ok()?;
    let service = services.iter().find(|s| s.name == target.name())?;
    Some(port_hint(&target, &rest, service))
}

/// The hint for [`explain_unavailable`], from the service's ports and their readiness.
fn port_hint(target: &Target, rest: &Rest, service: &ServiceInfo) -> String {
    let matched = service.ports.iter().find(|p| match target.port() {
        None => p.name.is_empty(),
        Some(Port::Number(n)) => p.port == *n,
        Some(Port::Name(name)) => p.name == name.as_str(),
    });
    if let Some(port) = matched {
        return match port.readiness {
            Readiness { total: 0, .. } => {
                "the service has no endpoints: does its selector match a running pod?".to_owned()
            }
            Readiness { ready: 0, total } => {
                format!("none of the service's {total} endpoints is ready")
            }
            _ => "the service has ready endpoints now; try again".to_owned(),
        };
    }
    let asked = match target.port() {
        None => "no unnamed port".to_owned(),
        Some(Port::Number(n)) => format!("no port {n}"),
        Some(Port::Name(name)) => format!("no port named {:?}", name.as_str()),
    };
    let ports: Vec<String> = service
        .ports
        .iter()
        .filter_map(|p| {
            let port = Port::parse(&p.port_ref()).ok()?;
            let short = target.clone().with_port(Some(port)).short(rest);
            Some(format!("{short} ({}/{})", p.port, p.protocol))
        })
        .collect();
    match ports.as_slice() {
        [] => format!("the service has {asked}, and no ports at all"),
        [one] => format!("the service has {asked}; its port is {one}"),
        many => format!("the service has {asked}; its ports are {}", many.join(", ")),
    }
}

/// Applies the expectations to one response.
pub fn judge(resp: &ApiResponse, expect: &Expectations) -> (Verdict, String) {
    if !expect.status.matches(resp.status) {
        let mut reason = format!("status {} does not match {}", resp.status, expect.status);
        if let Some(detail) = status_message(&resp.body) {
            reason.push_str(": ");
            reason.push_str(&detail);
        } else if let Some(location) = resp.location.as_deref().filter(|_| resp.status / 100 == 3) {
            reason.push_str(": redirects to ");
            reason.push_str(&redirect_target(location));
        }
        return (Verdict::Fail, reason);
    }
    let mut passed = vec![format!("status {} matches {}", resp.status, expect.status)];
    if resp.truncated && (expect.json.is_some() || expect.body.is_some()) {
        return (
            Verdict::Fail,
            format!("body is larger than {MAX_CHECK_BODY} bytes; not checked"),
        );
    }
    if let Some(expr) = &expect.json {
        match expr.evaluate(&resp.body) {
            ExprOutcome::Pass => passed.push(format!("{} holds", expr.source())),
            ExprOutcome::Fail(reason) => return (Verdict::Fail, reason),
        }
    }
    if let Some(re) = &expect.body {
        let text = String::from_utf8_lossy(&resp.body);
        if re.is_match(&text) {
            passed.push(format!("body matches /{}/", re.as_str()));
        } else {
            return (
                Verdict::Fail,
                format!("body does not match /{}/", re.as_str()),
            );
        }
    }
    (Verdict::Pass, passed.join("; "))
}

/// Where a redirect points, as a short target when it is an API proxy path (the API server
/// rewrites a service's `Location` into one), else as sent.
fn redirect_target(location: &str) -> String {
    match Target::parse_api_path(location) {
        Ok((target, rest)) => target.short(&rest),
        Err(_) => location.to_owned(),
    }
}

/// The `message` of a Kubernetes `Status` body (what the API server says when it cannot proxy,
/// e.g. `no endpoints available for service "x"`).
fn status_message(body: &[u8]) -> Option<String> {
    wire::status::parse(body)
        .map(|s| s.message)
        .filter(|m| !m.is_empty())
}

/// One line per result: verdict, target, status, latency, reason, in aligned columns.
pub fn render_text(report: &CheckReport) -> String {
    let rows: Vec<Vec<String>> = report
        .results
        .iter()
        .map(|r| {
            vec![
                match r.verdict {
                    Verdict::Pass => "PASS".to_owned(),
                    Verdict::Fail => "FAIL".to_owned(),
                },
                r.target.clone(),
                r.status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                format_latency(r.latency_ms),
                if r.attempts > 1 {
                    format!("{} (after {} tries)", r.reason, r.attempts)
                } else {
                    r.reason.clone()
                },
            ]
        })
        .collect();
    crate::urls::columns(&rows)
}

fn format_latency(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else {
        format!("{ms:.0}ms")
    }
}

/// The current time as RFC 3339 (UTC), for the header of each `--watch` round.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

/// The report as one line of JSON (for `-o json`, and one line per round with `--watch`).
pub fn render_json(report: &CheckReport) -> Result<String, serde_json::Error> {
    let mut s = serde_json::to_string(report)?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;

    use super::*;
    use crate::model::ServicePort;

    fn resp(status: u16, body: &str) -> ApiResponse {
        ApiResponse {
            status,
            content_type: Some("application/json".to_owned()),
            location: None,
            body: Bytes::from(body.to_owned()),
            truncated: false,
        }
    }

    #[test]
    fn status_matchers() {
        let m = StatusMatcher::parse("2xx, 301,400-404").unwrap();
        for (s, ok) in [
            (200, true),
            (299, true),
            (301, true),
            (302, false),
            (404, true),
            (405, false),
        ] {
            assert_eq!(m.matches(s), ok, "{s}");
        }
        for bad in ["", "2x", "6xx", "20", "abc", "404-400", "12xx", "200,"] {
            assert!(StatusMatcher::parse(bad).is_err(), "{bad:?}");
        }
        assert!(StatusMatcher::default().matches(204));
        assert!(!StatusMatcher::default().matches(503));
    }

    #[test]
    fn verdicts_for_each_expectation_kind() {
        let es = r#"{"status":"red","number_of_nodes":3}"#;
        let mut expect = Expectations::default();
        assert_eq!(judge(&resp(200, es), &expect).0, Verdict::Pass);
        let (v, reason) = judge(
            &resp(
                503,
                r#"{"kind":"Status","message":"no endpoints available for service \"x\""}"#,
            ),
            &expect,
        );
        assert_eq!(v, Verdict::Fail);
        assert_eq!(
            reason,
            "status 503 does not match 2xx: no endpoints available for service \"x\""
        );

        expect.json = Some(JsonExpr::compile(r#".status != "red""#).unwrap());
        let (v, reason) = judge(&resp(200, es), &expect);
        assert_eq!(
            (v, reason.as_str()),
            (Verdict::Fail, r#".status != "red" gave false"#)
        );
        let (v, reason) = judge(&resp(200, &es.replace("red", "green")), &expect);
        assert_eq!(v, Verdict::Pass);
        assert_eq!(reason, r#"status 200 matches 2xx; .status != "red" holds"#);

        expect.json = None;
        expect.body = Some(Regex::new(r#""number_of_nodes":\s*[3-9]"#).unwrap());
        assert_eq!(judge(&resp(200, es), &expect).0, Verdict::Pass);
        expect.body = Some(Regex::new("yellow").unwrap());
        assert_eq!(
            judge(&resp(200, es), &expect),
            (Verdict::Fail, "body does not match /yellow/".to_owned())
        );

        let mut big = resp(200, es);
        big.truncated = true;
        assert_eq!(judge(&big, &expect).0, Verdict::Fail);
    }

    #[test]
    fn a_redirect_says_where_it_points() {
        let expect = Expectations::default();
        let mut moved = resp(302, "<a>Found</a>");
        moved.location =
            Some("/api/v1/namespaces/monitoring/services/grafana:http/proxy/login".to_owned());
        assert_eq!(
            judge(&moved, &expect).1,
            "status 302 does not match 2xx: redirects to svc/monitoring/grafana:http/login"
        );
        moved.location = Some("https://sso.example/auth?next=%2F".to_owned());
        assert_eq!(
            judge(&moved, &expect).1,
            "status 302 does not match 2xx: redirects to https://sso.example/auth?next=%2F"
        );
        // Only redirects say so.
        let mut created = resp(201, "");
        created.location = Some("/x".to_owned());
        let strict = Expectations {
            status: StatusMatcher::parse("200").unwrap(),
            ..Default::default()
        };
        assert_eq!(judge(&created, &strict).1, "status 201 does not match 200");
    }

    #[test]
    fn port_hints_name_the_ports_or_the_endpoints() {
        let port = |name: &str, port, ready, total| ServicePort {
            name: name.to_owned(),
            port,
            protocol: "TCP".to_owned(),
            app_protocol: None,
            readiness: Readiness { ready, total },
        };
        let mut service = ServiceInfo {
            namespace: "web".to_owned(),
            name: "api".to_owned(),
            labels: Default::default(),
            service_type: "ClusterIP".to_owned(),
            load_balancer_ingress: Vec::new(),
            ports: vec![port("", 8080, 0, 2)],
        };
        let (target, rest) =
            Target::parse_api_path("/api/v1/namespaces/web/services/api/proxy/").unwrap();
        assert_eq!(
            port_hint(&target, &rest, &service),
            "none of the service's 2 endpoints is ready"
        );
        let (by_name, rest) =
            Target::parse_api_path("/api/v1/namespaces/web/services/api:grpc/proxy").unwrap();
        assert_eq!(
            port_hint(&by_name, &rest, &service),
            "the service has no port named \"grpc\"; its port is svc/web/api:8080 (8080/TCP)"
        );
        service.ports[0].readiness = Readiness { ready: 1, total: 2 };
        assert_eq!(
            port_hint(&target, &rest, &service),
            "the service has ready endpoints now; try again"
        );
        service.ports.clear();
        assert_eq!(
            port_hint(&target, &rest, &service),
            "the service has no unnamed port, and no ports at all"
        );
    }

    /// Answers each path from a script of (delay, status, body) per call.
    struct Scripted {
        calls: AtomicUsize,
        script: Mutex<Vec<(Duration, u16, &'static str)>>,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
    }

    impl Scripted {
        fn new(script: Vec<(Duration, u16, &'static str)>) -> Scripted {
            Scripted {
                calls: AtomicUsize::new(0),
                script: Mutex::new(script),
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
            }
        }
    }

    impl KubeApi for Scripted {
        async fn get(&self, _path: &str, _max: usize) -> Result<ApiResponse, TransportError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let (delay, status, body) = {
                let script = self.script.lock().unwrap();
                script[n.min(script.len() - 1)]
            };
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok(resp(status, body))
        }
    }

    fn target(label: &str) -> CheckTarget {
        CheckTarget {
            label: label.to_owned(),
            path: format!("/api/v1/namespaces/ns/services/{label}/proxy/"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_the_status_changes() {
        let api = Scripted::new(vec![
            (Duration::from_millis(5), 503, "{}"),
            (Duration::from_millis(5), 503, "{}"),
            (Duration::from_millis(7), 200, "{}"),
        ]);
        let opts = CheckOptions {
            retries: 3,
            retry_interval: Duration::from_secs(2),
            ..Default::default()
        };
        let start = Instant::now();
        let report = run_checks(&api, &[target("a")], &Expectations::default(), &opts).await;
        let r = &report.results[0];
        assert_eq!(
            (r.verdict, r.status, r.attempts),
            (Verdict::Pass, Some(200), 3)
        );
        assert_eq!(r.latency_ms, 7.0);
        // Two pauses between three tries (paused clock: exact).
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(5 + 2000 + 5 + 2000 + 7)
        );
        assert_eq!(exit_code(&report), 0);

        let api = Scripted::new(vec![(Duration::ZERO, 500, "{}")]);
        let opts = CheckOptions {
            retries: 2,
            retry_interval: Duration::from_millis(10),
            ..Default::default()
        };
        let report = run_checks(&api, &[target("a")], &Expectations::default(), &opts).await;
        assert_eq!((report.results[0].attempts, report.failed), (3, 1));
        assert_eq!(exit_code(&report), 1);
        assert!(render_text(&report).contains("(after 3 tries)"));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_responses_time_out() {
        let api = Scripted::new(vec![(Duration::from_secs(30), 200, "{}")]);
        let opts = CheckOptions {
            timeout: Duration::from_millis(1500),
            ..Default::default()
        };
        let report = run_checks(&api, &[target("slow")], &Expectations::default(), &opts).await;
        let r = &report.results[0];
        assert_eq!((r.verdict, r.status), (Verdict::Fail, None));
        assert_eq!(r.reason, "no response from the API server within 1.5s");
        assert_eq!(r.latency_ms, 1500.0);
    }

    #[tokio::test(start_paused = true)]
    async fn parallelism_is_bounded_and_order_kept() {
        let api = Scripted::new(vec![(Duration::from_millis(100), 200, "{}")]);
        let targets: Vec<_> = (0..7).map(|i| target(&format!("t{i}"))).collect();
        let opts = CheckOptions {
            parallel: 3,
            ..Default::default()
        };
        let start = Instant::now();
        let report = run_checks(&api, &targets, &Expectations::default(), &opts).await;
        assert_eq!(api.max_in_flight.load(Ordering::SeqCst), 3);
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        let labels: Vec<_> = report.results.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(labels, ["t0", "t1", "t2", "t3", "t4", "t5", "t6"]);
        assert_eq!(report.passed, 7);
    }

    #[test]
    fn json_report_shape() {
        let report = CheckReport::new(vec![CheckResult {
            target: "svc/ns/a".to_owned(),
            path: "/api/v1/namespaces/ns/services/a/proxy/".to_owned(),
            status: None,
            latency_ms: 2.5,
            verdict: Verdict::Fail,
            reason: "no response".to_owned(),
            attempts: 1,
        }]);
        let v: serde_json::Value = serde_json::from_str(&render_json(&report).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"results": [{"target": "svc/ns/a", "path": "/api/v1/namespaces/ns/services/a/proxy/",
                "status": null, "latencyMs": 2.5, "verdict": "fail", "reason": "no response", "attempts": 1}],
                "passed": 0, "failed": 1})
        );
        assert_eq!(
            render_text(&report),
            "FAIL   svc/ns/a   -   2ms   no response\n"
        );
    }
}
