//! Throughput of the response shaper on pages from `bench-pages/gen_pages.py`.
//!
//! ```text
//! ./gen_pages.py --out pages --variants app,links,text --sizes 16m
//! cargo run --release -p rewrite --example throughput -- pages/app-16m.html pages/links-16m.html
//! ```
//!
//! The generated pages are what an app serves; each is first passed through an emulation of the
//! API server's `rewriteURL` (prefix every absolute path, and every URL to the page's own
//! backend host, in the `atomsToAttrs` attributes), which is what kgate receives. Then, per page,
//! the median of several runs of: the prefixed page as identity HTML, the prefixed page gzipped
//! (decode, rewrite, identity out; MiB/s of page bytes), and the original page (nothing to undo).
//! Besides wall-clock MiB/s it prints MiB per second of on-CPU time of the measuring thread
//! (`/proc/thread-self/schedstat`), which stays meaningful on a machine shared with other work.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use lol_html::{HtmlRewriter, Settings, element};
use rewrite::{API_SERVER_URL_ATTRIBUTES, ShapeContext, shape_bytes};
use tokio::io::AsyncReadExt;

const PREFIX: &str = "/api/v1/namespaces/ns/services/svc:http/proxy";
/// gen_pages.py's backend host, which the API server treats as "same host".
const BACKEND: &str = "http://10.0.0.5:8080/";
const CHUNK: usize = 16 << 10;
const RUNS: usize = 5;

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: throughput <page.html>... (pages from bench-pages/gen_pages.py)");
        return ExitCode::from(2);
    }
    let ctx = match ShapeContext::new(PREFIX, "127.0.0.1:8001", "svc.ns.svc.localhost:8001") {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for path in paths {
        let page = match std::fs::read(&path) {
            Ok(page) => page,
            Err(e) => {
                eprintln!("error: cannot read {path}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let prefixed = api_server_prefix(&page);
        let gzipped = gzip(&prefixed);
        let mib = page.len() as f64 / f64::from(1 << 20);
        println!(
            "{path}: {mib:.1} MiB, {:.1} MiB after the API server's prefixing, {:.1} MiB gzipped",
            prefixed.len() as f64 / f64::from(1 << 20),
            gzipped.len() as f64 / f64::from(1 << 20)
        );
        let cases: [(&str, &[u8], &str); 3] = [
            ("prefixed html", &prefixed, ""),
            ("prefixed html, gzip", &gzipped, "gzip"),
            ("original html", &page, ""),
        ];
        for (name, body, coding) in cases {
            let mut times = Vec::with_capacity(RUNS);
            let mut cpu_times = Vec::with_capacity(RUNS);
            let mut out_len = 0;
            for _ in 0..RUNS {
                let mut builder = http::Response::builder().header("content-type", "text/html");
                if !coding.is_empty() {
                    builder = builder.header("content-encoding", coding);
                }
                let Ok(response) = builder.body(()) else {
                    return ExitCode::FAILURE;
                };
                let (mut parts, ()) = response.into_parts();
                let start = Instant::now();
                let cpu_start = on_cpu();
                match shape_bytes(&mut parts, body, &ctx, &[CHUNK]) {
                    Ok(out) => out_len = out.len(),
                    Err(e) => {
                        eprintln!("error: {name}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
                times.push(start.elapsed());
                cpu_times.push(on_cpu().saturating_sub(cpu_start));
            }
            times.sort();
            cpu_times.sort();
            let median = times.get(RUNS / 2).copied().unwrap_or(Duration::MAX);
            let cpu_median = cpu_times.get(RUNS / 2).copied().unwrap_or(Duration::MAX);
            let page_mib = if coding.is_empty() {
                body.len()
            } else {
                prefixed.len()
            } as f64
                / f64::from(1 << 20);
            println!(
                "  {name:<22} {:>7.1} MiB/s wall, {:>7.1} MiB/s on-CPU  (median of {RUNS}, {:.1} ms, {} bytes out)",
                page_mib / median.as_secs_f64(),
                page_mib / cpu_median.as_secs_f64(),
                median.as_secs_f64() * 1000.0,
                out_len
            );
        }
    }
    ExitCode::SUCCESS
}

/// Time the current thread has spent on a CPU (0 where the kernel does not say).
fn on_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// apimachinery's `rewriteURL` for the paths gen_pages.py writes: absolute paths and URLs to the
/// backend host get the prefix (root-relative); everything else stays.
fn api_server_prefix(page: &[u8]) -> Vec<u8> {
    let mut settings = Settings::new();
    for (tag, attrs) in API_SERVER_URL_ATTRIBUTES {
        for attr in *attrs {
            settings = settings.append_element_content_handler(element!(
                format!("{tag}[{attr}]"),
                move |el| {
                    if let Some(v) = el.get_attribute(attr) {
                        let path = v.strip_prefix(BACKEND).map(|p| format!("/{p}"));
                        let path = path.or_else(|| {
                            (v.starts_with('/') && !v.starts_with("//")).then(|| v.clone())
                        });
                        if let Some(path) = path.filter(|p| !p.starts_with(PREFIX)) {
                            el.set_attribute(attr, &format!("{PREFIX}{path}"))?;
                        }
                    }
                    Ok(())
                }
            ));
        }
    }
    let mut out = Vec::with_capacity(page.len() * 2);
    let mut rewriter = HtmlRewriter::new(settings, |c: &[u8]| out.extend_from_slice(c));
    if rewriter.write(page).and_then(|()| rewriter.end()).is_err() {
        eprintln!("warning: the API server emulation failed; using the page as it is");
        return page.to_vec();
    }
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        return Vec::new();
    };
    rt.block_on(async {
        let mut out = Vec::new();
        let mut encoder = async_compression::tokio::bufread::GzipEncoder::new(data);
        if encoder.read_to_end(&mut out).await.is_err() {
            out.clear();
        }
        out
    })
}
