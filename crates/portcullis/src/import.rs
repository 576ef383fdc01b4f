//! `portcullis import`: moves the MCP servers `portcullis scan` finds behind the gateway.
//! Each server becomes an entry of the gateway config; the plaintext secrets in its `env`
//! and headers move into the vault (the entry names them `secret:NAME`); each client file
//! that could be edited safely loses the server and gains one entry that starts the
//! gateway, after a backup of the file. `--dry-run` shows every change as a diff first, with
//! secret values masked.

use crate::scan::clients::Server;
use crate::scan::findings::{arg_parts, behind_gateway, secret_in};
use anyhow::{bail, Context, Result};
use indexmap::IndexMap;
use portcullis_gateway::config::Config;
use portcullis_guard::secrets::SecretScanner;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The home directory whose client configs to import from (default: $HOME).
    #[arg(long)]
    home: Option<PathBuf>,
    /// A project directory with project-level configs (repeatable; default: the current directory).
    #[arg(long = "project")]
    projects: Vec<PathBuf>,
    /// Only the servers of these names (as the clients call them; repeatable).
    #[arg(long = "server")]
    only: Vec<String>,
    /// Show what would change, as diffs (secret values masked), and change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// A secret to move into the vault.
struct Moved {
    name: String,
    value: String,
    /// Where it was: `env GITHUB_TOKEN of server `github` (Claude Desktop)`.
    origin: String,
}

/// What an import does.
#[derive(Default)]
struct Plan {
    /// Gateway server name -> its config entry.
    servers: IndexMap<String, Value>,
    secrets: Vec<Moved>,
    /// (index of a found server, the gateway name it became).
    imported: Vec<(usize, String)>,
    /// (index of a found server, why it was left where it is).
    skipped: Vec<(usize, String)>,
}

/// A name the gateway accepts: lowercase letters, digits, `-`; starting with a letter.
fn gateway_name(name: &str) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let out = out.trim_matches('-').to_owned();
    if out.starts_with(|c: char| c.is_ascii_alphabetic()) {
        out
    } else {
        format!("mcp-{out}")
    }
}

/// What to do with `servers`; `existing` are the gateway config's servers (a server already
/// there, as an earlier import wrote it, is not added again).
fn plan(servers: &[Server], only: &[String], existing: &IndexMap<String, Value>) -> Plan {
    let scanner = SecretScanner::new();
    let mut plan = Plan::default();
    // The same server configured in several clients becomes one entry.
    let mut by_definition: Vec<(Value, String)> = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        if behind_gateway(s, &[]) || (!only.is_empty() && !only.contains(&s.name)) {
            continue;
        }
        let in_args = (0..s.args.len()).any(|n| {
            let (_, value, key) = arg_parts(&s.args, n);
            secret_in(&scanner, key, value).is_some()
        });
        if in_args || s.url.as_deref().is_some_and(|u| secret_in(&scanner, None, u).is_some()) {
            let why = "a secret in its command line or URL: move it into `env` or a header first, then import";
            plan.skipped.push((i, why.into()));
            continue;
        }
        let definition = json!([s.transport, s.command, s.args, s.env, s.url, s.headers]);
        if let Some((_, name)) = by_definition.iter().find(|(d, _)| *d == definition) {
            plan.imported.push((i, name.clone()));
            continue;
        }
        let base = gateway_name(&s.name);
        let mut name = base.clone();
        let mut n = 2;
        while existing.contains_key(&name) || plan.servers.contains_key(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        let secrets_before = plan.secrets.len();
        let mut vaulted = |kind: &str, key: &str, value: &str| -> String {
            if secret_in(&scanner, Some(key), value).is_none() {
                return value.to_owned();
            }
            let secret =
                format!("{name}_{}", key.to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
            let origin = format!("{kind} {key} of server `{}` ({}, {})", s.name, s.client, s.file.display());
            plan.secrets.push(Moved { name: secret.clone(), value: value.to_owned(), origin });
            format!("secret:{secret}")
        };
        let entry = match (&s.command, &s.url) {
            (Some(command), None) => {
                let env: serde_json::Map<String, Value> =
                    s.env.iter().map(|(k, v)| (k.clone(), json!(vaulted("env", k, v)))).collect();
                let mut stdio = json!({ "command": command, "args": s.args });
                if !env.is_empty() {
                    stdio["env"] = Value::Object(env);
                }
                json!({ "stdio": stdio })
            }
            (_, Some(url)) => {
                let headers: serde_json::Map<String, Value> =
                    s.headers.iter().map(|(k, v)| (k.clone(), json!(vaulted("header", k, v)))).collect();
                let mut remote = json!({ "url": url });
                if !headers.is_empty() {
                    remote["headers"] = Value::Object(headers);
                }
                json!({ s.transport.clone(): remote })
            }
            (None, None) => continue,
        };
        // Imported before (its file was left for a person): the same entry, its secrets stored.
        let same = |base: &str| existing.get(base).filter(|e| **e == entry).map(|_| base.to_owned());
        let earlier = same(&base).or_else(|| (2..n).find_map(|k| same(&format!("{base}-{k}"))));
        if let Some(earlier) = earlier {
            plan.secrets.truncate(secrets_before);
            by_definition.push((definition, earlier.clone()));
            plan.imported.push((i, earlier));
            continue;
        }
        by_definition.push((definition, name.clone()));
        plan.servers.insert(name.clone(), entry);
        plan.imported.push((i, name));
    }
    plan
}

/// The client entry that starts the gateway in place of the imported servers.
fn gateway_entry(config: &Path, vscode: bool) -> Value {
    let exe = std::env::current_exe().map_or_else(|_| "portcullis".to_owned(), |p| p.display().to_string());
    let mut entry = json!({ "command": exe, "args": ["serve", "--stdio", "--config", config.display().to_string()] });
    if vscode {
        entry["type"] = json!("stdio");
    }
    entry
}

/// A client file's new text: the imported servers out, the gateway in. `None` when the file
/// cannot be edited safely (comments, a shape import does not write).
fn rewrite(file: &Path, servers: &[&Server], config: &Path) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    // Strict JSON only: a file with comments would lose them.
    let mut doc: Value = serde_json::from_str(&text).ok()?;
    for s in servers {
        let within = s.within.as_ref()?;
        let map = within.iter().try_fold(&mut doc, |v, k| v.get_mut(k))?.as_object_mut()?;
        map.shift_remove(&s.name);
        let name =
            if map.get("portcullis").is_some_and(|e| !is_gateway(e)) { "portcullis-gateway" } else { "portcullis" };
        if !map.contains_key(name) {
            map.insert(name.to_owned(), gateway_entry(config, within == &["servers"]));
        }
    }
    Some(serde_json::to_string_pretty(&doc).ok()? + "\n")
}

fn is_gateway(entry: &Value) -> bool {
    entry.get("args").and_then(Value::as_array).is_some_and(|a| a.iter().any(|x| x == "serve"))
}

/// A unified diff with every secret value masked.
fn diff(path: &Path, old: &str, new: &str, secrets: &[Moved]) -> String {
    let shown = path.display().to_string();
    let text = similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header(&shown, &format!("{shown} (after import)"))
        .to_string();
    secrets.iter().fold(text, |t, s| t.replace(&s.value, "<secret>"))
}

/// A file beside `file` that does not exist yet, for its backup.
fn backup_path(file: &Path) -> PathBuf {
    let base = format!("{}.portcullis-backup", file.display());
    let mut candidate = PathBuf::from(&base);
    let mut n = 1;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{base}.{n}"));
        n += 1;
    }
    candidate
}

pub async fn run(config_path: Option<PathBuf>, args: ImportArgs) -> Result<()> {
    let home = match args.home.or_else(|| std::env::var_os("HOME").map(PathBuf::from)) {
        Some(h) => h,
        None => bail!("no home directory: set $HOME or pass --home DIR"),
    };
    let projects = if args.projects.is_empty() { vec![std::env::current_dir()?] } else { args.projects };
    let config_path = std::path::absolute(config_path.unwrap_or_else(|| PathBuf::from("portcullis.yaml")))?;
    let report = crate::scan::scan(&home, &projects, &[]);

    // The gateway config: what is there, plus the new servers.
    let old_config = match std::fs::read_to_string(&config_path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", config_path.display())),
    };
    let mut doc: serde_yaml_ng::Value = match &old_config {
        Some(text) => {
            serde_yaml_ng::from_str(text).with_context(|| format!("{} is not valid YAML", config_path.display()))?
        }
        None => serde_yaml_ng::Value::Mapping(Default::default()),
    };
    let existing: IndexMap<String, Value> = match doc.get("servers") {
        Some(servers) => serde_yaml_ng::from_value(servers.clone())
            .with_context(|| format!("`servers` in {} is not a mapping of server entries", config_path.display()))?,
        None => IndexMap::new(),
    };
    let plan = plan(&report.servers, &args.only, &existing);
    for (i, why) in &plan.skipped {
        let s = &report.servers[*i];
        eprintln!("left out `{}` ({}, {}): {why}", s.name, s.client, s.file.display());
    }
    if plan.imported.is_empty() {
        println!("Nothing to import: no server found outside the gateway.");
        return Ok(());
    }
    if plan.servers.is_empty() && plan.imported.iter().all(|(i, _)| report.servers[*i].within.is_none()) {
        println!("Nothing new to import: every server found is in {} already.", config_path.display());
        let left: Vec<String> =
            plan.imported.iter().map(|(i, _)| report.servers[*i].file.display().to_string()).collect();
        println!("Still to edit by hand: {}", left.join(", "));
        return Ok(());
    }
    let Some(root) = doc.as_mapping_mut() else { bail!("{} is not a YAML mapping", config_path.display()) };
    let servers = root.entry("servers".into()).or_insert_with(|| serde_yaml_ng::Value::Mapping(Default::default()));
    let Some(servers) = servers.as_mapping_mut() else {
        bail!("`servers` in {} is not a mapping", config_path.display())
    };
    for (name, entry) in &plan.servers {
        servers.insert(name.as_str().into(), serde_yaml_ng::to_value(entry)?);
    }
    let new_config = serde_yaml_ng::to_string(&doc)?;
    let config = Config::parse(&new_config).map_err(|e| anyhow::anyhow!("the imported config would not load: {e}"))?;
    let problems = config.validate();
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("  {}: {}", p.path, p.message)).collect();
        bail!("the imported config would have problems:\n{}", list.join("\n"));
    }

    // The client files: the ones that can be edited safely, and the rest for a person.
    let mut files: IndexMap<&Path, Vec<&Server>> = IndexMap::new();
    for (i, _) in &plan.imported {
        let s = &report.servers[*i];
        files.entry(s.file.as_path()).or_default().push(s);
    }
    let mut rewrites = Vec::new();
    let mut by_hand = Vec::new();
    for (file, servers) in &files {
        let old = std::fs::read_to_string(file).unwrap_or_default();
        match rewrite(file, servers, &config_path) {
            Some(new) => rewrites.push((file.to_path_buf(), old, new)),
            None => by_hand.push((file.to_path_buf(), servers.iter().map(|s| s.name.clone()).collect::<Vec<_>>())),
        }
    }

    let verb = if args.dry_run { "Would import" } else { "Importing" };
    println!(
        "{verb} {} server(s) as {} gateway server(s) into {}, move {} secret(s) into the vault, and rewrite {} client file(s).",
        plan.imported.len(),
        plan.servers.len(),
        config_path.display(),
        plan.secrets.len(),
        rewrites.len()
    );
    for s in &plan.secrets {
        println!("  secret:{} <- {}", s.name, s.origin);
    }
    if args.dry_run {
        println!();
        print!("{}", diff(&config_path, old_config.as_deref().unwrap_or_default(), &new_config, &plan.secrets));
        for (file, old, new) in &rewrites {
            print!("{}", diff(file, old, new, &plan.secrets));
        }
        print_by_hand(&by_hand, &config_path);
        println!("\nNothing was changed (--dry-run).");
        return Ok(());
    }

    // Secrets first: a config that names them is only written once they are stored.
    if !plan.secrets.is_empty() {
        let key = portcullis_vault::VaultKey::load(&config.vault_key_source(Some(&config_path))).context(
            "the secrets go into the vault, which needs its key: set $PORTCULLIS_VAULT_KEY (`openssl rand -base64 32`) or `vault.key_file`",
        )?;
        let store = portcullis_store::Store::open(config.store_location(Some(&config_path))?).await?;
        let vault = portcullis_vault::Vault::open(store.clone(), &key).await?;
        for s in &plan.secrets {
            vault.set(&s.name, &s.value.clone().into()).await?;
        }
        store.close().await;
    }
    if old_config.is_some() {
        let backup = backup_path(&config_path);
        std::fs::copy(&config_path, &backup).with_context(|| format!("cannot back up {}", config_path.display()))?;
        println!("backed up {} to {}", config_path.display(), backup.display());
    }
    std::fs::write(&config_path, &new_config).with_context(|| format!("cannot write {}", config_path.display()))?;
    for (file, _, new) in &rewrites {
        let backup = backup_path(file);
        std::fs::copy(file, &backup).with_context(|| format!("cannot back up {}", file.display()))?;
        std::fs::write(file, new).with_context(|| format!("cannot write {}", file.display()))?;
        println!("rewrote {} (backup: {})", file.display(), backup.display());
    }
    print_by_hand(&by_hand, &config_path);
    println!("Done. Restart the clients; they now reach these servers through the gateway.");
    Ok(())
}

fn print_by_hand(files: &[(PathBuf, Vec<String>)], config: &Path) {
    for (file, names) in files {
        println!(
            "\nedit by hand: {} (comments, or a layout import does not write): remove {} and add a server that runs `{}`",
            file.display(),
            names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
            gateway_entry(config, false)["args"].as_array().map_or_else(String::new, |a| {
                let args: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                format!("portcullis {}", args.join(" "))
            })
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_gateway_names() {
        assert_eq!(gateway_name("GitHub MCP"), "github-mcp");
        assert_eq!(gateway_name("server__x"), "server-x");
        assert_eq!(gateway_name("1password"), "mcp-1password");
    }
}
