//! `portcullis scan`: the MCP servers configured on this machine ("shadow MCP"), what each
//! client starts or reaches, and what is risky about it: plaintext secrets, unpinned
//! packages, plain-HTTP remotes, servers not behind the gateway. Output: a table, JSON, or
//! SARIF for code-scanning tools. It names where a secret is (file, server, key), never the
//! secret.

pub mod clients;
mod connect;
pub mod findings;
mod sarif;

use anyhow::Result;
use clients::{candidates, Server};
use findings::{check, shown_args, shown_url, Finding, Level};
use portcullis_guard::secrets::SecretScanner;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ScanArgs {
    /// The home directory to scan (default: $HOME).
    #[arg(long)]
    home: Option<PathBuf>,
    /// A project directory to scan for project-level configs (repeatable; default: the
    /// current directory).
    #[arg(long = "project")]
    projects: Vec<PathBuf>,
    /// URL of a Portcullis gateway: servers reached through it are not flagged (repeatable).
    #[arg(long = "gateway")]
    gateways: Vec<String>,
    /// Print JSON.
    #[arg(long, conflicts_with = "sarif")]
    json: bool,
    /// Print SARIF 2.1.0 (for code-scanning tools).
    #[arg(long)]
    sarif: bool,
    /// Also start (stdio) or reach (HTTP) each server, list its tools and scan them for
    /// poisoning. Starts the configured programs: run it where that is safe.
    #[arg(long)]
    connect: bool,
    /// How long one server may take to start and list its tools (with --connect).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
}

/// What a scan found.
pub struct Report {
    pub servers: Vec<Server>,
    pub findings: Vec<Finding>,
    /// Files that exist but could not be read: (file, why).
    pub errors: Vec<(PathBuf, String)>,
    /// With `--connect`: each server's tools, or why they could not be listed.
    pub tools: Option<connect::Listed>,
}

pub fn scan(home: &Path, projects: &[PathBuf], gateways: &[String]) -> Report {
    let mut servers = Vec::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for candidate in candidates(home, projects) {
        // A project inside or equal to the home directory names some files twice.
        let key = std::fs::canonicalize(&candidate.path).unwrap_or_else(|_| candidate.path.clone());
        if !seen.insert(key) {
            continue;
        }
        match candidate.read() {
            Ok(Some(found)) => servers.extend(found),
            Ok(None) => {}
            Err(why) => errors.push((candidate.path.clone(), why)),
        }
    }
    let findings = check(&servers, gateways);
    Report { servers, findings, errors, tools: None }
}

pub async fn run(args: ScanArgs) -> Result<()> {
    let home = match args.home.or_else(|| std::env::var_os("HOME").map(PathBuf::from)) {
        Some(h) => h,
        None => anyhow::bail!("no home directory: set $HOME or pass --home DIR"),
    };
    let projects = if args.projects.is_empty() { vec![std::env::current_dir()?] } else { args.projects };
    let mut report = scan(&home, &projects, &args.gateways);
    if args.connect {
        let listed = connect::list_all(&report.servers, args.timeout).await;
        report.findings.extend(connect::check(&listed));
        report.tools = Some(listed);
    }
    let scanner = SecretScanner::new();
    if args.sarif {
        println!("{}", serde_json::to_string_pretty(&sarif::report(&report))?);
    } else if args.json {
        println!("{}", serde_json::to_string_pretty(&json_report(&report, &scanner))?);
    } else {
        print_table(&report, &scanner, &home);
    }
    Ok(())
}

fn target(server: &Server, scanner: &SecretScanner) -> String {
    match (&server.command, &server.url) {
        (_, Some(url)) => shown_url(url),
        (Some(command), None) => {
            std::iter::once(command.clone()).chain(shown_args(scanner, server)).collect::<Vec<_>>().join(" ")
        }
        (None, None) => String::new(),
    }
}

fn json_report(report: &Report, scanner: &SecretScanner) -> Value {
    let servers: Vec<Value> = report
        .servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let tools =
                report.tools.as_ref().and_then(|t| t[i].as_ref().ok()).map(|tools| {
                    tools.iter().filter_map(|t| t.get("name").and_then(Value::as_str)).collect::<Vec<_>>()
                });
            json!({
                "tools": tools,
                "client": s.client,
                "scope": s.scope,
                "file": s.file,
                "name": s.name,
                "transport": s.transport,
                "command": s.command,
                "args": shown_args(scanner, s),
                "url": s.url.as_deref().map(shown_url),
                "env": s.env.iter().map(|(k, _)| k).collect::<Vec<_>>(),
                "headers": s.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            })
        })
        .collect();
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let s = &report.servers[f.server];
            json!({ "rule": f.rule, "level": f.level, "client": s.client, "file": s.file, "server": s.name, "message": f.message })
        })
        .collect();
    let errors: Vec<Value> = report.errors.iter().map(|(f, why)| json!({ "file": f, "error": why })).collect();
    json!({ "servers": servers, "findings": findings, "errors": errors })
}

fn print_table(report: &Report, scanner: &SecretScanner, home: &Path) {
    let short =
        |p: &Path| p.strip_prefix(home).map_or_else(|_| p.display().to_string(), |r| format!("~/{}", r.display()));
    let files: std::collections::BTreeSet<&PathBuf> = report.servers.iter().map(|s| &s.file).collect();
    println!("{} MCP server(s) in {} file(s); {} finding(s)", report.servers.len(), files.len(), report.findings.len());
    if !report.servers.is_empty() {
        println!();
        println!("{:<15} {:<8} {:<20} {:<6} {:<7} TARGET", "CLIENT", "SCOPE", "SERVER", "KIND", "ISSUES");
        for (i, s) in report.servers.iter().enumerate() {
            let issues = report.findings.iter().filter(|f| f.server == i && f.level > Level::Note).count();
            let scope = if s.scope == clients::Scope::User { "user" } else { "project" };
            println!(
                "{:<15} {:<8} {:<20} {:<6} {:<7} {}",
                s.client,
                scope,
                s.name,
                s.transport,
                issues,
                target(s, scanner)
            );
        }
    }
    let mut findings: Vec<&Finding> = report.findings.iter().collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.level));
    if !findings.is_empty() {
        println!();
    }
    for f in findings {
        let s = &report.servers[f.server];
        let level = match f.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        };
        println!("{level:<7} {:<18} {} ({}, server `{}`): {}", f.rule, short(&s.file), s.client, s.name, f.message);
    }
    for (file, why) in &report.errors {
        eprintln!("could not read {}: {why}", short(file));
    }
}
