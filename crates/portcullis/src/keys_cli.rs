//! `portcullis keys create|list|rotate|revoke`: API keys in the config's store. A running
//! gateway on the same store sees every change within a second.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use portcullis_gateway::config::Config;
use portcullis_policy::apikey::generate;
use portcullis_store::{now_ms, KeyRecord, NewKey, Store};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key for a user and/or app; the key is printed once and only its hash is kept.
    Create {
        /// The user the key acts for.
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        team: Option<String>,
        /// The application (service, CI job, agent) the key belongs to.
        #[arg(long)]
        app: Option<String>,
        /// A role of the key's holder (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Expire the key after this long (e.g. 90d, 12h).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires: Option<Duration>,
        #[arg(long)]
        json: bool,
    },
    /// List the keys (ids and owners; never the keys themselves).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Replace a key with a new one for the same holder; the old one keeps working for the
    /// grace period (`auth.api_keys.rotation_grace`, 1h by default).
    Rotate {
        id: String,
        /// How long the old key keeps working (e.g. 10m; 0s ends it now).
        #[arg(long, value_parser = humantime::parse_duration)]
        grace: Option<Duration>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: running gateways refuse it within a second.
    Revoke { id: String },
}

pub async fn run(config_path: Option<PathBuf>, command: KeysCommand) -> Result<()> {
    let config = match &config_path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let keys_settings = config.auth.as_ref().and_then(|a| a.api_keys.clone());
    if keys_settings.is_none() {
        eprintln!(
            "note: {} does not accept API keys yet: add `auth: {{ api_keys: {{}} }}` to it",
            config_path.as_ref().map_or("the default config".to_owned(), |p| p.display().to_string())
        );
    }
    let store = Store::open(&config.store_path(config_path.as_deref())).await?;
    let result = match command {
        KeysCommand::Create { user, team, app, roles, expires, json } => {
            let holder = Holder::new(user, team, app, roles)?;
            let expires_at = expires.map(|d| now_ms().saturating_add(millis(d)));
            let issued = generate();
            store.insert_key(&holder.new_key(&issued.id, &issued.hash, expires_at)).await?;
            print_new(&store.key(&issued.id).await?, &issued.key, json, "Created");
            Ok(())
        }
        KeysCommand::List { json } => list(&store.keys().await?, json),
        KeysCommand::Rotate { id, grace, json } => {
            let old = store.key(&id).await?;
            if old.revoked_at.is_some() {
                bail!("key {id} is revoked; create a new one with `portcullis keys create`");
            }
            let grace = grace.unwrap_or(keys_settings.unwrap_or_default().rotation_grace);
            let holder = Holder {
                user: old.user.clone(),
                team: old.team.clone(),
                app: old.app.clone(),
                roles: old.roles.clone(),
            };
            let issued = generate();
            let now = now_ms();
            // The new key lives as long as the old one was going to.
            let new = holder.new_key(&issued.id, &issued.hash, old.expires_at.filter(|&e| e > now));
            store.rotate_key(&id, &new, now.saturating_add(millis(grace))).await?;
            print_new(&store.key(&issued.id).await?, &issued.key, json, "Rotated");
            let old = store.key(&id).await?;
            eprintln!("The old key {id} keeps working until {}.", when(old.expires_at));
            Ok(())
        }
        KeysCommand::Revoke { id } => {
            store.revoke_key(&id, now_ms()).await?;
            println!("Revoked key {id}: running gateways refuse it within a second.");
            Ok(())
        }
    };
    store.close().await;
    result
}

/// Who a key belongs to, checked.
struct Holder {
    user: Option<String>,
    team: Option<String>,
    app: Option<String>,
    roles: Vec<String>,
}

impl Holder {
    fn new(user: Option<String>, team: Option<String>, app: Option<String>, roles: Vec<String>) -> Result<Holder> {
        if user.is_none() && app.is_none() {
            bail!("a key belongs to someone: give --user NAME and/or --app NAME");
        }
        for (what, name) in [("--user", &user), ("--team", &team), ("--app", &app)]
            .into_iter()
            .filter_map(|(w, n)| Some((w, n.as_ref()?)))
        {
            check_name(what, name)?;
        }
        for role in &roles {
            check_name("--role", role)?;
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

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        bail!("{what} `{name}`: use 1 to 128 characters without spaces or control characters");
    }
    Ok(())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn when(ms: Option<i64>) -> String {
    match ms.and_then(|ms| u64::try_from(ms).ok()) {
        Some(ms) => humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string(),
        None => "never".to_owned(),
    }
}

fn record_json(k: &KeyRecord) -> Value {
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

fn print_new(record: &KeyRecord, key: &str, json: bool, verb: &str) {
    if json {
        let mut v = record_json(record);
        v["key"] = json!(key);
        println!("{v}");
        return;
    }
    let owner = [("user", &record.user), ("team", &record.team), ("app", &record.app)]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
        .collect::<Vec<_>>()
        .join(", ");
    println!("{verb} API key {} ({owner}; expires {}).", record.id, when(record.expires_at));
    println!("The key is shown once: store it now. Callers send it as `Authorization: Bearer <key>`.");
    println!("{key}");
}

fn list(keys: &[KeyRecord], json: bool) -> Result<()> {
    if json {
        let all: Vec<Value> = keys.iter().map(record_json).collect();
        println!("{}", serde_json::to_string_pretty(&all).context("encoding the key list")?);
        return Ok(());
    }
    println!(
        "{:<16}  {:<9}  {:<16}  {:<12}  {:<16}  {:<20}  EXPIRES",
        "ID", "STATUS", "USER", "TEAM", "APP", "CREATED"
    );
    for k in keys {
        let v = record_json(k);
        let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        println!(
            "{:<16}  {:<9}  {:<16}  {:<12}  {:<16}  {:<20}  {}",
            k.id,
            v["status"].as_str().unwrap_or_default(),
            dash(&k.user),
            dash(&k.team),
            dash(&k.app),
            when(Some(k.created_at)),
            when(k.expires_at)
        );
    }
    Ok(())
}
