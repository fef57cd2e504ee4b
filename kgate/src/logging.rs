//! Logging: kubectl's `-v`/`--v=N` levels mapped onto `tracing`, written to stderr. The
//! commands log under `kgate`, the server and its phases under `gateway`, access lines under
//! `kgate::access`.
//!
//! Contract: level 0 prints warnings and errors only (what klog prints by default: kubectl
//! proxy's start-up warnings); 1 adds start-up information; 2 adds one access line per request
//! (target `kgate::access`); 3–5 add filter decisions (`Filter accepting/rejecting`, klog V(3)
//! in kubectl) and connection events; 6 and above add request details, with `Authorization`,
//! `Proxy-Authorization` and `Cookie` values redacted (the gateway's `redact` module). Stdout is left
//! to the commands (`Starting to serve on ...`).

use tracing_subscriber::EnvFilter;

/// The `tracing` filter for a kubectl verbosity.
pub(crate) fn directives(verbosity: u8) -> &'static str {
    match verbosity {
        0 => "warn",
        1 => "warn,kgate=info,gateway=info,kgate::access=off",
        2 => "warn,kgate=info,gateway=info",
        3..=5 => "warn,kgate=debug,gateway=debug",
        _ => "warn,kgate=trace,gateway=trace",
    }
}

/// Installs the process-wide subscriber; a second call is a no-op.
pub(crate) fn init(verbosity: u8) {
    let filter = EnvFilter::new(directives(verbosity));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
