//! An audit event: who did what through which server, what each stage decided, how it
//! ended. Built on the request path from what is at hand (no parsing, no scanning); the
//! writer masks arguments and serializes it off the request path.

use portcullis_core::Principal;
use portcullis_mcp::jsonrpc::{Request, RpcError};
use portcullis_mcp::server::RequestContext;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What the stages noted during one exchange.
#[derive(Debug, Default, Clone)]
pub struct Exchange {
    pub server: Option<String>,
    pub decisions: Vec<Decision>,
}

/// One stage's decision: which policy, which rule (or profile), what it did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// `access`, `guard`, `pinning`, `flow`, `limits`.
    pub policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// `allow`, `flag`, `redact`, `deny`, `asked` (the user allowed it), `monitor` (a
    /// guard in monitor mode would have acted: `detail.would`).
    pub action: String,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

impl Decision {
    pub fn new(policy: &str, rule: Option<&str>, action: &str) -> Decision {
        Decision {
            policy: policy.to_owned(),
            rule: rule.map(str::to_owned),
            action: action.to_owned(),
            detail: Value::Null,
        }
    }

    pub fn with_detail(mut self, detail: Value) -> Decision {
        self.detail = detail;
        self
    }
}

/// How an exchange ended.
pub enum Ending<'a> {
    /// A result of this many bytes went back.
    Answered(usize),
    /// The gateway answered with an error (a refusal carries its policy in `data`).
    Gateway(&'a RpcError),
    /// The upstream's error went back verbatim.
    Upstream(&'a RawValue),
}

/// One exchange, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// RFC 3339, milliseconds, UTC.
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The gateway process that handled it (`host:pid`).
    pub instance: Arc<str>,
    /// User, team, app, roles, key id, how they authenticated (never a credential).
    pub principal: Arc<Principal>,
    pub caller: String,
    pub client: String,
    pub session: String,
    pub method: String,
    pub server: Option<String>,
    /// The tool, prompt or resource as the client named it.
    pub target: Option<String>,
    /// Filled in by the writer according to `audit.payloads`.
    pub arguments: Option<Value>,
    pub arguments_bytes: usize,
    pub result_bytes: usize,
    pub latency_ms: f64,
    /// `ok`, `refused` (by a gateway policy) or `error`.
    pub outcome: &'static str,
    /// The JSON-RPC error code, if it ended in an error (the HTTP status for a caller the
    /// front door refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i64>,
    /// The strongest decision: `allow`, `flag`, `redact` or `deny`.
    pub decision: &'static str,
    pub decisions: Vec<Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// For the writer: when (Unix ms), and the arguments as sent.
    #[serde(skip)]
    pub at_ms: i64,
    #[serde(skip)]
    pub raw_arguments: Option<Box<RawValue>>,
}

impl Event {
    /// The event of one request: `target` is the tool, prompt or resource it named,
    /// `arguments` its arguments as the client sent them.
    pub fn new(
        request: &Request,
        (target, raw_arguments): (Option<String>, Option<Box<RawValue>>),
        ctx: &RequestContext,
        notes: Exchange,
        ending: Ending<'_>,
        (started, took): (SystemTime, Duration),
    ) -> Event {
        let mut decisions = notes.decisions;
        let (outcome, status, result_bytes) = match ending {
            Ending::Answered(bytes) => ("ok", None, bytes),
            Ending::Gateway(e) => match e.data.as_ref().and_then(refusal) {
                Some(refused) => {
                    decisions.push(refused);
                    ("refused", Some(e.code), 0)
                }
                None => ("error", Some(e.code), 0),
            },
            Ending::Upstream(raw) => ("error", upstream_code(raw), raw.get().len()),
        };
        let decision = decisions.iter().map(|d| strength(&d.action)).max().unwrap_or(0);
        let at = started.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        Event {
            time: humantime::format_rfc3339_millis(started).to_string(),
            region: None,
            instance: Arc::from(""),
            principal: ctx.principal.clone(),
            caller: ctx.principal.subject(),
            client: ctx.session.client_name.clone(),
            session: ctx.session.id.clone(),
            method: request.method.clone(),
            server: notes.server,
            target,
            arguments: None,
            arguments_bytes: raw_arguments.as_ref().map_or(0, |a| a.get().len()),
            result_bytes,
            latency_ms: took.as_secs_f64() * 1e3,
            outcome,
            status,
            decision: ["allow", "flag", "redact", "deny"][decision],
            decisions,
            trace_id: None,
            at_ms: i64::try_from(at.as_millis()).unwrap_or(i64::MAX),
            raw_arguments,
        }
    }

    /// A caller the front door refused (no credential, an invalid one, missing scopes):
    /// `at` is the HTTP method and path, `why` what the caller was told.
    pub fn at_door(at: &str, rule: &str, why: &str, started: SystemTime) -> Event {
        let took = started.elapsed().unwrap_or_default();
        let detail = serde_json::json!({ "reason": why });
        Event {
            time: humantime::format_rfc3339_millis(started).to_string(),
            region: None,
            instance: Arc::from(""),
            principal: Arc::new(Principal::anonymous()),
            caller: "unauthenticated".into(),
            client: String::new(),
            session: String::new(),
            method: at.to_owned(),
            server: None,
            target: None,
            arguments: None,
            arguments_bytes: 0,
            result_bytes: 0,
            latency_ms: took.as_secs_f64() * 1e3,
            outcome: "refused",
            status: Some(if rule == "insufficient-scope" { 403 } else { 401 }),
            decision: "deny",
            decisions: vec![Decision::new("auth", Some(rule), "deny").with_detail(detail)],
            trace_id: None,
            at_ms: i64::try_from(started.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis())
                .unwrap_or(i64::MAX),
            raw_arguments: None,
        }
    }
}

/// The decision a gateway refusal carries in its error data (`policy`, `rule`, and for a
/// guard its profile and detectors).
fn refusal(data: &Value) -> Option<Decision> {
    let policy = data.get("policy")?.as_str()?;
    let rule = data.get("rule").or_else(|| data.get("profile")).and_then(Value::as_str);
    let detail = match (data.get("detectors"), data.get("direction")) {
        (Some(detectors), direction) => serde_json::json!({ "detectors": detectors, "direction": direction }),
        _ => Value::Null,
    };
    Some(Decision::new(policy, rule, "deny").with_detail(detail))
}

fn strength(action: &str) -> usize {
    match action {
        "deny" => 3,
        "redact" => 2,
        "flag" | "asked" | "monitor" => 1,
        _ => 0,
    }
}

fn upstream_code(raw: &RawValue) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Code {
        code: i64,
    }
    serde_json::from_str::<Code>(raw.get()).ok().map(|c| c.code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_refusal_names_its_policy_and_rule() {
        let d = refusal(&json!({ "policy": "access", "rule": "no-deletes" })).unwrap();
        assert_eq!((d.policy.as_str(), d.rule.as_deref(), d.action.as_str()), ("access", Some("no-deletes"), "deny"));
        let d = refusal(&json!({ "policy": "guard", "profile": "strict", "direction": "request",
            "detectors": ["secret.github_pat"] }))
        .unwrap();
        assert_eq!(d.rule.as_deref(), Some("strict"));
        assert_eq!(d.detail["detectors"], json!(["secret.github_pat"]));
        assert!(refusal(&json!({ "uri": "x" })).is_none(), "an error without a policy is no refusal");
    }

    #[test]
    fn the_upstream_error_code_is_kept() {
        let raw = RawValue::from_string(r#"{"code":-32601,"message":"nope"}"#.into()).unwrap();
        assert_eq!(upstream_code(&raw), Some(-32601));
    }
}
