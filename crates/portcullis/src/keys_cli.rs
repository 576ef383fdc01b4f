//! `portcullis keys create|list|rotate|revoke`: API keys in the config's store. A running
//! gateway on the same store sees every change within a second.

use anyhow::{Context, Result};
use clap::Subcommand;
use portcullis_gateway::config::Config;
use portcullis_policy::keyadmin::{self, record_json, when, Holder, KeyAdminError};
use portcullis_store::{now_ms, KeyRecord, Store};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

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
    let store = Store::open(config.store_location(config_path.as_deref())?).await?;
    let result = async {
        match command {
            KeysCommand::Create { user, team, app, roles, expires, json } => {
                let holder = Holder::new(user, team, app, roles).map_err(flags)?;
                let (record, key) = keyadmin::create(&store, &holder, expires).await?;
                print_new(&record, &key, json, "Created");
            }
            KeysCommand::List { json } => list(&store.keys().await?, json)?,
            KeysCommand::Rotate { id, grace, json } => {
                let grace = grace.unwrap_or(keys_settings.unwrap_or_default().rotation_grace);
                let (record, key, old) = keyadmin::rotate(&store, &id, grace).await?;
                print_new(&record, &key, json, "Rotated");
                eprintln!("The old key {id} keeps working until {}.", when(old.expires_at));
            }
            KeysCommand::Revoke { id } => {
                store.revoke_key(&id, now_ms()).await?;
                println!("Revoked key {id}: running gateways refuse it within a second.");
            }
        }
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}

/// The shared checks speak of "a user"; on the command line that is `--user`.
fn flags(e: KeyAdminError) -> anyhow::Error {
    let message = e.to_string();
    let message = message.replace("a user and/or an app", "--user NAME and/or --app NAME");
    let message = ["user", "team", "app", "role"].iter().fold(message, |m, f| {
        if m.starts_with(&format!("{f} `")) {
            format!("--{m}")
        } else {
            m
        }
    });
    anyhow::anyhow!(message)
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
