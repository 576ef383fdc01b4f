//! The vault key: 32 bytes from an environment variable or a file, in base64. It never
//! lives in the config or the database, so a copy of either reveals no secret.

use crate::VaultError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretBox};
use std::path::PathBuf;

/// Where the key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env(String),
    File(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env(var) => write!(f, "${var}"),
            KeySource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// A vault key, wiped from memory when dropped.
pub struct VaultKey {
    bytes: SecretBox<[u8; 32]>,
    source: KeySource,
}

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultKey").field("source", &self.source).finish_non_exhaustive()
    }
}

impl VaultKey {
    pub fn from_bytes(bytes: [u8; 32], source: KeySource) -> VaultKey {
        VaultKey { bytes: SecretBox::new(Box::new(bytes)), source }
    }

    /// Reads the key from its source. An unset variable is [`VaultError::NoKey`].
    pub fn load(source: &KeySource) -> Result<VaultKey, VaultError> {
        let text = match source {
            KeySource::Env(var) => std::env::var(var).map_err(|_| VaultError::NoKey { env: var.clone() })?,
            KeySource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| VaultError::BadKey { from: source.to_string(), why: format!("cannot read it ({e})") })?,
        };
        Self::parse(&text, source.clone())
    }

    /// Parses base64 text (surrounding whitespace ignored) into a key.
    pub fn parse(text: &str, source: KeySource) -> Result<VaultKey, VaultError> {
        let bad = |why: &str| VaultError::BadKey { from: source.to_string(), why: why.to_owned() };
        let bytes = STANDARD.decode(text.trim()).map_err(|_| bad("it is not base64"))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| bad("it does not decode to exactly 32 bytes"))?;
        Ok(VaultKey::from_bytes(bytes, source))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        self.bytes.expose_secret()
    }

    pub fn source(&self) -> &KeySource {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_base64_and_errors_say_where_from() {
        let text = STANDARD.encode([7u8; 32]);
        let key = VaultKey::parse(&format!("{text}\n"), KeySource::Env("K".into())).unwrap();
        assert_eq!(key.bytes(), &[7u8; 32]);
        assert!(!format!("{key:?}").contains(&text));
        let short = VaultKey::parse(&STANDARD.encode([1u8; 16]), KeySource::File("/etc/k".into())).unwrap_err();
        assert!(short.to_string().contains("file /etc/k") && short.to_string().contains("32 bytes"), "{short}");
        assert!(VaultKey::parse("not base64!", KeySource::Env("K".into())).is_err());
        let unset = VaultKey::load(&KeySource::Env("PORTCULLIS_TEST_SURELY_UNSET".into())).unwrap_err();
        assert!(matches!(unset, VaultError::NoKey { .. }));
        let missing = VaultKey::load(&KeySource::File("/nonexistent/vault.key".into())).unwrap_err();
        assert!(missing.to_string().contains("cannot read it"), "{missing}");
    }
}
