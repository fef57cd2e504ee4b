//! `kgate serve`: the gateway with kgate's own defaults.
//!
//! Contract: the same server as `kgate proxy` (API passthrough behind kubectl's default filter,
//! with kgate's IPv6 fix), listening on `127.0.0.1:8001` unless told otherwise, with a bound on
//! the wait for the API server's response head (`--header-timeout`, default 5 minutes) so a
//! stuck API server gives a `504` rather than a hang; and every service at the root of its own
//! origin (the gateway's `build` and `shape` phases), with the gateway's own pages under `/.kgate/`;
//! `--mount` binds one service at the root of an address of its own. Prints `Starting to serve
//! on <address>` like `kgate proxy`, so scripts can read the bound port, then the index page's
//! URL and one `Mounted <target> on <url>` line per mount. With `--gateway-token auto` every request
//! must carry a random token, printed in those URLs and left (owner-only) where `kgate urls`
//! and `kgate open` find it (`cmd::runtime`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use gateway::filter::{DEFAULT_ACCEPT_HOSTS, Filter, FilterSpec};
use gateway::server::{Listen, LocalAddr, RunningServer};

use crate::cmd::runtime::{self, TokenMode};
use crate::cmd::serving::{self, MountArg, Serving};

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

    /// Require a token from every request: `auto` makes a random one and prints it once, in
    /// the URLs below (a browser keeps it in a cookie; scripts send Authorization: Bearer).
    /// Use it on a machine shared with other users, or use --unix-socket.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = TokenMode::Off)]
    gateway_token: TokenMode,

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
    serving.token = match args.gateway_token.token() {
        Ok(token) => token,
        Err(err) => {
            eprintln!("error: making a token: {err}");
            return ExitCode::from(1);
        }
    };
    let token = serving.token.clone();
    let published = std::cell::RefCell::new(None);
    let code = serving::run(&args.serving, serving, |running| {
        let token = token.as_ref();
        if let (Some(token), LocalAddr::Tcp(socket)) = (token, running.local_addr()) {
            match runtime::publish(socket.port(), token) {
                Ok(entry) => *published.borrow_mut() = Some(entry),
                Err(err) => eprintln!(
                    "kgate: cannot leave the token where `kgate urls` and `kgate open` find it: {err}"
                ),
            }
        }
        announce(running, token);
    });
    drop(published);
    code
}

/// The start-up lines: kubectl's `Starting to serve on`, then where the services are (with
/// the token, when there is one: it is printed here and nowhere else).
fn announce(running: &RunningServer, token: Option<&gateway::AccessToken>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "Starting to serve on {}", running.local_addr());
    if let LocalAddr::Tcp(socket) = running.local_addr() {
        let port = socket.port();
        let index = runtime::with_token(
            &format!("http://localhost:{port}{}", gateway::INDEX_PATH),
            token,
        );
        let origin = runtime::with_token(
            &format!("http://<name>.<namespace>.svc.localhost:{port}/"),
            token,
        );
        let _ = writeln!(out, "Services: {index} (each at {origin})");
        if let Some(token) = token {
            let _ = writeln!(
                out,
                "Scripts and kubectl: Authorization: Bearer {} (kubectl --server \
                 http://localhost:{port} --token <it>)",
                token.expose()
            );
        }
    }
    for (target, addr) in running.mounts() {
        let url = runtime::with_token(&format!("http://{addr}/"), token);
        let _ = writeln!(out, "Mounted {target} on {url}");
    }
    let _ = out.flush();
}
