//! `kgate url`: parse any address form and print the target it names, or build every form of
//! a target.
//!
//! Contract: output goes to stdout, readable by default and JSON with `-o json`; one `--form`
//! prints just that form's text, so scripts can use it without JSON. Bad input exits 2 with one
//! `error: ...` line on stderr, which says what was wrong (the `urlgrammar` error); clap's
//! own usage errors exit 2 too.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use serde::Serialize;
use urlgrammar::{Address, BuildError, ContextLabel, Port, Rest, Scheme, Target};

/// The exit code of bad input, as everywhere in kgate.
const USAGE_ERROR: u8 = 2;

/// Where a gateway listens by default, as `kubectl proxy`.
const DEFAULT_GATEWAY: &str = "localhost:8001";

/// Subcommands of `kgate url`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum UrlCommand {
    /// Parse any address form and print the target it names.
    ///
    /// Accepts an API proxy path (/api/v1/namespaces/<ns>/services/<id>/proxy/...), a short
    /// target (svc/<ns>/<name>[:<port>][/<path>]), an origin host
    /// (<name>.<ns>.svc.localhost[:port]) or a URL (http://localhost:8001/api/v1/...,
    /// http://<name>.<ns>.svc.localhost:8001/...).
    Parse(ParseArgs),
    /// Print a target in every address form, or in the one chosen with --form.
    Build(BuildArgs),
}

/// Options both subcommands share.
#[derive(Debug, clap::Args)]
pub(crate) struct Common {
    /// Namespace for short targets that name none (svc/<name>).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Where the gateway listens, for the gateway and origin URLs: host[:port] or
    /// http://host[:port].
    #[arg(long, default_value = DEFAULT_GATEWAY, value_name = "H")]
    gateway_host: String,
    /// Context label for origin hosts (overrides one parsed from the input).
    #[arg(long, value_name = "LABEL")]
    context: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// Arguments of `kgate url parse`.
#[derive(Debug, clap::Args)]
pub(crate) struct ParseArgs {
    /// The address to parse.
    input: String,
    #[command(flatten)]
    common: Common,
}

/// Arguments of `kgate url build`.
#[derive(Debug, clap::Args)]
pub(crate) struct BuildArgs {
    /// The target, in any address form (usually a short target: svc/<ns>/<name>[:<port>]).
    target: String,
    /// Path (and ?query) after the target, as raw percent-encoded text; a leading '/' is added
    /// when missing.
    #[arg(long, value_name = "P")]
    path: Option<String>,
    /// Port to use instead of the target's (a number or a port name).
    #[arg(long)]
    port: Option<String>,
    /// Scheme to use instead of the target's.
    #[arg(long, value_enum)]
    scheme: Option<SchemeArg>,
    /// Which form to print; one form prints its text alone.
    #[arg(long, value_enum, default_value_t = FormArg::All)]
    form: FormArg,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FormArg {
    /// The API proxy path.
    Api,
    /// The short target.
    Short,
    /// The origin URL (http://<name>.<ns>.svc.localhost:<port>/...).
    Origin,
    /// The URL of the API proxy path through the gateway.
    Gateway,
    /// Every form.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SchemeArg {
    /// No scheme: the API server uses http.
    None,
    Http,
    Https,
}

pub(crate) fn run(command: UrlCommand) -> ExitCode {
    let result = match command {
        UrlCommand::Parse(args) => parse(&args),
        UrlCommand::Build(args) => build(&args),
    };
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // One line: urlgrammar's messages are single lines, and so is the context added here.
            eprintln!("error: {}", auth::error_chain(&*e));
            ExitCode::from(USAGE_ERROR)
        }
    }
}

/// Every form of one target, as printed.
#[derive(Debug, Serialize)]
struct Forms {
    api: String,
    short: String,
    gateway: String,
    /// `None` when the target has no origin host (see `origin_error`).
    origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct ParseOutput<'a> {
    #[serde(flatten)]
    address: &'a Address,
    forms: Forms,
}

fn parse(args: &ParseArgs) -> anyhow::Result<String> {
    let mut address = Address::parse(&args.input, args.common.namespace.as_deref())?;
    if let Some(context) = &args.common.context {
        address.context = Some(ContextLabel::new(context).context("--context")?);
    }
    let forms = forms(
        &address.target,
        &address.rest,
        address.context.as_ref(),
        &args.common,
    )?;
    match args.common.output {
        Output::Json => json(&ParseOutput {
            address: &address,
            forms,
        }),
        Output::Text => Ok(describe(&address) + &forms_text(&forms)),
    }
}

fn build(args: &BuildArgs) -> anyhow::Result<String> {
    let mut address = Address::parse(&args.target, args.common.namespace.as_deref())?;
    let mut target = address.target.clone();
    if let Some(port) = &args.port {
        target = target.with_port(Some(Port::parse(port).context("--port")?));
    }
    if let Some(scheme) = args.scheme {
        target = target.with_scheme(match scheme {
            SchemeArg::None => Scheme::Unspecified,
            SchemeArg::Http => Scheme::Http,
            SchemeArg::Https => Scheme::Https,
        });
    }
    let mut rest = address.rest.clone();
    if let Some(path) = &args.path {
        if !rest.is_empty() && rest != Rest::root() {
            bail!(
                "the target already has the path {rest:?}; give the path once, in the target or with --path",
                rest = rest.to_string()
            );
        }
        let path = if path.starts_with('/') || path.starts_with('?') || path.is_empty() {
            path.clone()
        } else {
            format!("/{path}")
        };
        rest = Rest::parse(&path).context("--path")?;
    }
    if let Some(context) = &args.common.context {
        address.context = Some(ContextLabel::new(context).context("--context")?);
    }
    let forms = forms(&target, &rest, address.context.as_ref(), &args.common)?;
    let one = |text: Option<String>| -> anyhow::Result<String> {
        match args.common.output {
            Output::Json => json(&text),
            Output::Text => Ok(format!("{}\n", text.unwrap_or_default())),
        }
    };
    match args.form {
        FormArg::Api => one(Some(forms.api)),
        FormArg::Short => one(Some(forms.short)),
        FormArg::Gateway => one(Some(forms.gateway)),
        FormArg::Origin => match forms.origin {
            Some(origin) => one(Some(origin)),
            None => Err(anyhow!(forms.origin_error.unwrap_or_default())),
        },
        FormArg::All => match args.common.output {
            Output::Json => json(&forms),
            Output::Text => Ok(forms_text(&forms)),
        },
    }
}

/// Every form of `target` with `rest`.
fn forms(
    target: &Target,
    rest: &Rest,
    context: Option<&ContextLabel>,
    common: &Common,
) -> anyhow::Result<Forms> {
    let gateway = target
        .gateway_url(&common.gateway_host, rest)
        .context("--gateway-host")?;
    let origin = target.origin_url(context, gateway_port(&common.gateway_host), rest);
    let (origin, origin_error) = match origin {
        Ok(url) => (Some(url), None),
        Err(e @ BuildError::NoOriginHost { .. }) => (None, Some(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    Ok(Forms {
        api: target.api_path(rest),
        short: target.short(rest),
        gateway,
        origin,
        origin_error,
    })
}

/// The port of `host[:port]` or `scheme://host[:port]`; origin URLs use the same port.
fn gateway_port(gateway: &str) -> Option<u16> {
    let authority = gateway.split_once("://").map_or(gateway, |(_, a)| a);
    let authority = authority.trim_end_matches('/');
    let (_, port) = authority.rsplit_once(':')?;
    port.parse().ok()
}

fn json<T: Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

/// The parsed target, one `field: value` per line.
fn describe(address: &Address) -> String {
    let t = &address.target;
    let mut out = String::new();
    let mut line = |key: &str, value: &str| {
        let _ = writeln!(out, "{:<11}{value}", format!("{key}:"));
    };
    line("form", address.form.description());
    line("kind", &t.kind().to_string());
    if let Some(ns) = t.namespace() {
        line("namespace", ns);
    }
    line("name", t.name());
    let scheme = match t.scheme() {
        Scheme::Unspecified => format!("(none: {})", t.effective_scheme().as_str()),
        scheme => scheme.as_str().to_owned(),
    };
    line("scheme", &scheme);
    line(
        "port",
        &t.port()
            .map_or_else(|| "(default)".to_owned(), Port::to_string),
    );
    if !address.rest.path().is_empty() {
        line("path", address.rest.path());
    }
    if let Some(query) = address.rest.query() {
        line("query", query);
    }
    if let Some(context) = &address.context {
        line("context", context.as_str());
    }
    if let Some(base) = &address.base {
        line("base", base);
    }
    out.push('\n');
    out
}

fn forms_text(forms: &Forms) -> String {
    let origin = match (&forms.origin, &forms.origin_error) {
        (Some(url), _) => url.clone(),
        (None, Some(e)) => format!("(none: {e})"),
        (None, None) => "(none)".to_owned(),
    };
    format!(
        "api:       {}\nshort:     {}\ngateway:   {}\norigin:    {origin}\n",
        forms.api, forms.short, forms.gateway
    )
}
