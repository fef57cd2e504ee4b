//! `kgate demo`.

use std::process::ExitCode;

/// Arguments of `kgate demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> ExitCode {
    eprintln!("error: kgate demo is not built yet");
    ExitCode::from(2)
}
