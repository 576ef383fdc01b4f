//! The gateway's configuration: one typed serde tree (`deny_unknown_fields` everywhere),
//! the JSON Schema generated from it, and validation that reports every problem with
//! the path of the field at fault.

use indexmap::IndexMap;
use portcullis_guard::GuardConfig;
use portcullis_mcp::client::modern::ProtocolChoice;
use portcullis_mcp::client::spec::{HttpSpec, StdioSpec, TransportSpec};
use portcullis_store::{Location, StoreError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default address: loopback only, so a first run exposes nothing to the network.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Portcullis gateway configuration (`portcullis.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address of the HTTP front door (MCP at `/mcp`, health at `/healthz` and `/readyz`).
    #[serde(default = "default_listen")]
    #[schemars(with = "String")]
    pub listen: SocketAddr,
    /// Upstream MCP servers, by name. With none configured the gateway fronts its demo server.
    #[serde(default)]
    pub servers: IndexMap<String, ServerConfig>,
    /// Named endpoints (`/mcp/<name>`) that expose a chosen subset of tools.
    #[serde(default)]
    pub virtual_servers: IndexMap<String, VirtualServerConfig>,
    /// Limits and browser checks of the HTTP front door.
    #[serde(default)]
    pub http: HttpConfig,
    /// Client sessions.
    #[serde(default)]
    pub sessions: SessionsConfig,
    /// Guardrails on tool arguments and results, resources and prompts (on by default).
    #[serde(default, skip_serializing)]
    pub guards: GuardConfig,
    /// Who may call the gateway. Without it, only anonymous callers on a loopback address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    /// The embedded database (API keys).
    #[serde(default)]
    pub store: StoreConfig,
    /// Who may call which tool, with which arguments: `allow` / `deny` rules, compiled into
    /// Cedar policies. Without rules every caller may call every tool.
    #[serde(default, skip_serializing)]
    pub access: Vec<portcullis_policy::AccessRuleConfig>,
    /// Raw Cedar policies, added to the `access` rules (see README, "What callers may do").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_policies: Option<String>,
    /// Where the key of the credential vault comes from (`secret:NAME` values).
    #[serde(default)]
    pub vault: VaultConfig,
    /// Rug-pull detection for every server (`servers.X.pinning` overrides it): upstream
    /// definitions are pinned on first use and a changed one is withheld until approved.
    #[serde(default, skip_serializing_if = "is_default")]
    pub pinning: crate::pins::PinningConfig,
    /// Toxic flows: labels of tools and the rules that stop a session which took in
    /// untrusted content and private data from sending it out (on by default).
    #[serde(default, skip_serializing)]
    pub flows: crate::flows::FlowsConfig,
    /// The loop breaker: the same call (or a short cycle of calls) repeated too often in one
    /// session is refused (on by default: the 11th identical call within 60 s).
    #[serde(default, skip_serializing_if = "is_default")]
    pub loops: crate::loops::LoopsConfig,
    /// The audit log: one event per exchange, hash-chained, in the store (on by default).
    #[serde(default, skip_serializing_if = "is_default")]
    pub audit: crate::audit::AuditConfig,
    /// Rate limits, quotas and concurrency caps on tool calls, per user, team, app, key,
    /// server or tool (none by default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<crate::limits::LimitRule>,
    /// The Redis that replicas share limits and budgets through (none: each counts alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<crate::limits::shared::RedisConfig>,
    /// The circuit breaker of every upstream: calls fail fast while a server keeps failing.
    #[serde(default, skip_serializing_if = "is_default")]
    pub breaker: crate::breaker::BreakerConfig,
    /// Prometheus metrics at `/metrics` (on by default).
    #[serde(default, skip_serializing_if = "is_default")]
    pub metrics: crate::metrics::MetricsConfig,
    /// OpenTelemetry traces over OTLP (off until `endpoint` is set).
    #[serde(default, skip_serializing_if = "is_default")]
    pub traces: crate::traces::TracesConfig,
    /// The deployment's region tag (`eu-west-1`), recorded in every audit event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// The credential vault's key: 32 random bytes in base64, from an environment variable or a
/// file, never from this config. Secrets live sealed in the store (`portcullis secrets set`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct VaultConfig {
    /// The environment variable holding the key. It is removed from the environment of
    /// every stdio server the gateway starts.
    pub key_env: String,
    /// A file holding the key instead (relative paths are relative to the config file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

impl Default for VaultConfig {
    fn default() -> Self {
        VaultConfig { key_env: "PORTCULLIS_VAULT_KEY".into(), key_file: None }
    }
}

/// A `secret:NAME` reference in the config: where it is and which secret it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The field, e.g. `servers.github.http.headers.Authorization`.
    pub path: String,
    pub name: String,
}

/// How callers prove who they are (`Authorization: Bearer ...` on the HTTP door).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Accept API keys issued with `portcullis keys create`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_keys: Option<ApiKeysConfig>,
    /// Accept JWTs from an identity provider (OIDC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtConfig>,
    /// Also serve callers that present no credential. Needed, and chosen explicitly, to
    /// serve anonymous callers on an address other than loopback.
    pub anonymous: bool,
    /// This gateway's URL as its callers know it (e.g. `https://mcp.example.com/mcp`): the
    /// `resource` of its OAuth protected-resource metadata (RFC 9728). Default: from the
    /// request's `Host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// JWT callers: which identity provider, which audience, and how claims map to a caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The provider's issuer URL (the `iss` tokens carry).
    pub issuer: String,
    /// The `aud` a token must carry: this gateway (RFC 8707). One value or a list; default:
    /// `auth.resource`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<OneOrMany>,
    /// Where the provider publishes its keys; default: the `jwks_uri` of
    /// `<issuer>/.well-known/openid-configuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Accepted signature algorithms (public-key ones only).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Which claims name the caller.
    #[serde(default)]
    pub claims: ClaimsConfig,
    /// Scopes every token must carry; a token without them gets 403 with a scope challenge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_scopes: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    #[serde(default = "default_leeway", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub leeway: Duration,
    /// How often the provider's keys are fetched again (also at once, at most every 5 s,
    /// when a token names an unknown key id).
    #[serde(default = "default_jwks_refresh", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub refresh: Duration,
}

/// A string or a list of strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}

fn default_leeway() -> Duration {
    Duration::from_secs(60)
}

fn default_jwks_refresh() -> Duration {
    Duration::from_secs(600)
}

/// Claim names for the caller's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimsConfig {
    pub user: String,
    pub team: Option<String>,
    pub app: Option<String>,
    /// A list of role names (or one space-separated string).
    pub roles: Option<String>,
}

impl Default for ClaimsConfig {
    fn default() -> Self {
        ClaimsConfig {
            user: "sub".into(),
            team: Some("team".into()),
            app: Some("client_id".into()),
            roles: Some("roles".into()),
        }
    }
}

impl JwtConfig {
    /// The verifier's settings; `resource` is the default audience.
    pub fn settings(&self, resource: Option<&str>) -> Result<portcullis_policy::JwtSettings, String> {
        let algorithms = self
            .algorithms
            .iter()
            .map(|a| portcullis_policy::jwt::parse_algorithm(a).map_err(|e| format!("algorithms: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if algorithms.is_empty() {
            return Err("algorithms: name at least one, e.g. [RS256, ES256]".into());
        }
        let audiences = match (&self.audience, resource) {
            (Some(a), _) => a.to_vec(),
            (None, Some(r)) => vec![r.to_owned()],
            (None, None) => Vec::new(),
        };
        if audiences.is_empty() || audiences.iter().any(String::is_empty) {
            return Err("audience: set the audience tokens must carry for this gateway (or `auth.resource`)".into());
        }
        Ok(portcullis_policy::JwtSettings {
            issuer: self.issuer.clone(),
            audiences,
            jwks_url: self.jwks_url.clone(),
            algorithms,
            leeway: self.leeway,
            user_claim: self.claims.user.clone(),
            team_claim: self.claims.team.clone(),
            app_claim: self.claims.app.clone(),
            roles_claim: self.claims.roles.clone(),
            required_scopes: self.required_scopes.clone(),
        })
    }
}

/// API key settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysConfig {
    /// How long a rotated key keeps working beside its replacement, so clients can switch
    /// without a failed request (`portcullis keys rotate --grace` overrides it).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub rotation_grace: Duration,
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        ApiKeysConfig { rotation_grace: Duration::from_secs(3600) }
    }
}

/// Where the database lives: an embedded SQLite file (the default), or a PostgreSQL server
/// that replicas share.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The SQLite file; relative paths are relative to the config file. Default:
    /// `portcullis.db` beside the config file (in the working directory without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// A PostgreSQL database instead: `postgres://user:password@host:5432/portcullis`
    /// (add `?sslmode=require` for TLS). Prefer `url_env` when it holds a password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The environment variable holding the PostgreSQL URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
}

impl StoreConfig {
    /// Problems with the section: (field, message). Never shows a URL's password.
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let set = [self.path.is_some(), self.url.is_some(), self.url_env.is_some()];
        if set.iter().filter(|s| **s).count() > 1 {
            out.push(("store".into(), "set only one of `path` (SQLite), `url` and `url_env` (PostgreSQL)".into()));
        }
        if let Some(Err(why)) = self.url.as_deref().map(Location::parse) {
            out.push(("store.url".into(), why));
        }
        out
    }
}

impl Config {
    /// Where the database is for a config loaded from `config_path` (if any).
    pub fn store_location(&self, config_path: Option<&Path>) -> Result<Location, StoreError> {
        let base = config_path.and_then(Path::parent).unwrap_or(Path::new(""));
        let url = match (&self.store.url, &self.store.url_env) {
            (Some(url), _) => Some(url.clone()),
            (None, Some(var)) => Some(std::env::var(var).map_err(|_| {
                StoreError::Config(format!(
                    "${var} (store.url_env) is not set: set it to the PostgreSQL URL (postgres://user:password@host/database)"
                ))
            })?),
            (None, None) => None,
        };
        match (url, &self.store.path) {
            (Some(url), _) => Location::parse(&url).map_err(StoreError::Config),
            (None, Some(p)) if p.is_absolute() => Ok(Location::Sqlite(p.clone())),
            (None, Some(p)) => Ok(Location::Sqlite(base.join(p))),
            (None, None) => Ok(Location::Sqlite(base.join("portcullis.db"))),
        }
    }

    /// Where the vault key comes from for a config loaded from `config_path` (if any).
    pub fn vault_key_source(&self, config_path: Option<&Path>) -> portcullis_vault::KeySource {
        match &self.vault.key_file {
            Some(p) if p.is_absolute() => portcullis_vault::KeySource::File(p.clone()),
            Some(p) => {
                portcullis_vault::KeySource::File(config_path.and_then(Path::parent).unwrap_or(Path::new("")).join(p))
            }
            None => portcullis_vault::KeySource::Env(self.vault.key_env.clone()),
        }
    }

    /// The pinning settings in force for `server`.
    pub fn pinning_for(&self, server: &ServerConfig) -> crate::pins::PinPolicy {
        server.pinning.over(&self.pinning)
    }

    /// True when some server pins its definitions (which needs the store).
    pub fn pins_anything(&self) -> bool {
        self.effective_servers().values().any(|s| s.enabled && self.pinning_for(s).enabled)
    }

    /// True when some server needs the vault: `secret:NAME` values, or users' own tokens.
    pub fn uses_vault(&self) -> bool {
        !self.secret_refs().is_empty()
            || self.servers.values().any(|s| s.auth.as_ref().is_some_and(|a| a.user_token.is_some()))
    }

    /// Every `secret:NAME` value of the servers' environments and headers, in config order.
    pub fn secret_refs(&self) -> Vec<SecretRef> {
        let mut refs = Vec::new();
        for (name, server) in &self.servers {
            let fields = server.secret_fields().into_iter();
            for (field, value) in fields {
                if let Some(secret) = portcullis_vault::reference(value) {
                    refs.push(SecretRef { path: format!("servers.{name}.{field}"), name: secret.to_owned() });
                }
            }
        }
        refs
    }
}

fn default_listen() -> SocketAddr {
    // A constant that parses: the fallback is never taken.
    DEFAULT_LISTEN.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: default_listen(),
            servers: IndexMap::new(),
            virtual_servers: IndexMap::new(),
            http: HttpConfig::default(),
            sessions: SessionsConfig::default(),
            guards: GuardConfig::default(),
            auth: None,
            store: StoreConfig::default(),
            access: Vec::new(),
            access_policies: None,
            vault: VaultConfig::default(),
            pinning: Default::default(),
            flows: Default::default(),
            loops: Default::default(),
            audit: Default::default(),
            limits: Vec::new(),
            redis: None,
            breaker: Default::default(),
            metrics: Default::default(),
            traces: Default::default(),
            region: None,
        }
    }
}

/// One upstream MCP server. Exactly one of `stdio`, `http` and `sse` must be set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Launch the server as a child process (restarted with backoff when it exits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdio: Option<StdioSpec>,
    /// A Streamable HTTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSpec>,
    /// A legacy HTTP+SSE server (protocol 2024-11-05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<HttpSpec>,
    /// Prefix of this server's tool and prompt names (`<prefix>__<name>`) and resource URIs
    /// (`<prefix>+<uri>`). Defaults to the server's name; `""` exposes names unchanged (one server at most).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// How long one request may take before the caller gets a timeout error.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Protocol revisions to speak: `auto` probes with 2026-07-28 `server/discover` and
    /// falls back to `initialize`; `legacy` or `modern` skip the probe.
    #[serde(default)]
    pub protocol: ProtocolChoice,
    /// Set to false to keep the entry but not connect.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How the gateway proves itself to this (HTTP) server: `bearer: secret:NAME`, or
    /// `oauth: {...}` for a token of its own (client credentials). Callers' tokens are never
    /// forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<crate::egress::EgressAuth>,
    /// Labels of this server's tools, prompts and resources for the access rules (`labels:`
    /// in a rule, `context.labels` in Cedar): a glob over the upstream's name or URI, and
    /// its labels, e.g. `{ "delete_*": [destructive], "create_pull_request": [public_sink] }`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, Vec<String>>,
    /// Rug-pull detection for this server, over the top-level `pinning`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub pinning: crate::pins::PinningConfig,
}

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}

fn yes() -> bool {
    true
}

impl ServerConfig {
    /// The transport, if exactly one is configured.
    pub fn transport(&self) -> Option<TransportSpec> {
        match (&self.stdio, &self.http, &self.sse) {
            (Some(s), None, None) => Some(TransportSpec::Stdio(s.clone())),
            (None, Some(h), None) => Some(TransportSpec::Http(h.clone())),
            (None, None, Some(h)) => Some(TransportSpec::Sse(h.clone())),
            _ => None,
        }
    }

    /// The prefix in force for a server called `name`.
    pub fn prefix_for<'a>(&'a self, name: &'a str) -> &'a str {
        self.prefix.as_deref().unwrap_or(name)
    }

    /// The values that may be `secret:NAME` references, with their field paths.
    fn secret_fields(&self) -> Vec<(String, &str)> {
        let mut fields = Vec::new();
        if let Some(stdio) = &self.stdio {
            fields.extend(stdio.env.iter().map(|(k, v)| (format!("stdio.env.{k}"), v.as_str())));
        }
        for (kind, spec) in [("http", &self.http), ("sse", &self.sse)] {
            if let Some(spec) = spec {
                fields.extend(spec.headers.iter().map(|(k, v)| (format!("{kind}.headers.{k}"), v.as_str())));
            }
        }
        if let Some(auth) = &self.auth {
            fields.extend(auth.secret_fields());
        }
        fields
    }
}

/// A named subset of tools, served at `/mcp/<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VirtualServerConfig {
    /// Globs over federated tool names, e.g. `["demo__echo", "github__*"]`.
    pub tools: Vec<String>,
    /// Optional new names: federated name -> name shown on this endpoint.
    #[serde(default)]
    pub rename: IndexMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body accepted; larger ones get HTTP 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// `Origin` values accepted from browsers besides loopback ones.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Items per page of merged lists (`tools/list`, ...); 0 sends everything in one page.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
}

fn default_max_body() -> usize {
    4 * 1024 * 1024
}

/// Largest `http.page_size` accepted.
pub const MAX_PAGE_SIZE: usize = 10_000;

fn default_page_size() -> usize {
    200
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { max_body_bytes: default_max_body(), allowed_origins: Vec::new(), page_size: default_page_size() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    /// Environment variable holding the base64 32-byte key that seals session ids. Replicas
    /// sharing it can continue each other's sessions. Unset: a random key per process.
    #[serde(default = "default_key_env")]
    pub key_env: String,
    /// Sessions older than this must initialize again (`0s`: never).
    #[serde(default = "default_max_age", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub max_age: Duration,
}

fn default_key_env() -> String {
    "PORTCULLIS_SESSION_KEY".into()
}

fn default_max_age() -> Duration {
    Duration::from_secs(24 * 3600)
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig { key_env: default_key_env(), max_age: default_max_age() }
    }
}

/// One thing wrong with a configuration, at a path like `servers.github.http.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A configuration that failed to load, with every problem found.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid configuration{}:\n{}", source_suffix(.source_name), .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub source_name: Option<String>,
    pub problems: Vec<Problem>,
}

fn source_suffix(name: &Option<String>) -> String {
    name.as_ref().map(|n| format!(" in {n}")).unwrap_or_default()
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: Some(path.display().to_string()),
            problems: vec![Problem { path: String::new(), message: format!("cannot read the file: {e}") }],
        })?;
        Config::parse(&text).map_err(|mut e| {
            e.source_name = Some(path.display().to_string());
            e
        })
    }

    /// Parses and validates YAML (JSON is YAML too).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let fail = |problems| ConfigError { source_name: None, problems };
        let value: serde_yaml_ng::Value = if text.trim().is_empty() {
            serde_yaml_ng::Value::Mapping(Default::default())
        } else {
            serde_yaml_ng::from_str(text)
                .map_err(|e| fail(vec![Problem { path: String::new(), message: format!("not valid YAML: {e}") }]))?
        };
        let config = deserialize_all(value).map_err(fail)?;
        let problems = config.validate();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(fail(problems))
        }
    }

    /// The servers in force: the configured ones, or the demo server when there are none.
    pub fn effective_servers(&self) -> IndexMap<String, ServerConfig> {
        if !self.servers.is_empty() {
            return self.servers.clone();
        }
        let demo = ServerConfig {
            stdio: Some(StdioSpec {
                command: "portcullis".into(),
                args: vec!["demo-server".into()],
                env: IndexMap::new(),
                cwd: None,
            }),
            http: None,
            sse: None,
            prefix: None,
            timeout: default_timeout(),
            protocol: ProtocolChoice::Legacy,
            enabled: true,
            auth: None,
            labels: IndexMap::new(),
            pinning: Default::default(),
        };
        IndexMap::from([("demo".to_owned(), demo)])
    }

    /// Checks what the types cannot: names, prefixes, URLs, globs, references.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut add = |path: String, message: String| problems.push(Problem { path, message });
        let mut prefixes: IndexMap<String, &str> = IndexMap::new();
        for (name, server) in &self.servers {
            let at = format!("servers.{name}");
            if let Err(why) = check_name(name) {
                add(at.clone(), format!("invalid server name: {why}"));
            }
            let set = [server.stdio.is_some(), server.http.is_some(), server.sse.is_some()];
            match set.iter().filter(|s| **s).count() {
                1 => {}
                0 => add(at.clone(), "no transport: set one of `stdio`, `http` or `sse`".into()),
                _ => add(at.clone(), "more than one transport: keep only one of `stdio`, `http` and `sse`".into()),
            }
            if let Some(stdio) = &server.stdio {
                if stdio.command.trim().is_empty() {
                    add(format!("{at}.stdio.command"), "must not be empty".into());
                }
                for (i, arg) in stdio.args.iter().enumerate() {
                    if portcullis_vault::reference(arg).is_some() {
                        add(
                            format!("{at}.stdio.args[{i}]"),
                            "a secret in a command line is visible to every local user in the process list; pass it in `env` instead (e.g. `env: { API_TOKEN: secret:NAME }`)".into(),
                        );
                    }
                }
            }
            if let Some(auth) = &server.auth {
                if server.stdio.is_some() {
                    add(
                        format!("{at}.auth"),
                        "a stdio server gets its credentials in `stdio.env` (e.g. `API_TOKEN: secret:NAME`), not `auth`".into(),
                    );
                }
                let headers = server.http.as_ref().or(server.sse.as_ref()).map(|h| &h.headers);
                if headers.is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("authorization"))) {
                    add(
                        format!("{at}.auth"),
                        "the server also sets an `Authorization` header: keep one of the two".into(),
                    );
                }
                for (path, message) in auth.problems(&at) {
                    add(path, message);
                }
                if name == "callback" && auth.user_token.as_ref().is_some_and(|u| u.authorize_url.is_some()) {
                    add(at.clone(), "`/connect/callback` is the gateway's own page: name this server otherwise".into());
                }
                if auth.token_exchange.is_some() && self.auth.as_ref().is_none_or(|a| a.jwt.is_none()) {
                    add(
                        format!("{at}.auth.token_exchange"),
                        "exchanges the tokens callers sign in with, so it needs `auth.jwt` (API keys cannot be exchanged)".into(),
                    );
                }
            }
            for (glob, labels) in &server.labels {
                if let Err(e) = globset::Glob::new(glob) {
                    add(format!("{at}.labels.{glob}"), format!("invalid glob: {e}"));
                }
                for label in labels {
                    if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c)) {
                        add(
                            format!("{at}.labels.{glob}"),
                            format!("`{label}` is not a label (letters, digits, `_`, `-`, `.`, `:`)"),
                        );
                    }
                }
            }
            for (field, value) in server.secret_fields() {
                if let Some(Err(why)) = portcullis_vault::reference(value).map(portcullis_vault::check_name) {
                    add(format!("{at}.{field}"), format!("invalid secret name in `{value}`: {why}"));
                }
            }
            for (kind, spec) in [("http", &server.http), ("sse", &server.sse)] {
                let Some(spec) = spec else { continue };
                match url::Url::parse(&spec.url) {
                    Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                    Ok(u) => add(format!("{at}.{kind}.url"), format!("scheme `{}` is not http or https", u.scheme())),
                    Err(e) => add(format!("{at}.{kind}.url"), format!("`{}` is not a valid URL ({e})", spec.url)),
                }
            }
            if server.timeout.is_zero() {
                add(format!("{at}.timeout"), "must be more than 0s".into());
            }
            let prefix = server.prefix_for(name);
            if !prefix.is_empty() {
                if let Err(why) = check_name(prefix) {
                    add(format!("{at}.prefix"), format!("invalid prefix: {why}"));
                }
            }
            if server.enabled {
                if let Some(other) = prefixes.insert(prefix.to_owned(), name) {
                    let shown =
                        if prefix.is_empty() { "the empty prefix".to_owned() } else { format!("prefix `{prefix}`") };
                    add(
                        format!("{at}.prefix"),
                        format!("{shown} is already used by server `{other}`: names would collide; set a different `prefix`"),
                    );
                }
            }
        }
        for (name, vs) in &self.virtual_servers {
            let at = format!("virtual_servers.{name}");
            if let Err(why) = check_name(name) {
                add(at.clone(), format!("invalid virtual server name: {why}"));
            }
            if vs.tools.is_empty() {
                add(format!("{at}.tools"), "empty: list at least one tool name or glob".into());
            }
            for (i, glob) in vs.tools.iter().enumerate() {
                if let Err(e) = globset::Glob::new(glob) {
                    add(format!("{at}.tools[{i}]"), format!("invalid glob `{glob}`: {e}"));
                }
            }
            let mut shown: IndexMap<&str, &str> = IndexMap::new();
            for (from, to) in &vs.rename {
                if to.is_empty()
                    || to.len() > 128
                    || !to.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                {
                    add(
                        format!("{at}.rename.{from}"),
                        format!("`{to}` is not a valid tool name (A-Z a-z 0-9 _ - ., up to 128)"),
                    );
                }
                if let Some(other) = shown.insert(to, from) {
                    add(format!("{at}.rename.{from}"), format!("`{to}` is also the new name of `{other}`"));
                }
            }
        }
        if let Some(auth) = &self.auth {
            if auth.api_keys.is_none() && auth.jwt.is_none() && !auth.anonymous {
                add(
                    "auth".into(),
                    "names no way to let callers in: add `api_keys: {}` (keys from `portcullis keys create`), `jwt: {...}` for an identity provider, or `anonymous: true` to serve callers without a credential".into(),
                );
            }
            if let Some(jwt) = &auth.jwt {
                if !url::Url::parse(&jwt.issuer).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                    add(
                        "auth.jwt.issuer".into(),
                        format!("`{}` is not an http(s) URL like `https://idp.example.com`", jwt.issuer),
                    );
                }
                if let Some(url) = &jwt.jwks_url {
                    if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                        add("auth.jwt.jwks_url".into(), format!("`{url}` is not an http(s) URL"));
                    }
                }
                if let Err(e) = jwt.settings(auth.resource.as_deref()) {
                    let (field, message) = e.split_once(": ").unwrap_or(("", &e));
                    add(format!("auth.jwt.{field}"), message.to_owned());
                }
            }
            if let Some(resource) = &auth.resource {
                if !url::Url::parse(resource).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                    add(
                        "auth.resource".into(),
                        format!("`{resource}` is not an http(s) URL like `https://mcp.example.com/mcp`"),
                    );
                }
            }
        }
        if self.vault.key_env.is_empty() {
            add("vault.key_env".into(), "must not be empty (the default is PORTCULLIS_VAULT_KEY)".into());
        }
        if let Err(e) = portcullis_policy::Access::compile(&self.access, self.access_policies.as_deref()) {
            add(e.path, e.message);
        }
        if let Err(e) = crate::deep_tier::compile_guard(&self.guards) {
            add(format!("guards.{}", e.path), e.message);
        }
        if self.loops.enabled && (self.loops.repeats == 0 || self.loops.window.is_zero()) {
            add("loops".into(), "`repeats` and `window` must be above zero (or set `enabled: false`)".into());
        }
        if let Err(e) = crate::flows::FlowPolicy::compile(&self.flows) {
            add(e.path, e.message);
        }
        if let Err((path, problem)) = crate::limits::LimitPolicy::compile(&self.limits) {
            add(path, problem);
        }
        for (path, problem) in self.traces.problems() {
            add(path, problem);
        }
        for (path, problem) in self.store.problems() {
            add(path, problem);
        }
        for (path, problem) in self.redis.as_ref().map(|r| r.problems()).unwrap_or_default() {
            add(path, problem);
        }
        if self.breaker.enabled && (self.breaker.failures == 0 || self.breaker.open_for.is_zero()) {
            add("breaker".into(), "`failures` and `open_for` must be above zero (or set `enabled: false`)".into());
        }
        for (i, l) in self.flows.labels.iter().enumerate() {
            if !self.servers.contains_key(&l.server) {
                let known: Vec<&str> = self.servers.keys().map(String::as_str).collect();
                add(
                    format!("flows.labels[{i}].server"),
                    format!("no server `{}` (servers: {})", l.server, known.join(", ")),
                );
            }
        }
        if self.http.page_size > MAX_PAGE_SIZE {
            add("http.page_size".into(), format!("at most {MAX_PAGE_SIZE} (0 sends every item in one page)"));
        }
        if self.http.max_body_bytes < 1024 {
            add("http.max_body_bytes".into(), "must be at least 1024".into());
        }
        for (i, origin) in self.http.allowed_origins.iter().enumerate() {
            if url::Url::parse(origin).map(|u| u.origin().is_tuple()).unwrap_or(false) {
                continue;
            }
            add(
                format!("http.allowed_origins[{i}]"),
                format!("`{origin}` is not an origin like `https://app.example.com`"),
            );
        }
        problems
    }
}

/// Names and prefixes become parts of tool names and URI schemes: keep them plain.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.contains("__") {
        return Err(format!("`{name}` contains `__`, which separates prefixes from names"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(format!("`{name}` may only use letters, digits, `_` and `-`"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!("`{name}` must start with a letter"));
    }
    Ok(())
}

/// Deserializes the typed config, collecting every structural error: after each error
/// the offending node is removed and deserialization tried again.
fn deserialize_all(mut value: serde_yaml_ng::Value) -> Result<Config, Vec<Problem>> {
    let mut problems = Vec::new();
    for _ in 0..50 {
        match serde_path_to_error::deserialize::<_, Config>(value.clone()) {
            Ok(config) if problems.is_empty() => return Ok(config),
            // With the bad parts removed the rest can be checked too, so one run of
            // `check` reports everything.
            Ok(config) => {
                problems.extend(config.validate());
                return Err(problems);
            }
            Err(e) => {
                let path = clean_path(&e.path().to_string());
                let message = explain(&e.inner().to_string());
                let unknown_field = message.starts_with("unknown field");
                let duplicate = problems.iter().any(|p: &Problem| p.path == path && p.message == message);
                if !duplicate {
                    problems.push(Problem { path: path.clone(), message });
                }
                if !remove_path(&mut value, &e.path().to_string(), unknown_field) || duplicate {
                    return Err(problems);
                }
            }
        }
    }
    Err(problems)
}

fn clean_path(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        path.to_owned()
    }
}

/// Turns serde's messages into advice where it is terse.
fn explain(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message).to_owned();
    if message.starts_with("unknown field") {
        format!("{message}; remove it or fix its spelling")
    } else {
        message
    }
}

/// Removes the node at a serde_path_to_error path (`a.b[0].c`). An unknown field's path
/// names the field itself, so it is removed; for other errors the node is the bad value.
fn remove_path(root: &mut serde_yaml_ng::Value, path: &str, _unknown_field: bool) -> bool {
    let segments = split_path(path);
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut node = root;
    for seg in parents {
        let next = match seg {
            Seg::Key(k) => node.get_mut(k.as_str()),
            Seg::Index(i) => node.get_mut(*i),
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    match (last, node) {
        (Seg::Key(k), serde_yaml_ng::Value::Mapping(m)) => m.remove(k.as_str()).is_some(),
        (Seg::Index(i), serde_yaml_ng::Value::Sequence(s)) if *i < s.len() => {
            s.remove(*i);
            true
        }
        _ => false,
    }
}

enum Seg {
    Key(String),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(bracket) = rest.find('[') {
            let key = &rest[..bracket];
            if !key.is_empty() {
                out.push(Seg::Key(key.to_owned()));
            }
            rest = &rest[bracket..];
            while let Some(end) = rest.find(']') {
                if let Some(Ok(i)) = rest.get(1..end).map(str::parse) {
                    out.push(Seg::Index(i));
                }
                rest = rest.get(end + 1..).unwrap_or_default();
            }
        } else {
            out.push(Seg::Key(rest.to_owned()));
        }
    }
    out
}

/// The JSON Schema of the configuration.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        Config::parse(yaml).unwrap_err().problems.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn the_issue_sketch_loads() {
        let yaml = r#"
listen: 127.0.0.1:8080
servers:
  demo:
    stdio: { command: portcullis, args: [demo-server] }
  everything:
    http: { url: "http://127.0.0.1:3001/mcp" }
  legacy:
    sse: { url: "http://127.0.0.1:3002/sse" }
    prefix: old
virtual_servers:
  engineering:
    tools: ["demo__echo", "everything__*"]
"#;
        let c = Config::parse(yaml).unwrap();
        assert_eq!(c.servers.len(), 3);
        assert_eq!(c.servers["legacy"].prefix_for("legacy"), "old");
        assert_eq!(c.servers["demo"].prefix_for("demo"), "demo");
        assert!(matches!(c.servers["legacy"].transport(), Some(TransportSpec::Sse(_))));
    }

    #[test]
    fn the_store_is_sqlite_or_postgres_and_a_bad_url_keeps_its_password() {
        let got = problems("store: { path: p.db, url: \"postgres://db/p\" }");
        assert!(got.iter().any(|p| p.contains("set only one of `path`")), "{got:?}");
        let got = problems("store: { url: \"mysql://root:hunter2@db/p\" }");
        assert!(got.iter().any(|p| p.starts_with("store.url") && p.contains("neither")), "{got:?}");
        assert!(got.iter().all(|p| !p.contains("hunter2")), "{got:?}");
        let c = Config::parse("store: { url: \"postgres://app:hunter2@db/p\" }").unwrap();
        let at = c.store_location(None).unwrap();
        assert!(at.is_postgres() && at.to_string() == "postgres://app:***@db/p", "{at}");
        let c = Config::parse("store: { path: data/p.db }").unwrap();
        let at = c.store_location(Some(Path::new("/etc/portcullis/portcullis.yaml"))).unwrap();
        assert_eq!(at, Location::Sqlite("/etc/portcullis/data/p.db".into()));
    }

    #[test]
    fn an_empty_file_is_the_default_config_with_the_demo_server() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.effective_servers().keys().collect::<Vec<_>>(), ["demo"]);
    }

    #[test]
    fn every_structural_problem_is_reported_with_its_path() {
        let got = problems(
            r#"
listen: nowhere
servers:
  a:
    stdio: { command: x, argz: [] }
  b:
    http: { url: "http://x/mcp" }
    timeout: soon
colour: blue
"#,
        );
        let joined = got.join("\n");
        assert!(joined.contains("listen: "), "{joined}");
        assert!(joined.contains("servers.a.stdio.argz: unknown field `argz`"), "{joined}");
        assert!(joined.contains("servers.b.timeout: "), "{joined}");
        assert!(joined.contains("colour: unknown field `colour`"), "{joined}");
        assert_eq!(got.len(), 4, "{joined}");
    }

    #[test]
    fn semantic_problems_are_all_reported() {
        let got = problems(
            r#"
servers:
  a:
    stdio: { command: x }
    http: { url: "http://x/mcp" }
  b:
    prefix: a
    http: { url: "ftp://x" }
  c: {}
  d__x:
    stdio: { command: y }
virtual_servers:
  eng:
    tools: ["[oops"]
"#,
        )
        .join("\n");
        for needle in [
            "servers.a: more than one transport",
            "servers.b.http.url: scheme `ftp`",
            "servers.b.prefix: prefix `a` is already used by server `a`",
            "servers.c: no transport",
            "servers.d__x: invalid server name",
            "virtual_servers.eng.tools[0]: invalid glob",
        ] {
            assert!(got.contains(needle), "missing {needle:?} in\n{got}");
        }
    }

    #[test]
    fn odd_keys_in_paths_do_not_panic() {
        let got = problems("servers:\n  a:\n    http: { url: 'http://x', headers: { \"X[]]\": [1] } }\n");
        assert!(!got.is_empty());
    }

    #[test]
    fn only_one_server_may_go_unprefixed() {
        let got = problems(
            "servers:\n  a: { prefix: '', stdio: { command: x } }\n  b: { prefix: '', stdio: { command: y } }\n",
        );
        assert!(got[0].contains("the empty prefix is already used by server `a`"), "{got:?}");
    }

    #[test]
    fn the_schema_names_the_top_level_fields() {
        let s = schema();
        let props = s["properties"].as_object().unwrap();
        for k in ["listen", "servers", "virtual_servers", "http", "sessions"] {
            assert!(props.contains_key(k), "{k}");
        }
    }
}
