//! Matching what an upstream sends back to the requests the gateway sent it.
//!
//! One upstream connection is shared by every client of the gateway, so the gateway
//! gives each forwarded request its own id (and progress token) and keeps, per id, the
//! client that asked. Responses, progress, and the upstream's own requests (sampling,
//! elicitation, roots) are routed back to that client through its [`Peer`].

use crate::jsonrpc::{encode_response, Id, Message, RpcError, METHOD_NOT_FOUND};
use crate::object::RawObject;
use crate::peer::{lock, Outcome, Peer};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

/// What the transport knows about which request a message from the upstream belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// It came on the response stream of this request (Streamable HTTP).
    Request(u64),
    /// It came on a stream that is not tied to any request (a GET or listen stream).
    Unrelated,
    /// The transport cannot tell (stdio, legacy SSE).
    Unknown,
}

/// What a forwarded request can come back with: the peer's outcome, or a transport failure.
pub(crate) type Delivery = Result<Outcome, String>;

/// Something an upstream announced that is not tied to one request.
#[derive(Debug, Clone)]
pub enum UpstreamEvent {
    /// `notifications/{tools,prompts,resources}/list_changed`, or a reconnect (lists may differ).
    ListChanged(ListKind),
    /// `notifications/resources/updated`, with the upstream's own URI.
    ResourceUpdated { uri: String },
    /// A log message not tied to a request in flight.
    Log(Box<RawValue>),
    /// A new connection replaced a lost one: per-connection state (subscriptions) is gone.
    Reconnected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
}

impl ListKind {
    pub const ALL: [ListKind; 3] = [ListKind::Tools, ListKind::Prompts, ListKind::Resources];

    pub fn notification(self) -> &'static str {
        match self {
            ListKind::Tools => "notifications/tools/list_changed",
            ListKind::Prompts => "notifications/prompts/list_changed",
            ListKind::Resources => "notifications/resources/list_changed",
        }
    }
}

struct InFlight {
    tx: oneshot::Sender<Delivery>,
    peer: Option<Peer>,
    /// The client's own progress token, restored on the way back.
    client_progress: Option<Box<RawValue>>,
    /// Upstream requests routed to this request's client and not answered yet. A request
    /// that is waiting on its client is not the origin of a new upstream request.
    asking: usize,
}

pub(crate) struct Router {
    /// This router, for tasks that outlive the call that spawned them.
    weak: std::sync::Weak<Router>,
    server: std::sync::Arc<str>,
    next_id: AtomicU64,
    inflight: Mutex<HashMap<u64, InFlight>>,
    events: broadcast::Sender<UpstreamEvent>,
    /// Where replies to the upstream's own requests go.
    outbound: mpsc::UnboundedSender<String>,
    client_timeout: Duration,
}

impl Router {
    pub(crate) fn new(
        server: std::sync::Arc<str>,
        events: broadcast::Sender<UpstreamEvent>,
        outbound: mpsc::UnboundedSender<String>,
        client_timeout: Duration,
    ) -> std::sync::Arc<Self> {
        std::sync::Arc::new_cyclic(|weak| Router {
            weak: weak.clone(),
            server,
            next_id: AtomicU64::new(0),
            inflight: Default::default(),
            events,
            outbound,
            client_timeout,
        })
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Records a request about to be sent. If the client asked for progress, its token
    /// is swapped for the gateway's (the request id) and the new params returned.
    pub(crate) fn register(
        &self,
        id: u64,
        params: Option<Box<RawValue>>,
        peer: Option<Peer>,
    ) -> (Option<Box<RawValue>>, oneshot::Receiver<Delivery>) {
        let (params, client_progress) = swap_progress_token(params, id);
        let (tx, rx) = oneshot::channel();
        lock(&self.inflight).insert(id, InFlight { tx, peer, client_progress, asking: 0 });
        (params, rx)
    }

    /// Forgets a request (it timed out or the caller gave up); true if it was still open.
    pub(crate) fn forget(&self, id: u64) -> bool {
        lock(&self.inflight).remove(&id).is_some()
    }

    /// Fails every open request, e.g. when the upstream process exited.
    pub(crate) fn fail_all(&self, reason: &str) {
        let drained: Vec<InFlight> = lock(&self.inflight).drain().map(|(_, v)| v).collect();
        for f in drained {
            let _ = f.tx.send(Err(reason.to_owned()));
        }
    }

    pub(crate) fn emit(&self, event: UpstreamEvent) {
        // No receivers simply means nobody is listening yet.
        let _ = self.events.send(event);
    }

    /// Handles one message from the upstream. `origin` is the id of the request whose
    /// response stream carried it, when the transport knows (Streamable HTTP does).
    pub(crate) fn dispatch(&self, message: Message, origin: Origin) {
        match message {
            Message::Response(resp) => {
                let open = resp.id.as_u64().and_then(|id| lock(&self.inflight).remove(&id));
                match open {
                    Some(f) => {
                        let _ = f.tx.send(Ok(resp.outcome));
                    }
                    None => {
                        tracing::debug!(server = %self.server, id = ?resp.id, "response to no open request")
                    }
                }
            }
            Message::Notification(n) => self.on_notification(&n.method, n.params, origin),
            Message::Request(req) => self.on_request(req, origin),
        }
    }

    fn on_notification(&self, method: &str, params: Option<Box<RawValue>>, origin: Origin) {
        match method {
            "notifications/progress" => {
                let Some(params) = params else { return };
                let Ok(mut obj) = RawObject::parse(&params, "params") else {
                    return;
                };
                let id = obj.get("progressToken").and_then(|t| t.get().trim_matches('"').parse::<u64>().ok());
                let target = id.and_then(|id| {
                    let map = lock(&self.inflight);
                    map.get(&id).and_then(|f| Some((f.peer.clone()?, f.client_progress.clone()?)))
                });
                if let Some((peer, token)) = target {
                    obj.set_raw("progressToken", token);
                    peer.notify(method, Some(&obj.to_raw()));
                }
            }
            "notifications/message" => match (self.related_peer(origin), params) {
                (Ok((_, peer)), params) => {
                    peer.notify(method, params.as_deref());
                }
                (Err(_), Some(params)) => self.emit(UpstreamEvent::Log(params)),
                (Err(_), None) => {}
            },
            "notifications/tools/list_changed" => self.emit(UpstreamEvent::ListChanged(ListKind::Tools)),
            "notifications/prompts/list_changed" => self.emit(UpstreamEvent::ListChanged(ListKind::Prompts)),
            "notifications/resources/list_changed" => self.emit(UpstreamEvent::ListChanged(ListKind::Resources)),
            "notifications/resources/updated" => {
                let uri =
                    params.as_deref().and_then(|p| RawObject::parse(p, "params").ok()).and_then(|o| o.get_str("uri"));
                if let Some(uri) = uri {
                    self.emit(UpstreamEvent::ResourceUpdated { uri });
                }
            }
            other => {
                tracing::debug!(server = %self.server, method = other, "ignored upstream notification")
            }
        }
    }

    /// The client a message from the upstream belongs to: the one whose request's stream
    /// carried it, or, when the transport cannot tell (stdio, legacy SSE), the only client
    /// with a request in flight. With several in flight it is ambiguous, and the message
    /// goes to nobody rather than to a client it may not belong to.
    fn related_peer(&self, origin: Origin) -> Result<(u64, Peer), &'static str> {
        let map = lock(&self.inflight);
        match origin {
            Origin::Request(id) => {
                return map
                    .get(&id)
                    .and_then(|f| Some((id, f.peer.clone()?)))
                    .ok_or("the request it belongs to has ended")
            }
            // The upstream said it belongs to no request: no client may be guessed.
            Origin::Unrelated => return Err("it is not tied to a client request"),
            Origin::Unknown => {}
        }
        let mut candidates =
            map.iter().filter(|(_, f)| f.asking == 0).filter_map(|(id, f)| Some((*id, f.peer.as_ref()?)));
        match (candidates.next(), candidates.next()) {
            (Some((id, p)), None) => Ok((id, p.clone())),
            (None, _) => Err("no client request is in flight"),
            (Some(_), Some(_)) => {
                Err("several clients have requests in flight and the upstream did not say which one it means")
            }
        }
    }

    /// Whether the upstream is waiting on the client of this request.
    pub(crate) fn is_asking(&self, id: u64) -> bool {
        lock(&self.inflight).get(&id).is_some_and(|f| f.asking > 0)
    }

    pub(crate) fn in_flight(&self) -> usize {
        lock(&self.inflight).len()
    }

    fn set_asking(&self, id: u64, delta: isize) {
        if let Some(f) = lock(&self.inflight).get_mut(&id) {
            f.asking = f.asking.saturating_add_signed(delta);
        }
    }

    /// The upstream asks something of "the client": pass it to the client that caused it.
    fn on_request(&self, req: crate::jsonrpc::Request, origin: Origin) {
        let outbound = self.outbound.clone();
        if req.method == "ping" {
            let _ = outbound.send(encode_response(Some(&req.id), Ok(&crate::jsonrpc::empty_object())));
            return;
        }
        let (origin_id, peer) = match self.related_peer(origin) {
            Ok(found) => found,
            Err(why) => {
                tracing::warn!(server = %self.server, method = %req.method, "upstream request not routed: {why}");
                let err =
                    RpcError::new(METHOD_NOT_FOUND, format!("{}: cannot route {}: {why}", self.server, req.method));
                let _ = outbound.send(encode_response(Some(&req.id), Err(&err.to_raw())));
                return;
            }
        };
        let timeout = self.client_timeout;
        self.set_asking(origin_id, 1);
        let router = self.weak.clone();
        tokio::spawn(async move {
            let outcome = peer.request(&req.method, req.params.as_deref(), timeout).await;
            if let Some(router) = router.upgrade() {
                router.set_asking(origin_id, -1);
            }
            let _ = outbound.send(encode_response(Some(&req.id), outcome.as_deref().map_err(|e| &**e)));
        });
    }
}

/// Replaces `_meta.progressToken` with the gateway's token; returns the new params and
/// the client's token.
fn swap_progress_token(params: Option<Box<RawValue>>, id: u64) -> (Option<Box<RawValue>>, Option<Box<RawValue>>) {
    let Some(raw) = params else {
        return (None, None);
    };
    // Fast path: most requests carry no progress token; skip the parse.
    if !raw.get().contains("progressToken") {
        return (Some(raw), None);
    }
    let Ok(mut obj) = RawObject::parse(&raw, "params") else {
        return (Some(raw), None);
    };
    let Some(mut meta) = obj.get_object("_meta") else {
        return (Some(raw), None);
    };
    let Some(token) = meta.remove("progressToken") else {
        return (Some(raw), None);
    };
    meta.set("progressToken", &id);
    obj.set_raw("_meta", meta.to_raw());
    (Some(obj.to_raw()), Some(token))
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").field("server", &self.server).finish_non_exhaustive()
    }
}

/// The id used on the wire for the gateway's request number `n`.
pub(crate) fn wire_id(n: u64) -> Id {
    Id::number(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn progress_tokens_are_swapped_and_restored() {
        let (params, token) = swap_progress_token(Some(raw(r#"{"name":"x","_meta":{"progressToken":"abc"}}"#)), 7);
        assert_eq!(params.unwrap().get(), r#"{"name":"x","_meta":{"progressToken":7}}"#);
        assert_eq!(token.unwrap().get(), r#""abc""#);
        let (params, token) = swap_progress_token(Some(raw(r#"{"name":"x"}"#)), 7);
        assert_eq!(params.unwrap().get(), r#"{"name":"x"}"#);
        assert!(token.is_none());
    }

    #[tokio::test]
    async fn progress_goes_back_to_the_client_with_its_own_token() {
        let (events, _) = broadcast::channel(4);
        let (outbound, _out_rx) = mpsc::unbounded_channel();
        let router = Router::new("s".into(), events, outbound, Duration::from_secs(1));
        let (client_tx, mut client_rx) = mpsc::unbounded_channel();
        let peer = Peer::new(client_tx, Default::default(), Default::default());
        let (params, rx) = router.register(3, Some(raw(r#"{"_meta":{"progressToken":42}}"#)), Some(peer));
        assert!(params.unwrap().get().contains(r#""progressToken":3"#));
        let note = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":3,"progress":1}}"#;
        router.dispatch(Message::parse(note.as_bytes()).unwrap(), Origin::Unknown);
        let got = client_rx.recv().await.unwrap();
        assert!(got.contains(r#""progressToken":42"#), "{got}");
        let resp = r#"{"jsonrpc":"2.0","id":3,"result":{}}"#;
        router.dispatch(Message::parse(resp.as_bytes()).unwrap(), Origin::Unknown);
        assert_eq!(rx.await.unwrap().unwrap().unwrap().get(), "{}");
    }
}
