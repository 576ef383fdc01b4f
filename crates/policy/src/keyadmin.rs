//! Managing API keys: what `portcullis keys` and the admin API both do, so they cannot drift.

use crate::apikey::generate;
use portcullis_store::{now_ms, KeyRecord, NewKey, Store, StoreError};
use serde_json::{json, Value};
use std::time::{Duration, UNIX_EPOCH};

/// Why a key could not be created, rotated or revoked.
#[derive(Debug, thiserror::Error)]
pub enum KeyAdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("key {0} is revoked; create a new one instead")]
    Revoked(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who a key belongs to, checked: a user and/or an app, names without spaces.
#[derive(Debug, Clone, Default)]
pub struct Holder {
    pub user: Option<String>,
    pub team: Option<String>,
    pub app: Option<String>,
    pub roles: Vec<String>,
}

impl Holder {
    pub fn new(
        user: Option<String>,
        team: Option<String>,
        app: Option<String>,
        roles: Vec<String>,
    ) -> Result<Holder, KeyAdminError> {
        if user.is_none() && app.is_none() {
            return Err(KeyAdminError::Invalid("a key belongs to someone: give a user and/or an app".into()));
        }
        let named = [("user", &user), ("team", &team), ("app", &app)];
        for (what, name) in named.into_iter().filter_map(|(w, n)| Some((w, n.as_ref()?))) {
            check_name(what, name)?;
        }
        for role in &roles {
            check_name("role", role)?;
        }
        Ok(Holder { user, team, app, roles })
    }

    fn new_key(&self, id: &str, hash: &str, expires_at: Option<i64>) -> NewKey {
        NewKey {
            id: id.to_owned(),
            hash: hash.to_owned(),
            user: self.user.clone(),
            team: self.team.clone(),
            app: self.app.clone(),
            roles: self.roles.clone(),
            created_at: now_ms(),
            expires_at,
        }
    }
}

fn check_name(what: &str, name: &str) -> Result<(), KeyAdminError> {
    if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(KeyAdminError::Invalid(format!(
            "{what} `{name}`: use 1 to 128 characters without spaces or control characters"
        )));
    }
    Ok(())
}

/// A new key for `holder`: its record and the key itself (to show once).
pub async fn create(
    store: &Store,
    holder: &Holder,
    expires: Option<Duration>,
) -> Result<(KeyRecord, String), KeyAdminError> {
    let expires_at = expires.map(|d| now_ms().saturating_add(millis(d)));
    let issued = generate();
    store.insert_key(&holder.new_key(&issued.id, &issued.hash, expires_at)).await?;
    Ok((store.key(&issued.id).await?, issued.key))
}

/// Replaces key `id` with a new one for the same holder; the old one keeps working for
/// `grace`. Returns the new record, the new key, and the old record.
pub async fn rotate(store: &Store, id: &str, grace: Duration) -> Result<(KeyRecord, String, KeyRecord), KeyAdminError> {
    let old = store.key(id).await?;
    if old.revoked_at.is_some() {
        return Err(KeyAdminError::Revoked(id.to_owned()));
    }
    let holder =
        Holder { user: old.user.clone(), team: old.team.clone(), app: old.app.clone(), roles: old.roles.clone() };
    let issued = generate();
    let now = now_ms();
    // The new key lives as long as the old one was going to.
    let new = holder.new_key(&issued.id, &issued.hash, old.expires_at.filter(|&e| e > now));
    store.rotate_key(id, &new, now.saturating_add(millis(grace))).await?;
    Ok((store.key(&issued.id).await?, issued.key, store.key(id).await?))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A Unix-millisecond time as RFC 3339, or `never`.
pub fn when(ms: Option<i64>) -> String {
    match ms.and_then(|ms| u64::try_from(ms).ok()) {
        Some(ms) => humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string(),
        None => "never".to_owned(),
    }
}

/// A key's record as listings show it: never the key, never its hash.
pub fn record_json(k: &KeyRecord) -> Value {
    let now = now_ms();
    let status = if k.revoked_at.is_some() {
        "revoked"
    } else if !k.is_valid_at(now) {
        "expired"
    } else if k.replaced_by.is_some() {
        "rotating"
    } else {
        "active"
    };
    json!({
        "id": k.id, "user": k.user, "team": k.team, "app": k.app, "roles": k.roles,
        "created_at": when(Some(k.created_at)),
        "expires_at": k.expires_at.map(|e| when(Some(e))),
        "revoked_at": k.revoked_at.map(|e| when(Some(e))),
        "replaced_by": k.replaced_by,
        "status": status,
    })
}
