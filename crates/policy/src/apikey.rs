//! The API key format: `pcs_<id>_<secret>`.
//!
//! The id (16 hex digits) is public: it names the key in listings, logs and audit records.
//! The secret (32 random bytes, base64url) is shown once, at creation; the store keeps
//! only its SHA-256. A fast hash is the right one here: the secret has 256 bits of entropy,
//! so there is nothing to guess, and a slow hash would cost every request. The fixed
//! prefix lets secret scanners (Portcullis' own guard among them) recognise a leaked key.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every Portcullis API key starts with this.
pub const KEY_PREFIX: &str = "pcs_";
const ID_HEX: usize = 16;

/// A freshly generated key: the full key (to show once) and what the store keeps.
pub struct IssuedKey {
    pub id: String,
    /// The whole key, `pcs_<id>_<secret>`. Show it once; never log it.
    pub key: String,
    /// Hex SHA-256 of the secret part.
    pub hash: String,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Generates a new key from the operating system's random source.
pub fn generate() -> IssuedKey {
    let mut rng = rand::rng();
    let mut id = [0u8; ID_HEX / 2];
    rng.fill_bytes(&mut id);
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    IssuedKey { key: format!("{KEY_PREFIX}{id}_{secret}"), hash: hash_secret(&secret), id }
}

/// Splits a presented key into (id, secret), or `None` if it is not one of ours.
pub fn parse(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = (rest.get(..ID_HEX)?, rest.get(ID_HEX..)?.strip_prefix('_')?);
    let valid_id = id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (valid_id && !secret.is_empty()).then_some((id, secret))
}

pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back_to_their_id_and_hash() {
        let a = generate();
        let b = generate();
        assert_ne!(a.key, b.key);
        assert!(a.key.starts_with("pcs_") && a.key.len() == 4 + 16 + 1 + 43, "{}", a.key.len());
        let (id, secret) = parse(&a.key).unwrap();
        assert_eq!(id, a.id);
        assert_eq!(hash_secret(secret), a.hash);
        assert!(!format!("{a:?}").contains(secret), "Debug never shows the key");
    }

    #[test]
    fn other_strings_are_not_keys() {
        for s in [
            "",
            "pcs_",
            "pcs_0123456789abcdef",
            "pcs_0123456789abcdef_",
            "pcs_0123456789ABCDEF_x",
            "ghp_x",
            "pcs_xyz_abc",
        ] {
            assert!(parse(s).is_none(), "{s:?}");
        }
        assert_eq!(parse("pcs_0123456789abcdef_s3cr3t"), Some(("0123456789abcdef", "s3cr3t")));
    }
}
