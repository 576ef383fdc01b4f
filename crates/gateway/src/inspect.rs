//! The inspect stage: tool arguments on the way to an upstream, and tool results,
//! resource contents and prompt messages on the way back, pass the guard.
//!
//! Content is JSON; every string that carries text a model will read is inspected, while
//! binary payloads (`data`, `blob` beside a `mimeType`), identifiers and `_meta` are skipped. Nothing found
//! means the original bytes go on untouched; a redaction re-serializes only that message;
//! a block replaces it with an error naming the profile and detectors (never the value).

use crate::audit::{self, Decision};
use crate::traces;
use futures::future::join_all;
use portcullis_core::Principal;
use portcullis_guard::timing::FamilyTimes;
use portcullis_guard::webhook::{FailMode, WebhookConfig};
use portcullis_guard::{Action, Caller, DetectorId, Direction, Finding, Guard, Profile};
use portcullis_mcp::jsonrpc::RpcError;
use portcullis_mcp::peer::{Peer, RequestFilter};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// JSON-RPC error code of a call stopped by a guard (application range).
pub const GUARD_BLOCKED: i64 = -32002;

/// Keys whose values are never model-readable text: identifiers, protocol metadata, and
/// sealed state that must come back byte for byte. (`data` and `blob` are skipped only
/// beside a `mimeType`, where they are binary payloads: elsewhere they are a tool's data.)
const SKIPPED_KEYS: [&str; 11] = [
    "mimeType",
    "uri",
    "type",
    "_meta",
    "annotations",
    "progressToken",
    "resultType",
    "isError",
    "requestState",
    "cursor",
    "nextCursor",
];

/// What the caller should do with a message after inspection.
pub enum Verdict {
    /// Forward the original bytes.
    Pass,
    /// Forward these bytes instead (redacted).
    Replace(Box<RawValue>),
    /// Refuse with this error.
    Block(RpcError),
}

/// What is being inspected, for logs and error messages.
pub struct Subject<'a> {
    pub server: &'a str,
    /// The tool, prompt or resource as the client named it.
    pub name: &'a str,
    /// "tool", "prompt", "resource"; "sampling" (a sampling request made by a tool),
    /// "sampling answer" or "elicitation answer" (the client's answer to one).
    pub what: &'static str,
}

impl Subject<'_> {
    /// Where a finding was, for messages: "the request of tool `x`".
    fn place(&self, side: &str) -> String {
        match self.what {
            "sampling" => format!("a sampling request of tool `{}`", self.name),
            "sampling answer" => format!("the client's answer to a sampling request of tool `{}`", self.name),
            "elicitation answer" => format!("the user's answer to an elicitation of tool `{}`", self.name),
            what => format!("the {side} of {what} `{}`", self.name),
        }
    }
}

/// The whole inspect stage for one message: the guard's detectors, then the profile's
/// webhook guards on what is left to send.
pub async fn inspect_message(
    http: &reqwest::Client,
    guard: &Arc<Guard>,
    profile: &Profile,
    direction: Direction,
    raw: &RawValue,
    subject: &Subject<'_>,
) -> Verdict {
    let stage = traces::stage(match direction {
        Direction::Request => "guard request",
        Direction::Response => "guard response",
    });
    stage.set("portcullis.guard.profile", || profile.name.clone());
    let verdict = inspect_all(http, guard, profile, direction, raw, subject, &stage).await;
    if let Verdict::Block(e) = &verdict {
        stage.fail(e.message.clone());
    }
    verdict
}

/// [`inspect_message`] under its trace stage, which gets a span per detector family when
/// the exchange is being traced.
async fn inspect_all(
    http: &reqwest::Client,
    guard: &Arc<Guard>,
    profile: &Profile,
    direction: Direction,
    raw: &RawValue,
    subject: &Subject<'_>,
    stage: &traces::Stage,
) -> Verdict {
    // Only a recorded exchange reads the clock and times the detector families.
    let started = traces::recording().then(SystemTime::now);
    let timed = started.is_some();
    let (verdict, times) = if raw.get().len() > LARGE_MESSAGE {
        inspect_off_runtime(guard, profile, direction, raw, subject, timed).await
    } else {
        let mut times = timed.then(FamilyTimes::default);
        (inspect_json_timed(guard, profile, direction, raw, subject, times.as_mut()), times)
    };
    if let (Some(times), Some(started)) = (&times, started) {
        traces::guard_families(stage, started, times);
    }
    let hooks: Vec<&(String, WebhookConfig)> =
        profile.webhooks.iter().filter(|(_, w)| w.applies_to(direction)).collect();
    if hooks.is_empty() || !guard.enabled || matches!(verdict, Verdict::Block(_)) {
        return verdict;
    }
    let current = match &verdict {
        Verdict::Replace(redacted) => redacted.as_ref(),
        Verdict::Pass | Verdict::Block(_) => raw,
    };
    let text = joined_text(current, direction);
    if text.trim().is_empty() {
        return verdict;
    }
    let calls = hooks.iter().map(|(name, hook)| ask_webhook(http, name, hook, &text, direction, subject));
    let findings: Vec<Finding> = join_all(calls).await.into_iter().flatten().collect();
    let inspection = guard.decide(profile, direction, &text, findings);
    let detectors: Vec<String> = inspection.decisions.iter().map(|d| d.finding.detector.as_str().to_owned()).collect();
    let side = side(direction);
    match inspection.enforced {
        // A classifier of the whole message cannot say what to cut: redact means block.
        Action::Block | Action::Redact => Verdict::Block(blocked_error(profile, side, &detectors, subject)),
        Action::Flag | Action::Allow => {
            if !detectors.is_empty() {
                let action = if inspection.enforced == Action::Flag { "flag" } else { "monitor" };
                audit::note(guard_decision(profile, action, side, &detectors, inspection.action));
                tracing::info!(
                    server = subject.server, name = subject.name, profile = %profile.name, direction = side,
                    would = inspection.action.as_str(), detectors = ?detectors, "webhook guard finding"
                );
            }
            verdict
        }
    }
}

/// Messages larger than this are inspected on the blocking pool: about 1 ms of scanning,
/// which would otherwise hold up every other request on that runtime worker.
const LARGE_MESSAGE: usize = 64 * 1024;

/// [`inspect_json`] on tokio's blocking pool, for large messages.
async fn inspect_off_runtime(
    guard: &Arc<Guard>,
    profile: &Profile,
    direction: Direction,
    raw: &RawValue,
    subject: &Subject<'_>,
    timed: bool,
) -> (Verdict, Option<FamilyTimes>) {
    let (guard, raw) = (guard.clone(), raw.to_owned());
    let (profile, server, name, what) =
        (profile.name.clone(), subject.server.to_owned(), subject.name.to_owned(), subject.what);
    let scan = tokio::task::spawn_blocking(move || {
        // The profile came from this guard, so it is found again by name.
        let profile = guard.profile(&profile)?;
        let subject = Subject { server: &server, name: &name, what };
        let mut times = timed.then(FamilyTimes::default);
        let (verdict, notes) =
            audit::observe_sync(|| inspect_json_timed(&guard, profile, direction, &raw, &subject, times.as_mut()));
        Some((verdict, notes, times))
    });
    match scan.await {
        Ok(Some((verdict, notes, times))) => {
            audit::merge(notes);
            (verdict, times)
        }
        // A panic in a detector or a vanished profile: refuse rather than let content through.
        Ok(None) | Err(_) => (
            Verdict::Block(RpcError::new(
                GUARD_BLOCKED,
                format!("blocked: the guard could not inspect {}", subject.place(side(direction))),
            )),
            None,
        ),
    }
}

/// Calls one webhook guard; a finding when it flags the text (or fails closed).
async fn ask_webhook(
    http: &reqwest::Client,
    name: &str,
    hook: &WebhookConfig,
    text: &str,
    direction: Direction,
    subject: &Subject<'_>,
) -> Option<Finding> {
    let finding = |score: f32| Finding {
        detector: DetectorId::Shared(Arc::from(format!("webhook.{name}"))),
        category: hook.category,
        start: 0,
        end: text.len(),
        score,
    };
    let mut request = http
        .post(&hook.url)
        .timeout(Duration::from_millis(hook.timeout_ms))
        .json(&json!({ "text": text, "direction": side(direction), "server": subject.server, "name": subject.name }));
    if let Some(token) = hook.bearer_env.as_deref().and_then(|v| std::env::var(v).ok()) {
        request = request.bearer_auth(token);
    }
    let answer = async {
        let response = request.send().await.map_err(|e| format!("request failed: {}", e.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("answered HTTP {}", response.status()));
        }
        let body: Value = response.json().await.map_err(|e| format!("answer is not JSON: {}", e.without_url()))?;
        let flagged = body.get("flagged").and_then(Value::as_bool).ok_or("answer has no boolean `flagged`")?;
        let score = body.get("score").and_then(Value::as_f64).unwrap_or(1.0) as f32;
        Ok::<_, String>(flagged.then_some(score.clamp(0.0, 1.0)))
    };
    match answer.await {
        Ok(score) => score.map(finding),
        Err(why) => match hook.on_error {
            FailMode::FailClosed => {
                tracing::warn!(webhook = name, reason = %why, "webhook guard unavailable: failing closed");
                Some(finding(1.0))
            }
            FailMode::FailOpen => {
                tracing::warn!(webhook = name, reason = %why, "webhook guard unavailable: failing open");
                None
            }
        },
    }
}

/// The text strings of a message, one per line, as the detectors saw them.
fn joined_text(raw: &RawValue, direction: Direction) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(raw.get()) else { return String::new() };
    let mut out = String::new();
    visit_strings(&mut value, skipped_keys(direction), &mut |s: &mut String| {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(s);
    });
    out
}

fn skipped_keys(direction: Direction) -> &'static [&'static str] {
    // Arguments are the caller's own data: every string counts. Results carry binary
    // payloads and protocol fields that are not text.
    match direction {
        Direction::Request => &[],
        Direction::Response => &SKIPPED_KEYS,
    }
}

fn side(direction: Direction) -> &'static str {
    match direction {
        Direction::Request => "request",
        Direction::Response => "response",
    }
}

/// The client handle an upstream call gets: the sampling requests the upstream makes pass
/// the inspect stage as content from the upstream (direction `response`) before they reach
/// the client's model, and the client's answers to sampling and elicitation as content going
/// to the upstream (direction `request`). A block is answered to the upstream as an error.
pub fn guarded_peer(guard: &Arc<Guard>, tool: &ToolOf<'_>, caller: &Arc<Principal>, peer: &Peer) -> Peer {
    if !guard.enabled {
        return peer.clone();
    }
    peer.with_filter(Arc::new(ClientRequestGuard {
        guard: guard.clone(),
        server: tool.server.to_owned(),
        name: tool.name.to_owned(),
        shown: tool.shown.to_owned(),
        caller: caller.clone(),
    }))
}

/// A tool as its server knows it (`name`, what profile bindings match) and as the client
/// sees it (`shown`, what messages name).
pub struct ToolOf<'a> {
    pub server: &'a str,
    pub name: &'a str,
    pub shown: &'a str,
}

/// The guard's view of a caller, for profile bindings.
pub fn caller_of(p: &Principal) -> Caller<'_> {
    Caller { user: p.user.as_deref(), team: p.team.as_deref(), app: p.app.as_deref(), roles: &p.roles }
}

/// [`RequestFilter`] of [`guarded_peer`].
struct ClientRequestGuard {
    guard: Arc<Guard>,
    server: String,
    name: String,
    shown: String,
    caller: Arc<Principal>,
}

impl ClientRequestGuard {
    fn inspect(
        &self,
        direction: Direction,
        raw: &RawValue,
        what: &'static str,
    ) -> Result<Option<Box<RawValue>>, RpcError> {
        let profile = self.guard.profile_for(&self.server, Some(&self.name), &caller_of(&self.caller));
        let subject = Subject { server: &self.server, name: &self.shown, what };
        match inspect_json(&self.guard, profile, direction, raw, &subject) {
            Verdict::Pass => Ok(None),
            Verdict::Replace(redacted) => Ok(Some(redacted)),
            Verdict::Block(e) => Err(e),
        }
    }
}

impl RequestFilter for ClientRequestGuard {
    fn outbound(&self, method: &str, params: Option<&RawValue>) -> Result<Option<Box<RawValue>>, RpcError> {
        match params {
            Some(params) if method == "sampling/createMessage" => self.inspect(Direction::Response, params, "sampling"),
            _ => Ok(None),
        }
    }

    fn answer(&self, method: &str, result: &RawValue) -> Result<Option<Box<RawValue>>, RpcError> {
        match method {
            "sampling/createMessage" => self.inspect(Direction::Request, result, "sampling answer"),
            "elicitation/create" => self.inspect(Direction::Request, result, "elicitation answer"),
            _ => Ok(None),
        }
    }
}

/// Inspects every text string of `raw` (a JSON value) under `profile`.
pub fn inspect_json(
    guard: &Guard,
    profile: &Profile,
    direction: Direction,
    raw: &RawValue,
    subject: &Subject,
) -> Verdict {
    inspect_json_timed(guard, profile, direction, raw, subject, None)
}

/// [`inspect_json`], adding each detector family's time to `times` when given (for traces).
fn inspect_json_timed(
    guard: &Guard,
    profile: &Profile,
    direction: Direction,
    raw: &RawValue,
    subject: &Subject,
    mut times: Option<&mut FamilyTimes>,
) -> Verdict {
    if !guard.enabled {
        return Verdict::Pass;
    }
    let Ok(mut value) = serde_json::from_str::<Value>(raw.get()) else {
        return Verdict::Pass; // not JSON we can read: the upstream's error path handles it
    };
    let mut strongest = Action::Allow;
    let mut enforced = Action::Allow;
    let mut detectors: Vec<String> = Vec::new();
    let mut blocking: Vec<String> = Vec::new();
    let mut changed = false;
    visit_strings(&mut value, skipped_keys(direction), &mut |s: &mut String| {
        let inspection = match times.as_deref_mut() {
            Some(times) => guard.inspect_timed(profile, direction, s, times),
            None => guard.inspect(profile, direction, s),
        };
        if inspection.decisions.is_empty() {
            return;
        }
        strongest = strongest.max(inspection.action);
        enforced = enforced.max(inspection.enforced);
        for d in &inspection.decisions {
            detectors.push(d.finding.detector.as_str().to_owned());
        }
        blocking.extend(inspection.blocking_detectors().into_iter().map(str::to_owned));
        if let Some(redacted) = inspection.redacted {
            if inspection.enforced == Action::Redact {
                *s = redacted;
                changed = true;
            }
        }
    });
    if strongest == Action::Allow {
        return Verdict::Pass;
    }
    detectors.sort();
    detectors.dedup();
    blocking.sort();
    blocking.dedup();
    let side = side(direction);
    if enforced != Action::Block {
        let action = if enforced < strongest { "monitor" } else { enforced.as_str() };
        audit::note(guard_decision(profile, action, side, &detectors, strongest));
    }
    if enforced < strongest {
        tracing::warn!(
            server = subject.server, name = subject.name, profile = %profile.name, direction = side,
            would = strongest.as_str(), detectors = ?detectors, "guard (monitor mode) would have acted"
        );
    } else {
        tracing::info!(
            server = subject.server, name = subject.name, profile = %profile.name, direction = side,
            action = enforced.as_str(), detectors = ?detectors, "guard finding"
        );
    }
    match enforced {
        Action::Block => Verdict::Block(blocked_error(profile, side, &blocking, subject)),
        Action::Redact if changed => match serde_json::value::to_raw_value(&value) {
            Ok(raw) => Verdict::Replace(raw),
            // Serializing a Value we just parsed cannot fail; refuse rather than leak.
            Err(_) => Verdict::Block(blocked_error(profile, side, &detectors, subject)),
        },
        Action::Allow | Action::Flag | Action::Redact => Verdict::Pass,
    }
}

/// A guard's decision for the audit log (a block is recorded from the error it returns).
fn guard_decision(profile: &Profile, action: &str, side: &str, detectors: &[String], would: Action) -> Decision {
    let mut detail = json!({ "direction": side, "detectors": detectors });
    if action == "monitor" {
        detail["would"] = json!(would.as_str());
    }
    Decision::new("guard", Some(&profile.name), action).with_detail(detail)
}

fn blocked_error(profile: &Profile, side: &str, detectors: &[String], subject: &Subject) -> RpcError {
    RpcError::new(
        GUARD_BLOCKED,
        format!("blocked by guard profile `{}`: {} in {}", profile.name, detectors.join(", "), subject.place(side)),
    )
    .with_data(json!({
        "policy": "guard",
        "profile": profile.name,
        "direction": side,
        "detectors": detectors,
    }))
}

fn visit_strings(value: &mut Value, skip: &[&str], f: &mut impl FnMut(&mut String)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter_mut().for_each(|v| visit_strings(v, skip, f)),
        Value::Object(map) => visit_object(map, skip, f),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn visit_object(map: &mut Map<String, Value>, skip: &[&str], f: &mut impl FnMut(&mut String)) {
    let binary = !skip.is_empty() && map.contains_key("mimeType");
    for (key, v) in map.iter_mut() {
        let payload = binary && matches!(key.as_str(), "data" | "blob");
        if !payload && !skip.contains(&key.as_str()) {
            visit_strings(v, skip, f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_guard::GuardConfig;

    fn run(raw: &str, direction: Direction) -> Verdict {
        let guard = Guard::new(&GuardConfig::default()).unwrap();
        let profile = guard.profile("default").unwrap();
        let raw = RawValue::from_string(raw.to_owned()).unwrap();
        inspect_json(&guard, profile, direction, &raw, &Subject { server: "s", name: "t", what: "tool" })
    }

    #[test]
    fn secrets_in_arguments_are_blocked_without_echoing_them() {
        let token = "ghp_R4nd0mT0k3nV4lu3F0rT35t1ngPurp0s3s12";
        let Verdict::Block(e) = run(&format!(r#"{{"body": "use {token}"}}"#), Direction::Request) else {
            panic!("not blocked")
        };
        assert_eq!(e.code, GUARD_BLOCKED);
        assert!(e.message.contains("secret.github_pat") && !e.message.contains(token), "{}", e.message);
    }

    #[test]
    fn secrets_in_results_are_redacted_and_binary_is_skipped() {
        let token = "ghp_R4nd0mT0k3nV4lu3F0rT35t1ngPurp0s3s12";
        let raw = format!(
            r#"{{"content":[{{"type":"text","text":"key {token} ok"}},{{"type":"image","mimeType":"image/png","data":"{token}"}}],
                "structuredContent":{{"data":"{token}"}}}}"#
        );
        let Verdict::Replace(out) = run(&raw, Direction::Response) else { panic!("not redacted") };
        let v: Value = serde_json::from_str(out.get()).unwrap();
        assert_eq!(v["content"][0]["text"], "key [REDACTED:GITHUB_PAT] ok");
        assert_eq!(v["content"][1]["data"], token, "binary payloads are not text");
        assert_eq!(v["structuredContent"]["data"], "[REDACTED:GITHUB_PAT]", "a tool's own `data` field is");
    }

    #[test]
    fn clean_content_passes_untouched() {
        assert!(matches!(
            run(r#"{"content":[{"type":"text","text":"3 files changed"}]}"#, Direction::Response),
            Verdict::Pass
        ));
    }
}
