//! Assembles the running gateway: the HTTP front door (MCP, health), the stdio front
//! door, and config hot reload.

use crate::audit::{Recorder, Sinks};
use crate::config::{Config, ConfigError};
use crate::connect::{ConnectState, Connector};
use crate::credentials::Credentials;
use crate::door::{self, admit, check_listen, Door, DoorError, METADATA_PATH};
use crate::federation::Federation;
use crate::flows::Taints;
use crate::metrics::Metrics;
use crate::pins::Pins;
use crate::pipeline::Gateway;
use crate::traces::Traces;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use base64::Engine;
use portcullis_mcp::client::{Health, ListKind};
use portcullis_mcp::server::http::{routes, Endpoints, HttpOptions, McpService};
use portcullis_mcp::server::session::SessionCodec;
use portcullis_mcp::server::Streams;
use portcullis_store::Store;
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source} (is another process using the port? choose another with --listen)")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the session key in ${var} is not valid: {why} (generate one with `openssl rand -base64 32`)")]
    SessionKey { var: String, why: String },
    #[error(transparent)]
    Door(#[from] DoorError),
    #[error("{0}")]
    Vault(#[from] portcullis_vault::VaultError),
    #[error("{0}")]
    Store(#[from] portcullis_store::StoreError),
}

/// The parts every front door shares.
pub struct Core {
    pub gateway: Arc<Gateway>,
    pub streams: Arc<Streams>,
    /// The vault's secrets the upstreams' transports refer to.
    credentials: Arc<Credentials>,
    /// Pinned upstream definitions (rug-pull detection).
    pins: Arc<Pins>,
    /// Issues the links users connect their accounts with (HTTP door only).
    connector: Option<Arc<Connector>>,
    /// The vault version the federation was last built from.
    built_from: AtomicI64,
    http: reqwest::Client,
    config_path: Option<PathBuf>,
    /// The HTTP door's allowed origins, updated on reload (unset for stdio).
    origins: std::sync::OnceLock<Arc<arc_swap::ArcSwap<Vec<String>>>>,
}

impl Core {
    /// Starts the upstream connections for `config`.
    pub fn start(
        config: Config,
        config_path: Option<PathBuf>,
        credentials: Arc<Credentials>,
        connector: Option<Arc<Connector>>,
        Stored { pins, taints, audit }: Stored,
    ) -> Arc<Core> {
        let streams = Arc::new(Streams::default());
        // The builder only fails without a TLS backend, which is compiled in.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let metrics = config.metrics.enabled.then(|| Arc::new(Metrics::default()));
        let traces = Traces::start(&config.traces, &crate::audit::instance_name()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "traces are off");
            Traces::off()
        });
        let federation =
            Federation::build(Arc::new(config), None, &streams, &http, &credentials, connector.as_ref(), &pins);
        Arc::new(Core {
            gateway: Arc::new(Gateway::new(
                federation,
                streams.clone(),
                http.clone(),
                taints,
                (audit, metrics, traces),
            )),
            streams,
            built_from: AtomicI64::new(credentials.secrets().version()),
            credentials,
            connector,
            pins,
            http,
            config_path,
            origins: std::sync::OnceLock::new(),
        })
    }

    /// Applies a new config: unchanged upstreams keep their connections; in-flight calls
    /// finish on the old federation.
    pub fn apply(&self, config: Config) {
        let old = self.gateway.federation();
        if old.config.listen != config.listen {
            tracing::warn!(old = %old.config.listen, new = %config.listen, "`listen` changes take effect after a restart");
        }
        if old.config.http.max_body_bytes != config.http.max_body_bytes {
            tracing::warn!("`http.max_body_bytes` changes take effect after a restart");
        }
        if let Some(origins) = self.origins.get() {
            origins.store(Arc::new(config.http.allowed_origins.clone()));
        }
        if old.config.auth != config.auth || old.config.store != config.store || old.config.vault != config.vault {
            tracing::warn!("`auth`, `store` and `vault` changes take effect after a restart");
        }
        if old.config.audit != config.audit
            || old.config.region != config.region
            || old.config.redis != config.redis
            || old.config.traces != config.traces
        {
            tracing::warn!("`audit`, `region`, `redis` and `traces` changes take effect after a restart");
        }
        if !self.credentials.has_vault() && config.uses_vault() {
            tracing::error!(
                "the config now refers to vault secrets, but the gateway started without a vault key: restart it with ${} set",
                config.vault.key_env
            );
        }
        if !old.config.pins_anything() && config.pins_anything() {
            tracing::warn!("pinning was off for every server at start; turning it on takes effect after a restart");
        }
        if old.config.sessions != config.sessions {
            tracing::warn!("`sessions` changes take effect after a restart");
        }
        self.rebuild(Arc::new(config));
        tracing::info!("configuration reloaded");
    }

    /// Rebuilds the federation for `config` with the secrets last read; upstreams whose
    /// config and resolved credentials are unchanged keep their connections.
    fn rebuild(&self, config: Arc<Config>) {
        let old = self.gateway.federation();
        self.built_from.store(self.credentials.secrets().version(), Ordering::Release);
        let federation = Federation::build(
            config,
            Some(&old),
            &self.streams,
            &self.http,
            &self.credentials,
            self.connector.as_ref(),
            &self.pins,
        );
        self.gateway.replace(federation);
        for kind in ListKind::ALL {
            self.streams.broadcast(kind.notification(), None);
        }
    }

    /// Follows the vault: when a secret is set, rotated or deleted (by any process), the
    /// upstreams using it reconnect with the new value; the others are untouched.
    pub fn follow_secrets(self: &Arc<Self>, stop: CancellationToken) {
        if !self.credentials.has_vault() {
            return;
        }
        let core = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SECRETS_POLL);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(e) = core.credentials.refresh().await {
                    tracing::error!(error = %e, "cannot read the vault; the secrets last read stay in force");
                }
                // Compared with what the federation was built from, not with the last read:
                // a renewed user token or an admin API write reads the vault too.
                if core.credentials.secrets().version() != core.built_from.load(Ordering::Acquire) {
                    core.rebuild(core.gateway.federation().config.clone());
                    tracing::info!("vault secrets changed; upstreams using them reconnect");
                }
            }
        });
    }

    /// Watches the config file and applies edits; a broken edit is logged with the same
    /// problems `portcullis check` prints, and the config in force stays.
    pub fn watch_config(self: &Arc<Self>, stop: CancellationToken) {
        let Some(path) = self.config_path.clone() else {
            return;
        };
        let core = self.clone();
        tokio::spawn(async move {
            let mut seen = fingerprint(&path);
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let now = fingerprint(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                match Config::load(&path) {
                    Ok(config) => {
                        if *core.gateway.federation().config != config {
                            core.apply(config);
                        }
                    }
                    Err(e) => {
                        for p in &e.problems {
                            tracing::error!(problem = %p, "config edit rejected; the previous config stays in force");
                        }
                    }
                }
            }
        });
    }

    pub fn shutdown(&self) {
        self.gateway.federation().shutdown();
    }
}

/// How often a running gateway looks for vault changes (one indexed read).
const SECRETS_POLL: Duration = Duration::from_millis(500);

/// Changes when the file's content may have changed.
fn fingerprint(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The session codec: sealed with the shared key when one is configured.
fn session_codec(key: Option<&[u8; 32]>, config: &Config) -> SessionCodec {
    let max_age = config.sessions.max_age.as_secs();
    match key {
        Some(key) => SessionCodec::new(key, max_age),
        None => {
            let var = &config.sessions.key_env;
            tracing::info!("${var} is not set: sessions are sealed with a random key and only valid on this process");
            SessionCodec::ephemeral(max_age)
        }
    }
}

/// The shared sessions key, if configured.
fn session_key(config: &Config) -> Result<Option<[u8; 32]>, StartError> {
    let var = &config.sessions.key_env;
    let Ok(value) = std::env::var(var) else { return Ok(None) };
    let bad = |why: &str| StartError::SessionKey { var: var.clone(), why: why.to_owned() };
    let bytes = base64::engine::general_purpose::STANDARD.decode(value.trim()).map_err(|_| bad("it is not base64"))?;
    bytes.try_into().map(Some).map_err(|_| bad("it must decode to exactly 32 bytes"))
}

/// The connect-link sealer: a key derived from the sessions key (so replicas sharing it
/// accept each other's links), never the sessions key itself; and where browsers reach
/// this gateway (`auth.resource`'s origin, else the address it listens on).
fn connector(config: &Config, session_key: Option<&[u8; 32]>, addr: SocketAddr) -> Connector {
    use sha2::Digest;
    let key: Option<[u8; 32]> =
        session_key.map(|k| sha2::Sha256::digest([b"portcullis connect links v1\0".as_slice(), k].concat()).into());
    let origin = config
        .auth
        .as_ref()
        .and_then(|a| a.resource.as_deref())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|| format!("http://{addr}"));
    Connector::new(key.as_ref(), origin)
}

/// A gateway serving HTTP.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub core: Arc<Core>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, stops the upstreams.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.stop.cancel();
        self.wait().await
    }

    /// Waits until the server stops (Ctrl-C handling is the caller's).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Runs until stopped; then ends the notification streams, gives in-flight requests
    /// up to [`SHUTDOWN_GRACE`] to finish, and stops the upstreams.
    pub async fn wait(mut self) -> std::io::Result<()> {
        let result = tokio::select! {
            r = &mut self.task => r.unwrap_or(Ok(())),
            _ = self.stop.cancelled() => {
                self.core.streams.close_all();
                match tokio::time::timeout(SHUTDOWN_GRACE, &mut self.task).await {
                    Ok(r) => r.unwrap_or(Ok(())),
                    Err(_) => {
                        tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; closing them");
                        self.task.abort();
                        Ok(())
                    }
                }
            }
        };
        // Every exchange is over: its audit event is queued, and now written; its spans sent.
        self.core.gateway.audit().flush().await;
        self.core.gateway.traces().shutdown().await;
        self.core.shutdown();
        result
    }
}

type Service = McpService<Gateway>;

/// How long in-flight requests get to finish on shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Starts the HTTP gateway on `config.listen` (or `listen` when given).
pub async fn serve_http(
    config: Config,
    config_path: Option<PathBuf>,
    listen: Option<SocketAddr>,
) -> Result<RunningServer, StartError> {
    let addr = listen.unwrap_or(config.listen);
    check_listen(&config, addr)?;
    // One database pool for the key ring and the vault.
    let store = tokio::sync::OnceCell::new();
    let door = Arc::new(Door::open(&config, config_path.as_deref(), &door::http_client(), &store).await?);
    let key = session_key(&config)?;
    let codec = Arc::new(session_codec(key.as_ref(), &config));
    let options = HttpOptions::default();
    options.allowed_origins.store(Arc::new(config.http.allowed_origins.clone()));
    let max_body = config.http.max_body_bytes;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
    let credentials = Arc::new(Credentials::open(&config, config_path.as_deref(), &store).await?);
    let state = open_state(&config, config_path.as_deref(), &store).await?;
    let connector = Arc::new(connector(&config, key.as_ref(), addr));
    let core = Core::start(config, config_path, credentials, Some(connector), state);
    door.record_to(core.gateway.clone());
    let _ = core.origins.set(options.allowed_origins.clone());
    let service = Arc::new(McpService::new(core.gateway.clone(), codec, core.streams.clone(), options));
    let app = app(service, core.clone(), door.clone(), max_body);
    let stop = CancellationToken::new();
    core.watch_config(stop.clone());
    core.follow_secrets(stop.clone());
    core.pins.follow(core.streams.clone(), stop.clone());
    door.follow_keys(stop.clone());
    door.follow_jwks(stop.clone());
    let graceful = stop.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(async move { graceful.cancelled().await }).await
    });
    tracing::info!("Portcullis listening on http://{addr}/mcp");
    Ok(RunningServer { addr, core, stop, task })
}

/// Serves one MCP client on stdin/stdout until stdin closes.
pub async fn serve_stdio(config: Config, config_path: Option<PathBuf>) -> Result<(), StartError> {
    let max_line = config.http.max_body_bytes;
    let store = tokio::sync::OnceCell::new();
    let credentials = Arc::new(Credentials::open(&config, config_path.as_deref(), &store).await?);
    let state = open_state(&config, config_path.as_deref(), &store).await?;
    // No HTTP door, no connect pages: users without a token are told how to get one stored.
    let core = Core::start(config, config_path, credentials, None, state);
    let stop = CancellationToken::new();
    core.watch_config(stop.clone());
    core.follow_secrets(stop.clone());
    core.pins.follow(core.streams.clone(), stop.clone());
    portcullis_mcp::server::stdio::serve(
        core.gateway.clone(),
        core.streams.clone(),
        tokio::io::stdin(),
        tokio::io::stdout(),
        max_line,
    )
    .await;
    stop.cancel();
    core.gateway.audit().flush().await;
    core.gateway.traces().shutdown().await;
    core.shutdown();
    Ok(())
}

/// What the pipeline keeps in the store.
pub struct Stored {
    /// Pinned definitions (when some server pins them, the default).
    pins: Arc<Pins>,
    /// What sessions took in (when flows are on, the default).
    taints: Taints,
    /// The audit log (on by default).
    audit: Recorder,
}

/// Opens what the pipeline keeps in the store; the store itself only when something uses it.
async fn open_state(
    config: &Config,
    config_path: Option<&Path>,
    store: &tokio::sync::OnceCell<Store>,
) -> Result<Stored, StartError> {
    let (pinning, flows) = (config.pins_anything(), config.flows.enabled);
    let audit = &config.audit;
    let stored_audit = audit.enabled && audit.store;
    let store = if pinning || flows || stored_audit {
        Some(Store::shared(store, &config.store_location(config_path)?).await?)
    } else {
        None
    };
    let pins = match (&store, pinning) {
        (Some(store), true) => Pins::open(store.clone()).await?,
        _ => Pins::off(),
    };
    let taints = Taints::new(store.clone().filter(|_| flows));
    let base = config_path.and_then(Path::parent).unwrap_or(Path::new(""));
    let sinks = Sinks { store: store.filter(|_| stored_audit), file: audit.file.as_ref().map(|f| base.join(f)) };
    let audit = Recorder::start(audit, config.region.clone(), sinks);
    Ok(Stored { pins: Arc::new(pins), taints, audit })
}

fn app(service: Arc<Service>, core: Arc<Core>, door: Arc<Door>, max_body: usize) -> axum::Router {
    let gateway = core.gateway.clone();
    let virtual_servers: Endpoints = Arc::new(move |name| gateway.federation().virtual_servers.contains_key(name));
    // Every MCP and admin route passes the door first; health, the OAuth metadata and the
    // connect pages (a sealed, user-bound ticket is their credential) do not.
    let connect = core.connector.clone().map(|connector| {
        crate::connect::routes(ConnectState {
            gateway: core.gateway.clone(),
            credentials: core.credentials.clone(),
            connector,
            http: core.http.clone(),
        })
    });
    let admitted = routes(service, max_body, virtual_servers)
        .merge(crate::admin::routes(
            door.clone(),
            core.credentials.clone(),
            core.pins.clone(),
            core.gateway.audit().store().cloned(),
        ))
        .layer(axum::middleware::from_fn_with_state(door.clone(), admit));
    let metadata = axum::Router::new()
        .route(METADATA_PATH, get(door::metadata))
        .route(&format!("{METADATA_PATH}/{{*resource}}"), get(door::metadata))
        .with_state(door);
    admitted.merge(metadata).merge(connect.unwrap_or_default()).merge(
        axum::Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(core),
    )
}

/// Prometheus metrics (404 when `metrics.enabled` is off).
async fn metrics(State(core): State<Arc<Core>>) -> Response {
    let gateway = &core.gateway;
    match gateway.metrics() {
        Some(metrics) => {
            let text = metrics.render(&gateway.federation(), gateway.audit());
            ([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
        }
        None => (StatusCode::NOT_FOUND, "metrics are off (`metrics: { enabled: false }`)").into_response(),
    }
}

/// Ready once every upstream has finished its first connection attempt; lists each
/// upstream's health. A down upstream does not make the gateway unready: the others serve.
async fn readyz(State(core): State<Arc<Core>>) -> Response {
    let fed = core.gateway.federation();
    let mut servers = serde_json::Map::new();
    let mut starting = false;
    let mut down = 0;
    for m in &fed.members {
        let health = m.upstream.health();
        let (state, detail) = match &health {
            // No shared connection to judge by: each user's opens on their first call.
            _ if m.per_user_only() => ("per_user", None),
            Health::Starting => {
                starting = true;
                ("starting", None)
            }
            Health::Ready => ("ready", None),
            Health::Degraded(why) => ("degraded", Some(why.clone())),
            Health::Down(why) => {
                down += 1;
                ("down", Some(why.clone()))
            }
        };
        servers.insert(
            m.name.clone(),
            json!({
                "state": state,
                "detail": detail,
                "transport": m.upstream.spec().kind(),
                "protocol": m.upstream.server_info().map(|i| i.protocol_version),
                "restarts": m.upstream.restarts(),
                "breaker": m.breaker.state(),
                "caller_connections": m.caller_connections(),
            }),
        );
    }
    let status = if starting {
        "starting"
    } else if down > 0 {
        "degraded"
    } else {
        "ready"
    };
    let code = if starting { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let limits = core.gateway.limits_state();
    (code, Json(json!({ "status": status, "servers": servers, "limits": limits }))).into_response()
}
