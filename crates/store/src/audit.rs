//! The audit log: events appended in batches, each chained to the one before by a SHA-256
//! hash, so that `verify` finds any edited, inserted or deleted row. The gateway decides what
//! an event says (`portcullis-gateway`'s `audit`); the store keeps the chain. Appends take
//! the write lock first, so several gateways writing to one database extend one chain.

use crate::{Store, StoreError};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

/// The hash before the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event to append: the columns queries filter on, and the whole event as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Unix milliseconds.
    pub at: i64,
    /// `user:alice`, `app:ci`, `key:<id>`, `anonymous`.
    pub caller: String,
    /// The principal's user, `""` if none.
    pub user: String,
    /// The tool, prompt or resource as the client named it (`""` for other requests).
    pub tool: String,
    /// `allow`, `flag`, `redact`, `deny` or `error`.
    pub decision: String,
    pub body: String,
}

/// A stored event with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub entry: AuditEntry,
    pub prev: String,
    pub hash: String,
}

/// Which events to read (every filter optional), oldest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Events at or after this time (Unix ms).
    pub since: Option<i64>,
    /// Events before this time (Unix ms).
    pub until: Option<i64>,
    /// The principal's user, or the caller (`app:ci`).
    pub user: Option<String>,
    /// The tool as the client named it (`github__create_issue`), or its name without the
    /// server prefix (`create_issue`).
    pub tool: Option<String>,
    pub decision: Option<String>,
    /// Only events after this sequence number (paging).
    pub after: Option<i64>,
    /// At most this many events: the first ones, or with `latest` the last ones.
    pub limit: Option<u32>,
    pub latest: bool,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheck {
    /// Events checked.
    pub events: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// The hash of the last event: record it elsewhere to anchor the chain.
    pub head: String,
    /// Each break found (at most [`MAX_PROBLEMS`]); empty when the chain is whole.
    pub problems: Vec<String>,
}

impl AuditCheck {
    fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        }
    }
}

/// Breaks reported by `verify`; one edit can break many links after it.
pub const MAX_PROBLEMS: usize = 20;

/// The hash of an event: over its sequence number, its fields and the hash before it,
/// encoded as one JSON array so that no two different events hash the same text.
pub fn chain_hash(seq: i64, entry: &AuditEntry, prev: &str) -> String {
    // The JSON goes straight into the hash rather than through a String: the body is most of
    // it, and this runs for every event the gateway records.
    let mut hasher = HashWriter(Sha256::new());
    let fields = (prev, seq, entry.at, &entry.caller, &entry.user, &entry.tool, &entry.decision, &entry.body);
    // A tuple of strings and numbers always serializes, and hashing cannot fail.
    let _ = serde_json::to_writer(&mut hasher, &fields);
    hasher.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds what is written into a SHA-256.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Store {
    /// Appends events to the chain in one transaction; returns the sequence number of the
    /// last one.
    pub async fn append_audit(&self, entries: &[AuditEntry]) -> Result<i64, StoreError> {
        let mut tx = self.write().await?;
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&mut *tx).await?;
        let (mut seq, mut prev): (i64, String) = (head.try_get("seq")?, head.try_get("hash")?);
        for entry in entries {
            seq += 1;
            let hash = chain_hash(seq, entry, &prev);
            sqlx::query(
                "INSERT INTO audit_events (seq, at, caller, user_name, tool, decision, body, prev, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(seq)
            .bind(entry.at)
            .bind(&entry.caller)
            .bind(&entry.user)
            .bind(&entry.tool)
            .bind(&entry.decision)
            .bind(&entry.body)
            .bind(&prev)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
            prev = hash;
        }
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(seq)
            .bind(&prev)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// The events matching `query`, oldest first.
    pub async fn audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        let mut sql = String::from("SELECT * FROM audit_events WHERE 1 = 1");
        let mut binds: Vec<Bind> = Vec::new();
        let mut filter = |clause: &str, value: Bind| {
            binds.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
        };
        if let Some(since) = query.since {
            filter(" AND at >= ?", Bind::Int(since));
        }
        if let Some(until) = query.until {
            filter(" AND at < ?", Bind::Int(until));
        }
        if let Some(after) = query.after {
            filter(" AND seq > ?", Bind::Int(after));
        }
        if let Some(user) = &query.user {
            filter(" AND (user_name = ? OR caller = ?)", Bind::Text(user.clone()));
        }
        if let Some(tool) = &query.tool {
            filter(
                " AND (tool = ? OR substr(tool, length(tool) - length(?) - 1) = '__' || ?)",
                Bind::Text(tool.clone()),
            );
        }
        if let Some(decision) = &query.decision {
            filter(" AND decision = ?", Bind::Text(decision.clone()));
        }
        sql.push_str(if query.latest { " ORDER BY seq DESC" } else { " ORDER BY seq" });
        if let Some(limit) = query.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let mut q = sqlx::query(&sql);
        for bind in binds {
            q = match bind {
                Bind::Int(v) => q.bind(v),
                Bind::Text(v) => q.bind(v),
            };
        }
        let mut rows: Vec<AuditRow> = q.fetch_all(&self.pool).await?.iter().map(audit_row).collect::<Result<_, _>>()?;
        if query.latest {
            rows.reverse();
        }
        Ok(rows)
    }

    /// Walks the whole chain: every hash recomputed, every link and sequence number checked,
    /// both ends compared with the head record.
    pub async fn verify_audit(&self) -> Result<AuditCheck, StoreError> {
        let head = sqlx::query("SELECT * FROM audit_head WHERE id = 1").fetch_one(&self.pool).await?;
        let (head_seq, head_hash): (i64, String) = (head.try_get("seq")?, head.try_get("hash")?);
        let (pruned_seq, pruned_hash): (i64, String) = (head.try_get("pruned_seq")?, head.try_get("pruned_hash")?);
        let mut check =
            AuditCheck { events: 0, first_seq: None, last_seq: None, head: head_hash.clone(), problems: vec![] };
        let (mut expect_seq, mut expect_prev) = (pruned_seq + 1, pruned_hash);
        let mut rows = sqlx::query("SELECT * FROM audit_events ORDER BY seq").fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let row = audit_row(&row)?;
            check.events += 1;
            check.first_seq.get_or_insert(row.seq);
            check.last_seq = Some(row.seq);
            if row.seq != expect_seq {
                let what = if row.seq > expect_seq { "missing (deleted)" } else { "out of order" };
                check.problem(format!("event {}: events {expect_seq}..{} are {what}", row.seq, row.seq - 1));
            }
            if row.prev != expect_prev {
                check.problem(format!("event {}: does not link to the event before it", row.seq));
            }
            if chain_hash(row.seq, &row.entry, &row.prev) != row.hash {
                check.problem(format!("event {}: its content does not match its hash (edited)", row.seq));
            }
            expect_seq = row.seq + 1;
            expect_prev = row.hash;
        }
        if check.last_seq.unwrap_or(pruned_seq) != head_seq {
            let end = check.last_seq.unwrap_or(pruned_seq);
            check.problem(format!(
                "the log ends at event {end} but {head_seq} were written (events deleted from the end)"
            ));
        } else if expect_prev != head_hash {
            check.problem(format!("the last event, {head_seq}, is not the one written (replaced)"));
        }
        Ok(check)
    }

    /// Retention: removes events older than `before` (Unix ms), then the oldest until the
    /// events' bodies take at most `max_bytes`. The last removed event becomes the chain's
    /// anchor. Returns how many were removed.
    pub async fn prune_audit(&self, before: Option<i64>, max_bytes: Option<u64>) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let mut cut: i64 = 0;
        if let Some(before) = before {
            let last: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_events WHERE at < $1")
                .bind(before)
                .fetch_one(&mut *tx)
                .await?;
            cut = cut.max(last.unwrap_or(0));
        }
        if let Some(max_bytes) = max_bytes {
            // The newest events that fit; everything before them goes.
            let max = i64::try_from(max_bytes).unwrap_or(i64::MAX);
            let keep_from: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(seq) FROM (SELECT seq, SUM(length(body)) OVER (ORDER BY seq DESC) AS total \
                 FROM audit_events) AS newest WHERE total <= $1",
            )
            .bind(max)
            .fetch_one(&mut *tx)
            .await?;
            let last: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_events").fetch_one(&mut *tx).await?;
            if let Some(last) = last {
                cut = cut.max(keep_from.map_or(last, |k| k - 1));
            }
        }
        if cut == 0 {
            return Ok(0);
        }
        let anchor: Option<String> = sqlx::query_scalar("SELECT hash FROM audit_events WHERE seq = $1")
            .bind(cut)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(anchor) = anchor else { return Ok(0) };
        let removed = sqlx::query("DELETE FROM audit_events WHERE seq <= $1").bind(cut).execute(&mut *tx).await?;
        sqlx::query("UPDATE audit_head SET pruned_seq = $1, pruned_hash = $2 WHERE id = 1")
            .bind(cut)
            .bind(&anchor)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(removed.rows_affected())
    }
}

enum Bind {
    Int(i64),
    Text(String),
}

fn audit_row(row: &AnyRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        seq: row.try_get("seq")?,
        entry: AuditEntry {
            at: row.try_get("at")?,
            caller: row.try_get("caller")?,
            user: row.try_get("user_name")?,
            tool: row.try_get("tool")?,
            decision: row.try_get("decision")?,
            body: row.try_get("body")?,
        },
        prev: row.try_get("prev")?,
        hash: row.try_get("hash")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdb::{on_both, TestDb};

    fn entry(i: i64, user: &str, tool: &str, decision: &str) -> AuditEntry {
        AuditEntry {
            at: 1_000 * i,
            caller: format!("user:{user}"),
            user: user.into(),
            tool: tool.into(),
            decision: decision.into(),
            body: format!(r#"{{"n":{i}}}"#),
        }
    }

    /// A store whose log holds `n` events (any before are removed).
    async fn store_with(db: &TestDb, n: i64) -> Store {
        let store = db.open().await;
        sql(&store, "DELETE FROM audit_events").await;
        sql(
            &store,
            &format!("UPDATE audit_head SET seq = 0, hash = '{GENESIS}', pruned_seq = 0, pruned_hash = '{GENESIS}'"),
        )
        .await;
        let entries: Vec<AuditEntry> = (1..=n).map(|i| entry(i, "alice", "gh__create_issue", "allow")).collect();
        store.append_audit(&entries).await.unwrap();
        store
    }

    async fn sql(store: &Store, statement: &str) {
        sqlx::query(statement).execute(&store.pool).await.unwrap();
    }

    /// Chains written by earlier versions must keep verifying: the hash is SHA-256 over the
    /// compact JSON array `[prev, seq, at, caller, user, tool, decision, body]` (computed
    /// independently with Python's `json` and `hashlib`).
    #[test]
    fn the_hash_of_an_event_is_stable() {
        assert_eq!(
            chain_hash(1, &entry(1, "alice", "t", "allow"), GENESIS),
            "ffa6d1fb67751ec3fae476b0e9460e43f2827bf57a46d05673654433d5dd4795"
        );
    }

    on_both! {
        async fn a_large_batch_lands_in_order_and_linked(db: &TestDb) {
            let store = store_with(db, 237).await;
            let check = store.verify_audit().await.unwrap();
            assert!(check.problems.is_empty(), "{:?}", check.problems);
            assert_eq!((check.events, check.last_seq), (237, Some(237)));
            let rows = store.audit_events(&AuditQuery::default()).await.unwrap();
            for (i, row) in rows.iter().enumerate() {
                assert_eq!(row.seq, i as i64 + 1);
                assert_eq!(row.entry.body, format!(r#"{{"n":{}}}"#, i + 1), "row {} holds its own event", i + 1);
            }
            assert!(rows.windows(2).all(|w| w[1].prev == w[0].hash), "each event links to the one before");
        }

        async fn a_whole_chain_verifies_and_batches_extend_it(db: &TestDb) {
            let store = store_with(db, 3).await;
            assert_eq!(store.append_audit(&[entry(4, "bob", "fs__read_file", "deny")]).await.unwrap(), 4);
            let check = store.verify_audit().await.unwrap();
            assert_eq!((check.events, check.first_seq, check.last_seq), (4, Some(1), Some(4)));
            assert!(check.problems.is_empty(), "{:?}", check.problems);
            let rows = store.audit_events(&AuditQuery::default()).await.unwrap();
            assert_eq!(rows[0].prev, GENESIS);
            assert_eq!(rows[3].prev, rows[2].hash);
            assert_eq!(check.head, rows[3].hash);
        }

        async fn edits_deletions_and_insertions_are_found(db: &TestDb) {
            let store = store_with(db, 5).await;
            sql(&store, r#"UPDATE audit_events SET body = '{"n":99}' WHERE seq = 2"#).await;
            let problems = store.verify_audit().await.unwrap().problems;
            assert_eq!(problems, ["event 2: its content does not match its hash (edited)"]);

            let store = store_with(db, 5).await;
            sql(&store, "UPDATE audit_events SET decision = 'allow', user_name = 'mallory' WHERE seq = 4").await;
            assert!(!store.verify_audit().await.unwrap().problems.is_empty(), "a filtered column is covered too");

            let store = store_with(db, 5).await;
            sql(&store, "DELETE FROM audit_events WHERE seq = 3").await;
            let problems = store.verify_audit().await.unwrap().problems;
            assert!(problems.iter().any(|p| p.contains("3..3 are missing")), "{problems:?}");

            let store = store_with(db, 5).await;
            sql(&store, "DELETE FROM audit_events WHERE seq >= 4").await;
            let problems = store.verify_audit().await.unwrap().problems;
            assert!(problems.iter().any(|p| p.contains("ends at event 3 but 5 were written")), "{problems:?}");

            let store = store_with(db, 5).await;
            sql(&store, "DELETE FROM audit_events WHERE seq = 1").await;
            let problems = store.verify_audit().await.unwrap().problems;
            assert!(problems.iter().any(|p| p.contains("1..1 are missing")), "{problems:?}");
        }

        async fn a_rewritten_chain_is_found_by_its_head(db: &TestDb) {
            // Someone who edits an event and recomputes every hash after it still leaves the head.
            let store = store_with(db, 3).await;
            let mut rows = store.audit_events(&AuditQuery::default()).await.unwrap();
            rows[1].entry.decision = "allow-edited".into();
            let mut prev = rows[0].hash.clone();
            for row in &mut rows[1..] {
                row.prev = prev.clone();
                row.hash = chain_hash(row.seq, &row.entry, &row.prev);
                prev = row.hash.clone();
                sqlx::query("UPDATE audit_events SET decision = $1, prev = $2, hash = $3 WHERE seq = $4")
                    .bind(&row.entry.decision)
                    .bind(&row.prev)
                    .bind(&row.hash)
                    .bind(row.seq)
                    .execute(&store.pool)
                    .await
                    .unwrap();
            }
            let problems = store.verify_audit().await.unwrap().problems;
            assert_eq!(problems, ["the last event, 3, is not the one written (replaced)"]);
        }

        async fn queries_filter_and_page(db: &TestDb) {
            let store = store_with(db, 0).await;
            let entries = [
                entry(1, "alice", "gh__create_issue", "allow"),
                entry(2, "bob", "gh__create_issue", "deny"),
                entry(3, "alice", "fs__read_file", "redact"),
                entry(4, "alice", "create_issue", "allow"),
            ];
            store.append_audit(&entries).await.unwrap();
            let seqs = |rows: Vec<AuditRow>| rows.iter().map(|r| r.seq).collect::<Vec<_>>();
            let q = |f: fn(&mut AuditQuery)| {
                let mut q = AuditQuery::default();
                f(&mut q);
                q
            };
            assert_eq!(seqs(store.audit_events(&q(|q| q.user = Some("alice".into()))).await.unwrap()), [1, 3, 4]);
            assert_eq!(seqs(store.audit_events(&q(|q| q.user = Some("user:bob".into()))).await.unwrap()), [2]);
            assert_eq!(seqs(store.audit_events(&q(|q| q.tool = Some("create_issue".into()))).await.unwrap()), [1, 2, 4]);
            assert_eq!(seqs(store.audit_events(&q(|q| q.tool = Some("gh__create_issue".into()))).await.unwrap()), [1, 2]);
            assert_eq!(seqs(store.audit_events(&q(|q| q.decision = Some("deny".into()))).await.unwrap()), [2]);
            assert_eq!(seqs(store.audit_events(&q(|q| q.since = Some(2_000))).await.unwrap()), [2, 3, 4]);
            assert_eq!(seqs(store.audit_events(&q(|q| q.until = Some(2_000))).await.unwrap()), [1]);
            assert_eq!(seqs(store.audit_events(&q(|q| (q.after, q.limit) = (Some(1), Some(2)))).await.unwrap()), [2, 3]);
            assert_eq!(seqs(store.audit_events(&q(|q| (q.latest, q.limit) = (true, Some(2)))).await.unwrap()), [3, 4]);
        }

        async fn retention_moves_the_anchor_and_the_rest_still_verifies(db: &TestDb) {
            let store = store_with(db, 10).await;
            assert_eq!(store.prune_audit(Some(3_500), None).await.unwrap(), 3);
            let check = store.verify_audit().await.unwrap();
            assert!(check.problems.is_empty(), "{:?}", check.problems);
            assert_eq!((check.events, check.first_seq), (7, Some(4)));
            // Bodies of 7 and 8 bytes: 40 bytes keep the newest 5.
            assert_eq!(store.prune_audit(None, Some(40)).await.unwrap(), 2);
            let check = store.verify_audit().await.unwrap();
            assert!(check.problems.is_empty(), "{:?}", check.problems);
            assert_eq!((check.events, check.first_seq, check.last_seq), (5, Some(6), Some(10)));
            assert_eq!(store.prune_audit(Some(0), Some(1 << 20)).await.unwrap(), 0);
            store.append_audit(&[entry(11, "alice", "t", "allow")]).await.unwrap();
            assert!(store.verify_audit().await.unwrap().problems.is_empty());
        }

        async fn two_writers_extend_one_chain(db: &TestDb) {
            // Two gateways on one database, appending at once: every event lands, in one chain.
            let (a, b) = (store_with(db, 0).await, db.open().await);
            let write = |store: Store, user: &'static str| async move {
                for i in 0..20 {
                    let batch: Vec<AuditEntry> = (0..10).map(|j| entry(i * 10 + j, user, "t", "allow")).collect();
                    store.append_audit(&batch).await.unwrap();
                }
            };
            tokio::join!(write(a.clone(), "alice"), write(b, "bob"));
            let check = a.verify_audit().await.unwrap();
            assert!(check.problems.is_empty(), "{:?}", check.problems);
            assert_eq!((check.events, check.last_seq), (400, Some(400)));
        }
    }
}
