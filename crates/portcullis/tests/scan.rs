//! `portcullis scan` over a fixture home and project: every client's file format, the
//! findings, and the three outputs, none of which may print a planted secret.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
/// A GitHub token in its documented format (`ghp_` and 36 characters): planted, never shown.
const GITHUB_PAT: &str = "ghp_Zq3mW8vK2pLx7RtY9bN4cH6dF1gJ5sA0eU2i";
const ANTHROPIC_KEY: &str = "plantedlongliteralvalue-91c2";

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn fixture() -> (tempfile::TempDir, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    let h = home.path();
    write(
        h,
        ".config/Claude/claude_desktop_config.json",
        &format!(
            r#"{{ "mcpServers": {{
                "github": {{ "command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                             "env": {{ "GITHUB_PERSONAL_ACCESS_TOKEN": "{GITHUB_PAT}" }} }},
                "fs": {{ "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem@2025.8.21", "/tmp"] }}
            }} }}"#
        ),
    );
    write(h, ".cursor/mcp.json", r#"{ "mcpServers": { "remote": { "url": "http://mcp.example.com/mcp" } } }"#);
    write(
        h,
        ".config/Code/User/settings.json",
        "// VS Code settings: comments and trailing commas\n{ \"editor.tabSize\": 2,\n  \"mcp\": { \"servers\": { \"gateway\": { \"type\": \"http\", \"url\": \"http://127.0.0.1:8080/mcp\" }, }, },\n}\n",
    );
    write(
        h,
        ".codex/config.toml",
        &format!("[mcp_servers.claude]\ncommand = \"uvx\"\nargs = [\"some-mcp-server\"]\nenv = {{ ANTHROPIC_API_KEY = \"{ANTHROPIC_KEY}\" }}\n"),
    );
    write(
        h,
        ".config/zed/settings.json",
        r#"{ "context_servers": { "pg": { "command": { "path": "docker", "args": ["run", "-i", "mcp/postgres"], "env": {} } } } }"#,
    );
    write(
        h,
        ".continue/config.yaml",
        "mcpServers:\n  - name: fetch\n    command: uvx\n    args: [\"mcp-server-fetch==2025.4.7\"]\n",
    );
    write(
        h,
        ".gemini/settings.json",
        r#"{ "mcpServers": { "safe": { "command": "portcullis", "args": ["serve", "--stdio"] } } }"#,
    );
    write(h, ".codeium/windsurf/mcp_config.json", "{ not json");
    write(
        project.path(),
        ".mcp.json",
        &format!(
            r#"{{ "mcpServers": {{ "api": {{ "command": "node", "args": ["server.js", "--token", "{GITHUB_PAT}"] }} }} }}"#
        ),
    );
    (home, project)
}

fn scan(home: &Path, project: &Path, extra: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("scan")
        .arg("--home")
        .arg(home)
        .arg("--project")
        .arg(project)
        .args(["--gateway", "http://127.0.0.1:8080"])
        .args(extra)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn scan_finds_every_clients_servers_and_flags_the_risky_ones_without_printing_secrets() {
    let (home, project) = fixture();
    let (ok, out, err) = scan(home.path(), project.path(), &["--json"]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let servers: Vec<(String, String)> = report["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["client"].as_str().unwrap().to_owned(), s["name"].as_str().unwrap().to_owned()))
        .collect();
    for (client, name) in [
        ("Claude Desktop", "github"),
        ("Claude Desktop", "fs"),
        ("Cursor", "remote"),
        ("VS Code", "gateway"),
        ("Codex", "claude"),
        ("Zed", "pg"),
        ("Continue", "fetch"),
        ("Gemini CLI", "safe"),
        ("Claude Code", "api"),
    ] {
        assert!(servers.contains(&(client.into(), name.into())), "{client}/{name} missing from {servers:?}");
    }
    let findings = report["findings"].as_array().unwrap();
    let has = |rule: &str, server: &str, needle: &str| {
        findings
            .iter()
            .any(|f| f["rule"] == rule && f["server"] == server && f["message"].as_str().unwrap().contains(needle))
    };
    assert!(has("plaintext-secret", "github", "GITHUB_PERSONAL_ACCESS_TOKEN"), "{findings:#?}");
    assert!(has("plaintext-secret", "claude", "ANTHROPIC_API_KEY"));
    assert!(has("plaintext-secret", "api", "argument 3"));
    assert!(has("unpinned-package", "github", "@modelcontextprotocol/server-github"));
    assert!(has("unpinned-package", "claude", "some-mcp-server"));
    assert!(has("unpinned-package", "pg", "mcp/postgres"));
    assert!(has("plain-http", "remote", "mcp.example.com"));
    assert!(has("not-behind-gateway", "fs", "gateway"));
    for (rule, server) in [
        ("unpinned-package", "fs"),
        ("unpinned-package", "fetch"),
        ("not-behind-gateway", "gateway"),
        ("not-behind-gateway", "safe"),
    ] {
        assert!(
            !findings.iter().any(|f| f["rule"] == rule && f["server"] == server),
            "{rule} on {server}: {findings:#?}"
        );
    }
    assert!(report["errors"][0]["file"].as_str().unwrap().ends_with("mcp_config.json"), "{}", report["errors"]);

    let (ok, table, _) = scan(home.path(), project.path(), &[]);
    assert!(ok && table.contains("9 MCP server(s)") && table.contains("plaintext-secret"), "{table}");
    let (ok, sarif, _) = scan(home.path(), project.path(), &["--sarif"]);
    assert!(ok);
    let sarif: Value = serde_json::from_str(&sarif).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(results.iter().any(|r| r["ruleId"] == "plaintext-secret" && r["level"] == "error"));
    assert!(results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap()
        .starts_with("file://"));

    // The home directory as the project too (scanning from ~): each file is read once.
    let (_, twice, _) = scan(home.path(), home.path(), &["--json"]);
    let twice: Value = serde_json::from_str(&twice).unwrap();
    assert_eq!(twice["servers"].as_array().unwrap().len(), 8, "{twice}");

    for text in [&out, &table, &sarif.to_string()] {
        assert!(!text.contains(GITHUB_PAT) && !text.contains(ANTHROPIC_KEY), "a secret was printed:\n{text}");
    }
}

#[test]
fn scan_connect_lists_each_servers_tools_and_flags_a_poisoned_one() {
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    write(
        home.path(),
        ".cursor/mcp.json",
        &format!(
            r#"{{ "mcpServers": {{
                "clean": {{ "command": "{BIN}", "args": ["demo-server"] }},
                "evil": {{ "command": "{BIN}", "args": ["demo-server", "--poisoned-tool"] }},
                "gone": {{ "command": "/nonexistent/mcp-server" }}
            }} }}"#
        ),
    );
    let (ok, out, err) = scan(home.path(), project.path(), &["--connect", "--timeout", "20s", "--json"]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let server = |name: &str| report["servers"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap().clone();
    assert!(server("clean")["tools"].as_array().unwrap().iter().any(|t| t == "echo"), "{report}");
    assert!(server("evil")["tools"].as_array().unwrap().iter().any(|t| t == "add_numbers"));
    let findings = report["findings"].as_array().unwrap();
    let poisoned: Vec<&Value> = findings.iter().filter(|f| f["rule"] == "poisoned-tool").collect();
    assert!(!poisoned.is_empty(), "{findings:#?}");
    assert!(poisoned.iter().all(|f| f["server"] == "evil"), "the clean server has no poisoned tool: {poisoned:#?}");
    assert!(poisoned.iter().any(|f| f["message"].as_str().unwrap().contains("add_numbers")));
    assert!(findings.iter().any(|f| f["rule"] == "unreachable" && f["server"] == "gone"), "{findings:#?}");
}
