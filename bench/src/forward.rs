//! `bench forward`: `kgate forward` beside `kubectl port-forward` and direct access, to one pod
//! of one simcluster, in one run.
//!
//! Contract: a child process (`bench sim`) runs the simulated cluster, so the cluster does not
//! share this process's runtime with the load generator; its `demo/bulk` pod is the target of
//! every figure. Each round starts a fresh forwarder per target (`pod/<name> :<port>`, the form
//! both tools take, so kgate's balancing over pods does not enter the figures), then runs
//! each test for every target in turn, so that the targets share the machine's noise. The
//! figures are medians over the rounds; the ratios are of those medians. The table goes to
//! stdout, and as `forward.md` and `forward.json` to `--out`. Exit code 2 when kgate misses a
//! target of issue 13 (≥ 2× kubectl's throughput and ≥ 2× its connection rate).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Serialize;

use crate::client::Endpoint;
use crate::load::{Args, MIB, Samples, Summed, download, ratio, uptime, version, write_report};
use crate::procs::{self, Child};
use crate::setup::{Programs, START_TIMEOUT, first_success};
use crate::wrk;

/// `bench sim` arguments: the simulated cluster as a child process.
#[derive(Debug, clap::Args)]
pub(crate) struct SimArgs {
    /// Where to write the cluster's kubeconfig.
    #[arg(long)]
    kubeconfig: PathBuf,
}

/// The line `bench sim` prints once it serves: `<prefix><namespace>/<pod> <address>`.
const SIM_LINE: &str = "bench-sim: pod ";

/// Runs a simcluster with the sample apps until killed, and prints which pod the figures use
/// and where it listens.
pub(crate) async fn sim(args: SimArgs) -> anyhow::Result<bool> {
    let cluster = simcluster::SimCluster::builder().start().await?;
    cluster.write_kubeconfig(&args.kubeconfig)?;
    let pod = cluster
        .pods_of("demo", "bulk")
        .into_iter()
        .next()
        .context("simcluster has no demo/bulk pod")?;
    // The service's first replica is that pod.
    let addr = cluster
        .endpoint_addr("demo", "bulk", "http")
        .context("demo/bulk has no endpoint")?;
    println!("{SIM_LINE}demo/{pod} {addr}");
    std::future::pending::<()>().await;
    Ok(true)
}

/// Who is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Direct,
    Kubectl,
    Kgate,
}

impl Kind {
    fn parse(s: &str) -> anyhow::Result<Self> {
        match s.trim() {
            "direct" => Ok(Kind::Direct),
            "kubectl" => Ok(Kind::Kubectl),
            "kgate" => Ok(Kind::Kgate),
            other => bail!("unknown target `{other}`: use direct, kubectl or kgate"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Kubectl => "kubectl port-forward",
            Kind::Kgate => "kgate forward",
        }
    }
}

/// The figures of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Figure {
    BigMibs,
    BigPeakRss,
    ConnRate,
    SmallRps,
    OneConnP50,
    StartupFirst,
    IdleRss,
    Errors,
}

impl Figure {
    const ALL: [Figure; 8] = [
        Figure::BigMibs,
        Figure::BigPeakRss,
        Figure::ConnRate,
        Figure::SmallRps,
        Figure::OneConnP50,
        Figure::StartupFirst,
        Figure::IdleRss,
        Figure::Errors,
    ];

    fn label(self) -> &'static str {
        match self {
            Figure::BigMibs => "large body (1 GiB by default, 1 conn.), MiB/s",
            Figure::BigPeakRss => "large body, peak RSS of the forwarder, MiB",
            Figure::ConnRate => "new connections/s (one small request each, 16 at once)",
            Figure::SmallRps => "small requests, 64 kept-alive conn., req/s",
            Figure::OneConnP50 => "small requests, 1 conn., median latency ms",
            Figure::StartupFirst => "start-up to first answer, ms",
            Figure::IdleRss => "idle RSS, MiB",
            Figure::Errors => "errors (sum over all runs)",
        }
    }

    /// kgate ≥ this × kubectl, where issue 13 sets a target.
    fn target(self) -> Option<f64> {
        match self {
            Figure::BigMibs | Figure::ConnRate => Some(2.0),
            _ => None,
        }
    }
}

/// One forwarder (or none, for direct access) and where to reach the pod through it.
struct Target {
    kind: Kind,
    endpoint: Endpoint,
    child: Option<Child>,
}

impl Target {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::pid)
    }
}

/// The simulated cluster and what the targets need of it.
struct World {
    dir: tempfile::TempDir,
    sim: Child,
    kubeconfig: PathBuf,
    pod: String,
    direct: SocketAddr,
}

impl World {
    fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("kgate-bench-forward-")
            .tempdir()
            .context("creating a temporary directory")?;
        let kubeconfig = dir.path().join("kubeconfig");
        let exe = std::env::current_exe().context("locating the bench binary")?;
        let mut cmd = Command::new(exe);
        cmd.arg("sim").arg("--kubeconfig").arg(&kubeconfig);
        let log = dir.path().join("sim.log");
        let mut sim = Child::spawn("the simulated cluster", cmd, &log)?;
        let (line, _) = sim.wait_for_line(SIM_LINE, START_TIMEOUT, &log)?;
        let (pod, addr) = line
            .split_once(' ')
            .with_context(|| format!("bench sim printed `{line}`"))?;
        let pod = pod.strip_prefix("demo/").unwrap_or(pod).to_owned();
        let direct = addr
            .parse()
            .with_context(|| format!("bench sim printed a bad address `{addr}`"))?;
        Ok(Self {
            dir,
            sim,
            kubeconfig,
            pod,
            direct,
        })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `kind`'s forwarder to the pod (round `seq`), and the time to its first answer.
    async fn start_forwarder(
        &mut self,
        kind: Kind,
        programs: &Programs,
        seq: usize,
    ) -> anyhow::Result<(Target, Option<Duration>)> {
        if !self.sim.is_running() {
            bail!(
                "the simulated cluster died; see {}",
                self.path().join("sim.log").display()
            );
        }
        let mut cmd = match kind {
            Kind::Direct => {
                let target = Target {
                    kind,
                    endpoint: Endpoint::proxy(self.direct),
                    child: None,
                };
                return Ok((target, None));
            }
            Kind::Kubectl => {
                let mut cmd = Command::new(&programs.kubectl);
                cmd.arg("port-forward");
                cmd
            }
            Kind::Kgate => {
                programs.check_kgate()?;
                let mut cmd = Command::new(&programs.kgate);
                cmd.arg("forward");
                cmd
            }
        };
        // A pod's remote port is its container's port: where the app really listens.
        let remote = format!(":{}", self.direct.port());
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(["-n", "demo", &format!("pod/{}", self.pod), &remote])
            .env("KUBECACHEDIR", self.path().join("kubecache"))
            .env_remove("KUBECONFIG");
        let log = self
            .path()
            .join(format!("{}-{seq}.log", kind.label().replace(' ', "-")));
        let mut child = Child::spawn(kind.label(), cmd, &log)?;
        let spawned = child.spawned_at;
        let (rest, _) = child.wait_for_line("Forwarding from 127.0.0.1:", START_TIMEOUT, &log)?;
        let port: u16 = rest
            .split_once(' ')
            .map_or(rest.as_str(), |(port, _)| port)
            .parse()
            .with_context(|| format!("{} printed `Forwarding from {rest}`", kind.label()))?;
        let endpoint = Endpoint::proxy(SocketAddr::from(([127, 0, 0, 1], port)));
        let first = first_success(&endpoint, "/bytes/16", START_TIMEOUT)
            .await
            .with_context(|| {
                format!(
                    "{} does not answer; its stderr: {}",
                    kind.label(),
                    procs::tail(&log)
                )
            })?;
        let target = Target {
            kind,
            endpoint,
            child: Some(child),
        };
        Ok((target, Some(first.duration_since(spawned))))
    }
}

impl Summed for Figure {
    fn is_sum(self) -> bool {
        self == Figure::Errors
    }
}

pub(crate) async fn run(args: Args) -> anyhow::Result<bool> {
    let kinds: Vec<Kind> = args
        .targets
        .iter()
        .map(|s| Kind::parse(s))
        .collect::<anyhow::Result<_>>()?;
    let programs = Programs::resolve(args.kubectl.clone(), args.kgate.clone())?;
    if kinds.contains(&Kind::Kgate) {
        programs.check_kgate()?;
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let started = jiff::Timestamp::now();
    let uptime_before = uptime();
    let mut world = World::start()?;
    let script = wrk::write_script(world.path())?;
    let mut samples: Samples<Figure, Kind> = Samples::default();
    let mut wrk_runs: Vec<serde_json::Value> = Vec::new();
    let rounds = args.rounds.clamp(1, 50);
    let warmup = Duration::from_secs(1).min(args.duration);
    let big = args.big_mib.max(1) * 1024 * 1024;

    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        let mut targets = Vec::new();
        for &kind in &kinds {
            let (target, first) = world
                .start_forwarder(kind, &programs, round)
                .await
                .with_context(|| format!("starting {}", kind.label()))?;
            if let Some(first) = first {
                samples.add(Figure::StartupFirst, kind, first.as_secs_f64() * 1000.0);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            if let Some(rss) = target
                .pid()
                .and_then(|p| procs::status_bytes(p, "VmRSS").ok())
            {
                samples.add(Figure::IdleRss, kind, rss as f64 / MIB);
            }
            targets.push(target);
        }
        let url = |t: &Target| format!("{}/bytes/64", t.endpoint.base_url());
        let runs: [(&str, u32, bool); 3] = [
            ("small64", 64, false),
            ("conn16", 16, true),
            ("small1", 1, false),
        ];
        for (test, connections, close) in runs {
            for t in &targets {
                let run = |duration| wrk::Run {
                    script: &script,
                    url: url(t),
                    connections,
                    threads: 2,
                    duration,
                    auth: None,
                    close,
                };
                let _ = wrk::run(run(warmup)).await?;
                let r = wrk::run(run(args.duration)).await?;
                eprintln!(
                    "  {test:<8} {:<21} {:>9.0} req/s  p50 {:.3} ms  errors {}",
                    t.kind.label(),
                    r.requests_per_second(),
                    r.p50_us as f64 / 1000.0,
                    r.errors()
                );
                match test {
                    "small64" => samples.add(Figure::SmallRps, t.kind, r.requests_per_second()),
                    "conn16" => samples.add(Figure::ConnRate, t.kind, r.requests_per_second()),
                    _ => samples.add(Figure::OneConnP50, t.kind, r.p50_us as f64 / 1000.0),
                }
                samples.add(Figure::Errors, t.kind, r.errors() as f64);
                wrk_runs.push(
                    serde_json::json!({"round": round, "test": test, "target": t.kind, "wrk": r}),
                );
            }
        }
        for t in &targets {
            let path = format!("/bytes/{big}");
            let (mibs, peak, errors) =
                download(&t.endpoint, t.pid(), &path, big, t.kind.label()).await?;
            eprintln!(
                "  large    {:<21} {:>9.1} MiB/s  peak RSS {}",
                t.kind.label(),
                mibs,
                peak.map_or_else(|| "–".to_owned(), |p| format!("{:.1} MiB", p / MIB))
            );
            samples.add(Figure::BigMibs, t.kind, mibs);
            if let Some(p) = peak {
                samples.add(Figure::BigPeakRss, t.kind, p / MIB);
            }
            samples.add(Figure::Errors, t.kind, errors as f64);
        }
    }

    let meta = serde_json::json!({
        "command": command,
        "date": started.to_string(),
        "uptime_before": uptime_before,
        "uptime_after": uptime(),
        "rounds": rounds,
        "duration_s": args.duration.as_secs_f64(),
        "big_mib": args.big_mib,
        "kubectl_version": version(&programs.kubectl, &["version", "--client"]),
        "kgate_version": version(&programs.kgate, &["--version"]),
    });
    let (markdown, rows, met) = table(&samples, &meta);
    println!("{markdown}");
    let json = serde_json::json!({ "meta": meta, "rows": rows, "runs": wrk_runs });
    write_report(&args.out, "forward", &markdown, &json)?;
    Ok(met)
}

/// One row of the table, as `forward.json` keeps it.
#[derive(Serialize)]
struct Row {
    figure: Figure,
    label: &'static str,
    direct: Option<f64>,
    kubectl: Option<f64>,
    kgate: Option<f64>,
    kgate_over_kubectl: Option<f64>,
    kgate_over_direct: Option<f64>,
    target: Option<f64>,
    met: Option<bool>,
}

/// The Markdown table, its rows, and whether every target is met.
fn table(samples: &Samples<Figure, Kind>, meta: &serde_json::Value) -> (String, Vec<Row>, bool) {
    let mut md = String::new();
    let _ = writeln!(md, "## kgate forward beside kubectl port-forward\n");
    let _ = writeln!(
        md,
        "`{}` on {}; {} rounds of {} s; {}; kubectl: {}; load before: {}; after: {}\n",
        meta["command"].as_str().unwrap_or_default(),
        meta["date"].as_str().unwrap_or_default(),
        meta["rounds"],
        meta["duration_s"],
        meta["kgate_version"].as_str().unwrap_or_default(),
        meta["kubectl_version"].as_str().unwrap_or_default(),
        meta["uptime_before"].as_str().unwrap_or_default(),
        meta["uptime_after"].as_str().unwrap_or_default(),
    );
    let _ = writeln!(
        md,
        "| figure | direct | kubectl port-forward | kgate forward | kgate / kubectl | kgate / \
         direct | target |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---|");
    let cell = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"));
    let times = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}×"));
    let mut rows = Vec::new();
    let mut all_met = true;
    for figure in Figure::ALL {
        let [direct, kubectl, kgate] =
            [Kind::Direct, Kind::Kubectl, Kind::Kgate].map(|k| samples.get(figure, k));
        let over_kubectl = ratio(kgate, kubectl);
        let met = figure
            .target()
            .zip(over_kubectl)
            .map(|(target, r)| r >= target);
        all_met &= met != Some(false);
        let verdict = match (figure.target(), met) {
            (Some(t), Some(true)) => format!("≥ {t}× kubectl: met"),
            (Some(t), Some(false)) => format!("≥ {t}× kubectl: **missed**"),
            (Some(t), None) => format!("≥ {t}× kubectl: not measured"),
            (None, _) => String::new(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {verdict} |",
            figure.label(),
            cell(direct),
            cell(kubectl),
            cell(kgate),
            times(over_kubectl),
            times(ratio(kgate, direct)),
        );
        rows.push(Row {
            figure,
            label: figure.label(),
            direct,
            kubectl,
            kgate,
            kgate_over_kubectl: over_kubectl,
            kgate_over_direct: ratio(kgate, direct),
            target: figure.target(),
            met,
        });
    }
    (md, rows, all_met)
}
