//! The front door: who is calling. Runs before anything else on the MCP and admin routes.
//!
//! With no `auth` section the gateway serves anonymous callers, and only on a loopback
//! address ([`check_listen`]). With `auth.api_keys`, callers present a key as
//! `Authorization: Bearer pcs_…`; keys live in the store and are checked against an
//! in-memory key ring that follows it (a revoked key is refused within a second). With
//! `auth.jwt`, other bearer tokens are JWTs verified against the identity provider's keys
//! (and a token lacking a required scope gets 403 with a scope challenge). A refused
//! caller gets HTTP 401 with a `WWW-Authenticate` challenge naming this gateway's OAuth
//! protected-resource metadata (RFC 9728), which is served at
//! `/.well-known/oauth-protected-resource`.
//!
//! `auth` is read at start: changing it takes a restart.

use crate::config::{AuthConfig, Config};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use portcullis_core::Principal;
use portcullis_policy::{AuthError, JwtError, JwtVerifier, KeyRing, KEY_PREFIX};
use portcullis_store::{now_ms, Store, StoreError};
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a running gateway looks for key changes made by other processes.
const KEY_POLL: Duration = Duration::from_millis(250);

/// Where the protected-resource metadata is served (RFC 9728 §3).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The door's settings and state, fixed at start.
pub struct Door {
    settings: Option<AuthConfig>,
    keys: Option<(Store, Arc<KeyRing>)>,
    jwt: Option<Arc<JwtVerifier>>,
    /// Where refused callers are recorded (audit log, metrics), once the gateway runs.
    record_to: std::sync::OnceLock<Arc<crate::pipeline::Gateway>>,
}

/// Why the gateway would not start.
#[derive(Debug, thiserror::Error)]
pub enum DoorError {
    #[error("refusing to listen on {addr} without authentication: anyone who can reach it could use every upstream through the gateway. Add `auth: {{ api_keys: {{}} }}` to the config (then create keys with `portcullis keys create`), listen on a loopback address such as 127.0.0.1, or serve anonymous callers there on purpose with `auth: {{ anonymous: true }}`")]
    Unauthenticated { addr: SocketAddr },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("auth.jwt: {0}")]
    Jwt(String),
}

/// Refuses a non-loopback address when nobody has to authenticate, unless anonymous
/// access was chosen explicitly.
pub fn check_listen(config: &Config, addr: SocketAddr) -> Result<(), DoorError> {
    if addr.ip().is_loopback() || config.auth.is_some() {
        return Ok(());
    }
    Err(DoorError::Unauthenticated { addr })
}

impl Door {
    /// Opens the key store (from `store`, shared with the vault) when API keys are on.
    pub async fn open(
        config: &Config,
        config_path: Option<&Path>,
        http: &reqwest::Client,
        store: &tokio::sync::OnceCell<Store>,
    ) -> Result<Door, DoorError> {
        let keys = match config.auth.as_ref().and_then(|a| a.api_keys.as_ref()) {
            None => None,
            Some(_) => {
                let store = Store::shared(store, &config.store_location(config_path)?).await?;
                let ring = Arc::new(KeyRing::load(&store).await?);
                Some((store, ring))
            }
        };
        let jwt = match config.auth.as_ref().and_then(|a| a.jwt.as_ref().map(|j| (j, a.resource.as_deref()))) {
            None => None,
            Some((jwt, resource)) => {
                let verifier =
                    Arc::new(JwtVerifier::new(jwt.settings(resource).map_err(DoorError::Jwt)?, http.clone()));
                // Not fatal: the provider may be down for a moment; tokens are refused until
                // its keys are fetched (the refresher retries).
                if let Err(e) = verifier.refresh().await {
                    tracing::error!(error = %e, "cannot fetch the identity provider's keys yet");
                }
                Some(verifier)
            }
        };
        Ok(Door { settings: config.auth.clone(), keys, jwt, record_to: Default::default() })
    }

    /// Records the callers this door refuses in `gateway`'s audit log and metrics.
    pub fn record_to(&self, gateway: Arc<crate::pipeline::Gateway>) {
        let _ = self.record_to.set(gateway);
    }

    /// Fetches the identity provider's keys again every `auth.jwt.refresh` (every 30 s
    /// while fetching fails) until `stop`.
    pub fn follow_jwks(&self, stop: CancellationToken) {
        let (Some(verifier), Some(every)) =
            (self.jwt.clone(), self.settings.as_ref().and_then(|s| s.jwt.as_ref()).map(|j| j.refresh))
        else {
            return;
        };
        tokio::spawn(async move {
            let mut wait = every;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = match verifier.refresh().await {
                    Ok(()) => every,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot refresh the identity provider's keys; the last ones stay in force");
                        every.min(Duration::from_secs(30))
                    }
                };
            }
        });
    }

    /// Follows key changes in the store until `stop`.
    pub fn follow_keys(&self, stop: CancellationToken) {
        let Some((store, ring)) = self.keys.clone() else { return };
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEY_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                match ring.refresh(&store).await {
                    Ok(changed) => {
                        if changed {
                            tracing::info!("API keys reloaded");
                        }
                        failing = false;
                    }
                    // The last keys seen stay in force; say so once, not four times a second.
                    Err(e) if !failing => {
                        failing = true;
                        tracing::error!(error = %e, "cannot read API keys from the store; the last ones read stay in force");
                    }
                    Err(_) => {}
                }
            }
        });
    }

    /// The key store, when API keys are on.
    pub fn key_store(&self) -> Option<&Store> {
        self.keys.as_ref().map(|(store, _)| store)
    }

    /// Reloads the key ring now (after a change made through the admin API), so the change
    /// holds on this gateway at once; others see it at their next poll.
    pub async fn reload_keys(&self) {
        if let Some((store, ring)) = &self.keys {
            if let Err(e) = ring.refresh(store).await {
                tracing::warn!(error = %e, "cannot read API keys from the store");
            }
        }
    }

    /// How long a rotated key keeps working by default.
    pub fn rotation_grace(&self) -> Duration {
        self.settings.as_ref().and_then(|s| s.api_keys.clone()).unwrap_or_default().rotation_grace
    }

    /// Whether the door checks anything at all.
    pub fn is_open_to_all(&self) -> bool {
        self.settings.is_none()
    }

    /// The caller of a request, or why it is refused.
    async fn caller(&self, headers: &HeaderMap) -> Result<Principal, Refusal> {
        let Some(settings) = &self.settings else { return Ok(Principal::anonymous()) };
        let token = match bearer(headers) {
            Bearer::Missing if settings.anonymous => return Ok(Principal::anonymous()),
            Bearer::Missing => return Err(Refusal::NoCredential),
            Bearer::OtherScheme => return Err(Refusal::Invalid("use `Authorization: Bearer <key>`".into())),
            Bearer::Token(token) => token,
        };
        if !token.starts_with(KEY_PREFIX) {
            if let Some(jwt) = &self.jwt {
                return jwt.verify(token).await.map_err(|e| match e {
                    JwtError::MissingScopes(scopes) => Refusal::Scopes(scopes),
                    e => Refusal::Invalid(e.to_string()),
                });
            }
        }
        let Some((_, ring)) = &self.keys else {
            return Err(Refusal::Invalid("this gateway accepts no API keys (no `auth.api_keys`)".into()));
        };
        let verdict = match ring.authenticate(token, now_ms()) {
            // A key created since the last poll should work at once: look again (a cheap
            // version check; the keys are read only if they changed). The poller may have
            // reloaded them since the miss, so check again whatever the look finds.
            Err(AuthError::Unknown) => {
                self.reload_keys().await;
                ring.authenticate(token, now_ms())
            }
            verdict => verdict,
        };
        verdict.map_err(|e| Refusal::Invalid(e.to_string()))
    }

    /// The protected-resource metadata for a request that reached `host`.
    fn metadata(&self, headers: &HeaderMap) -> serde_json::Value {
        // `authorization_servers` only with `auth.jwt`: API keys are issued by
        // `portcullis keys`, not by an OAuth authorization server.
        let mut metadata = json!({
            "resource": self.resource(headers),
            "bearer_methods_supported": ["header"],
            "resource_name": "Portcullis MCP gateway",
        });
        if let Some(jwt) = &self.jwt {
            metadata["authorization_servers"] = json!([jwt.settings().issuer]);
            if !jwt.settings().required_scopes.is_empty() {
                metadata["scopes_supported"] = json!(jwt.settings().required_scopes);
            }
        }
        metadata
    }

    /// This gateway's MCP URL: `auth.resource`, or from the request's `Host`.
    fn resource(&self, headers: &HeaderMap) -> String {
        if let Some(resource) = self.settings.as_ref().and_then(|s| s.resource.clone()) {
            return resource;
        }
        format!("http://{}/mcp", host(headers))
    }

    fn metadata_url(&self, headers: &HeaderMap) -> String {
        match self.settings.as_ref().and_then(|s| s.resource.as_deref()).and_then(|r| url::Url::parse(r).ok()) {
            Some(resource) => {
                let path = resource.path().trim_end_matches('/');
                format!("{}{METADATA_PATH}{path}", resource.origin().ascii_serialization())
            }
            None => format!("http://{}{METADATA_PATH}/mcp", host(headers)),
        }
    }
}

/// The client for the identity provider.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

fn host(headers: &HeaderMap) -> &str {
    headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost")
}

enum Bearer<'a> {
    Missing,
    OtherScheme,
    Token(&'a str),
}

fn bearer(headers: &HeaderMap) -> Bearer<'_> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Bearer::Missing };
    let Ok(value) = value.to_str() else { return Bearer::OtherScheme };
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Bearer::Token(token.trim())
        }
        _ => Bearer::OtherScheme,
    }
}

enum Refusal {
    NoCredential,
    Invalid(String),
    /// Authenticated, but the token lacks these scopes: 403 with a scope challenge.
    Scopes(Vec<String>),
}

/// The middleware on the MCP routes: establishes the caller or answers 401.
pub async fn admit(State(door): State<Arc<Door>>, mut request: Request, next: Next) -> Response {
    let started = std::time::SystemTime::now();
    match door.caller(request.headers()).await {
        Ok(principal) => {
            request.extensions_mut().insert(Arc::new(principal));
            next.run(request).await
        }
        Err(refusal) => {
            if let Some(gateway) = door.record_to.get() {
                let (rule, why) = match &refusal {
                    Refusal::NoCredential => ("no-credential", "no credential".to_owned()),
                    Refusal::Invalid(why) => ("invalid-credential", why.clone()),
                    Refusal::Scopes(scopes) => ("insufficient-scope", format!("lacks the scopes {}", scopes.join(" "))),
                };
                let at = format!("{} {}", request.method(), request.uri().path());
                gateway.record_refusal(crate::audit::Event::at_door(&at, rule, &why, started)).await;
            }
            let metadata = door.metadata_url(request.headers());
            let mut status = StatusCode::UNAUTHORIZED;
            let (challenge, message) = match refusal {
                Refusal::NoCredential => (
                    format!("Bearer realm=\"portcullis\", resource_metadata=\"{metadata}\""),
                    "authentication required: send `Authorization: Bearer <key>` with a key from `portcullis keys create`"
                        .to_owned(),
                ),
                Refusal::Invalid(why) => (
                    format!(
                        "Bearer realm=\"portcullis\", error=\"invalid_token\", error_description=\"{}\", resource_metadata=\"{metadata}\"",
                        why.replace('"', "'")
                    ),
                    why,
                ),
                Refusal::Scopes(scopes) => {
                    status = StatusCode::FORBIDDEN;
                    let scopes = scopes.join(" ");
                    (
                        format!("Bearer realm=\"portcullis\", error=\"insufficient_scope\", scope=\"{scopes}\", resource_metadata=\"{metadata}\""),
                        format!("the token lacks the scopes {scopes}"),
                    )
                }
            };
            let error = if status == StatusCode::FORBIDDEN { "forbidden" } else { "unauthorized" };
            let mut response = (status, Json(json!({ "error": error, "message": message }))).into_response();
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
            }
            response
        }
    }
}

/// `GET /.well-known/oauth-protected-resource[/mcp]`.
pub async fn metadata(State(door): State<Arc<Door>>, headers: HeaderMap) -> Response {
    if door.is_open_to_all() {
        return (StatusCode::NOT_FOUND, "this gateway asks no credentials (no `auth` section)").into_response();
    }
    Json(door.metadata(&headers)).into_response()
}

impl std::fmt::Debug for Door {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Door").field("auth", &self.settings.is_some()).field("keys", &self.keys.is_some()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_listens_without_auth() {
        let mut config = Config::default();
        assert!(check_listen(&config, "127.0.0.1:8080".parse().unwrap()).is_ok());
        assert!(check_listen(&config, "[::1]:8080".parse().unwrap()).is_ok());
        let err = check_listen(&config, "0.0.0.0:8080".parse().unwrap()).unwrap_err().to_string();
        assert!(err.contains("0.0.0.0:8080") && err.contains("api_keys") && err.contains("anonymous: true"), "{err}");
        config.auth = Some(AuthConfig { anonymous: true, ..AuthConfig::default() });
        assert!(check_listen(&config, "0.0.0.0:8080".parse().unwrap()).is_ok());
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively_and_other_schemes_refused() {
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(matches!(bearer(&headers("Bearer abc")), Bearer::Token("abc")));
        assert!(matches!(bearer(&headers("bearer  abc ")), Bearer::Token("abc")));
        assert!(matches!(bearer(&headers("Basic dXNlcjpwYXNz")), Bearer::OtherScheme));
        assert!(matches!(bearer(&headers("Bearer ")), Bearer::OtherScheme));
        assert!(matches!(bearer(&HeaderMap::new()), Bearer::Missing));
    }
}
