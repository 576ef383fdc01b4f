//! Reading the log back, the same way for `portcullis audit` and `/admin/audit`: filters
//! from text (times as `1h` ago or RFC 3339), and each event as one JSON object with its
//! place in the chain.

use portcullis_store::{now_ms, AuditCheck, AuditQuery, AuditRow};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::SystemTime;

/// Filters as a user writes them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// `15m`, `2h`, `7d` ago, or a time (`2026-12-01T09:00:00Z`).
    pub since: Option<String>,
    pub until: Option<String>,
    pub user: Option<String>,
    pub tool: Option<String>,
    pub decision: Option<String>,
    /// Only events after this sequence number (paging).
    pub after: Option<i64>,
    pub limit: Option<u32>,
}

/// The decisions an event can have.
pub const DECISIONS: [&str; 5] = ["allow", "flag", "redact", "deny", "lost"];

impl Filter {
    /// The store query; `Err` says which filter is wrong and how to write it.
    pub fn query(&self) -> Result<AuditQuery, String> {
        if let Some(d) = self.decision.as_deref().filter(|d| !DECISIONS.contains(d)) {
            return Err(format!("unknown decision `{d}`; use one of {}", DECISIONS.join(", ")));
        }
        Ok(AuditQuery {
            since: self.since.as_deref().map(|t| parse_time(t, "since")).transpose()?,
            until: self.until.as_deref().map(|t| parse_time(t, "until")).transpose()?,
            user: self.user.clone(),
            tool: self.tool.clone(),
            decision: self.decision.clone(),
            after: self.after,
            limit: self.limit,
            latest: false,
        })
    }
}

/// Unix ms of `text`: a duration ago (`90s`, `15m`, `2h`, `7d`) or an RFC 3339 time.
pub fn parse_time(text: &str, what: &str) -> Result<i64, String> {
    if let Ok(ago) = humantime::parse_duration(text) {
        return Ok(now_ms().saturating_sub(i64::try_from(ago.as_millis()).unwrap_or(i64::MAX)));
    }
    let time = humantime::parse_rfc3339_weak(text).map_err(|_| {
        format!("--{what} `{text}` is neither a duration (15m, 2h, 7d) nor a time (2026-12-01T09:00:00Z)")
    })?;
    let ms = time.duration_since(SystemTime::UNIX_EPOCH).map_err(|_| format!("--{what} `{text}` is before 1970"))?;
    Ok(i64::try_from(ms.as_millis()).unwrap_or(i64::MAX))
}

/// An event as `portcullis audit --json` prints it: its sequence number, the event, and the
/// hashes that chain it.
pub fn event_json(row: &AuditRow) -> Value {
    let mut out = Map::new();
    out.insert("seq".into(), row.seq.into());
    match serde_json::from_str::<Value>(&row.entry.body) {
        Ok(Value::Object(body)) => out.extend(body),
        // Not what the gateway wrote: shown as it is (`audit verify` reports the edit).
        _ => {
            out.insert("body".into(), row.entry.body.clone().into());
        }
    }
    out.insert("prev".into(), row.prev.clone().into());
    out.insert("hash".into(), row.hash.clone().into());
    Value::Object(out)
}

/// What `verify` found, as `portcullis audit verify --json` and `/admin/audit/verify` say it.
pub fn check_json(check: &AuditCheck) -> Value {
    serde_json::json!({
        "ok": check.problems.is_empty(),
        "events": check.events,
        "first": check.first_seq,
        "last": check.last_seq,
        "head": check.head,
        "problems": check.problems,
    })
}

/// One line for people: time, sequence, caller, method, target, decision (with the rules
/// behind it), outcome and latency.
pub fn event_line(row: &AuditRow) -> String {
    let event: Value = serde_json::from_str(&row.entry.body).unwrap_or_default();
    let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or("-").to_owned();
    let rules: Vec<String> = event
        .get("decisions")
        .and_then(Value::as_array)
        .map(|ds| {
            ds.iter()
                .filter(|d| d["action"] != "allow")
                .map(|d| {
                    let rule = d["rule"].as_str().map(|r| format!(":{r}")).unwrap_or_default();
                    format!("{}{rule} {}", d["policy"].as_str().unwrap_or("?"), d["action"].as_str().unwrap_or("?"))
                })
                .collect()
        })
        .unwrap_or_default();
    let latency = event.get("latency_ms").and_then(Value::as_f64).map_or("-".into(), |ms| format!("{ms:.1}ms"));
    let mut line = format!(
        "{} #{} {} {} {} {} {} {}",
        text("time"),
        row.seq,
        row.entry.caller,
        text("method"),
        if row.entry.tool.is_empty() { "-" } else { &row.entry.tool },
        row.entry.decision,
        text("outcome"),
        latency
    );
    if let Some(lost) = event.get("lost") {
        line.push_str(&format!(" ({lost} events lost)"));
    }
    if !rules.is_empty() {
        line.push_str(&format!(" [{}]", rules.join("; ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_store::AuditEntry;

    #[test]
    fn times_are_durations_ago_or_rfc3339() {
        let now = now_ms();
        let hour_ago = parse_time("1h", "since").unwrap();
        assert!((now - 3_600_000 - hour_ago).abs() < 5_000);
        assert_eq!(parse_time("2026-12-01T09:00:00Z", "since").unwrap(), 1_796_115_600_000);
        let e = parse_time("yesterday", "since").unwrap_err();
        assert!(e.contains("--since `yesterday`") && e.contains("15m"), "{e}");
    }

    #[test]
    fn filters_check_the_decision() {
        let f = Filter { decision: Some("blocked".into()), ..Filter::default() };
        assert!(f.query().unwrap_err().contains("allow, flag, redact, deny"));
        let f = Filter { decision: Some("deny".into()), user: Some("alice".into()), ..Filter::default() };
        let q = f.query().unwrap();
        assert_eq!((q.decision.as_deref(), q.user.as_deref()), (Some("deny"), Some("alice")));
    }

    #[test]
    fn events_print_with_their_chain() {
        let body = r#"{"time":"2026-12-03T10:00:00.000Z","method":"tools/call","outcome":"refused","latency_ms":1.25,
            "decisions":[{"policy":"access","rule":"no-deletes","action":"deny"}]}"#;
        let row = AuditRow {
            seq: 7,
            entry: AuditEntry {
                at: 0,
                caller: "user:alice".into(),
                user: "alice".into(),
                tool: "gh__delete_repo".into(),
                decision: "deny".into(),
                body: body.into(),
            },
            prev: "aa".into(),
            hash: "bb".into(),
        };
        let json = event_json(&row);
        assert_eq!(
            (json["seq"].clone(), json["method"].clone(), json["hash"].clone()),
            (7.into(), "tools/call".into(), "bb".into())
        );
        assert_eq!(
            event_line(&row),
            "2026-12-03T10:00:00.000Z #7 user:alice tools/call gh__delete_repo deny refused 1.2ms [access:no-deletes deny]"
        );
    }
}
