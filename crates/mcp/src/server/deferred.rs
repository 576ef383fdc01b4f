//! Server→client requests for 2026-07-28 clients, which cannot receive requests on a
//! stream: the request being handled is parked (it keeps running), the client gets an
//! `input_required` result naming what is needed and a sealed `requestState`, and its
//! retry with `inputResponses` un-parks the work and hands it the answers.
//!
//! This is how a modern client uses a legacy upstream that asks for sampling,
//! elicitation or roots while a tool runs.

use crate::jsonrpc::{to_raw, RpcError, INTERNAL_ERROR, INVALID_PARAMS};
use crate::object::RawObject;
use crate::peer::{lock, Outcome};
use crate::seal::Sealer;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::AbortOnDropHandle;

/// One server→client request waiting for the client's answer.
pub struct InputRequest {
    pub method: String,
    pub params: Option<Box<RawValue>>,
    pub reply: oneshot::Sender<Outcome>,
}

/// Where a peer without a back channel sends its requests.
pub type InputSender = mpsc::UnboundedSender<InputRequest>;

/// Prefix of the `requestState` values a parking lot issues, followed by the lot's own id,
/// so states of other processes (an upstream that is itself a Portcullis) pass through.
const STATE_MARK: &str = "pcg1.";

/// Methods that may answer with `input_required`.
pub fn may_defer(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read")
}

/// Whether a request may be the retry of a parked one (cheap: most requests carry no state).
pub fn may_resume(method: &str, params: Option<&RawValue>) -> bool {
    may_defer(method) && params.is_some_and(|p| p.get().contains("requestState"))
}

/// A question put to the client, and where its answer goes.
pub struct Waiting {
    request: Value,
    reply: oneshot::Sender<Outcome>,
}

/// Questions still open, by the key the client answers under.
pub type Open = HashMap<String, Waiting>;

/// Work resumed by a retry: the running request, its question channel, what is still open.
pub type Resumed = (AbortOnDropHandle<Outcome>, mpsc::UnboundedReceiver<InputRequest>, Open);

/// A request in progress, waiting for the client to retry with answers.
struct Parked {
    work: AbortOnDropHandle<Outcome>,
    inputs: mpsc::UnboundedReceiver<InputRequest>,
    waiting: Open,
    method: String,
    since: Instant,
}

/// Parked requests of this process.
pub struct ParkingLot {
    sealer: Sealer,
    /// `pcg1.<random id>.`: marks the states this lot issued.
    mark: String,
    parked: Mutex<HashMap<u64, Parked>>,
    next: AtomicU64,
    /// How long a parked request waits for the client's retry.
    pub patience: Duration,
}

impl ParkingLot {
    pub fn new(patience: Duration) -> Self {
        let mark = format!("{STATE_MARK}{:016x}.", rand::random::<u64>());
        ParkingLot { sealer: Sealer::random(), mark, parked: Mutex::default(), next: AtomicU64::new(1), patience }
    }

    /// Runs `work` until it ends or asks the client for something; in the latter case
    /// (or when questions from an earlier round are still open) parks it and returns the
    /// `input_required` result to send.
    pub async fn drive(
        self: std::sync::Arc<Self>,
        method: &str,
        mut work: AbortOnDropHandle<Outcome>,
        mut inputs: mpsc::UnboundedReceiver<InputRequest>,
        mut waiting: Open,
    ) -> Outcome {
        if waiting.is_empty() {
            let first = tokio::select! {
                done = &mut work => {
                    return done.unwrap_or_else(|e| Err(RpcError::new(INTERNAL_ERROR, format!("the request failed: {e}")).to_raw()))
                }
                Some(first) = inputs.recv() => first,
            };
            // Requests an upstream sends together arrive within moments: ask them in one round.
            let mut batch = vec![first];
            tokio::time::sleep(Duration::from_millis(5)).await;
            while let Ok(more) = inputs.try_recv() {
                batch.push(more);
            }
            for req in batch {
                let key = format!("input-{}", self.next.fetch_add(1, Ordering::Relaxed));
                let params: Value =
                    req.params.as_deref().and_then(|p| serde_json::from_str(p.get()).ok()).unwrap_or_else(|| json!({}));
                let request = json!({ "method": req.method, "params": params });
                waiting.insert(key, Waiting { request, reply: req.reply });
            }
        }
        let requests: serde_json::Map<String, Value> =
            waiting.iter().map(|(k, w)| (k.clone(), w.request.clone())).collect();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let state = format!("{}{}", self.mark, self.sealer.seal(&id.to_le_bytes()));
        {
            let mut parked = lock(&self.parked);
            let patience = self.patience;
            // Work whose client never came back is dropped, which aborts it (and cancels
            // it upstream), so it does not stay in flight there.
            parked.retain(|_, p| p.since.elapsed() < patience);
            parked.insert(id, Parked { work, inputs, waiting, method: method.to_owned(), since: Instant::now() });
        }
        let lot = std::sync::Arc::downgrade(&self);
        let patience = self.patience;
        tokio::spawn(async move {
            tokio::time::sleep(patience).await;
            if let Some(lot) = lot.upgrade() {
                lot.abandon(id);
            }
        });
        Ok(to_raw(&json!({ "resultType": "input_required", "inputRequests": requests, "requestState": state })))
    }

    /// Drops parked work whose client did not come back in time.
    fn abandon(&self, id: u64) {
        let mut parked = lock(&self.parked);
        if parked.get(&id).is_some_and(|p| p.since.elapsed() >= self.patience) {
            parked.remove(&id);
        }
    }

    /// If a retry carries a `requestState` this process issued, takes the parked work
    /// and delivers the answers; `None` if the state is not ours (pass the request on).
    pub fn resume(&self, method: &str, params: &RawObject) -> Option<Result<Resumed, RpcError>> {
        // States without this lot's mark are an upstream's own: pass them on.
        let state = params.get_str("requestState")?;
        let sealed = state.strip_prefix(self.mark.as_str())?;
        let expired = || {
            RpcError::new(INVALID_PARAMS, "requestState expired or unknown: send the request again without it")
                .with_data(json!({ "reason": "invalid_request_state" }))
        };
        // Marked but unreadable (altered, another replica, a restart): never run the request
        // again upstream as if it were new.
        let Some(id) = self.sealer.open(sealed).and_then(|p| p.try_into().ok()).map(u64::from_le_bytes) else {
            return Some(Err(expired()));
        };
        let Some(mut parked) = lock(&self.parked).remove(&id) else { return Some(Err(expired())) };
        if parked.method != method || parked.since.elapsed() > self.patience {
            return Some(Err(expired()));
        }
        let answers = params
            .get("inputResponses")
            .and_then(|r| serde_json::from_str::<serde_json::Map<String, Value>>(r.get()).ok())
            .unwrap_or_default();
        for (key, answer) in answers {
            // An answer that is not an object is no answer: the question stays open.
            if answer.is_object() {
                if let Some(w) = parked.waiting.remove(&key) {
                    let _ = w.reply.send(Ok(to_raw(&answer)));
                }
            }
        }
        Some(Ok((parked.work, parked.inputs, parked.waiting)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_parked_request_resumes_once_and_survives_a_forged_retry() {
        let lot = Arc::new(ParkingLot::new(Duration::from_secs(60)));
        let (ask, asked) = mpsc::unbounded_channel::<InputRequest>();
        let work = AbortOnDropHandle::new(tokio::spawn(async move {
            let (reply, answer) = oneshot::channel();
            ask.send(InputRequest { method: "elicitation/create".into(), params: None, reply }).ok();
            let got = answer.await.unwrap().unwrap();
            Ok(to_raw(&json!({ "got": serde_json::from_str::<Value>(got.get()).unwrap() })))
        }));
        let first = lot.clone().drive("tools/call", work, asked, Open::new()).await.unwrap();
        let first: Value = serde_json::from_str(first.get()).unwrap();
        let state = first["requestState"].as_str().unwrap().to_owned();
        let key = first["inputRequests"].as_object().unwrap().keys().next().unwrap().clone();
        let params = |state: &str| {
            let raw =
                to_raw(&json!({ "requestState": state, "inputResponses": { key.as_str(): { "action": "accept" } } }));
            RawObject::parse(&raw, "params").unwrap()
        };
        assert!(matches!(lot.resume("tools/call", &params(&format!("{state}x"))), Some(Err(_))));
        assert!(lot.resume("tools/call", &params("upstream-state")).is_none(), "unmarked states pass through");
        let (work, inputs, waiting) = lot.resume("tools/call", &params(&state)).unwrap().unwrap();
        let done = lot.clone().drive("tools/call", work, inputs, waiting).await.unwrap();
        assert_eq!(done.get(), r#"{"got":{"action":"accept"}}"#);
        assert!(matches!(lot.resume("tools/call", &params(&state)), Some(Err(_))), "a state works once");
    }
}
