//! Serving MCP to clients: the [`Handler`] a server implements, and the transports
//! that drive it (Streamable HTTP in [`http`], stdio in [`stdio`]).
//!
//! The transports own everything about the wire: sessions (sealed ids, so any replica
//! can serve any session), response streams, cancellation, and matching the client's
//! answers to server→client requests. A handler sees one request at a time with a
//! [`RequestContext`] and returns its outcome.

pub mod deferred;
pub mod http;
pub mod modern;
pub mod session;
pub mod stdio;

use crate::jsonrpc::{encode_notification, Notification, Request};
use crate::peer::{lock, ClientCapabilities, Outcome, Peer};
use crate::protocol::Era;
use portcullis_core::Principal;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Who the client is, as established by `initialize` (legacy) or the request's `_meta` (modern).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session id the client presents (legacy HTTP); empty for stdio and modern requests.
    pub id: String,
    pub protocol_version: String,
    pub capabilities: ClientCapabilities,
    pub client_name: String,
    /// The virtual server the session was opened on (empty: the main endpoint).
    pub endpoint: String,
    /// Who opened the session ([`Principal::subject`]): only they may use it.
    pub owner: String,
}

impl SessionInfo {
    pub fn era(&self) -> Era {
        crate::protocol::era_of(&self.protocol_version).unwrap_or(Era::Legacy)
    }
}

/// Everything a handler may use while answering one request.
#[derive(Clone)]
pub struct RequestContext {
    pub session: Arc<SessionInfo>,
    /// Reaches the client for messages related to this request.
    pub peer: Peer,
    /// `Mcp-Param-*` headers of a 2026-07-28 request: (suffix, raw value).
    pub param_headers: Vec<(String, String)>,
    /// Who is calling, as the front door established it.
    pub principal: Arc<Principal>,
    /// The caller's W3C trace context, from the HTTP request's headers.
    pub trace: Option<crate::trace_context::TraceContext>,
}

/// An MCP server's logic. The gateway's federation and the demo server implement it.
pub trait Handler: Send + Sync + 'static {
    /// Answers a request: a result, or an error object (passed to the client verbatim).
    fn handle(&self, request: Request, ctx: RequestContext) -> impl Future<Output = Outcome> + Send;

    /// A client notification other than `initialized` and `cancelled` (which transports handle).
    fn notification(&self, _notification: Notification, _session: &SessionInfo) {}

    /// A client's session ended (HTTP DELETE, stdio EOF): forget what was kept for it.
    fn session_closed(&self, _session: &SessionInfo) {}

    /// A 2026-07-28 `subscriptions/listen` started (`true`) or stopped watching these resources.
    fn watch_resources(&self, _uris: &[String], _watching: bool) {}
}

/// Long-lived streams to connected clients, for messages not tied to a request
/// (`list_changed`, resource updates): legacy GET streams, stdio connections, and
/// 2026-07-28 `subscriptions/listen` streams (which get only what they asked for).
#[derive(Default)]
pub struct Streams {
    open: Mutex<HashMap<String, Sink>>,
    /// Legacy `resources/subscribe`: session -> URIs it wants updates for.
    subscriptions: Mutex<HashMap<String, std::collections::HashSet<String>>>,
    /// Recent messages of sessions with resumable GET streams, for `Last-Event-ID`.
    journals: Mutex<HashMap<String, Journal>>,
}

/// Resources one session may subscribe to.
pub const MAX_SUBSCRIPTIONS: usize = 1000;

/// Messages kept per session for a reconnecting GET stream.
const JOURNAL_EVENTS: usize = 256;
/// Sessions whose messages are kept; the least recently active are dropped first.
const JOURNAL_SESSIONS: usize = 10_000;

struct Journal {
    next: u64,
    events: std::collections::VecDeque<(u64, String)>,
    touched: std::time::Instant,
}

impl Journal {
    fn record(&mut self, msg: &str) -> u64 {
        self.next += 1;
        if self.events.len() == JOURNAL_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back((self.next, msg.to_owned()));
        self.touched = std::time::Instant::now();
        self.next
    }
}

/// Where a stream's messages go.
enum Tx {
    Plain(mpsc::UnboundedSender<String>),
    /// A GET stream: messages carry their journal id (the SSE event id).
    Resumable(mpsc::UnboundedSender<(u64, String)>),
}

impl Tx {
    fn is_closed(&self) -> bool {
        match self {
            Tx::Plain(tx) => tx.is_closed(),
            Tx::Resumable(tx) => tx.is_closed(),
        }
    }
}

struct Sink {
    tx: Tx,
    /// For a listen stream: its filter and the listen request's id (stamped on each message).
    listen: Option<(modern::ListenFilter, Box<RawValue>)>,
}

impl Streams {
    /// Registers the stream for a session, replacing an older one (a reconnect).
    pub fn attach(&self, session: &str, tx: mpsc::UnboundedSender<String>) {
        lock(&self.open).insert(session.to_owned(), Sink { tx: Tx::Plain(tx), listen: None });
    }

    /// Registers a resumable GET stream: first replays what the session missed after
    /// `last_event_id` (if this process still has it), then keeps a journal of what follows.
    pub fn attach_resumable(
        &self,
        session: &str,
        tx: mpsc::UnboundedSender<(u64, String)>,
        last_event_id: Option<u64>,
    ) {
        {
            let mut journals = lock(&self.journals);
            if !journals.contains_key(session) && journals.len() >= JOURNAL_SESSIONS {
                let oldest = journals.iter().min_by_key(|(_, j)| j.touched).map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    journals.remove(&k);
                }
            }
            let journal = journals.entry(session.to_owned()).or_insert_with(|| Journal {
                next: 0,
                events: Default::default(),
                touched: std::time::Instant::now(),
            });
            if let Some(last) = last_event_id {
                for (id, msg) in journal.events.iter().filter(|(id, _)| *id > last) {
                    let _ = tx.send((*id, msg.clone()));
                }
            }
        }
        lock(&self.open).insert(session.to_owned(), Sink { tx: Tx::Resumable(tx), listen: None });
    }

    /// Delivers to a legacy sink, journaling for resumable ones.
    fn deliver(&self, session: &str, tx: &Tx, msg: &str) -> bool {
        match tx {
            Tx::Plain(tx) => tx.send(msg.to_owned()).is_ok(),
            Tx::Resumable(tx) => {
                let id = lock(&self.journals).get_mut(session).map(|j| j.record(msg)).unwrap_or(0);
                // A closed stream keeps its journal: the client may come back with Last-Event-ID.
                tx.send((id, msg.to_owned())).is_ok() || id > 0
            }
        }
    }

    /// Registers a `subscriptions/listen` stream under a key of its own.
    pub fn attach_listen(
        &self,
        key: &str,
        tx: mpsc::UnboundedSender<String>,
        filter: modern::ListenFilter,
        id: Box<RawValue>,
    ) {
        lock(&self.open).insert(key.to_owned(), Sink { tx: Tx::Plain(tx), listen: Some((filter, id)) });
    }

    pub fn detach(&self, session: &str) {
        lock(&self.open).remove(session);
    }

    /// Records a legacy session's `resources/subscribe` (up to [`MAX_SUBSCRIPTIONS`] each):
    /// `None` at the limit, else whether the subscription is new for this session.
    pub fn subscribe(&self, session: &str, uri: &str) -> Option<bool> {
        let mut subs = lock(&self.subscriptions);
        let uris = subs.entry(session.to_owned()).or_default();
        if uris.len() >= MAX_SUBSCRIPTIONS && !uris.contains(uri) {
            return None;
        }
        Some(uris.insert(uri.to_owned()))
    }

    /// Whether the session was subscribed.
    pub fn unsubscribe(&self, session: &str, uri: &str) -> bool {
        lock(&self.subscriptions).get_mut(session).is_some_and(|uris| uris.remove(uri))
    }

    /// Forgets a session's subscriptions and journal (it ended); returns what it was subscribed to.
    pub fn forget(&self, session: &str) -> Vec<String> {
        lock(&self.journals).remove(session);
        lock(&self.subscriptions).remove(session).map(|uris| uris.into_iter().collect()).unwrap_or_default()
    }

    /// Sends a notification to every connected client that wants it. Resource updates go
    /// only to the sessions subscribed to that resource: a URI one client watches is not
    /// another client's business.
    pub fn broadcast(&self, method: &str, params: Option<&RawValue>) {
        let msg = encode_notification(method, params);
        let updated_uri = (method == "notifications/resources/updated")
            .then(|| {
                params.and_then(|p| crate::object::RawObject::parse(p, "params").ok()).and_then(|o| o.get_str("uri"))
            })
            .map(Option::unwrap_or_default);
        let subscriptions = lock(&self.subscriptions);
        let wants = |session: &str| match &updated_uri {
            None => true,
            Some(uri) => subscriptions.get(session).is_some_and(|uris| uris.contains(uri)),
        };
        lock(&self.open).retain(|session, sink| match (&sink.listen, &sink.tx) {
            (None, tx) if !wants(session) => !tx.is_closed(),
            (None, tx) => self.deliver(session, tx, &msg),
            (Some((filter, _)), tx) if !filter.wants(method, params) => !tx.is_closed(),
            (Some((_, id)), Tx::Plain(tx)) => {
                let stamped = modern::stamp_subscription(params, id);
                tx.send(encode_notification(method, Some(&stamped))).is_ok()
            }
            (Some(_), Tx::Resumable(_)) => false,
        });
    }

    /// Ends every stream (on shutdown, so graceful shutdown does not wait on them).
    pub fn close_all(&self) {
        lock(&self.open).clear();
    }
}

/// Reads the session facts out of `initialize` params.
pub fn session_from_initialize(params: Option<&RawValue>) -> SessionInfo {
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Init {
        #[serde(default)]
        protocol_version: Option<String>,
        #[serde(default)]
        capabilities: Option<serde_json::Value>,
        #[serde(default)]
        client_info: Option<serde_json::Value>,
    }
    let init: Init = params.and_then(|p| serde_json::from_str(p.get()).ok()).unwrap_or_default();
    SessionInfo {
        id: String::new(),
        protocol_version: crate::protocol::negotiate_legacy(init.protocol_version.as_deref()).to_owned(),
        capabilities: ClientCapabilities::from_json(init.capabilities.as_ref()),
        client_name: init
            .client_info
            .as_ref()
            .and_then(|c| c.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or_default()
            .chars()
            .take(100)
            .collect(),
        endpoint: String::new(),
        owner: String::new(),
    }
}
