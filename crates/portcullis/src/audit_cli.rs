//! `portcullis audit`: the audit log in the config's store, filtered, as lines for people or
//! JSON Lines for tools (one event a line: an export); `portcullis audit verify` walks the
//! hash chain and fails if any event was edited, inserted or deleted.

use anyhow::{anyhow, Context, Result};
use clap::{Args, Subcommand};
use portcullis_gateway::audit::query::{check_json, event_json, event_line, Filter};
use portcullis_gateway::config::Config;
use portcullis_store::{Location, Store};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain: every event's hash, every link, both ends. Exits 1 if the log
    /// was tampered with.
    Verify {
        #[arg(long)]
        json: bool,
    },
}

/// Which events to show (every filter optional; oldest first).
#[derive(Args)]
pub struct AuditFilter {
    /// Events since a duration ago (15m, 2h, 7d) or a time (2026-12-01T09:00:00Z).
    #[arg(long)]
    since: Option<String>,
    /// Events before a duration ago or a time.
    #[arg(long)]
    until: Option<String>,
    /// The caller's user (alice), or the caller (app:ci, key:<id>).
    #[arg(long)]
    user: Option<String>,
    /// The tool, prompt or resource: as clients name it (github__create_issue) or without
    /// its server prefix (create_issue).
    #[arg(long)]
    tool: Option<String>,
    /// allow, flag, redact, deny, or lost (events the gateway could not record).
    #[arg(long)]
    decision: Option<String>,
    /// Only the last N matching events.
    #[arg(long)]
    limit: Option<u32>,
    /// JSON Lines: one event a line, with its sequence number and hashes.
    #[arg(long)]
    json: bool,
}

/// Events read from the store at a time.
const PAGE: u32 = 1_000;

pub async fn run(config_path: Option<PathBuf>, command: Option<AuditCommand>, filter: AuditFilter) -> Result<ExitCode> {
    let config = match &config_path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let location = config.store_location(config_path.as_deref())?;
    if let Location::Sqlite(path) = &location {
        if !path.exists() {
            return Err(anyhow!(
                "no database at {}: the gateway creates it on first start (pass the gateway's --config)",
                path.display()
            ));
        }
    }
    let store = Store::open(location).await?;
    let result = match command {
        Some(AuditCommand::Verify { json }) => verify(&store, json).await,
        None => list(&store, filter).await.map(|()| ExitCode::SUCCESS),
    };
    store.close().await;
    result
}

async fn list(store: &Store, f: AuditFilter) -> Result<()> {
    let filter = Filter {
        since: f.since,
        until: f.until,
        user: f.user,
        tool: f.tool,
        decision: f.decision,
        after: None,
        limit: None,
    };
    let mut query = filter.query().map_err(|e| anyhow!(e))?;
    let mut out = std::io::stdout().lock();
    let mut print = |rows: &[portcullis_store::AuditRow]| -> Result<()> {
        for row in rows {
            let line = if f.json { event_json(row).to_string() } else { event_line(row) };
            writeln!(out, "{line}").context("writing the events")?;
        }
        Ok(())
    };
    if let Some(limit) = f.limit {
        (query.latest, query.limit) = (true, Some(limit));
        return print(&store.audit_events(&query).await?);
    }
    // Page through the whole log without holding it in memory.
    query.limit = Some(PAGE);
    loop {
        let rows = store.audit_events(&query).await?;
        print(&rows)?;
        match rows.last() {
            Some(last) if rows.len() == PAGE as usize => query.after = Some(last.seq),
            _ => return Ok(()),
        }
    }
}

async fn verify(store: &Store, json: bool) -> Result<ExitCode> {
    let check = store.verify_audit().await?;
    if json {
        println!("{}", check_json(&check));
    } else if check.problems.is_empty() {
        let range = match (check.first_seq, check.last_seq) {
            (Some(first), Some(last)) => format!(" (events {first}..{last})"),
            _ => String::new(),
        };
        println!("audit log intact: {} events{range}; head {}", check.events, check.head);
    } else {
        println!("audit log TAMPERED: {} problem(s) in {} events", check.problems.len(), check.events);
        for p in &check.problems {
            println!("  {p}");
        }
    }
    Ok(if check.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
