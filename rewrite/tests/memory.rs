//! A 50 MiB page streams through with flat memory and early output. Alone in its own test
//! binary, with one test, because it measures the process's peak resident set (`VmHWM`).
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of this test binary fail the test by panicking"
)]

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame};
use rewrite::{ShapeContext, shape_response};
use tokio::io::AsyncReadExt;

const P: &str = "/api/v1/namespaces/monitoring/services/grafana/proxy";
const PAGE_BYTES: usize = 50 << 20;
const CHUNK: usize = 16 << 10;
/// What the shaping of one page may add to the resident set.
const BUDGET: u64 = 16 << 20;

/// One block of API-server-style markup: prefixed links, assets, a form, text.
fn block() -> Vec<u8> {
    let mut s = String::new();
    for i in 0..40 {
        s.push_str(&format!(
            "<tr><td><a href=\"{P}/docs/item-{i}?page=2&amp;sort=name\">item {i}</a></td>\
             <td><img src=\"{P}/static/img/{i}.png\" alt=\"thumb\"></td>\
             <td>lorem ipsum dolor sit amet <a href=\"https://example.org/x\">ext</a></td></tr>\n"
        ));
    }
    s.push_str(&format!(
        "<form action=\"{P}/search\"><input name=q></form>\n"
    ));
    s.into_bytes()
}

/// Serves `total` bytes by repeating `unit` in `CHUNK`-sized frames, counting what it served.
struct Generated {
    unit: Bytes,
    total: usize,
    served: Arc<AtomicUsize>,
    offset: usize,
}

impl Body for Generated {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let served = this.served.load(Ordering::Relaxed);
        if served >= this.total {
            return Poll::Ready(None);
        }
        let n = CHUNK
            .min(this.unit.len() - this.offset)
            .min(this.total - served);
        let frame = this.unit.slice(this.offset..this.offset + n);
        this.offset = (this.offset + n) % this.unit.len();
        this.served.store(served + n, Ordering::Relaxed);
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Outcome {
    input: usize,
    output: usize,
    served_at_first_output: usize,
    prefixes_left: usize,
    peak_growth: u64,
}

/// Shapes the generated body, discarding output as it comes, and measures.
fn run(unit: Bytes, total: usize, headers: &[(&str, &str)]) -> Outcome {
    let ctx = ShapeContext::new(P, "10.96.0.1:443", "grafana.monitoring.svc.localhost:8001")
        .expect("ctx");
    let mut builder = http::Response::builder();
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let (mut parts, ()) = builder.body(()).expect("response").into_parts();

    // Reset the peak to the current resident set (Linux >= 4.0), then measure growth from here.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let baseline = if reset {
        status_kib("VmRSS:")
    } else {
        status_kib("VmHWM:")
    };

    let served = Arc::new(AtomicUsize::new(0));
    let generated = Generated {
        unit,
        total,
        served: Arc::clone(&served),
        offset: 0,
    };
    let mut body = std::pin::pin!(shape_response(&mut parts, generated, &ctx));
    assert!(body.is_rewritten());
    let mut cx = Context::from_waker(Waker::noop());
    let (mut output, mut served_at_first_output, mut prefixes_left) = (0, None, 0);
    let mut tail: Vec<u8> = Vec::new();
    loop {
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if served_at_first_output.is_none() && !data.is_empty() {
                    served_at_first_output = Some(served.load(Ordering::Relaxed));
                }
                output += data.len();
                // Count prefixes, including ones split across frames.
                tail.extend_from_slice(&data);
                prefixes_left += count(&tail, P.as_bytes());
                let keep = tail.len().min(P.len() - 1);
                tail.drain(..tail.len() - keep);
            }
            Poll::Ready(Some(Err(e))) => panic!("shaping failed: {e}"),
            Poll::Ready(None) => break,
            Poll::Pending => panic!("an in-memory body stalled"),
        }
    }
    let peak = status_kib("VmHWM:");
    Outcome {
        input: total,
        output,
        served_at_first_output: served_at_first_output.unwrap_or(usize::MAX),
        prefixes_left,
        peak_growth: peak.saturating_sub(baseline) * 1024,
    }
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

fn gzip_member(data: &[u8]) -> Vec<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut out = Vec::new();
        async_compression::tokio::bufread::GzipEncoder::new(data)
            .read_to_end(&mut out)
            .await
            .expect("gzip");
        out
    })
}

#[test]
fn fifty_mib_pages_stream_with_flat_memory() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("skipping: /proc/self/status is not available to measure memory");
        return;
    }
    let unit = block();
    let prefixes_per_unit = count(&unit, P.as_bytes());
    let units = PAGE_BYTES.div_ceil(unit.len());
    let total = units * unit.len();

    // Plain HTML.
    let plain = run(
        Bytes::from(unit.clone()),
        total,
        &[("content-type", "text/html")],
    );
    eprintln!(
        "plain: {} MiB in, {} MiB out, peak RSS growth {:.1} MiB",
        plain.input >> 20,
        plain.output >> 20,
        plain.peak_growth as f64 / 1048576.0
    );
    assert_eq!(plain.prefixes_left, 0);
    assert_eq!(plain.output, total - units * prefixes_per_unit * P.len());
    assert!(
        plain.served_at_first_output < total / 100,
        "first output came late"
    );
    assert!(
        plain.peak_growth < BUDGET,
        "peak grew by {} bytes",
        plain.peak_growth
    );

    // The same page as a multi-member gzip stream: one member per block.
    let member = gzip_member(&unit);
    let gz_total = units * member.len();
    let gz = run(
        Bytes::from(member),
        gz_total,
        &[("content-type", "text/html"), ("content-encoding", "gzip")],
    );
    eprintln!(
        "gzip: {} MiB in, {} MiB out, peak RSS growth {:.1} MiB",
        gz.input >> 20,
        gz.output >> 20,
        gz.peak_growth as f64 / 1048576.0
    );
    assert_eq!(gz.prefixes_left, 0);
    assert_eq!(gz.output, total - units * prefixes_per_unit * P.len());
    assert!(
        gz.served_at_first_output < total / 100,
        "first output came late"
    );
    assert!(
        gz.peak_growth < BUDGET,
        "peak grew by {} bytes",
        gz.peak_growth
    );
}
