//! `kgate proxy`.

use std::process::ExitCode;

/// Arguments of `kgate proxy`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> ExitCode {
    eprintln!("error: kgate proxy is not built yet");
    ExitCode::from(2)
}
