//! `kgate open <target>`: a service in the browser, at the root of its own origin.
//!
//! Contract: the target (any address form; the kubeconfig's namespace when it has none) is
//! served by a gateway on `127.0.0.1:<gateway port>` (8001): one already running there is used
//! when its `/.kgate/info` says it is kgate in front of the same API server; otherwise this
//! process starts one (on a free port when something else holds the gateway port) and serves
//! until SIGINT or SIGTERM. `--port` binds the service at the root of `127.0.0.1:<port>`
//! instead of its origin host, for tools that do not resolve `*.localhost` (this process then
//! always serves). The URL to open is printed alone on stdout; then the default browser opens
//! it (`$BROWSER`, else `xdg-open`, or `open` on macOS) unless `--no-browser` is given. Notes
//! go to stderr. A bad target exits 2, any other failure 1.

use std::io::Write as _;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use http_body_util::BodyExt as _;
use urlgrammar::{Address, Rest, Target};

use crate::cmd::runtime::{self, TokenMode};
use crate::cmd::serving::{self, MountArg, Serving};
use gateway::filter::{Filter, FilterSpec};
use gateway::server::Listen;
use gateway::{AccessToken, GATEWAY_NAME, GatewayInfo};

/// Arguments of `kgate open`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// What to open: svc/<ns>/<name>[:<port>][/<path>] (or svc/<name> in the current
    /// namespace, pod/..., node/...), an API proxy path or URL, or an origin URL.
    target: String,

    /// Serve the target at the root of http://127.0.0.1:<PORT>/ instead of its origin host
    /// (0 picks a free port), for tools that do not resolve *.localhost names.
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,

    /// The gateway's port: a kgate already serving this cluster there is used, else one is
    /// started there (or on a free port when the port is taken).
    #[arg(long, value_name = "PORT", default_value_t = 8001)]
    gateway_port: u16,

    /// Print the URL without opening a browser.
    #[arg(long)]
    no_browser: bool,

    /// Longest wait for the API server's response head before answering 504 (e.g. 30s, 5m).
    #[arg(long, default_value = "5m", value_parser = config::parse_go_duration)]
    header_timeout: Duration,

    /// Let pages of this origin use the gateway as its own pages may (a front-end under
    /// development, e.g. http://localhost:3000): web pages of any other origin are refused
    /// WebSockets, writes and the Kubernetes API. Repeatable.
    #[arg(long = "allow-origin", value_name = "URL", value_parser = serving::parse_origin)]
    allow_origin: Vec<String>,

    /// Require a token from every request to the gateway this starts (`auto`: a random one,
    /// in the URL opened); a gateway already running with a token of this user's is reused
    /// with it.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = TokenMode::Off)]
    gateway_token: TokenMode,

    #[command(flatten)]
    serving: serving::ClusterArgs,
}

/// How long the check for a running gateway may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn run(args: Args) -> ExitCode {
    crate::logging::init(args.serving.verbosity());
    let config = match config::ClusterConfig::load(args.serving.kube()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: loading the kubeconfig: {}", auth::error_chain(&err));
            return ExitCode::from(1);
        }
    };
    let address = match parse_target(&args.target, &config.namespace) {
        Ok(address) => address,
        Err(err) => {
            eprintln!("error: {}", auth::error_chain(&*err));
            return ExitCode::from(2);
        }
    };
    if args.port.is_none()
        && let Err(err) = address.target.origin_host(None)
    {
        eprintln!(
            "error: {err}; open it on a port of its own instead: kgate open --port 0 {}",
            args.target
        );
        return ExitCode::from(2);
    }
    let server = config.server.to_string();
    let existing = match args.port {
        Some(_) => Probe::Free,
        None => probe(args.gateway_port),
    };
    let listen_port = match &existing {
        Probe::Kgate(info, token) if same_server(&info.server, &server) => {
            let url = origin_url(&address.target, args.gateway_port, &address.rest);
            let url = runtime::with_token(&url, token.as_ref());
            eprintln!(
                "kgate: using the gateway already running on 127.0.0.1:{}",
                args.gateway_port
            );
            announce(&url, !args.no_browser);
            return ExitCode::SUCCESS;
        }
        Probe::Locked => {
            eprintln!(
                "kgate: the gateway on 127.0.0.1:{} needs a token this user does not hold; \
                 starting one on a free port",
                args.gateway_port
            );
            0
        }
        Probe::Kgate(info, _) => {
            eprintln!(
                "kgate: the gateway on 127.0.0.1:{} serves another cluster ({}); starting one on a free port",
                args.gateway_port, info.server
            );
            0
        }
        Probe::Other => {
            eprintln!(
                "kgate: 127.0.0.1:{} is taken by something other than kgate; starting the gateway on a free port",
                args.gateway_port
            );
            0
        }
        Probe::Free => args.gateway_port,
    };
    let filter = match Filter::compile(&FilterSpec::default()) {
        Ok(filter) => filter,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(1);
        }
    };
    let mounts = match args.port {
        Some(port) => vec![MountArg {
            target: address.target.to_string(),
            address: format!("127.0.0.1:{port}"),
        }],
        None => Vec::new(),
    };
    let listen = Listen::Tcp(format!("127.0.0.1:{listen_port}"));
    let mut serving = Serving::gateway(listen, filter, args.header_timeout, mounts);
    serving.allow_origins = args.allow_origin.clone();
    serving.token = match args.gateway_token.token() {
        Ok(token) => token,
        Err(err) => {
            eprintln!("error: making a token: {err}");
            return ExitCode::from(1);
        }
    };
    let token = serving.token.clone();
    let Address { target, rest, .. } = address;
    let browse = !args.no_browser;
    let published = std::cell::RefCell::new(None);
    let code = serving::run(&args.serving, serving, |running| {
        let gateway::server::LocalAddr::Tcp(local) = running.local_addr() else {
            return;
        };
        if let Some(token) = &token {
            match runtime::publish(local.port(), token) {
                Ok(entry) => *published.borrow_mut() = Some(entry),
                Err(err) => eprintln!("kgate: cannot leave the token for later commands: {err}"),
            }
        }
        let url = match running.mounts().first() {
            Some((_, addr)) => mount_url(*addr, &rest),
            None => origin_url(&target, local.port(), &rest),
        };
        eprintln!(
            "kgate: serving {target} through the gateway on {}; press Ctrl-C to stop",
            running.local_addr()
        );
        announce(&runtime::with_token(&url, token.as_ref()), browse);
    });
    drop(published);
    code
}

/// The target, with the kubeconfig's namespace when it names none; origin addresses with a
/// context label are refused (this command serves the current context, unlabelled).
fn parse_target(input: &str, namespace: &str) -> anyhow::Result<Address> {
    let address = Address::parse(input, Some(namespace)).context("not a target kgate can open")?;
    if let Some(label) = &address.context {
        anyhow::bail!(
            "{input:?} names the context label {label:?}; kgate open serves the kubeconfig's \
             current context without a label: choose the cluster with --context and drop the \
             label from the address",
            label = label.as_str()
        );
    }
    Ok(address)
}

/// The target's origin URL on a gateway at `127.0.0.1:<port>` (checked buildable by `run`).
fn origin_url(target: &Target, port: u16, rest: &Rest) -> String {
    target
        .origin_url(None, Some(port), rest)
        .unwrap_or_else(|_| format!("http://localhost:{port}{}", gateway::INDEX_PATH))
}

/// The URL of a mount's address, with `rest` as path and query.
fn mount_url(addr: std::net::SocketAddr, rest: &Rest) -> String {
    let slash = if rest.path().is_empty() { "/" } else { "" };
    format!("http://{addr}{slash}{rest}")
}

/// Whether two API server URLs name the same server (a trailing `/` aside).
fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Prints `url` on stdout and opens it in the browser when asked.
fn announce(url: &str, browse: bool) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{url}");
    let _ = out.flush();
    drop(out);
    if browse && let Err(err) = open_browser(url) {
        eprintln!("kgate: {err}; open the URL above yourself (or set BROWSER)");
    }
}

/// Starts the user's browser on `url`: the first command of `$BROWSER` (a `:`-separated list;
/// `%s` stands for the URL, else it is the last argument) that starts, else the desktop's
/// opener. The browser is not waited for; its exit status is logged when it ends.
fn open_browser(url: &str) -> anyhow::Result<()> {
    let mut tried = Vec::new();
    let from_env = std::env::var("BROWSER").unwrap_or_default();
    let commands: Vec<Command> = if from_env.trim().is_empty() {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        let mut command = Command::new(opener);
        command.arg(url);
        vec![command]
    } else {
        from_env
            .split(':')
            .filter(|entry| !entry.trim().is_empty())
            .map(|entry| browser_command(entry, url))
            .collect()
    };
    for mut command in commands {
        let name = format!("{:?}", command.get_program());
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match command.spawn() {
            Ok(mut child) => {
                std::thread::spawn(move || match child.wait() {
                    Ok(status) if !status.success() => {
                        tracing::warn!("the browser command {name} ended with {status}");
                    }
                    _ => {}
                });
                return Ok(());
            }
            Err(err) => tried.push(format!("{name}: {err}")),
        }
    }
    anyhow::bail!("could not start a browser ({})", tried.join("; "))
}

/// One `$BROWSER` entry as a command run by `sh`, the URL passed as an argument (never
/// spliced into the command line, so no URL can inject shell syntax).
fn browser_command(entry: &str, url: &str) -> Command {
    let script = if entry.contains("%s") {
        entry.replace("%s", "\"$1\"")
    } else {
        format!("{entry} \"$1\"")
    };
    let mut command = Command::new("sh");
    command.arg("-c").arg(script).arg("sh").arg(url);
    command
}

/// What answers on the gateway port.
#[derive(Debug)]
enum Probe {
    /// Nothing listens there.
    Free,
    /// A kgate gateway, and its token when it needs one (this user's, from its runtime file).
    Kgate(GatewayInfo, Option<AccessToken>),
    /// A kgate gateway that needs a token this user does not have.
    Locked,
    /// Something else (or a gateway that did not answer in time).
    Other,
}

/// Asks `127.0.0.1:<port>` what it is, within [`PROBE_TIMEOUT`].
fn probe(port: u16) -> Probe {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(_) => return Probe::Other,
    };
    runtime.block_on(async {
        match tokio::time::timeout(PROBE_TIMEOUT, probe_async(port)).await {
            Ok(probe) => probe,
            Err(_) => Probe::Other,
        }
    })
}

async fn probe_async(port: u16) -> Probe {
    let token = runtime::lookup(port);
    let stream = match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
        Ok(stream) => stream,
        Err(_) => return Probe::Free,
    };
    let Ok((mut sender, conn)) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await
    else {
        return Probe::Other;
    };
    tokio::spawn(conn);
    let mut req = http::Request::get(format!("{}info", gateway::INDEX_PATH))
        .header(http::header::HOST, format!("127.0.0.1:{port}"));
    if let Some(token) = &token {
        req = req.header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", token.expose()),
        );
    }
    let req = req.body(http_body_util::Empty::<bytes::Bytes>::new());
    let Ok(req) = req else {
        return Probe::Other;
    };
    let Ok(res) = sender.send_request(req).await else {
        return Probe::Other;
    };
    let kgate_realm = res
        .headers()
        .get(http::header::WWW_AUTHENTICATE)
        .is_some_and(|v| v.as_bytes() == b"Bearer realm=\"kgate\"");
    if res.status() == http::StatusCode::UNAUTHORIZED && kgate_realm {
        return Probe::Locked;
    }
    if res.status() != http::StatusCode::OK {
        return Probe::Other;
    }
    let Ok(body) = http_body_util::Limited::new(res.into_body(), 64 << 10)
        .collect()
        .await
    else {
        return Probe::Other;
    };
    match serde_json::from_slice::<GatewayInfo>(&body.to_bytes()) {
        Ok(info) if info.gateway == GATEWAY_NAME => Probe::Kgate(info, token),
        _ => Probe::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_take_the_namespace_and_refuse_labels() {
        let a = parse_target("svc/grafana:3000/d/x?q=1", "monitoring").expect("parses");
        assert_eq!(a.target.to_string(), "svc/monitoring/grafana:3000");
        assert_eq!(a.rest.to_string(), "/d/x?q=1");
        let err = parse_target("http://web.ns.svc.prod.localhost:8001/", "default")
            .expect_err("a labelled origin is refused");
        assert!(err.to_string().contains("--context"), "{err}");
        assert!(parse_target("svc/demo/Not_A_Name", "default").is_err());
    }

    #[test]
    fn urls() {
        let target = Target::service("demo", "shop").expect("valid");
        assert_eq!(
            origin_url(&target, 8001, &Rest::default()),
            "http://shop.demo.svc.localhost:8001/"
        );
        let addr: std::net::SocketAddr = "127.0.0.1:3000".parse().expect("valid");
        assert_eq!(mount_url(addr, &Rest::default()), "http://127.0.0.1:3000/");
        let rest = Rest::parse("/cart?x=1").expect("valid");
        assert_eq!(mount_url(addr, &rest), "http://127.0.0.1:3000/cart?x=1");
        assert!(same_server(
            "https://127.0.0.1:6443/",
            "https://127.0.0.1:6443"
        ));
        assert!(!same_server(
            "https://127.0.0.1:6443",
            "https://127.0.0.1:6444"
        ));
    }

    #[test]
    fn browser_entries_never_splice_the_url() {
        let url = "http://x.localhost:8001/\"; rm -rf ~; echo \"";
        let command = browser_command("firefox --new-tab %s", url);
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(args[1], "firefox --new-tab \"$1\"");
        assert_eq!(args[3], url);
        let command = browser_command("chromium", url);
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(args[1], "chromium \"$1\"");
    }
}
