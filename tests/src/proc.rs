//! Starting the real `kgate` and `kubectl` binaries for end-to-end tests.
//!
//! How the `kgate` binary is found: `KGATE_BIN` when set; otherwise the test process (a test
//! binary in `<target>/<profile>/deps/`) builds it once with `cargo build -p kgate --bin kgate`
//! into the same target directory and profile, so `cargo nextest run -p tests` always tests
//! the current source (a no-op build when it is up to date). `kubectl` is `/usr/bin/kubectl`
//! or the first `kubectl` on `PATH`; tests that need it skip with a visible message when it is
//! missing.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The `kgate` binary to test, built on first use.
pub fn kgate_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("KGATE_BIN") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("test executable path");
        // <target>/<profile>/deps/<test>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let target_dir = profile_dir.parent().expect("target dir");
        let profile = profile_dir
            .file_name()
            .and_then(|p| p.to_str())
            .unwrap_or("debug");
        let bin = profile_dir.join("kgate");
        if is_fresh(&bin) {
            return bin;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "kgate",
            "--bin",
            "kgate",
            "--target-dir",
        ])
        .arg(target_dir);
        if profile != "debug" {
            cmd.args([
                "--profile",
                if profile == "release" {
                    "release"
                } else {
                    profile
                },
            ]);
        }
        let status = cmd.status().expect("running cargo build for kgate");
        assert!(status.success(), "cargo build -p kgate --bin kgate failed");
        profile_dir.join("kgate")
    })
    .clone()
}

/// True when `bin` exists and is newer than every source file of the workspace's crates, so
/// no `cargo build` (which waits for the shared build lock) is needed.
fn is_fresh(bin: &Path) -> bool {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return false;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut stack = vec![root.join("Cargo.lock"), root.join("Cargo.toml")];
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.join("Cargo.toml").is_file() && !path.ends_with("target") {
                stack.push(path);
            }
        }
    }
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if path.ends_with("target") || path.ends_with("tests") && path.parent() == Some(&*root)
            {
                continue;
            }
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.modified().is_ok_and(|m| m > built) {
            return false;
        }
    }
    true
}

/// `kubectl`, when installed.
pub fn kubectl_bin() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/bin/kubectl");
    if fixed.is_file() {
        return Some(fixed);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.is_file())
    })
}

/// Where a started proxy listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Addr {
    /// The TCP address; panics for a unix socket.
    pub fn tcp(&self) -> SocketAddr {
        match self {
            Addr::Tcp(a) => *a,
            Addr::Unix(p) => panic!("expected TCP, got unix socket {}", p.display()),
        }
    }
}

/// A started binary: stdout collected line by line, stderr in a file; killed on drop.
pub struct Process {
    pub child: Child,
    /// Every line it printed on stdout so far.
    lines: Arc<Mutex<Vec<String>>>,
    /// Its stdout has ended (it exited, or closed it).
    ended: Arc<std::sync::atomic::AtomicBool>,
    stderr_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    /// Starts `program args...` with `env` added to the environment.
    pub fn spawn(program: &Path, args: &[String], env: &[(&str, &Path)]) -> Process {
        let dir = tempfile::tempdir().expect("tempdir");
        let stderr_path = dir.path().join("stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let collected = lines.clone();
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let end = ended.clone();
        std::thread::spawn(move || {
            // Keep reading so the child never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                collected.lock().unwrap().push(line);
            }
            end.store(true, std::sync::atomic::Ordering::Release);
        });
        Process {
            child,
            lines,
            ended,
            stderr_path,
            _dir: dir,
        }
    }

    /// Every stdout line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The first stdout line at or after line `skip` that starts with `prefix`, waiting up to
    /// `limit`; `None` when it does not come (or the process exits first).
    pub fn wait_line(&self, skip: usize, prefix: &str, limit: Duration) -> Option<String> {
        let start = Instant::now();
        loop {
            if let Some(line) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .skip(skip)
                .find(|l| l.starts_with(prefix))
            {
                return Some(line.clone());
            }
            let ended = self.ended.load(std::sync::atomic::Ordering::Acquire);
            if start.elapsed() > limit || ended {
                return self
                    .lines
                    .lock()
                    .unwrap()
                    .iter()
                    .skip(skip)
                    .find(|l| l.starts_with(prefix))
                    .cloned();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the process wrote on stderr so far.
    pub fn stderr(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.stderr_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Peak resident memory (`VmHWM`) in KiB, from `/proc`.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    /// Sends `signal` (e.g. `TERM`) with the `kill` utility.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit; its exit code, or `None` if still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running proxy process (`kgate proxy`, `kgate serve` or `kubectl proxy`); killed on drop.
/// Derefs to its [`Process`].
pub struct Proxy {
    process: Process,
    pub addr: Addr,
    /// The first line it printed on stdout, with its newline.
    pub banner: String,
}

impl std::ops::Deref for Proxy {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.process
    }
}

impl std::ops::DerefMut for Proxy {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

impl Proxy {
    /// Starts `program args...` and waits (at most 60 s) for `Starting to serve on <addr>`.
    pub fn start(program: &Path, args: &[String]) -> Proxy {
        Proxy::start_with_env(program, args, &[])
    }

    /// [`Proxy::start`] with `env` added to the environment.
    pub fn start_with_env(program: &Path, args: &[String], env: &[(&str, &Path)]) -> Proxy {
        let process = Process::spawn(program, args, env);
        let Some(banner) = process.wait_line(0, "", Duration::from_secs(60)) else {
            let err = process.stderr();
            panic!(
                "{} did not print its start-up line; stderr:\n{err}",
                program.display()
            );
        };
        let addr = banner
            .strip_prefix("Starting to serve on ")
            .unwrap_or_else(|| panic!("unexpected first line {banner:?}"));
        let addr = match addr.parse::<SocketAddr>() {
            Ok(a) => Addr::Tcp(a),
            Err(_) => Addr::Unix(PathBuf::from(addr)),
        };
        Proxy {
            process,
            addr,
            // A line was read, so it ended with a newline.
            banner: format!("{banner}\n"),
        }
    }

    /// The first stdout line (after the start-up line) that starts with `prefix`, waiting up
    /// to `limit` for it; panics with stderr when it does not come.
    pub fn stdout_line(&self, prefix: &str, limit: Duration) -> String {
        match self.process.wait_line(1, prefix, limit) {
            Some(line) => line,
            None => panic!(
                "no stdout line starting with {prefix:?}; stdout: {:?}; stderr:\n{}",
                self.lines(),
                self.stderr()
            ),
        }
    }

    /// `kgate <args>`.
    pub fn kgate(args: &[String]) -> Proxy {
        Proxy::start(&kgate_bin(), args)
    }
}

/// A running port-forward (`kgate forward` or `kubectl port-forward`); killed on drop.
/// Derefs to its [`Process`].
pub struct Forward {
    process: Process,
    /// The local port of the first pair (from its first `Forwarding from` line).
    pub port: u16,
}

impl std::ops::Deref for Forward {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.process
    }
}

impl std::ops::DerefMut for Forward {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

impl Forward {
    /// Starts `program args...` and waits (at most 60 s) for its first `Forwarding from
    /// 127.0.0.1:<port> -> ...` line; `Err` with stderr when it exits or prints none.
    pub fn start(
        program: &Path,
        args: &[String],
        env: &[(&str, &Path)],
    ) -> Result<Forward, (Option<i32>, String)> {
        let mut process = Process::spawn(program, args, env);
        let Some(line) = process.wait_line(0, "Forwarding from ", Duration::from_secs(60)) else {
            let code = process.wait_exit(Duration::from_secs(5));
            return Err((code, process.stderr()));
        };
        let port = line
            .split(" -> ")
            .next()
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        Ok(Forward { process, port })
    }
}

/// Runs `kgate <args>` to completion: (exit code, stdout, stderr).
pub fn run_kgate(args: &[&str]) -> (i32, String, String) {
    run_kgate_with_env(args, &[])
}

/// [`run_kgate`] with `env` added to the environment.
pub fn run_kgate_with_env(args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
    let out = Command::new(kgate_bin())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("running kgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
