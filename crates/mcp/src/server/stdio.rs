//! The stdio transport, server side: one client, one session, newline-delimited JSON-RPC.

use super::{deferred, modern, session_from_initialize, Handler, RequestContext, SessionInfo, Streams};
use crate::jsonrpc::{encode_error, encode_response, Id, Message, RpcError, INVALID_REQUEST};
use crate::object::RawObject;
use crate::peer::{lock, Peer, PendingRequests};
use futures::StreamExt;
use portcullis_core::Principal;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// Serves one client on `input`/`output` until the input ends.
pub async fn serve<H, R, W>(handler: Arc<H>, streams: Arc<Streams>, input: R, mut output: W, max_line: usize)
where
    H: Handler,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        while let Some(mut msg) = rx.recv().await {
            msg.push('\n');
            if output.write_all(msg.as_bytes()).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });
    let stream_id = format!("stdio-{}", std::process::id());
    let pending = Arc::new(PendingRequests::default());
    let running: Arc<Mutex<HashMap<Id, CancellationToken>>> = Default::default();
    let mut session: Option<Arc<SessionInfo>> = None;
    // 2026-07-28: open listens (request id -> stream key) and requests parked on input_required.
    let mut listens: HashMap<Id, (String, Vec<String>)> = HashMap::new();
    let lot = Arc::new(deferred::ParkingLot::new(std::time::Duration::from_secs(300)));
    let mut frames = FramedRead::new(input, LinesCodec::new_with_max_length(max_line));

    while let Some(frame) = frames.next().await {
        let line = match frame {
            Ok(line) => line,
            Err(LinesCodecError::MaxLineLengthExceeded) => {
                let err = RpcError::new(INVALID_REQUEST, format!("message over {max_line} bytes; it was dropped"));
                let _ = tx.send(encode_error(None, &err));
                continue;
            }
            Err(LinesCodecError::Io(e)) => {
                tracing::warn!(error = %e, "reading stdin failed");
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let message = match Message::parse(line.as_bytes()) {
            Ok(m) => m,
            Err(e) => {
                let _ = tx.send(encode_error(crate::jsonrpc::salvage_id(line.as_bytes()).as_ref(), &e));
                continue;
            }
        };
        match message {
            Message::Response(resp) => {
                pending.resolve(resp);
            }
            Message::Notification(n) => match n.method.as_str() {
                "notifications/initialized" => {}
                "notifications/cancelled" => {
                    if let Some(id) = crate::jsonrpc::cancelled_request_id(n.params.as_deref()) {
                        let found = lock(&running).get(&id).cloned();
                        if let Some(token) = found {
                            token.cancel();
                        }
                        // Ending a 2026-07-28 listen: its response closes it.
                        if let Some((key, uris)) = listens.remove(&id) {
                            streams.detach(&key);
                            handler.watch_resources(&uris, false);
                            let result = serde_json::json!({ "resultType": "complete",
                                "_meta": { modern::META_SUBSCRIPTION_ID: crate::jsonrpc::to_raw(&id) } });
                            let _ = tx.send(encode_response(Some(&id), Ok(&crate::jsonrpc::to_raw(&result))));
                        }
                    }
                }
                _ => {
                    if let Some(s) = &session {
                        handler.notification(n, s);
                    }
                }
            },
            Message::Request(req) if is_modern(&req) => {
                let envelope = match modern::validate(&req, None) {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = tx.send(encode_error(Some(&req.id), &e));
                        continue;
                    }
                };
                if req.method == "subscriptions/listen" {
                    let (filter, id_raw, ack) = modern::acknowledge(&req);
                    let _ = tx.send(ack);
                    let key = format!("{stream_id}-listen-{}", req.id.as_json());
                    handler.watch_resources(&filter.resource_uris, true);
                    listens.insert(req.id.clone(), (key.clone(), filter.resource_uris.clone()));
                    streams.attach_listen(&key, tx.clone(), filter, id_raw);
                    continue;
                }
                let method = req.method.clone();
                let (handler, out, lot) = (handler.clone(), tx.clone(), lot.clone());
                if deferred::may_resume(&method, req.params.as_deref()) {
                    let params = RawObject::parse_params(req.params.as_deref()).unwrap_or_default();
                    match lot.resume(&method, &params) {
                        None => {}
                        Some(Err(e)) => {
                            let _ = tx.send(encode_error(Some(&req.id), &e));
                            continue;
                        }
                        Some(Ok((work, inputs, waiting))) => {
                            tokio::spawn(async move {
                                let outcome = lot.drive(&method, work, inputs, waiting).await;
                                let _ = out.send(encode_response(Some(&req.id), outcome.as_deref().map_err(|e| &**e)));
                            });
                            continue;
                        }
                    }
                }
                let mut peer = Peer::new(tx.clone(), pending.clone(), Arc::new(envelope.session.capabilities.clone()))
                    .modern(envelope.wants_logs);
                let (ask, asked) = mpsc::unbounded_channel();
                if deferred::may_defer(&method) {
                    peer = peer.with_deferred(ask);
                }
                let info = Arc::new(envelope.session);
                let cancel = CancellationToken::new();
                lock(&running).insert(req.id.clone(), cancel.clone());
                let running_map = running.clone();
                tokio::spawn(async move {
                    let id = req.id.clone();
                    let ctx = RequestContext {
                        session: info,
                        peer,
                        param_headers: Vec::new(),
                        principal: local(),
                        trace: None,
                    };
                    let shape = method.clone();
                    let stamped =
                        async move { handler.handle(req, ctx).await.map(|r| modern::stamp_result(&shape, r)) };
                    let running = AbortOnDropHandle::new(tokio::spawn(stamped));
                    // A cancelled request gets no response (the client has moved on).
                    let outcome = tokio::select! {
                        o = lot.drive(&method, running, asked, Default::default()) => Some(o),
                        _ = cancel.cancelled() => None,
                    };
                    lock(&running_map).remove(&id);
                    if let Some(outcome) = outcome {
                        let _ = out.send(encode_response(Some(&id), outcome.as_deref().map_err(|e| &**e)));
                    }
                });
            }
            Message::Request(req) => {
                let info = if req.method == "initialize" {
                    let mut info = session_from_initialize(req.params.as_deref());
                    info.id = stream_id.clone();
                    let info = Arc::new(info);
                    streams.attach(&stream_id, tx.clone());
                    session = Some(info.clone());
                    info
                } else if let Some(s) = &session {
                    s.clone()
                } else if req.method == "ping" {
                    Arc::new(SessionInfo::default())
                } else {
                    let err = RpcError::new(INVALID_REQUEST, "send `initialize` before any other request");
                    let _ = tx.send(encode_error(Some(&req.id), &err));
                    continue;
                };
                let peer = Peer::new(tx.clone(), pending.clone(), Arc::new(info.capabilities.clone()));
                let cancel = CancellationToken::new();
                lock(&running).insert(req.id.clone(), cancel.clone());
                let (handler, running, out) = (handler.clone(), running.clone(), tx.clone());
                tokio::spawn(async move {
                    let id = req.id.clone();
                    let ctx = RequestContext {
                        session: info,
                        peer,
                        param_headers: Vec::new(),
                        principal: local(),
                        trace: None,
                    };
                    let outcome = tokio::select! {
                        o = handler.handle(req, ctx) => Some(o),
                        _ = cancel.cancelled() => None,
                    };
                    lock(&running).remove(&id);
                    if let Some(outcome) = outcome {
                        let _ = out.send(encode_response(Some(&id), outcome.as_deref().map_err(|e| &**e)));
                    }
                });
            }
        }
    }
    streams.detach(&stream_id);
    for (key, uris) in listens.values() {
        streams.detach(key);
        handler.watch_resources(uris, false);
    }
    if let Some(s) = &session {
        handler.session_closed(s);
    }
    // Let answers already being written go out, then stop. Parked work and requests
    // waiting on this client still hold senders, so the writer gets a deadline too.
    drop(tx);
    drop(lot);
    for token in lock(&running).values() {
        token.cancel();
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer).await;
}

/// A request carrying the 2026-07-28 `_meta` envelope (and not `initialize`).
fn is_modern(req: &crate::jsonrpc::Request) -> bool {
    req.method != "initialize" && modern::has_envelope(req.params.as_deref())
}

/// A stdio client is the local user who started the process: there is no credential to
/// check, so it is anonymous.
fn local() -> Arc<Principal> {
    Arc::new(Principal::anonymous())
}
