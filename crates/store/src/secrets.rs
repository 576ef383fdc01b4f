//! Vault rows: secrets as sealed blobs. The store never sees a key or a plaintext; sealing
//! and opening is the vault's (`portcullis-vault`). Every change bumps the `secrets`
//! version in the same transaction, which is what a running gateway polls.

use crate::{Store, StoreError};
use sqlx::Row;

/// One stored secret, still sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub name: String,
    pub sealed: Vec<u8>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret").field("name", &self.name).field("version", &self.version).finish()
    }
}

/// Whether [`Store::put_secret`] may create, replace, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Create the secret or replace its value.
    Upsert,
    /// Replace the value of an existing secret (a rotation); fails if there is none.
    Replace,
}

impl Store {
    /// The version of the secrets table: changes whenever a secret is set, rotated or deleted.
    pub async fn secrets_version(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT version FROM versions WHERE name = 'secrets'").fetch_one(&self.pool).await?)
    }

    /// Every secret, sealed, by name.
    pub async fn sealed_secrets(&self) -> Result<Vec<SealedSecret>, StoreError> {
        let rows = sqlx::query("SELECT name, sealed, version, created_at, updated_at FROM secrets ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SealedSecret {
                    name: row.try_get("name")?,
                    sealed: row.try_get("sealed")?,
                    version: row.try_get("version")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Stores a sealed value under `name` at `at` (Unix ms); returns the secret's new version.
    pub async fn put_secret(&self, name: &str, sealed: &[u8], at: i64, put: Put) -> Result<i64, StoreError> {
        let mut tx = self.write().await?;
        let version: Option<i64> =
            match put {
                Put::Upsert => sqlx::query_scalar(
                    "INSERT INTO secrets (name, sealed, version, created_at, updated_at) VALUES ($1, $2, 1, $3, $3) \
                 ON CONFLICT (name) DO UPDATE SET sealed = $2, version = secrets.version + 1, updated_at = $3 \
                 RETURNING version",
                )
                .bind(name)
                .bind(sealed)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await?,
                Put::Replace => {
                    sqlx::query_scalar(
                        "UPDATE secrets SET sealed = $2, version = version + 1, updated_at = $3 WHERE name = $1 \
                 RETURNING version",
                    )
                    .bind(name)
                    .bind(sealed)
                    .bind(at)
                    .fetch_optional(&mut *tx)
                    .await?
                }
            };
        let version = version.ok_or_else(|| StoreError::NoSuchSecret(name.to_owned()))?;
        bump_secrets(&mut tx).await?;
        tx.commit().await?;
        Ok(version)
    }

    pub async fn delete_secret(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM secrets WHERE name = $1").bind(name).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoSuchSecret(name.to_owned()));
        }
        bump_secrets(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The sealed key check, if a key was ever used with this database.
    pub async fn vault_key_check(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar("SELECT key_check FROM vault_meta WHERE id = 1").fetch_optional(&self.pool).await?)
    }

    /// Records the key check unless one exists; returns the one in force (which may be
    /// another process's, written a moment earlier).
    pub async fn init_vault_key_check(&self, check: &[u8]) -> Result<Vec<u8>, StoreError> {
        sqlx::query("INSERT INTO vault_meta (id, key_check) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
            .bind(check)
            .execute(&self.pool)
            .await?;
        self.vault_key_check().await?.ok_or_else(|| StoreError::Corrupt("the vault key check vanished".into()))
    }

    /// Replaces every sealed value and the key check at once (a change of vault key). A
    /// secret set meanwhile by another process makes the whole change fail, not get lost.
    pub async fn reseal_secrets(&self, resealed: &[SealedSecret], check: &[u8]) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secrets").fetch_one(&mut *tx).await?;
        if usize::try_from(count).ok() != Some(resealed.len()) {
            return Err(StoreError::Conflict(
                "secrets changed while the vault was being re-keyed; run it again".into(),
            ));
        }
        for s in resealed {
            let done = sqlx::query("UPDATE secrets SET sealed = $1 WHERE name = $2 AND version = $3")
                .bind(&s.sealed)
                .bind(&s.name)
                .bind(s.version)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(format!(
                    "secret `{}` changed while the vault was being re-keyed; run it again",
                    s.name
                )));
            }
        }
        sqlx::query(
            "INSERT INTO vault_meta (id, key_check) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET key_check = $1",
        )
        .bind(check)
        .execute(&mut *tx)
        .await?;
        bump_secrets(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn bump_secrets(tx: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
    sqlx::query("UPDATE versions SET version = version + 1 WHERE name = 'secrets'").execute(tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdb::on_both;

    on_both! {
        async fn secrets_are_set_rotated_deleted_and_every_change_bumps_the_version(db: &TestDb) {
            let store = db.open().await;
            let v0 = store.secrets_version().await.unwrap();
            assert_eq!(store.put_secret("gh", b"one", 10, Put::Upsert).await.unwrap(), 1);
            assert_eq!(store.put_secret("gh", b"two", 20, Put::Upsert).await.unwrap(), 2);
            assert_eq!(store.put_secret("gh", b"three", 30, Put::Replace).await.unwrap(), 3);
            assert!(matches!(store.put_secret("nope", b"x", 1, Put::Replace).await, Err(StoreError::NoSuchSecret(_))));
            let all = store.sealed_secrets().await.unwrap();
            assert_eq!(all.len(), 1);
            assert_eq!((all[0].sealed.as_slice(), all[0].created_at, all[0].updated_at), (&b"three"[..], 10, 30));
            assert!(!format!("{:?}", all[0]).contains("three"), "debug output hides the blob");
            let v1 = store.secrets_version().await.unwrap();
            assert_eq!(v1, v0 + 3, "the failed replace changed nothing");

            let resealed = SealedSecret { sealed: b"other".to_vec(), ..all[0].clone() };
            store.reseal_secrets(std::slice::from_ref(&resealed), b"check2").await.unwrap();
            assert_eq!(store.vault_key_check().await.unwrap().as_deref(), Some(&b"check2"[..]));
            let stale = SealedSecret { version: 1, ..resealed };
            assert!(matches!(store.reseal_secrets(&[stale], b"c").await, Err(StoreError::Conflict(_))));

            store.delete_secret("gh").await.unwrap();
            assert!(matches!(store.delete_secret("gh").await, Err(StoreError::NoSuchSecret(_))));
            assert!(store.sealed_secrets().await.unwrap().is_empty());
            assert!(store.secrets_version().await.unwrap() > v1);
        }

        async fn the_first_key_check_stays(db: &TestDb) {
            let store = db.open().await;
            assert_eq!(store.vault_key_check().await.unwrap(), None);
            assert_eq!(store.init_vault_key_check(b"first").await.unwrap(), b"first");
            assert_eq!(store.init_vault_key_check(b"second").await.unwrap(), b"first");
        }
    }
}
