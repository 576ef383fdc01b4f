//! The JSON-RPC 2.0 envelope, parsed just far enough to route a message.
//!
//! A gateway must not drop fields it does not understand, so the envelope keeps
//! `params`, `result` and `error` as [`RawValue`]s: whatever the peer sent passes on
//! byte-exact unless a later stage rewrites a named field (see [`crate::object`]).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid request object (this includes batches, which MCP removed).
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist or is not available.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// A call refused by a limit (rate, quota, loop breaker); `data.retryAfter` says in how many
/// seconds it may pass. Answered over HTTP as `429 Too Many Requests` with `Retry-After`.
pub const RATE_LIMITED: i64 = -32029;
/// Internal error.
pub const INTERNAL_ERROR: i64 = -32603;
/// Upstream unavailable, timed out or unhealthy (implementation-defined server error range).
pub const UPSTREAM_ERROR: i64 = -32001;
/// The request was cancelled by the client.
pub const REQUEST_CANCELLED: i64 = -32800;

/// A JSON-RPC request id: a string or a number, kept in its exact textual form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Id(Box<str>);

impl Id {
    /// A numeric id (the gateway's own ids towards upstreams and clients).
    pub fn number(n: u64) -> Self {
        Id(n.to_string().into_boxed_str())
    }

    /// The id as JSON text, e.g. `7` or `"abc"`.
    pub fn as_json(&self) -> &str {
        &self.0
    }

    /// Parses the id from raw JSON; only strings and integers are valid ids.
    fn from_raw(raw: &RawValue) -> Result<Self, RpcError> {
        let text = raw.get();
        let valid = match text.as_bytes().first() {
            Some(b'"') => true,
            Some(b'-' | b'0'..=b'9') => text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok(),
            _ => false,
        };
        if valid {
            Ok(Id(text.into()))
        } else {
            Err(RpcError::new(INVALID_REQUEST, "invalid request: \"id\" must be a string or an integer"))
        }
    }

    /// The numeric value, if this is an integer id.
    pub fn as_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The text was validated as a JSON string or integer when it was parsed or built.
        match RawValue::from_string(self.0.to_string()) {
            Ok(raw) => raw.serialize(s),
            Err(e) => Err(serde::ser::Error::custom(e)),
        }
    }
}

/// One JSON-RPC message, classified.
#[derive(Debug)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

#[derive(Debug)]
pub struct Request {
    pub id: Id,
    pub method: String,
    pub params: Option<Box<RawValue>>,
}

#[derive(Debug)]
pub struct Notification {
    pub method: String,
    pub params: Option<Box<RawValue>>,
}

/// A response: exactly one of `result` and `error` is set.
#[derive(Debug)]
pub struct Response {
    pub id: Id,
    pub outcome: Result<Box<RawValue>, Box<RawValue>>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    method: Option<String>,
    params: Option<Box<RawValue>>,
    result: Option<Box<RawValue>>,
    error: Option<Box<RawValue>>,
}

impl Message {
    /// Parses one message. Errors carry the JSON-RPC code to answer with.
    pub fn parse(bytes: &[u8]) -> Result<Message, RpcError> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        match first {
            Some(b'[') => {
                return Err(RpcError::new(
                    INVALID_REQUEST,
                    "invalid request: JSON-RPC batches are not supported by MCP; send one message per request",
                ))
            }
            Some(b'{') => {}
            None => return Err(RpcError::new(PARSE_ERROR, "parse error: the body is empty")),
            Some(_) => {
                // Distinguish "not JSON" from "JSON but not an object".
                return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                    Ok(_) => RpcError::new(INVALID_REQUEST, "invalid request: a message must be a JSON object"),
                    Err(e) => RpcError::new(PARSE_ERROR, format!("parse error: {e}")),
                });
            }
        }
        let env: Envelope = serde_json::from_slice(bytes).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                RpcError::new(PARSE_ERROR, format!("parse error: {e}"))
            } else {
                RpcError::new(INVALID_REQUEST, format!("invalid request: {e}"))
            }
        })?;
        if env.jsonrpc.map(RawValue::get) != Some("\"2.0\"") {
            return Err(RpcError::new(INVALID_REQUEST, "invalid request: \"jsonrpc\" must be \"2.0\""));
        }
        if let Some(p) = &env.params {
            if !matches!(p.get().as_bytes().first(), Some(b'{' | b'[')) {
                return Err(RpcError::new(INVALID_REQUEST, "invalid request: \"params\" must be an object"));
            }
        }
        let id = match env.id {
            Some(raw) if raw.get() != "null" => Some(Id::from_raw(raw)?),
            _ => None,
        };
        match (env.method, id, env.result, env.error) {
            (Some(method), Some(id), None, None) => Ok(Message::Request(Request { id, method, params: env.params })),
            (Some(method), None, None, None) => Ok(Message::Notification(Notification { method, params: env.params })),
            (None, Some(id), Some(result), None) => Ok(Message::Response(Response { id, outcome: Ok(result) })),
            (None, Some(id), None, Some(error)) => Ok(Message::Response(Response { id, outcome: Err(error) })),
            _ => Err(RpcError::new(
                INVALID_REQUEST,
                "invalid request: expected a request (method + id), a notification (method) or a response (id + result or error)",
            )),
        }
    }

    /// The id of a request, if the message is one (used to answer parse-level errors).
    pub fn request_id(&self) -> Option<&Id> {
        match self {
            Message::Request(r) => Some(&r.id),
            _ => None,
        }
    }
}

/// The `requestId` of a `notifications/cancelled`.
pub fn cancelled_request_id(params: Option<&RawValue>) -> Option<Id> {
    #[derive(Deserialize)]
    struct Cancelled<'a> {
        #[serde(rename = "requestId", borrow)]
        request_id: &'a RawValue,
    }
    let c: Cancelled = serde_json::from_str(params?.get()).ok()?;
    Id::from_raw(c.request_id).ok()
}

/// Best effort: the id of a message whose envelope is otherwise invalid, so the error can name it.
pub fn salvage_id(bytes: &[u8]) -> Option<Id> {
    #[derive(Deserialize)]
    struct OnlyId<'a> {
        #[serde(borrow)]
        id: Option<&'a RawValue>,
    }
    let only: OnlyId = serde_json::from_slice(bytes).ok()?;
    only.id.and_then(|raw| Id::from_raw(raw).ok())
}

/// A JSON-RPC error object produced by the gateway itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into(), data: None }
    }

    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The error as a raw JSON object.
    pub fn to_raw(&self) -> Box<RawValue> {
        to_raw(self)
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}

/// Serializes a value that cannot fail to serialize (plain data: strings, maps with string keys).
pub fn to_raw<T: Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    match serde_json::value::to_raw_value(value) {
        Ok(raw) => raw,
        // Only reachable for maps with non-string keys or failing Serialize impls, which
        // no caller passes; answer with JSON null rather than panic.
        Err(_) => null(),
    }
}

/// The JSON `null` literal.
pub fn null() -> Box<RawValue> {
    // "null" is valid JSON, so this never fails; the fallback keeps the function total.
    RawValue::from_string("null".to_owned()).unwrap_or_else(|_| empty_object())
}

/// `{}`.
pub fn empty_object() -> Box<RawValue> {
    // A literal that is valid JSON: the conversion cannot fail.
    #[allow(clippy::unwrap_used)]
    RawValue::from_string("{}".to_owned()).unwrap()
}

/// Wire form of a request.
pub fn encode_request(id: &Id, method: &str, params: Option<&RawValue>) -> String {
    #[derive(Serialize)]
    struct Out<'a> {
        jsonrpc: &'static str,
        id: &'a Id,
        method: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        params: Option<&'a RawValue>,
    }
    encode(&Out { jsonrpc: "2.0", id, method, params })
}

/// Wire form of a notification.
pub fn encode_notification(method: &str, params: Option<&RawValue>) -> String {
    #[derive(Serialize)]
    struct Out<'a> {
        jsonrpc: &'static str,
        method: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        params: Option<&'a RawValue>,
    }
    encode(&Out { jsonrpc: "2.0", method, params })
}

/// Wire form of a response; `id` is `None` only for errors about unparseable requests.
pub fn encode_response(id: Option<&Id>, outcome: Result<&RawValue, &RawValue>) -> String {
    #[derive(Serialize)]
    struct Out<'a> {
        jsonrpc: &'static str,
        id: Option<&'a Id>,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a RawValue>,
    }
    let (result, error) = match outcome {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    encode(&Out { jsonrpc: "2.0", id, result, error })
}

/// Wire form of an error response produced by the gateway.
pub fn encode_error(id: Option<&Id>, error: &RpcError) -> String {
    encode_response(id, Err(&error.to_raw()))
}

fn encode<T: Serialize>(value: &T) -> String {
    // Serializing these plain structs of strings and raw JSON cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(bytes: &str) -> i64 {
        Message::parse(bytes.as_bytes()).unwrap_err().code
    }

    #[test]
    fn classifies_messages() {
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"x"}}"#).unwrap();
        assert!(matches!(m, Message::Request(ref r) if r.method == "tools/list" && r.id.as_json() == "1"));
        let m = Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(m, Message::Notification(_)));
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":"a","result":{"x" : 1}}"#).unwrap();
        match m {
            Message::Response(r) => assert_eq!(r.outcome.unwrap().get(), r#"{"x" : 1}"#),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_bad_envelopes_with_the_right_codes() {
        assert_eq!(code("{not json"), PARSE_ERROR);
        assert_eq!(code(""), PARSE_ERROR);
        assert_eq!(code("[]"), INVALID_REQUEST);
        assert_eq!(code(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#), INVALID_REQUEST);
        assert_eq!(code("42"), INVALID_REQUEST);
        assert_eq!(code(r#"{"id":1,"method":"ping"}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":3}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1}"#), INVALID_REQUEST);
    }

    #[test]
    fn ids_round_trip_exactly() {
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":"req-\u00e9","method":"ping"}"#).unwrap();
        let id = m.request_id().unwrap().clone();
        let out = encode_response(Some(&id), Ok(&empty_object()));
        assert_eq!(out, r#"{"jsonrpc":"2.0","id":"req-\u00e9","result":{}}"#);
    }

    #[test]
    fn salvages_the_id_of_a_bad_request() {
        assert_eq!(salvage_id(br#"{"jsonrpc":"1.0","id":9}"#).unwrap().as_json(), "9");
        assert!(salvage_id(b"{oops").is_none());
    }
}
