//! `bench load`: DESIGN's performance table, measured for direct access, `kubectl proxy` and
//! kgate in one run against one stand-in API server.
//!
//! Contract: each round starts fresh proxies (measuring start-up and idle memory), then runs
//! every test for every target in turn (direct, kubectl, kgate), so that the targets share the
//! machine's noise; the figures are the medians over the rounds, and the ratios are of those
//! medians. The table goes to stdout, and as `load.md` and `load.json` to `--out`. Each
//! figure with a target in DESIGN says whether kgate meets it or by how much it misses.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http::Method;
use serde::Serialize;

use crate::procs;
use crate::setup::{Kind, Programs, Target, World};
use crate::upstream::PROXY_PREFIX;
use crate::wrk;

/// `bench load` and `bench forward` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Length of each load-generator run.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Interleaved rounds; figures are their medians.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Where the report goes (`load.md` and `load.json`, or `forward.*`).
    #[arg(long, default_value = "bench/out")]
    pub(crate) out: PathBuf,
    /// Size of the large download, in MiB.
    #[arg(long, default_value_t = 1024)]
    pub(crate) big_mib: u64,
    /// Targets to measure (comma list of direct, kubectl, kgate).
    #[arg(long, default_value = "direct,kubectl,kgate", value_delimiter = ',')]
    pub(crate) targets: Vec<String>,
    /// The kubectl binary.
    #[arg(long)]
    pub(crate) kubectl: Option<PathBuf>,
    /// The kgate binary (default: `kgate` beside this binary, i.e. target/release/kgate).
    #[arg(long)]
    pub(crate) kgate: Option<PathBuf>,
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 10s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("`{s}`: the unit must be ms, s or m")),
    };
    if !(secs > 0.0 && secs <= 3600.0) {
        return Err(format!("`{s}` must be between 0 and 1 hour"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The figures of DESIGN's table (and a few more that explain them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Figure {
    SmallRps,
    SmallP50,
    SmallP99,
    CpuPer10k,
    OneConnP50,
    OneConnP99,
    Body64kMibs,
    BigMibs,
    BigPeakRss,
    IdleRss,
    StartupLine,
    StartupFirst,
    Errors,
}

/// What DESIGN asks of kgate for a figure.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Goal {
    /// kgate ≥ factor × other.
    AtLeastTimes { other: Kind, factor: f64 },
    /// kgate ≤ factor × other.
    AtMostTimes { other: Kind, factor: f64 },
    /// kgate ≤ limit.
    AtMost { limit: f64 },
    /// kgate = limit exactly (errors: zero).
    Exactly { limit: f64 },
}

impl Figure {
    const ALL: [Figure; 13] = [
        Figure::SmallRps,
        Figure::SmallP50,
        Figure::SmallP99,
        Figure::CpuPer10k,
        Figure::OneConnP50,
        Figure::OneConnP99,
        Figure::Body64kMibs,
        Figure::BigMibs,
        Figure::BigPeakRss,
        Figure::IdleRss,
        Figure::StartupLine,
        Figure::StartupFirst,
        Figure::Errors,
    ];

    fn label(self) -> &'static str {
        match self {
            Figure::SmallRps => "small JSON, 64 conn., req/s",
            Figure::SmallP50 => "small JSON, 64 conn., p50 latency ms",
            Figure::SmallP99 => "small JSON, 64 conn., p99 latency ms",
            Figure::CpuPer10k => "CPU-seconds per 10k small requests (64 conn.)",
            Figure::OneConnP50 => "small JSON, 1 conn., median latency ms",
            Figure::OneConnP99 => "small JSON, 1 conn., p99 latency ms",
            Figure::Body64kMibs => "64 KiB bodies, 16 conn., MiB/s",
            Figure::BigMibs => "large body (1 GiB by default, 1 conn.), MiB/s",
            Figure::BigPeakRss => "large body, peak RSS of the proxy, MiB",
            Figure::IdleRss => "idle RSS, MiB",
            Figure::StartupLine => "start-up to `Starting to serve`, ms",
            Figure::StartupFirst => "start-up to first 200, ms",
            Figure::Errors => "errors (sum over all runs)",
        }
    }

    fn goal(self) -> Option<Goal> {
        match self {
            Figure::SmallRps => Some(Goal::AtLeastTimes {
                other: Kind::Kubectl,
                factor: 3.0,
            }),
            Figure::CpuPer10k => Some(Goal::AtMost { limit: 0.3 }),
            Figure::OneConnP50 => Some(Goal::AtMostTimes {
                other: Kind::Direct,
                factor: 1.5,
            }),
            Figure::Body64kMibs => Some(Goal::AtLeastTimes {
                other: Kind::Kubectl,
                factor: 2.0,
            }),
            Figure::BigMibs => Some(Goal::AtLeastTimes {
                other: Kind::Kubectl,
                factor: 1.0,
            }),
            Figure::BigPeakRss => Some(Goal::AtMost { limit: 16.0 }),
            Figure::IdleRss => Some(Goal::AtMost { limit: 8.0 }),
            Figure::StartupFirst => Some(Goal::AtMost { limit: 20.0 }),
            Figure::Errors => Some(Goal::Exactly { limit: 0.0 }),
            _ => None,
        }
    }

    /// Whether the figure is a sum over runs rather than a median.
    fn is_sum(self) -> bool {
        self == Figure::Errors
    }
}

/// A figure of a table: whether its samples add up (errors) rather than give a median.
pub(crate) trait Summed: Copy + Ord {
    fn is_sum(self) -> bool;
}

impl Summed for Figure {
    fn is_sum(self) -> bool {
        Figure::is_sum(self)
    }
}

/// Every sample, by figure and target (`K`, who was measured).
pub(crate) struct Samples<F, K>(BTreeMap<(F, K), Vec<f64>>);

impl<F, K> Default for Samples<F, K> {
    fn default() -> Self {
        Self(BTreeMap::new())
    }
}

impl<F: Summed, K: Copy + Ord> Samples<F, K> {
    pub(crate) fn add(&mut self, figure: F, kind: K, value: f64) {
        self.0.entry((figure, kind)).or_default().push(value);
    }

    /// The median of the samples, or their sum for a summed figure.
    pub(crate) fn get(&self, figure: F, kind: K) -> Option<f64> {
        let values = self.0.get(&(figure, kind))?;
        if figure.is_sum() {
            return Some(values.iter().sum());
        }
        median(values)
    }
}

pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

pub(crate) const MIB: f64 = 1024.0 * 1024.0;

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
    let ticks = procs::clock_ticks();

    let mut world = World::start()?;
    let script = wrk::write_script(world.path())?;
    let mut samples: Samples<Figure, Kind> = Samples::default();
    let mut wrk_runs: Vec<serde_json::Value> = Vec::new();
    let rounds = args.rounds.clamp(1, 50);
    let warmup = Duration::from_secs(1).min(args.duration);

    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        // Fresh proxies each round: start-up and idle memory are per-round samples too.
        let mut targets: Vec<Target> = Vec::new();
        for &kind in &kinds {
            let target = world
                .start_proxy(kind, &programs, round)
                .await
                .with_context(|| format!("starting {}", kind.label()))?;
            if let Some(t) = target.startup_line {
                samples.add(Figure::StartupLine, kind, ms(t));
            }
            if let Some(t) = target.startup_first {
                samples.add(Figure::StartupFirst, kind, ms(t));
            }
            if let Some(rss) = target.idle_rss {
                samples.add(Figure::IdleRss, kind, rss as f64 / MIB);
            }
            targets.push(target);
        }

        let small_url = |t: &Target| format!("{}{PROXY_PREFIX}small", t.endpoint.base_url());
        let body_url = |t: &Target| format!("{}{PROXY_PREFIX}bytes/65536", t.endpoint.base_url());

        // Small JSON, 64 connections: throughput, latency, CPU of the proxy.
        for t in &targets {
            let auth = t.endpoint.auth.as_deref();
            let base = wrk::Run {
                script: &script,
                url: small_url(t),
                connections: 64,
                threads: 2,
                duration: warmup,
                auth,
                close: false,
            };
            let _ = wrk::run(base).await?;
            let cpu_before = t.pid().map(|p| procs::cpu_seconds(p, ticks)).transpose()?;
            let r = wrk::run(wrk::Run {
                script: &script,
                url: small_url(t),
                connections: 64,
                threads: 2,
                duration: args.duration,
                auth,
                close: false,
            })
            .await?;
            let cpu_after = t.pid().map(|p| procs::cpu_seconds(p, ticks)).transpose()?;
            eprintln!(
                "  small/64  {:<14} {:>9.0} req/s  p50 {:.2} ms  errors {}",
                t.kind.label(),
                r.requests_per_second(),
                r.p50_us as f64 / 1000.0,
                r.errors()
            );
            samples.add(Figure::SmallRps, t.kind, r.requests_per_second());
            samples.add(Figure::SmallP50, t.kind, r.p50_us as f64 / 1000.0);
            samples.add(Figure::SmallP99, t.kind, r.p99_us as f64 / 1000.0);
            samples.add(Figure::Errors, t.kind, r.errors() as f64);
            if let (Some(before), Some(after)) = (cpu_before, cpu_after)
                && r.requests > 0
            {
                samples.add(
                    Figure::CpuPer10k,
                    t.kind,
                    (after - before) / r.requests as f64 * 10_000.0,
                );
            }
            wrk_runs.push(
                serde_json::json!({"round": round, "test": "small64", "target": t.kind, "wrk": r}),
            );
        }

        // Small JSON, 1 connection: latency.
        for t in &targets {
            let r = wrk::run(wrk::Run {
                script: &script,
                url: small_url(t),
                connections: 1,
                threads: 1,
                duration: args.duration,
                auth: t.endpoint.auth.as_deref(),
                close: false,
            })
            .await?;
            eprintln!(
                "  small/1   {:<14} p50 {:.3} ms  p99 {:.3} ms  errors {}",
                t.kind.label(),
                r.p50_us as f64 / 1000.0,
                r.p99_us as f64 / 1000.0,
                r.errors()
            );
            samples.add(Figure::OneConnP50, t.kind, r.p50_us as f64 / 1000.0);
            samples.add(Figure::OneConnP99, t.kind, r.p99_us as f64 / 1000.0);
            samples.add(Figure::Errors, t.kind, r.errors() as f64);
            wrk_runs.push(
                serde_json::json!({"round": round, "test": "small1", "target": t.kind, "wrk": r}),
            );
        }

        // 64 KiB bodies, 16 connections: throughput.
        for t in &targets {
            let r = wrk::run(wrk::Run {
                script: &script,
                url: body_url(t),
                connections: 16,
                threads: 2,
                duration: args.duration,
                auth: t.endpoint.auth.as_deref(),
                close: false,
            })
            .await?;
            let mibs = r.requests as f64 * 65536.0 / MIB / r.seconds().max(1e-9);
            eprintln!(
                "  64KiB/16  {:<14} {:>9.1} MiB/s  errors {}",
                t.kind.label(),
                mibs,
                r.errors()
            );
            samples.add(Figure::Body64kMibs, t.kind, mibs);
            samples.add(Figure::Errors, t.kind, r.errors() as f64);
            wrk_runs.push(
                serde_json::json!({"round": round, "test": "body64k", "target": t.kind, "wrk": r}),
            );
        }

        // One large body: throughput and the proxy's peak memory.
        for t in &targets {
            let (mibs, peak, errors) = big_download(t, args.big_mib).await?;
            eprintln!(
                "  large     {:<14} {:>9.1} MiB/s  peak RSS {}",
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
        // Targets (and their children) drop here: proxies are killed before the next round.
    }
    let uptime_after = uptime();

    let report = Report::build(
        &samples,
        &kinds,
        ReportMeta {
            command,
            date: started.to_string(),
            uptime_before,
            uptime_after,
            rounds,
            duration_s: args.duration.as_secs_f64(),
            big_mib: args.big_mib,
            kubectl_version: version(&programs.kubectl, &["version", "--client"]),
            kgate_version: version(&programs.kgate, &["--version"]),
        },
    );
    let markdown = report.markdown();
    println!("{markdown}");
    let json = serde_json::json!({ "report": report, "runs": wrk_runs });
    write_report(&args.out, "load", &markdown, &json)?;
    Ok(report.all_met())
}

/// Writes `<name>.md` and `<name>.json` into `out`.
pub(crate) fn write_report(
    out: &std::path::Path,
    name: &str,
    markdown: &str,
    json: &serde_json::Value,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let md_path = out.join(format!("{name}.md"));
    std::fs::write(&md_path, markdown).with_context(|| format!("writing {}", md_path.display()))?;
    let json_path = out.join(format!("{name}.json"));
    std::fs::write(&json_path, serde_json::to_string_pretty(json)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    eprintln!("wrote {} and {}", md_path.display(), json_path.display());
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Downloads `mib` MiB through the target on one connection while watching the proxy's RSS.
/// Returns MiB/s, the proxy's peak RSS in bytes (`VmHWM` after a reset, or the sampled
/// maximum), and 1 if the transfer failed or came back short.
async fn big_download(t: &Target, mib: u64) -> anyhow::Result<(f64, Option<f64>, u64)> {
    let size = mib.max(1) * 1024 * 1024;
    let path = format!("{PROXY_PREFIX}bytes/{size}");
    download(&t.endpoint, t.pid(), &path, size, t.kind.label()).await
}

/// GET `path`, whose body is `size` bytes, on one connection to `endpoint`, watching the RSS
/// of the process `pid` (the proxy or forwarder in between, if any): MiB/s, its peak RSS in
/// bytes, and 1 if the transfer failed or came back short (`label` names it then).
pub(crate) async fn download(
    endpoint: &crate::client::Endpoint,
    pid: Option<u32>,
    path: &str,
    size: u64,
    label: &str,
) -> anyhow::Result<(f64, Option<f64>, u64)> {
    let reset = pid.is_some_and(procs::reset_peak_rss);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = pid.map(|pid| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut max = 0u64;
            // Bounded: stops when told, or after 10 minutes.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                if let Ok(rss) = procs::status_bytes(pid, "VmRSS") {
                    max = max.max(rss);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            max
        })
    });
    let mut conn = endpoint.connect(Duration::from_secs(10)).await?;
    let start = Instant::now();
    let answer = conn
        .request(Method::GET, path, Bytes::new(), Duration::from_secs(600))
        .await;
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sampled = sampler.and_then(|h| h.join().ok());
    let (bytes, ok) = match &answer {
        Ok(a) => (a.bytes, a.status == 200 && a.bytes == size),
        Err(err) => {
            eprintln!("  large download via {label} failed: {err:#}");
            (0, false)
        }
    };
    let hwm = match (reset, pid) {
        (true, Some(pid)) => procs::status_bytes(pid, "VmHWM").ok(),
        _ => None,
    };
    let peak = hwm.or(sampled).map(|b| b as f64);
    Ok((bytes as f64 / MIB / elapsed.max(1e-9), peak, u64::from(!ok)))
}

/// `uptime`'s line, for the record of the machine's load.
pub(crate) fn uptime() -> String {
    std::process::Command::new("uptime")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

pub(crate) fn version(program: &std::path::Path, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

#[derive(Serialize)]
struct ReportMeta {
    command: String,
    date: String,
    uptime_before: String,
    uptime_after: String,
    rounds: usize,
    duration_s: f64,
    big_mib: u64,
    kubectl_version: String,
    kgate_version: String,
}

#[derive(Serialize)]
struct Row {
    figure: Figure,
    label: &'static str,
    direct: Option<f64>,
    kubectl: Option<f64>,
    kgate: Option<f64>,
    kgate_over_kubectl: Option<f64>,
    kgate_over_direct: Option<f64>,
    goal: Option<Goal>,
    goal_text: String,
    met: Option<bool>,
    verdict: String,
}

#[derive(Serialize)]
struct Report {
    meta: ReportMeta,
    rows: Vec<Row>,
}

pub(crate) fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

impl Report {
    fn build(samples: &Samples<Figure, Kind>, kinds: &[Kind], meta: ReportMeta) -> Self {
        let rows = Figure::ALL
            .iter()
            .filter_map(|&figure| {
                let get = |k: Kind| {
                    if kinds.contains(&k) {
                        samples.get(figure, k)
                    } else {
                        None
                    }
                };
                let (direct, kubectl, kgate) =
                    (get(Kind::Direct), get(Kind::Kubectl), get(Kind::Kgate));
                if direct.is_none() && kubectl.is_none() && kgate.is_none() {
                    return None;
                }
                let goal = figure.goal();
                let (goal_text, met, verdict) = judge(goal, kgate, get);
                Some(Row {
                    figure,
                    label: figure.label(),
                    direct,
                    kubectl,
                    kgate,
                    kgate_over_kubectl: ratio(kgate, kubectl),
                    kgate_over_direct: ratio(kgate, direct),
                    goal,
                    goal_text,
                    met,
                    verdict,
                })
            })
            .collect();
        Self { meta, rows }
    }

    fn all_met(&self) -> bool {
        self.rows.iter().all(|r| r.met != Some(false))
    }

    fn markdown(&self) -> String {
        let m = &self.meta;
        let mut s = String::new();
        let _ = writeln!(s, "Measured {} with `{}`", m.date, m.command);
        let _ = writeln!(
            s,
            "({} interleaved rounds of {} s runs, {} MiB large body; medians of the rounds).",
            m.rounds, m.duration_s, m.big_mib
        );
        let _ = writeln!(
            s,
            "kubectl: {}; kgate: {}.",
            m.kubectl_version, m.kgate_version
        );
        let _ = writeln!(s, "Load before: `{}`", m.uptime_before);
        let _ = writeln!(s, "Load after: `{}`\n", m.uptime_after);
        let _ = writeln!(
            s,
            "| figure | direct | kubectl proxy | kgate | kgate/kubectl | kgate/direct | target | met? |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---|---|");
        for r in &self.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r.label,
                num(r.direct),
                num(r.kubectl),
                num(r.kgate),
                times(r.kgate_over_kubectl),
                times(r.kgate_over_direct),
                r.goal_text,
                r.verdict
            );
        }
        s
    }
}

fn num(v: Option<f64>) -> String {
    match v {
        None => "–".to_owned(),
        // Counts (errors) print as whole numbers.
        Some(v) if v.fract() == 0.0 && v.abs() < 1e12 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) if v.abs() >= 1.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.3}"),
    }
}

fn times(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}×"))
}

/// The target's text, whether it is met, and the verdict (met, or by how much it misses).
fn judge(
    goal: Option<Goal>,
    kgate: Option<f64>,
    get: impl Fn(Kind) -> Option<f64>,
) -> (String, Option<bool>, String) {
    let Some(goal) = goal else {
        return (String::new(), None, String::new());
    };
    let text = match goal {
        Goal::AtLeastTimes { other, factor } => format!("≥ {factor}× {}", other.label()),
        Goal::AtMostTimes { other, factor } => format!("≤ {factor}× {}", other.label()),
        Goal::AtMost { limit } => format!("≤ {limit}"),
        Goal::Exactly { limit } => format!("= {limit}"),
    };
    let Some(value) = kgate else {
        return (text, None, "not measured".to_owned());
    };
    let (met, verdict) = match goal {
        Goal::AtLeastTimes { other, factor } => match get(other).filter(|o| *o > 0.0) {
            Some(o) => {
                let r = value / o;
                if r >= factor {
                    (true, format!("yes ({r:.2}×)"))
                } else {
                    (
                        false,
                        format!("no: {r:.2}×, needs {:.0}% more", (factor / r - 1.0) * 100.0),
                    )
                }
            }
            None => return (text, None, "no reference".to_owned()),
        },
        Goal::AtMostTimes { other, factor } => match get(other).filter(|o| *o > 0.0) {
            Some(o) => {
                let r = value / o;
                if r <= factor {
                    (true, format!("yes ({r:.2}×)"))
                } else {
                    (
                        false,
                        format!("no: {r:.2}×, {:.0}% over", (r / factor - 1.0) * 100.0),
                    )
                }
            }
            None => return (text, None, "no reference".to_owned()),
        },
        Goal::AtMost { limit } => {
            if value <= limit {
                (true, "yes".to_owned())
            } else {
                (
                    false,
                    format!("no: {:.0}% over", (value / limit - 1.0) * 100.0),
                )
            }
        }
        Goal::Exactly { limit } => {
            if value == limit {
                (true, "yes".to_owned())
            } else {
                (false, format!("no: {value}"))
            }
        }
    };
    (text, Some(met), verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn judge_reports_misses_by_how_much() {
        let get = |k: Kind| match k {
            Kind::Kubectl => Some(100.0),
            Kind::Direct => Some(1.0),
            Kind::Kgate => None,
        };
        let goal = Some(Goal::AtLeastTimes {
            other: Kind::Kubectl,
            factor: 3.0,
        });
        let (_, met, verdict) = judge(goal, Some(200.0), get);
        assert_eq!(met, Some(false));
        assert_eq!(verdict, "no: 2.00×, needs 50% more");
        let (_, met, _) = judge(goal, Some(300.0), get);
        assert_eq!(met, Some(true));
        let (_, met, verdict) = judge(Some(Goal::AtMost { limit: 8.0 }), Some(12.0), get);
        assert_eq!((met, verdict.as_str()), (Some(false), "no: 50% over"));
    }
}
