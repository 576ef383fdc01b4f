//! The record stage: one audit event per exchange, with every decision taken on it.
//!
//! The pipeline's stages note what they decided as they go ([`note`]: a guard redaction, a
//! flagged flow, an access rule); a refusal says its policy and rule in the error it returns.
//! When the exchange ends, [`Recorder::record`] queues the event; a writer task appends
//! events in batches to the store's hash chain (and to a JSON Lines file if configured), so
//! the request path never waits on the database. `portcullis audit` and `/admin/audit` read
//! the log; `portcullis audit verify` checks the chain.

mod event;
pub mod query;
mod writer;

pub use event::{Decision, Ending, Event, Exchange};
pub use writer::{instance_name, Recorder, Sinks};

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

/// The `audit` section. On by default, with no configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub enabled: bool,
    /// What of a call's arguments the event keeps: `redacted` (every credential and personal
    /// value the guard knows replaced by its marker), `none` (sizes only) or `raw`.
    pub payloads: Payloads,
    /// Keep events in the store (`portcullis audit` reads them there). Turn off only with a
    /// `file` sink.
    pub store: bool,
    /// Also append each event to this JSON Lines file (relative paths: beside the config).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    pub queue: QueueConfig,
    pub retention: RetentionConfig,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: true,
            payloads: Payloads::Redacted,
            store: true,
            file: None,
            queue: QueueConfig::default(),
            retention: RetentionConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Payloads {
    Redacted,
    None,
    Raw,
}

/// The queue between the request path and the writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Events waiting to be written, at most.
    pub capacity: usize,
    /// Events written in one transaction, at most.
    pub batch: usize,
    /// When the queue is full: `drop` the event and count it (the count is written into the
    /// log as a gap event and shown in metrics), or `wait` until there is room (the request
    /// waits).
    pub when_full: WhenFull,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { capacity: 10_000, batch: 500, when_full: WhenFull::Drop }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    Drop,
    Wait,
}

/// How long events are kept in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Events older than this are removed (default 90 days; `null` keeps them).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub max_age: Option<Duration>,
    /// The newest events are kept up to this size of event bodies (`500MiB`, `2GB`;
    /// default: no limit).
    #[serde(deserialize_with = "size", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub max_size: Option<u64>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { max_age: Some(Duration::from_secs(90 * 24 * 3600)), max_size: None }
    }
}

/// A size: bytes, or a number with a unit (`KB`, `MB`, `GB`, `KiB`, `MiB`, `GiB`).
fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Option::<Size>::deserialize(d)? {
        None => Ok(None),
        Some(Size::Bytes(n)) => Ok(Some(n)),
        Some(Size::Text(text)) => parse_size(&text).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!("`{text}` is not a size; write it like 500MiB, 2GB or 1048576"))
        }),
    }
}

fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = (text[..split].parse::<u64>().ok()?, text[split..].trim());
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(scale)
}

tokio::task_local! {
    /// The decisions of the exchange being handled on this task.
    static NOTES: RefCell<Exchange>;
}

/// Notes a decision for the audit event of the exchange this task is handling (nothing
/// happens outside one, e.g. in a test calling a stage directly).
pub fn note(decision: Decision) {
    let _ = NOTES.try_with(|n| n.borrow_mut().decisions.push(decision));
}

/// Notes the upstream server the exchange was routed to.
pub fn routed(server: &str) {
    let _ = NOTES.try_with(|n| n.borrow_mut().server = Some(server.to_owned()));
}

/// Runs `work` with a fresh set of notes; returns its output and what was noted.
pub async fn observe<F: std::future::Future>(work: F) -> (F::Output, Exchange) {
    NOTES
        .scope(RefCell::new(Exchange::default()), async {
            let out = work.await;
            (out, NOTES.with(|n| n.take()))
        })
        .await
}

/// [`observe`] for blocking work on another thread: the notes are handed back to be
/// [`merge`]d on the exchange's task.
pub fn observe_sync<T>(work: impl FnOnce() -> T) -> (T, Exchange) {
    NOTES.sync_scope(RefCell::new(Exchange::default()), || {
        let out = work();
        (out, NOTES.with(|n| n.take()))
    })
}

/// Adds notes taken elsewhere ([`observe_sync`]) to this task's exchange.
pub fn merge(notes: Exchange) {
    let _ = NOTES.try_with(|n| n.borrow_mut().decisions.extend(notes.decisions));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("500MiB"), Some(500 << 20));
        assert_eq!(parse_size("2 GB"), Some(2_000_000_000));
        assert_eq!(parse_size("10kb"), Some(10_000));
        assert_eq!(parse_size("ten MB"), None);
        assert_eq!(parse_size("5 parsecs"), None);
        assert_eq!(parse_size("99999999999999 GiB"), None);
    }

    #[tokio::test]
    async fn notes_stay_with_their_exchange() {
        let ((), first) = observe(async {
            note(Decision::new("guard", Some("default"), "redact"));
            routed("github");
        })
        .await;
        let ((), second) = observe(async {}).await;
        assert_eq!(first.server.as_deref(), Some("github"));
        assert_eq!(first.decisions.len(), 1);
        assert!(second.decisions.is_empty() && second.server.is_none());
        note(Decision::new("guard", None, "flag")); // outside an exchange: ignored
        let (((), inner), outer) = observe(async {
            let (out, inner) = observe_sync(|| note(Decision::new("guard", None, "flag")));
            merge(inner.clone());
            (out, inner)
        })
        .await;
        assert_eq!((inner.decisions.len(), outer.decisions.len()), (1, 1));
    }
}
