//! End-to-end tests of the `auth` crate: a real `ApiClient` against real TLS servers on
//! loopback (port 0), credentials of every kind, refresh, and the failure messages.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure there is the test's failure"
)]

mod client;
mod creds;
#[cfg(unix)]
mod exec;
mod proxy;
#[cfg(unix)]
mod secrets;
mod simcluster;
mod support;
