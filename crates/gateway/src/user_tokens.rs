//! Per-user upstream tokens held in the vault (`auth.user_token`): each user's own token for
//! a server such as GitHub, stored with `portcullis secrets set NAME --user USER`, sent on
//! that user's own upstream connection, and renewed with the provider's refresh_token grant
//! when it expires (the renewed token goes back into the vault).

use crate::credentials::Credentials;
use crate::egress::{bearer, refresh_due, request_token, unix_now, ResolvedUserToken, Token, TokenCache};
use futures::future::BoxFuture;
use portcullis_mcp::client::credential::Credential;
use portcullis_mcp::client::UpstreamError;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A stored token is renewed this long before it expires.
const RENEW_BEFORE: u64 = 60;

/// A user's token as stored: the provider's JSON, or a plain token (no expiry, no renewal).
#[derive(Serialize, Deserialize)]
struct StoredToken {
    access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
}

impl StoredToken {
    fn parse(value: &str) -> StoredToken {
        let json = value.trim_start().starts_with('{').then(|| serde_json::from_str(value).ok()).flatten();
        json.unwrap_or_else(|| StoredToken {
            access_token: value.trim().to_owned(),
            refresh_token: None,
            expires_at: None,
        })
    }
}

/// One user's token for one server.
pub struct UserTokenCredential {
    server: String,
    user: String,
    /// The vault name of the user's token (`NAME@USER`).
    stored_name: String,
    settings: ResolvedUserToken,
    credentials: Arc<Credentials>,
    http: reqwest::Client,
    cache: TokenCache,
    /// The upstream refused the last token: renew it even if it is not due.
    refused: AtomicBool,
}

impl std::fmt::Debug for UserTokenCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserTokenCredential")
            .field("server", &self.server)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl UserTokenCredential {
    pub fn new(
        server: &str,
        user: &str,
        settings: ResolvedUserToken,
        credentials: Arc<Credentials>,
        http: reqwest::Client,
    ) -> UserTokenCredential {
        UserTokenCredential {
            server: server.to_owned(),
            user: user.to_owned(),
            stored_name: portcullis_vault::user_secret(&settings.secret, user),
            settings,
            credentials,
            http,
            cache: TokenCache::default(),
            refused: AtomicBool::new(false),
        }
    }

    fn fail(&self, why: String) -> UpstreamError {
        UpstreamError::Unavailable(format!("{}: the token of user `{}`: {why}", self.server, self.user))
    }

    /// The user's token from the vault, renewed first when it is due (or was refused).
    async fn fetch(&self) -> Result<Token, UpstreamError> {
        let secrets = self.credentials.secrets();
        let stored = secrets.get(&self.stored_name).ok_or_else(|| {
            self.fail(format!(
                "not in the vault; store it with `portcullis secrets set {} --user {}`",
                self.settings.secret, self.user
            ))
        })?;
        let mut token = StoredToken::parse(stored.expose_secret());
        let now = unix_now();
        let expired = token.expires_at.is_some_and(|at| at <= now.saturating_add(RENEW_BEFORE));
        let refused = self.refused.swap(false, Ordering::AcqRel);
        if expired || refused {
            match (&token.refresh_token, &self.settings.client) {
                (Some(refresh_token), Some(client)) => {
                    let params =
                        vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", refresh_token.clone())];
                    let issued = request_token(&self.http, client, params, "auth.user_token.client").await?;
                    token = StoredToken {
                        access_token: issued.access_token,
                        // Providers that do not rotate refresh tokens send none back.
                        refresh_token: issued.refresh_token.or(token.refresh_token),
                        expires_at: issued.expires_at,
                    };
                    let json = serde_json::to_string(&token).map_err(|e| self.fail(format!("encoding it: {e}")))?;
                    self.credentials
                        .store(&self.stored_name, &SecretString::from(json))
                        .await
                        .map_err(|e| self.fail(format!("storing the renewed token: {e}")))?;
                    tracing::info!(server = %self.server, user = %self.user, "renewed the user's upstream token");
                }
                _ if expired => {
                    return Err(self.fail(format!(
                        "expired, and it cannot be renewed (no refresh token, or no `auth.user_token.client`); store a new one with `portcullis secrets set {} --user {}`",
                        self.settings.secret, self.user
                    )));
                }
                // Refused but not known to be expired: try it once more as stored.
                _ => {}
            }
        }
        let value =
            bearer(&token.access_token).ok_or_else(|| self.fail("empty or not valid in an HTTP header".into()))?;
        let refresh_at = token.expires_at.and_then(|at| {
            let left = Duration::from_secs(at.saturating_sub(unix_now()));
            refresh_due(Instant::now(), left)
        });
        Ok(Token { value, refresh_at })
    }
}

impl Credential for UserTokenCredential {
    fn authorization(&self) -> BoxFuture<'_, Result<HeaderValue, UpstreamError>> {
        Box::pin(self.cache.get(|| self.fetch()))
    }

    fn refused(&self, value: &HeaderValue) {
        if self.cache.forget(value) {
            self.refused.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_tokens_are_json_or_plain() {
        let t = StoredToken::parse(r#"{"access_token":"a","refresh_token":"r","expires_at":5}"#);
        assert_eq!((t.access_token.as_str(), t.refresh_token.as_deref(), t.expires_at), ("a", Some("r"), Some(5)));
        let t = StoredToken::parse("ghp_plain\n");
        assert_eq!((t.access_token.as_str(), t.refresh_token, t.expires_at), ("ghp_plain", None, None));
    }
}
