//! API keys: records of who a key belongs to, a hash of its secret, and its lifetime.
//! Every change bumps the `api_keys` version in the same transaction, which is what a
//! running gateway polls.

use crate::{Store, StoreError};
use sqlx::Row;

/// A key to store. The secret itself never reaches the store: only its hash.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    /// Hex SHA-256 of the key's secret part.
    pub hash: String,
    pub user: Option<String>,
    pub team: Option<String>,
    pub app: Option<String>,
    pub roles: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// A stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub hash: String,
    pub user: Option<String>,
    pub team: Option<String>,
    pub app: Option<String>,
    pub roles: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The key that replaced this one on rotation.
    pub replaced_by: Option<String>,
}

impl KeyRecord {
    /// Valid at `now` (Unix ms): not revoked, not expired.
    pub fn is_valid_at(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

const COLUMNS: &str = "id, hash, user_name, team, app, roles, created_at, expires_at, revoked_at, replaced_by";

impl Store {
    /// The version of the keys table: changes whenever a key is added, revoked or rotated.
    pub async fn keys_version(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT version FROM versions WHERE name = 'api_keys'").fetch_one(&self.pool).await?)
    }

    pub async fn insert_key(&self, key: &NewKey) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        insert(&mut tx, key).await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every key, oldest first.
    pub async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record).collect()
    }

    pub async fn key(&self, id: &str) -> Result<KeyRecord, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NoSuchKey(id.to_owned()))?;
        record(&row)
    }

    /// Revokes a key at `at` (Unix ms). Revoking a revoked key keeps its first time.
    pub async fn revoke_key(&self, id: &str, at: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoSuchKey(id.to_owned()));
        }
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores `new` as the replacement of `old`, which stays valid until `old_valid_until`
    /// (Unix ms; never later than it would have anyway).
    pub async fn rotate_key(&self, old: &str, new: &NewKey, old_valid_until: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE api_keys SET expires_at = CASE WHEN expires_at < $1 THEN expires_at ELSE $1 END, replaced_by = $2 \
             WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(old_valid_until)
        .bind(&new.id)
        .bind(old)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoSuchKey(old.to_owned()));
        }
        insert(&mut tx, new).await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn insert(tx: &mut sqlx::AnyConnection, key: &NewKey) -> Result<(), StoreError> {
    let roles = serde_json::to_string(&key.roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(&format!("INSERT INTO api_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL)"))
        .bind(&key.id)
        .bind(&key.hash)
        .bind(&key.user)
        .bind(&key.team)
        .bind(&key.app)
        .bind(roles)
        .bind(key.created_at)
        .bind(key.expires_at)
        .execute(tx)
        .await?;
    Ok(())
}

async fn bump(tx: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
    sqlx::query("UPDATE versions SET version = version + 1 WHERE name = 'api_keys'").execute(tx).await?;
    Ok(())
}

fn record(row: &sqlx::any::AnyRow) -> Result<KeyRecord, StoreError> {
    let roles: String = row.try_get("roles")?;
    Ok(KeyRecord {
        id: row.try_get("id")?,
        hash: row.try_get("hash")?,
        user: row.try_get("user_name")?,
        team: row.try_get("team")?,
        app: row.try_get("app")?,
        roles: serde_json::from_str(&roles).map_err(|e| StoreError::Corrupt(format!("roles of a key: {e}")))?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        replaced_by: row.try_get("replaced_by")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdb::on_both;

    fn key(id: &str, at: i64) -> NewKey {
        NewKey {
            id: id.into(),
            hash: "ab".repeat(32),
            user: Some("alice".into()),
            team: Some("eng".into()),
            app: None,
            roles: vec!["admin".into()],
            created_at: at,
            expires_at: None,
        }
    }

    on_both! {
        async fn keys_are_stored_revoked_and_rotated_and_every_change_bumps_the_version(db: &TestDb) {
            let store = db.open().await;
            let v0 = store.keys_version().await.unwrap();
            store.insert_key(&key("k1", 1000)).await.unwrap();
            let v1 = store.keys_version().await.unwrap();
            assert!(v1 > v0);
            let k1 = store.key("k1").await.unwrap();
            assert_eq!((k1.user.as_deref(), k1.roles.clone()), (Some("alice"), vec!["admin".to_owned()]));
            assert!(k1.is_valid_at(2000));

            store.rotate_key("k1", &key("k2", 2000), 5000).await.unwrap();
            let k1 = store.key("k1").await.unwrap();
            assert_eq!((k1.expires_at, k1.replaced_by.as_deref()), (Some(5000), Some("k2")));
            assert!(k1.is_valid_at(4999) && !k1.is_valid_at(5000));
            assert!(store.keys_version().await.unwrap() > v1);

            store.revoke_key("k2", 3000).await.unwrap();
            store.revoke_key("k2", 4000).await.unwrap();
            assert_eq!(store.key("k2").await.unwrap().revoked_at, Some(3000), "the first revocation time stays");
            assert!(matches!(store.revoke_key("nope", 1).await, Err(StoreError::NoSuchKey(_))));
            assert!(
                matches!(store.rotate_key("k2", &key("k3", 1), 1).await, Err(StoreError::NoSuchKey(_))),
                "revoked keys do not rotate"
            );
            assert_eq!(store.keys().await.unwrap().len(), 2);

            // A second open (another process) sees the same data; migrations run once.
            let again = db.open().await;
            assert_eq!(again.keys().await.unwrap().len(), 2);
        }
    }

    #[tokio::test]
    async fn an_unusable_path_says_what_to_do() {
        let err = Store::open(std::path::Path::new("/nonexistent-dir/x/portcullis.db")).await.err().unwrap();
        assert!(err.to_string().contains("store.path"), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_postgres_says_what_to_do_without_the_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let at = crate::Location::parse(&format!("postgres://app:hunter2@127.0.0.1:{port}/portcullis")).unwrap();
        let err = Store::open(at).await.err().unwrap().to_string();
        assert!(err.contains("store.url") && err.contains("app:***@127.0.0.1"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
