//! The `portcullis` command: serve the gateway, check or print the config schema, run
//! the demo MCP server.
#![forbid(unsafe_code)]

mod audit_cli;
mod guard_cli;
mod import;
mod keys_cli;
mod scan;
mod secrets_cli;
mod tools_cli;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use portcullis_gateway::config::{schema, Config};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Every request allocates and frees many small buffers; mimalloc does that with less
/// contention between worker threads than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Portcullis: a security gateway for AI agents.
#[derive(Parser)]
#[command(name = "portcullis", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (HTTP at /mcp by default, or one session over stdio with --stdio).
    Serve {
        /// Config file. Default: $PORTCULLIS_CONFIG, else ./portcullis.yaml if it exists,
        /// else built-in defaults (127.0.0.1:8080, fronting the demo server).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Address to listen on, overriding `listen` in the config.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Serve one MCP client over stdin/stdout instead of HTTP.
        #[arg(long, conflicts_with = "listen")]
        stdio: bool,
    },
    /// Validate a config file; prints every problem with its path, exits 1 if any.
    Check {
        /// The config file to check.
        file: PathBuf,
    },
    /// Print the JSON Schema of the config file.
    Schema,
    /// Scan JSON Lines from stdin: `{"text": ...}` (content) or `{"tool": {...}}` (a tool
    /// definition); writes one verdict line per input line.
    Guard {
        #[command(flatten)]
        guard: GuardArgs,
    },
    /// Measure the guards on labelled JSON Lines corpora: precision, recall and
    /// false-positive rate per file, category and detector.
    Eval {
        #[command(flatten)]
        guard: GuardArgs,
        /// Print the metrics as JSON.
        #[arg(long)]
        json: bool,
        /// Evaluate only these categories (e.g. `--only pii,secret`); the rest is ignored.
        #[arg(long, value_delimiter = ',', value_parser = parse_category)]
        only: Vec<portcullis_guard::Category>,
        /// Corpus files: one `{"text": ..., "labels": [...]}` per line.
        files: Vec<PathBuf>,
    },
    /// Manage API keys: create, list, rotate, revoke.
    Keys {
        /// The gateway's config file (its store holds the keys).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: keys_cli::KeysCommand,
    },
    /// Manage the credential vault: set, list, rotate, delete secrets; rekey the vault.
    Secrets {
        /// The gateway's config file (its store holds the sealed secrets; `vault` says
        /// where the key comes from).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: secrets_cli::SecretsCommand,
    },
    /// Review pinned tool definitions: list them, diff a changed one, approve or reject it.
    Tools {
        /// The gateway's config file (its store holds the pins).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: tools_cli::ToolsCommand,
    },
    /// Read the audit log (one event per exchange, with every decision), or `verify` its
    /// hash chain.
    #[command(args_conflicts_with_subcommands = true)]
    Audit {
        /// The gateway's config file (its store holds the log).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: Option<audit_cli::AuditCommand>,
        #[command(flatten)]
        filter: audit_cli::AuditFilter,
    },
    /// Find the MCP servers configured on this machine (Claude, Cursor, VS Code, Windsurf, Zed,
    /// Continue, Gemini CLI, Codex, ...) and flag plaintext secrets, unpinned packages,
    /// plain-HTTP remotes and servers not behind the gateway.
    Scan {
        #[command(flatten)]
        args: scan::ScanArgs,
    },
    /// Move the servers `scan` finds behind the gateway: into the gateway config, their
    /// plaintext secrets into the vault, and the client configs pointed at the gateway (with
    /// backups). Try `--dry-run` first: it shows every change as a diff.
    Import {
        /// The gateway config to add the servers to (default: $PORTCULLIS_CONFIG, else
        /// ./portcullis.yaml, created if missing).
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(flatten)]
        args: import::ImportArgs,
    },
    /// Run the built-in demo MCP server (stdio, or Streamable HTTP at /mcp with --listen).
    DemoServer {
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// (tests) List `credential_fingerprint`, a SHA-256 prefix of this variable.
        #[arg(long)]
        credential_env: Option<String>,
        /// (tests) Over HTTP, require `Authorization: Bearer <a line of this file>`.
        #[arg(long)]
        require_bearer_file: Option<PathBuf>,
        /// (tests) Also list a tool whose description is poisoned.
        #[arg(long)]
        poisoned_tool: bool,
        /// (tests) List `get_weather`, whose definition changes after its first call.
        #[arg(long)]
        rug_pull: bool,
        /// (tests) The name to report in `serverInfo`.
        #[arg(long)]
        server_name: Option<String>,
        /// (tests) Also list a tool of this name that does what `echo` does.
        #[arg(long)]
        echo_as: Option<String>,
        /// (tests) Serve a GitHub-like fixture: a public and a private repository.
        #[arg(long)]
        github: bool,
    },
}

/// Which guard settings, profile and direction `guard` and `eval` use.
#[derive(clap::Args)]
struct GuardArgs {
    /// Config file whose `guards` section to use (default: built-in guard settings).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The guard profile to apply.
    #[arg(long, default_value = "default")]
    profile: String,
    /// Whether the text is sent to a tool (request) or comes back from one (response).
    #[arg(long, value_enum, default_value = "request")]
    direction: DirectionArg,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DirectionArg {
    Request,
    Response,
}

impl From<DirectionArg> for portcullis_guard::Direction {
    fn from(d: DirectionArg) -> Self {
        match d {
            DirectionArg::Request => portcullis_guard::Direction::Request,
            DirectionArg::Response => portcullis_guard::Direction::Response,
        }
    }
}

fn parse_category(s: &str) -> Result<portcullis_guard::Category, String> {
    portcullis_guard::Category::parse(s)
        .ok_or_else(|| format!("unknown category `{s}`; use pii, secret, injection, url, code, topic or poisoning"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A scan reports what it finds itself; the upstream clients' progress lines are noise there.
    init_logging(if matches!(cli.command, Command::Scan { .. } | Command::Import { .. }) { "error" } else { "info" });
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, so stdout stays clean for `--stdio` and `demo-server`.
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve { config, listen, stdio } => {
            let path = config_path(config);
            let cfg = match &path {
                Some(p) => Config::load(p)?,
                None => Config::default(),
            };
            if stdio {
                portcullis_gateway::serve_stdio(cfg, path).await?;
                return Ok(ExitCode::SUCCESS);
            }
            let server = portcullis_gateway::serve_http(cfg, path, listen).await?;
            let stop = server.stop_token();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down: finishing in-flight requests");
                stop.cancel();
            });
            server.wait().await.context("the HTTP server failed")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { file } => Ok(check(&file)),
        Command::Guard { guard: g } => guard_cli::guard(g.config, &g.profile, g.direction.into()),
        Command::Eval { guard: g, json, only, files } => {
            guard_cli::eval(g.config, &g.profile, g.direction.into(), &files, &only, json)
        }
        Command::Keys { config, command } => {
            keys_cli::run(config_path(config), command).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Secrets { config, command } => {
            secrets_cli::run(config_path(config), command).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tools { config, command } => {
            tools_cli::run(config_path(config), command).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { config, command, filter } => audit_cli::run(config_path(config), command, filter).await,
        Command::Import { config, args } => {
            let config = config.or_else(|| std::env::var_os("PORTCULLIS_CONFIG").map(PathBuf::from));
            import::run(config, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Scan { args } => {
            scan::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&schema())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::DemoServer {
            listen,
            credential_env,
            require_bearer_file,
            poisoned_tool,
            rug_pull,
            server_name,
            echo_as,
            github,
        } => {
            let options = portcullis_demo::DemoOptions {
                credential_env,
                bearer_file: require_bearer_file,
                poisoned_tool,
                rug_pull,
                server_name,
                echo_as,
                github,
            };
            match listen {
                Some(addr) => portcullis_demo::serve_http(addr, &options)
                    .await
                    .with_context(|| format!("cannot serve on {addr}"))?,
                None => portcullis_demo::serve_stdio(&options).await,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn config_path(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| std::env::var_os("PORTCULLIS_CONFIG").map(PathBuf::from)).or_else(|| {
        let local = PathBuf::from("portcullis.yaml");
        local.exists().then_some(local)
    })
}

fn check(file: &Path) -> ExitCode {
    match Config::load(file) {
        Ok(cfg) => {
            println!(
                "{}: ok ({} servers, {} virtual servers)",
                file.display(),
                cfg.effective_servers().len(),
                cfg.virtual_servers.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {} problem(s)", file.display(), e.problems.len());
            for p in &e.problems {
                eprintln!("  {p}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
