//! A small headless-Chromium driver over the Chrome DevTools Protocol (CDP), for end-to-end tests.
//!
//! Contract:
//! - [`Browser::launch`] starts the machine's Chromium (`KGATE_CHROMIUM`, else `chromium`,
//!   `chromium-browser`, `google-chrome` on `PATH`) headless, with a fresh profile in a temporary
//!   directory and `--remote-debugging-port=0`, reads the port Chromium chose from
//!   `DevToolsActivePort` in that profile, and speaks CDP over one WebSocket to the browser
//!   target (pages are attached in "flatten" mode, so every page shares that socket and is told
//!   apart by its `sessionId`). It returns `Ok(None)` when no Chromium is installed, so a test can
//!   skip with a visible message; any other failure is an error.
//! - Every protocol call, navigation and wait is bounded by a timeout, so a hung browser makes a
//!   test fail with a message instead of hanging CI.
//! - Each [`Page`] records what a person would see in the developer tools: every request with its
//!   status or failure ([`Page::requests`]), WebSockets ([`Page::websockets`]) and console
//!   messages and uncaught exceptions ([`Page::console`], [`Page::console_errors`]).
//! - Dropping the [`Browser`] kills Chromium's whole process group and removes the profile;
//!   [`Browser::close`] asks Chromium to exit first, which is gentler.
//!
//! - A JavaScript dialog (`alert`, `confirm`) is accepted at once, so it cannot block a test;
//!   its text is recorded in the console log with level `dialog`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tests::browser::BrowserError> {
//! use std::time::Duration;
//! let Some(browser) = tests::browser::Browser::launch().await? else {
//!     eprintln!("SKIPPED: Chromium is not installed");
//!     return Ok(());
//! };
//! let page = browser.new_page().await?;
//! page.goto("http://shop.demo.svc.localhost:8001/").await?;
//! page.wait_for("document.querySelector('#data').textContent.includes('teapot')", Duration::from_secs(5)).await?;
//! let failed: Vec<_> = page.requests().into_iter().filter(|r| !r.ok()).collect();
//! assert!(failed.is_empty(), "{failed:#?}");
//! page.screenshot_png("target/screenshots/shop.png").await?;
//! # Ok(())
//! # }
//! ```
//!
//! The flags are the ones that make headless Chromium work as root on a machine whose only
//! network is loopback: `--no-sandbox` (root), and no background networking, component updates,
//! sync or QUIC (each otherwise tries to reach Google's hosts at start-up).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// The flags every launch uses (see the module docs for why each is there).
const BASE_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--password-store=basic",
    "--use-mock-keychain",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
];

/// How often waits poll the page or the profile directory.
const POLL: Duration = Duration::from_millis(25);

/// What went wrong while driving Chromium.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// The executable exists but could not be started.
    #[error(
        "could not start Chromium at {path}: {source}; check that it runs (`{path} --version`)"
    )]
    Spawn {
        /// The executable.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A local file operation failed (the profile directory, a screenshot).
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Chromium exited before it opened its DevTools port.
    #[error(
        "Chromium exited ({status}) before opening its DevTools port; its output ends with:\n{log}"
    )]
    Exited {
        /// The exit status.
        status: String,
        /// The end of Chromium's stderr.
        log: String,
    },
    /// Chromium did not open its DevTools port in time.
    #[error(
        "Chromium did not write DevToolsActivePort within {after:?}; its output ends with:\n{log}"
    )]
    StartTimeout {
        /// How long we waited.
        after: Duration,
        /// The end of Chromium's stderr.
        log: String,
    },
    /// The DevTools WebSocket could not be opened or broke.
    #[error("DevTools WebSocket {url}: {source}")]
    WebSocket {
        /// The WebSocket URL.
        url: String,
        /// The WebSocket error.
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// The connection to Chromium is closed (it exited or crashed).
    #[error(
        "the DevTools connection to Chromium is closed (did Chromium crash?) while calling {method}"
    )]
    Closed {
        /// The protocol method that was in flight.
        method: String,
    },
    /// Chromium answered a protocol call with an error.
    #[error("DevTools {method} failed: {message} (code {code})")]
    Protocol {
        /// The protocol method.
        method: String,
        /// CDP's error code.
        code: i64,
        /// CDP's error message.
        message: String,
    },
    /// Chromium's answer did not have the expected shape.
    #[error("DevTools {method} answered something unexpected: {detail}")]
    BadResponse {
        /// The protocol method.
        method: String,
        /// What was wrong.
        detail: String,
    },
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What we waited for (and, for conditions, the last value or error seen).
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// A navigation failed at the network level (`net::ERR_...`).
    #[error("navigation to {url} failed: {error_text}")]
    Navigation {
        /// The URL.
        url: String,
        /// Chromium's error, such as `net::ERR_CONNECTION_REFUSED`.
        error_text: String,
    },
    /// JavaScript threw (or a promise rejected) in [`Page::eval`].
    #[error("JavaScript `{expression}` threw: {description}")]
    Js {
        /// The expression, shortened.
        expression: String,
        /// The exception, as the console would print it.
        description: String,
    },
    /// A screenshot was not a well-formed PNG.
    #[error("screenshot is not a valid PNG: {0}")]
    Png(String),
}

/// Shorthand for this module's results.
pub type Result<T, E = BrowserError> = std::result::Result<T, E>;

/// How to start Chromium.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// The Chromium executable; `None` looks it up with [`find_chromium`]. A path that is not
    /// a file counts as "not installed".
    pub executable: Option<PathBuf>,
    /// Width and height in CSS pixels of each new page's viewport (device scale factor 1, so a
    /// screenshot has exactly this size).
    pub viewport: (u32, u32),
    /// How long Chromium may take to open its DevTools port.
    pub startup_timeout: Duration,
    /// The bound on each protocol call, navigation and [`Page::eval`].
    pub call_timeout: Duration,
    /// More command-line flags (for example `--host-resolver-rules=...`).
    pub extra_args: Vec<String>,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        Self {
            executable: None,
            viewport: (1280, 800),
            startup_timeout: Duration::from_secs(60),
            call_timeout: Duration::from_secs(10),
            extra_args: Vec::new(),
        }
    }
}

/// The Chromium executable to use: `KGATE_CHROMIUM` if set, else the first of `chromium`,
/// `chromium-browser`, `google-chrome`, `google-chrome-stable` found on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KGATE_CHROMIUM") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let dirs = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&dirs).map(move |dir| dir.join(name)))
    .find(|candidate| candidate.is_file())
}

/// A running headless Chromium. Dropping it kills Chromium and removes its profile.
pub struct Browser {
    child: Child,
    conn: Arc<Conn>,
    tasks: Vec<JoinHandle<()>>,
    options: LaunchOptions,
    executable: PathBuf,
    version: String,
    port: u16,
    // Dropped last (after Chromium is dead): the profile and Chromium's log.
    dir: tempfile::TempDir,
}

impl fmt::Debug for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Browser")
            .field("executable", &self.executable)
            .field("version", &self.version)
            .field("pid", &self.child.id())
            .field("devtools_port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts headless Chromium with [`LaunchOptions::default`]; `Ok(None)` when none is
    /// installed (see [`find_chromium`]).
    pub async fn launch() -> Result<Option<Self>> {
        Self::launch_with(LaunchOptions::default()).await
    }

    /// Starts headless Chromium with `options`; `Ok(None)` when none is installed.
    pub async fn launch_with(options: LaunchOptions) -> Result<Option<Self>> {
        let executable = match &options.executable {
            Some(path) => path.is_file().then(|| path.clone()),
            None => find_chromium(),
        };
        let Some(executable) = executable else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new()
            .prefix("kgate-chromium-")
            .tempdir()
            .map_err(|source| BrowserError::Io {
                what: "creating a temporary profile directory in",
                path: std::env::temp_dir(),
                source,
            })?;
        let profile = dir.path().join("profile");
        let log_path = dir.path().join("chromium.log");
        let log = std::fs::File::create(&log_path).map_err(|source| BrowserError::Io {
            what: "creating",
            path: log_path.clone(),
            source,
        })?;
        let log_err = log.try_clone().map_err(|source| BrowserError::Io {
            what: "duplicating the handle of",
            path: log_path.clone(),
            source,
        })?;
        let (width, height) = options.viewport;
        let child = Command::new(&executable)
            .args(BASE_FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--window-size={width},{height}"))
            .args(&options.extra_args)
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group, so that Drop can end Chromium's helpers with it.
            .process_group(0)
            .spawn()
            .map_err(|source| BrowserError::Spawn {
                path: executable.clone(),
                source,
            })?;
        // From here on, `guard` kills Chromium if launching fails half-way.
        let mut guard = ChildGuard(Some(child));
        let (port, ws_path) =
            wait_for_devtools_port(&mut guard, &profile, &log_path, options.startup_timeout)
                .await?;
        let url = format!("ws://127.0.0.1:{port}{ws_path}");
        let (socket, _) = tokio::time::timeout(
            options.call_timeout,
            tokio_tungstenite::connect_async(url.as_str()),
        )
        .await
        .map_err(|_| BrowserError::Timeout {
            what: format!("the DevTools WebSocket {url}"),
            after: options.call_timeout,
        })?
        .map_err(|source| BrowserError::WebSocket {
            url: url.clone(),
            source: Box::new(source),
        })?;
        let (conn, tasks) = Conn::start(socket, options.call_timeout);
        let version = conn.call(None, "Browser.getVersion", json!({})).await?;
        let version = version["product"].as_str().unwrap_or_default().to_owned();
        let Some(child) = guard.0.take() else {
            return Err(BrowserError::Closed {
                method: "launch".to_owned(),
            });
        };
        Ok(Some(Self {
            child,
            conn,
            tasks,
            options,
            executable,
            version,
            port,
            dir,
        }))
    }

    /// Chromium's product string, such as `HeadlessChrome/156.0.8078.79`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The executable that was started.
    pub fn executable(&self) -> &Path {
        &self.executable
    }

    /// Chromium's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The profile directory (`--user-data-dir`); removed on drop.
    pub fn profile_dir(&self) -> PathBuf {
        self.dir.path().join("profile")
    }

    /// Opens a new tab on `about:blank`, attached and with the Page, Network, Runtime and Log
    /// domains enabled, so that its log starts with its first request.
    pub async fn new_page(&self) -> Result<Page> {
        let target = self
            .conn
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await?;
        let target_id = str_field(&target, "targetId", "Target.createTarget")?;
        let attached = self
            .conn
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        let session_id = str_field(&attached, "sessionId", "Target.attachToTarget")?;
        let state = Arc::new(PageState::default());
        lock(&self.conn.sessions).insert(session_id.clone(), Arc::clone(&state));
        let page = Page {
            conn: Arc::clone(&self.conn),
            session_id,
            target_id,
            state,
            call_timeout: self.options.call_timeout,
        };
        let (width, height) = self.options.viewport;
        for (method, params) in [
            ("Page.enable", json!({})),
            ("Page.setLifecycleEventsEnabled", json!({ "enabled": true })),
            ("Network.enable", json!({})),
            ("Runtime.enable", json!({})),
            ("Log.enable", json!({})),
            (
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
            ),
        ] {
            page.call(method, params).await?;
        }
        Ok(page)
    }

    /// Every cookie in the browser's cookie jar (all sites).
    pub async fn all_cookies(&self) -> Result<Vec<Cookie>> {
        let value = self
            .conn
            .call(None, "Storage.getCookies", json!({}))
            .await?;
        parse_cookies(value, "Storage.getCookies")
    }

    /// Asks Chromium to exit and waits (bounded) for it; Drop then only removes the profile.
    pub async fn close(mut self) -> Result<()> {
        // Chromium may drop the connection before answering: either outcome means it is going.
        let _ = self.conn.call(None, "Browser.close", json!({})).await;
        let deadline = Instant::now() + self.options.call_timeout;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
        Err(BrowserError::Timeout {
            what: "Chromium to exit after Browser.close (it is killed now)".to_owned(),
            after: self.options.call_timeout,
        })
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        kill_group(&mut self.child);
        // `dir` is removed after this, with Chromium gone.
    }
}

/// Kills Chromium's process group (it was started as a group leader, so its pid is the group
/// id), then the process itself, and reaps it.
fn kill_group(child: &mut Child) {
    if matches!(child.try_wait(), Ok(None)) {
        let group = format!("-{}", child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", group.as_str()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Kills a Chromium that has not been handed to a [`Browser`] yet.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            kill_group(child);
        }
    }
}

/// Waits for Chromium to write `DevToolsActivePort` (the port on the first line, the browser
/// target's WebSocket path on the second), watching for an early exit.
async fn wait_for_devtools_port(
    guard: &mut ChildGuard,
    profile: &Path,
    log_path: &Path,
    timeout: Duration,
) -> Result<(u16, String)> {
    let file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next())
                && let Ok(port) = port.trim().parse::<u16>()
                && path.starts_with("/devtools/browser/")
            {
                return Ok((port, path.trim().to_owned()));
            }
        }
        if let Some(child) = guard.0.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            return Err(BrowserError::Exited {
                status: status.to_string(),
                log: log_tail(log_path),
            });
        }
        if Instant::now() >= deadline {
            return Err(BrowserError::StartTimeout {
                after: timeout,
                log: log_tail(log_path),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The last few lines of Chromium's output, for error messages.
fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// A request as the Network panel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The URL requested.
    pub url: String,
    /// The method.
    pub method: String,
    /// CDP's resource type: `Document`, `Stylesheet`, `Script`, `Image`, `Fetch`, `XHR`, ...
    pub resource_type: String,
    /// The response status, once headers arrived (a redirect is its own entry, with its 3xx).
    pub status: Option<u16>,
    /// The response's `Location` header, for redirects.
    pub location: Option<String>,
    /// Why the load failed (`net::ERR_CONNECTION_REFUSED`, `net::ERR_ABORTED`, ...), if it did.
    pub failure: Option<String>,
    /// Whether the load is over (finished, failed or redirected).
    pub done: bool,
}

impl Request {
    /// Whether it finished with a 2xx status.
    pub fn ok(&self) -> bool {
        self.done && self.failure.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// A WebSocket opened by the page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebSocketLog {
    /// Its `ws:` or `wss:` URL.
    pub url: String,
    /// The handshake's HTTP status (101 when it was accepted).
    pub status: Option<u16>,
    /// Text (or base64 binary) payloads sent by the page.
    pub sent: Vec<String>,
    /// Payloads received by the page.
    pub received: Vec<String>,
    /// Frame or handshake errors Chromium reported.
    pub errors: Vec<String>,
    /// Whether it closed.
    pub closed: bool,
}

/// A console message, uncaught exception or browser log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleMessage {
    /// `error`, `warning`, `log`, `info`, `debug`, ... (`error` for uncaught exceptions).
    pub level: String,
    /// Where it came from: `console`, `exception`, or the Log domain's source (`network`, ...).
    pub source: String,
    /// The text.
    pub text: String,
}

/// A cookie in the browser's jar (CDP's `Network.Cookie`, the fields tests look at).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cookie {
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
    /// The domain (host-only cookies have the bare host).
    pub domain: String,
    /// The path.
    pub path: String,
    /// `HttpOnly`.
    #[serde(default)]
    pub http_only: bool,
    /// `Secure`.
    #[serde(default)]
    pub secure: bool,
    /// `SameSite`, if set.
    #[serde(default)]
    pub same_site: Option<String>,
}

/// What one page's events have told us so far.
#[derive(Default)]
struct PageState {
    log: Mutex<PageLog>,
}

#[derive(Default)]
struct PageLog {
    requests: Vec<Request>,
    /// CDP requestId to the index of its latest entry in `requests`.
    request_index: HashMap<String, usize>,
    websockets: Vec<WebSocketLog>,
    websocket_index: HashMap<String, usize>,
    console: Vec<ConsoleMessage>,
    /// Loader ids whose document fired its `load` lifecycle event.
    loaded: HashSet<String>,
    crashed: bool,
}

impl PageState {
    fn handle(&self, method: &str, params: &Value) {
        let mut log = lock(&self.log);
        let id = params["requestId"].as_str().unwrap_or_default().to_owned();
        match method {
            "Network.requestWillBeSent" => {
                // A redirect reuses the requestId: the previous hop ends with its 3xx.
                if let Some(redirect) = params.get("redirectResponse")
                    && let Some(&index) = log.request_index.get(&id)
                {
                    let entry = &mut log.requests[index];
                    entry.status = status_of(redirect);
                    entry.location = header(redirect, "location");
                    entry.done = true;
                }
                let request = &params["request"];
                let index = log.requests.len();
                log.requests.push(Request {
                    url: str_of(&request["url"]),
                    method: str_of(&request["method"]),
                    resource_type: str_of(&params["type"]),
                    status: None,
                    location: None,
                    failure: None,
                    done: false,
                });
                log.request_index.insert(id, index);
            }
            "Network.responseReceived" => {
                if let Some(&index) = log.request_index.get(&id) {
                    let entry = &mut log.requests[index];
                    entry.status = status_of(&params["response"]);
                    if entry.resource_type.is_empty() {
                        entry.resource_type = str_of(&params["type"]);
                    }
                }
            }
            "Network.loadingFinished" => {
                if let Some(&index) = log.request_index.get(&id) {
                    log.requests[index].done = true;
                }
            }
            "Network.loadingFailed" => {
                if let Some(&index) = log.request_index.get(&id) {
                    let entry = &mut log.requests[index];
                    entry.done = true;
                    let mut failure = str_of(&params["errorText"]);
                    if let Some(reason) = params["blockedReason"].as_str() {
                        failure.push_str(&format!(" (blocked: {reason})"));
                    }
                    entry.failure = Some(failure);
                }
            }
            "Network.webSocketCreated" => {
                let index = log.websockets.len();
                log.websockets.push(WebSocketLog {
                    url: str_of(&params["url"]),
                    ..WebSocketLog::default()
                });
                log.websocket_index.insert(id, index);
            }
            "Network.webSocketHandshakeResponseReceived"
            | "Network.webSocketFrameSent"
            | "Network.webSocketFrameReceived"
            | "Network.webSocketFrameError"
            | "Network.webSocketClosed" => {
                if let Some(&index) = log.websocket_index.get(&id) {
                    let ws = &mut log.websockets[index];
                    match method {
                        "Network.webSocketHandshakeResponseReceived" => {
                            ws.status = status_of(&params["response"]);
                        }
                        "Network.webSocketFrameSent" => {
                            ws.sent.push(str_of(&params["response"]["payloadData"]));
                        }
                        "Network.webSocketFrameReceived" => {
                            ws.received.push(str_of(&params["response"]["payloadData"]));
                        }
                        "Network.webSocketFrameError" => {
                            ws.errors.push(str_of(&params["errorMessage"]));
                        }
                        _ => ws.closed = true,
                    }
                }
            }
            "Runtime.consoleAPICalled" => {
                let text = params["args"]
                    .as_array()
                    .map(|args| args.iter().map(remote_object_text).collect::<Vec<_>>())
                    .unwrap_or_default()
                    .join(" ");
                log.console.push(ConsoleMessage {
                    level: str_of(&params["type"]),
                    source: "console".to_owned(),
                    text,
                });
            }
            "Runtime.exceptionThrown" => {
                let details = &params["exceptionDetails"];
                let text = details["exception"]["description"]
                    .as_str()
                    .map_or_else(|| str_of(&details["text"]), str::to_owned);
                log.console.push(ConsoleMessage {
                    level: "error".to_owned(),
                    source: "exception".to_owned(),
                    text,
                });
            }
            "Log.entryAdded" => {
                let entry = &params["entry"];
                let mut text = str_of(&entry["text"]);
                if let Some(url) = entry["url"].as_str() {
                    text.push_str(&format!(" ({url})"));
                }
                log.console.push(ConsoleMessage {
                    level: str_of(&entry["level"]),
                    source: str_of(&entry["source"]),
                    text,
                });
            }
            "Page.lifecycleEvent" => {
                if params["name"] == "load"
                    && let Some(loader) = params["loaderId"].as_str()
                {
                    log.loaded.insert(loader.to_owned());
                }
            }
            "Page.javascriptDialogOpening" => {
                log.console.push(ConsoleMessage {
                    level: "dialog".to_owned(),
                    source: str_of(&params["type"]),
                    text: str_of(&params["message"]),
                });
            }
            "Inspector.targetCrashed" => log.crashed = true,
            _ => {}
        }
    }
}

fn str_of(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn status_of(response: &Value) -> Option<u16> {
    response["status"]
        .as_u64()
        .or_else(|| response["status"].as_f64().map(|f| f as u64))
        .and_then(|s| u16::try_from(s).ok())
}

/// A response header, whatever its case (CDP keeps the server's spelling).
fn header(response: &Value, name: &str) -> Option<String> {
    response["headers"]
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .and_then(|(_, value)| value.as_str().map(str::to_owned))
}

/// How the console prints a `Runtime.RemoteObject` argument.
fn remote_object_text(object: &Value) -> String {
    match &object["value"] {
        Value::String(s) => s.clone(),
        Value::Null => object["description"]
            .as_str()
            .or_else(|| object["unserializableValue"].as_str())
            .unwrap_or_else(|| object["type"].as_str().unwrap_or_default())
            .to_owned(),
        other => other.to_string(),
    }
}

/// One tab, attached over the browser's DevTools connection.
pub struct Page {
    conn: Arc<Conn>,
    session_id: String,
    target_id: String,
    state: Arc<PageState>,
    call_timeout: Duration,
}

impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Page")
            .field("target_id", &self.target_id)
            .finish_non_exhaustive()
    }
}

impl Page {
    /// Sends one CDP command to this page's session; bounded by the call timeout.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.conn.call(Some(&self.session_id), method, params).await
    }

    /// Navigates to `url` and waits (bounded by the call timeout) for the new document's
    /// `load` event: every image, stylesheet and script it references has then loaded or
    /// failed. HTTP errors (404, 502, ...) are not errors here: look at [`Page::requests`].
    pub async fn goto(&self, url: &str) -> Result<()> {
        let answer = self.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(error_text) = answer["errorText"].as_str().filter(|e| !e.is_empty()) {
            return Err(BrowserError::Navigation {
                url: url.to_owned(),
                error_text: error_text.to_owned(),
            });
        }
        // A same-document navigation (only the fragment changes) has no loader and no load.
        let Some(loader) = answer["loaderId"].as_str() else {
            return Ok(());
        };
        let deadline = Instant::now() + self.call_timeout;
        loop {
            {
                let log = lock(&self.state.log);
                if log.loaded.contains(loader) {
                    return Ok(());
                }
                if log.crashed {
                    return Err(BrowserError::Closed {
                        method: format!("Page.navigate {url} (the tab crashed)"),
                    });
                }
            }
            if Instant::now() >= deadline {
                return Err(BrowserError::Timeout {
                    what: format!("the load event of {url}"),
                    after: self.call_timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Evaluates a JavaScript expression in the page, awaits it if it is a promise, and
    /// returns its value as JSON (`null` for `undefined`). A throw or rejection is
    /// [`BrowserError::Js`].
    pub async fn eval(&self, expression: &str) -> Result<Value> {
        let answer = self
            .call(
                "Runtime.evaluate",
                json!({
                    "expression": expression,
                    "awaitPromise": true,
                    "returnByValue": true,
                    "userGesture": true,
                }),
            )
            .await?;
        if let Some(details) = answer.get("exceptionDetails") {
            let description = details["exception"]["description"]
                .as_str()
                .or_else(|| details["exception"]["value"].as_str())
                .map_or_else(|| str_of(&details["text"]), str::to_owned);
            return Err(BrowserError::Js {
                expression: shorten(expression),
                description,
            });
        }
        Ok(answer["result"]["value"].clone())
    }

    /// Polls `condition` (a JavaScript expression, awaited if a promise) until it is truthy
    /// and returns that value. Errors while polling (a navigation destroying the context,
    /// say) are retried; on timeout the error names the last value or error seen.
    pub async fn wait_for(&self, condition: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("nothing yet");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.eval(condition)).await {
                Ok(Ok(value)) if truthy(&value) => return Ok(value),
                Ok(Ok(value)) => last = format!("last value {value}"),
                Ok(Err(error)) => last = format!("last error: {error}"),
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(BrowserError::Timeout {
                    what: format!("`{}` to be truthy ({last})", shorten(condition)),
                    after: timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Clicks the first element matching the CSS `selector` (as `element.click()` does: the
    /// element's handlers run and a link or submit button navigates). Errors if none matches.
    pub async fn click(&self, selector: &str) -> Result<()> {
        let selector_js = Value::from(selector).to_string();
        let found = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({selector_js}); if (!e) return false; e.click(); return true; }})()"
            ))
            .await?;
        if found == Value::Bool(true) {
            Ok(())
        } else {
            Err(BrowserError::Js {
                expression: format!("click {selector}"),
                description: "no element matches the selector".to_owned(),
            })
        }
    }

    /// The `textContent` of the first element matching the CSS `selector`, `None` if none does.
    pub async fn text(&self, selector: &str) -> Result<Option<String>> {
        let selector_js = Value::from(selector).to_string();
        let value = self
            .eval(&format!(
                "document.querySelector({selector_js})?.textContent ?? null"
            ))
            .await?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// The page's current URL (`location.href`).
    pub async fn url(&self) -> Result<String> {
        let value = self.eval("location.href").await?;
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| BrowserError::BadResponse {
                method: "Runtime.evaluate location.href".to_owned(),
                detail: value.to_string(),
            })
    }

    /// Takes a PNG screenshot of the viewport, checks it is a well-formed PNG, writes it to
    /// `path` (creating parent directories) and returns its width and height in pixels.
    pub async fn screenshot_png(&self, path: impl AsRef<Path>) -> Result<(u32, u32)> {
        let path = path.as_ref();
        let answer = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await?;
        let data = str_field(&answer, "data", "Page.captureScreenshot")?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| BrowserError::BadResponse {
                method: "Page.captureScreenshot".to_owned(),
                detail: format!("data is not base64: {e}"),
            })?;
        let size = check_png(&png).map_err(BrowserError::Png)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| BrowserError::Io {
                what: "creating",
                path: parent.to_owned(),
                source,
            })?;
        }
        std::fs::write(path, &png).map_err(|source| BrowserError::Io {
            what: "writing",
            path: path.to_owned(),
            source,
        })?;
        Ok(size)
    }

    /// Every request the page made so far, in order (redirect hops are separate entries).
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state.log).requests.clone()
    }

    /// Waits until a request whose URL satisfies `matches` is done, and returns it.
    pub async fn wait_for_request(
        &self,
        matches: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<Request> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = lock(&self.state.log)
                .requests
                .iter()
                .find(|r| r.done && matches(&r.url))
            {
                return Ok(found.clone());
            }
            if Instant::now() >= deadline {
                return Err(BrowserError::Timeout {
                    what: "a matching request to finish".to_owned(),
                    after: timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The WebSockets the page opened so far.
    pub fn websockets(&self) -> Vec<WebSocketLog> {
        lock(&self.state.log).websockets.clone()
    }

    /// Console messages, uncaught exceptions and browser log entries so far.
    pub fn console(&self) -> Vec<ConsoleMessage> {
        lock(&self.state.log).console.clone()
    }

    /// The texts of the error-level entries of [`Page::console`].
    pub fn console_errors(&self) -> Vec<String> {
        lock(&self.state.log)
            .console
            .iter()
            .filter(|m| m.level == "error")
            .map(|m| m.text.clone())
            .collect()
    }

    /// Waits until a console message satisfying `matches` has been logged, and returns it
    /// (messages can arrive a little after the load or request that caused them).
    pub async fn wait_for_console(
        &self,
        matches: impl Fn(&ConsoleMessage) -> bool,
        timeout: Duration,
    ) -> Result<ConsoleMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = lock(&self.state.log).console.iter().find(|m| matches(m)) {
                return Ok(found.clone());
            }
            if Instant::now() >= deadline {
                return Err(BrowserError::Timeout {
                    what: format!(
                        "a matching console message (seen: {:?})",
                        self.console_errors()
                    ),
                    after: timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The cookies the browser would send to the page's current URL.
    pub async fn cookies(&self) -> Result<Vec<Cookie>> {
        let value = self.call("Network.getCookies", json!({})).await?;
        parse_cookies(value, "Network.getCookies")
    }

    /// The cookies the browser would send to any of `urls`.
    pub async fn cookies_for(&self, urls: &[&str]) -> Result<Vec<Cookie>> {
        let value = self
            .call("Network.getCookies", json!({ "urls": urls }))
            .await?;
        parse_cookies(value, "Network.getCookies")
    }

    /// Closes the tab.
    pub async fn close(self) -> Result<()> {
        self.conn
            .call(
                None,
                "Target.closeTarget",
                json!({ "targetId": self.target_id }),
            )
            .await?;
        lock(&self.conn.sessions).remove(&self.session_id);
        Ok(())
    }
}

fn parse_cookies(mut value: Value, method: &str) -> Result<Vec<Cookie>> {
    serde_json::from_value(value["cookies"].take()).map_err(|e| BrowserError::BadResponse {
        method: method.to_owned(),
        detail: format!("cookies: {e}"),
    })
}

/// JavaScript truthiness of a JSON value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 120;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

fn str_field(value: &Value, field: &str, method: &str) -> Result<String> {
    value[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| BrowserError::BadResponse {
            method: method.to_owned(),
            detail: format!("no string `{field}` in {value}"),
        })
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the logs stay
/// readable; nothing here leaves them half-updated in a way that matters to a test).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

type Reply = std::result::Result<Value, (i64, String)>;

/// One DevTools WebSocket: a writer task, a reader task that routes answers by `id` and events
/// by `sessionId`, and the calls in flight.
struct Conn {
    outgoing: mpsc::UnboundedSender<String>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    sessions: Mutex<HashMap<String, Arc<PageState>>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    timeout: Duration,
}

impl Conn {
    fn start<S>(
        socket: tokio_tungstenite::WebSocketStream<S>,
        timeout: Duration,
    ) -> (Arc<Self>, Vec<JoinHandle<()>>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut queue) = mpsc::unbounded_channel::<String>();
        let conn = Arc::new(Self {
            outgoing,
            pending: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            timeout,
        });
        let writer = tokio::spawn(async move {
            while let Some(text) = queue.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let reader_conn = Arc::clone(&conn);
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Text(text) = message
                    && let Ok(value) = serde_json::from_str::<Value>(text.as_str())
                {
                    reader_conn.dispatch(value);
                }
            }
            reader_conn.closed.store(true, Ordering::SeqCst);
            // Dropping the senders wakes every caller with "closed".
            lock(&reader_conn.pending).clear();
        });
        (conn, vec![writer, reader])
    }

    fn dispatch(&self, mut value: Value) {
        if let Some(id) = value["id"].as_u64() {
            let Some(reply) = lock(&self.pending).remove(&id) else {
                return;
            };
            let answer = match value.get("error") {
                Some(error) => Err((
                    error["code"].as_i64().unwrap_or_default(),
                    str_of(&error["message"]),
                )),
                None => Ok(value["result"].take()),
            };
            let _ = reply.send(answer);
        } else if let Some(method) = value["method"].as_str() {
            let Some(session) = value["sessionId"].as_str() else {
                return;
            };
            if method == "Page.javascriptDialogOpening" {
                // Accept at once: an open dialog blocks the page's scripts and our evaluations.
                // The answer has no waiter and is dropped by the pending-id lookup.
                let id = self.next_id.fetch_add(1, Ordering::SeqCst);
                let accept = json!({
                    "id": id,
                    "sessionId": session,
                    "method": "Page.handleJavaScriptDialog",
                    "params": { "accept": true },
                });
                let _ = self.outgoing.send(accept.to_string());
            }
            let state = lock(&self.sessions).get(session).cloned();
            if let Some(state) = state {
                state.handle(method, &value["params"]);
            }
        }
    }

    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        let closed = || BrowserError::Closed {
            method: method.to_owned(),
        };
        if self.closed.load(Ordering::SeqCst) {
            return Err(closed());
        }
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = Value::from(session);
        }
        let (reply, answer) = oneshot::channel();
        lock(&self.pending).insert(id, reply);
        if self.outgoing.send(message.to_string()).is_err() {
            lock(&self.pending).remove(&id);
            return Err(closed());
        }
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err((code, message)))) => Err(BrowserError::Protocol {
                method: method.to_owned(),
                code,
                message,
            }),
            Ok(Err(_)) => Err(closed()),
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(BrowserError::Timeout {
                    what: format!("Chromium to answer {method}"),
                    after: self.timeout,
                })
            }
        }
    }
}

/// Checks that `bytes` is a complete, well-formed PNG (signature, every chunk's CRC, `IHDR`
/// first, `IEND` last) and returns its width and height.
pub fn check_png(bytes: &[u8]) -> std::result::Result<(u32, u32), String> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let mut rest = bytes.strip_prefix(SIGNATURE).ok_or("no PNG signature")?;
    let mut size = None;
    let mut first = true;
    loop {
        if rest.len() < 12 {
            return Err("truncated: no IEND chunk".to_owned());
        }
        let (head, tail) = rest.split_at(8);
        let length = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = &head[4..8];
        if tail.len() < length + 4 {
            return Err(format!(
                "chunk {} is truncated",
                String::from_utf8_lossy(kind)
            ));
        }
        let (data, tail) = tail.split_at(length);
        let (crc, tail) = tail.split_at(4);
        let expected = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32(&[kind, data]) != expected {
            return Err(format!(
                "bad CRC in chunk {}",
                String::from_utf8_lossy(kind)
            ));
        }
        if first {
            if kind != b"IHDR" || length != 13 {
                return Err("the first chunk is not a 13-byte IHDR".to_owned());
            }
            let width = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            let height = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
            if width == 0 || height == 0 {
                return Err(format!("empty image {width}x{height}"));
            }
            size = Some((width, height));
            first = false;
        }
        if kind == b"IEND" {
            return size.ok_or_else(|| "no IHDR".to_owned());
        }
        rest = tail;
    }
}

/// CRC-32 (ISO-HDLC, as PNG uses) over the concatenation of `parts`.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xFFFF_FFFF_u32;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(&[b"1234", b"56789"]), 0xCBF4_3926);
    }

    #[test]
    fn check_png_rejects_garbage_and_truncation() {
        assert!(check_png(b"not a png").is_err());
        assert!(check_png(b"\x89PNG\r\n\x1a\n").is_err());
    }

    #[test]
    fn truthiness_follows_javascript() {
        for falsy in [json!(null), json!(false), json!(0), json!(""), json!(0.0)] {
            assert!(!truthy(&falsy), "{falsy}");
        }
        for yes in [json!(true), json!(1), json!("x"), json!([]), json!({})] {
            assert!(truthy(&yes), "{yes}");
        }
    }
}
