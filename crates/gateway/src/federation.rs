//! The federated view of every upstream: which server owns a name or URI, and the
//! merged, prefixed lists clients see. Rebuilt on each config (re)load; upstream
//! connections and their cached lists carry over when a server's config is unchanged.

use crate::callers::{Acting, CallerPool};
use crate::config::{Config, ServerConfig, VirtualServerConfig};
use crate::connect::Connector;
use crate::credentials::{resolve, Credentials, Resolved};
use crate::egress::OAuthCredential;
use crate::limits::LimitPolicy;
use crate::pins::definition::{Definition, PinKind};
use crate::pins::{PinPolicy, Pins, Withheld};
use globset::{Glob, GlobSet, GlobSetBuilder};
use indexmap::IndexMap;
use portcullis_core::Principal;
use portcullis_guard::{Guard, GuardConfig};
use portcullis_mcp::client::credential::Credential;
use portcullis_mcp::client::{ListKind, Upstream, UpstreamError, UpstreamEvent, UpstreamOptions};
use portcullis_mcp::federation::{prefixed_name, prefixed_uri, split_name, split_uri};
use portcullis_mcp::jsonrpc::{to_raw, RpcError};
use portcullis_mcp::object::RawObject;
use portcullis_mcp::peer::lock;
use portcullis_mcp::server::Streams;
use portcullis_policy::Access;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A list an upstream serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum List {
    Tools,
    Prompts,
    Resources,
    Templates,
}

impl List {
    pub fn method(self) -> &'static str {
        match self {
            List::Tools => "tools/list",
            List::Prompts => "prompts/list",
            List::Resources => "resources/list",
            List::Templates => "resources/templates/list",
        }
    }

    /// The key of the array in the list result.
    pub fn field(self) -> &'static str {
        match self {
            List::Tools => "tools",
            List::Prompts => "prompts",
            List::Resources => "resources",
            List::Templates => "resourceTemplates",
        }
    }

    /// The capability an upstream must declare to be asked for this list.
    fn capability(self) -> &'static str {
        match self {
            List::Tools => "tools",
            List::Prompts => "prompts",
            List::Resources | List::Templates => "resources",
        }
    }

    fn of(kind: ListKind) -> &'static [List] {
        match kind {
            ListKind::Tools => &[List::Tools],
            ListKind::Prompts => &[List::Prompts],
            ListKind::Resources => &[List::Resources, List::Templates],
        }
    }
}

/// An upstream's list as fetched, with the pinned name and hash of each item (for the
/// pinned kinds: tools, prompts, templates).
#[derive(Default)]
pub struct Listing {
    pub items: Vec<RawObject>,
    pins: Vec<Option<(String, String)>>,
    /// Unique per fetch: what was derived from a set of lists is recognised by these.
    pub serial: u64,
}

/// The serial number of the next fetched list.
static LISTINGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Upper bound on pages fetched from one upstream for one list (a runaway cursor guard).
const MAX_UPSTREAM_PAGES: usize = 1000;

/// One upstream as the federation sees it.
pub struct Member {
    pub name: String,
    pub prefix: String,
    pub config: ServerConfig,
    /// The transport and egress credential with their secrets filled in, or why they
    /// could not be.
    resolved: Result<Resolved, String>,
    /// The shared connection: lists, notifications, and calls of servers that do not act
    /// for each caller.
    pub upstream: Arc<Upstream>,
    /// One connection per caller, for servers that exchange the caller's token.
    callers: Option<CallerPool>,
    /// `labels` of the config, compiled: upstream name or URI glob, and its labels.
    labels: Vec<(globset::GlobMatcher, Vec<String>)>,
    cache: Mutex<HashMap<List, Arc<Listing>>>,
    /// Rug-pull detection: the pins, this server's settings (updated on reload), and the
    /// hash of the identity it reported on its current connection.
    pins: Arc<Pins>,
    pinning: Mutex<PinPolicy>,
    identity: Mutex<Option<String>>,
    /// Bumped on every change notice, so a fetch that overlapped one is not cached.
    generation: std::sync::atomic::AtomicU64,
    /// Upstream resource URI -> sessions subscribed to it. The shared upstream session is
    /// subscribed once, and again after a reconnect.
    watchers: Mutex<HashMap<String, usize>>,
    /// Fails calls fast while the upstream keeps failing.
    pub breaker: crate::breaker::Breaker,
}

impl Member {
    /// The upstream's full list (all pages), from cache when it has not changed.
    ///
    /// A server that acts only for each user has no shared connection: its list comes
    /// through the caller's own, and is shared with every caller (as with any server).
    pub async fn list(&self, list: List, caller: &Principal) -> Result<Arc<Listing>, RpcError> {
        if let Some(hit) = lock(&self.cache).get(&list) {
            return Ok(hit.clone());
        }
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        let upstream = match &self.callers {
            Some(pool) if pool.per_user_only() => pool.upstream_for(caller)?,
            _ => self.upstream.clone(),
        };
        let declared =
            upstream.server_info().map(|i| i.capabilities.get(list.capability()).is_some_and(|c| !c.is_null()));
        if declared == Some(false) {
            return Ok(Arc::default());
        }
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_UPSTREAM_PAGES {
            let params = cursor.as_ref().map(|c| to_raw(&serde_json::json!({ "cursor": c })));
            let outcome = upstream.request(list.method(), params, None).await.map_err(|e| e.to_rpc())?;
            let result = outcome.map_err(|e| upstream_rpc_error(&self.name, list.method(), &e))?;
            let obj = RawObject::parse(&result, "result")?;
            items.extend(obj.get_array(list.field())?);
            cursor = obj.get_str("nextCursor");
            if cursor.is_none() {
                break;
            }
        }
        let (pins, recorded) = self.pin(list, &upstream, &items).await;
        let serial = LISTINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let items = Arc::new(Listing { items, pins, serial });
        let mut cache = lock(&self.cache);
        // A list whose pins could not be recorded is fetched (and recorded) again next time.
        if recorded && self.generation.load(std::sync::atomic::Ordering::Acquire) == generation {
            cache.insert(list, items.clone());
        }
        Ok(items)
    }

    /// Records the definitions of a fresh list (and the server's identity) with the pins;
    /// returns each item's pinned name and hash, and whether the store recorded them.
    async fn pin(&self, list: List, upstream: &Upstream, items: &[RawObject]) -> (Vec<Option<(String, String)>>, bool) {
        let policy = self.policy();
        let Some(kind) = PinKind::of(list).filter(|_| policy.enabled) else { return (Vec::new(), true) };
        let mut recorded = true;
        if let Some(info) = upstream.server_info() {
            let identity = Definition::identity(&info.server_info);
            recorded &= self.pins.observe(&self.name, policy, PinKind::Identity, &[&identity]).await;
            *lock(&self.identity) = Some(identity.hash);
        }
        let definitions: Vec<Option<Definition>> = items.iter().map(|i| Definition::of_item(kind, i)).collect();
        let seen: Vec<&Definition> = definitions.iter().flatten().collect();
        recorded &= self.pins.observe(&self.name, policy, kind, &seen).await;
        (definitions.into_iter().map(|d| d.map(|d| (d.name, d.hash))).collect(), recorded)
    }

    /// The pinning settings in force.
    pub fn policy(&self) -> PinPolicy {
        *lock(&self.pinning)
    }

    /// Why the `i`th item of a listing is withheld, if it is: its definition is not the
    /// approved one.
    pub fn withheld(&self, list: List, listing: &Listing, i: usize) -> Option<Withheld> {
        let kind = PinKind::of(list)?;
        let (name, hash) = listing.pins.get(i)?.as_ref()?;
        self.pins.check(&self.name, self.policy(), kind, name, hash).err()
    }

    /// Why everything of this server is withheld, if it is (a changed identity, or a
    /// quarantine while a change waits for review).
    pub fn quarantined(&self) -> Option<Withheld> {
        let identity = lock(&self.identity).clone();
        self.pins.quarantined(&self.name, self.policy(), identity.as_deref())
    }

    /// Adjusts the number of sessions watching an upstream URI; returns the new count.
    pub fn watch(&self, uri: &str, delta: isize) -> usize {
        let mut watchers = lock(&self.watchers);
        let count = watchers.entry(uri.to_owned()).or_default();
        let before = *count;
        *count = count.saturating_add_signed(delta);
        let now = *count;
        if now == 0 {
            watchers.remove(uri);
        }
        if (before == 0) != (now == 0) {
            self.upstream.set_watched_resources(watchers.keys().cloned().collect());
        }
        now
    }

    /// Subscribes the new upstream session to everything clients were watching.
    fn resubscribe(self: &Arc<Self>) {
        let uris: Vec<String> = lock(&self.watchers).keys().cloned().collect();
        for uri in uris {
            let member = self.clone();
            tokio::spawn(async move {
                let params = to_raw(&serde_json::json!({ "uri": uri }));
                if let Err(e) = member.upstream.request("resources/subscribe", Some(params), None).await {
                    tracing::warn!(server = %member.name, error = %e, "could not renew a resource subscription");
                }
            });
        }
    }

    /// The connection a caller's call goes through: their own when this server acts for
    /// each caller, else the shared one.
    pub fn upstream_for(&self, caller: &Principal) -> Result<Arc<Upstream>, RpcError> {
        match &self.callers {
            Some(pool) => pool.upstream_for(caller),
            None => Ok(self.upstream.clone()),
        }
    }

    /// Closes the shared connection and every caller's.
    fn shutdown(&self) {
        self.upstream.shutdown();
        if let Some(pool) = &self.callers {
            pool.shutdown();
        }
    }

    /// The labels of an item of this server, by its upstream name (or URI).
    pub fn labels_of(&self, upstream_name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (glob, labels) in &self.labels {
            if glob.is_match(upstream_name) {
                for label in labels {
                    if !out.contains(label) {
                        out.push(label.clone());
                    }
                }
            }
        }
        out
    }

    /// The labels of an item by its federated name or (`is_uri`) resource URI.
    pub fn labels_of_federated(&self, federated: &str, is_uri: bool) -> Vec<String> {
        if self.labels.is_empty() {
            return Vec::new();
        }
        let upstream = match (self.prefix.is_empty(), is_uri) {
            (true, _) => Some(federated),
            (false, false) => split_name(federated).map(|(_, rest)| rest),
            (false, true) => split_uri(federated).map(|(_, rest)| rest),
        };
        upstream.map(|name| self.labels_of(name)).unwrap_or_default()
    }

    /// How many callers hold their own connection to this server (`None`: it has none).
    pub fn caller_connections(&self) -> Option<usize> {
        self.callers.as_ref().map(CallerPool::len)
    }

    /// The per-user token settings, when the server uses them.
    pub fn user_token(&self) -> Option<&crate::egress::ResolvedUserToken> {
        self.resolved.as_ref().ok().and_then(|r| r.user_token.as_ref())
    }

    /// True when the server has no shared connection, only users' own.
    pub fn per_user_only(&self) -> bool {
        self.callers.as_ref().is_some_and(CallerPool::per_user_only)
    }

    /// Fetches a changed list at once when it is pinned, so a rug pull is caught (and
    /// logged) when it happens, not when a client next asks. A server that acts only for
    /// each user is looked at on a user's next list.
    fn relist(self: &Arc<Self>, kind: ListKind) {
        if !self.policy().enabled || self.per_user_only() {
            return;
        }
        for list in List::of(kind).iter().copied().filter(|l| PinKind::of(*l).is_some()) {
            let member = self.clone();
            tokio::spawn(async move {
                if let Err(e) = member.list(list, &Principal::anonymous()).await {
                    tracing::debug!(server = %member.name, error = %e, "could not fetch {} to pin it", list.method());
                }
            });
        }
    }

    fn invalidate(&self, kind: ListKind) {
        let mut cache = lock(&self.cache);
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        for list in List::of(kind) {
            cache.remove(list);
        }
    }
}

fn upstream_rpc_error(server: &str, method: &str, raw: &serde_json::value::RawValue) -> RpcError {
    let shown: String = raw.get().chars().take(300).collect();
    UpstreamError::Protocol(format!("{server} answered {method} with an error: {shown}")).to_rpc()
}

/// A virtual server: a glob filter over federated tool names, plus renames.
pub struct VirtualServer {
    globs: GlobSet,
    /// federated name -> shown name
    rename: IndexMap<String, String>,
    /// shown name -> federated name
    reverse: HashMap<String, String>,
}

impl VirtualServer {
    fn build(cfg: &VirtualServerConfig) -> Result<Self, globset::Error> {
        let mut b = GlobSetBuilder::new();
        for g in &cfg.tools {
            b.add(Glob::new(g)?);
        }
        Ok(VirtualServer {
            globs: b.build()?,
            rename: cfg.rename.clone(),
            reverse: cfg.rename.iter().map(|(k, v)| (v.clone(), k.clone())).collect(),
        })
    }

    /// The name a client of this endpoint sees for a federated tool, if it is exposed.
    pub fn show(&self, federated: &str) -> Option<String> {
        self.globs
            .is_match(federated)
            .then(|| self.rename.get(federated).cloned().unwrap_or_else(|| federated.to_owned()))
    }

    /// The federated name behind a name shown on this endpoint, if exposed.
    pub fn resolve(&self, shown: &str) -> Option<String> {
        let federated = self.reverse.get(shown).cloned().unwrap_or_else(|| shown.to_owned());
        // A renamed tool is only reachable by its new name.
        if self.rename.contains_key(&federated) && !self.reverse.contains_key(shown) {
            return None;
        }
        self.globs.is_match(&federated).then_some(federated)
    }
}

/// Compiles the guard. `Config::validate` compiled the same settings, so the fallback
/// (the built-in default profile, which still blocks credentials and injections) is only
/// reached by a config that skipped validation.
fn compile_guard(settings: &GuardConfig) -> Guard {
    crate::deep_tier::compile_guard(settings).unwrap_or_else(|e| {
        tracing::error!(error = %e, "guard settings invalid; using the built-in default profile");
        // The default settings compile: a unit test of the guard crate builds them.
        Guard::new(&GuardConfig::default()).expect("the default guard compiles")
    })
}

/// Compiles the access rules. `Config::validate` compiled them already; a config that
/// skipped validation and does not compile denies every call (fail closed).
fn compile_access(config: &Config) -> Access {
    Access::compile(&config.access, config.access_policies.as_deref()).unwrap_or_else(|e| {
        tracing::error!(error = %e, "access rules invalid; denying every call");
        let deny_all = portcullis_policy::AccessRuleConfig {
            id: Some("invalid-access-rules".into()),
            allow: None,
            deny: Some(Default::default()),
        };
        Access::compile(&[deny_all], None).unwrap_or_else(|_| unreachable!("a plain deny compiles"))
    })
}

/// Compiles the flow rules. `Config::validate` compiled them already; a config that skipped
/// validation gets the default rules (which still stop the toxic flows).
fn compile_flows(config: &Config) -> crate::flows::FlowPolicy {
    use crate::flows::{FlowPolicy, FlowsConfig};
    FlowPolicy::compile(&config.flows).unwrap_or_else(|e| {
        tracing::error!(path = %e.path, "flow rules invalid ({}); using the default rules", e.message);
        FlowPolicy::compile(&FlowsConfig::default()).unwrap_or_else(|_| unreachable!("the default rules compile"))
    })
}

/// Everything derived from one config: members in config order, name and URI routing.
pub struct Federation {
    pub config: Arc<Config>,
    /// The compiled guardrails of `config.guards`.
    pub guard: Arc<Guard>,
    /// The compiled `access` rules.
    pub access: Arc<Access>,
    /// Verdicts on tool definitions (poisoning), per profile.
    pub screen: crate::screen::ToolScreen,
    /// Pinned definitions (rug pulls).
    pub pins: Arc<Pins>,
    /// The compiled `flows` section (toxic flows).
    pub flows: Arc<crate::flows::FlowPolicy>,
    /// The compiled `limits` rules.
    pub limits: Arc<LimitPolicy>,
    pub members: Vec<Arc<Member>>,
    by_prefix: HashMap<String, usize>,
    unprefixed: Option<usize>,
    pub virtual_servers: HashMap<String, VirtualServer>,
}

impl Federation {
    /// Builds the federation for `config`, reusing members of `previous` whose server
    /// config did not change and shutting down the ones that are gone or changed.
    pub fn build(
        config: Arc<Config>,
        previous: Option<&Federation>,
        streams: &Arc<Streams>,
        http: &reqwest::Client,
        credentials: &Arc<Credentials>,
        connector: Option<&Arc<Connector>>,
        pins: &Arc<Pins>,
    ) -> Self {
        let secrets = credentials.secrets();
        let mut old: HashMap<&str, &Arc<Member>> =
            previous.map(|p| p.members.iter().map(|m| (m.name.as_str(), m)).collect()).unwrap_or_default();
        let mut members = Vec::new();
        for (name, server) in config.effective_servers() {
            if !server.enabled {
                continue;
            }
            let prefix = server.prefix_for(&name).to_owned();
            let Some(transport) = server.transport() else {
                continue;
            };
            let resolved = resolve(&name, &server, &transport, &secrets);
            let unchanged = |m: &&&Arc<Member>| m.config == server && m.prefix == prefix && m.resolved == resolved;
            let pinning = config.pinning_for(&server);
            if let Some(m) = old.get(name.as_str()).filter(unchanged) {
                *lock(&m.pinning) = pinning;
                members.push(Arc::clone(m));
                old.remove(name.as_str());
                continue;
            }
            let (upstream, callers) = match &resolved {
                Ok(resolved) => {
                    let options = UpstreamOptions {
                        request_timeout: server.timeout,
                        protocol: server.protocol,
                        // The gateway's own keys are not the upstream's business.
                        env_remove: vec![config.vault.key_env.clone(), config.sessions.key_env.clone()],
                        ..UpstreamOptions::default()
                    };
                    let acting = match (&resolved.exchange, &resolved.user_token) {
                        (Some(client), _) => Some(Acting::Exchange(client.clone())),
                        (None, Some(user_token)) => Some(Acting::UserToken(user_token.clone())),
                        (None, None) => None,
                    };
                    let callers = acting.map(|acting| {
                        let transport = resolved.transport.clone();
                        let pool = CallerPool::new(
                            &name,
                            transport,
                            options.clone(),
                            acting,
                            credentials.clone(),
                            http.clone(),
                        );
                        pool.with_connector(connector.cloned())
                    });
                    let shared = if resolved.user_token.is_some() {
                        // Nobody's identity to connect with: only users' own connections.
                        let why = "acts for each user with their own token; connections open on each user's first call";
                        Upstream::unavailable(&name, resolved.transport.clone(), why.into())
                    } else {
                        let own = resolved.oauth.clone().map(|client| {
                            Arc::new(OAuthCredential::client_credentials(client, http.clone())) as Arc<dyn Credential>
                        });
                        let options = UpstreamOptions { credential: own, ..options };
                        Upstream::start(&name, resolved.transport.clone(), options, http.clone())
                    };
                    (shared, callers)
                }
                Err(why) => {
                    tracing::error!(server = %name, "{why}");
                    (Upstream::unavailable(&name, transport, why.clone()), None)
                }
            };
            let labels = server
                .labels
                .iter()
                .filter_map(|(glob, labels)| Some((Glob::new(glob).ok()?.compile_matcher(), labels.clone())))
                .collect();
            let member = Arc::new(Member {
                labels,
                name,
                prefix,
                config: server,
                resolved,
                upstream,
                callers,
                cache: Mutex::default(),
                pins: pins.clone(),
                pinning: Mutex::new(pinning),
                identity: Mutex::default(),
                generation: Default::default(),
                watchers: Mutex::default(),
                breaker: Default::default(),
            });
            spawn_event_listener(member.clone(), streams.clone());
            members.push(member);
        }
        for gone in old.values() {
            tracing::info!(server = %gone.name, "upstream removed or changed; shutting its old connection down");
            gone.shutdown();
        }
        let by_prefix = members.iter().enumerate().map(|(i, m)| (m.prefix.clone(), i)).collect();
        let unprefixed = members.iter().position(|m| m.prefix.is_empty());
        let virtual_servers = config
            .virtual_servers
            .iter()
            .filter_map(|(name, vs)| VirtualServer::build(vs).ok().map(|v| (name.clone(), v)))
            .collect();
        let guard = match previous.filter(|p| p.config.guards == config.guards) {
            Some(p) => p.guard.clone(),
            None => Arc::new(compile_guard(&config.guards)),
        };
        let same_rules =
            |p: &&Federation| p.config.access == config.access && p.config.access_policies == config.access_policies;
        let access = match previous.filter(same_rules) {
            Some(p) => p.access.clone(),
            None => Arc::new(compile_access(&config)),
        };
        let flows = match previous.filter(|p| p.config.flows == config.flows) {
            Some(p) => p.flows.clone(),
            None => Arc::new(compile_flows(&config)),
        };
        // `Config::validate` compiled the rules already; one that skipped it limits nothing.
        let limits = Arc::new(LimitPolicy::compile(&config.limits).unwrap_or_else(|(path, problem)| {
            tracing::error!(%path, "limit rules invalid ({problem}); no limits apply");
            LimitPolicy::default()
        }));
        Federation {
            flows,
            limits,
            config,
            guard,
            access,
            screen: Default::default(),
            pins: pins.clone(),
            members,
            by_prefix,
            unprefixed,
            virtual_servers,
        }
    }

    /// The member owning a federated tool or prompt name, and the upstream's own name.
    pub fn route_name<'a>(&self, name: &'a str) -> Option<(&Arc<Member>, &'a str)> {
        if let Some((prefix, rest)) = split_name(name) {
            if let Some(&i) = self.by_prefix.get(prefix) {
                return Some((&self.members[i], rest));
            }
        }
        self.unprefixed.map(|i| (&self.members[i], name))
    }

    /// The member owning a federated resource URI, and the upstream's own URI.
    pub fn route_uri<'a>(&self, uri: &'a str) -> Option<(&Arc<Member>, &'a str)> {
        if let Some((prefix, rest)) = split_uri(uri) {
            if let Some(&i) = self.by_prefix.get(prefix) {
                return Some((&self.members[i], rest));
            }
        }
        self.unprefixed.map(|i| (&self.members[i], uri))
    }

    /// The federated name of a member's item.
    pub fn name_of(member: &Member, name: &str) -> String {
        prefixed_name(&member.prefix, name)
    }

    pub fn uri_of(member: &Member, uri: &str) -> String {
        prefixed_uri(&member.prefix, uri)
    }

    /// Stops every upstream (on shutdown).
    pub fn shutdown(&self) {
        for m in &self.members {
            m.shutdown();
        }
    }
}

/// Forwards an upstream's announcements: list changes invalidate its cache and reach
/// every connected client; resource updates reach the clients subscribed to them.
fn spawn_event_listener(member: Arc<Member>, streams: Arc<Streams>) {
    let mut events = member.upstream.subscribe();
    let weak = Arc::downgrade(&member);
    drop(member);
    tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let Some(member) = weak.upgrade() else { return };
            match event {
                UpstreamEvent::ListChanged(kind) => {
                    member.invalidate(kind);
                    streams.broadcast(kind.notification(), None);
                    member.relist(kind);
                }
                UpstreamEvent::ResourceUpdated { uri } => {
                    let params = serde_json::json!({ "uri": Federation::uri_of(&member, &uri) });
                    streams.broadcast("notifications/resources/updated", Some(&to_raw(&params)));
                }
                UpstreamEvent::Reconnected => member.resubscribe(),
                UpstreamEvent::Log(params) => {
                    tracing::info!(target: "portcullis::upstream", server = %member.name, "log: {}", params.get());
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_servers_filter_and_rename() {
        let cfg = VirtualServerConfig {
            tools: vec!["demo__echo".into(), "fs__read_*".into()],
            rename: IndexMap::from([("demo__echo".to_owned(), "say".to_owned())]),
        };
        let vs = VirtualServer::build(&cfg).unwrap();
        assert_eq!(vs.show("demo__echo").as_deref(), Some("say"));
        assert_eq!(vs.show("fs__read_file").as_deref(), Some("fs__read_file"));
        assert_eq!(vs.show("fs__write_file"), None);
        assert_eq!(vs.resolve("say").as_deref(), Some("demo__echo"));
        assert_eq!(vs.resolve("demo__echo"), None, "the old name of a renamed tool is hidden");
        assert_eq!(vs.resolve("fs__write_file"), None);
    }
}
