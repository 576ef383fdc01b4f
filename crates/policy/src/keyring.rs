//! The keys a gateway accepts, held in memory and checked without touching the store.
//!
//! The gateway polls the store's key version a few times a second ([`KeyRing::refresh`])
//! and reloads the keys when it moved, so a key revoked by `portcullis keys revoke` in
//! another process is refused within a second, without a restart.

use crate::apikey::{hash_secret, parse};
use arc_swap::ArcSwap;
use portcullis_core::{AuthMethod, Principal};
use portcullis_store::{KeyRecord, Store, StoreError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Why a presented key was refused. The messages are safe to send to the caller: they
/// never contain the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the bearer token is not a Portcullis API key (they start with pcs_)")]
    Malformed,
    #[error("the API key is not valid")]
    Unknown,
    #[error("the API key {0} was revoked")]
    Revoked(String),
    #[error("the API key {0} has expired")]
    Expired(String),
}

/// The accepted keys, by id.
pub struct KeyRing {
    keys: ArcSwap<HashMap<String, KeyRecord>>,
    version: AtomicI64,
}

impl KeyRing {
    /// The keys in `store` now.
    pub async fn load(store: &Store) -> Result<KeyRing, StoreError> {
        let ring = KeyRing { keys: ArcSwap::from_pointee(HashMap::new()), version: AtomicI64::new(i64::MIN) };
        ring.refresh(store).await?;
        Ok(ring)
    }

    /// Reloads the keys if the store's version moved; says whether it did.
    pub async fn refresh(&self, store: &Store) -> Result<bool, StoreError> {
        // Version first: a change landing between the two reads is seen again next time.
        let version = store.keys_version().await?;
        if version == self.version.load(Ordering::Acquire) {
            return Ok(false);
        }
        let keys = store.keys().await?.into_iter().map(|k| (k.id.clone(), k)).collect();
        self.keys.store(Arc::new(keys));
        self.version.store(version, Ordering::Release);
        Ok(true)
    }

    /// The principal a presented key stands for, at `now` (Unix ms).
    pub fn authenticate(&self, presented: &str, now: i64) -> Result<Principal, AuthError> {
        let (id, secret) = parse(presented).ok_or(AuthError::Malformed)?;
        let keys = self.keys.load();
        let record = keys.get(id).ok_or(AuthError::Unknown)?;
        if !bool::from(hash_secret(secret).as_bytes().ct_eq(record.hash.as_bytes())) {
            return Err(AuthError::Unknown);
        }
        // Only a caller holding the secret learns why its key stopped working.
        if record.revoked_at.is_some() {
            return Err(AuthError::Revoked(record.id.clone()));
        }
        if !record.is_valid_at(now) {
            return Err(AuthError::Expired(record.id.clone()));
        }
        Ok(Principal {
            method: AuthMethod::ApiKey,
            user: record.user.clone(),
            team: record.team.clone(),
            app: record.app.clone(),
            roles: record.roles.clone(),
            key_id: Some(record.id.clone()),
            presented: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apikey::generate;
    use portcullis_store::NewKey;

    fn new_key(issued: &crate::IssuedKey, expires_at: Option<i64>) -> NewKey {
        NewKey {
            id: issued.id.clone(),
            hash: issued.hash.clone(),
            user: Some("alice".into()),
            team: Some("eng".into()),
            app: None,
            roles: vec![],
            created_at: 0,
            expires_at,
        }
    }

    #[tokio::test]
    async fn keys_authenticate_until_revoked_or_expired_and_changes_are_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("p.db")).await.unwrap();
        let (a, b) = (generate(), generate());
        store.insert_key(&new_key(&a, None)).await.unwrap();
        store.insert_key(&new_key(&b, Some(10_000))).await.unwrap();
        let ring = KeyRing::load(&store).await.unwrap();

        let p = ring.authenticate(&a.key, 1).unwrap();
        assert_eq!(
            (p.subject(), p.team.as_deref(), p.key_id.as_deref()),
            ("user:alice".into(), Some("eng"), Some(&*a.id))
        );
        assert!(ring.authenticate(&b.key, 9_999).is_ok());
        assert_eq!(ring.authenticate(&b.key, 10_000), Err(AuthError::Expired(b.id.clone())));

        // A wrong secret for a real id, an unknown id, and not a key at all.
        let (_, secret) = crate::apikey::parse(&a.key).unwrap();
        let forged = a.key.replace(secret, &"A".repeat(43));
        assert_eq!(ring.authenticate(&forged, 1), Err(AuthError::Unknown));
        assert_eq!(ring.authenticate(&generate().key, 1), Err(AuthError::Unknown));
        assert_eq!(ring.authenticate("hunter2", 1), Err(AuthError::Malformed));

        assert!(!ring.refresh(&store).await.unwrap(), "nothing changed");
        store.revoke_key(&a.id, 5).await.unwrap();
        assert!(ring.authenticate(&a.key, 6).is_ok(), "not seen before a refresh");
        assert!(ring.refresh(&store).await.unwrap());
        assert_eq!(ring.authenticate(&a.key, 6), Err(AuthError::Revoked(a.id.clone())));
        assert!(!AuthError::Revoked(a.id.clone()).to_string().contains(&a.key));
    }
}
