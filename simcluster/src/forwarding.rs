//! `pods/<name>/portforward`: the API server's subresource and the kubelet behind it, in every
//! form clients speak (the protocols themselves are the `portforward` crate's).
//!
//! Contract, as the API server (`pkg/registry/core/pod/rest/subresources.go`
//! `PortForwardREST`, apiserver `pkg/util/proxy/streamtunnel.go`) and the kubelet's CRI
//! streaming server (cri-streaming `pkg/streaming/portforward`) answer:
//!
//! - `GET` or `POST` only (`upgradeableMethods`), else `405`; a pod that does not exist is
//!   `404 pods "<name>" not found`; a request that asks for no upgrade is `400 Upgrade request
//!   required` (the `UpgradeAwareHandler` with `UpgradeRequired`);
//! - `Upgrade: SPDY/3.1` with `X-Stream-Protocol-Version: portforward.k8s.io` (or none):
//!   `101` and a SPDY session in which each forwarded connection is a `data`/`error` stream
//!   pair ([`portforward::protocol`]); a pair not complete within [`STREAM_CREATION_TIMEOUT`]
//!   gets `timed out waiting for streams` on its error stream; any other offered protocol is
//!   `403 unable to negotiate protocol`;
//! - a WebSocket offering `SPDY/3.1+portforward.k8s.io` (KEP-4006, the `PortForwardWebsockets`
//!   gate, on since 1.31): `101` with that subprotocol, and the same SPDY session inside binary
//!   messages;
//! - a WebSocket offering `v4.channel.k8s.io`, `v4.base64.channel.k8s.io` or nothing: the
//!   channel protocol for the ports of `?ports=` (the kubelet's `port=`; required: `400 query
//!   parameter "port" is required`), each port's channels primed with the port;
//! - each forwarded connection goes to the pod's address and the asked port; a port nothing
//!   listens on gets the kubelet's text on the error stream (as containerd words the failed
//!   dial inside the pod's network namespace), not a silent close.
//!
//! Authorization is the API server's as for any request (`create` on `pods/portforward` for
//! `POST`, `get` for a WebSocket `GET`, as in 1.32).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Method, Request, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use portforward::channel::{self, Framing};
use portforward::protocol::{
    self, PORTFORWARD_V1, REQUEST_ID, STREAM_TYPE, STREAM_TYPE_DATA, STREAM_TYPE_ERROR,
    TUNNELED_PORTFORWARD_V1,
};
use portforward::spdy::{Incoming as Streams, Session, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::body::{Resp, empty, respond};
use crate::requestinfo::RequestInfo;
use crate::shared::Shared;
use crate::status::Status;

/// How long the kubelet waits for both streams of a pair (its `streamCreationTimeout`).
pub(crate) const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the kubelet's dial into the pod may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// The pod a forward goes to.
#[derive(Debug, Clone)]
struct Target {
    /// The pod's IP: where its containers listen.
    ip: std::net::IpAddr,
    /// What the kubelet calls the pod in its messages: the sandbox id (CRI), and the uid it
    /// was given (empty through the CRI streaming server).
    sandbox: String,
}

/// Serves a request for `pods/<name>/portforward`; see the module contract.
pub(crate) fn serve(shared: &Shared, mut req: Request<Incoming>, info: &RequestInfo) -> Resp {
    if !matches!(*req.method(), Method::GET | Method::POST) {
        return Status::method_not_supported("", "pods/portforward", req.method().as_str())
            .into_response();
    }
    let target = {
        let Ok(state) = shared.cluster.read() else {
            return Status::internal("cluster state poisoned").into_response();
        };
        match state.pod(&info.namespace, &info.name) {
            Some((_, replica)) => Target {
                ip: replica.ip,
                sandbox: sandbox_id(&info.namespace, &replica.pod),
            },
            None => return Status::not_found("", "pods", &info.name).into_response(),
        }
    };
    let headers = req.headers();
    let websocket = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let spdy = shared.portforward.spdy
        && headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("SPDY/3.1"));
    if !wire::headers::is_upgrade(headers) || !(websocket || spdy) {
        return Status::bad_request("Upgrade request required").into_response();
    }
    let (resp, protocol) = if spdy {
        (serve_spdy(shared, &mut req, target), "spdy")
    } else {
        serve_websocket(shared, &mut req, target)
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Ok(mut log) = shared.forwards.lock()
    {
        log.push(protocol);
    }
    resp
}

/// The CRI pod sandbox id of a pod: 64 hex digits, stable for the pod.
fn sandbox_id(namespace: &str, pod: &str) -> String {
    let uid = crate::cluster::uid("PodSandbox", namespace, pod).replace('-', "");
    format!("{uid}{uid}")
}

/// `Upgrade: SPDY/3.1`: apimachinery's `httpstream.Handshake`, then the SPDY session.
fn serve_spdy(shared: &Shared, req: &mut Request<Incoming>, target: Target) -> Resp {
    let offered: Vec<String> = req
        .headers()
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    if !offered.is_empty() && !offered.iter().any(|p| p == PORTFORWARD_V1) {
        let text = format!(
            "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server \
             accepts {:?}",
            [PORTFORWARD_V1]
        );
        return respond(403, "text/plain; charset=utf-8", format!("{text}\n"));
    }
    let upgrade = hyper::upgrade::on(req);
    let stop = shared.stopper();
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let (_session, streams) = Session::server(stop.until_stopped(TokioIo::new(upgraded)));
        run_spdy(streams, target).await;
    });
    let mut resp = http::Response::new(empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    if !offered.is_empty() {
        h.insert(
            "x-stream-protocol-version",
            HeaderValue::from_static(PORTFORWARD_V1),
        );
    }
    resp
}

/// The subprotocols a WebSocket request offers, in its order.
fn offered_subprotocols<B>(req: &Request<B>) -> Vec<String> {
    req.headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// A WebSocket: the SPDY tunnel when it is offered, else the channel protocol; the answer
/// and which of the two it is.
fn serve_websocket(
    shared: &Shared,
    req: &mut Request<Incoming>,
    target: Target,
) -> (Resp, &'static str) {
    let (resp, tunnel) = websocket(shared, req, target);
    let protocol = if tunnel {
        "spdy-over-websocket"
    } else {
        "websocket-channels"
    };
    (resp, protocol)
}

/// [`serve_websocket`], and whether the answer is the SPDY tunnel.
fn websocket(shared: &Shared, req: &mut Request<Incoming>, target: Target) -> (Resp, bool) {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        let text = "missing Sec-WebSocket-Key\n";
        return (respond(400, "text/plain; charset=utf-8", text), false);
    };
    if req
        .headers()
        .get("sec-websocket-version")
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        let mut resp = respond(400, "text/plain; charset=utf-8", "Bad Request\n");
        resp.headers_mut()
            .insert("sec-websocket-version", HeaderValue::from_static("13"));
        return (resp, false);
    }
    let offered = offered_subprotocols(req);
    if shared.portforward.tunnel && offered.iter().any(|p| p == TUNNELED_PORTFORWARD_V1) {
        let upgrade = hyper::upgrade::on(req);
        let stop = shared.stopper();
        tokio::spawn(async move {
            let Ok(upgraded) = upgrade.await else {
                return;
            };
            let ws = WebSocketStream::from_raw_socket(
                stop.until_stopped(TokioIo::new(upgraded)),
                Role::Server,
                None,
            )
            .await;
            let bytes = portforward::tunnel::ByteStream::new(ws);
            let (_session, streams) = Session::server(bytes);
            run_spdy(streams, target).await;
        });
        return (switching(&key, Some(TUNNELED_PORTFORWARD_V1)), true);
    }
    // The kubelet's channel protocol; the API server passes `ports` on as `port`.
    let ports = match requested_ports(req.uri().query()) {
        Ok(ports) => ports,
        Err(text) => {
            return (
                respond(400, "text/plain; charset=utf-8", format!("{text}\n")),
                false,
            );
        }
    };
    let chosen = if offered.is_empty() {
        Some(String::new())
    } else {
        offered
            .iter()
            .find(|p| Framing::of(Some(p)).is_some())
            .cloned()
    };
    let Some(chosen) = chosen else {
        let text = "requested protocol(s) are not supported\n";
        return (respond(400, "text/plain; charset=utf-8", text), false);
    };
    let framing = Framing::of(Some(&chosen)).unwrap_or(Framing::Binary);
    let upgrade = hyper::upgrade::on(req);
    let stop = shared.stopper();
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(
            stop.until_stopped(TokioIo::new(upgraded)),
            Role::Server,
            None,
        )
        .await;
        run_channels(ws, framing, ports, target).await;
    });
    (
        switching(&key, (!chosen.is_empty()).then_some(chosen.as_str())),
        false,
    )
}

/// `101 Switching Protocols` for a WebSocket with `key`, naming `protocol` when chosen.
fn switching(key: &HeaderValue, protocol: Option<&str>) -> Resp {
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut resp = http::Response::new(empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    if let Some(protocol) = protocol.and_then(|p| HeaderValue::from_str(p).ok()) {
        h.insert("sec-websocket-protocol", protocol);
    }
    resp
}

/// The kubelet's `NewV4Options`: `port` values (the API server's `ports`), comma lists
/// allowed, each a port above 0, duplicates kept.
fn requested_ports(query: Option<&str>) -> Result<Vec<u16>, String> {
    let values: Vec<String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "ports" || k == "port")
        .map(|(_, v)| v.into_owned())
        .collect();
    if values.is_empty() {
        return Err("query parameter \"port\" is required".to_owned());
    }
    let mut ports = Vec::new();
    for value in values {
        if value.is_empty() {
            return Err("query parameter \"port\" cannot be empty".to_owned());
        }
        for part in value.split(',') {
            ports.push(
                protocol::parse_port(Some(part))
                    .map_err(|_| format!("unable to parse {value:?} as a port: invalid syntax"))?,
            );
        }
    }
    Ok(ports)
}

/// The kubelet's dial into the pod; on failure, its error text (containerd's wording).
async fn dial(target: &Target, port: u16) -> Result<TcpStream, String> {
    let addr = SocketAddr::new(target.ip, port);
    let dialed = tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(addr)).await;
    match dialed {
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
        Ok(Err(err)) => Err(dial_error(
            target,
            port,
            &format!("connect: {}", go_errno(&err)),
        )),
        Err(_) => Err(dial_error(target, port, "i/o timeout")),
    }
}

/// Go's spelling of a dial error (`connection refused`, not Rust's `Connection refused`).
fn go_errno(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        _ => err.to_string().to_lowercase(),
    }
}

fn dial_error(target: &Target, port: u16, cause: &str) -> String {
    let netns = &target.sandbox[..32];
    protocol::forward_error(
        port,
        &target.sandbox,
        "",
        &format!(
            "failed to execute portforward in network namespace \"/var/run/netns/cni-{netns}\": \
             failed to connect to localhost:{port} inside namespace \"{}\", IPv4: dial tcp4 \
             127.0.0.1:{port}: {cause} IPv6 dial tcp6: address localhost: no suitable address \
             found ",
            target.sandbox
        ),
    )
}

/// Pairs the streams of a SPDY session and forwards each complete pair.
async fn run_spdy(mut streams: Streams, target: Target) {
    let target = Arc::new(target);
    let (pairs_tx, mut pairs_rx) = mpsc::channel::<(String, Stream)>(64);
    // Streams arrive in any order; a pair is complete with one of each type.
    tokio::spawn(async move {
        while let Some(stream) = streams.accept().await {
            let kind = stream.header(STREAM_TYPE).unwrap_or_default().to_owned();
            let port = stream.header(protocol::PORT);
            if let Err(text) = protocol::parse_port(port) {
                tracing::debug!("portforward: refusing a stream: {text}");
                stream.reset().await;
                continue;
            }
            if kind != STREAM_TYPE_DATA && kind != STREAM_TYPE_ERROR {
                tracing::debug!("portforward: refusing a stream of type {kind:?}");
                stream.reset().await;
                continue;
            }
            let id = stream
                .header(REQUEST_ID)
                .map(str::to_owned)
                .unwrap_or_else(|| protocol::pairing_id(&kind, stream.id()));
            if pairs_tx.send((id, stream)).await.is_err() {
                return;
            }
        }
    });
    let mut waiting: std::collections::HashMap<String, (Stream, tokio::time::Instant)> =
        std::collections::HashMap::new();
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            next = pairs_rx.recv() => {
                let Some((id, stream)) = next else { return };
                match waiting.remove(&id) {
                    Some((other, _)) => {
                        let (data, error) = if stream.header(STREAM_TYPE) == Some(STREAM_TYPE_DATA) {
                            (stream, other)
                        } else {
                            (other, stream)
                        };
                        if data.header(STREAM_TYPE) == error.header(STREAM_TYPE) {
                            let text = format!(
                                "error processing stream for request {id}: {} stream already assigned",
                                data.header(STREAM_TYPE).unwrap_or_default()
                            );
                            tokio::spawn(async move {
                                let _ = error.finish_with(text.as_bytes()).await;
                                drop(data);
                            });
                            continue;
                        }
                        tokio::spawn(forward_pair(data, error, target.clone()));
                    }
                    None => {
                        waiting.insert(id, (stream, tokio::time::Instant::now()));
                    }
                }
            }
            _ = sweep.tick() => {
                let expired: Vec<String> = waiting
                    .iter()
                    .filter(|(_, (_, since))| since.elapsed() >= STREAM_CREATION_TIMEOUT)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in expired {
                    if let Some((stream, _)) = waiting.remove(&id) {
                        let text = format!("(request={id}) timed out waiting for streams");
                        tokio::spawn(async move {
                            if stream.header(STREAM_TYPE) == Some(STREAM_TYPE_ERROR) {
                                let _ = stream.finish_with(text.as_bytes()).await;
                            } else {
                                stream.reset().await;
                            }
                        });
                    }
                }
            }
        }
    }
}

/// One forwarded connection over SPDY: the data stream to the pod's port, failures as text on
/// the error stream.
async fn forward_pair(mut data: Stream, error: Stream, target: Arc<Target>) {
    let port = protocol::parse_port(data.header(protocol::PORT)).unwrap_or(0);
    let mut tcp = match dial(&target, port).await {
        Ok(tcp) => tcp,
        Err(text) => {
            tracing::debug!("portforward: {text}");
            let _ = error.finish_with(text.as_bytes()).await;
            data.reset().await;
            return;
        }
    };
    let _ = tokio::io::copy_bidirectional(&mut data, &mut tcp).await;
    let _ = data.shutdown().await;
    let mut error = error;
    let _ = error.shutdown().await;
}

/// The channel protocol on `ws` for `ports`; see the module contract.
async fn run_channels<S>(ws: WebSocketStream<S>, framing: Framing, ports: Vec<u16>, target: Target)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    // Every port's channels are primed with the port before anything else.
    for (i, port) in ports.iter().enumerate() {
        let (data, error) = channel::channels(i);
        let prefix = channel::port_prefix(*port);
        if sink
            .send(channel::encode(framing, data, &prefix))
            .await
            .is_err()
            || sink
                .send(channel::encode(framing, error, &prefix))
                .await
                .is_err()
        {
            return;
        }
    }
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(16);
    let mut to_pod: Vec<Option<mpsc::Sender<bytes::Bytes>>> = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, port) in ports.iter().copied().enumerate() {
        let (tx, rx) = mpsc::channel::<bytes::Bytes>(16);
        to_pod.push(Some(tx));
        tasks.spawn(channel_pair(
            i,
            port,
            target.clone(),
            rx,
            out_tx.clone(),
            framing,
        ));
    }
    drop(out_tx);
    let writer = tokio::spawn(async move {
        while let Some(message) = out_rx.recv().await {
            if sink.send(message).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let reader = async {
        while let Some(Ok(message)) = source.next().await {
            if message.is_close() {
                break;
            }
            let Ok(Some((channel, payload))) = channel::decode(framing, &message) else {
                continue;
            };
            // Data channels are even; what a client writes on an error channel is dropped.
            let index = usize::from(channel / 2);
            if channel % 2 == 0
                && let Some(Some(tx)) = to_pod.get(index)
                && tx.send(payload).await.is_err()
            {
                to_pod[index] = None;
            }
        }
    };
    tokio::select! {
        () = reader => {}
        () = async { while tasks.join_next().await.is_some() {} } => {}
    }
    tasks.abort_all();
    let _ = writer.await;
}

/// One port of a channel-protocol connection.
async fn channel_pair(
    index: usize,
    port: u16,
    target: Target,
    mut from_client: mpsc::Receiver<bytes::Bytes>,
    out: mpsc::Sender<Message>,
    framing: Framing,
) {
    let (data_channel, error_channel) = channel::channels(index);
    let tcp = match dial(&target, port).await {
        Ok(tcp) => tcp,
        Err(text) => {
            let _ = out
                .send(channel::encode(framing, error_channel, text.as_bytes()))
                .await;
            return;
        }
    };
    let (mut read, mut write) = tcp.into_split();
    let upstream = async {
        while let Some(chunk) = from_client.recv().await {
            if write.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = write.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 32 << 10];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let message = channel::encode(framing, data_channel, &buf[..n]);
                    if out.send(message).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    // The pod closing its side ends the port (v4 has no half-close to carry further); the
    // client's end of input only closes the pod's input.
    let mut upstream = std::pin::pin!(upstream);
    let mut downstream = std::pin::pin!(downstream);
    tokio::select! {
        () = &mut downstream => {}
        () = &mut upstream => downstream.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_as_the_kubelet_reads_them() {
        assert_eq!(requested_ports(Some("ports=80,8080")), Ok(vec![80, 8080]));
        assert_eq!(requested_ports(Some("port=80&port=80")), Ok(vec![80, 80]));
        assert_eq!(
            requested_ports(None),
            Err("query parameter \"port\" is required".to_owned())
        );
        assert!(requested_ports(Some("ports=0")).is_err());
        assert!(requested_ports(Some("ports=")).is_err());
    }

    #[test]
    fn dial_errors_read_like_containerds() {
        let target = Target {
            ip: "127.0.0.1".parse().unwrap(),
            sandbox: sandbox_id("demo", "web-1"),
        };
        assert_eq!(target.sandbox.len(), 64);
        let text = dial_error(&target, 81, "connect: connection refused");
        assert!(
            text.starts_with("error forwarding port 81 to pod "),
            "{text}"
        );
        assert!(
            text.contains(", uid : failed to execute portforward"),
            "{text}"
        );
        assert!(
            text.contains("dial tcp4 127.0.0.1:81: connect: connection refused"),
            "{text}"
        );
    }
}
