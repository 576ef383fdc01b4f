//! Clients for upstream MCP servers.
//!
//! An [`Upstream`] owns one logical connection to one server and keeps it alive: it
//! starts the transport, performs `initialize`, and when the connection dies (the child
//! exits, the HTTP session is lost) reconnects with exponential backoff. Every client of
//! the gateway shares that connection; the [`router`] keeps their requests apart.

pub mod credential;
mod http;
pub mod modern;
pub mod router;
pub mod spec;
mod stdio;

use crate::jsonrpc::{encode_notification, encode_request, to_raw, RpcError, UPSTREAM_ERROR};
use crate::peer::{Outcome, Peer};
use crate::protocol::{Era, LATEST_LEGACY, MODERN_VERSION};
use crate::trace_context::TraceContext;
use modern::ProtocolChoice;
use router::{wire_id, Router};
pub use router::{ListKind, UpstreamEvent};
use serde_json::value::RawValue;
use spec::TransportSpec;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Why a request to an upstream did not get an answer from it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
    #[error("upstream timed out: {0}")]
    Timeout(String),
    #[error("upstream protocol error: {0}")]
    Protocol(String),
    #[error("upstream misconfigured: {0}")]
    Config(String),
}

impl UpstreamError {
    pub fn to_rpc(&self) -> RpcError {
        let (kind, detail) = match self {
            UpstreamError::Unavailable(d) => ("unavailable", d),
            UpstreamError::Timeout(d) => ("timeout", d),
            UpstreamError::Protocol(d) => ("protocol", d),
            UpstreamError::Config(d) => ("config", d),
        };
        RpcError::new(UPSTREAM_ERROR, self.to_string()).with_data(serde_json::json!({ "kind": kind, "detail": detail }))
    }
}

/// How an upstream is doing, as shown by `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Starting,
    Ready,
    /// Connected, but it misbehaved (e.g. wrote garbage); requests still go through.
    Degraded(String),
    /// Not connected; reconnecting with backoff.
    Down(String),
}

impl Health {
    pub fn is_usable(&self) -> bool {
        matches!(self, Health::Ready | Health::Degraded(_))
    }
}

/// What an upstream told us about itself in `initialize`.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    pub protocol_version: String,
    pub capabilities: serde_json::Value,
    pub server_info: serde_json::Value,
    pub instructions: Option<String>,
}

/// Tunables of one upstream connection.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// How long one request may take before the caller gets a timeout error.
    pub request_timeout: Duration,
    /// How long connecting and `initialize` may take.
    pub connect_timeout: Duration,
    /// How long a client gets to answer the upstream's own requests (sampling, elicitation).
    pub client_timeout: Duration,
    /// Largest message accepted from the upstream.
    pub max_message_bytes: usize,
    /// Which protocol revisions to speak.
    pub protocol: modern::ProtocolChoice,
    /// Variables removed from a stdio child's environment: the gateway's own keys, which no
    /// upstream should inherit.
    pub env_remove: Vec<String>,
    /// Where HTTP requests get their `Authorization` value at request time (e.g. an OAuth
    /// access token), besides the static headers.
    pub credential: Option<Arc<dyn credential::Credential>>,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
            client_timeout: Duration::from_secs(300),
            max_message_bytes: 16 * 1024 * 1024,
            protocol: modern::ProtocolChoice::Auto,
            env_remove: Vec::new(),
            credential: None,
        }
    }
}

/// How long a removed or changed upstream's calls in flight get to finish.
const DRAIN_GRACE: Duration = Duration::from_secs(30);

enum Wire {
    /// stdio and legacy SSE: every message goes into the queue, answers come back on a stream.
    Queue,
    /// Streamable HTTP: a request's answer comes back on its own POST.
    Http(Arc<http::HttpWire>),
}

/// One live, initialized connection.
struct Connection {
    era: Era,
    router: Arc<Router>,
    outbound: mpsc::UnboundedSender<String>,
    wire: Wire,
    closed: CancellationToken,
    info: ServerInfo,
    _child: Option<tokio::process::Child>,
}

/// A configured upstream server and its (re)connecting connection.
pub struct Upstream {
    name: Arc<str>,
    spec: TransportSpec,
    options: UpstreamOptions,
    http: reqwest::Client,
    current: watch::Sender<Option<Arc<Connection>>>,
    health: watch::Sender<Health>,
    events: broadcast::Sender<UpstreamEvent>,
    restarts: std::sync::atomic::AtomicU64,
    shutdown: CancellationToken,
    last_info: Mutex<Option<ServerInfo>>,
    /// Upstream URIs clients watch; a 2026-07-28 connection listens for their updates.
    resources: watch::Sender<Vec<String>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").field("name", &self.name).field("transport", &self.spec.kind()).finish()
    }
}

impl Upstream {
    /// Creates the upstream and starts connecting in the background.
    pub fn start(name: &str, spec: TransportSpec, options: UpstreamOptions, http: reqwest::Client) -> Arc<Self> {
        let up = Arc::new(Self::new(name, spec, options, http, Health::Starting));
        tokio::spawn(up.clone().supervise());
        up
    }

    /// An upstream that cannot be started as configured (e.g. its credential is not in the
    /// vault): down with `reason`, never connecting. Requests fail at once with the reason.
    pub fn unavailable(name: &str, spec: TransportSpec, reason: String) -> Arc<Self> {
        let options = UpstreamOptions::default();
        Arc::new(Self::new(name, spec, options, reqwest::Client::new(), Health::Down(reason)))
    }

    fn new(name: &str, spec: TransportSpec, options: UpstreamOptions, http: reqwest::Client, health: Health) -> Self {
        let (events, _) = broadcast::channel(256);
        Upstream {
            name: name.into(),
            spec,
            options,
            http,
            current: watch::channel(None).0,
            health: watch::channel(health).0,
            events,
            restarts: Default::default(),
            shutdown: CancellationToken::new(),
            last_info: Mutex::new(None),
            resources: watch::channel(Vec::new()).0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn spec(&self) -> &TransportSpec {
        &self.spec
    }

    pub fn health(&self) -> Health {
        self.health.borrow().clone()
    }

    /// How many times the connection was re-established after the first.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The upstream's `initialize` answer, once connected.
    pub fn server_info(&self) -> Option<ServerInfo> {
        crate::peer::lock(&self.last_info).clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<UpstreamEvent> {
        self.events.subscribe()
    }

    /// The resources clients watch on this upstream. A 2026-07-28 upstream is told through
    /// its listen stream; a legacy one gets `resources/subscribe` calls instead.
    pub fn set_watched_resources(&self, mut uris: Vec<String>) {
        uris.sort();
        self.resources.send_if_modified(|current| {
            let changed = *current != uris;
            *current = uris;
            changed
        });
    }

    /// Stops reconnecting and closes the connection once the requests in flight have ended
    /// (or after a grace period). The supervisor holds the upstream until then, so an
    /// upstream that is not shut down keeps running.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Sends a request and waits for its outcome: the upstream's result or its error object,
    /// verbatim. `peer` receives the related messages (progress, sampling, ...).
    pub async fn request(
        &self,
        method: &str,
        params: Option<Box<RawValue>>,
        peer: Option<Peer>,
    ) -> Result<Outcome, UpstreamError> {
        let timeout = self.options.request_timeout;
        let conn = self.connection(timeout).await?;
        if conn.era == Era::Legacy {
            let params = modern::strip_envelope(params);
            return conn.request(method, params, peer, timeout, &self.name).await;
        }
        if let Some(answer) = modern::local_answer(method) {
            return Ok(Ok(answer));
        }
        let caps = peer.as_ref().map(|p| p.capabilities().clone());
        let legacy_client = peer.as_ref().is_some_and(Peer::has_back_channel);
        modern::with_input_rounds(params, peer.as_ref(), self.options.client_timeout, |p| {
            let stamped = modern::stamp_envelope(p, caps.as_ref(), legacy_client);
            let (conn, peer, name) = (conn.clone(), peer.clone(), self.name.clone());
            async move { conn.request(method, Some(stamped), peer, timeout, &name).await }
        })
        .await
    }

    /// Sends a notification (best effort).
    pub async fn notify(&self, method: &str, params: Option<&RawValue>) -> Result<(), UpstreamError> {
        let conn = self.connection(self.options.request_timeout).await?;
        if conn.era == Era::Modern {
            // 2026-07-28 has no client notifications over the wire but cancellation.
            return Ok(());
        }
        conn.notify(method, params).await
    }

    /// The live connection; waits for one while (re)connecting, up to `wait`.
    async fn connection(&self, wait: Duration) -> Result<Arc<Connection>, UpstreamError> {
        let mut rx = self.current.subscribe();
        let mut health = self.health.subscribe();
        let found = tokio::time::timeout(wait, async {
            loop {
                if let Some(c) = rx.borrow_and_update().as_ref() {
                    if !c.closed.is_cancelled() {
                        return Ok(c.clone());
                    }
                }
                // Fail fast while the upstream is known to be down, rather than
                // holding the caller for the whole timeout.
                if let Health::Down(reason) = &*self.health.borrow() {
                    return Err(UpstreamError::Unavailable(format!("{}: {reason}", self.name)));
                }
                // A failed connect changes only the health: wake on either.
                let changed = tokio::select! {
                    c = rx.changed() => c,
                    h = health.changed() => h,
                };
                if changed.is_err() {
                    return Err(UpstreamError::Unavailable(format!("{}: shut down", self.name)));
                }
            }
        })
        .await;
        match found {
            Ok(r) => r,
            Err(_) => Err(UpstreamError::Timeout(format!("{}: not connected within {wait:?}", self.name))),
        }
    }

    /// Connects, waits for the connection to die, reconnects with backoff; until shutdown.
    async fn supervise(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(250);
        let mut first = true;
        while !self.shutdown.is_cancelled() {
            // Bounded as a whole: a server that accepts and never answers must not keep the
            // upstream "starting" forever.
            let limit = self.options.connect_timeout + modern::PROBE_TIMEOUT;
            let attempt = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                r = tokio::time::timeout(limit, self.connect()) => r.unwrap_or_else(|_| {
                    Err(UpstreamError::Timeout(format!("{}: not connected within {limit:?}", self.name)))
                }),
            };
            match attempt {
                Ok(conn) => {
                    backoff = Duration::from_millis(250);
                    if !first {
                        self.restarts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::info!(server = %self.name, "reconnected to upstream");
                    }
                    first = false;
                    *crate::peer::lock(&self.last_info) = Some(conn.info.clone());
                    let closed = conn.closed.clone();
                    self.current.send_replace(Some(conn.clone()));
                    // Garbage seen while connecting keeps the upstream marked degraded.
                    self.health.send_if_modified(|h| {
                        if matches!(h, Health::Degraded(_)) {
                            return false;
                        }
                        *h = Health::Ready;
                        true
                    });
                    // Lists may have changed while we were away (or this is the first look).
                    for kind in ListKind::ALL {
                        let _ = self.events.send(UpstreamEvent::ListChanged(kind));
                    }
                    if self.restarts() > 0 {
                        let _ = self.events.send(UpstreamEvent::Reconnected);
                    }
                    tokio::select! {
                        _ = self.shutdown.cancelled() => {
                            // Removed or changed by a reload: calls in flight finish first.
                            conn.drain(DRAIN_GRACE).await;
                            conn.close().await;
                            break;
                        }
                        _ = closed.cancelled() => {}
                    }
                    self.current.send_replace(None);
                    tracing::warn!(server = %self.name, "upstream connection lost; reconnecting");
                    self.health.send_replace(Health::Down("connection lost; reconnecting".into()));
                }
                Err(e) => {
                    tracing::warn!(server = %self.name, error = %e, retry_in = ?backoff, "could not connect to upstream");
                    self.health.send_replace(Health::Down(e.to_string()));
                }
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
        self.current.send_replace(None);
        self.health.send_replace(Health::Down("shut down".into()));
    }

    async fn connect(self: &Arc<Self>) -> Result<Arc<Connection>, UpstreamError> {
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let router = Router::new(self.name.clone(), self.events.clone(), out_tx.clone(), self.options.client_timeout);
        let closed = CancellationToken::new();
        let mut child = None;
        let wire = match &self.spec {
            TransportSpec::Stdio(spec) => {
                let me = Arc::downgrade(self);
                let garbage: Arc<dyn Fn(String) + Send + Sync> = Arc::new(move |why| {
                    if let Some(me) = me.upgrade() {
                        me.health.send_replace(Health::Degraded(why));
                    }
                });
                child = Some(stdio::spawn(
                    &self.name,
                    spec,
                    router.clone(),
                    out_rx,
                    closed.clone(),
                    garbage,
                    &self.options,
                )?);
                Wire::Queue
            }
            TransportSpec::Http(spec) => {
                let wire = Arc::new(http::HttpWire::new(
                    self.name.clone(),
                    self.http.clone(),
                    spec,
                    self.options.credential.clone(),
                    closed.clone(),
                    self.options.max_message_bytes,
                )?);
                http::spawn_outbound(wire.clone(), router.clone(), out_rx);
                Wire::Http(wire)
            }
            TransportSpec::Sse(spec) => {
                http::connect_sse(
                    self.name.clone(),
                    self.http.clone(),
                    spec,
                    &self.options,
                    router.clone(),
                    out_rx,
                    closed.clone(),
                )
                .await?;
                Wire::Queue
            }
        };
        let mut conn = Connection {
            era: Era::Legacy,
            router,
            outbound: out_tx,
            wire,
            closed,
            info: ServerInfo::default(),
            _child: child,
        };
        let timeout = self.options.connect_timeout;
        let result = match self.options.protocol {
            ProtocolChoice::Legacy => conn.initialize(timeout, &self.name).await,
            ProtocolChoice::Modern => conn.discover(timeout, &self.name).await,
            ProtocolChoice::Auto => match conn.discover(modern::PROBE_TIMEOUT.min(timeout), &self.name).await {
                Ok(info) => Ok(info),
                Err(e) if !conn.closed.is_cancelled() => {
                    tracing::debug!(server = %self.name, reason = %e, "no 2026-07-28 discovery; using initialize");
                    conn.initialize(timeout, &self.name).await
                }
                Err(e) => Err(e),
            },
        };
        if result.is_err() {
            conn.closed.cancel();
        }
        conn.info = result?;
        tracing::info!(server = %self.name, protocol = %conn.info.protocol_version, "connected to upstream");
        let conn = Arc::new(conn);
        match (&conn.wire, conn.era) {
            (Wire::Http(wire), Era::Legacy) => {
                tokio::spawn(wire.clone().listen(conn.router.clone()));
            }
            (Wire::Http(wire), Era::Modern) => {
                tokio::spawn(wire.clone().subscribe(conn.router.clone(), self.resources.subscribe()));
            }
            (Wire::Queue, Era::Modern) => {
                tokio::spawn(listen_queued(conn.clone(), self.resources.subscribe()));
            }
            (Wire::Queue, Era::Legacy) => {}
        }
        Ok(conn)
    }
}

/// Keeps one 2026-07-28 listen open on a stdio or SSE upstream; when the watched resources
/// change, cancels it and listens again.
async fn listen_queued(conn: Arc<Connection>, mut resources: watch::Receiver<Vec<String>>) {
    loop {
        let id = conn.router.next_id();
        let params = modern::listen_params(&resources.borrow_and_update());
        if conn.outbound.send(encode_request(&wire_id(id), "subscriptions/listen", Some(&params))).is_err() {
            return;
        }
        tokio::select! {
            _ = conn.closed.cancelled() => return,
            changed = resources.changed() => {
                if changed.is_err() {
                    return;
                }
                let cancel = serde_json::json!({ "requestId": id, "reason": "watched resources changed" });
                let _ = conn.outbound.send(encode_notification("notifications/cancelled", Some(&to_raw(&cancel))));
            }
        }
    }
}

/// Fails the request (and tells the upstream to stop working on it) if the caller
/// stops waiting before the answer arrives: a timeout, or the client cancelled.
struct InFlightGuard<'a> {
    conn: &'a Connection,
    id: u64,
    done: bool,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if !self.done && self.conn.router.forget(self.id) {
            let params = serde_json::json!({ "requestId": self.id, "reason": "cancelled by the gateway" });
            let _ = self.conn.outbound.send(encode_notification("notifications/cancelled", Some(&to_raw(&params))));
        }
    }
}

impl Connection {
    async fn request(
        &self,
        method: &str,
        params: Option<Box<RawValue>>,
        peer: Option<Peer>,
        timeout: Duration,
        server: &str,
    ) -> Result<Outcome, UpstreamError> {
        let id = self.router.next_id();
        let (params, rx) = self.router.register(id, params, peer);
        let mut guard = InFlightGuard { conn: self, id, done: false };
        let text = encode_request(&wire_id(id), method, params.as_deref());
        let exchange = async {
            match &self.wire {
                Wire::Queue => {
                    self.outbound
                        .send(text)
                        .map_err(|_| UpstreamError::Unavailable(format!("{server}: connection closed")))?;
                }
                Wire::Http(wire) => {
                    let routing = match self.era {
                        Era::Legacy => None,
                        Era::Modern => Some((method, params.as_deref().and_then(|p| modern::name_header(method, p)))),
                    };
                    let trace = params.as_deref().and_then(TraceContext::from_params);
                    wire.post_routed(text, &self.router, Some(id), routing, trace.as_ref()).await?
                }
            }
            match rx.await {
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(reason)) => Err(UpstreamError::Unavailable(format!("{server}: {reason}"))),
                Err(_) => Err(UpstreamError::Protocol(format!("{server}: the upstream sent no answer to {method}"))),
            }
        };
        // The timeout is for the upstream. While the upstream waits on the client (sampling,
        // elicitation, an input_required round), the clock is re-armed: the client's own
        // deadline applies to that wait.
        tokio::pin!(exchange);
        let result = loop {
            match tokio::time::timeout(timeout, &mut exchange).await {
                Ok(r) => break r,
                Err(_) if self.router.is_asking(id) => continue,
                Err(_) => {
                    break Err(UpstreamError::Timeout(format!("{server}: no answer to {method} within {timeout:?}")))
                }
            }
        };
        guard.done = result.is_ok();
        result
    }

    async fn notify(&self, method: &str, params: Option<&RawValue>) -> Result<(), UpstreamError> {
        let text = encode_notification(method, params);
        match &self.wire {
            Wire::Queue => self.outbound.send(text).map_err(|_| UpstreamError::Unavailable("connection closed".into())),
            Wire::Http(wire) => wire.post(text, &self.router, None).await,
        }
    }

    async fn initialize(&self, timeout: Duration, server: &str) -> Result<ServerInfo, UpstreamError> {
        let params = serde_json::json!({
            "protocolVersion": LATEST_LEGACY,
            "capabilities": { "roots": { "listChanged": true }, "sampling": {}, "elicitation": {} },
            "clientInfo": { "name": "portcullis", "version": env!("CARGO_PKG_VERSION") },
        });
        let outcome = self.request("initialize", Some(to_raw(&params)), None, timeout, server).await?;
        let result =
            outcome.map_err(|e| UpstreamError::Protocol(format!("{server} refused initialize: {}", e.get())))?;
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct InitResult {
            protocol_version: String,
            #[serde(default)]
            capabilities: serde_json::Value,
            #[serde(default)]
            server_info: serde_json::Value,
            #[serde(default)]
            instructions: Option<String>,
        }
        let init: InitResult = serde_json::from_str(result.get())
            .map_err(|e| UpstreamError::Protocol(format!("{server}: invalid initialize result: {e}")))?;
        if crate::protocol::era_of(&init.protocol_version).is_none() {
            return Err(UpstreamError::Protocol(format!(
                "{server} answered with protocol version {} which the gateway does not speak",
                init.protocol_version
            )));
        }
        if let Wire::Http(wire) = &self.wire {
            wire.set_version(Some(&init.protocol_version));
        }
        self.notify("notifications/initialized", None).await?;
        Ok(ServerInfo {
            protocol_version: init.protocol_version,
            capabilities: init.capabilities,
            server_info: init.server_info,
            instructions: init.instructions,
        })
    }

    /// Connects the 2026-07-28 way: `server/discover`, then every request carries its envelope.
    async fn discover(&mut self, timeout: Duration, server: &str) -> Result<ServerInfo, UpstreamError> {
        self.era = Era::Modern;
        if let Wire::Http(wire) = &self.wire {
            wire.set_version(Some(MODERN_VERSION));
        }
        let outcome = self.request("server/discover", Some(modern::discover_params()), None, timeout, server).await;
        let info = match outcome {
            Ok(Ok(result)) => {
                modern::server_info(&result).map_err(|e| UpstreamError::Protocol(format!("{server}: {e}")))
            }
            Ok(Err(error)) => {
                Err(UpstreamError::Protocol(format!("{server} refused server/discover: {}", error.get())))
            }
            Err(e) => Err(e),
        };
        if info.is_err() {
            self.era = Era::Legacy;
            if let Wire::Http(wire) = &self.wire {
                wire.set_version(None);
            }
        }
        info
    }

    /// Waits until no request is in flight, up to `grace`.
    async fn drain(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while self.router.in_flight() > 0 && tokio::time::Instant::now() < deadline && !self.closed.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn close(&self) {
        if let Wire::Http(wire) = &self.wire {
            wire.terminate().await;
        }
        self.router.fail_all("the gateway is shutting this upstream down");
        self.closed.cancel();
    }
}
