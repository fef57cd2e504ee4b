//! `bench soak`: a bounded soak of a proxy (kgate by default) in front of the stand-in.
//!
//! Contract: sends exactly `--requests` requests over `--connections` keep-alive connections
//! (per 1000: 900 small JSON GETs, 80 GETs of 64 KiB, 15 POSTs of 16 KiB, 4 GETs of 1 MiB, and
//! 1 WebSocket session of 10 echoed messages on its own connection), checks every status and
//! body length, and samples the proxy's RSS and open file descriptors every second. The whole
//! run is bounded by `--max-time`. It exits non-zero if any request failed, if the run did
//! not finish, if the proxy holds more file descriptors after the load than before it (beyond
//! `--fd-slack`, after a bounded settle), or if its RSS at the end is far above its RSS early in
//! the run (more than 1.5× + 4 MiB, a leak rather than allocator noise).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http::Method;
use serde::Serialize;

use crate::client::Endpoint;
use crate::load::{parse_duration, uptime};
use crate::procs;
use crate::setup::{Kind, Programs, World};
use crate::upstream::{PROXY_PREFIX, SMALL_JSON};

/// `bench soak` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Total requests (a WebSocket session counts as one).
    #[arg(long, default_value_t = 1_000_000)]
    requests: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 256)]
    connections: u32,
    /// The proxy to soak: kgate or kubectl.
    #[arg(long, default_value = "kgate")]
    target: String,
    /// Upper bound on the whole run.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    max_time: Duration,
    /// File descriptors the proxy may hold beyond its count before the load (pooled
    /// connections to the API server).
    #[arg(long, default_value_t = 2)]
    fd_slack: usize,
    /// Where soak.md and soak.json go.
    #[arg(long, default_value = "bench/out")]
    out: PathBuf,
    /// The kubectl binary.
    #[arg(long)]
    kubectl: Option<PathBuf>,
    /// The kgate binary (default: `kgate` beside this binary).
    #[arg(long)]
    kgate: Option<PathBuf>,
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One kind of request in the mix.
#[derive(Clone, Copy)]
enum Op {
    Small,
    Get64k,
    Post16k,
    Get1m,
    WebSocket,
}

fn op_for(i: u64) -> Op {
    match i % 1000 {
        0..900 => Op::Small,
        900..980 => Op::Get64k,
        980..995 => Op::Post16k,
        995..999 => Op::Get1m,
        _ => Op::WebSocket,
    }
}

#[derive(Default)]
struct Counters {
    next: AtomicU64,
    done: AtomicU64,
    errors: AtomicU64,
    websockets: AtomicU64,
    bytes: AtomicU64,
}

#[derive(Serialize, Clone)]
struct Sample {
    t_s: f64,
    done: u64,
    rss_mib: f64,
    fds: usize,
}

#[derive(Serialize)]
struct SoakReport {
    date: String,
    command: String,
    uptime_before: String,
    uptime_after: String,
    target: Kind,
    requests: u64,
    completed: u64,
    connections: u32,
    websocket_sessions: u64,
    seconds: f64,
    requests_per_second: f64,
    mib_transferred: f64,
    errors: u64,
    first_errors: Vec<String>,
    fds_before: usize,
    fds_after: usize,
    fds_max: usize,
    rss_before_mib: f64,
    rss_early_mib: f64,
    rss_max_mib: f64,
    rss_end_mib: f64,
    samples: Vec<Sample>,
    failures: Vec<String>,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<bool> {
    let kind = Kind::parse(&args.target)?;
    anyhow::ensure!(
        kind != Kind::Direct,
        "soak a proxy: --target kgate or --target kubectl"
    );
    anyhow::ensure!(
        (1..=4096).contains(&args.connections),
        "--connections must be between 1 and 4096"
    );
    anyhow::ensure!(args.requests >= 1, "--requests must be at least 1");
    let programs = Programs::resolve(args.kubectl.clone(), args.kgate.clone())?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let date = jiff::Timestamp::now().to_string();
    let uptime_before = uptime();

    let mut world = World::start()?;
    let target = world.start_proxy(kind, &programs, 0).await?;
    let pid = target.pid().context("the soaked proxy has no process")?;
    let endpoint = target.endpoint.clone();

    // Warm-up on every connection, so pooled upstream connections exist before the baseline.
    let warm = u64::from(args.connections) * 4;
    let warm_counters = Arc::new(Counters::default());
    let warm_errors = drive(
        &endpoint,
        args.connections,
        warm,
        &warm_counters,
        Duration::from_secs(120),
        false,
    )
    .await;
    anyhow::ensure!(
        warm_errors.is_empty(),
        "the warm-up failed: {}",
        warm_errors.join("; ")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_before = procs::open_fds(pid)?;
    let rss_before = procs::status_bytes(pid, "VmRSS")?;
    eprintln!(
        "soaking {} with {} requests on {} connections (fds {fds_before}, RSS {:.1} MiB)",
        kind.label(),
        args.requests,
        args.connections,
        mib(rss_before)
    );

    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let monitor = {
        let counters = counters.clone();
        let stop = stop.clone();
        let max_time = args.max_time + Duration::from_secs(60);
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut last_print = Instant::now();
            while !stop.load(Ordering::Relaxed) && start.elapsed() < max_time {
                let rss = procs::status_bytes(pid, "VmRSS").unwrap_or(0);
                let fds = procs::open_fds(pid).unwrap_or(0);
                let done = counters.done.load(Ordering::Relaxed);
                samples.push(Sample {
                    t_s: start.elapsed().as_secs_f64(),
                    done,
                    rss_mib: mib(rss),
                    fds,
                });
                if last_print.elapsed() >= Duration::from_secs(10) {
                    last_print = Instant::now();
                    eprintln!(
                        "  {:>6.0} s  {done:>9} done  {} errors  RSS {:.1} MiB  fds {fds}",
                        start.elapsed().as_secs_f64(),
                        counters.errors.load(Ordering::Relaxed),
                        mib(rss)
                    );
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            samples
        })
    };
    let first_errors = drive(
        &endpoint,
        args.connections,
        args.requests,
        &counters,
        args.max_time,
        true,
    )
    .await;
    let seconds = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let samples = monitor.join().unwrap_or_default();

    // The client side has closed every connection; give the proxy a bounded moment to notice.
    let settle_deadline = Instant::now() + Duration::from_secs(10);
    let mut fds_after = procs::open_fds(pid)?;
    while fds_after > fds_before + args.fd_slack && Instant::now() < settle_deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        fds_after = procs::open_fds(pid)?;
    }
    let rss_end = procs::status_bytes(pid, "VmRSS")?;
    let completed = counters.done.load(Ordering::Relaxed);
    let errors = counters.errors.load(Ordering::Relaxed);
    let early = samples
        .iter()
        .find(|s| s.done >= args.requests / 10)
        .map_or(mib(rss_before), |s| s.rss_mib);
    let rss_max = samples
        .iter()
        .map(|s| s.rss_mib)
        .fold(mib(rss_end), f64::max);
    let fds_max = samples.iter().map(|s| s.fds).max().unwrap_or(fds_after);

    let mut failures = Vec::new();
    if errors > 0 {
        failures.push(format!("{errors} requests failed"));
    }
    if completed < args.requests {
        failures.push(format!(
            "only {completed} of {} requests completed within {:?}",
            args.requests, args.max_time
        ));
    }
    if fds_after > fds_before + args.fd_slack {
        failures.push(format!(
            "file descriptors grew from {fds_before} to {fds_after} (slack {})",
            args.fd_slack
        ));
    }
    if mib(rss_end) > early * 1.5 + 4.0 {
        failures.push(format!(
            "RSS grew from {early:.1} MiB (at 10% of the run) to {:.1} MiB",
            mib(rss_end)
        ));
    }
    if !failures.is_empty() {
        // The proxy's own account of what went wrong, for whoever reads the report.
        let log = world
            .path()
            .join(format!("{}-0.log", kind.label().replace(' ', "-")));
        failures.push(format!(
            "{} stderr (last lines): {}",
            kind.label(),
            procs::tail(&log)
        ));
    }
    if !world.upstream.is_running() {
        failures.push("the stand-in API server died".to_owned());
    }

    let report = SoakReport {
        date,
        command,
        uptime_before,
        uptime_after: uptime(),
        target: kind,
        requests: args.requests,
        completed,
        connections: args.connections,
        websocket_sessions: counters.websockets.load(Ordering::Relaxed),
        seconds,
        requests_per_second: completed as f64 / seconds.max(1e-9),
        mib_transferred: mib(counters.bytes.load(Ordering::Relaxed)),
        errors,
        first_errors,
        fds_before,
        fds_after,
        fds_max,
        rss_before_mib: mib(rss_before),
        rss_early_mib: early,
        rss_max_mib: rss_max,
        rss_end_mib: mib(rss_end),
        samples,
        failures,
    };
    let markdown = markdown(&report);
    println!("{markdown}");
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    std::fs::write(args.out.join("soak.md"), &markdown)?;
    std::fs::write(
        args.out.join("soak.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    Ok(report.failures.is_empty())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn markdown(r: &SoakReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Soak of {} measured {} with `{}`",
        r.target_label(),
        r.date,
        r.command
    );
    let _ = writeln!(s, "Load before: `{}`", r.uptime_before);
    let _ = writeln!(s, "Load after: `{}`\n", r.uptime_after);
    let _ = writeln!(s, "| figure | value |");
    let _ = writeln!(s, "|---|---:|");
    let rows: Vec<(&str, String)> = vec![
        (
            "requests completed / asked",
            format!("{} / {}", r.completed, r.requests),
        ),
        ("connections", r.connections.to_string()),
        (
            "WebSocket sessions (10 echoes each)",
            r.websocket_sessions.to_string(),
        ),
        ("duration, s", format!("{:.1}", r.seconds)),
        ("requests/s", format!("{:.0}", r.requests_per_second)),
        (
            "MiB transferred (bodies)",
            format!("{:.0}", r.mib_transferred),
        ),
        ("errors", r.errors.to_string()),
        (
            "open fds before / after / max during",
            format!("{} / {} / {}", r.fds_before, r.fds_after, r.fds_max),
        ),
        (
            "RSS MiB before / at 10% / max / end",
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1}",
                r.rss_before_mib, r.rss_early_mib, r.rss_max_mib, r.rss_end_mib
            ),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    // RSS over time, at most a dozen points.
    let step = (r.samples.len() / 12).max(1);
    let points: Vec<String> = r
        .samples
        .iter()
        .step_by(step)
        .map(|p| format!("{:.0}s {:.1}", p.t_s, p.rss_mib))
        .collect();
    let _ = writeln!(s, "\nRSS over time (MiB): {}", points.join(", "));
    if !r.first_errors.is_empty() {
        let _ = writeln!(s, "\nFirst errors:");
        for e in &r.first_errors {
            let _ = writeln!(s, "- {e}");
        }
    }
    if r.failures.is_empty() {
        let _ = writeln!(s, "\nResult: PASS (zero errors, flat memory, no fd growth)");
    } else {
        let _ = writeln!(s, "\nResult: FAIL: {}", r.failures.join("; "));
    }
    s
}

impl SoakReport {
    fn target_label(&self) -> &'static str {
        self.target.label()
    }
}

/// Runs `total` requests of the mix over `connections` workers, bounded by `max_time`.
/// Returns the first few error messages (all errors are counted in `counters`).
async fn drive(
    endpoint: &Endpoint,
    connections: u32,
    total: u64,
    counters: &Arc<Counters>,
    max_time: Duration,
    with_websockets: bool,
) -> Vec<String> {
    let deadline = Instant::now() + max_time;
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let endpoint = endpoint.clone();
        let counters = counters.clone();
        let errors = errors.clone();
        tasks.spawn(async move {
            let mut conn = None;
            let upload = Bytes::from(vec![b'u'; 16 * 1024]);
            while Instant::now() < deadline {
                let i = counters.next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let op = op_for(i);
                let result = match op {
                    Op::WebSocket if with_websockets => endpoint
                        .websocket_echo(&format!("{PROXY_PREFIX}ws"), 10, 1024, REQUEST_TIMEOUT)
                        .await
                        .map(|()| {
                            counters.websockets.fetch_add(1, Ordering::Relaxed);
                            10 * 1024
                        }),
                    _ => one_request(&endpoint, &mut conn, op, &upload).await,
                };
                match result {
                    Ok(bytes) => {
                        counters.bytes.fetch_add(bytes, Ordering::Relaxed);
                    }
                    Err(err) => {
                        conn = None;
                        counters.errors.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut list) = errors.lock()
                            && list.len() < 10
                        {
                            list.push(format!("request {i}: {err:#}"));
                        }
                    }
                }
                counters.done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    errors.lock().map(|l| l.clone()).unwrap_or_default()
}

/// One plain request of the mix on the worker's keep-alive connection (opened on demand).
async fn one_request(
    endpoint: &Endpoint,
    conn: &mut Option<crate::client::Conn>,
    op: Op,
    upload: &Bytes,
) -> anyhow::Result<u64> {
    let (method, path, body, expect) = match op {
        Op::Small | Op::WebSocket => (
            Method::GET,
            format!("{PROXY_PREFIX}small"),
            Bytes::new(),
            SMALL_JSON.len() as u64,
        ),
        Op::Get64k => (
            Method::GET,
            format!("{PROXY_PREFIX}bytes/65536"),
            Bytes::new(),
            65536,
        ),
        Op::Get1m => (
            Method::GET,
            format!("{PROXY_PREFIX}bytes/1048576"),
            Bytes::new(),
            1_048_576,
        ),
        Op::Post16k => (
            Method::POST,
            format!("{PROXY_PREFIX}upload"),
            upload.clone(),
            format!(r#"{{"received":{}}}"#, upload.len()).len() as u64,
        ),
    };
    if conn.is_none() {
        *conn = Some(endpoint.connect(REQUEST_TIMEOUT).await?);
    }
    let Some(c) = conn.as_mut() else {
        anyhow::bail!("no connection");
    };
    let answer = c.request(method, &path, body, REQUEST_TIMEOUT).await?;
    anyhow::ensure!(
        answer.status == 200,
        "{path}: status {} (expected 200)",
        answer.status
    );
    anyhow::ensure!(
        answer.bytes == expect,
        "{path}: {} body bytes (expected {expect})",
        answer.bytes
    );
    Ok(answer.bytes)
}
