//! `kgate check`: health checks through the API server's proxy verb, no gateway needed.
//! The runner, verdicts and output shapes are in `discovery::check`.
//!
//! Exit codes: 0 every target passed, 1 any failed (including "no response"), 2 usage or
//! configuration errors (bad flags, bad targets, bad expressions, no kubeconfig). With
//! `--watch`, rounds repeat until interrupted, and the exit code is the last round's.
//!
//! A target is any address form kgate reads (`svc/<ns>/<name>[:<port>][/<path>]`, an API
//! proxy path, a gateway or origin URL). A short target or origin without a path checks the
//! target's root (`.../proxy/`); an API path or URL is requested exactly as written. An
//! unspecified scheme becomes `https:` for a port named `https` or numbered 443, as kgate's
//! gateway does; a numbered port that is *named* `https` needs `:https` or an explicit `https:`
//! (the service is not looked up).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use discovery::check::{
    CheckOptions, CheckTarget, Expectations, StatusMatcher, exit_code, render_json, render_text,
    run_checks,
};
use discovery::expr::JsonExpr;
use urlgrammar::{Address, Form, Scheme};

/// Arguments of `kgate check`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// What to check: `svc/<ns>/<name>[:<port>][/<path>]`, `pod/...`, `node/...`, an API proxy
    /// path or a URL kgate prints.
    #[arg(required = true, value_name = "TARGET")]
    targets: Vec<String>,
    /// Accepted statuses: codes, classes and ranges, comma-separated (`200`, `2xx,301`, `200-399`).
    #[arg(long, value_name = "STATUS", default_value = "2xx", value_parser = StatusMatcher::parse)]
    expect_status: StatusMatcher,
    /// A jq expression the JSON body must satisfy, e.g. `.status != "red"`,
    /// `.number_of_nodes >= 3 and .timed_out == false`, `.status | IN("green", "yellow")`.
    #[arg(long, value_name = "EXPR")]
    expect_json: Option<String>,
    /// A regular expression that must match somewhere in the body.
    #[arg(long, value_name = "REGEX")]
    expect_body: Option<String>,
    /// Limit on each try (`500ms`, `5s`, `1m`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = config::parse_go_duration)]
    timeout: Duration,
    /// Extra tries after a failed one.
    #[arg(long, value_name = "N", default_value_t = 0)]
    retries: u32,
    /// Pause between tries.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = config::parse_go_duration)]
    retry_interval: Duration,
    /// Targets checked at the same time.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    parallel: u16,
    /// Output: one line per target, or one JSON document (per round with --watch).
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Check again every INTERVAL until interrupted.
    #[arg(long, value_name = "INTERVAL", value_parser = config::parse_go_duration)]
    watch: Option<Duration>,
    #[command(flatten)]
    kube: config::KubeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

pub(crate) fn run(args: Args) -> ExitCode {
    match prepare(args) {
        Ok(prepared) => ExitCode::from(execute(prepared)),
        Err(err) => {
            eprintln!("error: {}", auth::error_chain(&*err));
            ExitCode::from(2)
        }
    }
}

struct Prepared {
    client: auth::ApiClient,
    targets: Vec<CheckTarget>,
    expect: Expectations,
    options: CheckOptions,
    output: Output,
    watch: Option<Duration>,
    runtime: tokio::runtime::Runtime,
}

/// The API path to `GET` for one target as the user wrote it.
fn check_target(input: &str, default_namespace: &str) -> anyhow::Result<CheckTarget> {
    let address = Address::parse(input, Some(default_namespace))
        .with_context(|| format!("reading the target {input:?}"))?;
    let mut target = address.target;
    // As the gateway does: a port named https or numbered 443 is reached over TLS.
    if target.scheme() == Scheme::Unspecified && target.effective_scheme() == Scheme::Https {
        target = target.with_scheme(Scheme::Https);
    }
    // A short target or origin without a path means the target's root: the API server answers
    // `.../proxy` with a 301 to `.../proxy/` (kubectl-proxy-semantics §2.6,
    // `proxyRedirectsforRootPath`), which would fail every check of a bare target. An API path
    // or URL is checked exactly as written.
    let rest = match address.form {
        Form::Short | Form::Host | Form::Origin => address.rest.or_root(),
        Form::Api | Form::Gateway => address.rest,
    };
    Ok(CheckTarget {
        label: input.to_owned(),
        path: target.api_path(&rest),
    })
}

/// Everything that can be a usage or configuration error (exit 2), before any check runs.
fn prepare(args: Args) -> anyhow::Result<Prepared> {
    let json = args
        .expect_json
        .as_deref()
        .map(JsonExpr::compile)
        .transpose()?;
    let body = args
        .expect_body
        .as_deref()
        .map(|re| regex::Regex::new(re).with_context(|| format!("invalid --expect-body {re:?}")))
        .transpose()?;
    if args.watch == Some(Duration::ZERO) {
        anyhow::bail!("--watch needs an interval above zero, e.g. --watch 10s");
    }
    let config = config::ClusterConfig::load(&args.kube).context("loading the kubeconfig")?;
    let targets = args
        .targets
        .iter()
        .map(|input| check_target(input, &config.namespace))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let client = auth::ApiClient::new(&config, auth::ClientOptions::default())
        .context("setting up the API server client")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(Prepared {
        client,
        targets,
        expect: Expectations {
            status: args.expect_status,
            json,
            body,
        },
        options: CheckOptions {
            timeout: args.timeout,
            retries: args.retries,
            retry_interval: args.retry_interval,
            parallel: usize::from(args.parallel),
        },
        output: args.output,
        watch: args.watch,
        runtime,
    })
}

fn execute(p: Prepared) -> u8 {
    p.runtime.block_on(async {
        let mut code;
        loop {
            let report = run_checks(&p.client, &p.targets, &p.expect, &p.options).await;
            code = exit_code(&report);
            let text = match p.output {
                Output::Text => {
                    let header = if p.watch.is_some() {
                        format!("# {}\n", discovery::check::now_rfc3339())
                    } else {
                        String::new()
                    };
                    format!("{header}{}", render_text(&report))
                }
                Output::Json => match render_json(&report) {
                    Ok(text) => text,
                    Err(err) => {
                        eprintln!("error: writing JSON: {err}");
                        return 1;
                    }
                },
            };
            // A closed pipe is not worth a message; the exit code still tells.
            let _ = std::io::stdout().write_all(text.as_bytes());
            let _ = std::io::stdout().flush();
            let Some(interval) = p.watch else {
                return code;
            };
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = tokio::signal::ctrl_c() => return code,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn check(kubeconfig: &Path, extra: &[&str]) -> ExitCode {
        let mut argv = vec![
            "check",
            "--kubeconfig",
            kubeconfig.to_str().unwrap_or_default(),
        ];
        argv.extend_from_slice(extra);
        run(Cli::parse_from(argv).args)
    }

    /// A simcluster on its own runtime (kept alive by the caller) and its kubeconfig.
    fn cluster() -> (
        tokio::runtime::Runtime,
        simcluster::SimCluster,
        tempfile::TempDir,
    ) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let cluster = rt
            .block_on(simcluster::SimCluster::builder().start())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        cluster.write_kubeconfig(dir.path().join("config")).unwrap();
        (rt, cluster, dir)
    }

    #[test]
    fn exit_codes() {
        let (_rt, cluster, dir) = cluster();
        let kc = dir.path().join("config");
        let es = "svc/kube-system/elasticsearch-logging:9200/_cluster/health";
        let not_red = ["--expect-json", r#".status != "red""#];

        cluster.set_es_status("yellow").unwrap();
        assert_eq!(check(&kc, &[es, not_red[0], not_red[1]]), ExitCode::from(0));
        cluster.set_es_status("red").unwrap();
        assert_eq!(check(&kc, &[es, not_red[0], not_red[1]]), ExitCode::from(1));
        // No endpoints: the API server answers 503.
        assert_eq!(check(&kc, &["svc/demo/offline:http/"]), ExitCode::from(1));
        // A bare target is its root; the API path without `/` is the API server's 301.
        assert_eq!(check(&kc, &["svc/demo/shop:http"]), ExitCode::from(0));
        let unslashed = "/api/v1/namespaces/demo/services/shop:http/proxy";
        assert_eq!(check(&kc, &[unslashed]), ExitCode::from(1));
        let redirect = ["--expect-status", "301"];
        assert_eq!(
            check(&kc, &[unslashed, redirect[0], redirect[1]]),
            ExitCode::from(0)
        );
        // Usage and configuration errors.
        assert_eq!(
            check(&kc, &[es, "--expect-json", ".status =="]),
            ExitCode::from(2)
        );
        assert_eq!(check(&kc, &[es, "--expect-body", "("]), ExitCode::from(2));
        assert_eq!(check(&kc, &["deploy/ns/web"]), ExitCode::from(2));
        assert_eq!(check(&dir.path().join("missing"), &[es]), ExitCode::from(2));
        // The default namespace comes from the kubeconfig (`default`); `kubernetes` has no
        // proxyable endpoints, as in a real cluster.
        assert_eq!(check(&kc, &["svc/kubernetes:443/"]), ExitCode::from(1));
    }

    #[test]
    fn bare_targets_check_the_root_and_api_paths_are_kept() {
        let path = |input: &str| check_target(input, "demo").unwrap().path;
        let svc = "/api/v1/namespaces/demo/services";
        assert_eq!(path("svc/shop:http"), format!("{svc}/shop:http/proxy/"));
        assert_eq!(
            path("svc/shop:http?x=1"),
            format!("{svc}/shop:http/proxy/?x=1")
        );
        assert_eq!(
            path("svc/shop:http/cart"),
            format!("{svc}/shop:http/proxy/cart")
        );
        assert_eq!(
            path("http.shop.demo.svc.localhost:8001"),
            format!("{svc}/shop:http/proxy/")
        );
        assert_eq!(
            path("/api/v1/namespaces/demo/services/shop:http/proxy"),
            format!("{svc}/shop:http/proxy")
        );
        assert_eq!(
            path("svc/kube-system/metrics-server:443"),
            "/api/v1/namespaces/kube-system/services/https:metrics-server:443/proxy/"
        );
    }

    #[test]
    fn https_ports_get_the_https_prefix() {
        let (_rt, _cluster, dir) = cluster();
        // metrics-server serves TLS on its port named https, numbered 443.
        let kc = dir.path().join("config");
        assert_eq!(
            check(&kc, &["svc/kube-system/metrics-server:443/"]),
            ExitCode::from(0)
        );
        assert_eq!(
            check(&kc, &["svc/kube-system/metrics-server:https/"]),
            ExitCode::from(0)
        );
    }

    #[test]
    fn bad_flag_values_are_rejected_by_the_parser() {
        for argv in [
            vec!["check", "svc/a/b", "--timeout", "5"],
            vec!["check", "svc/a/b", "--expect-status", "2x"],
            vec!["check", "svc/a/b", "--parallel", "0"],
            vec!["check"],
        ] {
            let err = Cli::try_parse_from(&argv).err();
            assert_eq!(err.map(|e| e.exit_code()), Some(2), "{argv:?}");
        }
        let ok = Cli::try_parse_from([
            "check",
            "svc/a/b",
            "--timeout",
            "500ms",
            "--retry-interval",
            "1m",
        ]);
        assert!(ok.is_ok());
    }
}
