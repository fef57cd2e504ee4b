//! The forwarder: each local connection to a ready pod, and its bytes both ways.
//!
//! Contract:
//!
//! - **balance**: each connection goes to the ready pod with the fewest connections now
//!   (round robin among equals), not to one pinned pod;
//! - **fresh**: the pods are re-read when the list is older than [`REFRESH`] (in the
//!   background; the connection does not wait) and at once after a failure; a pod whose dial
//!   failed is passed over for [`PENALTY`];
//! - **retry**: until the pod has sent a byte, what the client sent is kept (up to
//!   [`REPLAY_LIMIT`]); when the kubelet then reports that it could not reach the pod (its
//!   error stream: connection refused, no such pod or sandbox, a timeout), the connection is
//!   tried again on another pod with those bytes, up to [`ATTEMPTS`] times, and the client sees
//!   nothing of it. A failure after the pod answered is the client's to see: the connection
//!   closes, and the error is reported. Nothing is retried that a pod may have acted on;
//! - **wait**: with no ready pod, a connection waits up to the forwarder's patience for one;
//! - **ends** as client-go's `handleConnection` does: the client's end of input half-closes
//!   the stream to the pod (SPDY; the channel protocol has no half-close), and the pod's end
//!   of output ends the connection;
//! - memory per connection is bounded: one buffer each way and the session's per-stream
//!   buffers; a slow reader slows its pod's sender, it is never buffered for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::dial::{Connection, DialError, Dialer, Transport};
use super::resolve::{Endpoint, ResolveError, Resolver};

/// How old the list of pods may be before it is read again.
pub const REFRESH: Duration = Duration::from_secs(2);

/// How long a pod whose dial failed is passed over.
pub const PENALTY: Duration = Duration::from_secs(5);

/// The most client bytes kept for a retry.
pub const REPLAY_LIMIT: usize = 64 << 10;

/// Pods one connection is tried on.
pub const ATTEMPTS: usize = 3;

/// How long the kubelet's error text is waited for once the data has ended.
const ERROR_WAIT: Duration = Duration::from_secs(2);

/// The copy buffer, each way.
const BUFFER: usize = 64 << 10;

/// Why a connection failed; the one line a user sees.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ForwardError {
    /// The pods could not be listed.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// No tunnel could be opened.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// The kubelet's error text (as client-go reports it).
    #[error("an error occurred forwarding {local} -> {remote}: {message}")]
    Kubelet {
        /// The local port.
        local: u16,
        /// The pod's port.
        remote: u16,
        /// The text.
        message: String,
    },
}

/// What became of one connection.
#[derive(Debug, Default)]
pub struct Report {
    /// The pod that carried it (the last one tried).
    pub pod: Option<String>,
    /// Pods still listed as ready that were tried before it, with the kubelet's reason (a
    /// pod that has left the endpoints is passed over without a word).
    pub retried: Vec<(String, String)>,
    /// The failure the client saw, if any.
    pub error: Option<ForwardError>,
    /// Bytes to the pod and from it.
    pub sent: u64,
    /// Bytes from the pod.
    pub received: u64,
}

/// What the forwarder knows of one pod.
#[derive(Default)]
struct PodState {
    active: AtomicUsize,
    penalty_until: Mutex<Option<Instant>>,
}

struct Snapshot {
    endpoints: Vec<Endpoint>,
    at: Instant,
}

struct Inner {
    resolver: Resolver,
    dialer: Dialer,
    snapshot: Mutex<Snapshot>,
    refreshing: tokio::sync::Mutex<()>,
    pods: Mutex<HashMap<String, Arc<PodState>>>,
    turn: AtomicUsize,
    patience: Duration,
}

/// Forwards local connections to a workload's pods; see the module contract. Cheap to clone.
#[derive(Clone)]
pub struct Forwarder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("workload", self.inner.resolver.workload())
            .finish_non_exhaustive()
    }
}

/// Counts a connection on its pod while it lives.
struct Active(Arc<PodState>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Forwarder {
    /// A forwarder over `resolver`'s pods, starting from `endpoints` (already read); a
    /// connection waits up to `patience` for a ready pod.
    pub fn new(
        resolver: Resolver,
        client: auth::ApiClient,
        endpoints: Vec<Endpoint>,
        patience: Duration,
    ) -> Forwarder {
        let dialer = Dialer::new(client, &resolver.workload().namespace);
        Forwarder {
            inner: Arc::new(Inner {
                resolver,
                dialer,
                snapshot: Mutex::new(Snapshot {
                    endpoints,
                    at: Instant::now(),
                }),
                refreshing: tokio::sync::Mutex::new(()),
                pods: Mutex::new(HashMap::new()),
                turn: AtomicUsize::new(0),
                patience,
            }),
        }
    }

    /// Opens the first tunnel now, to the first ready pod, so that a refusal or an
    /// unreachable server is known before anything listens.
    pub async fn warm(&self) -> Result<Transport, ForwardError> {
        let endpoints = self.endpoints(false).await?;
        let first = endpoints.first().ok_or_else(|| self.no_pods())?;
        Ok(self.inner.dialer.warm(&first.pod).await?)
    }

    /// The pods as last read.
    pub fn current(&self) -> Vec<Endpoint> {
        self.lock_snapshot().endpoints.clone()
    }

    /// The transport in use.
    pub fn transport(&self) -> Transport {
        self.inner.dialer.transport()
    }

    /// Carries `local` (a connection on local port `local_port`) to pair `pair`'s port on a
    /// ready pod, until either side ends; see the module contract.
    pub async fn serve<L>(&self, local: L, pair: usize, local_port: u16) -> Report
    where
        L: AsyncRead + AsyncWrite + Send + Unpin,
    {
        let (mut lr, mut lw) = tokio::io::split(local);
        let mut report = Report::default();
        let mut replay = BytesMut::new();
        let mut replayable = true;
        let mut local_eof = false;
        let mut tried: Vec<String> = Vec::new();
        // The kubelet's last refusal, for when no pod is left to try.
        let mut refused: Option<ForwardError> = None;
        let mut up = vec![0u8; BUFFER];
        let mut down = vec![0u8; BUFFER];
        loop {
            let (endpoint, connection, active) = match self.open(pair, &tried).await {
                Ok(opened) => opened,
                Err(err) => {
                    report.error = Some(refused.take().unwrap_or(err));
                    let _ = lw.shutdown().await;
                    return report;
                }
            };
            let remote_port = endpoint.ports.get(pair).copied().unwrap_or_default();
            report.pod = Some(endpoint.pod.clone());
            let Connection { data, error, .. } = connection;
            let (mut rr, mut rw) = tokio::io::split(data);
            let mut broken = send(&mut rw, &replay).await.is_err();
            if local_eof && !broken {
                let _ = rw.shutdown().await;
            }
            // Until the pod's first byte: keep what the client sends, for a retry.
            let first = loop {
                if broken {
                    break 0;
                }
                tokio::select! {
                    read = lr.read(&mut up), if !local_eof => match read {
                        Ok(0) => {
                            local_eof = true;
                            let _ = rw.shutdown().await;
                        }
                        Ok(n) => {
                            report.sent += n as u64;
                            broken = send(&mut rw, &up[..n]).await.is_err();
                            if replayable && replay.len() + n <= REPLAY_LIMIT {
                                replay.extend_from_slice(&up[..n]);
                            } else {
                                replayable = false;
                                replay = BytesMut::new();
                            }
                        }
                        // The client is gone: nothing to forward any more.
                        Err(_) => return report,
                    },
                    read = rr.read(&mut down) => break read.unwrap_or(0),
                }
            };
            if first == 0 {
                // The pod sent nothing: a dial failure the kubelet reports may be retried.
                let text = wait_error(error).await;
                drop((rr, rw));
                if text.is_empty() {
                    let _ = lw.shutdown().await;
                    return report;
                }
                let retry = replayable && dial_failed(&text) && tried.len() + 1 < ATTEMPTS;
                self.penalize(&endpoint.pod);
                let failure = ForwardError::Kubelet {
                    local: local_port,
                    remote: remote_port,
                    message: text.clone(),
                };
                if retry && self.has_other(&endpoint.pod, &tried).await {
                    tracing::debug!(pod = %endpoint.pod, "port-forward: retrying on another pod: {text}");
                    // A pod that has left the endpoints since (deleted, replaced) failing is
                    // no news; one still listed as ready is, and the user hears of it.
                    if self.is_listed(&endpoint.pod) {
                        report.retried.push((endpoint.pod.clone(), text));
                    }
                    tried.push(endpoint.pod);
                    refused = Some(failure);
                    drop(active);
                    continue;
                }
                report.error = Some(failure);
                let _ = lw.shutdown().await;
                return report;
            }
            // The pod answered: from here on, bytes both ways until the pod's end.
            report.received += first as u64;
            drop(replay);
            if lw.write_all(&down[..first]).await.is_err() {
                return report;
            }
            let upload = async {
                if !local_eof {
                    loop {
                        match lr.read(&mut up).await {
                            Ok(0) => {
                                let _ = rw.shutdown().await;
                                break;
                            }
                            Ok(n) => {
                                report.sent += n as u64;
                                if send(&mut rw, &up[..n]).await.is_err() {
                                    break;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                }
                // Only the pod's end (or a local write that fails) ends the connection.
                std::future::pending::<()>().await;
            };
            let download = async {
                let mut received = 0u64;
                loop {
                    match rr.read(&mut down).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            received += n as u64;
                            if lw.write_all(&down[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = lw.shutdown().await;
                received
            };
            let (received, text) = {
                let mut upload = std::pin::pin!(upload);
                let received = tokio::select! {
                    received = download => received,
                    () = &mut upload => 0,
                };
                // The client's end still goes on to the pod while the kubelet's word is
                // awaited: the kubelet closes the error stream once both directions are done,
                // and a client that closes when the answer ends (HTTP with `Connection:
                // close`) only then has.
                let text = tokio::select! {
                    text = wait_error(error) => text,
                    () = &mut upload => String::new(),
                };
                (received, text)
            };
            report.received += received;
            if !text.is_empty() {
                report.error = Some(ForwardError::Kubelet {
                    local: local_port,
                    remote: remote_port,
                    message: text,
                });
            }
            drop(active);
            return report;
        }
    }

    /// A connection to the best pod not in `tried`, counted on it.
    async fn open(
        &self,
        pair: usize,
        tried: &[String],
    ) -> Result<(Endpoint, Connection, Active), ForwardError> {
        let mut avoid: Vec<String> = tried.to_vec();
        let mut last: Option<ForwardError> = None;
        for _ in 0..ATTEMPTS {
            let endpoints = self.endpoints(!avoid.is_empty()).await?;
            let Some(endpoint) = self.pick(&endpoints, &avoid) else {
                break;
            };
            let Some(port) = endpoint.ports.get(pair).copied() else {
                break;
            };
            let state = self.state_of(&endpoint.pod);
            state.active.fetch_add(1, Ordering::AcqRel);
            let active = Active(state);
            match self.inner.dialer.open(&endpoint.pod, port).await {
                Ok(connection) => return Ok((endpoint, connection, active)),
                Err(err @ DialError::PodGone { .. }) => {
                    self.penalize(&endpoint.pod);
                    avoid.push(endpoint.pod);
                    last = Some(err.into());
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(last.unwrap_or_else(|| self.no_pods()))
    }

    /// Whether a pod other than `pod` and those `tried` may take a connection (after
    /// reading the pods again, and waiting for one while there is none).
    async fn has_other(&self, pod: &str, tried: &[String]) -> bool {
        let endpoints = match self.endpoints(true).await {
            Ok(endpoints) => endpoints,
            Err(_) => self.lock_snapshot().endpoints.clone(),
        };
        endpoints
            .iter()
            .any(|e| e.pod != pod && !tried.contains(&e.pod))
    }

    /// Whether `pod` is among the ready pods as last read.
    fn is_listed(&self, pod: &str) -> bool {
        self.lock_snapshot().endpoints.iter().any(|e| e.pod == pod)
    }

    fn no_pods(&self) -> ForwardError {
        let workload = self.inner.resolver.workload();
        ForwardError::Resolve(ResolveError::NoPods {
            workload: workload.to_string(),
            namespace: workload.namespace.clone(),
            waited: self.inner.patience,
        })
    }

    /// The ready pods: from the snapshot, re-read in the background when old, at once when
    /// `fresh`, and waited for (up to the patience) when there are none.
    async fn endpoints(&self, fresh: bool) -> Result<Vec<Endpoint>, ForwardError> {
        let (endpoints, age) = {
            let snapshot = self.lock_snapshot();
            (snapshot.endpoints.clone(), snapshot.at.elapsed())
        };
        if !fresh && !endpoints.is_empty() {
            if age >= REFRESH {
                let this = self.clone();
                tokio::spawn(async move {
                    let _ = this.refresh(false).await;
                });
            }
            return Ok(endpoints);
        }
        let deadline = Instant::now() + self.inner.patience;
        loop {
            let endpoints = self.refresh(true).await?;
            if !endpoints.is_empty() || Instant::now() >= deadline {
                return Ok(endpoints);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Reads the pods again (one read at a time; a caller that waited on another's read uses
    /// it, unless `force`).
    async fn refresh(&self, force: bool) -> Result<Vec<Endpoint>, ForwardError> {
        let started = Instant::now();
        let _one = self.inner.refreshing.lock().await;
        {
            let snapshot = self.lock_snapshot();
            if snapshot.at >= started || (!force && snapshot.at.elapsed() < REFRESH) {
                return Ok(snapshot.endpoints.clone());
            }
        }
        let endpoints = self.inner.resolver.endpoints().await?;
        let names: Vec<&str> = endpoints.iter().map(|e| e.pod.as_str()).collect();
        self.inner.dialer.forget_except(&names).await;
        self.inner
            .pods
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|pod, state| {
                names.contains(&pod.as_str()) || state.active.load(Ordering::Acquire) > 0
            });
        let mut snapshot = self.lock_snapshot();
        snapshot.endpoints = endpoints.clone();
        snapshot.at = Instant::now();
        Ok(endpoints)
    }

    /// The pod with the fewest connections, passing over `avoid` and penalised pods while
    /// others remain; ties go round robin.
    fn pick(&self, endpoints: &[Endpoint], avoid: &[String]) -> Option<Endpoint> {
        if endpoints.is_empty() {
            return None;
        }
        let now = Instant::now();
        let turn = self.inner.turn.fetch_add(1, Ordering::Relaxed);
        let scored: Vec<(usize, bool, &Endpoint)> = (0..endpoints.len())
            .map(|i| &endpoints[(turn + i) % endpoints.len()])
            .filter(|e| !avoid.contains(&e.pod))
            .map(|e| {
                let state = self.state_of(&e.pod);
                let penalised = state
                    .penalty_until
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_some_and(|until| until > now);
                (state.active.load(Ordering::Acquire), penalised, e)
            })
            .collect();
        scored
            .iter()
            .min_by_key(|(active, penalised, _)| (*penalised, *active))
            .map(|(_, _, e)| (*e).clone())
    }

    fn penalize(&self, pod: &str) {
        let state = self.state_of(pod);
        *state
            .penalty_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + PENALTY);
    }

    fn state_of(&self, pod: &str) -> Arc<PodState> {
        self.inner
            .pods
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(pod.to_owned())
            .or_default()
            .clone()
    }

    fn lock_snapshot(&self) -> std::sync::MutexGuard<'_, Snapshot> {
        self.inner
            .snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Writes `bytes` towards the pod and flushes them: a WebSocket transport holds what is
/// written in its buffer until a flush, and a request must not wait there for the next one.
async fn send<W: AsyncWrite + Unpin>(to: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    to.write_all(bytes).await?;
    to.flush().await
}

async fn wait_error(error: super::dial::ErrorSource) -> String {
    tokio::time::timeout(ERROR_WAIT, error.text())
        .await
        .unwrap_or_default()
}

/// Whether the kubelet's text says the pod was never reached (so nothing was delivered):
/// containerd's `failed to connect to localhost:P inside namespace`, a refused or timed-out
/// dial (`connect: connection refused`, `i/o timeout`), a pod or sandbox that is gone, and the
/// kubelet's own `timed out waiting for streams`.
pub fn dial_failed(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "failed to connect to",
        "connection refused",
        "i/o timeout",
        "timed out waiting for streams",
        "not found",
        "no such",
        "failed to find sandbox",
        "not running",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_to_reach_the_pod_are_retried() {
        assert!(dial_failed(
            "error forwarding port 81 to pod abc, uid : failed to execute portforward in network \
             namespace \"/var/run/netns/cni-x\": failed to connect to localhost:81 inside \
             namespace \"abc\", IPv4: dial tcp4 127.0.0.1:81: connect: connection refused"
        ));
        assert!(dial_failed("(request=3) timed out waiting for streams"));
        assert!(dial_failed(
            "failed to find sandbox \"abc\" in store: not found"
        ));
        assert!(!dial_failed("error copying: broken pipe"));
        assert!(!dial_failed("read: connection reset by peer"));
    }
}
