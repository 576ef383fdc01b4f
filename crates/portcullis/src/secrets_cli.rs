//! `portcullis secrets set|list|rotate|delete|rekey`: the credential vault in the config's
//! store. Values are read from stdin, an environment variable or a file, never from the
//! command line (shell history and the process list would keep them), and never printed.
//! A running gateway on the same store picks every change up within a second.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use portcullis_gateway::config::{Config, SecretRef};
use portcullis_policy::keyadmin::when;
use portcullis_store::Store;
use portcullis_vault::{KeySource, SecretInfo, Vault, VaultKey};
use secrecy::SecretString;
use serde_json::json;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Store a secret (or give it a new value). Reads the value from stdin unless
    /// --from-env or --from-file says otherwise.
    Set {
        name: String,
        #[command(flatten)]
        from: ValueFrom,
        /// Store this user's own value (for servers with `auth.user_token`).
        #[arg(long)]
        user: Option<String>,
    },
    /// List the secrets (names, versions, which config fields use them; never values).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Give an existing secret a new value; upstreams using it reconnect with it.
    Rotate {
        name: String,
        #[command(flatten)]
        from: ValueFrom,
        /// Rotate this user's own value.
        #[arg(long)]
        user: Option<String>,
    },
    /// Delete a secret; upstreams that use it go down, saying which secret is missing.
    Delete {
        name: String,
        /// Delete this user's own value.
        #[arg(long)]
        user: Option<String>,
    },
    /// Seal every secret under a new vault key (then give the gateways the new key).
    Rekey {
        /// The environment variable holding the new key.
        #[arg(long, conflicts_with = "new_key_file", required_unless_present = "new_key_file")]
        new_key_env: Option<String>,
        /// A file holding the new key.
        #[arg(long)]
        new_key_file: Option<PathBuf>,
    },
}

/// Where a secret's value comes from.
#[derive(Args)]
pub struct ValueFrom {
    /// Read the value from this environment variable.
    #[arg(long, conflicts_with = "from_file")]
    from_env: Option<String>,
    /// Read the value from this file (a trailing newline is dropped).
    #[arg(long)]
    from_file: Option<PathBuf>,
}

impl ValueFrom {
    fn read(&self, name: &str) -> Result<SecretString> {
        let mut text = match (&self.from_env, &self.from_file) {
            (Some(var), _) => std::env::var(var).with_context(|| format!("${var} is not set (or not UTF-8)"))?,
            (None, Some(path)) => {
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
            }
            (None, None) => {
                let stdin = std::io::stdin();
                let mut text = String::new();
                if stdin.is_terminal() {
                    eprintln!("Value of `{name}` (one line; it is not stored anywhere but the vault):");
                    stdin.read_line(&mut text).context("reading the value from the terminal")?;
                } else {
                    stdin.lock().read_to_string(&mut text).context("reading the value from stdin")?;
                }
                text
            }
        };
        // One trailing newline is the file's or the terminal's, not the secret's.
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Ok(SecretString::from(text))
    }
}

pub async fn run(config_path: Option<PathBuf>, command: SecretsCommand) -> Result<()> {
    let config = match &config_path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let key = VaultKey::load(&config.vault_key_source(config_path.as_deref()))?;
    let store = Store::open(config.store_location(config_path.as_deref())?).await?;
    let vault = Vault::open(store.clone(), &key).await?;
    let refs = config.secret_refs();
    let result = async {
        match command {
            SecretsCommand::Set { name, from, user } => {
                let stored = portcullis_vault::stored_name(&name, user.as_deref());
                let version = vault.set(&stored, &from.read(&name)?).await?;
                println!("Stored secret `{name}`{} (version {version}).", for_user(user.as_deref()));
                print_users(&name, &refs);
            }
            SecretsCommand::Rotate { name, from, user } => {
                let stored = portcullis_vault::stored_name(&name, user.as_deref());
                let version = vault.rotate(&stored, &from.read(&name)?).await?;
                println!("Rotated secret `{name}`{} (version {version}).", for_user(user.as_deref()));
                print_users(&name, &refs);
            }
            SecretsCommand::Delete { name, user } => {
                vault.delete(&portcullis_vault::stored_name(&name, user.as_deref())).await?;
                println!("Deleted secret `{name}`{}.", for_user(user.as_deref()));
                let users: Vec<&str> = refs.iter().filter(|r| r.name == name).map(|r| r.path.as_str()).collect();
                if !users.is_empty() {
                    eprintln!("warning: still referred to by {}; those servers go down", users.join(", "));
                }
            }
            SecretsCommand::List { json } => list(&vault.list().await?, &refs, json)?,
            SecretsCommand::Rekey { new_key_env, new_key_file } => {
                let source = match (new_key_env, new_key_file) {
                    (Some(var), _) => KeySource::Env(var),
                    (None, Some(path)) => KeySource::File(path),
                    (None, None) => bail!("name the new key with --new-key-env VAR or --new-key-file FILE"),
                };
                let new = VaultKey::load(&source)?;
                let count = vault.rekey(&new).await?;
                println!("Sealed {count} secret(s) under the key from {source}.");
                println!("Give the gateways that key now (`vault.key_env` / `vault.key_file`): the old one no longer opens the vault.");
            }
        }
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}

fn for_user(user: Option<&str>) -> String {
    user.map(|u| format!(" for user `{u}`")).unwrap_or_default()
}

fn print_users(name: &str, refs: &[SecretRef]) {
    let users: Vec<&str> = refs.iter().filter(|r| r.name == name).map(|r| r.path.as_str()).collect();
    if users.is_empty() {
        println!("No server of this config uses it yet: refer to it as `secret:{name}`.");
    } else {
        println!("Used by {}; running gateways reconnect those servers with it within a second.", users.join(", "));
    }
}

fn list(secrets: &[SecretInfo], refs: &[SecretRef], json: bool) -> Result<()> {
    let used_by =
        |name: &str| -> Vec<&str> { refs.iter().filter(|r| r.name == name).map(|r| r.path.as_str()).collect() };
    let missing: Vec<&SecretRef> = refs.iter().filter(|r| !secrets.iter().any(|s| s.name == r.name)).collect();

    if json {
        let all: Vec<_> = secrets
            .iter()
            .map(|s| {
                let (name, user) = portcullis_vault::split_stored(&s.name);
                json!({
                    "name": name,
                    "user": user,
                    "version": s.version,
                    "created": when(Some(s.created_at)),
                    "updated": when(Some(s.updated_at)),
                    "used_by": used_by(name),
                })
            })
            .collect();
        let missing: Vec<_> = missing.iter().map(|r| json!({ "name": r.name, "used_by": r.path })).collect();
        let out = json!({ "secrets": all, "missing": missing });
        println!("{}", serde_json::to_string_pretty(&out).context("encoding the secret list")?);
        return Ok(());
    }
    println!("{:<32}  {:<20}  {:>7}  {:<20}  {:<20}  USED BY", "NAME", "USER", "VERSION", "CREATED", "UPDATED");
    for s in secrets {
        let (name, user) = portcullis_vault::split_stored(&s.name);
        let users = used_by(name);
        println!(
            "{:<32}  {:<20}  {:>7}  {:<20}  {:<20}  {}",
            name,
            user.unwrap_or("-"),
            s.version,
            when(Some(s.created_at)),
            when(Some(s.updated_at)),
            if users.is_empty() { "-".to_owned() } else { users.join(", ") }
        );
    }
    for r in missing {
        eprintln!("missing: {} refers to `{}`, which is not set (`portcullis secrets set {}`)", r.path, r.name, r.name);
    }
    Ok(())
}
