//! Upstream connections that act for one caller each. A server whose `auth` exchanges the
//! caller's token (RFC 8693) gets one connection per caller, initialized with that caller's
//! own upstream token, so the upstream's sessions, permissions and audit see who is acting;
//! a shared connection could only carry one identity per session.

use crate::egress::{OAuthCredential, ResolvedOAuth};
use crate::pipeline::ACCESS_DENIED;
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
    credential: Arc<OAuthCredential>,
    last_used: Instant,
}

/// The per-caller connections of one server.
pub struct CallerPool {
    server: String,
    transport: TransportSpec,
    options: UpstreamOptions,
    client: ResolvedOAuth,
    http: reqwest::Client,
    conns: Mutex<HashMap<String, CallerConn>>,
}

impl CallerPool {
    pub fn new(
        server: &str,
        transport: TransportSpec,
        options: UpstreamOptions,
        client: ResolvedOAuth,
        http: reqwest::Client,
    ) -> CallerPool {
        CallerPool { server: server.to_owned(), transport, options, client, http, conns: Mutex::default() }
    }

    /// The caller's connection, opened on first use. Only a caller who signed in with the
    /// identity provider has a token to exchange.
    pub fn upstream_for(&self, caller: &Principal) -> Result<Arc<Upstream>, RpcError> {
        let Some(presented) = caller.presented.as_ref() else {
            return Err(RpcError::new(
                ACCESS_DENIED,
                format!(
                    "{} may not use server `{}`: it acts for each caller with their identity-provider token, and this caller did not sign in with one (API keys cannot be exchanged)",
                    caller.subject(),
                    self.server
                ),
            ));
        };
        let key = caller.subject();
        let now = Instant::now();
        let mut conns = lock(&self.conns);
        if let Some(conn) = conns.get_mut(&key) {
            conn.last_used = now;
            conn.credential.update_subject(presented);
            return Ok(conn.upstream.clone());
        }
        self.evict(&mut conns, now);
        let credential =
            Arc::new(OAuthCredential::token_exchange(self.client.clone(), self.http.clone(), presented.clone()));
        let options =
            UpstreamOptions { credential: Some(credential.clone() as Arc<dyn Credential>), ..self.options.clone() };
        let upstream = Upstream::start(&self.server, self.transport.clone(), options, self.http.clone());
        tracing::debug!(server = %self.server, caller = %key, "opened a connection acting for the caller");
        conns.insert(key, CallerConn { upstream: upstream.clone(), credential, last_used: now });
        Ok(upstream)
    }

    /// Closes idle connections, and the least recently used one when the pool is full.
    fn evict(&self, conns: &mut HashMap<String, CallerConn>, now: Instant) {
        conns.retain(|caller, conn| {
            let keep = now.duration_since(conn.last_used) < IDLE;
            if !keep {
                tracing::debug!(server = %self.server, %caller, "closing an idle caller connection");
                conn.upstream.shutdown();
            }
            keep
        });
        if conns.len() >= MAX_CALLERS {
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
