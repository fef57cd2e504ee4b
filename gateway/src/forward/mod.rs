//! Port-forward: local connections carried to a workload's pods through the API server's
//! `pods/<name>/portforward` subresource, what `kgate forward` runs and what the gateway
//! falls back to when the API server cannot reach pods.
//!
//! ```text
//! target    what is asked for: pod/svc/deploy and [LOCAL:]REMOTE pairs, as kubectl reads them
//!  → resolve   the pods usable now and the container port per pair (EndpointSlices, pods)
//!  → relay     per local connection: the best pod, retry before the pod's first byte, copy
//!  → dial      per pod: sessions (SPDY over WebSocket, SPDY) or a WebSocket per connection
//! ```
//!
//! The wire protocols are the `portforward` crate's; credentials and TLS are the caller's
//! `auth::ApiClient`'s. Why kgate does not use kube-rs's `Portforwarder` is in [`dial`].

pub mod dial;
pub mod relay;
pub mod resolve;
pub mod target;

pub use dial::{DialError, Transport};
pub use relay::{ForwardError, Forwarder, Report};
pub use resolve::{Endpoint, ResolveError, Resolver};
pub use target::{Kind, LocalPort, PortPair, RemotePort, TargetError, Workload};
