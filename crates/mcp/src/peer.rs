//! A connected client as seen by the code that handles one of its requests.
//!
//! While a request is being handled, the server may send the client messages that
//! belong to it: progress and log notifications, and requests of its own (sampling,
//! elicitation, roots). A [`Peer`] carries the channel those go out on (the POST's SSE
//! stream, or stdout) and the table where the client's answers are matched back.

use crate::jsonrpc::{encode_notification, encode_request, Id, Response, RpcError, INTERNAL_ERROR};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// 2026-07-28: the request needs a client capability the client did not declare.
const MISSING_CLIENT_CAPABILITY: i64 = -32021;
use tokio::sync::{mpsc, oneshot};

/// How a server→client request ended.
pub type Outcome = Result<Box<RawValue>, Box<RawValue>>;

/// Requests the server sent to one client and is waiting on, keyed by the id it used.
#[derive(Default)]
pub struct PendingRequests {
    next: AtomicU64,
    waiting: Mutex<HashMap<Id, oneshot::Sender<Outcome>>>,
}

impl PendingRequests {
    /// Delivers a client's response; false if nothing was waiting for that id.
    pub fn resolve(&self, response: Response) -> bool {
        let waiter = lock(&self.waiting).remove(&response.id);
        match waiter {
            Some(tx) => tx.send(response.outcome).is_ok(),
            None => false,
        }
    }

    fn register(&self) -> (Id, oneshot::Receiver<Outcome>) {
        let id = Id::number(self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).insert(id.clone(), tx);
        (id, rx)
    }

    fn forget(&self, id: &Id) {
        lock(&self.waiting).remove(id);
    }
}

/// A handle to the client that sent the request being handled.
#[derive(Clone)]
pub struct Peer {
    out: mpsc::UnboundedSender<String>,
    pending: Arc<PendingRequests>,
    capabilities: Arc<ClientCapabilities>,
    /// False for 2026-07-28 clients: the server may not send them requests on a stream.
    back_channel: bool,
    /// False when the client did not ask for log messages (2026-07-28 `logLevel`).
    logs: bool,
    /// For a 2026-07-28 request that may answer `input_required`: where requests go instead.
    deferred: Option<crate::server::deferred::InputSender>,
    /// Checks what an upstream asks of the client, and the client's answers, on their way
    /// (the gateway's inspect stage for sampling and elicitation).
    filter: Option<Arc<dyn RequestFilter>>,
}

/// Inspects server→client requests and their answers. Each method returns `Ok(None)` to let
/// the message through as is, `Ok(Some(raw))` to send `raw` instead, or `Err` to refuse it
/// (the error goes back to the upstream).
pub trait RequestFilter: Send + Sync {
    /// A request's params before they go to the client.
    fn outbound(&self, method: &str, params: Option<&RawValue>) -> Result<Option<Box<RawValue>>, RpcError>;
    /// The client's result before it goes back to the upstream.
    fn answer(&self, method: &str, result: &RawValue) -> Result<Option<Box<RawValue>>, RpcError>;
}

/// What the client said it can do when it connected.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClientCapabilities {
    pub sampling: bool,
    pub elicitation: bool,
    pub roots: bool,
}

impl ClientCapabilities {
    /// Reads the flags from an `initialize` params' `capabilities` object.
    pub fn from_json(caps: Option<&serde_json::Value>) -> Self {
        let has = |k: &str| caps.and_then(|c| c.get(k)).is_some_and(|v| !v.is_null());
        ClientCapabilities { sampling: has("sampling"), elicitation: has("elicitation"), roots: has("roots") }
    }

    /// The capability a server→client request needs.
    pub fn required_for(method: &str) -> &'static str {
        match method {
            "sampling/createMessage" => "sampling",
            "elicitation/create" => "elicitation",
            "roots/list" => "roots",
            _ => "experimental",
        }
    }

    /// Whether the client can answer a server request with this method.
    pub fn allows(&self, method: &str) -> bool {
        match method {
            "sampling/createMessage" => self.sampling,
            "elicitation/create" => self.elicitation,
            "roots/list" => self.roots,
            _ => true,
        }
    }
}

impl Peer {
    pub fn new(
        out: mpsc::UnboundedSender<String>,
        pending: Arc<PendingRequests>,
        capabilities: Arc<ClientCapabilities>,
    ) -> Self {
        Peer { out, pending, capabilities, back_channel: true, logs: true, deferred: None, filter: None }
    }

    /// A peer for a 2026-07-28 request: no server→client requests, logs only if asked for.
    pub fn modern(mut self, wants_logs: bool) -> Self {
        self.back_channel = false;
        self.logs = wants_logs;
        self
    }

    pub fn capabilities(&self) -> &ClientCapabilities {
        &self.capabilities
    }

    /// Requests to this (2026-07-28) client become `input_required` rounds through `tx`.
    pub fn with_deferred(mut self, tx: crate::server::deferred::InputSender) -> Self {
        self.deferred = Some(tx);
        self
    }

    /// This peer with requests to the client, and their answers, passing `filter`.
    pub fn with_filter(&self, filter: Arc<dyn RequestFilter>) -> Self {
        Peer { filter: Some(filter), ..self.clone() }
    }

    /// Whether the client takes server→client requests (false for 2026-07-28 clients).
    pub fn has_back_channel(&self) -> bool {
        self.back_channel
    }

    /// Sends a notification; false if the client is gone.
    pub fn notify(&self, method: &str, params: Option<&RawValue>) -> bool {
        if !self.logs && method == "notifications/message" {
            return true;
        }
        self.out.send(encode_notification(method, params)).is_ok()
    }

    /// Sends a request to the client and waits for its answer.
    pub async fn request(&self, method: &str, params: Option<&RawValue>, timeout: Duration) -> Outcome {
        let Some(filter) = &self.filter else {
            return self.send_request(method, params, timeout).await;
        };
        let rewritten = filter.outbound(method, params).map_err(|e| e.to_raw())?;
        let answer = self.send_request(method, rewritten.as_deref().or(params), timeout).await?;
        Ok(filter.answer(method, &answer).map_err(|e| e.to_raw())?.unwrap_or(answer))
    }

    async fn send_request(&self, method: &str, params: Option<&RawValue>, timeout: Duration) -> Outcome {
        if !self.capabilities.allows(method) {
            let code = if self.back_channel { crate::jsonrpc::METHOD_NOT_FOUND } else { MISSING_CLIENT_CAPABILITY };
            let needed = ClientCapabilities::required_for(method);
            return Err(RpcError::new(code, format!("the client did not declare the capability needed for {method}"))
                .with_data(serde_json::json!({ "requiredCapabilities": { needed: {} } }))
                .to_raw());
        }
        if let (false, Some(deferred)) = (self.back_channel, &self.deferred) {
            let (reply, answer) = oneshot::channel();
            let params = params.map(ToOwned::to_owned);
            if deferred
                .send(crate::server::deferred::InputRequest { method: method.to_owned(), params, reply })
                .is_err()
            {
                return Err(RpcError::new(INTERNAL_ERROR, "the client's request has ended").to_raw());
            }
            return match tokio::time::timeout(timeout, answer).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => Err(RpcError::new(INTERNAL_ERROR, "the client did not retry with an answer").to_raw()),
                Err(_) => {
                    Err(RpcError::new(INTERNAL_ERROR, format!("no answer to {method} within {timeout:?}")).to_raw())
                }
            };
        }
        if !self.back_channel {
            return Err(RpcError::new(
                crate::jsonrpc::INVALID_REQUEST,
                format!("cannot send {method} to a 2026-07-28 client outside a request that may answer input_required"),
            )
            .to_raw());
        }
        let (id, rx) = self.pending.register();
        if self.out.send(encode_request(&id, method, params)).is_err() {
            self.pending.forget(&id);
            return Err(RpcError::new(INTERNAL_ERROR, "the client disconnected").to_raw());
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(RpcError::new(INTERNAL_ERROR, "the client disconnected").to_raw()),
            Err(_) => {
                self.pending.forget(&id);
                Err(RpcError::new(INTERNAL_ERROR, format!("the client did not answer {method} within {timeout:?}"))
                    .to_raw())
            }
        }
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the maps
/// guarded here stay consistent across a panic: every operation is a single insert/remove).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::Message;

    #[tokio::test]
    async fn a_request_is_answered_by_the_matching_response() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let pending = Arc::new(PendingRequests::default());
        let caps = Arc::new(ClientCapabilities { sampling: true, ..Default::default() });
        let peer = Peer::new(tx, pending.clone(), caps);
        let task =
            tokio::spawn(async move { peer.request("sampling/createMessage", None, Duration::from_secs(5)).await });
        let sent = rx.recv().await.unwrap();
        let Message::Request(req) = Message::parse(sent.as_bytes()).unwrap() else { panic!("{sent}") };
        let reply = format!(r#"{{"jsonrpc":"2.0","id":{},"result":{{"ok":true}}}}"#, req.id.as_json());
        let Message::Response(resp) = Message::parse(reply.as_bytes()).unwrap() else { unreachable!() };
        assert!(pending.resolve(resp));
        assert_eq!(task.await.unwrap().unwrap().get(), r#"{"ok":true}"#);
    }

    #[tokio::test]
    async fn requests_needing_undeclared_capabilities_fail_fast() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let peer = Peer::new(tx, Default::default(), Default::default());
        let err = peer.request("elicitation/create", None, Duration::from_secs(5)).await.unwrap_err();
        assert!(err.get().contains("capability"));
    }
}
