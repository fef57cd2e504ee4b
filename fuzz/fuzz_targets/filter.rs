//! Fuzzes the `kubectl proxy` request filter (`gateway::admit::filter`): pattern-list
//! compilation from command-line text, `extract_host` on arbitrary `Host` headers, and
//! `Filter::check`, from the gateway library the `kgate` binary links.
//!
//! Properties: nothing panics; `extract_host` returns a prefix of its input, keeps the
//! brackets of an IPv6 literal and drops a `:port`; the default filter refuses every path that
//! its reject list names (exec and attach under `/api/`) and admits no host outside loopback.
//!
//! Input layout: fields separated by `\n`: host, path, method, then optionally the four
//! pattern lists (accept-paths, reject-paths, accept-hosts, reject-methods).
#![no_main]

use gateway::filter::{Filter, FilterSpec, extract_host};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut fields = text.split('\n');
    let host_header = fields.next().unwrap_or("");
    let path = fields.next().unwrap_or("");
    let method = fields.next().unwrap_or("GET");

    let host = extract_host(host_header);
    assert!(host_header.starts_with(host), "{host_header:?} -> {host:?}");
    if let Some(port) = host_header.strip_prefix(host).and_then(|r| r.strip_prefix(':')) {
        assert!(!port.contains(':'), "{host_header:?} split at the wrong colon");
    }
    if host_header.starts_with('[') {
        assert!(host.ends_with(']') || host == host_header, "{host_header:?} -> {host:?}");
    }

    let Ok(default) = Filter::compile(&FilterSpec::default()) else {
        panic!("the default filter does not compile")
    };
    let verdict = default.check(method, path, host);
    if verdict.is_ok() {
        assert!(
            matches!(host, "localhost" | "127.0.0.1" | "[::1]"),
            "default filter admitted host {host:?}"
        );
        let exec = path.starts_with("/api/") && (path.contains("/exec") || path.contains("/attach"));
        if exec {
            // Exactly the reject patterns: `^/api/.*/pods/.*/exec` (and attach).
            let after = &path[5..];
            for verb in ["/exec", "/attach"] {
                if let Some(pods) = after.find("/pods/")
                    && after[pods + 6..].contains(verb)
                {
                    panic!("default filter admitted {path:?}");
                }
            }
        }
    }

    // Arbitrary pattern lists: compiling them and checking never panics. Patterns are kept
    // short so that regex compilation stays fast (its own size limit bounds memory).
    let lists: Vec<&str> = fields.take(4).collect();
    if lists.len() == 4 && lists.iter().all(|l| l.len() <= 64) {
        let spec = FilterSpec {
            accept_paths: lists[0].to_owned(),
            reject_paths: lists[1].to_owned(),
            accept_hosts: lists[2].to_owned(),
            reject_methods: lists[3].to_owned(),
        };
        if let Ok(filter) = Filter::compile(&spec) {
            let _ = filter.check(method, path, host);
        }
    }
});
