//! Where MCP clients keep their server lists, and how each writes a server entry. Read from
//! each client's documentation; user-level files under the home directory, project-level
//! files under each project directory.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// User-level settings or one project's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    User,
    Project,
}

/// How a file holds its servers.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `{"mcpServers": {name: entry}}` (Claude Desktop, Cursor, Windsurf, Gemini CLI, Cline,
    /// Amazon Q, LM Studio, Claude Code's `.mcp.json`).
    McpServers,
    /// `~/.claude.json`: `mcpServers` at the top and under `projects.<dir>.mcpServers`.
    ClaudeCode,
    /// VS Code: `{"servers": {...}}` in `mcp.json`, `{"mcp": {"servers": {...}}}` in settings.
    VsCode,
    /// Zed: `{"context_servers": {name: {"command": {"path", "args", "env"}} | entry}}`.
    Zed,
    /// Continue: `config.yaml` `mcpServers: [{name, command, ...}]`, `config.json`
    /// `experimental.modelContextProtocolServers: [{transport: {...}}]`.
    Continue,
    /// Codex: TOML `[mcp_servers.<name>]`.
    Codex,
}

/// A file a client may have written.
pub struct Candidate {
    pub client: &'static str,
    pub scope: Scope,
    pub path: PathBuf,
    shape: Shape,
}

/// One configured server, as the client would start or reach it.
#[derive(Debug, Clone)]
pub struct Server {
    pub client: &'static str,
    pub scope: Scope,
    pub file: PathBuf,
    pub name: String,
    /// `stdio`, `http` or `sse`.
    pub transport: String,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub url: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The keys leading to the JSON object that holds this entry under its name (e.g.
    /// `["mcpServers"]`), when the client keeps its servers that way; `None` for lists, TOML
    /// and nested shapes, which `portcullis import` leaves for a person to edit.
    pub within: Option<Vec<String>>,
}

/// Every file to look at under `home` (user level) and each of `projects`.
pub fn candidates(home: &Path, projects: &[PathBuf]) -> Vec<Candidate> {
    let user = |client, rel: &str, shape| Candidate { client, scope: Scope::User, path: home.join(rel), shape };
    let mut out = vec![
        user("Claude Desktop", ".config/Claude/claude_desktop_config.json", Shape::McpServers),
        user("Claude Desktop", "Library/Application Support/Claude/claude_desktop_config.json", Shape::McpServers),
        user("Claude Desktop", "AppData/Roaming/Claude/claude_desktop_config.json", Shape::McpServers),
        user("Claude Code", ".claude.json", Shape::ClaudeCode),
        user("Cursor", ".cursor/mcp.json", Shape::McpServers),
        user("VS Code", ".config/Code/User/mcp.json", Shape::VsCode),
        user("VS Code", ".config/Code/User/settings.json", Shape::VsCode),
        user("VS Code", "Library/Application Support/Code/User/mcp.json", Shape::VsCode),
        user("VS Code", "Library/Application Support/Code/User/settings.json", Shape::VsCode),
        user("VS Code", "AppData/Roaming/Code/User/mcp.json", Shape::VsCode),
        user("Windsurf", ".codeium/windsurf/mcp_config.json", Shape::McpServers),
        user("Zed", ".config/zed/settings.json", Shape::Zed),
        user("Continue", ".continue/config.yaml", Shape::Continue),
        user("Continue", ".continue/config.json", Shape::Continue),
        user("Gemini CLI", ".gemini/settings.json", Shape::McpServers),
        user("Codex", ".codex/config.toml", Shape::Codex),
        user(
            "Cline",
            ".config/Code/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json",
            Shape::McpServers,
        ),
        user("Amazon Q", ".aws/amazonq/mcp.json", Shape::McpServers),
        user("LM Studio", ".lmstudio/mcp.json", Shape::McpServers),
    ];
    for project in projects {
        let at = |client, rel: &str, shape| Candidate { client, scope: Scope::Project, path: project.join(rel), shape };
        out.extend([
            at("Claude Code", ".mcp.json", Shape::McpServers),
            at("Cursor", ".cursor/mcp.json", Shape::McpServers),
            at("VS Code", ".vscode/mcp.json", Shape::VsCode),
            at("Gemini CLI", ".gemini/settings.json", Shape::McpServers),
            at("Zed", ".zed/settings.json", Shape::Zed),
            at("Continue", ".continue/mcpServers", Shape::Continue),
        ]);
    }
    out
}

impl Candidate {
    /// The servers in this file; `Ok(None)` when the file does not exist.
    pub fn read(&self) -> Result<Option<Vec<Server>>, String> {
        if self.path.is_dir() {
            // Continue's project folder of YAML blocks: each file holds `mcpServers`.
            let mut servers = Vec::new();
            let mut files: Vec<PathBuf> = std::fs::read_dir(&self.path)
                .map_err(|e| e.to_string())?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json"))
                .collect();
            files.sort();
            for file in files {
                let one = Candidate { client: self.client, scope: self.scope, path: file, shape: self.shape };
                servers.extend(one.read()?.unwrap_or_default());
            }
            return Ok(Some(servers));
        }
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read it: {e}")),
        };
        let doc = parse(&self.path, &text)?;
        let mut servers = Vec::new();
        let mut add = |name: &str, entry: &Value, within: Option<Vec<String>>| {
            if let Some(s) = self.server(name, entry, within) {
                servers.push(s);
            }
        };
        // Entries of the JSON object at `path`; `rewritable`: import may edit it there.
        let each = |path: &[&str], rewritable: bool, add: &mut AddServer| {
            let map = path.iter().try_fold(&doc, |v, k| v.get(*k)).and_then(Value::as_object);
            for (name, entry) in map.into_iter().flatten() {
                add(name, entry, rewritable.then(|| path.iter().map(|k| (*k).to_owned()).collect()));
            }
        };
        let json = self.path.extension().is_some_and(|e| e == "json");
        match self.shape {
            Shape::McpServers => each(&["mcpServers"], json, &mut add),
            Shape::ClaudeCode => {
                each(&["mcpServers"], json, &mut add);
                let projects: Vec<String> = doc
                    .get("projects")
                    .and_then(Value::as_object)
                    .map(|p| p.keys().cloned().collect())
                    .unwrap_or_default();
                for project in &projects {
                    each(&["projects", project, "mcpServers"], json, &mut add);
                }
            }
            Shape::VsCode => {
                let mcp_json = self.path.file_name().is_some_and(|n| n == "mcp.json");
                each(&["servers"], mcp_json, &mut add);
                each(&["mcp", "servers"], false, &mut add);
            }
            Shape::Zed => each(&["context_servers"], false, &mut add),
            Shape::Codex => each(&["mcp_servers"], false, &mut add),
            Shape::Continue => {
                for (i, entry) in doc.get("mcpServers").and_then(Value::as_array).into_iter().flatten().enumerate() {
                    let name = entry.get("name").and_then(Value::as_str).map_or_else(|| format!("#{i}"), str::to_owned);
                    add(&name, entry, None);
                }
                let old = doc.get("experimental").and_then(|e| e.get("modelContextProtocolServers"));
                for (i, entry) in old.and_then(Value::as_array).into_iter().flatten().enumerate() {
                    add(&format!("#{i}"), entry.get("transport").unwrap_or(entry), None);
                }
            }
        }
        Ok(Some(servers))
    }

    /// One entry, in whichever of the common spellings the client uses.
    fn server(&self, name: &str, entry: &Value, within: Option<Vec<String>>) -> Option<Server> {
        let entry = entry.as_object()?;
        let text = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_owned);
        let pairs = |v: Option<&Value>| -> Vec<(String, String)> {
            v.and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        // Zed nests the command: `{"command": {"path", "args", "env"}}`.
        let (command, args, env) = match entry.get("command") {
            Some(Value::Object(nested)) => (
                nested.get("path").and_then(Value::as_str).map(str::to_owned),
                strings(nested.get("args")),
                pairs(nested.get("env")),
            ),
            _ => (text("command"), strings(entry.get("args")), pairs(entry.get("env"))),
        };
        let url = text("url").or_else(|| text("serverUrl")).or_else(|| text("httpUrl"));
        let declared = text("type").or_else(|| text("transport")).unwrap_or_default().to_ascii_lowercase();
        let transport = match (declared.as_str(), &url) {
            ("sse", _) => "sse",
            (_, Some(u)) if u.trim_end_matches('/').ends_with("/sse") && declared.is_empty() => "sse",
            (_, Some(_)) => "http",
            _ => "stdio",
        };
        if command.is_none() && url.is_none() {
            return None;
        }
        Some(Server {
            client: self.client,
            scope: self.scope,
            file: self.path.clone(),
            name: name.to_owned(),
            transport: transport.to_owned(),
            command,
            args,
            env,
            url,
            headers: pairs(entry.get("headers").or_else(|| entry.get("requestInit").and_then(|r| r.get("headers")))),
            within,
        })
    }
}

/// Takes one entry of a file: its name, its value, and where it sits (if rewritable).
type AddServer<'a> = dyn FnMut(&str, &Value, Option<Vec<String>>) + 'a;

/// JSON with comments and trailing commas (VS Code, Zed), YAML or TOML, by extension.
pub fn parse(path: &Path, text: &str) -> Result<Value, String> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str::<toml::Value>(text)
            .map_err(|e| format!("not valid TOML: {}", e.message()))
            .and_then(|v| serde_json::to_value(v).map_err(|e| e.to_string())),
        Some("yaml" | "yml") => serde_yaml_ng::from_str(text).map_err(|e| format!("not valid YAML: {e}")),
        _ => json5::from_str(text).map_err(|e| format!("not valid JSON: {e}")),
    }
}
