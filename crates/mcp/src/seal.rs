//! Authenticated encryption of small state the gateway hands to clients and gets back
//! (session ids, `requestState`): XChaCha20-Poly1305 with a random nonce, URL-safe base64.
//! A client can neither read nor alter what it carries.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

const NONCE: usize = 24;

pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        Sealer { cipher: XChaCha20Poly1305::new(key.into()) }
    }

    /// A sealer with a random key: what it seals opens only in this process.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self::new(&key)
    }

    pub fn seal(&self, plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption with a valid key and a 24-byte nonce cannot fail; an empty blob
        // would only fail to open later.
        let sealed = self.cipher.encrypt(XNonce::from_slice(&nonce), plain).unwrap_or_default();
        URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat())
    }

    /// The plaintext, if `blob` was sealed with this key and not altered.
    pub fn open(&self, blob: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(blob).ok()?;
        if bytes.len() < NONCE {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE);
        self.cipher.decrypt(XNonce::from_slice(nonce), sealed).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_alterations() {
        let s = Sealer::random();
        let blob = s.seal(b"state");
        assert_eq!(s.open(&blob).as_deref(), Some(&b"state"[..]));
        assert!(s.open(&format!("{blob}x")).is_none());
        assert!(Sealer::random().open(&blob).is_none());
        assert!(s.open("").is_none());
    }
}
