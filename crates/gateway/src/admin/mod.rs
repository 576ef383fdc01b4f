//! The admin API: API keys, vault secrets, pinned tool definitions and the audit log, the
//! same operations as `portcullis keys`, `portcullis secrets`, `portcullis tools` ([`tools`])
//! and `portcullis audit` ([`audit`]).
//!
//! `GET /admin/keys`, `POST /admin/keys` (`{user, team, app, roles, expires}`),
//! `POST /admin/keys/{id}/rotate` (`{grace}`), `DELETE /admin/keys/{id}`;
//! `GET /admin/secrets` (names, users, versions: never values), `PUT /admin/secrets/{name}`
//! (`{value, user}`), `DELETE /admin/secrets/{name}` (`?user=`). Callers pass the front door
//! like everyone else and must hold the `admin` role; a gateway without `auth` (anonymous,
//! loopback only) lets its local callers administer it.

mod audit;
mod tools;

use crate::credentials::Credentials;
use crate::door::Door;
use crate::pins::Pins;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json};
use portcullis_core::Principal;
use portcullis_policy::keyadmin::{self, record_json, Holder, KeyAdminError};
use portcullis_store::{now_ms, Store, StoreError};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The role that may use the admin API.
pub const ADMIN_ROLE: &str = "admin";

pub fn routes(door: Arc<Door>, credentials: Arc<Credentials>, pins: Arc<Pins>, audit: Option<Store>) -> axum::Router {
    let keys = axum::Router::new()
        .route("/admin/keys", get(list).post(create))
        .route("/admin/keys/{id}/rotate", post(rotate))
        .route("/admin/keys/{id}", delete(revoke))
        .with_state(door.clone());
    let secrets = axum::Router::new()
        .route("/admin/secrets", get(list_secrets))
        .route("/admin/secrets/{name}", put(set_secret).delete(delete_secret))
        .with_state((door.clone(), credentials));
    keys.merge(secrets).merge(tools::routes(door.clone(), pins)).merge(audit::routes(door, audit))
}

type Caller = Option<Extension<Arc<Principal>>>;

/// An admin API error: a status and a message for the caller.
struct Problem(StatusCode, String);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let Problem(status, message) = self;
        (status, Json(json!({ "error": status.canonical_reason().unwrap_or("error"), "message": message })))
            .into_response()
    }
}

impl From<KeyAdminError> for Problem {
    fn from(e: KeyAdminError) -> Self {
        let status = match &e {
            KeyAdminError::Invalid(_) => StatusCode::BAD_REQUEST,
            KeyAdminError::Revoked(_) => StatusCode::CONFLICT,
            KeyAdminError::Store(StoreError::NoSuchKey(_)) => StatusCode::NOT_FOUND,
            KeyAdminError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Problem(status, e.to_string())
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        KeyAdminError::from(e).into()
    }
}

/// Refuses callers without the `admin` role (unless the gateway is open to all).
fn require_admin(door: &Door, caller: &Caller) -> Result<(), Problem> {
    let is_admin = caller.as_ref().is_some_and(|Extension(p)| p.roles.iter().any(|r| r == ADMIN_ROLE));
    if !is_admin && !door.is_open_to_all() {
        return Err(Problem(
            StatusCode::FORBIDDEN,
            "the admin API needs a caller with the `admin` role (`portcullis keys create --role admin`)".into(),
        ));
    }
    Ok(())
}

/// The key store, if `caller` may administer it.
fn admitted<'d>(door: &'d Door, caller: &Caller) -> Result<&'d Store, Problem> {
    require_admin(door, caller)?;
    door.key_store().ok_or_else(|| {
        Problem(
            StatusCode::NOT_FOUND,
            "API keys are off: add `auth: { api_keys: {} }` to the config and restart".into(),
        )
    })
}

async fn list(State(door): State<Arc<Door>>, caller: Caller) -> Result<Response, Problem> {
    let keys = admitted(&door, &caller)?.keys().await?;
    Ok(Json(keys.iter().map(record_json).collect::<Vec<_>>()).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKeyBody {
    user: Option<String>,
    team: Option<String>,
    app: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    /// e.g. `90d`.
    expires: Option<String>,
}

fn duration(field: &str, text: Option<&str>) -> Result<Option<Duration>, Problem> {
    text.map(|t| {
        humantime::parse_duration(t).map_err(|e| {
            Problem(StatusCode::BAD_REQUEST, format!("{field}: `{t}` is not a duration like 90d or 10m: {e}"))
        })
    })
    .transpose()
}

async fn create(
    State(door): State<Arc<Door>>,
    caller: Caller,
    Json(body): Json<NewKeyBody>,
) -> Result<Response, Problem> {
    let store = admitted(&door, &caller)?;
    let expires = duration("expires", body.expires.as_deref())?;
    let holder = Holder::new(body.user, body.team, body.app, body.roles)?;
    let (record, key) = keyadmin::create(store, &holder, expires).await?;
    door.reload_keys().await;
    let mut v = record_json(&record);
    v["key"] = json!(key);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// How long the old key keeps working, e.g. `10m`; default `auth.api_keys.rotation_grace`.
    grace: Option<String>,
}

async fn rotate(
    State(door): State<Arc<Door>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<Json<RotateBody>>,
) -> Result<Response, Problem> {
    let store = admitted(&door, &caller)?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let grace = duration("grace", body.grace.as_deref())?.unwrap_or_else(|| door.rotation_grace());
    let (record, key, old) = keyadmin::rotate(store, &id, grace).await?;
    door.reload_keys().await;
    let mut v = record_json(&record);
    v["key"] = json!(key);
    v["old_key_valid_until"] = json!(keyadmin::when(old.expires_at));
    Ok(Json(v).into_response())
}

async fn revoke(State(door): State<Arc<Door>>, caller: Caller, Path(id): Path<String>) -> Result<Response, Problem> {
    admitted(&door, &caller)?.revoke_key(&id, now_ms()).await?;
    door.reload_keys().await;
    Ok(Json(json!({ "id": id, "status": "revoked" })).into_response())
}

type SecretsState = (Arc<Door>, Arc<Credentials>);

impl From<portcullis_vault::VaultError> for Problem {
    fn from(e: portcullis_vault::VaultError) -> Self {
        use portcullis_vault::VaultError as V;
        let status = match &e {
            V::BadName { .. } | V::Empty(_) => StatusCode::BAD_REQUEST,
            V::Store(StoreError::NoSuchSecret(_)) => StatusCode::NOT_FOUND,
            V::NoKey { .. } | V::BadKey { .. } | V::WrongKey { .. } => StatusCode::CONFLICT,
            V::Damaged(_) | V::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Problem(status, e.to_string())
    }
}

/// The vault, if `caller` may administer it and the gateway has one.
fn vault_of<'c>(state: &'c SecretsState, caller: &Caller) -> Result<&'c portcullis_vault::Vault, Problem> {
    require_admin(&state.0, caller)?;
    state.1.vault().ok_or_else(|| {
        Problem(
            StatusCode::CONFLICT,
            "the gateway has no vault: start it with its key (`vault.key_env` / `vault.key_file`)".into(),
        )
    })
}

/// Names, users and versions of the secrets; never their values.
async fn list_secrets(State(state): State<SecretsState>, caller: Caller) -> Result<Response, Problem> {
    let all = vault_of(&state, &caller)?.list().await?;
    let shown: Vec<_> = all
        .iter()
        .map(|s| {
            let (name, user) = portcullis_vault::split_stored(&s.name);
            json!({
                "name": name,
                "user": user,
                "version": s.version,
                "created": keyadmin::when(Some(s.created_at)),
                "updated": keyadmin::when(Some(s.updated_at)),
            })
        })
        .collect();
    Ok(Json(shown).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretBody {
    value: secrecy::SecretString,
    /// Store this user's own value (servers with `auth.user_token`).
    user: Option<String>,
}

#[derive(Deserialize, Default)]
struct SecretQuery {
    user: Option<String>,
}

async fn set_secret(
    State(state): State<SecretsState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<SecretBody>,
) -> Result<Response, Problem> {
    let vault = vault_of(&state, &caller)?;
    let version = vault.set(&portcullis_vault::stored_name(&name, body.user.as_deref()), &body.value).await?;
    // Read at once, so this gateway's upstreams follow without waiting for the poll.
    if state.1.refresh().await? {
        tracing::info!(secret = %name, "a secret was set through the admin API");
    }
    Ok(Json(json!({ "name": name, "user": body.user, "version": version })).into_response())
}

async fn delete_secret(
    State(state): State<SecretsState>,
    caller: Caller,
    Path(name): Path<String>,
    axum::extract::Query(query): axum::extract::Query<SecretQuery>,
) -> Result<Response, Problem> {
    vault_of(&state, &caller)?.delete(&portcullis_vault::stored_name(&name, query.user.as_deref())).await?;
    Ok(Json(json!({ "name": name, "user": query.user, "status": "deleted" })).into_response())
}
