//! Reviewing pins: what `portcullis tools list|diff|approve|reject` and the admin API show
//! and do. Both work on the store, so a review reaches every running gateway through its
//! poll of the pins' version.

use crate::pins::definition::{changed_fields, short, PinKind};
use crate::pins::item_arg;
use portcullis_store::{now_ms, PinRecord, Review, Store, StoreError};
use serde::Serialize;

/// An item as an operator names it: `NAME` (a tool), `prompt:NAME`, `template:URI`,
/// `tool:NAME`; the identity has its own flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRef {
    pub kind: PinKind,
    pub name: String,
}

impl ItemRef {
    pub fn parse(text: &str) -> ItemRef {
        if let Some((kind, name)) = text.split_once(':') {
            if let Some(kind) = PinKind::parse(kind).filter(|k| *k != PinKind::Identity) {
                return ItemRef { kind, name: name.to_owned() };
            }
        }
        ItemRef { kind: PinKind::Tool, name: text.to_owned() }
    }

    pub fn identity() -> ItemRef {
        ItemRef { kind: PinKind::Identity, name: String::new() }
    }

    fn matches(&self, pin: &PinRecord) -> bool {
        pin.kind == self.kind.as_str() && pin.name == self.name
    }
}

/// A pin as shown to people and in JSON.
#[derive(Debug, Clone, Serialize)]
pub struct PinView {
    pub server: String,
    pub kind: String,
    pub name: String,
    /// `pinned`, `changed` (a new definition waits for review), `new` (waits for approval)
    /// or `rejected` (a new item an operator refused).
    pub state: &'static str,
    pub hash: Option<String>,
    pub pending_hash: Option<String>,
    pub rejected_hash: Option<String>,
    /// Unix milliseconds.
    pub approved_at: Option<i64>,
    pub approved_by: Option<String>,
    pub pending_since: Option<i64>,
    /// Top-level fields the waiting definition changes.
    pub changed: Vec<String>,
    /// How `portcullis tools approve|reject|diff` names this item.
    pub item: String,
}

impl PinView {
    pub fn of(pin: &PinRecord) -> PinView {
        let state = match (&pin.hash, &pin.pending_hash, &pin.rejected_hash) {
            (None, Some(_), _) => "new",
            (Some(_), Some(_), _) => "changed",
            (None, None, Some(_)) => "rejected",
            _ => "pinned",
        };
        let changed = if pin.pending_hash.is_some() {
            changed_fields(pin.definition.as_deref(), pin.pending_definition.as_deref())
        } else {
            Vec::new()
        };
        let kind = PinKind::parse(&pin.kind).unwrap_or(PinKind::Tool);
        PinView {
            server: pin.server.clone(),
            kind: pin.kind.clone(),
            name: pin.name.clone(),
            state,
            hash: pin.hash.clone(),
            pending_hash: pin.pending_hash.clone(),
            rejected_hash: pin.rejected_hash.clone(),
            approved_at: pin.approved_at,
            approved_by: pin.approved_by.clone(),
            pending_since: pin.pending_since,
            changed,
            item: item_arg(kind, &pin.name),
        }
    }

    pub fn waiting(&self) -> bool {
        self.pending_hash.is_some()
    }
}

/// A waiting definition beside the approved one.
#[derive(Debug, Clone, Serialize)]
pub struct PinDiff {
    #[serde(flatten)]
    pub pin: PinView,
    /// A unified diff of the indented canonical definitions.
    pub diff: String,
}

/// Every pin (of one server), or only those waiting for review.
pub async fn list(store: &Store, server: Option<&str>, waiting_only: bool) -> Result<Vec<PinView>, StoreError> {
    let pins = store.pins(server).await?;
    if let Some(server) = server.filter(|_| pins.is_empty()) {
        return Err(no_pins(store, server).await);
    }
    Ok(pins.iter().map(PinView::of).filter(|v| !waiting_only || v.waiting()).collect())
}

/// The waiting definitions of `server` (all, or the named items) against the approved ones.
pub async fn diff(store: &Store, server: &str, items: &[ItemRef]) -> Result<Vec<PinDiff>, StoreError> {
    let pins = chosen(store, server, items).await?;
    Ok(pins
        .iter()
        .map(|pin| {
            let old = pin.definition.as_deref().unwrap_or_default();
            let new = pin.pending_definition.as_deref().unwrap_or_default();
            let from = pin
                .hash
                .as_deref()
                .map_or_else(|| "(nothing approved)".to_owned(), |h| format!("approved {}", short(h)));
            let to = format!("seen {}", pin.pending_hash.as_deref().map(short).unwrap_or_default());
            let diff =
                similar::TextDiff::from_lines(old, new).unified_diff().context_radius(3).header(&from, &to).to_string();
            PinDiff { pin: PinView::of(pin), diff }
        })
        .collect())
}

/// Approves or rejects the waiting definitions of `server` (all, or the named items).
/// `expect` (a hash prefix, with one item) guards against approving a definition that
/// changed again after it was looked at.
pub async fn decide(
    store: &Store,
    server: &str,
    items: &[ItemRef],
    expect: Option<&str>,
    review: Review,
    actor: &str,
) -> Result<Vec<PinView>, StoreError> {
    if expect.is_some() && items.len() != 1 {
        return Err(StoreError::Conflict("--expect needs exactly one item".into()));
    }
    let pins = chosen(store, server, items).await?;
    let mut done = Vec::new();
    for pin in pins {
        let after = store.review_pin((server, &pin.kind, &pin.name), expect, review, actor, now_ms()).await?;
        done.push(PinView::of(&after));
    }
    Ok(done)
}

/// The waiting pins of `server` that `items` name (all waiting ones when none are named).
async fn chosen(store: &Store, server: &str, items: &[ItemRef]) -> Result<Vec<PinRecord>, StoreError> {
    let pins = store.pins(Some(server)).await?;
    if pins.is_empty() {
        return Err(no_pins(store, server).await);
    }
    if items.is_empty() {
        let waiting: Vec<PinRecord> = pins.into_iter().filter(|p| p.pending_hash.is_some()).collect();
        if waiting.is_empty() {
            return Err(StoreError::Conflict(format!("nothing of server `{server}` waits for review")));
        }
        return Ok(waiting);
    }
    items
        .iter()
        .map(|item| {
            let what = item_arg(item.kind, &item.name);
            let pin = pins.iter().find(|p| item.matches(p)).ok_or_else(|| {
                StoreError::Conflict(format!(
                    "server `{server}` has no pinned {} `{}`; `portcullis tools list {server}` shows what it has",
                    item.kind.as_str(),
                    item.name
                ))
            })?;
            if pin.pending_hash.is_none() {
                return Err(StoreError::Conflict(format!(
                    "`{what}` of server `{server}` has no change waiting for review"
                )));
            }
            Ok(pin.clone())
        })
        .collect()
}

async fn no_pins(store: &Store, server: &str) -> StoreError {
    let mut known: Vec<String> = store.pins(None).await.unwrap_or_default().into_iter().map(|p| p.server).collect();
    known.dedup();
    let known = if known.is_empty() { "none yet".to_owned() } else { known.join(", ") };
    StoreError::Conflict(format!(
        "nothing is pinned for server `{server}` (servers with pins: {known}); a server is pinned when the gateway first lists it"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_named_like_the_cli_shows_them() {
        assert_eq!(ItemRef::parse("read_file"), ItemRef { kind: PinKind::Tool, name: "read_file".into() });
        assert_eq!(ItemRef::parse("prompt:greet"), ItemRef { kind: PinKind::Prompt, name: "greet".into() });
        let t = ItemRef::parse("template:file:///{path}");
        assert_eq!((t.kind, t.name.as_str()), (PinKind::Template, "file:///{path}"));
        assert_eq!(ItemRef::parse("odd:name").kind, PinKind::Tool);
        assert_eq!(item_arg(PinKind::Prompt, "greet"), "prompt:greet");
    }
}
