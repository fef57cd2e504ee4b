//! `kgate urls`: every service (and with `--pods`, pod) port with its scheme, API proxy URL,
//! gateway URL, origin URL and readiness. Formats and the JSON shape: `discovery::urls`.
//!
//! Targets narrow the listing: `svc/<ns>/<name>[:<port>]` (or any address form `kgate url
//! parse` accepts) keeps that object, and that port if one is given. Exit codes: 0 listed,
//! 1 the API server refused or a target matched nothing, 2 usage or configuration errors.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use discovery::NamespaceScope;
use discovery::urls::{GatewayAddr, UrlEntry, UrlFormat, UrlOptions, render_urls, url_entries};
use urlgrammar::{Address, Kind, Port, Target};

/// Arguments of `kgate urls`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only these services or pods: `svc/<ns>/<name>[:<port>]`, `pod/<ns>/<name>`, `svc/<name>`
    /// (in the current namespace), or any address kgate prints.
    targets: Vec<String>,
    /// List every namespace instead of the current one.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    all_namespaces: bool,
    /// Label selector, as kubectl's (`app=web,tier!=db`).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    selector: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Also list pods that declare container ports.
    #[arg(long)]
    pods: bool,
    /// The port of the local gateway that gateway and origin URLs point at.
    #[arg(long, value_name = "PORT", default_value_t = 8001)]
    gateway_port: u16,
    #[command(flatten)]
    kube: config::KubeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Table,
    Wide,
    Json,
    Yaml,
}

pub(crate) fn run(args: Args) -> ExitCode {
    match run_inner(&args) {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Usage(err)) => {
            eprintln!("error: {}", auth::error_chain(&*err));
            ExitCode::from(2)
        }
        Err(Failure::Api(err)) => {
            eprintln!("error: {}", auth::error_chain(&*err));
            ExitCode::from(1)
        }
    }
}

enum Failure {
    Usage(anyhow::Error),
    Api(anyhow::Error),
}

fn run_inner(args: &Args) -> Result<u8, Failure> {
    let config = config::ClusterConfig::load(&args.kube)
        .context("loading the kubeconfig")
        .map_err(Failure::Usage)?;
    let mut filters = Vec::new();
    for input in &args.targets {
        let address = Address::parse(input, Some(&config.namespace))
            .with_context(|| format!("reading the target {input:?}"))
            .map_err(Failure::Usage)?;
        filters.push((input.clone(), address.target));
    }
    let scope = scope(args, &config.namespace, &filters);
    let client = auth::ApiClient::new(&config, auth::ClientOptions::default())
        .context("setting up the API server client")
        .map_err(Failure::Usage)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(Failure::Usage)?;
    let want_pods = args.pods || filters.iter().any(|(_, t)| t.kind() == Kind::Pod);
    let (services, pods) = runtime
        .block_on(async {
            let services =
                discovery::list_services(&client, &scope, args.selector.as_deref()).await?;
            let pods = if want_pods {
                discovery::list_pods(&client, &scope, args.selector.as_deref()).await?
            } else {
                Vec::new()
            };
            Ok::<_, discovery::ListError>((services, pods))
        })
        .map_err(|e| Failure::Api(e.into()))?;
    let options = UrlOptions {
        server: super::cluster_info::server_as_written(&config),
        gateway: GatewayAddr {
            port: args.gateway_port,
            context: None,
            // A gateway of this user's started with `--gateway-token auto`: its URLs need the token.
            token: super::runtime::lookup(args.gateway_port).map(|t| t.expose().to_owned()),
        },
    };
    let mut list = url_entries(&services, &pods, &options);
    let mut code = 0;
    if !filters.is_empty() {
        for (input, target) in &filters {
            if !list.items.iter().any(|e| matches(target, e)) {
                eprintln!("error: {input}: no such {} port found", target.kind());
                code = 1;
            }
        }
        list.items
            .retain(|e| filters.iter().any(|(_, t)| matches(t, e)));
    }
    let format = match args.output {
        Output::Table => UrlFormat::Table,
        Output::Wide => UrlFormat::Wide,
        Output::Json => UrlFormat::Json,
        Output::Yaml => UrlFormat::Yaml,
    };
    let text = render_urls(&list, format).map_err(|e| Failure::Api(e.into()))?;
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(code)
}

/// One namespace unless `-A`, or the targets span several.
fn scope(args: &Args, default_ns: &str, filters: &[(String, Target)]) -> NamespaceScope {
    if args.all_namespaces {
        return NamespaceScope::All;
    }
    let mut namespaces = filters.iter().filter_map(|(_, t)| t.namespace());
    match namespaces.next() {
        None => NamespaceScope::One(default_ns.to_owned()),
        Some(first) if namespaces.all(|ns| ns == first) => NamespaceScope::One(first.to_owned()),
        Some(_) => NamespaceScope::All,
    }
}

/// Whether a listed port is the one a target names (any port when the target has none).
fn matches(target: &Target, e: &UrlEntry) -> bool {
    let kind = match target.kind() {
        Kind::Service => "service",
        Kind::Pod => "pod",
        Kind::Node => return false,
    };
    kind == e.kind
        && target.namespace() == Some(e.namespace.as_str())
        && target.name() == e.name
        && match target.port() {
            None => true,
            Some(Port::Number(n)) => *n == e.port,
            Some(Port::Name(n)) => n.as_str() == e.port_name,
        }
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

    #[test]
    fn exit_codes_and_target_matching() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let cluster = rt
            .block_on(simcluster::SimCluster::builder().start())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kc = dir.path().join("config");
        cluster.write_kubeconfig(&kc).unwrap();
        let urls = |extra: &[&str]| {
            let mut argv = vec!["urls", "--kubeconfig", kc.to_str().unwrap_or_default()];
            argv.extend_from_slice(extra);
            run(Cli::parse_from(argv).args)
        };
        assert_eq!(urls(&["-A", "-o", "json"]), ExitCode::from(0));
        assert_eq!(
            urls(&["svc/demo/echo:metrics", "-o", "yaml"]),
            ExitCode::from(0)
        );
        assert_eq!(urls(&["svc/demo/echo:7777"]), ExitCode::from(1));
        assert_eq!(urls(&["not a target"]), ExitCode::from(2));
        assert!(
            Cli::try_parse_from(["urls", "-A", "-n", "x"]).is_err(),
            "-A and -n conflict"
        );

        let t = |s: &str| Address::parse(s, Some("demo")).unwrap().target;
        let entry = UrlEntry {
            kind: "service",
            namespace: "demo".to_owned(),
            name: "echo".to_owned(),
            port: 9090,
            port_name: "metrics".to_owned(),
            protocol: "TCP".to_owned(),
            scheme: "http",
            target: None,
            api_proxy_url: None,
            gateway_url: None,
            origin_url: None,
            ready: 1,
            total: 1,
        };
        assert!(matches(&t("svc/demo/echo"), &entry));
        assert!(matches(&t("svc/echo:9090"), &entry));
        assert!(matches(&t("svc/demo/echo:metrics"), &entry));
        assert!(!matches(&t("svc/demo/echo:http"), &entry));
        assert!(!matches(&t("pod/demo/echo"), &entry));
    }
}
