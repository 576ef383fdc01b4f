//! How the gateway proves itself to an upstream (a server's `auth`): a bearer token from
//! the vault; an access token of its own from an OAuth 2.0 client credentials grant
//! (RFC 6749 §4.4); or, per caller, a token exchanged for the caller's own (RFC 8693), so
//! the upstream sees who is acting. Tokens are cached until shortly before they expire. The
//! caller's own token is never what an upstream sees.

use futures::future::BoxFuture;
use portcullis_core::PresentedToken;
use portcullis_mcp::client::credential::Credential;
use portcullis_mcp::client::UpstreamError;
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A server's egress credential: exactly one of `bearer` and `oauth`. Credential values
/// are `secret:NAME` references to the vault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EgressAuth {
    /// `Authorization: Bearer <token>`, e.g. `bearer: secret:github_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer: Option<String>,
    /// An access token of the gateway's own, from an OAuth 2.0 client credentials grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthClientConfig>,
    /// Act for each caller: exchange the caller's token (a JWT from `auth.jwt` at the door)
    /// for one meant for this upstream (RFC 8693), one upstream connection per caller. Lists
    /// and notifications use the gateway's own token (client credentials, same client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_exchange: Option<OAuthClientConfig>,
    /// Each user's own token, from the vault (`portcullis secrets set NAME --user USER`):
    /// one upstream connection per user, so the upstream sees the user's own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_token: Option<UserTokenConfig>,
}

/// Per-user tokens held in the vault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserTokenConfig {
    /// The vault secret holding each user's token: a plain token, or the provider's token
    /// JSON (`access_token`, `refresh_token`, `expires_at` in Unix seconds).
    pub secret: String,
    /// The OAuth app at the provider: renews a user's expired token (refresh_token grant,
    /// when the token was stored with a refresh token) and, with `authorize_url`, lets users
    /// connect their own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<OAuthClientConfig>,
    /// The provider's authorization endpoint: a user without a token is sent to connect
    /// their account (OAuth authorization code with PKCE), and the token lands in the vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<String>,
}

/// An OAuth 2.0 client the gateway is registered as at an authorization server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthClientConfig {
    /// The authorization server's token endpoint.
    pub token_url: String,
    pub client_id: String,
    /// `secret:NAME`: the client secret, from the vault.
    pub client_secret: String,
    /// Scopes to ask for (sent space-separated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The `audience` parameter some providers need (Auth0, Okta custom servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The RFC 8707 `resource` indicator: the upstream the token is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// How the client authenticates at the token endpoint.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// (token_exchange) The type of the caller's token, sent as `subject_token_type`.
    #[serde(default = "access_token_type")]
    pub subject_token_type: String,
}

fn access_token_type() -> String {
    ACCESS_TOKEN_TYPE.into()
}

const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Client authentication at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret (the default every server supports).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

impl EgressAuth {
    /// The OAuth clients configured, with their field names.
    fn clients(&self) -> Vec<(&'static str, &OAuthClientConfig)> {
        let user_client = self.user_token.as_ref().and_then(|u| u.client.as_ref());
        [
            ("oauth", self.oauth.as_ref()),
            ("token_exchange", self.token_exchange.as_ref()),
            ("user_token.client", user_client),
        ]
        .into_iter()
        .filter_map(|(field, c)| c.map(|c| (field, c)))
        .collect()
    }

    /// The fields holding credentials, with their paths under `auth`.
    pub fn secret_fields(&self) -> Vec<(String, &str)> {
        let mut fields = Vec::new();
        if let Some(v) = &self.bearer {
            fields.push(("auth.bearer".into(), v.as_str()));
        }
        for (field, client) in self.clients() {
            fields.push((format!("auth.{field}.client_secret"), client.client_secret.as_str()));
        }
        fields
    }

    /// Problems with this auth of server `at` (e.g. `servers.jira`).
    pub fn problems(&self, at: &str) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let modes =
            [self.bearer.is_some(), self.oauth.is_some(), self.token_exchange.is_some(), self.user_token.is_some()];
        if modes.iter().filter(|m| **m).count() != 1 {
            problems.push((
                format!("{at}.auth"),
                "set exactly one of `bearer`, `oauth`, `token_exchange` and `user_token`".into(),
            ));
        }
        if let Some(u) = &self.user_token {
            if let Err(why) = portcullis_vault::check_name(&u.secret) {
                problems.push((format!("{at}.auth.user_token.secret"), format!("invalid secret name: {why}")));
            }
            if let Some(url) = &u.authorize_url {
                if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                    problems.push((
                        format!("{at}.auth.user_token.authorize_url"),
                        format!("`{url}` is not an http(s) URL"),
                    ));
                }
                if u.client.is_none() {
                    problems.push((
                        format!("{at}.auth.user_token.client"),
                        "connecting accounts (`authorize_url`) needs the OAuth app: token_url, client_id, client_secret".into(),
                    ));
                }
            }
        }
        for (field, value) in self.secret_fields() {
            if portcullis_vault::reference(value).is_none() {
                problems.push((
                    format!("{at}.{field}"),
                    "a credential in the config file would be readable by anyone who reads the file; store it with `portcullis secrets set NAME` and write `secret:NAME` here".into(),
                ));
            }
        }
        for (field, o) in self.clients() {
            if !url::Url::parse(&o.token_url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                problems
                    .push((format!("{at}.auth.{field}.token_url"), format!("`{}` is not an http(s) URL", o.token_url)));
            }
            if o.client_id.is_empty() {
                problems.push((format!("{at}.auth.{field}.client_id"), "must not be empty".into()));
            }
        }
        problems
    }
}

/// Per-user tokens: the vault secret that holds them, and how to renew them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUserToken {
    pub secret: String,
    pub client: Option<ResolvedOAuth>,
    pub authorize_url: Option<String>,
}

/// An OAuth client with its secret filled in from the vault.
#[derive(Clone, PartialEq, Eq)]
pub struct ResolvedOAuth {
    pub server: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    pub resource: Option<String>,
    pub client_auth: ClientAuth,
    pub subject_token_type: String,
}

impl ResolvedOAuth {
    /// The client's settings, with its secret from the vault.
    pub fn new(server: &str, config: &OAuthClientConfig, client_secret: String) -> ResolvedOAuth {
        ResolvedOAuth {
            server: server.to_owned(),
            token_url: config.token_url.clone(),
            client_id: config.client_id.clone(),
            client_secret,
            scopes: config.scopes.clone(),
            audience: config.audience.clone(),
            resource: config.resource.clone(),
            client_auth: config.client_auth,
            subject_token_type: config.subject_token_type.clone(),
        }
    }
}

impl std::fmt::Debug for ResolvedOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedOAuth")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// How long before its expiry a token is replaced: a minute, or half its life if shorter.
fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 2).min(Duration::from_secs(60))
}

/// Longest wait for the token endpoint.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(15);

/// An issued token: the header value, and when to fetch a new one (`None` when the server
/// gave no lifetime: kept until refused).
pub struct Token {
    pub value: HeaderValue,
    pub refresh_at: Option<Instant>,
}

/// One cached token shared by every request of a credential, fetched by one request while
/// the others wait for it.
#[derive(Default)]
pub struct TokenCache {
    token: Mutex<Option<Token>>,
    fetching: tokio::sync::Mutex<()>,
}

impl TokenCache {
    fn current(&self) -> Option<HeaderValue> {
        let token = portcullis_mcp::peer::lock(&self.token);
        token.as_ref().filter(|t| t.refresh_at.is_none_or(|at| Instant::now() < at)).map(|t| t.value.clone())
    }

    /// The cached value while it is fresh, else what `fetch` gets (fetched once at a time).
    pub async fn get<F>(&self, fetch: impl FnOnce() -> F) -> Result<HeaderValue, UpstreamError>
    where
        F: std::future::Future<Output = Result<Token, UpstreamError>>,
    {
        if let Some(v) = self.current() {
            return Ok(v);
        }
        let _one_fetch = self.fetching.lock().await;
        if let Some(v) = self.current() {
            return Ok(v);
        }
        let token = fetch().await?;
        let value = token.value.clone();
        *portcullis_mcp::peer::lock(&self.token) = Some(token);
        Ok(value)
    }

    /// Forgets the cached value if it is `value` (the upstream refused it); true if so.
    pub fn forget(&self, value: &HeaderValue) -> bool {
        let mut token = portcullis_mcp::peer::lock(&self.token);
        let refused = token.as_ref().is_some_and(|t| t.value == *value);
        if refused {
            *token = None;
        }
        refused
    }
}

/// Which grant gets the token.
enum Grant {
    ClientCredentials,
    /// RFC 8693, for one caller: the newest token they presented.
    TokenExchange {
        subject: Mutex<PresentedToken>,
    },
}

/// An OAuth access token as a [`Credential`]: one token at a time, shared by every request
/// that uses it, fetched by one request while the others wait.
pub struct OAuthCredential {
    client: ResolvedOAuth,
    http: reqwest::Client,
    grant: Grant,
    cache: TokenCache,
}

impl std::fmt::Debug for OAuthCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthCredential").field("client", &self.client).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl OAuthCredential {
    /// The gateway's own token (client credentials grant).
    pub fn client_credentials(client: ResolvedOAuth, http: reqwest::Client) -> OAuthCredential {
        Self::with_grant(client, http, Grant::ClientCredentials)
    }

    /// A token for one caller, exchanged for the one they presented.
    pub fn token_exchange(client: ResolvedOAuth, http: reqwest::Client, subject: PresentedToken) -> OAuthCredential {
        Self::with_grant(client, http, Grant::TokenExchange { subject: Mutex::new(subject) })
    }

    fn with_grant(client: ResolvedOAuth, http: reqwest::Client, grant: Grant) -> OAuthCredential {
        OAuthCredential { client, http, grant, cache: TokenCache::default() }
    }

    /// Remembers the caller's newest token for the next exchange (the current upstream
    /// token stays in use until it is due for replacement).
    pub fn update_subject(&self, presented: &PresentedToken) {
        if let Grant::TokenExchange { subject } = &self.grant {
            let mut subject = portcullis_mcp::peer::lock(subject);
            if *subject != *presented {
                *subject = presented.clone();
            }
        }
    }

    async fn fetch(&self) -> Result<Token, UpstreamError> {
        let (params, field) = match &self.grant {
            Grant::ClientCredentials => (vec![("grant_type", "client_credentials".to_owned())], "auth.oauth"),
            Grant::TokenExchange { subject } => (
                vec![
                    ("grant_type", EXCHANGE_GRANT.to_owned()),
                    ("subject_token", portcullis_mcp::peer::lock(subject).expose().to_owned()),
                    ("subject_token_type", self.client.subject_token_type.clone()),
                    ("requested_token_type", ACCESS_TOKEN_TYPE.to_owned()),
                ],
                "auth.token_exchange",
            ),
        };
        let issued = request_token(&self.http, &self.client, params, field).await?;
        Ok(Token { value: issued.value, refresh_at: issued.refresh_at })
    }
}

/// What a token endpoint issued.
pub struct Issued {
    /// `Bearer <access token>`, marked sensitive.
    pub value: HeaderValue,
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// When to replace it (shortly before it expires); `None` without a lifetime.
    pub refresh_at: Option<Instant>,
    /// When it expires, in Unix seconds, if the endpoint said.
    pub expires_at: Option<u64>,
}

/// One token request (`params` name the grant) to the client's token endpoint, with the
/// client's authentication and scope, audience and resource. Errors name the provider's
/// error code and `field` of the config to check, never a secret.
pub async fn request_token(
    http: &reqwest::Client,
    c: &ResolvedOAuth,
    params: Vec<(&str, String)>,
    field: &str,
) -> Result<Issued, UpstreamError> {
    let fail =
        |why: String| UpstreamError::Unavailable(format!("{}: no access token from {}: {why}", c.server, c.token_url));
    let mut request = http.post(&c.token_url).header(ACCEPT, "application/json").timeout(TOKEN_TIMEOUT);
    // The serializer is not `Send`: the body is finished before anything is awaited.
    let body = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &params {
            form.append_pair(k, v);
        }
        if !c.scopes.is_empty() {
            form.append_pair("scope", &c.scopes.join(" "));
        }
        if let Some(a) = &c.audience {
            form.append_pair("audience", a);
        }
        if let Some(r) = &c.resource {
            form.append_pair("resource", r);
        }
        match c.client_auth {
            ClientAuth::ClientSecretBasic => {
                let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                request = request.basic_auth(encode(&c.client_id), Some(encode(&c.client_secret)));
            }
            ClientAuth::ClientSecretPost => {
                form.append_pair("client_id", &c.client_id);
                form.append_pair("client_secret", &c.client_secret);
            }
        }
        form.finish()
    };
    let started = Instant::now();
    let response = request
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| fail(format!("the token endpoint is unreachable ({})", e.without_url())))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| fail(format!("reading the answer: {}", e.without_url())))?;
    if !status.is_success() {
        let why = match serde_json::from_slice::<TokenError>(&body) {
            Ok(e) => {
                let description: String = e.error_description.unwrap_or_default().chars().take(200).collect();
                format!("HTTP {status}, `{}` {description}", e.error.chars().take(64).collect::<String>())
            }
            Err(_) => format!("HTTP {status}"),
        };
        return Err(fail(format!("{why}; check {field} (client_id, the client secret in the vault, scopes)")));
    }
    let token: TokenResponse =
        serde_json::from_slice(&body).map_err(|_| fail("the answer is not an OAuth token response".into()))?;
    if let Some(kind) = token.token_type.as_deref().filter(|t| !t.eq_ignore_ascii_case("bearer")) {
        return Err(fail(format!("token type `{kind}` is not supported (only Bearer)")));
    }
    let value = bearer(&token.access_token)
        .ok_or_else(|| fail("the access token is empty or not valid in an HTTP header".into()))?;
    let lifetime = match token.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .map(Duration::from_secs);
    tracing::debug!(server = %c.server, lifetime = ?lifetime, "fetched an access token for the upstream");
    Ok(Issued {
        value,
        access_token: token.access_token,
        refresh_token: token.refresh_token,
        refresh_at: lifetime.and_then(|l| refresh_due(started, l)),
        expires_at: lifetime.map(|l| unix_now().saturating_add(l.as_secs())),
    })
}

/// `Bearer <token>` as a sensitive header value, if the token is usable in one.
pub fn bearer(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok().filter(|_| !token.is_empty())?;
    value.set_sensitive(true);
    Some(value)
}

/// When a token obtained at `start` and living `lifetime` is replaced; an absurd lifetime
/// overflows the clock and counts as none.
pub fn refresh_due(start: Instant, lifetime: Duration) -> Option<Instant> {
    start.checked_add(lifetime - refresh_margin(lifetime))
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Credential for OAuthCredential {
    fn authorization(&self) -> BoxFuture<'_, Result<HeaderValue, UpstreamError>> {
        Box::pin(self.cache.get(|| self.fetch()))
    }

    fn refused(&self, value: &HeaderValue) {
        if self.cache.forget(value) {
            tracing::info!(server = %self.client.server, "the upstream refused the access token; fetching a new one");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_replaced_shortly_before_they_expire() {
        assert_eq!(refresh_margin(Duration::from_secs(3600)), Duration::from_secs(60));
        assert_eq!(refresh_margin(Duration::from_secs(10)), Duration::from_secs(5));
    }

    #[test]
    fn credentials_in_auth_must_come_from_the_vault() {
        let plain = EgressAuth { bearer: Some("ghp_plain".into()), ..EgressAuth::default() };
        let problems = plain.problems("servers.gh");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "servers.gh.auth.bearer");
        assert!(!problems[0].1.contains("ghp_plain"));
        assert!(EgressAuth { bearer: Some("secret:gh".into()), ..EgressAuth::default() }
            .problems("servers.gh")
            .is_empty());
        assert!(EgressAuth::default().problems("servers.gh")[0].1.starts_with("set exactly one of"));
    }
}
