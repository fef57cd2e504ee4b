//! Hostile clients against the real `kgate proxy` binary, over raw sockets: slowloris and idle
//! connections (header read timeout), oversized heads and URLs (431, 414), request smuggling
//! (what hyper refuses, and `Transfer-Encoding` with `Content-Length`: 400, nothing sent on),
//! a connection cap with no file-descriptor leak, pipelined-request and WebSocket floods in
//! bounded memory, and no CORS grant to a cross-origin page. The limits themselves are
//! documented in `gateway/src/limits.rs`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use tests::cluster::Cluster;
use tests::http::{Req, send};
use tests::proc::kgate_bin;

/// Generous bound for anything the test waits on; a loaded CI machine is slow, never this slow.
const PATIENCE: Duration = Duration::from_secs(90);

/// `kgate proxy` with extra environment (the `KGATE_*` limits); killed on drop.
struct Kgate {
    child: Child,
    addr: SocketAddr,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Kgate {
    fn start(cluster: &Cluster, env: &[(&str, &str)]) -> Kgate {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("stderr");
        let mut child = Command::new(kgate_bin())
            .arg("proxy")
            .arg(format!("--kubeconfig={}", cluster.kubeconfig.display()))
            .arg("--port=0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let Some(addr) = line.trim().strip_prefix("Starting to serve on ") else {
            let _ = child.kill();
            panic!(
                "kgate did not start: {line:?}\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        };
        Kgate {
            addr: addr.parse().unwrap(),
            child,
            stderr,
            _dir: dir,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Open file descriptors of the process.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Waits until the descriptor count is at most `limit`; the last count seen.
    async fn wait_fds_at_most(&self, limit: usize) -> usize {
        let mut seen = self.fds();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while seen > limit && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            seen = self.fds();
        }
        seen
    }
}

impl Drop for Kgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `bytes` and reads until the server closes (bounded by [`PATIENCE`]).
async fn exchange_raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    read_until_closed(&mut s).await
}

async fn read_until_closed(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16384];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("the server neither answered nor closed the connection");
    String::from_utf8_lossy(&out).into_owned()
}

/// Every status line in a byte stream of responses (a body need not end in a line break).
/// The API server's count of received bytes once it has not moved for half a second (the
/// gateway's pooled HTTP/2 connection still acknowledges earlier answers for a moment).
async fn settled_bytes(cluster: &Cluster) -> u64 {
    let mut last = cluster.sim.received_bytes();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = cluster.sim.received_bytes();
        if now == last {
            return now;
        }
        last = now;
    }
}

fn status_lines(answer: &str) -> Vec<&str> {
    answer
        .match_indices("HTTP/1.")
        .filter_map(|(at, _)| answer[at..].split("\r\n").next())
        .filter(|line| {
            let code = line.get(9..12).unwrap_or("");
            line.get(8..9) == Some(" ") && code.bytes().all(|b| b.is_ascii_digit())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_and_idle_connections_are_closed_by_the_header_timeout() {
    let cluster = Cluster::start().await;
    let kgate = Kgate::start(&cluster, &[("KGATE_HEADER_READ_TIMEOUT", "2s")]);

    // An idle connection that never sends a byte.
    let mut idle = TcpStream::connect(kgate.addr).await.unwrap();
    // A slowloris: a head that grows by one header every 300 ms and never ends. The timeout
    // is for the whole head, so steady trickling does not keep it alive.
    let mut slow = TcpStream::connect(kgate.addr).await.unwrap();
    slow.write_all(b"GET /api HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let trickle = async {
        for i in 0..1000 {
            if slow
                .write_all(format!("X-Slow-{i}: x\r\n").as_bytes())
                .await
                .is_err()
            {
                return i;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            // Closed by the server: a read returns end of input.
            let mut b = [0u8; 64];
            if let Ok(Ok(0)) =
                tokio::time::timeout(Duration::from_millis(1), slow.read(&mut b)).await
            {
                return i;
            }
        }
        panic!("a slowloris head was kept open for 300 s");
    };
    let sent = tokio::time::timeout(PATIENCE, trickle)
        .await
        .expect("slowloris still connected");
    assert!(sent < 1000);
    assert_eq!(
        read_until_closed(&mut idle).await,
        "",
        "an idle connection got bytes"
    );

    // A keep-alive connection is closed once idle past the timeout after a complete request,
    // and normal clients are served meanwhile.
    let mut keep = TcpStream::connect(kgate.addr).await.unwrap();
    keep.write_all(b"GET /api HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut keep).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let reply = send(kgate.addr, &Req::get("/api")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_heads_get_431_and_long_urls_414_with_default_limits() {
    let cluster = Cluster::start().await;
    let kgate = Kgate::start(&cluster, &[]);

    // Within the limits: a 12 KiB cookie and a 12 KiB query pass. (Bigger ones pass kgate's
    // limits too, but simcluster's HTTP/2 server, like hyper's default, takes at most 16 KiB
    // of headers per request.)
    let cookie = format!("a={}", "c".repeat(12 * 1024));
    let reply = send(kgate.addr, &Req::get("/api").header("Cookie", &cookie)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let target = format!("/api?x={}", "q".repeat(12 * 1024));
    let reply = send(kgate.addr, &Req::get(&target)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // A head over 256 KiB.
    let big = format!(
        "GET /api HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "b".repeat(300 * 1024)
    );
    let answer = exchange_raw(kgate.addr, big.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large"),
        "{answer:.200}"
    );
    // More than 100 header lines.
    let mut many = String::from("GET /api HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..150 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let answer = exchange_raw(kgate.addr, many.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.200}");
    // A URL over 64 KiB.
    let long = format!(
        "GET /api?x={} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "u".repeat(70 * 1024)
    );
    let answer = exchange_raw(kgate.addr, long.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 414 URI Too Long"),
        "{answer:.200}"
    );

    // A simple client writes its whole 16 MiB head (more than the sockets' buffers hold)
    // before it reads. Without the lingering
    // close its writes would fail with a reset once kgate stopped reading, and it would never
    // see the answer; with it, kgate drains the rest and the client reads the 431.
    let mut s = TcpStream::connect(kgate.addr).await.unwrap();
    let flood = async {
        s.write_all(b"GET /api HTTP/1.1\r\nHost: localhost\r\nX-Flood: ")
            .await?;
        let chunk = vec![b'f'; 64 * 1024];
        for _ in 0..256 {
            s.write_all(&chunk).await?;
        }
        s.write_all(b"\r\n\r\n").await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&out).into_owned())
    };
    let answer = tokio::time::timeout(PATIENCE, flood)
        .await
        .expect("flooding client hung")
        .expect("the connection was reset under the flooding client");
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "the 431 was lost: {answer:.200}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn smuggling_attempts_are_refused_or_cannot_smuggle() {
    let cluster = Cluster::start().await;
    let kgate = Kgate::start(&cluster, &[]);
    let upload = "/api/v1/namespaces/demo/services/bulk:http/proxy/upload";

    // Refused by hyper with 400 and a close: each would let two parsers disagree on where
    // the body ends.
    let refused: &[(&str, String)] = &[
        (
            "two different Content-Length",
            format!(
                "POST {upload} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
            ),
        ),
        (
            "a Content-Length list",
            format!(
                "POST {upload} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5, 6\r\n\r\nhello!"
            ),
        ),
        (
            "a signed Content-Length",
            format!("POST {upload} HTTP/1.1\r\nHost: localhost\r\nContent-Length: +5\r\n\r\nhello"),
        ),
        (
            "Transfer-Encoding in HTTP/1.0",
            format!(
                "POST {upload} HTTP/1.0\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            ),
        ),
        (
            "a Transfer-Encoding that does not end in chunked",
            format!(
                "POST {upload} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            ),
        ),
        (
            "an unknown Transfer-Encoding",
            format!(
                "POST {upload} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            ),
        ),
        (
            "white space before the colon",
            format!(
                "POST {upload} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            ),
        ),
        (
            "a bare CR inside a header",
            format!(
                "POST {upload} HTTP/1.1\r\nHost: localhost\r\nX-A: a\rTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello"
            ),
        ),
        (
            "a NUL inside a header value",
            format!(
                "POST {upload} HTTP/1.1\r\nHost: localhost\r\nX-A: a\0b\r\nContent-Length: 5\r\n\r\nhello"
            ),
        ),
        (
            "an obsolete folded header",
            format!(
                "POST {upload} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: identity\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            ),
        ),
    ];
    for (what, request) in refused {
        let smuggled = format!("{request}GET /api HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let answer = exchange_raw(kgate.addr, smuggled.as_bytes()).await;
        let statuses = status_lines(&answer);
        assert!(
            !statuses.is_empty() && statuses[0].starts_with("HTTP/1.1 400"),
            "{what}: {answer:.300}"
        );
        assert_eq!(
            statuses.len(),
            1,
            "{what}: a request after it was answered: {answer:.600}"
        );
    }

    // A bad chunk size is found after the head was admitted, while the body streams: the
    // request fails (its answer, if any, is an error) and nothing after it is read.
    let bad_chunk = format!(
        "POST {upload} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\nGET /api HTTP/1.1\r\nHost: localhost\r\n\r\n"
    );
    let answer = exchange_raw(kgate.addr, bad_chunk.as_bytes()).await;
    let statuses = status_lines(&answer);
    assert!(statuses.len() <= 1, "{answer:.600}");
    assert!(
        statuses.iter().all(|s| !s.starts_with("HTTP/1.1 2")),
        "{answer:.600}"
    );

    // Both Content-Length and Transfer-Encoding: refused with 400 and a close (as nginx since
    // 1.21.1), in either order of the two fields, before a byte reaches the API server; so
    // the request hidden where a Content-Length reader would look for the next one, or in
    // the chunked body, is never served.
    cluster.sim.clear_request_log();
    let hidden = "GET /api/v1/namespaces/demo/services/bulk:http/proxy/hidden HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let both = [
        format!(
            "POST {upload} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}",
            5 + hidden.len()
        ),
        format!(
            "POST {upload} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n{:x}\r\n{hidden}\r\n0\r\n\r\n",
            hidden.len()
        ),
        // After an ordinary request on the same connection, too.
        format!(
            "GET /api HTTP/1.1\r\nHost: localhost\r\n\r\nPOST {upload} HTTP/1.1\r\nHost: localhost\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n{hidden}"
        ),
    ];
    for (i, request) in both.iter().enumerate() {
        let before = settled_bytes(&cluster).await;
        let answer = exchange_raw(kgate.addr, request.as_bytes()).await;
        let statuses = status_lines(&answer);
        let last = statuses.last().copied().unwrap_or_default();
        assert!(last.starts_with("HTTP/1.1 400"), "case {i}: {answer:.600}");
        assert_eq!(
            statuses.len(),
            1 + usize::from(i == 2),
            "case {i}: {answer:.600}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "case {i}: {answer:.600}"
        );
        assert!(
            answer.contains("Content-Length and Transfer-Encoding"),
            "{answer:.600}"
        );
        if i < 2 {
            assert_eq!(
                settled_bytes(&cluster).await,
                before,
                "case {i}: bytes of a refused request reached the API server"
            );
        }
    }
    assert_eq!(cluster.sim.last_upload_bytes(), 0, "no upload was served");
    assert!(
        !cluster
            .sim
            .request_log()
            .iter()
            .any(|r| format!("{r:?}").contains("/hidden")),
        "the hidden request reached the service"
    );

    // Normal clients are unaffected: a chunked upload, then a pipelined keep-alive pair.
    let ok = format!(
        "POST {upload} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
         GET /api HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    );
    let answer = exchange_raw(kgate.addr, ok.as_bytes()).await;
    let statuses = status_lines(&answer);
    assert_eq!(
        statuses,
        vec!["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"],
        "{answer:.600}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_cap_holds_and_descriptors_are_released() {
    const CAP: usize = 16;
    let cluster = Cluster::start().await;
    let kgate = Kgate::start(
        &cluster,
        &[
            ("KGATE_MAX_CONNECTIONS", "16"),
            ("KGATE_HEADER_READ_TIMEOUT", "0"),
        ],
    );
    // Warm up (the pooled API server connection exists), then take the baseline.
    let reply = send(kgate.addr, &Req::get("/api/v1/namespaces")).await;
    assert_eq!(reply.status, 200);
    let baseline = kgate.fds();

    // Many idle connections: the kernel completes them all (listen backlog), kgate accepts
    // only up to the cap.
    let mut idle = Vec::new();
    for _ in 0..4 * CAP {
        idle.push(TcpStream::connect(kgate.addr).await.unwrap());
    }
    // kgate takes connections up to the cap, then holds there.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while kgate.fds() < baseline + CAP && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..20 {
        let held = kgate.fds();
        assert!(
            held <= baseline + CAP,
            "{held} descriptors with {} idle connections (baseline {baseline}, cap {CAP})",
            idle.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // A request waiting behind the cap is served once the idle connections go away.
    let addr = kgate.addr;
    let waiting = tokio::spawn(async move { send(addr, &Req::get("/api")).await });
    drop(idle);
    let reply = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("the waiting request was never served")
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let _ = cluster;
}

#[tokio::test(flavor = "multi_thread")]
async fn aborted_and_garbage_connections_leak_no_descriptors() {
    let cluster = Cluster::start().await;
    let kgate = Kgate::start(&cluster, &[]);
    let reply = send(kgate.addr, &Req::get("/api/v1/namespaces")).await;
    assert_eq!(reply.status, 200);
    let baseline = kgate.fds();
    for round in 0..200 {
        let mut s = TcpStream::connect(kgate.addr).await.unwrap();
        match round % 5 {
            // Garbage.
            0 => {
                let _ = s.write_all(b"\x16\x03\x01\x00\xa5 not http\r\n\r\n").await;
                let _ = read_until_closed(&mut s).await;
            }
            // Half a head, then gone.
            1 => {
                let _ = s.write_all(b"GET /api HTTP/1.1\r\nHo").await;
            }
            // A streaming response abandoned in the middle.
            2 => {
                let _ = s
                    .write_all(b"GET /api/v1/namespaces/demo/services/bulk:http/proxy/bytes/50000000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    .await;
                let mut b = vec![0u8; 65536];
                let _ = s.read(&mut b).await;
            }
            // An upload abandoned in the middle.
            3 => {
                let _ = s
                    .write_all(b"POST /api/v1/namespaces/demo/services/bulk:http/proxy/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\npartial")
                    .await;
            }
            // A WebSocket upgrade, dropped at once.
            _ => {
                let _ = s
                    .write_all(b"GET /api/v1/namespaces/demo/services/shop:http/proxy/ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
                    .await;
                let mut b = vec![0u8; 1024];
                let _ = s.read(&mut b).await;
            }
        }
        drop(s);
    }
    // Pooled upstream connections may differ by a few; 200 leaked sockets would not.
    let after = kgate.wait_fds_at_most(baseline + 4).await;
    assert!(
        after <= baseline + 4,
        "{after} descriptors after 200 abandoned connections (baseline {baseline})"
    );
    let reply = send(kgate.addr, &Req::get("/api")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(!kgate.stderr().contains("panicked"), "{}", kgate.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_floods_stay_in_bounded_memory() {
    const FLOOD: usize = 32 << 20;
    let cluster = Cluster::start().await;
    let kgate = Kgate::start(&cluster, &[]);
    let url = format!(
        "ws://localhost:{}/api/v1/namespaces/demo/services/shop:http/proxy/ws",
        kgate.addr.port()
    );

    // A full-duplex flood: 32 MiB each way through the tunnel.
    let tcp = TcpStream::connect(kgate.addr).await.unwrap();
    let (ws, response) = tokio_tungstenite::client_async(url.as_str(), tcp)
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    let (mut tx, mut rx) = ws.split();
    let reader = tokio::spawn(async move {
        let mut got = 0usize;
        while got < FLOOD {
            match rx.next().await {
                Some(Ok(m)) => got += m.len(),
                _ => break,
            }
        }
        got
    });
    let frame = vec![0x5au8; 64 * 1024];
    for _ in 0..FLOOD / frame.len() {
        tx.send(Message::binary(frame.clone())).await.unwrap();
    }
    let got = tokio::time::timeout(PATIENCE, reader)
        .await
        .expect("echo flood stalled")
        .unwrap();
    assert_eq!(got, FLOOD);

    // A client that floods and never reads: back-pressure must stop it, not kgate's memory.
    let tcp = TcpStream::connect(kgate.addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tcp)
        .await
        .unwrap();
    let mut sent = 0usize;
    while sent < FLOOD {
        match tokio::time::timeout(
            Duration::from_secs(5),
            ws.send(Message::binary(frame.clone())),
        )
        .await
        {
            Ok(Ok(())) => sent += frame.len(),
            // Blocked by back-pressure (or refused): what this part is about.
            _ => break,
        }
    }
    let peak = kgate.peak_rss_kib();
    assert!(
        peak < 64 * 1024,
        "kgate peak RSS {peak} KiB after WebSocket floods ({} MiB unread)",
        sent >> 20
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_origin_pages_get_no_cors_grant() {
    let cluster = Cluster::start().await;
    let kgate = Kgate::start(&cluster, &[]);
    // What a page on evil.example makes the browser send: a simple request (refused outright:
    // no web page may use the API), then a preflight.
    let reply = send(
        kgate.addr,
        &Req::get("/api/v1/namespaces").header("Origin", "https://evil.example"),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    let preflight = Req::get("/api/v1/namespaces/default/pods")
        .method("OPTIONS")
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "DELETE");
    let answers = [reply, send(kgate.addr, &preflight).await];
    for answer in answers {
        let grants: Vec<_> = answer
            .headers
            .iter()
            .filter(|(k, _)| k.starts_with("access-control-allow-"))
            .collect();
        assert!(
            grants.is_empty(),
            "a cross-origin page may read the answer: {grants:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_site_writes_and_upgrades_are_refused_before_the_api_server_sees_a_byte() {
    let cluster = Cluster::start().await;
    let kgate = Kgate::start(&cluster, &[]);
    // Warm: the pooled connection to the API server exists before counting.
    let warm = exchange_raw(
        kgate.addr,
        b"GET /api HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(warm.starts_with("HTTP/1.1 200"), "{warm:.300}");
    let cases = [
        (
            "a cross-site POST",
            "POST /api/v1/namespaces/demo/pods HTTP/1.1\r\nHost: localhost\r\n\
             Origin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\
             Connection: close\r\n\r\n{}",
            "rule cross-site-write",
        ),
        (
            "a cross-site WebSocket upgrade",
            "GET /api/v1/namespaces/demo/secrets?watch=true HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Origin: http://evil.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            "rule cross-site-upgrade",
        ),
        (
            "a cross-site SPDY upgrade (exec through the API)",
            "POST /api/v1/namespaces/demo/pods/web/portforward HTTP/1.1\r\nHost: localhost\r\n\
             Origin: http://evil.example\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
             X-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n",
            "rule cross-site-upgrade",
        ),
        (
            "a same-site page reading the API",
            "GET /api/v1/namespaces/demo/secrets HTTP/1.1\r\nHost: localhost\r\n\
             Sec-Fetch-Site: same-site\r\nConnection: close\r\n\r\n",
            "rule cross-site-api",
        ),
    ];
    for (what, request, rule) in cases {
        let before = settled_bytes(&cluster).await;
        let answer = exchange_raw(kgate.addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{what}: {answer:.400}");
        assert!(
            answer.contains("\"kind\":\"Status\""),
            "{what}: {answer:.400}"
        );
        assert!(answer.contains(rule), "{what}: {answer:.600}");
        assert_eq!(
            settled_bytes(&cluster).await,
            before,
            "{what}: bytes of the refused request reached the API server"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pipelined_request_flood_is_answered_in_bounded_memory() {
    const REQUESTS: usize = 5000;
    let cluster = Cluster::start().await;
    let kgate = Kgate::start(&cluster, &[]);
    let mut s = TcpStream::connect(kgate.addr).await.unwrap();
    let (mut rd, mut wr) = s.split();
    // Every request written at once, without waiting for answers: kgate reads the next request
    // only after answering the previous one, so a flood costs it no memory.
    let write = async {
        let mut flood = Vec::new();
        for i in 0..REQUESTS {
            flood.extend_from_slice(
                format!("GET /api?n={i} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
            );
        }
        flood.extend_from_slice(
            b"GET /api HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        wr.write_all(&flood).await.unwrap();
    };
    let read = async {
        let mut out = Vec::new();
        rd.read_to_end(&mut out).await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    };
    let ((), answers) = tokio::time::timeout(PATIENCE * 2, async { tokio::join!(write, read) })
        .await
        .expect("pipelined flood stalled");
    let statuses = status_lines(&answers);
    assert_eq!(statuses.len(), REQUESTS + 1);
    assert!(statuses.iter().all(|s| *s == "HTTP/1.1 200 OK"));
    let peak = kgate.peak_rss_kib();
    assert!(peak < 64 * 1024, "kgate peak RSS {peak} KiB");
}
