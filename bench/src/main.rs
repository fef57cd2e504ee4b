//! The load benchmark: kgate beside `kubectl proxy` and direct access.
//!
//! `bench load` measures DESIGN's performance table (interleaved rounds, medians, ratios from
//! one run); `bench forward` puts `kgate forward` beside `kubectl port-forward` and direct
//! access to one simulated pod (`bench sim`, a child process); `bench soak` is the bounded
//! soak of issue 8; `bench upstream` is the stand-in API server `load` and `soak` start as a
//! child process. All traffic stays on 127.0.0.1. Exit codes: 0 when every target is met
//! (load, forward) or the soak passed, 2 when not, 1 on an error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod client;
mod forward;
mod load;
mod procs;
mod setup;
mod soak;
mod upstream;
mod wrk;

#[derive(Debug, Parser)]
#[command(name = "bench", about = "kgate's load benchmark and soak")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure DESIGN's performance table: direct, kubectl proxy and kgate, interleaved.
    Load(load::Args),
    /// `kgate forward` beside `kubectl port-forward` and direct access to one pod.
    Forward(load::Args),
    /// The simulated cluster (started by `forward`).
    #[command(hide = true)]
    Sim(forward::SimArgs),
    /// A bounded soak of kgate: mixed sizes and WebSockets; fails on errors or fd growth.
    Soak(soak::Args),
    /// The stand-in API server (started by `load` and `soak`).
    #[command(hide = true)]
    Upstream(UpstreamArgs),
}

#[derive(Debug, clap::Args)]
struct UpstreamArgs {
    #[arg(long)]
    cert: PathBuf,
    #[arg(long)]
    key: PathBuf,
    #[arg(long)]
    token_file: PathBuf,
    #[arg(long, default_value_t = 0)]
    port: u16,
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Load(args) => load::run(args).await,
            Command::Soak(args) => soak::run(args).await,
            Command::Forward(args) => forward::run(args).await,
            Command::Sim(args) => forward::sim(args).await,
            Command::Upstream(a) => upstream::serve(&a.cert, &a.key, &a.token_file, a.port)
                .await
                .map(|()| true),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
