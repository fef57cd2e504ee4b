//! One module per subcommand. Each exposes its clap arguments and a `run` that returns the
//! process exit code; errors are reported by the command itself, in its own format.
//!
//! The doc comments on the argument structs are clap's help text, written for a terminal
//! (`svc/<ns>/<name>[:<port>]`), so rustdoc's HTML and link checks do not apply to them.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

pub(crate) mod check;
pub(crate) mod cluster_info;
#[cfg(feature = "demo")]
pub(crate) mod demo;
pub(crate) mod forward;
pub(crate) mod open;
pub(crate) mod proxy;
pub(crate) mod runtime;
pub(crate) mod serve;
pub(crate) mod serving;
pub(crate) mod url;
pub(crate) mod urls;
