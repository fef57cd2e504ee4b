//! The wire protocols of the `pods/<name>/portforward` subresource, for both ends: the
//! simulated API server and kubelet (`simcluster`) and kgate's port-forward client.
//!
//! What clients speak today, and where each is defined:
//!
//! - [`spdy`]: SPDY/3.1 with subprotocol `portforward.k8s.io` (`Upgrade: SPDY/3.1`,
//!   `X-Stream-Protocol-Version: portforward.k8s.io`): one connection, a pair of streams per
//!   forwarded connection ([`protocol`]); what `kubectl` spoke alone before 1.31, and falls
//!   back to;
//! - [`tunnel`]: the same SPDY carried in WebSocket binary messages
//!   (`Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io`, KEP-4006), what `kubectl` 1.31+
//!   tries first;
//! - [`channel`]: the kubelet's WebSocket channel protocol (`v4.channel.k8s.io`), one TCP
//!   connection per requested port per WebSocket, what kube-rs speaks.
//!
//! No I/O of its own beyond the byte streams it is given; nothing here knows about clusters,
//! credentials or pods.

pub mod channel;
pub mod protocol;
pub mod spdy;
pub mod tunnel;

/// An I/O error for a transport that broke (`BrokenPipe`, with what broke it).
pub(crate) fn broken(err: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, err.to_string())
}

/// Moves what fits of `pending` (bytes already received) into `buf`; `false` when nothing
/// was pending. The first step of every stream's `poll_read` here.
pub(crate) fn drain(pending: &mut bytes::Bytes, buf: &mut tokio::io::ReadBuf<'_>) -> bool {
    if pending.is_empty() {
        return false;
    }
    let n = pending.len().min(buf.remaining());
    buf.put_slice(&pending.split_to(n));
    true
}
