//! `kgate serve`: the gateway with kgate's own defaults.
//!
//! Contract: the same server as `kgate proxy` (API passthrough behind kubectl's default filter,
//! with kgate's IPv6 fix), listening on `127.0.0.1:8001` unless told otherwise, with a bound on
//! the wait for the API server's response head (`--header-timeout`, default 5 minutes) so a
//! stuck API server gives a `504` rather than a hang; and every service at the root of its own
//! origin (the gateway's `build` and `shape` phases), with the gateway's own pages under `/.kgate/`;
//! `--mount` binds one service at the root of an address of its own. Prints `Starting to serve
//! on <address>` like `kgate proxy`, so scripts can read the bound port, then the index page's
//! URL and one `Mounted <target> on <url>` line per mount.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::cmd::serving::{self, MountArg, Serving};
use gateway::filter::{DEFAULT_ACCEPT_HOSTS, Filter, FilterSpec};
use gateway::server::{Listen, LocalAddr};

/// Arguments of `kgate serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The port on which to serve. Set to 0 to pick a random port.
    #[arg(short = 'p', long, default_value_t = 8001)]
    port: u16,

    /// The IP address on which to serve (IPv6 in brackets, e.g. `[::1]`).
    #[arg(long, default_value = "127.0.0.1")]
    address: String,

    /// Serve on this unix socket instead of TCP (created owner-only).
    #[arg(short = 'u', long, conflicts_with_all = ["port", "address"])]
    unix_socket: Option<PathBuf>,

    /// Longest wait for the API server's response head before answering 504 (e.g. 30s, 5m).
    #[arg(long, default_value = "5m", value_parser = config::parse_go_duration)]
    header_timeout: Duration,

    /// Regular expressions for hosts the gateway accepts (comma-separated, as `kubectl proxy
    /// --accept-hosts`); widen it when clients reach the gateway under another name, e.g. a
    /// Service in front of kgate in a cluster.
    #[arg(long, default_value = DEFAULT_ACCEPT_HOSTS)]
    accept_hosts: String,

    /// Also serve one service at the root of an address of its own, for tools that do not
    /// resolve *.localhost names: svc/<ns>/<name>[:<port>]=<ip>:<port>, or =<port> for
    /// 127.0.0.1. Repeatable.
    #[arg(long, value_name = "TARGET=ADDRESS", value_parser = MountArg::parse)]
    mount: Vec<MountArg>,

    /// Let pages of this origin use the gateway as its own pages may (a front-end under
    /// development, e.g. http://localhost:3000): web pages of any other origin are refused
    /// WebSockets, writes and the Kubernetes API. Repeatable.
    #[arg(long = "allow-origin", value_name = "URL", value_parser = serving::parse_origin)]
    allow_origin: Vec<String>,

    #[command(flatten)]
    serving: serving::ClusterArgs,
}

pub(crate) fn run(args: Args) -> ExitCode {
    crate::logging::init(args.serving.verbosity());
    let spec = FilterSpec {
        accept_hosts: args.accept_hosts.clone(),
        ..FilterSpec::default()
    };
    let filter = match Filter::compile(&spec) {
        Ok(filter) => filter,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(1);
        }
    };
    let listen = match &args.unix_socket {
        Some(path) => Listen::Unix(path.clone()),
        None => Listen::Tcp(format!("{}:{}", args.address, args.port)),
    };
    let mut serving = Serving::gateway(listen, filter, args.header_timeout, args.mount.clone());
    serving.allow_origins = args.allow_origin.clone();
    serving::run(&args.serving, serving, |running| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "Starting to serve on {}", running.local_addr());
        if let LocalAddr::Tcp(socket) = running.local_addr() {
            let port = socket.port();
            let _ = writeln!(
                out,
                "Services: http://localhost:{port}{index} (each at http://<name>.<namespace>.svc.localhost:{port}/)",
                index = gateway::INDEX_PATH
            );
        }
        for (target, addr) in running.mounts() {
            let _ = writeln!(out, "Mounted {target} on http://{addr}/");
        }
        let _ = out.flush();
    })
}
