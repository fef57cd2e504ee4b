//! What the API server's request handlers share ([`Shared`]), and how upgraded connections
//! die with the API server ([`Stopper`]). Its own file so that the handlers (`proxy`,
//! `forwarding`) and the server that calls them (`server`) all depend on it, not on each
//! other.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use crate::auth::Authn;
use crate::cluster::ClusterState;

/// What every request handler shares.
pub(crate) struct Shared {
    pub(crate) cluster: RwLock<ClusterState>,
    pub(crate) authn: Authn,
    pub(crate) addr: SocketAddr,
    pub(crate) endpoint_tls: Arc<rustls::ClientConfig>,
    pub(crate) endpoints: crate::upstream::EndpointClient,
    /// Bytes received from clients, on the wire (TLS records included), for tests that show
    /// a gateway refused a request without sending a byte of it.
    pub(crate) received: Arc<AtomicU64>,
    /// Whose turn it is among a service's ready endpoints.
    pub(crate) next_endpoint: std::sync::atomic::AtomicUsize,
    /// The protocol of every port-forward upgrade served, in order (for tests).
    pub(crate) forwards: std::sync::Mutex<Vec<&'static str>>,
    /// Cancelled when the API server stops: the upgraded connections, which outlive the HTTP
    /// connection they came from, then fail, as a real API server's die with it.
    pub(crate) stopping: tokio_util::sync::CancellationToken,
    /// Which forms of `pods/portforward` reach the API server.
    pub(crate) portforward: PortForwardForms,
    /// Which pods the API server cannot dial for the proxy verb.
    pub(crate) reach: PodNetwork,
}

/// A pod network the control plane cannot reach, in whole or for some services (a private
/// GKE cluster without the firewall rule, EKS with an overlay CNI): the proxy verb's dial to
/// such a pod times out after `delay`, while `pods/portforward`, which goes through the
/// kubelet, still works. See the builder's `unreachable_*`.
#[derive(Debug, Clone, Default)]
pub(crate) struct PodNetwork {
    /// No pod is reachable.
    pub(crate) none: bool,
    /// The pods of these services (`namespace/name`) are not.
    pub(crate) services: std::collections::BTreeSet<String>,
    /// How long a dial takes to fail (Go's dialer: 30 s; shorter here so tests stay fast).
    pub(crate) delay: std::time::Duration,
}

impl PodNetwork {
    /// Whether a pod of the service `namespace/service` cannot be dialled.
    pub(crate) fn blocks(&self, namespace: &str, service: &str) -> bool {
        self.none || self.services.contains(&format!("{namespace}/{service}"))
    }
}

/// Which forms of `pods/portforward` are served (see the builder's `portforward_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortForwardForms {
    /// SPDY tunnelled through a WebSocket.
    pub(crate) tunnel: bool,
    /// `Upgrade: SPDY/3.1`.
    pub(crate) spdy: bool,
}

impl Shared {
    /// What makes an upgraded connection fail once the API server stops.
    pub(crate) fn stopper(&self) -> Stopper {
        Stopper(self.stopping.clone())
    }
}

/// See [`Shared::stopper`].
pub(crate) struct Stopper(tokio_util::sync::CancellationToken);

impl Stopper {
    /// `io` (an upgraded connection), failing once the API server stops.
    pub(crate) fn until_stopped<T>(self, io: T) -> Stoppable<T> {
        Stoppable {
            io,
            stopped: Box::pin(self.0.cancelled_owned()),
        }
    }
}

/// An upgraded connection that fails once the API server stops; see [`Shared::stopping`].
pub(crate) struct Stoppable<T> {
    io: T,
    stopped: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
}

impl<T> Stoppable<T> {
    fn check(&mut self, cx: &mut Context<'_>) -> std::io::Result<()> {
        match self.stopped.as_mut().poll(cx) {
            Poll::Ready(()) => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "the API server stopped",
            )),
            Poll::Pending => Ok(()),
        }
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Stoppable<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Stoppable<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
