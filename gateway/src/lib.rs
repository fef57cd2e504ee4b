//! The gateway as a library: listeners, and one request's way through the phases.
//!
//! ```text
//! server      listeners (TCP, unix socket, mounts), connections, limits, graceful shutdown
//!  → dispatch  the phases, in order, for one request:
//!    classify  which destination: API passthrough, service origin, mount, the gateway's pages,
//!              static files, or nothing served                       (urlgrammar, Go's mux)
//!    admit     kubectl's filter, the cross-site rules, mount hosts: every policy refusal
//!    build     the upstream request: path, default port and scheme, header scrubbing, and
//!              the credential policy; chooses how the answer is shaped (discovery, auth)
//!    send      the one seam to the API server: pooled requests, upgrades and their tunnels,
//!              the wait for the head bounded                         (auth's client)
//!    shape     passthrough, or un-prefixing for an origin              (rewrite)
//!    rescue    every refusal and failure becomes the response for its audience (pages)
//! ```
//!
//! [`forward`] is the port-forward transport: local connections to pods through the
//! `portforward` subresource, for `kgate forward`.
//!
//! Each phase is a module of its own with its own tests; arrows only point down that list.
//! `ARCHITECTURE.md` at the repository root draws the crates and these modules. The `kgate`
//! binary (the `kgate` crate) holds the commands and starts a server with [`server::start`].

mod access;
mod admit;
mod body;
mod build;
mod classify;
mod dispatch;
pub mod forward;
pub mod framing;
mod limits;
mod local;
mod pages;
mod redact;
mod rescue;
mod secret;
mod send;
pub mod server;
#[cfg(test)]
mod server_tests;
mod shape;
mod static_files;

pub use admit::filter;
pub use body::{Body, BoxError};
pub use local::{GATEWAY_NAME, GatewayInfo};
pub use pages::INDEX_PATH;
pub use rescue::ProxyError;
pub use secret::{AccessToken, TOKEN_NAME};
pub use send::{BoxFuture, Upstream, connect_client, upstream_of};
