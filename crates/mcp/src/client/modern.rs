//! Talking 2026-07-28 to an upstream: discovery instead of `initialize`, the `_meta`
//! envelope and routing headers on every request, and `input_required` results turned
//! into ordinary server→client requests for clients of the older revisions.

use crate::jsonrpc::{to_raw, RpcError, INTERNAL_ERROR};
use crate::object::RawObject;
use crate::peer::{ClientCapabilities, Outcome, Peer};
use crate::protocol::MODERN_VERSION;
use crate::server::modern::{META_CAPABILITIES, META_CLIENT_INFO, META_LOG_LEVEL, META_SERVER_INFO, META_VERSION};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::time::Duration;

/// Which revision family to speak to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolChoice {
    /// Probe with `server/discover`; fall back to `initialize` if the upstream does not answer it.
    #[default]
    Auto,
    /// `initialize` and sessions (2024-11-05 … 2025-11-25).
    Legacy,
    /// Stateless 2026-07-28 only.
    Modern,
}

/// How long the `server/discover` probe may take before falling back to `initialize`.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The most rounds of `input_required` the gateway answers for one request.
const MAX_ROUNDS: usize = 10;

/// Methods 2026-07-28 removed, and what the gateway answers for them instead of the upstream.
pub(crate) fn local_answer(method: &str) -> Option<Box<RawValue>> {
    matches!(method, "ping" | "logging/setLevel" | "resources/subscribe" | "resources/unsubscribe")
        .then(crate::jsonrpc::empty_object)
}

/// Adds the `_meta` envelope to a request's params, keeping what the client put there (a
/// 2026-07-28 client's own envelope wins: its capabilities are the ones that matter).
/// A legacy client gets log messages without asking, so for one the envelope asks for
/// them (`info` and above).
pub(crate) fn stamp_envelope(
    params: Option<Box<RawValue>>,
    caps: Option<&ClientCapabilities>,
    legacy_client: bool,
) -> Box<RawValue> {
    let mut obj = params.as_deref().and_then(|p| RawObject::parse(p, "params").ok()).unwrap_or_default();
    let mut meta = obj.get_object("_meta").unwrap_or_default();
    if meta.get(META_VERSION).is_none() {
        meta.set(META_VERSION, MODERN_VERSION);
    }
    if meta.get(META_CAPABILITIES).is_none() {
        let mut declared = serde_json::Map::new();
        if let Some(c) = caps {
            for (on, name) in [(c.sampling, "sampling"), (c.elicitation, "elicitation"), (c.roots, "roots")] {
                if on {
                    declared.insert(name.into(), json!({}));
                }
            }
        }
        meta.set(META_CAPABILITIES, &declared);
    }
    if legacy_client && meta.get(META_LOG_LEVEL).is_none() {
        meta.set(META_LOG_LEVEL, "info");
    }
    if meta.get(META_CLIENT_INFO).is_none() {
        meta.set(META_CLIENT_INFO, &json!({ "name": "portcullis", "version": env!("CARGO_PKG_VERSION") }));
    }
    obj.set_raw("_meta", meta.to_raw());
    obj.to_raw()
}

/// Removes a 2026-07-28 client's envelope from `_meta` before the request goes to a legacy
/// upstream: it describes the client's hop to the gateway, and a dual-era upstream would
/// otherwise answer the gateway's legacy session in the other era.
pub(crate) fn strip_envelope(params: Option<Box<RawValue>>) -> Option<Box<RawValue>> {
    let raw = params?;
    if !raw.get().contains("io.modelcontextprotocol/") {
        return Some(raw);
    }
    let Ok(mut obj) = RawObject::parse(&raw, "params") else { return Some(raw) };
    let Some(mut meta) = obj.get_object("_meta") else { return Some(raw) };
    for key in [META_VERSION, META_CAPABILITIES, META_CLIENT_INFO, META_LOG_LEVEL] {
        meta.remove(key);
    }
    if meta.0.is_empty() {
        obj.remove("_meta");
    } else {
        obj.set_raw("_meta", meta.to_raw());
    }
    Some(obj.to_raw())
}

/// The `Mcp-Name` value of a request, encoded for a header when it is not plain ASCII.
pub(crate) fn name_header(method: &str, params: &RawValue) -> Option<String> {
    let field = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return None,
    };
    let value = RawObject::parse(params, "params").ok()?.get_str(field)?;
    let plain =
        !value.is_empty() && value.bytes().all(|b| (0x21..=0x7e).contains(&b)) && !value.starts_with("=?base64?");
    Some(if plain {
        value
    } else {
        use base64::Engine;
        format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(value))
    })
}

/// Reads a `server/discover` result into what the gateway keeps about a server.
pub(crate) fn server_info(result: &RawValue) -> Result<super::ServerInfo, String> {
    let v: Value = serde_json::from_str(result.get()).map_err(|e| format!("invalid discover result: {e}"))?;
    let supported = v.get("supportedVersions").and_then(Value::as_array).ok_or("no supportedVersions")?;
    if !supported.iter().any(|s| s == MODERN_VERSION) {
        return Err(format!("it does not support {MODERN_VERSION}"));
    }
    Ok(super::ServerInfo {
        protocol_version: MODERN_VERSION.to_owned(),
        capabilities: v.get("capabilities").cloned().unwrap_or_else(|| json!({})),
        server_info: v
            .pointer(&format!("/_meta/{}", META_SERVER_INFO.replace('/', "~1")))
            .cloned()
            .unwrap_or(Value::Null),
        instructions: v.get("instructions").and_then(Value::as_str).map(str::to_owned),
    })
}

/// The params of `server/discover`.
pub(crate) fn discover_params() -> Box<RawValue> {
    stamp_envelope(None, None, false)
}

/// The params of the gateway's own `subscriptions/listen` to an upstream: every list.
/// The gateway's own `subscriptions/listen` to a 2026-07-28 upstream: every list, and the
/// resources its clients watch (2026-07-28 has no `resources/subscribe`).
pub(crate) fn listen_params(resources: &[String]) -> Box<RawValue> {
    let mut notifications =
        json!({ "toolsListChanged": true, "promptsListChanged": true, "resourcesListChanged": true });
    if !resources.is_empty() {
        notifications["resourceSubscriptions"] = json!(resources);
    }
    stamp_envelope(Some(to_raw(&json!({ "notifications": notifications }))), None, false)
}

/// What an `input_required` result asks for.
struct InputRequired {
    requests: serde_json::Map<String, Value>,
    state: Option<Box<RawValue>>,
}

/// If `outcome` is an `input_required` result, the requests it makes and its state.
fn input_required(outcome: &Outcome) -> Option<InputRequired> {
    let result = outcome.as_ref().ok()?;
    if !result.get().contains("input_required") {
        return None;
    }
    let obj = RawObject::parse(result, "result").ok()?;
    if obj.get_str("resultType").as_deref() != Some("input_required") {
        return None;
    }
    let requests = obj
        .get("inputRequests")
        .and_then(|r| serde_json::from_str::<serde_json::Map<String, Value>>(r.get()).ok())
        .unwrap_or_default();
    Some(InputRequired { requests, state: obj.get("requestState").map(ToOwned::to_owned) })
}

/// Runs a request against a 2026-07-28 upstream for a client that takes server→client
/// requests: each `input_required` round becomes requests to the client, whose answers go
/// back to the upstream in a retry. Clients of 2026-07-28 get `input_required` as is.
pub(crate) async fn with_input_rounds<F, Fut>(
    params: Option<Box<RawValue>>,
    peer: Option<&Peer>,
    client_timeout: Duration,
    mut send: F,
) -> Result<Outcome, super::UpstreamError>
where
    F: FnMut(Option<Box<RawValue>>) -> Fut,
    Fut: std::future::Future<Output = Result<Outcome, super::UpstreamError>>,
{
    let mut outcome = send(params.clone()).await?;
    let Some(peer) = peer.filter(|p| p.has_back_channel()) else { return Ok(outcome) };
    for _ in 0..MAX_ROUNDS {
        let Some(InputRequired { requests, state }) = input_required(&outcome) else { return Ok(outcome) };
        let mut answers = serde_json::Map::new();
        for (key, request) in requests {
            let method = request.get("method").and_then(Value::as_str).unwrap_or_default().to_owned();
            let inner = request.get("params").map(to_raw);
            match peer.request(&method, inner.as_deref(), client_timeout).await {
                Ok(answer) => {
                    answers.insert(key, serde_json::from_str(answer.get()).unwrap_or(Value::Null));
                }
                Err(error) => return Ok(Err(error)),
            }
        }
        let mut retry = params.as_deref().and_then(|p| RawObject::parse(p, "params").ok()).unwrap_or_default();
        retry.set("inputResponses", &answers);
        match &state {
            Some(s) => retry.set_raw("requestState", s.clone()),
            None => {
                retry.remove("requestState");
            }
        }
        outcome = send(Some(retry.to_raw())).await?;
    }
    Ok(match input_required(&outcome) {
        Some(_) => {
            Err(RpcError::new(INTERNAL_ERROR, format!("the upstream still wanted input after {MAX_ROUNDS} rounds"))
                .to_raw())
        }
        None => outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn the_envelope_is_added_without_overriding_the_client() {
        let caps = ClientCapabilities { sampling: true, ..Default::default() };
        let p = stamp_envelope(Some(raw(r#"{"name":"x","_meta":{"progressToken":1}}"#)), Some(&caps), true);
        let v: Value = serde_json::from_str(p.get()).unwrap();
        assert_eq!(v["_meta"]["progressToken"], 1);
        assert_eq!(v["_meta"][META_VERSION], MODERN_VERSION);
        assert_eq!(v["_meta"][META_CAPABILITIES], json!({ "sampling": {} }));
        assert_eq!(v["_meta"][META_LOG_LEVEL], "info");
        let theirs = raw(r#"{"_meta":{"io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}}"#);
        let v: Value = serde_json::from_str(stamp_envelope(Some(theirs), Some(&caps), false).get()).unwrap();
        assert_eq!(v["_meta"][META_CAPABILITIES], json!({ "elicitation": {} }));
        assert!(v["_meta"].get(META_LOG_LEVEL).is_none(), "a modern client without logLevel gets no logs");
    }

    #[test]
    fn the_envelope_is_stripped_for_legacy_upstreams() {
        let p =
            raw(r#"{"name":"x","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","progressToken":3}}"#);
        assert_eq!(strip_envelope(Some(p)).unwrap().get(), r#"{"name":"x","_meta":{"progressToken":3}}"#);
        let p = raw(r#"{"name":"x","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}"#);
        assert_eq!(strip_envelope(Some(p)).unwrap().get(), r#"{"name":"x"}"#);
        let p = raw(r#"{"name":"x"}"#);
        assert_eq!(strip_envelope(Some(p)).unwrap().get(), r#"{"name":"x"}"#);
    }

    #[test]
    fn names_are_encoded_for_headers_when_needed() {
        assert_eq!(name_header("tools/call", &raw(r#"{"name":"echo"}"#)).as_deref(), Some("echo"));
        assert_eq!(name_header("resources/read", &raw(r#"{"uri":"a b"}"#)).as_deref(), Some("=?base64?YSBi?="));
        assert_eq!(name_header("tools/list", &raw("{}")), None);
    }

    #[tokio::test]
    async fn input_required_rounds_are_answered_by_a_legacy_client() {
        use crate::jsonrpc::Message;
        use std::sync::Arc;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let pending = Arc::new(crate::peer::PendingRequests::default());
        let caps = Arc::new(ClientCapabilities { elicitation: true, ..Default::default() });
        let peer = Peer::new(tx, pending.clone(), caps);
        // The client answers every elicitation with "Alice".
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                let Ok(Message::Request(r)) = Message::parse(msg.as_bytes()) else { continue };
                let reply = format!(
                    r#"{{"jsonrpc":"2.0","id":{},"result":{{"action":"accept","content":{{"name":"Alice"}}}}}}"#,
                    r.id.as_json()
                );
                let Ok(Message::Response(resp)) = Message::parse(reply.as_bytes()) else { continue };
                pending.resolve(resp);
            }
        });
        let mut seen = Vec::new();
        let outcome = with_input_rounds(Some(raw(r#"{"name":"greet"}"#)), Some(&peer), Duration::from_secs(5), |params| {
            let text = params.map(|p| p.get().to_owned()).unwrap_or_default();
            seen.push(text.clone());
            async move {
                Ok(if text.contains("inputResponses") {
                    assert!(text.contains(r#""requestState":"s1""#), "{text}");
                    Ok(raw(r#"{"content":[{"type":"text","text":"Hello, Alice!"}]}"#))
                } else {
                    Ok(raw(r#"{"resultType":"input_required","inputRequests":{"who":{"method":"elicitation/create","params":{"message":"Name?"}}},"requestState":"s1"}"#))
                })
            }
        })
        .await
        .unwrap();
        assert!(outcome.unwrap().get().contains("Hello, Alice!"));
        assert_eq!(seen.len(), 2);
        assert!(
            seen[1].contains(r#""inputResponses":{"who":{"action":"accept","content":{"name":"Alice"}}}"#),
            "{}",
            seen[1]
        );
    }
}
