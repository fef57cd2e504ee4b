//! Driving `wrk` (the Debian package) and reading its results.
//!
//! Contract: [`run`] starts `wrk` with a Lua `done` hook that prints one `WRKJSON {...}` line
//! (requests, duration, bytes, errors by kind, latency percentiles in microseconds), waits for it
//! bounded by the duration plus a margin, kills it on timeout, and parses that line.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// The Lua hook: wrk's own summary and latency histogram as one JSON line.
const SCRIPT: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean))
end
"#;

/// What one wrk run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WrkResult {
    pub(crate) requests: u64,
    pub(crate) duration_us: u64,
    pub(crate) bytes: u64,
    pub(crate) connect: u64,
    pub(crate) read: u64,
    pub(crate) write: u64,
    pub(crate) status: u64,
    pub(crate) timeout: u64,
    pub(crate) p50_us: u64,
    pub(crate) p90_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) mean_us: f64,
}

impl WrkResult {
    pub(crate) fn errors(&self) -> u64 {
        self.connect + self.read + self.write + self.status + self.timeout
    }

    pub(crate) fn seconds(&self) -> f64 {
        self.duration_us as f64 / 1e6
    }

    pub(crate) fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.seconds().max(1e-9)
    }
}

/// Writes the Lua hook into `dir`; returns its path.
pub(crate) fn write_script(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join("report.lua");
    std::fs::write(&path, SCRIPT).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// One wrk run.
pub(crate) struct Run<'a> {
    pub(crate) script: &'a Path,
    pub(crate) url: String,
    pub(crate) connections: u32,
    pub(crate) threads: u32,
    pub(crate) duration: Duration,
    pub(crate) auth: Option<&'a str>,
    /// Send `Connection: close`: every request on a new connection (wrk reconnects), for a
    /// connection rate.
    pub(crate) close: bool,
}

pub(crate) async fn run(r: Run<'_>) -> anyhow::Result<WrkResult> {
    let mut cmd = tokio::process::Command::new("wrk");
    cmd.arg(format!("-t{}", r.threads.min(r.connections).max(1)))
        .arg(format!("-c{}", r.connections))
        // wrk takes whole seconds (no `ms` unit).
        .arg(format!("-d{}s", r.duration.as_secs_f64().ceil().max(1.0)))
        .arg("--timeout")
        .arg("10s")
        .arg("-s")
        .arg(r.script);
    if let Some(auth) = r.auth {
        cmd.arg("-H").arg(format!("Authorization: {auth}"));
    }
    if r.close {
        cmd.arg("-H").arg("Connection: close");
    }
    cmd.arg(&r.url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .context("starting wrk (install it with `apt-get install wrk`)")?;
    let limit = r.duration + Duration::from_secs(30);
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .with_context(|| format!("wrk did not finish within {limit:?}"))??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("WRKJSON ")) else {
        bail!(
            "wrk printed no result ({}): {} {}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    };
    serde_json::from_str(line).with_context(|| format!("parsing wrk's result {line}"))
}
