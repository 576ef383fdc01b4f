//! Who is calling: API keys (issued by `portcullis keys`, checked by the gateway against an
//! in-memory key ring that follows the store) and JWTs from an identity provider.
#![forbid(unsafe_code)]

pub mod apikey;
pub mod jwt;
pub mod keyring;

pub use apikey::{IssuedKey, KEY_PREFIX};
pub use jwt::{JwtError, JwtSettings, JwtVerifier};
pub use keyring::{AuthError, KeyRing};
