//! JWT callers: tokens from an identity provider, verified against its published keys.
//!
//! The keys come from a JWKS URL (given, or found through the issuer's OpenID discovery
//! document), are cached, refreshed on a timer, and fetched again at once (at most every
//! [`MIN_REFETCH`]) when a token names a key id the cache does not hold: the provider can
//! rotate its keys and tokens signed with the new one are accepted without a restart.
//! Verification fails closed: no keys, no callers.

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use portcullis_core::{AuthMethod, PresentedToken, Principal};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Unknown key ids trigger a fetch at most this often (a flood of forged `kid`s must not
/// become a flood of requests to the identity provider).
pub const MIN_REFETCH: Duration = Duration::from_secs(5);

/// What to check and how claims map to a principal.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: String,
    /// Accepted `aud` values: this gateway (RFC 8707). A token must name one of them.
    pub audiences: Vec<String>,
    /// `None`: discover it from `<issuer>/.well-known/openid-configuration`.
    pub jwks_url: Option<String>,
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
    pub user_claim: String,
    pub team_claim: Option<String>,
    pub app_claim: Option<String>,
    pub roles_claim: Option<String>,
    /// Scopes every token must carry (`scope` or `scp`).
    pub required_scopes: Vec<String>,
}

/// Why a token was refused. Safe to show the caller: never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the bearer token is not a JWT")]
    Malformed,
    #[error("the token is signed with key id {0:?}, which the identity provider does not publish")]
    UnknownKey(String),
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token lacks the scopes {}", .0.join(" "))]
    MissingScopes(Vec<String>),
    #[error("the identity provider's keys cannot be fetched ({0}); tokens cannot be verified")]
    KeysUnavailable(String),
}

/// The provider's keys, decoded once per fetch.
struct Keys {
    by_id: HashMap<String, DecodingKey>,
    /// The key, when the set holds exactly one (tokens without a `kid` use it).
    only: Option<DecodingKey>,
}

impl Keys {
    fn new(set: &JwkSet) -> Keys {
        let decoded: Vec<(Option<String>, DecodingKey)> = set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk).ok()?)))
            .collect();
        let only = (decoded.len() == 1).then(|| decoded[0].1.clone());
        Keys { by_id: decoded.into_iter().filter_map(|(kid, key)| Some((kid?, key))).collect(), only }
    }
}

/// Verifies tokens of one issuer.
pub struct JwtVerifier {
    settings: JwtSettings,
    http: reqwest::Client,
    keys: ArcSwap<Option<Keys>>,
    /// The JWKS URL once known.
    jwks_url: Mutex<Option<String>>,
    /// When an unknown key id last caused a fetch.
    last_forced: Mutex<Option<Instant>>,
    /// Serializes fetches, so concurrent callers with a new key id cause one.
    fetching: tokio::sync::Mutex<()>,
}

impl JwtVerifier {
    pub fn new(settings: JwtSettings, http: reqwest::Client) -> JwtVerifier {
        let jwks_url = Mutex::new(settings.jwks_url.clone());
        JwtVerifier {
            settings,
            http,
            keys: ArcSwap::from_pointee(None),
            jwks_url,
            last_forced: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    pub fn settings(&self) -> &JwtSettings {
        &self.settings
    }

    /// Fetches the provider's keys now (discovering the JWKS URL first if needed).
    pub async fn refresh(&self) -> Result<(), JwtError> {
        let _one = self.fetching.lock().await;
        self.fetch().await
    }

    /// The key for `kid`, fetching the keys again if nobody did since the token arrived
    /// and unknown key ids have not caused a fetch within [`MIN_REFETCH`].
    async fn fetch_for(&self, kid: &str) -> Result<DecodingKey, JwtError> {
        let _one = self.fetching.lock().await;
        if let Some(key) = self.key(kid) {
            return Ok(key); // another caller fetched it meanwhile
        }
        let due = {
            let mut last = self.last_forced.lock().unwrap_or_else(PoisonError::into_inner);
            let due = last.is_none_or(|at| at.elapsed() >= MIN_REFETCH);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            if let Err(e) = self.fetch().await {
                if self.keys.load().is_none() {
                    return Err(e);
                }
            }
        }
        self.key(kid).ok_or_else(|| match self.keys.load().as_ref() {
            None => JwtError::KeysUnavailable("not fetched yet".into()),
            Some(_) => JwtError::UnknownKey(kid.to_owned()),
        })
    }

    /// Fetches the keys; the caller holds `fetching`.
    async fn fetch(&self) -> Result<(), JwtError> {
        // The guard must not live across the await below.
        let known = self.jwks_url.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let url = match known {
            Some(url) => url,
            None => {
                let url = self.discover().await?;
                *self.jwks_url.lock().unwrap_or_else(PoisonError::into_inner) = Some(url.clone());
                url
            }
        };
        let set: JwkSet = self.get_json(&url).await?;
        self.keys.store(Arc::new(Some(Keys::new(&set))));
        Ok(())
    }

    async fn discover(&self) -> Result<String, JwtError> {
        let url = format!("{}/.well-known/openid-configuration", self.settings.issuer.trim_end_matches('/'));
        let doc: Value = self.get_json(&url).await?;
        doc["jwks_uri"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| JwtError::KeysUnavailable(format!("{url} names no jwks_uri")))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, JwtError> {
        let unavailable = |e: String| JwtError::KeysUnavailable(format!("{url}: {e}"));
        let response = self.http.get(url).timeout(Duration::from_secs(10)).send().await;
        let response = response.map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("HTTP {}", response.status())));
        }
        response.json().await.map_err(|e| unavailable(e.to_string()))
    }

    /// The principal a token stands for.
    pub async fn verify(&self, token: &str) -> Result<Principal, JwtError> {
        let header = decode_header(token).map_err(|_| JwtError::Malformed)?;
        let kid = header.kid.clone().unwrap_or_default();
        let key = match self.key(&kid) {
            Some(key) => key,
            None => self.fetch_for(&kid).await?,
        };
        // The library wants every accepted algorithm to fit the key: check the token's
        // against the configured list here, then validate with that one alone.
        if !self.settings.algorithms.contains(&header.alg) {
            return Err(JwtError::Invalid(format!("algorithm {:?} is not accepted (auth.jwt.algorithms)", header.alg)));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&self.settings.audiences);
        validation.leeway = self.settings.leeway.as_secs();
        validation.validate_nbf = true;
        validation.required_spec_claims = HashSet::from(["exp".to_owned(), "iss".to_owned(), "aud".to_owned()]);
        let claims = decode::<Value>(token, &key, &validation).map_err(|e| JwtError::Invalid(e.to_string()))?.claims;
        let missing: Vec<String> =
            self.settings.required_scopes.iter().filter(|s| !has_scope(&claims, s)).cloned().collect();
        if !missing.is_empty() {
            return Err(JwtError::MissingScopes(missing));
        }
        let text = |claim: &Option<String>| claim.as_ref().and_then(|c| claims.get(c)).and_then(as_text);
        Ok(Principal {
            method: AuthMethod::Jwt,
            user: claims.get(&self.settings.user_claim).and_then(as_text),
            team: text(&self.settings.team_claim),
            app: text(&self.settings.app_claim),
            roles: self
                .settings
                .roles_claim
                .as_ref()
                .and_then(|c| claims.get(c))
                .map(|v| match v {
                    Value::Array(items) => items.iter().filter_map(as_text).collect(),
                    Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
                    _ => Vec::new(),
                })
                .unwrap_or_default(),
            key_id: None,
            presented: Some(PresentedToken::new(token)),
        })
    }

    /// The decoding key for `kid` (or the only key, for tokens without a `kid`).
    fn key(&self, kid: &str) -> Option<DecodingKey> {
        let keys = self.keys.load();
        let keys = keys.as_ref().as_ref()?;
        if kid.is_empty() {
            return keys.only.clone();
        }
        keys.by_id.get(kid).cloned()
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `scope` (space-separated, RFC 8693 / OAuth) or `scp` (an array, some providers).
fn has_scope(claims: &Value, scope: &str) -> bool {
    let in_text = claims.get("scope").and_then(Value::as_str).is_some_and(|s| s.split_whitespace().any(|x| x == scope));
    let in_list = claims.get("scp").is_some_and(|v| match v {
        Value::Array(items) => items.iter().any(|x| x.as_str() == Some(scope)),
        Value::String(s) => s.split_whitespace().any(|x| x == scope),
        _ => false,
    });
    in_text || in_list
}

/// Parses an algorithm name, refusing the shared-secret ones (a JWKS publishes public keys).
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    let alg: Algorithm = name.parse().map_err(|_| {
        format!("unknown algorithm `{name}`; use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA")
    })?;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(format!("`{name}` uses a shared secret, which a JWKS cannot carry; use RS256, ES256 or EdDSA"));
    }
    Ok(alg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_are_read_from_scope_or_scp() {
        assert!(has_scope(&json!({"scope": "mcp:read mcp:tools"}), "mcp:tools"));
        assert!(has_scope(&json!({"scp": ["mcp:tools"]}), "mcp:tools"));
        assert!(!has_scope(&json!({"scope": "mcp:toolsx"}), "mcp:tools"));
        assert!(!has_scope(&json!({}), "mcp:tools"));
    }

    #[test]
    fn shared_secret_algorithms_are_refused() {
        assert!(parse_algorithm("RS256").is_ok() && parse_algorithm("ES256").is_ok());
        assert!(parse_algorithm("HS256").unwrap_err().contains("shared secret"));
        assert!(parse_algorithm("none").unwrap_err().contains("unknown algorithm"));
    }
}
