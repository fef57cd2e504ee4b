//! `kgate forward`: `kubectl port-forward`, form for form and line for line, that balances
//! over a workload's ready pods, survives their restarts and rollouts, and retries a
//! connection that a pod could not take on another before the client sees an error.
//!
//! Output is kubectl's (client-go `tools/portforward/portforward.go`): `Forwarding from
//! 127.0.0.1:8080 -> 80` per listener on stdout (the right side is the port in the pod, after
//! a service port is translated to its target port), then `Handling connection for 8080` per
//! connection. Failures are one line on stderr each; a failed connection never stops the
//! listeners (kubectl exits on the first one, `lost connection to pod`).
//!
//! Exit codes: 0 after SIGINT or SIGTERM; 1 when forwarding cannot start (no such workload,
//! port or pod, forbidden, the API server unreachable, no local port free); 2 for arguments
//! that cannot be read.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use gateway::forward::{Forwarder, PortPair, Resolver, Workload};
use tokio::net::TcpListener;

use super::serving::{ClusterArgs, wait_for_signal};

/// Arguments of `kgate forward`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// What to forward to: pod/NAME, svc/NAME, deploy/NAME (a bare NAME is a pod), or kgate's
    /// svc/<namespace>/<name>[:<port>].
    #[arg(value_name = "TYPE/NAME")]
    target: String,
    /// Ports, as kubectl reads them: 8080:80 listens on 8080 and forwards to 80; 80 listens on
    /// 80; :80 listens on a free port; the remote side may be a port name (8443:https).
    #[arg(value_name = "[LOCAL_PORT:]REMOTE_PORT")]
    ports: Vec<String>,
    /// Addresses to listen on (comma separated). Only accepts IP addresses or localhost as a
    /// value. When localhost is supplied, kgate will try to bind on both 127.0.0.1 and ::1
    /// and will fail if neither of these addresses are available to bind.
    #[arg(
        long,
        value_name = "ADDRESS",
        value_delimiter = ',',
        default_value = "localhost"
    )]
    address: Vec<String>,
    /// The length of time (like 5s, 2m, or 3h, higher than zero) to wait until at least one
    /// pod is running; also how long a connection waits for a ready pod while there is none.
    #[arg(long, value_name = "DURATION", default_value = "1m0s", value_parser = parse_positive)]
    pod_running_timeout: Duration,
    #[command(flatten)]
    cluster: ClusterArgs,
}

fn parse_positive(text: &str) -> Result<Duration, String> {
    match config::parse_go_duration(text)? {
        d if d.is_zero() => Err("--pod-running-timeout must be higher than zero".to_owned()),
        d => Ok(d),
    }
}

/// One address to listen on, and whether its failure alone is fatal (`localhost`'s two are
/// fatal only together, as in client-go's `parseAddresses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Listen {
    ip: IpAddr,
    all_must_fail: bool,
}

fn listen_addresses(given: &[String]) -> anyhow::Result<Vec<Listen>> {
    let mut out: Vec<Listen> = Vec::new();
    let mut add = |listen: Listen| {
        if !out.iter().any(|l| l.ip == listen.ip) {
            out.push(listen);
        }
    };
    for address in given {
        let address = address.trim();
        if address == "localhost" {
            for ip in [
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ] {
                add(Listen {
                    ip,
                    all_must_fail: true,
                });
            }
        } else {
            let ip: IpAddr = address
                .parse()
                .map_err(|_| anyhow::anyhow!("{address} is not a valid IP"))?;
            add(Listen {
                ip,
                all_must_fail: false,
            });
        }
    }
    // client-go sorts them as text: 127.0.0.1 before ::1.
    out.sort_by_key(|l| l.ip.to_string());
    Ok(out)
}

/// What the arguments say, before anything is asked of the cluster.
struct Plan {
    workload: Workload,
    pairs: Vec<PortPair>,
    listen: Vec<Listen>,
    client: auth::ApiClient,
}

/// Why there is no plan: bad arguments (exit 2) or a cluster configuration that cannot be
/// used (exit 1).
enum PlanError {
    Usage(anyhow::Error),
    Config(anyhow::Error),
}

fn plan(args: &Args) -> Result<Plan, PlanError> {
    // The arguments first, so a typo is reported as one whatever the kubeconfig holds; the
    // namespace is only known once the kubeconfig is read.
    let usage = |namespace: &str| -> anyhow::Result<(Workload, Vec<PortPair>)> {
        let (workload, short_pair) =
            gateway::forward::target::parse_workload(&args.target, namespace)?;
        let mut pairs = args
            .ports
            .iter()
            .map(|p| gateway::forward::target::parse_port_pair(p))
            .collect::<Result<Vec<_>, _>>()?;
        match (short_pair, pairs.is_empty()) {
            (Some(pair), true) => pairs.push(pair),
            (Some(_), false) => anyhow::bail!(
                "give the port once: in the target ({}) or as [LOCAL_PORT:]REMOTE_PORT arguments",
                args.target
            ),
            (None, true) => anyhow::bail!(
                "TYPE/NAME and list of ports are required for port-forward, e.g. kgate forward \
                 svc/web 8080:80 (or kgate forward svc/<namespace>/<name>:<port>)"
            ),
            (None, false) => {}
        }
        Ok((workload, pairs))
    };
    usage("default").map_err(PlanError::Usage)?;
    let listen = listen_addresses(&args.address).map_err(PlanError::Usage)?;
    let config = config::ClusterConfig::load(args.cluster.kube())
        .context("loading the kubeconfig")
        .map_err(PlanError::Config)?;
    let (workload, pairs) = usage(&config.namespace).map_err(PlanError::Usage)?;
    let options = auth::ClientOptions {
        append_server_path: true,
        ..auth::ClientOptions::default()
    };
    let client = auth::ApiClient::new(&config, options)
        .context("setting up the API server client")
        .map_err(PlanError::Config)?;
    Ok(Plan {
        workload,
        pairs,
        listen,
        client,
    })
}

pub(crate) fn run(args: Args) -> ExitCode {
    crate::logging::init(args.cluster.verbosity());
    let plan = match plan(&args) {
        Ok(plan) => plan,
        Err(PlanError::Usage(err)) => {
            eprintln!("error: {}", auth::error_chain(&*err));
            return ExitCode::from(2);
        }
        Err(PlanError::Config(err)) => {
            eprintln!("error: {}", auth::error_chain(&*err));
            return ExitCode::from(1);
        }
    };
    // The same event loop as `kgate proxy` (`KGATE_THREADS`, one worker by default).
    let runtime = match super::serving::runtime_builder().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(forward(plan, args.pod_running_timeout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", auth::error_chain(&*err));
            ExitCode::from(1)
        }
    }
}

async fn forward(plan: Plan, patience: Duration) -> anyhow::Result<()> {
    let Plan {
        workload,
        pairs,
        listen,
        client,
    } = plan;
    let resolver = Resolver::new(client.clone(), workload.clone(), &pairs).await?;
    let endpoints = resolver.wait_for_endpoints(patience).await?;
    let first = endpoints[0].clone();
    let locals: Vec<u16> = pairs
        .iter()
        .enumerate()
        .map(|(i, pair)| resolver.local_port(i, pair, first.ports[i]))
        .collect();
    let forwarder = Forwarder::new(resolver, client, endpoints, patience);
    let transport = forwarder
        .warm()
        .await
        .context("error upgrading connection")?;
    tracing::info!("forwarding to {workload} over {}", transport.name());

    let mut listening = false;
    for (i, (&local, &remote)) in locals.iter().zip(&first.ports).enumerate() {
        match bind_all(&listen, local, remote).await {
            Ok(listeners) => {
                listening = true;
                for (listener, bound) in listeners {
                    tokio::spawn(accept(listener, forwarder.clone(), i, bound, remote));
                }
            }
            Err(err) => {
                eprintln!("Unable to listen on port {local}: {err}");
            }
        }
    }
    if !listening {
        let all: Vec<String> = locals
            .iter()
            .zip(&first.ports)
            .map(|(l, r)| format!("{{{l} {r}}}"))
            .collect();
        anyhow::bail!(
            "unable to listen on any of the requested ports: [{}]",
            all.join(" ")
        );
    }
    wait_for_signal().await;
    Ok(())
}

/// Listens on `port` at every address (a free port is chosen on the first and kept for the
/// rest), printing kubectl's line for each.
async fn bind_all(
    listen: &[Listen],
    port: u16,
    remote: u16,
) -> anyhow::Result<Vec<(TcpListener, u16)>> {
    let mut port = port;
    let mut bound = Vec::new();
    let mut failures: Vec<(bool, String)> = Vec::new();
    for address in listen {
        match TcpListener::bind(SocketAddr::new(address.ip, port)).await {
            Ok(listener) => {
                let local = listener.local_addr().map(|a| a.port()).unwrap_or(port);
                port = local;
                println!(
                    "Forwarding from {} -> {remote}",
                    SocketAddr::new(address.ip, local)
                );
                bound.push((listener, local));
            }
            Err(err) => failures.push((
                address.all_must_fail,
                format!(
                    "unable to create listener: Error listen tcp {}: {err}",
                    SocketAddr::new(address.ip, port)
                ),
            )),
        }
    }
    let _ = std::io::stdout().flush();
    let fatal_any = failures.iter().any(|(all, _)| !all);
    let all_failed = bound.is_empty() && !failures.is_empty();
    if fatal_any || all_failed {
        let texts: Vec<&str> = failures.iter().map(|(_, t)| t.as_str()).collect();
        anyhow::bail!(
            "Listeners failed to create with the following errors: [{}]",
            texts.join(" ")
        );
    }
    for (_, text) in &failures {
        tracing::warn!("{text}");
    }
    Ok(bound)
}

/// Accepts on `listener` for ever; each connection is forwarded on its own task.
async fn accept(listener: TcpListener, forwarder: Forwarder, pair: usize, local: u16, remote: u16) {
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors and the like: wait, never give the listener up.
                tracing::warn!("accepting a connection on port {local}: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        println!("Handling connection for {local}");
        let forwarder = forwarder.clone();
        tokio::spawn(async move {
            let report = forwarder.serve(tcp, pair, local).await;
            for (pod, why) in &report.retried {
                eprintln!(
                    "warning: pod {pod} could not take a connection for {local} -> {remote}, \
                     retried on another pod: {why}"
                );
            }
            if let Some(err) = &report.error {
                let via = report
                    .pod
                    .as_deref()
                    .map(|p| format!(" (pod {p})"))
                    .unwrap_or_default();
                eprintln!("error: connection for {local}{via}: {err}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_client_go_reads_them() {
        let got = listen_addresses(&["localhost".into()]).unwrap();
        assert_eq!(
            got,
            [
                Listen {
                    ip: "127.0.0.1".parse().unwrap(),
                    all_must_fail: true
                },
                Listen {
                    ip: "::1".parse().unwrap(),
                    all_must_fail: true
                },
            ]
        );
        let got = listen_addresses(&["127.0.0.2".into(), "localhost".into()]).unwrap();
        assert_eq!(got.len(), 3);
        assert!(!got[1].all_must_fail, "{got:?}");
        assert_eq!(
            listen_addresses(&["example.com".into()])
                .unwrap_err()
                .to_string(),
            "example.com is not a valid IP"
        );
    }

    #[test]
    fn zero_is_not_a_pod_running_timeout() {
        assert!(parse_positive("0s").is_err());
        assert_eq!(parse_positive("1m0s"), Ok(Duration::from_secs(60)));
    }
}
