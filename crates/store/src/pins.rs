//! Pins: the approved definition of each upstream tool, prompt, resource template and
//! server identity, and the definitions seen since that wait for review. The gateway
//! decides what a sighting means (`portcullis-gateway`'s `pins`); the store applies it with
//! conditions that keep two processes seeing the same change from clobbering each other.
//! Every change bumps the `pins` version, which running gateways poll.

use crate::{Store, StoreError};
use sqlx::Row;

/// One pinned item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinRecord {
    pub server: String,
    /// `tool`, `prompt`, `template` or `identity`.
    pub kind: String,
    /// Tool or prompt name, URI template, or `""` for the identity.
    pub name: String,
    /// Hex SHA-256 of the approved definition; `None` while a new item awaits approval.
    pub hash: Option<String>,
    pub definition: Option<String>,
    pub approved_at: Option<i64>,
    pub approved_by: Option<String>,
    pub pending_hash: Option<String>,
    pub pending_definition: Option<String>,
    pub pending_since: Option<i64>,
    pub rejected_hash: Option<String>,
}

/// What a gateway decided about a definition it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinChange {
    /// First sight: pin it (approved, trust on first use) or hold it for approval.
    First { approved: bool },
    /// Differs from the approved definition: hold it for review.
    Pending,
    /// Differs, and the server's policy accepts changes: approve it at once.
    AutoApprove,
}

/// A sighting to record.
#[derive(Debug, Clone)]
pub struct PinWrite<'a> {
    pub server: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub hash: &'a str,
    pub definition: &'a str,
    pub change: PinChange,
}

/// An entry of a pin's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinEvent {
    pub id: i64,
    pub at: i64,
    pub server: String,
    pub kind: String,
    pub name: String,
    /// `pinned`, `new`, `changed`, `approved`, `auto-approved` or `rejected`.
    pub event: String,
    pub old_hash: Option<String>,
    pub new_hash: Option<String>,
    pub old_definition: Option<String>,
    pub new_definition: Option<String>,
    pub actor: Option<String>,
}

/// An operator's decision on a pending definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    Approve,
    Reject,
}

const COLUMNS: &str = "server, kind, name, hash, definition, approved_at, approved_by, pending_hash, \
     pending_definition, pending_since, rejected_hash";

impl Store {
    /// The version of the pins: changes whenever a definition is pinned, held or reviewed.
    pub async fn pins_version(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT version FROM versions WHERE name = 'pins'").fetch_one(&self.pool).await?)
    }

    /// Every pin, or one server's, ordered by server, kind and name.
    pub async fn pins(&self, server: Option<&str>) -> Result<Vec<PinRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM pins WHERE $1 IS NULL OR server = $1 ORDER BY server, kind, name");
        let rows = sqlx::query(&sql).bind(server).fetch_all(&self.pool).await?;
        rows.iter().map(record).collect()
    }

    /// Records sightings in one transaction; returns how many changed a pin. A sighting
    /// another process already recorded (or that matches what is pinned) changes nothing.
    pub async fn record_pins(&self, writes: &[PinWrite<'_>], at: i64) -> Result<usize, StoreError> {
        let mut tx = self.write().await?;
        let mut changed = 0;
        for w in writes {
            let done = match w.change {
                PinChange::First { approved: true } => {
                    sqlx::query(
                        "INSERT INTO pins (server, kind, name, hash, definition, approved_at, approved_by) \
                         VALUES ($1, $2, $3, $4, $5, $6, 'first use') ON CONFLICT DO NOTHING",
                    )
                    .bind(w.server)
                    .bind(w.kind)
                    .bind(w.name)
                    .bind(w.hash)
                    .bind(w.definition)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                }
                PinChange::First { approved: false } => {
                    sqlx::query(
                        "INSERT INTO pins (server, kind, name, pending_hash, pending_definition, pending_since) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    )
                    .bind(w.server)
                    .bind(w.kind)
                    .bind(w.name)
                    .bind(w.hash)
                    .bind(w.definition)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                }
                PinChange::Pending => {
                    sqlx::query(
                        "UPDATE pins SET pending_hash = $4, pending_definition = $5, pending_since = $6 \
                         WHERE server = $1 AND kind = $2 AND name = $3 AND hash IS DISTINCT FROM $4 \
                         AND pending_hash IS DISTINCT FROM $4 AND rejected_hash IS DISTINCT FROM $4",
                    )
                    .bind(w.server)
                    .bind(w.kind)
                    .bind(w.name)
                    .bind(w.hash)
                    .bind(w.definition)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                }
                PinChange::AutoApprove => {
                    let old = current(&mut tx, w.server, w.kind, w.name).await?;
                    let done = sqlx::query(
                        "UPDATE pins SET hash = $4, definition = $5, approved_at = $6, approved_by = 'policy: allow', \
                         pending_hash = NULL, pending_definition = NULL, pending_since = NULL \
                         WHERE server = $1 AND kind = $2 AND name = $3 AND hash IS DISTINCT FROM $4",
                    )
                    .bind(w.server)
                    .bind(w.kind)
                    .bind(w.name)
                    .bind(w.hash)
                    .bind(w.definition)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() > 0 {
                        let (old_hash, old_def) = old.map(|r| (r.hash, r.definition)).unwrap_or_default();
                        let event = Event { what: "auto-approved", old_hash, old_def, actor: Some("policy: allow") };
                        log(&mut tx, w, &event, at).await?;
                        changed += 1;
                    }
                    continue;
                }
            };
            if done.rows_affected() == 0 {
                continue;
            }
            changed += 1;
            let event = match w.change {
                PinChange::First { approved: true } => Event::plain("pinned"),
                PinChange::First { approved: false } => Event::plain("new"),
                _ => {
                    let old = current(&mut tx, w.server, w.kind, w.name).await?;
                    let (old_hash, old_def) = old.map(|r| (r.hash, r.definition)).unwrap_or_default();
                    Event { what: "changed", old_hash, old_def, actor: None }
                }
            };
            log(&mut tx, w, &event, at).await?;
        }
        if changed > 0 {
            bump(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Approves or rejects the definition waiting for review. `expected` (a prefix of its
    /// hash) makes sure the definition decided on is the one the operator looked at.
    pub async fn review_pin(
        &self,
        key: (&str, &str, &str),
        expected: Option<&str>,
        review: Review,
        actor: &str,
        at: i64,
    ) -> Result<PinRecord, StoreError> {
        let (server, kind, name) = key;
        let shown = if name.is_empty() { format!("{server} {kind}") } else { format!("{server} {kind} `{name}`") };
        let mut tx = self.write().await?;
        let Some(pin) = current(&mut tx, server, kind, name).await? else {
            return Err(StoreError::Conflict(format!(
                "nothing is pinned as {shown}; `portcullis tools list {server}` shows what is"
            )));
        };
        let Some(pending) = pin.pending_hash.clone() else {
            return Err(StoreError::Conflict(format!("{shown} has no change waiting for review")));
        };
        if let Some(expected) = expected.filter(|e| !pending.starts_with(*e)) {
            return Err(StoreError::Conflict(format!(
                "{shown} changed again: the definition waiting is {} now, not {expected}; look at it with `portcullis tools diff`",
                &pending[..12.min(pending.len())]
            )));
        }
        let update = match review {
            Review::Approve => sqlx::query(
                "UPDATE pins SET hash = pending_hash, definition = pending_definition, approved_at = $4, \
                 approved_by = $5, pending_hash = NULL, pending_definition = NULL, pending_since = NULL, \
                 rejected_hash = NULL WHERE server = $1 AND kind = $2 AND name = $3",
            )
            .bind(server)
            .bind(kind)
            .bind(name)
            .bind(at)
            .bind(actor),
            Review::Reject => sqlx::query(
                "UPDATE pins SET rejected_hash = pending_hash, pending_hash = NULL, pending_definition = NULL, \
                 pending_since = NULL WHERE server = $1 AND kind = $2 AND name = $3",
            )
            .bind(server)
            .bind(kind)
            .bind(name),
        };
        update.execute(&mut *tx).await?;
        let write = PinWrite {
            server,
            kind,
            name,
            hash: &pending,
            definition: pin.pending_definition.as_deref().unwrap_or_default(),
            change: PinChange::Pending,
        };
        let what = match review {
            Review::Approve => "approved",
            Review::Reject => "rejected",
        };
        let event = Event { what, old_hash: pin.hash.clone(), old_def: pin.definition.clone(), actor: Some(actor) };
        log(&mut tx, &write, &event, at).await?;
        bump(&mut tx).await?;
        let after = current(&mut tx, server, kind, name).await?;
        tx.commit().await?;
        after.ok_or_else(|| StoreError::Corrupt(format!("the pin of {shown} vanished")))
    }

    /// The latest `limit` events, newest first, of every server or one.
    pub async fn pin_events(&self, server: Option<&str>, limit: i64) -> Result<Vec<PinEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, server, kind, name, event, old_hash, new_hash, old_definition, new_definition, actor \
             FROM pin_events WHERE $1 IS NULL OR server = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(server)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PinEvent {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    server: row.try_get("server")?,
                    kind: row.try_get("kind")?,
                    name: row.try_get("name")?,
                    event: row.try_get("event")?,
                    old_hash: row.try_get("old_hash")?,
                    new_hash: row.try_get("new_hash")?,
                    old_definition: row.try_get("old_definition")?,
                    new_definition: row.try_get("new_definition")?,
                    actor: row.try_get("actor")?,
                })
            })
            .collect()
    }
}

/// A history entry to write beside a sighting.
struct Event<'a> {
    what: &'a str,
    old_hash: Option<String>,
    old_def: Option<String>,
    actor: Option<&'a str>,
}

impl Event<'_> {
    fn plain(what: &str) -> Event<'_> {
        Event { what, old_hash: None, old_def: None, actor: None }
    }
}

async fn current(
    tx: &mut sqlx::AnyConnection,
    server: &str,
    kind: &str,
    name: &str,
) -> Result<Option<PinRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM pins WHERE server = $1 AND kind = $2 AND name = $3");
    let row = sqlx::query(&sql).bind(server).bind(kind).bind(name).fetch_optional(tx).await?;
    row.as_ref().map(record).transpose()
}

async fn log(tx: &mut sqlx::AnyConnection, w: &PinWrite<'_>, e: &Event<'_>, at: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO pin_events (at, server, kind, name, event, old_hash, new_hash, old_definition, new_definition, actor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(at)
    .bind(w.server)
    .bind(w.kind)
    .bind(w.name)
    .bind(e.what)
    .bind(&e.old_hash)
    .bind(w.hash)
    .bind(&e.old_def)
    .bind(w.definition)
    .bind(e.actor)
    .execute(tx)
    .await?;
    Ok(())
}

async fn bump(tx: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
    sqlx::query("UPDATE versions SET version = version + 1 WHERE name = 'pins'").execute(tx).await?;
    Ok(())
}

fn record(row: &sqlx::any::AnyRow) -> Result<PinRecord, StoreError> {
    Ok(PinRecord {
        server: row.try_get("server")?,
        kind: row.try_get("kind")?,
        name: row.try_get("name")?,
        hash: row.try_get("hash")?,
        definition: row.try_get("definition")?,
        approved_at: row.try_get("approved_at")?,
        approved_by: row.try_get("approved_by")?,
        pending_hash: row.try_get("pending_hash")?,
        pending_definition: row.try_get("pending_definition")?,
        pending_since: row.try_get("pending_since")?,
        rejected_hash: row.try_get("rejected_hash")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdb::on_both;

    fn write<'a>(name: &'a str, hash: &'a str, change: PinChange) -> PinWrite<'a> {
        PinWrite { server: "s", kind: "tool", name, hash, definition: hash, change }
    }

    on_both! {
        async fn a_change_waits_for_review_and_history_keeps_both_definitions(db: &TestDb) {
            let store = db.open().await;
            let v0 = store.pins_version().await.unwrap();
            assert_eq!(store.record_pins(&[write("t", "aaa", PinChange::First { approved: true })], 1).await.unwrap(), 1);
            // Another process saw the same first definition: nothing changes.
            assert_eq!(store.record_pins(&[write("t", "aaa", PinChange::First { approved: true })], 2).await.unwrap(), 0);
            assert_eq!(store.record_pins(&[write("t", "bbb", PinChange::Pending)], 3).await.unwrap(), 1);
            assert_eq!(store.record_pins(&[write("t", "bbb", PinChange::Pending)], 4).await.unwrap(), 0);
            assert!(store.pins_version().await.unwrap() > v0);
            let pin = &store.pins(Some("s")).await.unwrap()[0];
            assert_eq!((pin.hash.as_deref(), pin.pending_hash.as_deref()), (Some("aaa"), Some("bbb")));

            let stale = store.review_pin(("s", "tool", "t"), Some("ccc"), Review::Approve, "ops", 5).await;
            assert!(matches!(stale, Err(StoreError::Conflict(m)) if m.contains("changed again")));
            let pin = store.review_pin(("s", "tool", "t"), Some("bb"), Review::Approve, "ops", 5).await.unwrap();
            assert_eq!((pin.hash.as_deref(), pin.pending_hash), (Some("bbb"), None));
            assert_eq!(pin.approved_by.as_deref(), Some("ops"));

            let events = store.pin_events(Some("s"), 10).await.unwrap();
            let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
            assert_eq!(kinds, ["approved", "changed", "pinned"]);
            assert_eq!(
                (events[1].old_definition.as_deref(), events[1].new_definition.as_deref()),
                (Some("aaa"), Some("bbb"))
            );
        }

        async fn a_rejected_definition_is_not_asked_about_again(db: &TestDb) {
            let store = db.open().await;
            store.record_pins(&[write("t", "aaa", PinChange::First { approved: true })], 1).await.unwrap();
            store.record_pins(&[write("t", "bad", PinChange::Pending)], 2).await.unwrap();
            let pin = store.review_pin(("s", "tool", "t"), None, Review::Reject, "ops", 3).await.unwrap();
            assert_eq!(
                (pin.hash.as_deref(), pin.rejected_hash.as_deref(), pin.pending_hash),
                (Some("aaa"), Some("bad"), None)
            );
            assert_eq!(store.record_pins(&[write("t", "bad", PinChange::Pending)], 4).await.unwrap(), 0);
            let nothing = store.review_pin(("s", "tool", "t"), None, Review::Approve, "ops", 5).await;
            assert!(matches!(nothing, Err(StoreError::Conflict(m)) if m.contains("no change waiting")));
            // An allow policy takes a new definition at once.
            store.record_pins(&[write("t", "ccc", PinChange::AutoApprove)], 6).await.unwrap();
            assert_eq!(store.pins(None).await.unwrap()[0].hash.as_deref(), Some("ccc"));
        }
    }
}
