//! Session taint: which labels (untrusted content, private data, ...) have entered a
//! caller's session, and from which tool. The gateway keeps a copy in memory; the store makes
//! it the same on every replica and across restarts.

use crate::{Store, StoreError};
use sqlx::Row;

impl Store {
    /// Records that `label` entered the session through `source` (the first source stays).
    pub async fn record_taint(
        &self,
        caller: &str,
        session: &str,
        label: &str,
        source: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO session_taint (caller, session, label, source, at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING",
        )
        .bind(caller)
        .bind(session)
        .bind(label)
        .bind(source)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The labels that entered a session, with their sources.
    pub async fn taint(&self, caller: &str, session: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT label, source FROM session_taint WHERE caller = $1 AND session = $2")
            .bind(caller)
            .bind(session)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("label")?, r.try_get("source")?))).collect()
    }

    /// Forgets a closed session.
    pub async fn forget_taint(&self, session: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM session_taint WHERE session = $1").bind(session).execute(&self.pool).await?;
        Ok(())
    }

    /// Forgets what entered sessions before `before` (Unix ms).
    pub async fn expire_taint(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM session_taint WHERE at < $1").bind(before).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use crate::testdb::on_both;

    on_both! {
        async fn the_first_source_of_a_label_stays_and_old_sessions_expire(db: &TestDb) {
            let store = db.open().await;
            store.record_taint("alice", "s1", "untrusted_content", "gh__get_issue", 10).await.unwrap();
            store.record_taint("alice", "s1", "untrusted_content", "web__fetch", 20).await.unwrap();
            store.record_taint("alice", "s1", "private_data", "gh__get_file_contents", 30).await.unwrap();
            let mut taint = store.taint("alice", "s1").await.unwrap();
            taint.sort();
            assert_eq!(
                taint,
                [
                    ("private_data".into(), "gh__get_file_contents".into()),
                    ("untrusted_content".into(), "gh__get_issue".into())
                ]
            );
            assert!(store.taint("bob", "s1").await.unwrap().is_empty());
            assert_eq!(store.expire_taint(25).await.unwrap(), 1);
            store.forget_taint("s1").await.unwrap();
            assert!(store.taint("alice", "s1").await.unwrap().is_empty());
        }
    }
}
