//! `portcullis tools list|diff|approve|reject`: the pinned definitions of upstream tools,
//! prompts, resource templates and server identities in the config's store. A definition
//! that changed since it was approved is withheld by running gateways until it is approved
//! here (or through the admin API); they follow within a second.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use portcullis_gateway::config::Config;
use portcullis_gateway::pins::definition::short;
use portcullis_gateway::pins::review::{self, ItemRef, PinView};
use portcullis_policy::keyadmin::when;
use portcullis_store::{Review, Store};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ToolsCommand {
    /// List what is pinned: each item's state (pinned, changed, new, rejected), hash and
    /// who approved it.
    List {
        /// Only this server.
        server: Option<String>,
        /// Only the items waiting for review.
        #[arg(long)]
        waiting: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show what changed: each waiting definition against the approved one, as a unified diff.
    Diff {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        json: bool,
    },
    /// Approve waiting definitions (all of the server's when no item is named); running
    /// gateways serve them within a second.
    Approve {
        #[command(flatten)]
        target: Target,
        /// The hash (or its first digits) of the definition you reviewed; refuses if the
        /// server changed it again since.
        #[arg(long)]
        expect: Option<String>,
    },
    /// Reject waiting definitions: they stay withheld and are not asked about again (the
    /// approved definition is served if the server goes back to it).
    Reject {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        expect: Option<String>,
    },
}

/// A server and some of its items.
#[derive(Args)]
pub struct Target {
    /// The server (its name in the config).
    server: String,
    /// Items: a tool name, `prompt:NAME`, `template:URI` (default: everything waiting).
    items: Vec<String>,
    /// The server's identity (its reported name).
    #[arg(long)]
    identity: bool,
}

impl Target {
    fn items(&self) -> Vec<ItemRef> {
        let mut items: Vec<ItemRef> = self.items.iter().map(|i| ItemRef::parse(i)).collect();
        if self.identity {
            items.push(ItemRef::identity());
        }
        items
    }
}

pub async fn run(config_path: Option<PathBuf>, command: ToolsCommand) -> Result<()> {
    let config = match &config_path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let store = Store::open(config.store_location(config_path.as_deref())?).await?;
    let result = async {
        match command {
            ToolsCommand::List { server, waiting, json } => {
                let pins = review::list(&store, server.as_deref(), waiting).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&pins).context("encoding the pins")?);
                } else {
                    print_list(&pins);
                }
            }
            ToolsCommand::Diff { target, json } => {
                let diffs = review::diff(&store, &target.server, &target.items()).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&diffs).context("encoding the diffs")?);
                }
                for d in diffs.iter().filter(|_| !json) {
                    let p = &d.pin;
                    println!("{} {} `{}`: {} ({})", p.server, p.kind, p.name, p.state, p.changed.join(", "));
                    print!("{}", d.diff);
                    let hash = p.pending_hash.as_deref().map(short).unwrap_or_default();
                    println!("approve with: portcullis tools approve {} {} --expect {hash}\n", p.server, p.item);
                }
            }
            ToolsCommand::Approve { target, expect } => decide(&store, &target, expect, Review::Approve).await?,
            ToolsCommand::Reject { target, expect } => decide(&store, &target, expect, Review::Reject).await?,
        }
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}

async fn decide(store: &Store, target: &Target, expect: Option<String>, decision: Review) -> Result<()> {
    let actor = format!("cli: {}", std::env::var("USER").unwrap_or_else(|_| "unknown user".into()));
    let done = review::decide(store, &target.server, &target.items(), expect.as_deref(), decision, &actor).await?;
    let verb = match decision {
        Review::Approve => "Approved",
        Review::Reject => "Rejected",
    };
    for p in &done {
        let hash = p.hash.as_deref().or(p.rejected_hash.as_deref()).map(short).unwrap_or_default();
        println!("{verb} {} {} `{}` ({hash}).", p.server, p.kind, p.name);
    }
    println!("Running gateways follow within a second.");
    Ok(())
}

fn print_list(pins: &[PinView]) {
    if pins.is_empty() {
        println!("Nothing is pinned yet: a server's definitions are pinned when the gateway first lists them.");
        return;
    }
    println!("{:<16}  {:<8}  {:<32}  {:<8}  {:<12}  {:<20}  BY", "SERVER", "KIND", "NAME", "STATE", "HASH", "APPROVED");
    for p in pins {
        let hash = p.hash.as_deref().map_or("-", short);
        let name = if p.name.is_empty() { "-" } else { &p.name };
        let approved = p.approved_at.map_or_else(|| "-".to_owned(), |t| when(Some(t)));
        let by = p.approved_by.as_deref().unwrap_or("-");
        println!("{:<16}  {:<8}  {:<32}  {:<8}  {:<12}  {:<20}  {by}", p.server, p.kind, name, p.state, hash, approved);
        if p.waiting() {
            let changed = if p.changed.is_empty() { String::new() } else { format!(" ({})", p.changed.join(", ")) };
            let since = when(p.pending_since);
            println!("{:<16}  waiting since {since}{changed}: portcullis tools diff {} {}", "", p.server, p.item);
        }
    }
}
