//! Upstream credentials: the vault's secrets, resolved into each upstream's transport.
//!
//! A config names secrets (`env: { GITHUB_TOKEN: secret:github }`); the values stay sealed in
//! the store. The gateway opens them at start and whenever the vault changes (another process
//! ran `portcullis secrets set` or `rotate`): the federation is rebuilt, and only the
//! upstreams whose resolved transport changed reconnect, so a rotated secret reaches the
//! next connection without a restart.

use crate::config::{Config, ServerConfig};
use crate::egress::{OAuthClientConfig, ResolvedOAuth, ResolvedUserToken};
use arc_swap::ArcSwap;
use portcullis_mcp::client::spec::TransportSpec;
use portcullis_store::Store;
use portcullis_vault::{reference, Secrets, Vault, VaultError, VaultKey};
use secrecy::ExposeSecret;
use std::path::Path;
use std::sync::Arc;

/// The vault as a running gateway sees it: the secrets last read, and where to read again.
pub struct Credentials {
    vault: Option<Vault>,
    current: ArcSwap<Secrets>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("secrets", &self.current.load()).finish()
    }
}

impl Credentials {
    /// No vault: references resolve to nothing (their upstreams stay down, saying why).
    pub fn none() -> Credentials {
        Credentials { vault: None, current: ArcSwap::from_pointee(Secrets::default()) }
    }

    /// Opens the vault when a key is available. A config that needs the vault (secrets,
    /// users' own tokens) needs one: without it the gateway does not start.
    pub async fn open(
        config: &Config,
        config_path: Option<&Path>,
        store: &tokio::sync::OnceCell<Store>,
    ) -> Result<Credentials, VaultError> {
        let refs = config.secret_refs();
        let key = match VaultKey::load(&config.vault_key_source(config_path)) {
            Ok(key) => key,
            Err(VaultError::NoKey { .. }) if !config.uses_vault() => return Ok(Credentials::none()),
            Err(e) => return Err(e),
        };
        let store = Store::shared(store, &config.store_location(config_path)?).await?;
        let vault = Vault::open(store, &key).await?;
        // Version -1 is never the store's: the first refresh reads.
        let credentials = Credentials { vault: Some(vault), current: ArcSwap::from_pointee(Secrets::empty(-1)) };
        credentials.refresh().await?;
        let secrets = credentials.secrets();
        for r in refs.iter().filter(|r| secrets.get(&r.name).is_none()) {
            tracing::warn!(
                field = %r.path,
                secret = %r.name,
                "the secret is not in the vault; its server stays down until `portcullis secrets set {}`",
                r.name
            );
        }
        Ok(credentials)
    }

    /// The secrets last read.
    pub fn secrets(&self) -> Arc<Secrets> {
        self.current.load_full()
    }

    /// Reads the secrets again if the vault changed; true when it did.
    pub async fn refresh(&self) -> Result<bool, VaultError> {
        let Some(vault) = &self.vault else { return Ok(false) };
        if vault.version().await? == self.current.load().version() {
            return Ok(false);
        }
        let (secrets, damaged) = vault.snapshot().await?;
        for e in damaged {
            tracing::error!(error = %e, "a vault secret cannot be opened");
        }
        self.current.store(Arc::new(secrets));
        Ok(true)
    }

    /// Stores a value (a renewed user token) and reads the vault again at once, so the
    /// next request sees it.
    pub async fn store(&self, name: &str, value: &secrecy::SecretString) -> Result<(), VaultError> {
        let Some(vault) = &self.vault else {
            return Err(VaultError::NoKey { env: "the vault key variable".into() });
        };
        vault.set(name, value).await?;
        self.refresh().await?;
        Ok(())
    }

    /// The vault, when the gateway has its key.
    pub fn vault(&self) -> Option<&Vault> {
        self.vault.as_ref()
    }

    pub fn has_vault(&self) -> bool {
        self.vault.is_some()
    }
}

/// An upstream's connection settings with the vault's values filled in. Compared on
/// rebuilds: an upstream whose resolved settings did not change keeps its connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub transport: TransportSpec,
    /// The OAuth client the gateway gets its own access tokens as, if any.
    pub oauth: Option<ResolvedOAuth>,
    /// The OAuth client that exchanges each caller's token (RFC 8693), if any.
    pub exchange: Option<ResolvedOAuth>,
    /// Each user's own token from the vault, if so configured.
    pub user_token: Option<ResolvedUserToken>,
}

/// The server's transport and `auth` with every `secret:NAME` value replaced by the
/// secret's value, or why that cannot be done.
pub fn resolve(
    server: &str,
    config: &ServerConfig,
    transport: &TransportSpec,
    secrets: &Secrets,
) -> Result<Resolved, String> {
    let value_of = |field: &str, value: &str| -> Result<Option<String>, String> {
        let Some(name) = reference(value) else { return Ok(None) };
        match secrets.get(name) {
            Some(secret) => Ok(Some(secret.expose_secret().to_owned())),
            None => Err(format!(
                "servers.{server}.{field} refers to secret `{name}`, which is not in the vault; add it with `portcullis secrets set {name}`"
            )),
        }
    };
    let fill = |field: &str, values: &mut indexmap::IndexMap<String, String>| -> Result<(), String> {
        for (key, value) in values.iter_mut() {
            if let Some(secret) = value_of(&format!("{field}.{key}"), value)? {
                *value = secret;
            }
        }
        Ok(())
    };
    let mut transport = transport.clone();
    match &mut transport {
        TransportSpec::Stdio(s) => fill("stdio.env", &mut s.env)?,
        TransportSpec::Http(h) => fill("http.headers", &mut h.headers)?,
        TransportSpec::Sse(h) => fill("sse.headers", &mut h.headers)?,
    }
    let mut oauth = None;
    if let Some(token) = config.auth.as_ref().and_then(|a| a.bearer.as_ref()) {
        let token = value_of("auth.bearer", token)?.unwrap_or_else(|| token.clone());
        if let TransportSpec::Http(h) | TransportSpec::Sse(h) = &mut transport {
            h.headers.insert("Authorization".into(), format!("Bearer {token}"));
        }
    }
    let auth = config.auth.as_ref();
    let client = |field: &str, o: &OAuthClientConfig| -> Result<ResolvedOAuth, String> {
        let secret = value_of(&format!("auth.{field}.client_secret"), &o.client_secret)?;
        Ok(ResolvedOAuth::new(server, o, secret.unwrap_or_else(|| o.client_secret.clone())))
    };
    if let Some(o) = auth.and_then(|a| a.oauth.as_ref()) {
        oauth = Some(client("oauth", o)?);
    }
    let mut exchange = None;
    if let Some(o) = auth.and_then(|a| a.token_exchange.as_ref()) {
        let resolved = client("token_exchange", o)?;
        // Lists and notifications are nobody's calls: they use the gateway's own token.
        oauth = Some(resolved.clone());
        exchange = Some(resolved);
    }
    let mut user_token = None;
    if let Some(u) = auth.and_then(|a| a.user_token.as_ref()) {
        let user_client = u.client.as_ref().map(|o| client("user_token.client", o)).transpose()?;
        user_token = Some(ResolvedUserToken {
            secret: u.secret.clone(),
            client: user_client,
            authorize_url: u.authorize_url.clone(),
        });
    }
    Ok(Resolved { transport, oauth, exchange, user_token })
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use portcullis_mcp::client::spec::{HttpSpec, StdioSpec};

    #[test]
    fn references_resolve_and_missing_ones_are_named() {
        let mut secrets = Secrets::empty(1);
        secrets.insert("gh".into(), "ghp_value".into());
        let stdio = TransportSpec::Stdio(StdioSpec {
            command: "srv".into(),
            args: vec![],
            env: IndexMap::from([("TOKEN".into(), "secret:gh".into()), ("MODE".into(), "plain".into())]),
            cwd: None,
        });
        let config = |auth: &str| -> ServerConfig {
            serde_yaml_ng::from_str(&format!("{{ http: {{ url: 'http://x/mcp' }}, {auth} }}")).unwrap()
        };
        let plain = config("enabled: true");
        let TransportSpec::Stdio(s) = resolve("fs", &plain, &stdio, &secrets).unwrap().transport else { panic!() };
        assert_eq!((s.env["TOKEN"].as_str(), s.env["MODE"].as_str()), ("ghp_value", "plain"));

        let http = TransportSpec::Http(HttpSpec {
            url: "http://x/mcp".into(),
            headers: IndexMap::from([("X-Key".into(), "secret:absent".into())]),
        });
        let why = resolve("api", &plain, &http, &secrets).unwrap_err();
        assert!(
            why.contains("servers.api.http.headers.X-Key") && why.contains("portcullis secrets set absent"),
            "{why}"
        );

        let bare = TransportSpec::Http(HttpSpec { url: "http://x/mcp".into(), headers: IndexMap::new() });
        let bearer = resolve("gh", &config("auth: { bearer: 'secret:gh' }"), &bare, &secrets).unwrap();
        let TransportSpec::Http(h) = bearer.transport else { panic!() };
        assert_eq!(h.headers["Authorization"], "Bearer ghp_value");
        let oauth =
            config("auth: { oauth: { token_url: 'http://idp/token', client_id: gw, client_secret: 'secret:gh' } }");
        let resolved = resolve("jira", &oauth, &bare, &secrets).unwrap();
        assert_eq!(resolved.oauth.as_ref().map(|o| o.client_secret.as_str()), Some("ghp_value"));
        assert!(!format!("{resolved:?}").contains("ghp_value"), "debug output hides the client secret");
    }
}
