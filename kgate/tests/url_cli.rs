//! `kgate url parse` and `kgate url build`, run as the real binary.

use std::process::{Command, Output};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn kgate(args: &[&str]) -> std::io::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_kgate"))
        .args(args)
        .output()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs kgate, expects exit 0, returns stdout.
fn ok(args: &[&str]) -> std::io::Result<String> {
    let out = kgate(args)?;
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    Ok(stdout(&out))
}

/// Runs kgate, expects exit 2 and one line on stderr, returns it.
fn usage_error(args: &[&str]) -> std::io::Result<String> {
    let out = kgate(args)?;
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
    assert!(stdout(&out).is_empty(), "{args:?} printed {}", stdout(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("error: "), "{err}");
    Ok(err)
}

#[test]
fn parse_prints_the_target_and_every_form() -> TestResult {
    let out = ok(&[
        "url",
        "parse",
        "/api/v1/namespaces/kube-system/services/elasticsearch-logging:9200/proxy/_cluster/health?pretty",
    ])?;
    for line in [
        "form:      API proxy path",
        "kind:      service",
        "namespace: kube-system",
        "name:      elasticsearch-logging",
        "scheme:    (none: http)",
        "port:      9200",
        "path:      /_cluster/health",
        "query:     pretty",
        "short:     svc/kube-system/elasticsearch-logging:9200/_cluster/health?pretty",
        "gateway:   http://localhost:8001/api/v1/namespaces/kube-system/services/elasticsearch-logging:9200/proxy/_cluster/health?pretty",
        "origin:    http://9200.elasticsearch-logging.kube-system.svc.localhost:8001/_cluster/health?pretty",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    Ok(())
}

#[test]
fn parse_json_is_for_scripts() -> TestResult {
    let out = ok(&[
        "url",
        "parse",
        "-o",
        "json",
        "http://https.web.ns.https-svc.prod.localhost:8001/x?y",
    ])?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(v["form"], "origin");
    assert_eq!(v["target"]["kind"], "service");
    assert_eq!(v["target"]["namespace"], "ns");
    assert_eq!(v["target"]["scheme"], "https");
    assert_eq!(v["target"]["port"], "https");
    assert_eq!(v["context"], "prod");
    assert_eq!(v["rest"]["path"], "/x");
    assert_eq!(v["rest"]["query"], "y");
    assert_eq!(
        v["forms"]["api"],
        "/api/v1/namespaces/ns/services/https:web:https/proxy/x?y"
    );
    Ok(())
}

#[test]
fn parse_takes_the_default_namespace() -> TestResult {
    let out = ok(&[
        "url",
        "parse",
        "--namespace",
        "monitoring",
        "svc/grafana:3000/login",
    ])?;
    assert!(
        out.contains(
            "api:       /api/v1/namespaces/monitoring/services/grafana:3000/proxy/login\n"
        ),
        "{out}"
    );
    Ok(())
}

#[test]
fn build_prints_one_form_alone() -> TestResult {
    let api = ok(&[
        "url",
        "build",
        "svc/monitoring/grafana",
        "--path",
        "api/health",
        "--form",
        "api",
    ])?;
    assert_eq!(
        api,
        "/api/v1/namespaces/monitoring/services/grafana/proxy/api/health\n"
    );
    let origin = ok(&[
        "url",
        "build",
        "node/n1",
        "--port",
        "10255",
        "--form",
        "origin",
        "--gateway-host",
        "127.0.0.1:9000",
    ])?;
    assert_eq!(origin, "http://10255.n1.node.localhost:9000/\n");
    let gateway = ok(&[
        "url",
        "build",
        "pod/ns/web-0",
        "--scheme",
        "https",
        "--form",
        "gateway",
        "--gateway-host",
        "http://kgate.example:80",
    ])?;
    assert_eq!(
        gateway,
        "http://kgate.example:80/api/v1/namespaces/ns/pods/https:web-0:/proxy\n"
    );
    let short = ok(&[
        "url",
        "build",
        "web.ns.svc.localhost",
        "--form",
        "short",
        "--path",
        "/a?b",
    ])?;
    assert_eq!(short, "svc/ns/web/a?b\n");
    Ok(())
}

#[test]
fn build_all_in_json() -> TestResult {
    let out = ok(&[
        "url",
        "build",
        "pod/db/web-0.web",
        "-o",
        "json",
        "--context",
        "c1",
    ])?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(v["api"], "/api/v1/namespaces/db/pods/web-0.web/proxy");
    assert_eq!(v["short"], "pod/db/web-0.web");
    assert!(v["origin"].is_null());
    assert!(
        v["origin_error"]
            .as_str()
            .is_some_and(|e| e.contains("holds a '.'")),
        "{v}"
    );
    Ok(())
}

#[test]
fn bad_input_exits_2_with_one_line() -> TestResult {
    let err = usage_error(&["url", "parse", "svc/ns/web:0"])?;
    assert!(err.contains("port number \"0\""), "{err}");
    let err = usage_error(&[
        "url",
        "parse",
        "/api/v1/namespaces/ns/services/web/proxy/../../../nodes/n1/proxy",
    ])?;
    assert!(err.contains("\"..\""), "{err}");
    let err = usage_error(&["url", "parse", "svc/grafana"])?;
    assert!(err.contains("no default namespace"), "{err}");
    let err = usage_error(&["url", "build", "pod/db/web-0.web", "--form", "origin"])?;
    assert!(err.contains("has no origin host"), "{err}");
    let err = usage_error(&["url", "build", "svc/ns/web/x", "--path", "/y"])?;
    assert!(err.contains("give the path once"), "{err}");
    let err = usage_error(&["url", "build", "svc/ns/web", "--context", "svc"])?;
    assert!(
        err.contains("--context") && err.contains("kind label"),
        "{err}"
    );
    let err = usage_error(&["url", "build", "svc/ns/web", "--gateway-host", "a@b"])?;
    assert!(err.contains("user information"), "{err}");
    Ok(())
}

#[test]
fn usage_errors_exit_2() -> TestResult {
    let out = kgate(&["url", "parse"])?;
    assert_eq!(out.status.code(), Some(2));
    let out = kgate(&["url", "build", "svc/ns/web", "--form", "nope"])?;
    assert_eq!(out.status.code(), Some(2));
    Ok(())
}
