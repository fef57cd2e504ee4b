//! Fuzzes the header value rewriters of `rewrite::urls` (`Location`, `Refresh`, `Set-Cookie`,
//! `Link`, `srcset`) over arbitrary text: none panics, each returns `None` or a changed value,
//! and an un-prefixed URL never points at another origin (no `//`, `/\` or tab-slash start).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewrite::{
    ShapeContext, unprefix_link, unprefix_location, unprefix_refresh, unprefix_set_cookie,
    unprefix_srcset, unprefix_url,
};

const PREFIX: &str = "/api/v1/namespaces/monitoring/services/grafana/proxy";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(ctx) = ShapeContext::new(PREFIX, "10.96.0.1:443", "grafana.monitoring.svc.localhost:8001")
    else {
        return;
    };
    // The seeds are values after the prefix; try them both as given and behind the prefix.
    for value in [text.to_owned(), format!("{PREFIX}{text}"), format!("https://10.96.0.1:443{PREFIX}{text}")] {
        for (name, f) in [
            ("url", unprefix_url as fn(&str, &ShapeContext) -> Option<String>),
            ("location", unprefix_location),
            ("refresh", unprefix_refresh),
            ("set-cookie", unprefix_set_cookie),
            ("link", unprefix_link),
            ("srcset", unprefix_srcset),
        ] {
            if let Some(out) = f(&value, &ctx) {
                assert_ne!(out, value, "{name}: Some returned for an unchanged value");
            }
        }
        if let Some(url) = unprefix_url(&value, &ctx) {
            let b = url.as_bytes();
            assert_eq!(b.first(), Some(&b'/'), "{value:?} -> {url:?}");
            assert!(
                !matches!(b.get(1), Some(b'/' | b'\\' | b'\t' | b'\n' | b'\r')),
                "{value:?} un-prefixed into a network-path URL {url:?}"
            );
        }
    }
});
