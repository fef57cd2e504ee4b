//! The standalone `simcluster` binary: prints where it listens, writes the kubeconfig, maps
//! `--service`, and refuses a bad mapping with a one-line error.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn prints_address_and_writes_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kc.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_simcluster"))
        .args(["--port", "0", "--kubeconfig-out"])
        .arg(&kc)
        .args(["--service", "team/mine:web=http://127.0.0.1:9"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.starts_with("Press Ctrl-C")) {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(line);
    }
    let url = seen[0]
        .strip_prefix("simcluster: API server listening on ")
        .unwrap()
        .to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    assert_eq!(seen[1], format!("kubeconfig: {}", kc.display()));
    assert!(
        seen.iter().any(|l| l == "  service team/mine ports [web]"),
        "{seen:?}"
    );
    let yaml = std::fs::read_to_string(&kc).unwrap();
    assert!(
        yaml.contains(&format!("server: {url}")) && yaml.contains("current-context: simcluster")
    );
    let _ = child.kill().await;
}

#[tokio::test]
async fn bad_mapping_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_simcluster"))
        .args(["--service", "nonsense"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: invalid service mapping \"nonsense\""),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}
