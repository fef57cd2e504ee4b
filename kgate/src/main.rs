//! `kgate`: a gateway from your machine to the HTTP services inside Kubernetes.
//!
//! `main` only parses the command line, sets up logging and hands over to one module per
//! subcommand in `cmd/`; each returns the process exit code. The server and the request path are
//! the `gateway` library's.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod logging;

/// A gateway from your machine to the HTTP services inside Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "kgate", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a proxy to the Kubernetes API server, flag for flag like `kubectl proxy`.
    Proxy(cmd::proxy::Args),
    /// Parse and build kgate's address forms (API proxy paths, short targets, origin hosts).
    #[command(subcommand)]
    Url(cmd::url::UrlCommand),
    /// Start a simulated cluster with sample services, and the gateway in front of it.
    #[cfg(feature = "demo")]
    Demo(cmd::demo::Args),
    /// Print the addresses of the control plane and cluster services, as `kubectl cluster-info`.
    ClusterInfo(cmd::cluster_info::Args),
    /// List every service port with its scheme, proxy URLs, origin URL and readiness.
    Urls(cmd::urls::Args),
    /// Check services through the API server: status, JSON and body expectations.
    Check(cmd::check::Args),
    /// Run the gateway with kgate's own defaults (API passthrough; service origins).
    Serve(cmd::serve::Args),
    /// Open a service in the browser at the root of its own origin (starting a gateway if needed).
    Open(cmd::open::Args),
    /// Forward local ports to a workload's pods, as `kubectl port-forward`, balanced over its
    /// ready pods and surviving their restarts.
    Forward(cmd::forward::Args),
}

fn main() -> ExitCode {
    // One process-wide TLS provider, chosen before anything builds a rustls config.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Command::Proxy(args) => cmd::proxy::run(args),
        Command::Url(command) => cmd::url::run(command),
        #[cfg(feature = "demo")]
        Command::Demo(args) => cmd::demo::run(args),
        Command::ClusterInfo(args) => cmd::cluster_info::run(args),
        Command::Urls(args) => cmd::urls::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Open(args) => cmd::open::run(args),
        Command::Forward(args) => cmd::forward::run(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// clap's own checks of every command (unique names, valid defaults, ...), which would
    /// otherwise only panic in a debug build the first time that command runs.
    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
