//! One module per subcommand. Each exposes its clap arguments and a `run` that returns the
//! process exit code; errors are reported by the command itself, in its own format.
//!
//! The doc comments on the argument structs are clap's help text, written for a terminal
//! (`svc/<ns>/<name>[:<port>]`), so rustdoc's HTML and link checks do not apply to them.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

pub(crate) mod check;
pub(crate) mod cluster_info;
pub(crate) mod demo;
pub(crate) mod open;
pub(crate) mod proxy;
pub(crate) mod serve;
pub(crate) mod serving;
pub(crate) mod url;
pub(crate) mod urls;

/// An error and its causes on one line (`outer: inner: innermost`), for the `error: …` line a
/// command prints.
///
/// Many error types put their cause in their own message and also return it from `source()`
/// (thiserror's `#[error("...: {source}")]`); a cause whose text is already on the line is not
/// repeated, so no message says the same thing twice.
pub(crate) fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("listen tcp {address}: {source}")]
    struct Listen {
        address: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn causes_are_joined_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use");
        let err = anyhow::Error::new(Listen {
            address: "127.0.0.1:8001",
            source: io(),
        })
        .context("starting the gateway");
        assert_eq!(
            one_line(&*err),
            "starting the gateway: listen tcp 127.0.0.1:8001: address in use"
        );
        let err = anyhow::Error::new(io()).context("binding");
        assert_eq!(one_line(&*err), "binding: address in use");
        assert_eq!(one_line(&io()), "address in use");
    }
}
