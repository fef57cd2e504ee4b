//! The request filter of `kubectl proxy`, rule for rule.
//!
//! Contract (kubectl `pkg/proxy/proxy_server.go`, `FilterServer.accept`): a request is refused
//! when its path matches any `--reject-paths` pattern, then when its method matches any
//! `--reject-methods` pattern; it is admitted only when its path matches an `--accept-paths`
//! pattern **and** its host matches an `--accept-hosts` pattern. Patterns are unanchored
//! (`MatchString`), case-sensitive, split on `,` without trimming, and an empty list matches
//! nothing (kubectl ≥ 1.21, `MakeRegexpArray`). The path checked is the percent-decoded path
//! after `--api-prefix` stripping; the host is the `Host` header without its port.
//!
//! One intentional difference (see `DIFFERENCES.md`): kubectl's `extractHost` turns
//! `[::1]:8001` into `::1`, which its own default `^\[::1\]$` never matches
//! (kubernetes/kubernetes#77496). kgate keeps the brackets of an IPv6 literal, so the default
//! list admits IPv6 loopback with a port.

use regex::Regex;

/// kubectl's `DefaultHostAcceptRE`.
pub const DEFAULT_ACCEPT_HOSTS: &str = r"^localhost$,^127\.0\.0\.1$,^\[::1\]$";
/// kubectl's `DefaultPathAcceptRE`.
pub const DEFAULT_ACCEPT_PATHS: &str = "^.*";
/// kubectl's `DefaultPathRejectRE`.
pub const DEFAULT_REJECT_PATHS: &str = "^/api/.*/pods/.*/exec,^/api/.*/pods/.*/attach";
/// kubectl's `DefaultMethodRejectRE`.
pub const DEFAULT_REJECT_METHODS: &str = "^$";

/// A pattern list that did not compile. kubectl treats this as fatal
/// (`klog.Fatalf("Error compiling re: %v", err)`, exit code 255).
#[derive(Debug, thiserror::Error)]
#[error("Error compiling re: {source}")]
pub struct PatternError {
    /// The one pattern of the comma list that failed.
    pub pattern: String,
    #[source]
    pub source: regex::Error,
}

/// One comma-separated list of unanchored regular expressions (kubectl's `MakeRegexpArray`).
#[derive(Debug, Clone, Default)]
pub struct Patterns(Vec<Regex>);

impl Patterns {
    /// Compiles `list`: `""` is the empty list (matches nothing); otherwise every piece between
    /// commas, untrimmed, is one pattern (so `"a, b"` has the pattern `" b"`, as in kubectl).
    pub fn compile(list: &str) -> Result<Self, PatternError> {
        if list.is_empty() {
            return Ok(Self(Vec::new()));
        }
        list.split(',')
            .map(|pattern| {
                Regex::new(pattern).map_err(|source| PatternError {
                    pattern: pattern.to_owned(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// True when any pattern matches anywhere in `text` (Go's `MatchString`).
    pub fn matches(&self, text: &str) -> bool {
        self.0.iter().any(|re| re.is_match(text))
    }
}

/// The four pattern lists of `kubectl proxy`.
#[derive(Debug, Clone)]
pub struct Filter {
    pub accept_paths: Patterns,
    pub reject_paths: Patterns,
    pub accept_hosts: Patterns,
    pub reject_methods: Patterns,
}

/// The pattern lists as given on the command line, before compilation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterSpec {
    pub accept_paths: String,
    pub reject_paths: String,
    pub accept_hosts: String,
    pub reject_methods: String,
}

impl Default for FilterSpec {
    fn default() -> Self {
        Self {
            accept_paths: DEFAULT_ACCEPT_PATHS.to_owned(),
            reject_paths: DEFAULT_REJECT_PATHS.to_owned(),
            accept_hosts: DEFAULT_ACCEPT_HOSTS.to_owned(),
            reject_methods: DEFAULT_REJECT_METHODS.to_owned(),
        }
    }
}

/// Why the filter refused a request; logged at `-v=3`, never sent to the client (the client
/// always gets kubectl's bare `Forbidden`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterRefusal {
    RejectedPath,
    RejectedMethod,
    PathNotAccepted,
    HostNotAccepted,
}

impl Filter {
    /// Compiles the four lists in kubectl's order; the first bad pattern is the error.
    pub fn compile(spec: &FilterSpec) -> Result<Self, PatternError> {
        Ok(Self {
            accept_paths: Patterns::compile(&spec.accept_paths)?,
            reject_paths: Patterns::compile(&spec.reject_paths)?,
            accept_hosts: Patterns::compile(&spec.accept_hosts)?,
            reject_methods: Patterns::compile(&spec.reject_methods)?,
        })
    }

    /// kubectl's `FilterServer.accept(method, path, host)` with `host` already reduced by
    /// [`extract_host`].
    pub fn check(&self, method: &str, path: &str, host: &str) -> Result<(), FilterRefusal> {
        if self.reject_paths.matches(path) {
            return Err(FilterRefusal::RejectedPath);
        }
        if self.reject_methods.matches(method) {
            return Err(FilterRefusal::RejectedMethod);
        }
        if !self.accept_paths.matches(path) {
            return Err(FilterRefusal::PathNotAccepted);
        }
        if !self.accept_hosts.matches(host) {
            return Err(FilterRefusal::HostNotAccepted);
        }
        Ok(())
    }
}

/// The host part of a `Host` header, as kubectl's `extractHost` (`net.SplitHostPort`, the whole
/// header when that fails), except that an IPv6 literal keeps its brackets: `[::1]:8001` gives
/// `[::1]`, which the default `^\[::1\]$` admits (kubectl gives `::1`, a bug).
pub fn extract_host(header: &str) -> &str {
    if header.starts_with('[') {
        // `[v6]:port` → `[v6]`; `[v6]` alone stays as it is (SplitHostPort fails: no port).
        return match header.rfind("]:") {
            Some(end) if !header[end + 2..].contains(':') => &header[..=end],
            _ => header,
        };
    }
    // Go's SplitHostPort: exactly one colon splits; more than one colon without brackets is
    // an error ("too many colons"), and then kubectl uses the whole header.
    match header.split_once(':') {
        Some((host, port)) if !port.contains(':') => host,
        _ => header,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(accept_paths: &str, reject_paths: &str, accept_hosts: &str, methods: &str) -> Filter {
        Filter::compile(&FilterSpec {
            accept_paths: accept_paths.into(),
            reject_paths: reject_paths.into(),
            accept_hosts: accept_hosts.into(),
            reject_methods: methods.into(),
        })
        .unwrap()
    }

    /// The rows of kubectl's `TestAccept` (`pkg/proxy/proxy_server_test.go`), in its order:
    /// (name, reject-methods, reject-paths, path, host, method, accepted).
    #[rustfmt::skip]
    const TEST_ACCEPT: &[(&str, &str, &str, &str, &str, &str, bool)] = &[
        ("test1", DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS, "", "127.0.0.1", "GET", true),
        ("test2", DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS, "/api/v1/pods", "127.0.0.1", "GET", true),
        ("test3", DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS, "/api/v1/pods", "localhost", "GET", true),
        ("test4", DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS, "/api/v1/namespaces/default/pods/foo", "localhost", "GET", true),
        ("test5", DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS, "/api/v1/namespaces/default/pods/attachfoo", "localhost", "GET", true),
        ("test7", DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS, "/api/v1/namespaces/default/pods/execfoo", "localhost", "GET", true),
        ("test8", DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS, "/api/v1/namespaces/default/pods/foo/exec", "127.0.0.1", "GET", false),
        ("test9", DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS, "/api/v1/namespaces/default/pods/foo/attach", "127.0.0.1", "GET", false),
        ("test10", DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS, "/api/v1/pods", "evil.com", "GET", false),
        ("test11", DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS, "/api/v1/pods", "localhost.evil.com", "GET", false),
        ("test12", DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS, "/api/v1/pods", "127a0b0c1", "GET", false),
        ("test13", DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS, "/ui", "localhost", "GET", true),
        ("test14", DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS, "/api/v1/pods", "localhost", "POST", true),
        ("test15", DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS, "/api/v1/namespaces/default/pods/somepod", "localhost", "PUT", true),
        ("test16", DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS, "/api/v1/namespaces/default/pods/somepod", "localhost", "PATCH", true),
        ("test17", "GET", DEFAULT_REJECT_PATHS, "/api/v1/pods", "127.0.0.1", "GET", false),
        ("test18", "POST", DEFAULT_REJECT_PATHS, "/api/v1/pods", "localhost", "POST", false),
        ("test19", "PUT", DEFAULT_REJECT_PATHS, "/api/v1/namespaces/default/pods/somepod", "localhost", "PUT", false),
        ("test20", "PATCH", DEFAULT_REJECT_PATHS, "/api/v1/namespaces/default/pods/somepod", "localhost", "PATCH", false),
        ("test21", "POST,PUT,PATCH", DEFAULT_REJECT_PATHS, "/api/v1/namespaces/default/pods/somepod", "localhost", "PATCH", false),
        ("test22", "POST,PUT,PATCH", DEFAULT_REJECT_PATHS, "/api/v1/namespaces/default/pods/somepod", "localhost", "PUT", false),
        ("test23", DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS, "/api/v1/namespaces/default/pods/somepod/exec", "localhost", "POST", false),
        ("test24", DEFAULT_REJECT_METHODS, "", "/api/v1/namespaces/default/pods/somepod/exec", "localhost", "POST", true),
    ];

    #[test]
    fn kubectl_test_accept_rows() {
        for &(name, methods, reject_paths, path, host, method, want) in TEST_ACCEPT {
            let f = filter(
                DEFAULT_ACCEPT_PATHS,
                reject_paths,
                DEFAULT_ACCEPT_HOSTS,
                methods,
            );
            assert_eq!(f.check(method, path, host).is_ok(), want, "{name}");
        }
    }

    #[test]
    fn kubectl_test_regexp_match_rows() {
        for (text, list, want) in [
            ("foo", "bar,.*", true),
            ("foo", "bar,fo.*", true),
            ("bar", "bar,fo.*", true),
            ("baz", "bar,fo.*", false),
        ] {
            assert_eq!(
                Patterns::compile(list).unwrap().matches(text),
                want,
                "{text} {list}"
            );
        }
    }

    #[test]
    fn kubectl_test_extract_host_rows() {
        assert_eq!(extract_host("localhost:8085"), "localhost");
        assert_eq!(extract_host("marmalade"), "marmalade");
    }

    #[test]
    fn ipv6_loopback_with_port_keeps_brackets() {
        assert_eq!(extract_host("[::1]:8001"), "[::1]");
        assert_eq!(extract_host("[::1]"), "[::1]");
        assert_eq!(extract_host("::1"), "::1");
        let f = Filter::compile(&FilterSpec::default()).unwrap();
        assert_eq!(f.check("GET", "/api", extract_host("[::1]:8001")), Ok(()));
        assert_eq!(
            f.check("GET", "/api", extract_host("[::2]:8001")),
            Err(FilterRefusal::HostNotAccepted)
        );
    }

    #[test]
    fn order_is_reject_paths_then_methods_then_accepts() {
        let f = filter("^/ok", "^/bad", "^good$", "^DELETE$");
        assert_eq!(
            f.check("DELETE", "/bad", "evil"),
            Err(FilterRefusal::RejectedPath)
        );
        assert_eq!(
            f.check("DELETE", "/ok", "evil"),
            Err(FilterRefusal::RejectedMethod)
        );
        assert_eq!(
            f.check("GET", "/other", "good"),
            Err(FilterRefusal::PathNotAccepted)
        );
        assert_eq!(
            f.check("GET", "/ok", "evil"),
            Err(FilterRefusal::HostNotAccepted)
        );
        assert_eq!(f.check("GET", "/ok/x", "good"), Ok(()));
    }

    #[test]
    fn empty_lists_follow_kubectl_1_21() {
        // Empty accept lists refuse everything; empty reject lists refuse nothing.
        let f = filter("", "", "", "");
        assert_eq!(
            f.check("GET", "/", "localhost"),
            Err(FilterRefusal::PathNotAccepted)
        );
        let f = filter(".*", "", "", "");
        assert_eq!(
            f.check("GET", "/", "localhost"),
            Err(FilterRefusal::HostNotAccepted)
        );
        let f = filter(".*", "", ".*", "");
        assert_eq!(f.check("DELETE", "/api/v1/pods/x/exec", "x"), Ok(()));
    }

    #[test]
    fn unanchored_case_sensitive_untrimmed() {
        let p = Patterns::compile("ost, b").unwrap();
        assert!(p.matches("localhost"), "unanchored");
        assert!(!p.matches("LOCALHOST"), "case-sensitive");
        assert!(!p.matches("b"), "' b' keeps its space");
        assert!(p.matches("a b"));
        // A trailing comma adds the empty pattern, which matches everything (as in Go).
        assert!(Patterns::compile("x,").unwrap().matches("anything"));
    }

    #[test]
    fn bad_pattern_is_reported_like_kubectl() {
        let err = Patterns::compile("ok,[").unwrap_err();
        assert_eq!(err.pattern, "[");
        assert!(err.to_string().starts_with("Error compiling re: "), "{err}");
    }
}
