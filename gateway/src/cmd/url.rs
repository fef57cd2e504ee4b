//! `kgate url`.

use std::process::ExitCode;

/// Subcommands of `kgate url`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum UrlCommand {
    /// Parse any address form and print the target it names.
    Parse,
}

pub(crate) fn run(_command: UrlCommand) -> ExitCode {
    eprintln!("error: kgate url is not built yet");
    ExitCode::from(2)
}
