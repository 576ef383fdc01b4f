//! The stateless 2026-07-28 revision on the server side: every request carries its
//! protocol version and client capabilities in `params._meta`, mirrored in HTTP headers
//! the server must check; results carry `resultType` (and cache hints on lists and reads).

use super::SessionInfo;
use crate::jsonrpc::{Request, RpcError, INVALID_PARAMS, METHOD_NOT_FOUND};
use crate::object::RawObject;
use crate::peer::ClientCapabilities;
use crate::protocol::{supported_versions, MODERN_VERSION};
use serde_json::value::RawValue;
use serde_json::{json, Value};

pub const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
pub const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// A header and the body disagree, or a required header is missing.
pub const HEADER_MISMATCH: i64 = -32020;
/// The request needs a client capability the client did not declare.
pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
/// The protocol version is not one the server speaks.
pub const UNSUPPORTED_VERSION: i64 = -32022;

/// Methods of the legacy revisions that 2026-07-28 removed.
const REMOVED: &[&str] = &["initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"];

/// Results that must carry cache hints (`ttlMs`, `cacheScope`).
const CACHEABLE: &[&str] =
    &["server/discover", "tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"];

/// Whether params carry the 2026-07-28 envelope (`_meta` with a protocol version).
/// The substring test only skips the parse for the many requests that cannot have it.
pub fn has_envelope(params: Option<&RawValue>) -> bool {
    params.is_some_and(|p| {
        p.get().contains(META_VERSION)
            && RawObject::parse(p, "params")
                .ok()
                .and_then(|o| o.get_object("_meta"))
                .is_some_and(|m| m.get(META_VERSION).is_some())
    })
}

/// What one modern request said about its client.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub session: SessionInfo,
    /// Whether the client asked for log messages (`io.modelcontextprotocol/logLevel`).
    pub wants_logs: bool,
}

/// The routing headers of a modern HTTP request.
pub struct Headers<'a> {
    pub version: Option<&'a str>,
    pub method: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// Validates a modern request: the `_meta` envelope first, then that the headers agree
/// with the body, then the version (the order the conformance suite checks them in).
/// `headers` is `None` on stdio, which has none.
pub fn validate(req: &Request, headers: Option<&Headers<'_>>) -> Result<Envelope, RpcError> {
    let params = RawObject::parse_params(req.params.as_deref())?;
    let meta = params.get_object("_meta").ok_or_else(|| {
        RpcError::new(INVALID_PARAMS, format!("params._meta is missing: every 2026-07-28 request carries {META_VERSION} and {META_CAPABILITIES} there"))
    })?;
    let version = meta.get_str(META_VERSION).ok_or_else(|| {
        RpcError::new(INVALID_PARAMS, format!("params._meta is missing the required key {META_VERSION}"))
    })?;
    let capabilities: Value = meta
        .get(META_CAPABILITIES)
        .and_then(|c| serde_json::from_str(c.get()).ok())
        .filter(Value::is_object)
        .ok_or_else(|| {
            RpcError::new(
                INVALID_PARAMS,
                format!("params._meta is missing the required key {META_CAPABILITIES} (an object)"),
            )
        })?;
    if let Some(header) = headers.and_then(|h| h.version) {
        if header != version {
            return Err(mismatch("the MCP-Protocol-Version header does not match params._meta's protocol version"));
        }
    }
    if version != MODERN_VERSION {
        return Err(unsupported(&version));
    }
    if let Some(headers) = headers {
        check_routing_headers(req, &params, headers)?;
    }
    if REMOVED.contains(&req.method.as_str()) {
        return Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("Method not found: {} does not exist in protocol {MODERN_VERSION}", req.method),
        ));
    }
    let client_name = meta
        .get_object(META_CLIENT_INFO)
        .and_then(|c| c.get_str("name"))
        .unwrap_or_default()
        .chars()
        .take(100)
        .collect();
    Ok(Envelope {
        session: SessionInfo {
            id: String::new(),
            protocol_version: version,
            capabilities: ClientCapabilities::from_json(Some(&capabilities)),
            client_name,
            endpoint: String::new(),
            owner: String::new(),
        },
        wants_logs: meta.get(META_LOG_LEVEL).is_some(),
    })
}

/// `Mcp-Method` must name the method; `Mcp-Name` the tool, prompt or resource.
fn check_routing_headers(req: &Request, params: &RawObject, headers: &Headers<'_>) -> Result<(), RpcError> {
    match headers.method {
        Some(m) if m.trim() == req.method => {}
        Some(_) => return Err(mismatch("the Mcp-Method header does not match the request's method")),
        None => return Err(mismatch("the Mcp-Method header is required")),
    }
    let name_field = match req.method.as_str() {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    if let Some(field) = name_field {
        let body = params.get_str(field);
        match headers.name.map(decode_header_value) {
            Some(Some(h)) if Some(h.as_str()) == body.as_deref() => {}
            Some(_) => return Err(mismatch(&format!("the Mcp-Name header does not match params.{field}"))),
            None => return Err(mismatch(&format!("the Mcp-Name header is required for {}", req.method))),
        }
    }
    Ok(())
}

/// Header values may be sent as `=?base64?<b64>?=` (non-ASCII or padded with spaces);
/// others are taken trimmed of optional whitespace. `None` for a malformed encoding.
pub fn decode_header_value(raw: &str) -> Option<String> {
    use base64::Engine;
    let trimmed = raw.trim_matches(|c| c == ' ' || c == '\t');
    match trimmed.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) {
        Some(b64) => {
            base64::engine::general_purpose::STANDARD.decode(b64).ok().and_then(|bytes| String::from_utf8(bytes).ok())
        }
        None => Some(trimmed.to_owned()),
    }
}

/// Checks the `Mcp-Param-*` headers of a `tools/call` against its arguments: every
/// argument whose schema property carries `x-mcp-header: X` must be mirrored, exactly,
/// in `Mcp-Param-X` (and no such header may come without its argument).
pub fn check_param_headers(schema: &Value, arguments: &Value, headers: &[(String, String)]) -> Result<(), RpcError> {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else { return Ok(()) };
    for (prop, def) in props {
        let Some(suffix) = def.get("x-mcp-header").and_then(Value::as_str) else { continue };
        let header = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(suffix)).map(|(_, v)| v.as_str());
        let body = arguments.get(prop).filter(|v| !v.is_null());
        match (header, body) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(mismatch(&format!(
                    "the Mcp-Param-{suffix} header is required when arguments.{prop} is set"
                )))
            }
            (Some(_), None) => {
                return Err(mismatch(&format!("Mcp-Param-{suffix} was sent but arguments.{prop} is not set")))
            }
            (Some(raw), Some(value)) => {
                let decoded = decode_header_value(raw)
                    .ok_or_else(|| mismatch(&format!("Mcp-Param-{suffix} is not valid `=?base64?...?=`")))?;
                let same = match value {
                    Value::String(s) => *s == decoded,
                    Value::Bool(b) => decoded == if *b { "true" } else { "false" },
                    Value::Number(n) => decoded.parse::<f64>().ok() == n.as_f64(),
                    _ => false,
                };
                if !same {
                    return Err(mismatch(&format!("Mcp-Param-{suffix} does not match arguments.{prop}")));
                }
            }
        }
    }
    Ok(())
}

fn mismatch(message: &str) -> RpcError {
    RpcError::new(HEADER_MISMATCH, format!("Header mismatch: {message}"))
}

/// The error for a version the server does not speak, listing the ones it does.
pub fn unsupported(requested: &str) -> RpcError {
    RpcError::new(UNSUPPORTED_VERSION, "Unsupported protocol version")
        .with_data(json!({ "supported": supported_versions(), "requested": requested }))
}

/// Adds what 2026-07-28 requires of a result the handler built the legacy way:
/// `resultType`, and cache hints on lists and reads. Fields already present are kept.
pub fn stamp_result(method: &str, result: Box<RawValue>) -> Box<RawValue> {
    let Ok(mut obj) = RawObject::parse(&result, "result") else { return result };
    if obj.get("resultType").is_none() {
        obj.set("resultType", "complete");
    }
    if CACHEABLE.contains(&method) {
        if obj.get("ttlMs").is_none() {
            obj.set("ttlMs", &0);
        }
        if obj.get("cacheScope").is_none() {
            // Lists may differ per caller (authorization): never let intermediaries share them.
            obj.set("cacheScope", "private");
        }
    }
    obj.to_raw()
}

/// The HTTP status a modern error travels with.
pub fn status_of(code: i64) -> u16 {
    match code {
        -32700 | -32600 | INVALID_PARAMS | HEADER_MISMATCH | MISSING_CLIENT_CAPABILITY | UNSUPPORTED_VERSION => 400,
        METHOD_NOT_FOUND => 404,
        _ => 200,
    }
}

/// The `server/discover` result for a server with these capabilities.
pub fn discover_result(capabilities: Value, instructions: Option<&str>, name: &str, version: &str) -> Value {
    let mut result = json!({
        "supportedVersions": supported_versions(),
        "capabilities": capabilities,
        "resultType": "complete",
        "ttlMs": 0,
        "cacheScope": "private",
        "_meta": { META_SERVER_INFO: { "name": name, "version": version } },
    });
    if let Some(text) = instructions {
        result["instructions"] = json!(text);
    }
    result
}

/// A `subscriptions/listen` filter: which notifications this stream wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenFilter {
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
    pub resource_uris: Vec<String>,
}

impl ListenFilter {
    pub fn parse(params: &RawObject) -> ListenFilter {
        let n = params.get_object("notifications").unwrap_or_default();
        let flag = |k: &str| n.get(k).is_some_and(|v| v.get() == "true");
        let uris = n
            .get("resourceSubscriptions")
            .and_then(|v| serde_json::from_str::<Vec<String>>(v.get()).ok())
            .unwrap_or_default();
        ListenFilter {
            tools: flag("toolsListChanged"),
            prompts: flag("promptsListChanged"),
            resources: flag("resourcesListChanged"),
            resource_uris: uris,
        }
    }

    /// The filter as the acknowledgement echoes it (only what is honoured).
    pub fn to_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        if self.tools {
            out.insert("toolsListChanged".into(), json!(true));
        }
        if self.prompts {
            out.insert("promptsListChanged".into(), json!(true));
        }
        if self.resources {
            out.insert("resourcesListChanged".into(), json!(true));
        }
        if !self.resource_uris.is_empty() {
            out.insert("resourceSubscriptions".into(), json!(self.resource_uris));
        }
        Value::Object(out)
    }

    /// Whether a notification belongs on this stream.
    pub fn wants(&self, method: &str, params: Option<&RawValue>) -> bool {
        match method {
            "notifications/tools/list_changed" => self.tools,
            "notifications/prompts/list_changed" => self.prompts,
            "notifications/resources/list_changed" => self.resources,
            "notifications/resources/updated" => {
                let uri = params.and_then(|p| RawObject::parse(p, "params").ok()).and_then(|o| o.get_str("uri"));
                uri.is_some_and(|u| self.resource_uris.contains(&u))
            }
            _ => false,
        }
    }
}

/// Reads a `subscriptions/listen` request: its filter, its id as raw JSON, and the
/// acknowledgement that must open the stream.
pub fn acknowledge(req: &Request) -> (ListenFilter, Box<RawValue>, String) {
    let params = RawObject::parse_params(req.params.as_deref()).unwrap_or_default();
    let filter = ListenFilter::parse(&params);
    let id = crate::jsonrpc::to_raw(&req.id);
    let ack = stamp_subscription(Some(&crate::jsonrpc::to_raw(&json!({ "notifications": filter.to_json() }))), &id);
    let message = crate::jsonrpc::encode_notification("notifications/subscriptions/acknowledged", Some(&ack));
    (filter, id, message)
}

/// Adds `_meta.subscriptionId` to a notification's params.
pub fn stamp_subscription(params: Option<&RawValue>, subscription: &RawValue) -> Box<RawValue> {
    let mut obj = params.and_then(|p| RawObject::parse(p, "params").ok()).unwrap_or_default();
    let mut meta = obj.get_object("_meta").unwrap_or_default();
    meta.set_raw(META_SUBSCRIPTION_ID, subscription.to_owned());
    obj.set_raw("_meta", meta.to_raw());
    obj.to_raw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::Message;

    fn request(body: &str) -> Request {
        match Message::parse(body.as_bytes()).unwrap() {
            Message::Request(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn headers<'a>(method: &'a str, name: Option<&'a str>) -> Headers<'a> {
        Headers { version: Some(MODERN_VERSION), method: Some(method), name }
    }

    const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"sampling":{}}}"#;

    #[test]
    fn a_valid_request_yields_its_envelope() {
        let r =
            request(&format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo",{META}}}}}"#));
        let env = validate(&r, Some(&headers("tools/call", Some(" echo ")))).unwrap();
        assert!(env.session.capabilities.sampling && !env.session.capabilities.elicitation);
        assert!(!env.wants_logs);
        let env = validate(&r, Some(&headers("tools/call", Some("=?base64?ZWNobw==?=")))).unwrap();
        assert_eq!(env.session.protocol_version, MODERN_VERSION);
    }

    #[test]
    fn each_violation_gets_its_code() {
        let code = |body: String, h: Headers<'_>| validate(&request(&body), Some(&h)).unwrap_err().code;
        let no_meta = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#.to_owned();
        assert_eq!(code(no_meta, headers("tools/list", None)), INVALID_PARAMS);
        let list = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{{META}}}}}"#);
        assert_eq!(code(list.clone(), headers("prompts/list", None)), HEADER_MISMATCH);
        assert_eq!(code(list.clone(), headers("TOOLS/LIST", None)), HEADER_MISMATCH);
        assert_eq!(
            code(list.clone(), Headers { version: Some("2027-01-01"), ..headers("tools/list", None) }),
            HEADER_MISMATCH
        );
        let call = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo",{META}}}}}"#);
        assert_eq!(code(call.clone(), headers("tools/call", None)), HEADER_MISMATCH);
        assert_eq!(code(call, headers("tools/call", Some("other"))), HEADER_MISMATCH);
        let v999 = list.replace("2026-07-28", "v999.0.0");
        assert_eq!(
            code(v999, Headers { version: Some("v999.0.0"), ..headers("tools/list", None) }),
            UNSUPPORTED_VERSION
        );
        let ping = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{{META}}}}}"#);
        assert_eq!(code(ping, headers("ping", None)), METHOD_NOT_FOUND);
    }

    #[test]
    fn param_headers_mirror_annotated_arguments() {
        let schema = json!({ "properties": { "region": { "type": "string", "x-mcp-header": "Region" }, "n": { "type": "integer", "x-mcp-header": "N" } } });
        let h = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let args = json!({ "region": "Hello", "n": 42 });
        assert!(check_param_headers(&schema, &args, &h(&[("region", "=?base64?SGVsbG8=?="), ("N", "42")])).is_ok());
        assert!(check_param_headers(&schema, &args, &h(&[("Region", "Hello"), ("n", "42.0")])).is_ok());
        for bad in ["=?base64?SGVsbG8?=", "=?base64?SGVs!!!bG8=?=", "Bye"] {
            let e = check_param_headers(&schema, &args, &h(&[("Region", bad), ("N", "42")])).unwrap_err();
            assert_eq!(e.code, HEADER_MISMATCH, "{bad}");
        }
        assert!(check_param_headers(&schema, &args, &h(&[("N", "42")])).is_err(), "a missing header is rejected");
        assert!(check_param_headers(&schema, &json!({}), &[]).is_ok());
    }

    #[test]
    fn results_get_result_type_and_cache_hints() {
        let raw = RawValue::from_string(r#"{"tools":[]}"#.to_owned()).unwrap();
        assert_eq!(
            stamp_result("tools/list", raw).get(),
            r#"{"tools":[],"resultType":"complete","ttlMs":0,"cacheScope":"private"}"#
        );
        let raw = RawValue::from_string(r#"{"content":[],"resultType":"input_required"}"#.to_owned()).unwrap();
        assert_eq!(stamp_result("tools/call", raw).get(), r#"{"content":[],"resultType":"input_required"}"#);
    }

    #[test]
    fn listen_filters_choose_notifications() {
        let raw = RawValue::from_string(
            r#"{"notifications":{"toolsListChanged":true,"resourceSubscriptions":["a://x"]}}"#.to_owned(),
        )
        .unwrap();
        let f = ListenFilter::parse(&RawObject::parse(&raw, "params").unwrap());
        assert!(f.wants("notifications/tools/list_changed", None));
        assert!(!f.wants("notifications/prompts/list_changed", None));
        let upd = RawValue::from_string(r#"{"uri":"a://x"}"#.to_owned()).unwrap();
        assert!(f.wants("notifications/resources/updated", Some(&upd)));
        let other = RawValue::from_string(r#"{"uri":"a://y"}"#.to_owned()).unwrap();
        assert!(!f.wants("notifications/resources/updated", Some(&other)));
        let id = RawValue::from_string("7".to_owned()).unwrap();
        assert_eq!(
            stamp_subscription(Some(&upd), &id).get(),
            r#"{"uri":"a://x","_meta":{"io.modelcontextprotocol/subscriptionId":7}}"#
        );
    }
}
