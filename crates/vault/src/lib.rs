//! The credential vault: the secrets the gateway presents to upstreams (API tokens, OAuth
//! client secrets), sealed at rest and referenced from the config as `secret:NAME`.
//!
//! Each value is sealed with XChaCha20-Poly1305 under a 32-byte vault key that comes from an
//! environment variable or a file, never from the config or the database. The secret's name
//! is bound into the seal (associated data), so swapping two rows in the database makes both
//! fail to open instead of handing one upstream the other's credential.
#![forbid(unsafe_code)]

mod key;
mod reference;
mod snapshot;

pub use key::{KeySource, VaultKey};
pub use reference::{check_name, check_stored_name, reference, split_stored, stored_name, user_secret};
pub use snapshot::Secrets;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use portcullis_store::{now_ms, Put, SealedSecret, Store, StoreError};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

/// Why a vault operation failed. No variant carries a secret value.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("no vault key: set ${env} to 32 random bytes in base64 (e.g. `openssl rand -base64 32`), or point `vault.key_file` at a file holding them")]
    NoKey { env: String },
    #[error("the vault key from {from} is not usable: {why}; it must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)")]
    BadKey { from: String, why: String },
    #[error("the vault key from {from} is not the key this database's secrets were sealed with; use the original key (or `portcullis secrets rekey` with both)")]
    WrongKey { from: String },
    #[error("secret `{0}` cannot be opened: it was altered or moved in the database; set it again with `portcullis secrets set {0}`")]
    Damaged(String),
    #[error("invalid secret name `{name}`: {why}")]
    BadName { name: String, why: String },
    #[error("the value of secret `{0}` is empty; an empty credential is never what an upstream expects")]
    Empty(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `secrets list` shows of a secret: everything but its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub name: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const NONCE: usize = 24;
/// Sealed under the key, with this associated data, as the key check.
const KEY_CHECK: &[u8] = b"portcullis vault key check v1";

/// Seals and opens with one vault key.
struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    fn new(key: &VaultKey) -> Sealer {
        Sealer { cipher: XChaCha20Poly1305::new(key.bytes().into()) }
    }

    fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        // Encrypting with a 32-byte key and a 24-byte nonce does not fail; an empty
        // ciphertext would fail to open later, loudly.
        let sealed = self.cipher.encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad }).unwrap_or_default();
        [nonce.as_slice(), &sealed].concat()
    }

    fn open(&self, aad: &[u8], blob: &[u8]) -> Option<Vec<u8>> {
        if blob.len() < NONCE {
            return None;
        }
        let (nonce, sealed) = blob.split_at(NONCE);
        self.cipher.decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad }).ok()
    }
}

/// The associated data of a secret's seal: its name.
fn aad(name: &str) -> Vec<u8> {
    [b"portcullis secret v1\0".as_slice(), name.as_bytes()].concat()
}

/// The vault over one store, with one key.
pub struct Vault {
    store: Store,
    sealer: Sealer,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("store", &self.store.location()).finish_non_exhaustive()
    }
}

impl Vault {
    /// Opens the vault, checking the key against the one the database's secrets were sealed
    /// with (the first key used becomes that key).
    pub async fn open(store: Store, key: &VaultKey) -> Result<Vault, VaultError> {
        let sealer = Sealer::new(key);
        let check = match store.vault_key_check().await? {
            Some(check) => check,
            None => store.init_vault_key_check(&sealer.seal(KEY_CHECK, KEY_CHECK)).await?,
        };
        if sealer.open(KEY_CHECK, &check).as_deref() != Some(KEY_CHECK) {
            return Err(VaultError::WrongKey { from: key.source().to_string() });
        }
        Ok(Vault { store, sealer })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates the secret or gives it a new value; returns its version.
    pub async fn set(&self, name: &str, value: &SecretString) -> Result<i64, VaultError> {
        self.put(name, value, Put::Upsert).await
    }

    /// Gives an existing secret a new value (fails if there is none); returns its version.
    pub async fn rotate(&self, name: &str, value: &SecretString) -> Result<i64, VaultError> {
        self.put(name, value, Put::Replace).await
    }

    async fn put(&self, name: &str, value: &SecretString, put: Put) -> Result<i64, VaultError> {
        check_stored_name(name).map_err(|why| VaultError::BadName { name: name.to_owned(), why })?;
        if value.expose_secret().is_empty() {
            return Err(VaultError::Empty(name.to_owned()));
        }
        let sealed = self.sealer.seal(&aad(name), value.expose_secret().as_bytes());
        Ok(self.store.put_secret(name, &sealed, now_ms(), put).await?)
    }

    pub async fn delete(&self, name: &str) -> Result<(), VaultError> {
        Ok(self.store.delete_secret(name).await?)
    }

    /// Every secret's name and history, without values.
    pub async fn list(&self) -> Result<Vec<SecretInfo>, VaultError> {
        Ok(self
            .store
            .sealed_secrets()
            .await?
            .into_iter()
            .map(|s| SecretInfo {
                name: s.name,
                version: s.version,
                created_at: s.created_at,
                updated_at: s.updated_at,
            })
            .collect())
    }

    /// The store's change counter: a running gateway reloads its [`Secrets`] when it moves.
    pub async fn version(&self) -> Result<i64, VaultError> {
        Ok(self.store.secrets_version().await?)
    }

    /// Every secret, opened. A damaged one is reported by name (and left out), so one bad
    /// row does not take every upstream down.
    pub async fn snapshot(&self) -> Result<(Secrets, Vec<VaultError>), VaultError> {
        let version = self.version().await?;
        let mut secrets = Secrets::empty(version);
        let mut damaged = Vec::new();
        for row in self.store.sealed_secrets().await? {
            match self.open_row(&row) {
                Ok(value) => secrets.insert(row.name, value),
                Err(e) => damaged.push(e),
            }
        }
        Ok((secrets, damaged))
    }

    fn open_row(&self, row: &SealedSecret) -> Result<SecretString, VaultError> {
        let plain =
            self.sealer.open(&aad(&row.name), &row.sealed).ok_or_else(|| VaultError::Damaged(row.name.clone()))?;
        String::from_utf8(plain).map(SecretString::from).map_err(|_| VaultError::Damaged(row.name.clone()))
    }

    /// Seals every secret again under `new` (a change of vault key), in one transaction.
    /// Returns how many secrets were re-sealed.
    pub async fn rekey(&self, new: &VaultKey) -> Result<usize, VaultError> {
        let next = Sealer::new(new);
        let rows = self.store.sealed_secrets().await?;
        let mut resealed = Vec::with_capacity(rows.len());
        for row in rows {
            let value = self.open_row(&row)?;
            let sealed = next.seal(&aad(&row.name), value.expose_secret().as_bytes());
            resealed.push(SealedSecret { sealed, ..row });
        }
        self.store.reseal_secrets(&resealed, &next.seal(KEY_CHECK, KEY_CHECK)).await?;
        Ok(resealed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> VaultKey {
        VaultKey::from_bytes([byte; 32], KeySource::Env("TEST_KEY".into()))
    }

    async fn store(dir: &tempfile::TempDir) -> Store {
        Store::open(&dir.path().join("p.db")).await.unwrap()
    }

    #[tokio::test]
    async fn secrets_round_trip_and_are_sealed_at_rest() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(store(&dir).await, &key(1)).await.unwrap();
        assert_eq!(vault.set("github", &"ghp_plain_value".into()).await.unwrap(), 1);
        assert_eq!(vault.rotate("github", &"ghp_second_value".into()).await.unwrap(), 2);
        let (secrets, damaged) = vault.snapshot().await.unwrap();
        assert!(damaged.is_empty());
        assert_eq!(secrets.get("github").map(|s| s.expose_secret().to_owned()).as_deref(), Some("ghp_second_value"));
        let rows = vault.store().sealed_secrets().await.unwrap();
        let at_rest = String::from_utf8_lossy(&rows[0].sealed).into_owned();
        assert!(!at_rest.contains("ghp_second_value"), "the value is not stored in the clear");
        let file = std::fs::read(dir.path().join("p.db")).unwrap();
        let wal = std::fs::read(dir.path().join("p.db-wal")).unwrap_or_default();
        for bytes in [file, wal] {
            assert!(!bytes.windows(16).any(|w| w == b"ghp_second_value"), "the database file holds no plaintext");
        }
        assert_eq!(vault.list().await.unwrap()[0].version, 2);
    }

    #[tokio::test]
    async fn a_wrong_key_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        Vault::open(store(&dir).await, &key(1)).await.unwrap().set("a", &"v".into()).await.unwrap();
        let err = Vault::open(store(&dir).await, &key(2)).await.unwrap_err();
        assert!(matches!(err, VaultError::WrongKey { .. }), "{err}");
        assert!(err.to_string().contains("$TEST_KEY"), "{err}");
    }

    #[tokio::test]
    async fn swapped_rows_do_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(store(&dir).await, &key(1)).await.unwrap();
        vault.set("a", &"value-a".into()).await.unwrap();
        vault.set("b", &"value-b".into()).await.unwrap();
        let rows = vault.store().sealed_secrets().await.unwrap();
        // Put a's blob under b's name.
        vault.store().put_secret("b", &rows[0].sealed, 1, Put::Replace).await.unwrap();
        let (secrets, damaged) = vault.snapshot().await.unwrap();
        assert!(secrets.get("a").is_some() && secrets.get("b").is_none());
        assert!(matches!(&damaged[..], [VaultError::Damaged(n)] if n == "b"), "{damaged:?}");
    }

    #[tokio::test]
    async fn rekey_moves_every_secret_to_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(store(&dir).await, &key(1)).await.unwrap();
        vault.set("a", &"value-a".into()).await.unwrap();
        assert_eq!(vault.rekey(&key(3)).await.unwrap(), 1);
        assert!(Vault::open(store(&dir).await, &key(1)).await.is_err(), "the old key no longer opens it");
        let fresh = Vault::open(store(&dir).await, &key(3)).await.unwrap();
        let (secrets, _) = fresh.snapshot().await.unwrap();
        assert_eq!(secrets.get("a").unwrap().expose_secret(), "value-a");
    }

    #[tokio::test]
    async fn bad_names_and_empty_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(store(&dir).await, &key(1)).await.unwrap();
        assert!(matches!(vault.set("has space", &"v".into()).await, Err(VaultError::BadName { .. })));
        assert!(matches!(vault.set("ok", &"".into()).await, Err(VaultError::Empty(_))));
        assert!(matches!(
            vault.rotate("missing", &"v".into()).await,
            Err(VaultError::Store(StoreError::NoSuchSecret(_)))
        ));
    }
}
