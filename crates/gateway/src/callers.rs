//! Upstream connections that act for one caller each. A server whose `auth` exchanges the
//! caller's token (RFC 8693) or uses each user's own token from the vault gets one
//! connection per caller, initialized with that caller's upstream token, so the upstream's
//! sessions, permissions and audit see who is acting; a shared connection could only carry
//! one identity per session.

use crate::connect::Connector;
use crate::credentials::Credentials;
use crate::egress::{OAuthCredential, ResolvedOAuth, ResolvedUserToken};
use crate::pipeline::ACCESS_DENIED;
use crate::user_tokens::UserTokenCredential;
use portcullis_core::Principal;
use portcullis_mcp::client::credential::Credential;
use portcullis_mcp::client::spec::TransportSpec;
use portcullis_mcp::client::{Upstream, UpstreamOptions};
use portcullis_mcp::jsonrpc::RpcError;
use portcullis_mcp::peer::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A caller's connection is closed after this long without a call.
const IDLE: Duration = Duration::from_secs(15 * 60);
/// At most this many callers hold a connection to one server; the least recently used goes.
const MAX_CALLERS: usize = 1000;

struct CallerConn {
    upstream: Arc<Upstream>,
    /// The exchange credential, told each newer token the caller presents.
    exchange: Option<Arc<OAuthCredential>>,
    last_used: Instant,
}

/// Whose token a caller's connection carries.
pub enum Acting {
    /// The caller's identity-provider token, exchanged (RFC 8693).
    Exchange(ResolvedOAuth),
    /// The user's own token from the vault.
    UserToken(ResolvedUserToken),
}

/// How to make a caller's credential once their connection is opened.
type MakeCredential = Box<dyn FnOnce() -> (Arc<dyn Credential>, Option<Arc<OAuthCredential>>)>;

/// The per-caller connections of one server.
pub struct CallerPool {
    server: String,
    transport: TransportSpec,
    options: UpstreamOptions,
    acting: Acting,
    credentials: Arc<Credentials>,
    http: reqwest::Client,
    /// Sends users without a token to connect their account, when the server allows it.
    connector: Option<Arc<Connector>>,
    conns: Mutex<HashMap<String, CallerConn>>,
    idle: Duration,
    max_callers: usize,
}

impl CallerPool {
    pub fn new(
        server: &str,
        transport: TransportSpec,
        options: UpstreamOptions,
        acting: Acting,
        credentials: Arc<Credentials>,
        http: reqwest::Client,
    ) -> CallerPool {
        CallerPool {
            server: server.to_owned(),
            transport,
            options,
            acting,
            credentials,
            http,
            connector: None,
            conns: Mutex::default(),
            idle: IDLE,
            max_callers: MAX_CALLERS,
        }
    }

    /// Lets users without a token connect their account through `connector` (HTTP door).
    pub fn with_connector(self, connector: Option<Arc<Connector>>) -> CallerPool {
        CallerPool { connector, ..self }
    }

    /// True when only callers' connections exist: no shared identity lists the tools.
    pub fn per_user_only(&self) -> bool {
        matches!(self.acting, Acting::UserToken(_))
    }

    fn refuse(&self, caller: &Principal, why: &str) -> RpcError {
        RpcError::new(ACCESS_DENIED, format!("{} may not use server `{}`: {why}", caller.subject(), self.server))
    }

    /// The caller's connection, opened on first use, if the caller has an upstream identity:
    /// an identity-provider token to exchange, or their own token in the vault.
    pub fn upstream_for(&self, caller: &Principal) -> Result<Arc<Upstream>, RpcError> {
        let (key, make): (String, MakeCredential) = match &self.acting {
            Acting::Exchange(client) => {
                let Some(presented) = caller.presented.clone() else {
                    return Err(self.refuse(caller, "it acts for each caller with their identity-provider token, and this caller did not sign in with one (API keys cannot be exchanged)"));
                };
                let key = caller.subject();
                let touch = |c: &CallerConn| {
                    if let Some(exchange) = &c.exchange {
                        exchange.update_subject(&presented);
                    }
                };
                if let Some(upstream) = self.reuse(&key, touch) {
                    return Ok(upstream);
                }
                let (client, http) = (client.clone(), self.http.clone());
                let make: MakeCredential = Box::new(move || {
                    let exchange = Arc::new(OAuthCredential::token_exchange(client, http, presented));
                    (exchange.clone() as Arc<dyn Credential>, Some(exchange))
                });
                (key, make)
            }
            Acting::UserToken(settings) => {
                let Some(user) = caller.user.clone() else {
                    return Err(self.refuse(caller, "it uses each user's own token, and this caller is not a user"));
                };
                let stored = portcullis_vault::user_secret(&settings.secret, &user);
                if self.credentials.secrets().get(&stored).is_none() {
                    let connectable = settings.authorize_url.is_some() && settings.client.is_some();
                    if let Some(connector) = self.connector.as_ref().filter(|_| connectable) {
                        return Err(connector.elicitation(&self.server, &user, &caller.subject()));
                    }
                    let how = format!(
                        "it uses each user's own token, and there is none for `{user}`; an admin stores it with `portcullis secrets set {} --user {user}`",
                        settings.secret
                    );
                    return Err(self.refuse(caller, &how));
                }
                if let Some(upstream) = self.reuse(&stored, |_| {}) {
                    return Ok(upstream);
                }
                let (server, settings, credentials, http) =
                    (self.server.clone(), settings.clone(), self.credentials.clone(), self.http.clone());
                let make: MakeCredential = Box::new(move || {
                    let credential = UserTokenCredential::new(&server, &user, settings, credentials, http);
                    (Arc::new(credential) as Arc<dyn Credential>, None)
                });
                (stored, make)
            }
        };
        let now = Instant::now();
        let mut conns = lock(&self.conns);
        if let Some(conn) = conns.get_mut(&key) {
            // Opened by a concurrent first call.
            conn.last_used = now;
            return Ok(conn.upstream.clone());
        }
        self.evict(&mut conns, now);
        let (credential, exchange) = make();
        let options = UpstreamOptions { credential: Some(credential), ..self.options.clone() };
        let upstream = Upstream::start(&self.server, self.transport.clone(), options, self.http.clone());
        tracing::debug!(server = %self.server, caller = %caller.subject(), "opened a connection acting for the caller");
        conns.insert(key, CallerConn { upstream: upstream.clone(), exchange, last_used: now });
        Ok(upstream)
    }

    /// The caller's open connection, if any, marked used.
    fn reuse(&self, key: &str, touch: impl FnOnce(&CallerConn)) -> Option<Arc<Upstream>> {
        let mut conns = lock(&self.conns);
        let conn = conns.get_mut(key)?;
        conn.last_used = Instant::now();
        touch(conn);
        Some(conn.upstream.clone())
    }

    /// Closes idle connections, and the least recently used one when the pool is full.
    fn evict(&self, conns: &mut HashMap<String, CallerConn>, now: Instant) {
        conns.retain(|caller, conn| {
            let keep = now.duration_since(conn.last_used) < self.idle;
            if !keep {
                tracing::debug!(server = %self.server, %caller, "closing an idle caller connection");
                conn.upstream.shutdown();
            }
            keep
        });
        if conns.len() >= self.max_callers {
            let oldest = conns.iter().min_by_key(|(_, c)| c.last_used).map(|(k, _)| k.clone());
            if let Some(conn) = oldest.and_then(|k| conns.remove(&k)) {
                conn.upstream.shutdown();
            }
        }
    }

    /// How many callers hold a connection.
    pub fn len(&self) -> usize {
        lock(&self.conns).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes every caller's connection (calls in flight finish first).
    pub fn shutdown(&self) {
        for (_, conn) in lock(&self.conns).drain() {
            conn.upstream.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::PresentedToken;
    use portcullis_mcp::client::spec::HttpSpec;

    fn caller(user: &str) -> Principal {
        Principal { user: Some(user.into()), presented: Some(PresentedToken::new("jwt")), ..Principal::default() }
    }

    #[tokio::test]
    async fn idle_and_least_recently_used_connections_are_closed() {
        let client: ResolvedOAuth = ResolvedOAuth::new(
            "s",
            &serde_json::from_value(serde_json::json!({
                "token_url": "http://127.0.0.1:9/token", "client_id": "c", "client_secret": "secret:x"
            }))
            .unwrap(),
            "x".into(),
        );
        let transport =
            TransportSpec::Http(HttpSpec { url: "http://127.0.0.1:9/mcp".into(), headers: Default::default() });
        let pool = CallerPool {
            idle: Duration::from_millis(200),
            max_callers: 2,
            ..CallerPool::new(
                "s",
                transport,
                UpstreamOptions::default(),
                Acting::Exchange(client),
                Arc::new(Credentials::none()),
                reqwest::Client::new(),
            )
        };
        let a = pool.upstream_for(&caller("a")).unwrap();
        assert!(Arc::ptr_eq(&a, &pool.upstream_for(&caller("a")).unwrap()), "a caller keeps their connection");
        pool.upstream_for(&caller("b")).unwrap();
        pool.upstream_for(&caller("c")).unwrap();
        assert_eq!(pool.len(), 2, "the pool is full: the least recently used (a) went");
        assert!(!Arc::ptr_eq(&a, &pool.upstream_for(&caller("a")).unwrap()), "a gets a new connection");
        tokio::time::sleep(Duration::from_millis(250)).await;
        pool.upstream_for(&caller("d")).unwrap();
        assert_eq!(pool.len(), 1, "idle connections were closed");
        let anonymous = Principal::default();
        let refused = pool.upstream_for(&anonymous).unwrap_err();
        assert!(refused.message.contains("API keys cannot be exchanged"), "{}", refused.message);
        pool.shutdown();
        assert!(pool.is_empty());
    }
}
