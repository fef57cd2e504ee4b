//! The bench's world: one stand-in API server, a kubeconfig for it, and the proxies in front.
//!
//! Contract: [`World::start`] generates the certificates and token into a temporary
//! directory, starts the stand-in (`bench upstream`, a child process) and writes a kubeconfig
//! whose current context reaches it with the token. [`World::start_proxy`] starts `kubectl
//! proxy --port=0` or `kgate proxy --port=0` against that kubeconfig and measures its start-up
//! (spawn to the `Starting to serve on` line, and to the first `200`) and idle memory. All
//! addresses are on `127.0.0.1`; every child dies with its handle.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use bytes::Bytes;
use http::Method;

use crate::client::Endpoint;
use crate::procs::{self, Child};
use simcluster::pki::Pki;

use crate::upstream::PROXY_PREFIX;

/// How long a child may take to say it is serving.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Which way requests reach the stand-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Direct,
    Kubectl,
    Kgate,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Kubectl => "kubectl proxy",
            Kind::Kgate => "kgate",
        }
    }

    pub(crate) fn parse(s: &str) -> anyhow::Result<Self> {
        match s.trim() {
            "direct" => Ok(Kind::Direct),
            "kubectl" => Ok(Kind::Kubectl),
            "kgate" => Ok(Kind::Kgate),
            other => bail!("unknown target `{other}`: use direct, kubectl or kgate"),
        }
    }
}

/// The programs under test.
pub(crate) struct Programs {
    pub(crate) kubectl: PathBuf,
    pub(crate) kgate: PathBuf,
}

impl Programs {
    /// `kgate` defaults to the binary beside this one (`target/release/kgate` when the bench
    /// runs from `target/release/bench`).
    pub(crate) fn resolve(
        kubectl: Option<PathBuf>,
        kgate: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        let kgate = match kgate {
            Some(path) => path,
            None => std::env::current_exe()
                .context("locating the bench binary")?
                .with_file_name("kgate"),
        };
        Ok(Self {
            kubectl: kubectl.unwrap_or_else(|| PathBuf::from("kubectl")),
            kgate,
        })
    }

    pub(crate) fn check_kgate(&self) -> anyhow::Result<()> {
        if !self.kgate.is_file() {
            bail!(
                "the kgate binary is missing at {}: build it with `cargo build --release -p \
                 kgate`, or pass --kgate <path>",
                self.kgate.display()
            );
        }
        Ok(())
    }
}

/// The stand-in and its kubeconfig.
pub(crate) struct World {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) upstream: Child,
    pub(crate) upstream_addr: SocketAddr,
    pub(crate) ca_pem: String,
    pub(crate) token: String,
    pub(crate) kubeconfig: PathBuf,
}

/// A proxy (or direct access) ready for load.
pub(crate) struct Target {
    pub(crate) kind: Kind,
    pub(crate) endpoint: Endpoint,
    pub(crate) child: Option<Child>,
    /// Spawn to the `Starting to serve on` line.
    pub(crate) startup_line: Option<Duration>,
    /// Spawn to the first successful request.
    pub(crate) startup_first: Option<Duration>,
    /// RSS once serving, after one request and a short rest.
    pub(crate) idle_rss: Option<u64>,
}

impl Target {
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::pid)
    }
}

impl World {
    pub(crate) fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("kgate-bench-")
            .tempdir()
            .context("creating a temporary directory")?;
        let pki = Pki::generate()?;
        let token = make_token();
        let cert = dir.path().join("server.crt");
        let key = dir.path().join("server.key");
        let token_file = dir.path().join("token");
        std::fs::write(&cert, pki.server_cert_pem())?;
        std::fs::write(&key, pki.server_key_pem())?;
        std::fs::write(&token_file, &token)?;

        let exe = std::env::current_exe().context("locating the bench binary")?;
        let mut cmd = Command::new(exe);
        cmd.arg("upstream")
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("--token-file")
            .arg(&token_file);
        let log = dir.path().join("upstream.log");
        let mut upstream = Child::spawn("the stand-in API server", cmd, &log)?;
        let (addr, _) = upstream.wait_for_line("listening on ", START_TIMEOUT, &log)?;
        let upstream_addr: SocketAddr = addr
            .parse()
            .with_context(|| format!("the stand-in printed a bad address `{addr}`"))?;

        let kubeconfig = dir.path().join("kubeconfig");
        let ca = base64::engine::general_purpose::STANDARD.encode(pki.ca_pem());
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: bench\n  cluster:\n    \
                 server: https://{upstream_addr}\n    certificate-authority-data: {ca}\n\
                 users:\n- name: bench\n  user:\n    token: {token}\ncontexts:\n- name: bench\n  \
                 context:\n    cluster: bench\n    user: bench\ncurrent-context: bench\n"
            ),
        )?;
        Ok(Self {
            dir,
            upstream,
            upstream_addr,
            ca_pem: pki.ca_pem().to_owned(),
            token,
            kubeconfig,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Direct access to the stand-in.
    pub(crate) fn direct(&self) -> anyhow::Result<Target> {
        Ok(Target {
            kind: Kind::Direct,
            endpoint: Endpoint::direct(self.upstream_addr, &self.ca_pem, &self.token)?,
            child: None,
            startup_line: None,
            startup_first: None,
            idle_rss: None,
        })
    }

    /// Starts `kind` in front of the stand-in and measures its start-up and idle memory.
    pub(crate) async fn start_proxy(
        &mut self,
        kind: Kind,
        programs: &Programs,
        seq: usize,
    ) -> anyhow::Result<Target> {
        if !self.upstream.is_running() {
            bail!(
                "the stand-in API server died; see {}",
                self.path().join("upstream.log").display()
            );
        }
        let mut cmd = match kind {
            Kind::Direct => return self.direct(),
            Kind::Kubectl => Command::new(&programs.kubectl),
            Kind::Kgate => {
                programs.check_kgate()?;
                Command::new(&programs.kgate)
            }
        };
        cmd.arg("proxy")
            .arg("--port=0")
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            // Keep kubectl's discovery cache out of the user's home.
            .env("KUBECACHEDIR", self.path().join("kubecache"))
            .env_remove("KUBECONFIG");
        let log = self
            .path()
            .join(format!("{}-{seq}.log", kind.label().replace(' ', "-")));
        let mut child = Child::spawn(kind.label(), cmd, &log)?;
        let spawned = child.spawned_at;
        let (addr, line_at) = child.wait_for_line("Starting to serve on ", START_TIMEOUT, &log)?;
        let addr: SocketAddr = addr
            .parse()
            .with_context(|| format!("{} printed a bad address `{addr}`", kind.label()))?;
        let endpoint = Endpoint::proxy(addr);
        let first_at = first_success(&endpoint, &format!("{PROXY_PREFIX}small"), START_TIMEOUT)
            .await
            .with_context(|| {
                format!(
                    "{} does not answer; its stderr: {}",
                    kind.label(),
                    procs::tail(&log)
                )
            })?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let idle_rss = procs::status_bytes(child.pid(), "VmRSS").ok();
        Ok(Target {
            kind,
            endpoint,
            child: Some(child),
            startup_line: Some(line_at.duration_since(spawned)),
            startup_first: Some(first_at.duration_since(spawned)),
            idle_rss,
        })
    }
}

/// Polls the small path until it answers `200`; returns when it did. Bounded by `timeout`.
/// When `endpoint` first answered `GET path` with 200, trying every millisecond.
pub(crate) async fn first_success(
    endpoint: &Endpoint,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        match endpoint.connect(Duration::from_secs(2)).await {
            Ok(mut conn) => {
                match conn
                    .request(Method::GET, path, Bytes::new(), Duration::from_secs(5))
                    .await
                {
                    Ok(answer) if answer.status == 200 => return Ok(Instant::now()),
                    Ok(answer) => last = format!("status {}", answer.status),
                    Err(err) => last = format!("{err:#}"),
                }
            }
            Err(err) => last = format!("{err:#}"),
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    bail!("no successful request within {timeout:?} (last: {last})")
}

/// A bearer token for the run: unguessable enough for a loopback bench, never printed.
fn make_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mix = nanos ^ (u128::from(std::process::id()) << 64);
    format!("bench-{mix:032x}")
}
