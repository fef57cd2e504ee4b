//! Fuzzes the streaming HTML stage (`rewrite::rewrite_all`): it never panics, its output does
//! not depend on how the input is split into chunks, and a page that never mentions the proxy
//! prefix comes out byte-identical.
//!
//! Input layout: byte 0 picks a chunking (chunk sizes 1..=16 cycling through the next two
//! bytes), the rest is the page. A page containing the prefix is rewritten; the seeds in
//! `corpus/rewrite_html/` are pages the API server would have rewritten.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewrite::{ShapeContext, rewrite_all};

const PREFIX: &str = "/api/v1/namespaces/monitoring/services/grafana/proxy";

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else { return };
    let (sizes, page) = rest.split_at(rest.len().min(2));
    let chunking: Vec<usize> = sizes.iter().map(|b| usize::from(b % 16) + 1).collect();
    let Ok(ctx) = ShapeContext::new(PREFIX, "10.96.0.1:443", "grafana.monitoring.svc.localhost:8001")
    else {
        return;
    };
    // A small cap, so that the "cap hit: pass the rest through" path is exercised too.
    let ctx = if head & 1 == 1 { ctx.with_max_buffered_bytes(1024) } else { ctx };
    let whole = rewrite_all(page, &ctx, &[]);
    let split = rewrite_all(page, &ctx, &chunking);
    match (&whole, &split) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "output depends on chunking {chunking:?}"),
        (Err(_), Err(_)) => {}
        _ => panic!("one chunking failed and the other did not: {whole:?} vs {split:?}"),
    }
    let mentions_prefix = page.windows(PREFIX.len()).any(|w| w.eq_ignore_ascii_case(PREFIX.as_bytes()));
    if let Ok(out) = whole
        && !mentions_prefix
    {
        assert_eq!(out, page, "a page without the prefix was changed");
    }
});
