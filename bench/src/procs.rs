//! Child processes and what `/proc` says about them.
//!
//! Contract: a [`Child`] is killed (SIGKILL) and reaped when dropped, so every exit path of the
//! bench, errors included, leaves no process behind. [`Child::wait_for_line`] reads the child's
//! stdout on a thread and waits, bounded in time, for a line with a given prefix (`Starting to
//! serve on`, `listening on`). The `/proc` readers return CPU time (`utime + stime` of
//! `/proc/<pid>/stat`), `VmRSS`/`VmHWM` of `/proc/<pid>/status`, and the number of open file
//! descriptors (`/proc/<pid>/fd`).

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A child process that dies with its handle.
pub(crate) struct Child {
    name: String,
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    /// When `spawn` returned, for start-up times.
    pub(crate) spawned_at: Instant,
}

impl Child {
    /// Spawns `cmd` with stdout piped (read by a thread) and stderr to `stderr_log`.
    pub(crate) fn spawn(
        name: &str,
        mut cmd: Command,
        stderr_log: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let log = std::fs::File::create(stderr_log)
            .with_context(|| format!("creating {}", stderr_log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let spawned_at = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        let (tx, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Self {
            name: name.to_owned(),
            child,
            lines,
            spawned_at,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for a stdout line starting with `prefix`; returns the rest of the
    /// line and when it arrived.
    pub(crate) fn wait_for_line(
        &mut self,
        prefix: &str,
        timeout: Duration,
        stderr_log: &std::path::Path,
    ) -> anyhow::Result<(String, Instant)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return Ok((rest.trim().to_owned(), Instant::now()));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!(
                        "{} printed no `{prefix}` line within {timeout:?}; its stderr: {}",
                        self.name,
                        tail(stderr_log)
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    bail!(
                        "{} exited ({}) before printing `{prefix}`; its stderr: {}",
                        self.name,
                        status.map_or_else(|| "unknown status".to_owned(), |s| s.to_string()),
                        tail(stderr_log)
                    )
                }
            }
        }
    }

    /// Whether the child is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last lines of a log file, on one line, for error messages.
pub(crate) fn tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    if lines.is_empty() {
        return "(empty)".to_owned();
    }
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Clock ticks per second for `/proc/<pid>/stat` times (`getconf CLK_TCK`, 100 on Linux).
pub(crate) fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// CPU seconds (user + system) the process has used so far.
pub(crate) fn cpu_seconds(pid: u32, ticks: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; fields after its closing paren are plain.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After `)`: state is field 3, so utime (14) and stime (15) are at indices 11 and 12.
    let utime: f64 = fields
        .get(11)
        .and_then(|f| f.parse().ok())
        .context("utime")?;
    let stime: f64 = fields
        .get(12)
        .and_then(|f| f.parse().ok())
        .context("stime")?;
    Ok((utime + stime) / ticks)
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in bytes.
pub(crate) fn status_bytes(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            let kb: u64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .with_context(|| format!("parsing {field} of /proc/{pid}/status"))?;
            return Ok(kb * 1024);
        }
    }
    bail!("/proc/{pid}/status has no {field}")
}

/// Resets the peak RSS (`VmHWM`) of a process we own (`echo 5 > /proc/<pid>/clear_refs`).
pub(crate) fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Open file descriptors of a process.
pub(crate) fn open_fds(pid: u32) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("listing /proc/{pid}/fd"))?
        .count())
}
