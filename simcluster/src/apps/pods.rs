//! Apps whose pods come and go: what port-forward and load balancing are tested against.
//!
//! - `demo/whoami`: [`WHOAMI_REPLICAS`] pods, each its own listener on its own loopback
//!   address (the pod IP) and the same port (the container port), answering `GET` with its
//!   pod name (`pod=<name>`), `/ws` with a WebSocket echo, over HTTP/1.1 or h2c;
//! - `demo/tcp-echo`: one pod whose port 7 echoes raw bytes back; a connection that opens
//!   with an HTTP request line gets a short HTTP answer instead (as many TCP services answer a
//!   probe), so that the tools that walk every service still get an answer.
//!
//! [`Pods`] keeps each pod's listener, so that a test can delete a pod (its listener and its
//! open connections die, its endpoint goes away) or replace it as a rollout does (a new pod
//! with a new name and address takes its place).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use tokio::task::{AbortHandle, JoinSet};

use super::{App, AppState, PodName, RespFuture, bind, local_addr, serve_app};
use crate::Error;
use crate::body::respond;
use crate::cluster::{ClusterState, PortSpec, Replica, Service};

/// How many pods `demo/whoami` starts with.
pub(crate) const WHOAMI_REPLICAS: usize = 2;

/// The pods' listeners, by pod name.
#[derive(Debug, Default)]
pub(crate) struct Pods {
    tasks: JoinSet<()>,
    listeners: HashMap<String, AbortHandle>,
    /// The last octet of the next pod IP (127.0.1.x).
    next_ip: u8,
}

/// What a pod runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Whoami,
    TcpEcho,
}

impl Pods {
    /// The next pod IP: 127.0.1.2, .3, ... (all loopback on Linux).
    fn next_ip(&mut self) -> IpAddr {
        self.next_ip = self.next_ip.wrapping_add(1).max(2);
        IpAddr::V4(Ipv4Addr::new(127, 0, 1, self.next_ip))
    }

    /// Starts a pod of `kind` named `pod` listening on `port` (0: any) at a fresh address.
    async fn start(
        &mut self,
        kind: Kind,
        pod: &str,
        port: u16,
        state: &Arc<AppState>,
    ) -> Result<SocketAddr, Error> {
        // A fresh address whose `port` is free (another process may hold it on one of them).
        let mut last = None;
        for _ in 0..16u8 {
            let ip = self.next_ip();
            match bind(SocketAddr::new(ip, port)).await {
                Ok(listener) => {
                    let addr = local_addr(&listener)?;
                    let handle = match kind {
                        Kind::Whoami => {
                            let app = App {
                                label: Arc::new("demo/whoami:http".to_owned()),
                                pod: Some(Arc::from(pod)),
                                tls: None,
                                handler: whoami,
                                state: state.clone(),
                            };
                            self.tasks.spawn(serve_app(listener, app))
                        }
                        Kind::TcpEcho => self.tasks.spawn(tcp_echo(listener)),
                    };
                    self.listeners.insert(pod.to_owned(), handle);
                    return Ok(addr);
                }
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or(Error::InvalidValue {
            value: port.to_string(),
            reason: "no loopback address has this port free",
        }))
    }

    /// Stops `pod`'s listener and drops its open connections; whether it ran.
    pub(crate) fn stop(&mut self, pod: &str) -> bool {
        match self.listeners.remove(pod) {
            Some(handle) => {
                handle.abort();
                true
            }
            None => false,
        }
    }
}

/// `demo/whoami`'s answer: the pod's name, and a WebSocket echo at `/ws`.
fn whoami(req: Request<Incoming>, _state: Arc<AppState>) -> RespFuture {
    Box::pin(async move {
        if req.uri().path() == "/ws" {
            return super::ws::websocket_echo(req);
        }
        let pod = req
            .extensions()
            .get::<PodName>()
            .map(|p| p.0.to_string())
            .unwrap_or_default();
        respond(200, "text/plain; charset=utf-8", format!("pod={pod}\n"))
    })
}

/// A raw TCP echo: every byte back, until the client closes (see the module contract for a
/// connection that opens as HTTP).
async fn tcp_echo(listener: tokio::net::TcpListener) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                conns.spawn(echo_connection(tcp));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn echo_connection(tcp: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt as _;
    let mut first = [0u8; 16];
    let seen = tokio::time::timeout(std::time::Duration::from_millis(200), tcp.peek(&mut first))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    if looks_like_http(&first[..seen]) {
        let mut tcp = tcp;
        let body = "tcp-echo: open a raw TCP connection; every byte comes back\n";
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tcp.write_all(answer.as_bytes()).await;
        let _ = tcp.shutdown().await;
        return;
    }
    let (mut read, mut write) = tcp.into_split();
    let _ = tokio::io::copy(&mut read, &mut write).await;
    let _ = write.shutdown().await;
}

/// An HTTP/1 request line's start: a method of capitals, a space, a `/` or `*`.
fn looks_like_http(head: &[u8]) -> bool {
    let Some(space) = head.iter().position(|&b| b == b' ') else {
        return false;
    };
    space > 0
        && head[..space].iter().all(u8::is_ascii_uppercase)
        && matches!(head.get(space + 1), Some(b'/' | b'*'))
}

fn whoami_service() -> Service {
    let mut svc = super::super::sample::service(
        "demo",
        "whoami",
        vec![("app".to_owned(), "whoami".to_owned())],
        Vec::new(),
        None,
    );
    svc.cluster_ip = "10.96.40.1".to_owned();
    svc
}

/// Starts `demo/whoami` and `demo/tcp-echo` and registers their services and pods.
pub(crate) async fn start(
    pods: &mut Pods,
    cluster: &mut ClusterState,
    state: &Arc<AppState>,
) -> Result<(), Error> {
    let mut whoami = whoami_service();
    let mut port = 0;
    for n in 0..WHOAMI_REPLICAS {
        let name = whoami.pod_name(n);
        let addr = pods.start(Kind::Whoami, &name, port, state).await?;
        port = addr.port();
        whoami.replicas.push(Replica {
            pod: name,
            ip: addr.ip(),
            ready: true,
        });
    }
    whoami.ports = vec![PortSpec {
        name: "http".to_owned(),
        port: 80,
        protocol: "TCP",
        target: port,
    }];
    cluster.upsert_service(whoami);

    let mut echo = super::super::sample::service(
        "demo",
        "tcp-echo",
        vec![("app".to_owned(), "tcp-echo".to_owned())],
        Vec::new(),
        None,
    );
    echo.cluster_ip = "10.96.40.2".to_owned();
    let name = echo.pod_name(0);
    let addr = pods.start(Kind::TcpEcho, &name, 0, state).await?;
    echo.replicas.push(Replica {
        pod: name,
        ip: addr.ip(),
        ready: true,
    });
    echo.ports = vec![PortSpec {
        name: "echo".to_owned(),
        port: 7,
        protocol: "TCP",
        target: addr.port(),
    }];
    cluster.upsert_service(echo);
    Ok(())
}

/// Starts a new pod for the service that `pod` belonged to (same container port, new name and
/// address), as a ReplicaSet does after a pod is deleted: the new pod's name.
pub(crate) async fn replacement(
    pods: &mut Pods,
    svc: &Service,
    state: &Arc<AppState>,
) -> Result<Replica, Error> {
    let kind = if svc.name == "tcp-echo" {
        Kind::TcpEcho
    } else {
        Kind::Whoami
    };
    let port = svc.ports.first().map_or(0, |p| p.target);
    let mut n = svc.replicas.len();
    let name = loop {
        let name = svc.pod_name(n);
        if !pods.listeners.contains_key(&name) && !svc.replicas.iter().any(|r| r.pod == name) {
            break name;
        }
        n += 1;
    };
    let addr = pods.start(kind, &name, port, state).await?;
    Ok(Replica {
        pod: name,
        ip: addr.ip(),
        ready: true,
    })
}
