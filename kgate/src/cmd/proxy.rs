//! `kgate proxy`: a drop-in for `kubectl proxy`.
//!
//! Contract: the same flags, short forms, defaults, help texts, validation and warnings as
//! kubectl (`pkg/cmd/proxy/proxy.go`: `NewCmdProxy`, `Complete`, `Validate`, `RunProxy`), plus
//! kubectl's global kubeconfig flags. Once the listener is bound it prints
//! `Starting to serve on <address>` on stdout, exactly as kubectl, then serves until SIGINT or
//! SIGTERM and exits 0 after in-flight requests finished (at most 10 s). An invalid filter
//! pattern is fatal with kubectl's `Error compiling re: ...` and exit code 255; a usage error
//! exits 1 with `error: ...`, as kubectl's `CheckErr`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::cmd::serving::{self, Serving};
use gateway::filter::{
    DEFAULT_ACCEPT_HOSTS, DEFAULT_ACCEPT_PATHS, DEFAULT_REJECT_METHODS, DEFAULT_REJECT_PATHS,
    Filter, FilterSpec,
};
use gateway::server::Listen;

/// kubectl's `defaultPort`.
const DEFAULT_PORT: i64 = 8001;

/// Arguments of `kgate proxy`, flag for flag as `kubectl proxy`.
#[derive(Debug, clap::Args)]
#[command(
    override_usage = "kgate proxy [--port=PORT] [--www=static-dir] [--www-prefix=prefix] [--api-prefix=prefix]",
    long_about = "Creates a proxy server or application-level gateway between localhost and the \
                  Kubernetes API server. It also allows serving static content over specified \
                  HTTP path. All incoming data enters through one port and gets forwarded to the \
                  remote Kubernetes API server port, except for the path matching the static \
                  content path."
)]
pub(crate) struct Args {
    #[arg(
        short = 'p',
        long,
        default_value_t = DEFAULT_PORT,
        allow_negative_numbers = true,
        help = "The port on which to run the proxy. Set to 0 to pick a random port."
    )]
    port: i64,

    #[arg(
        long,
        default_value = "127.0.0.1",
        help = "The IP address on which to serve on."
    )]
    address: String,

    #[arg(
        short = 'u',
        long,
        default_value = "",
        hide_default_value = true,
        help = "Unix socket on which to run the proxy."
    )]
    unix_socket: String,

    #[arg(
        long,
        default_value = DEFAULT_ACCEPT_HOSTS,
        help = "Regular expression for hosts that the proxy should accept."
    )]
    accept_hosts: String,

    #[arg(
        long,
        default_value = DEFAULT_ACCEPT_PATHS,
        help = "Regular expression for paths that the proxy should accept."
    )]
    accept_paths: String,

    #[arg(
        long,
        default_value = DEFAULT_REJECT_PATHS,
        help = "Regular expression for paths that the proxy should reject. Paths specified here \
                will be rejected even accepted by --accept-paths."
    )]
    reject_paths: String,

    #[arg(
        long,
        default_value = DEFAULT_REJECT_METHODS,
        help = "Regular expression for HTTP methods that the proxy should reject (example \
                --reject-methods='POST,PUT,PATCH'). "
    )]
    reject_methods: String,

    #[arg(
        long,
        default_value = "false",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse_go_bool,
        help = "If true, disable request filtering in the proxy. This is dangerous, and can leave \
                you vulnerable to XSRF attacks, when used with an accessible port."
    )]
    disable_filter: bool,

    #[arg(
        long,
        default_value = "/",
        help = "Prefix to serve the proxied API under."
    )]
    api_prefix: String,

    #[arg(
        short = 'w',
        long,
        default_value = "",
        hide_default_value = true,
        help = "Also serve static files from the given directory under the specified prefix."
    )]
    www: String,

    #[arg(
        short = 'P',
        long,
        default_value = "/static/",
        help = "Prefix to serve static files under, if static file directory is specified."
    )]
    www_prefix: String,

    #[arg(
        long,
        default_value = "0s",
        value_parser = parse_keepalive,
        help = "keepalive specifies the keep-alive period for an active network connection. Set \
                to 0 to disable keepalive."
    )]
    keepalive: Duration,

    #[arg(
        long,
        default_value = "false",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse_go_bool,
        help = "If true, enables automatic path appending of the kube context server path to \
                each request."
    )]
    append_server_path: bool,

    /// Let pages of this origin use the gateway as its own pages may (a front-end under
    /// development, e.g. http://localhost:3000): web pages of any other origin are refused
    /// WebSockets, writes and the Kubernetes API. Repeatable.
    #[arg(long = "allow-origin", value_name = "URL", value_parser = serving::parse_origin)]
    allow_origin: Vec<String>,

    #[command(flatten)]
    serving: serving::ClusterArgs,
}

/// Go's `strconv.ParseBool`, which is what `--flag=value` accepts for kubectl's bool flags.
fn parse_go_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {value:?}: invalid syntax"
        )),
    }
}

/// Go's `time.ParseDuration` (kubectl's `DurationVar`).
fn parse_keepalive(value: &str) -> Result<Duration, String> {
    config::parse_go_duration(value)
}

pub(crate) fn run(args: Args) -> ExitCode {
    crate::logging::init(args.serving.verbosity());
    // Validate (kubectl checks this before anything else).
    if args.port != DEFAULT_PORT && !args.unix_socket.is_empty() {
        eprintln!("error: cannot set --unix-socket and --port at the same time");
        return ExitCode::from(1);
    }
    let filter = match complete_filter(&args) {
        Ok(filter) => filter,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(255);
        }
    };
    let www = complete_www(&args);
    if !args.keepalive.is_zero() {
        // kubectl applies --keepalive to its upgrade dialer only; kgate's connections to the
        // API server always use a 30 s TCP keep-alive (DIFFERENCES.md).
        tracing::info!(
            "--keepalive={:?}: connections to the API server use a 30s TCP keep-alive",
            args.keepalive
        );
    }
    let listen = if args.unix_socket.is_empty() {
        Listen::Tcp(format!("{}:{}", args.address, args.port))
    } else {
        Listen::Unix(PathBuf::from(&args.unix_socket))
    };
    let serving = Serving {
        listen,
        api_prefix: args.api_prefix.clone(),
        www,
        filter,
        append_server_path: args.append_server_path,
        header_timeout: None,
        warn_server_path: true,
        origins: false,
        mounts: Vec::new(),
        allow_origins: args.allow_origin.clone(),
        token: None,
    };
    serving::run(&args.serving, serving, |running| {
        // kubectl: `fmt.Fprintf(out, "Starting to serve on %s\n", l.Addr().String())`.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "Starting to serve on {}", running.local_addr());
        let _ = out.flush();
    })
}

/// kubectl's `Complete` for the filter: `--disable-filter` warns (unless on a unix socket) and
/// drops it; relaxed reject lists warn; a bad pattern is fatal.
fn complete_filter(args: &Args) -> Result<Option<Filter>, gateway::filter::PatternError> {
    if args.disable_filter {
        if args.unix_socket.is_empty() {
            tracing::warn!(
                "Request filter disabled, your proxy is vulnerable to XSRF attacks, please be cautious"
            );
        }
        return Ok(None);
    }
    if args.reject_paths.is_empty() || args.reject_methods.is_empty() {
        tracing::warn!(
            "Request filter has been relaxed, your proxy may be vulnerable to attacks, please be cautious"
        );
    }
    Filter::compile(&FilterSpec {
        accept_paths: args.accept_paths.clone(),
        reject_paths: args.reject_paths.clone(),
        accept_hosts: args.accept_hosts.clone(),
        reject_methods: args.reject_methods.clone(),
    })
    .map(Some)
}

/// kubectl's `Validate` for `--www`: a missing or non-directory path only warns.
fn complete_www(args: &Args) -> Option<(PathBuf, String)> {
    if args.www.is_empty() {
        return None;
    }
    match std::fs::metadata(&args.www) {
        Err(err) => {
            tracing::warn!("Failed to stat static file directory {}: {err}", args.www);
        }
        Ok(meta) if !meta.is_dir() => {
            tracing::warn!("Static file directory {} is not a directory", args.www);
        }
        Ok(_) => {}
    }
    Some((PathBuf::from(&args.www), args.www_prefix.clone()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Args {
        let mut full = vec!["kgate"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full).unwrap().args
    }

    #[test]
    fn defaults_are_kubectls() {
        let a = parse(&[]);
        assert_eq!(a.port, 8001);
        assert_eq!(a.address, "127.0.0.1");
        assert_eq!(a.accept_hosts, r"^localhost$,^127\.0\.0\.1$,^\[::1\]$");
        assert_eq!(a.accept_paths, "^.*");
        assert_eq!(
            a.reject_paths,
            "^/api/.*/pods/.*/exec,^/api/.*/pods/.*/attach"
        );
        assert_eq!(a.reject_methods, "^$");
        assert_eq!(a.api_prefix, "/");
        assert_eq!(a.www_prefix, "/static/");
        assert_eq!(a.www, "");
        assert_eq!(a.unix_socket, "");
        assert_eq!(a.keepalive, Duration::ZERO);
        assert!(!a.disable_filter && !a.append_server_path);
    }

    #[test]
    fn short_forms_and_go_bools() {
        let a = parse(&[
            "-p",
            "0",
            "-w",
            "/tmp",
            "-P",
            "/s/",
            "--disable-filter",
            "--keepalive=30s",
        ]);
        assert_eq!(
            (a.port, a.www.as_str(), a.www_prefix.as_str()),
            (0, "/tmp", "/s/")
        );
        assert!(a.disable_filter);
        assert_eq!(a.keepalive, Duration::from_secs(30));
        let a = parse(&[
            "-u",
            "/tmp/s",
            "--disable-filter=false",
            "--append-server-path=T",
        ]);
        assert_eq!(a.unix_socket, "/tmp/s");
        assert!(!a.disable_filter && a.append_server_path);
        let a = parse(&["--reject-methods=", "--accept-hosts", ""]);
        assert_eq!(
            (a.reject_methods.as_str(), a.accept_hosts.as_str()),
            ("", "")
        );
    }

    #[test]
    fn empty_reject_lists_compile_to_empty() {
        let a = parse(&["--reject-paths=", "--reject-methods="]);
        let f = complete_filter(&a).unwrap().unwrap();
        assert!(
            f.check("POST", "/api/v1/namespaces/a/pods/b/exec", "localhost")
                .is_ok()
        );
        let a = parse(&["--accept-paths=["]);
        let err = complete_filter(&a).unwrap_err();
        assert!(err.to_string().starts_with("Error compiling re: "));
    }
}
