//! One module per subcommand. Each exposes its clap arguments and a `run` that returns the
//! process exit code; errors are reported by the command itself, in its own format.

pub(crate) mod check;
pub(crate) mod cluster_info;
pub(crate) mod demo;
pub(crate) mod proxy;
pub(crate) mod serve;
pub(crate) mod serving;
pub(crate) mod url;
pub(crate) mod urls;
