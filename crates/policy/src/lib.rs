//! Who is calling: API keys (issued by `portcullis keys`, checked by the gateway against an
//! in-memory key ring that follows the store) and JWTs from an identity provider; what they may
//! do: access rules compiled into Cedar.
#![forbid(unsafe_code)]

pub mod access;
pub mod apikey;
pub mod jwt;
pub mod keyadmin;
pub mod keyring;

pub use access::{Access, AccessError, AccessRuleConfig, Facts, Kind, Verdict};
pub use apikey::{IssuedKey, KEY_PREFIX};
pub use jwt::{JwtError, JwtSettings, JwtVerifier};
pub use keyring::{AuthError, KeyRing};
