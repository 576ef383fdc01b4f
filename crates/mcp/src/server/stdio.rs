//! The stdio transport, server side: one client, one session, newline-delimited JSON-RPC.

use super::{session_from_initialize, Handler, RequestContext, SessionInfo, Streams};
use crate::jsonrpc::{encode_error, encode_response, Id, Message, RpcError, INVALID_REQUEST, REQUEST_CANCELLED};
use crate::peer::{lock, Peer, PendingRequests};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};
use tokio_util::sync::CancellationToken;

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
                    let id = n
                        .params
                        .as_deref()
                        .and_then(|p| serde_json::from_str::<serde_json::Value>(p.get()).ok())
                        .and_then(|v| v.get("requestId").map(|r| r.to_string()));
                    if let Some(id) = id {
                        let found = lock(&running).iter().find(|(k, _)| k.as_json() == id).map(|(_, t)| t.clone());
                        if let Some(token) = found {
                            token.cancel();
                        }
                    }
                }
                _ => {
                    if let Some(s) = &session {
                        handler.notification(n, s);
                    }
                }
            },
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
                    let ctx = RequestContext { session: info, peer, param_headers: Vec::new() };
                    let outcome = tokio::select! {
                        o = handler.handle(req, ctx) => o,
                        _ = cancel.cancelled() => Err(RpcError::new(REQUEST_CANCELLED, "request cancelled by the client").to_raw()),
                    };
                    lock(&running).remove(&id);
                    let _ = out.send(encode_response(Some(&id), outcome.as_deref().map_err(|e| &**e)));
                });
            }
        }
    }
    streams.detach(&stream_id);
    if let Some(s) = &session {
        handler.session_closed(s);
    }
    // Let answers already being written go out, then stop.
    drop(tx);
    for token in lock(&running).values() {
        token.cancel();
    }
    let _ = writer.await;
}
