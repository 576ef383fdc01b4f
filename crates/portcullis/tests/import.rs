//! `portcullis import` on a fixture home: Claude Desktop and Cursor configure the same
//! server with a plaintext token, Cursor adds a remote one with a credential header, and VS
//! Code keeps a server in a settings file with comments. The dry run shows the changes with
//! no secret in them; the import moves the secrets into the vault, points the clients at the
//! gateway (with backups) and leaves the commented file for a person; the gateway then
//! serves the server with the token from the vault.

use portcullis_testkit::{Client, Gateway};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const TOKEN: &str = "ghp_R4nd0mT0k3nV4lu3F0rT35t1ngPurp0s3s12";
const BEARER: &str = "Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0";

struct Fixture {
    _dir: tempfile::TempDir,
    home: PathBuf,
    project: PathBuf,
    config: PathBuf,
    claude: PathBuf,
    cursor: PathBuf,
    vscode: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let write = |rel: &str, text: &str| {
        let path = home.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    };
    let demo = json!({ "command": BIN, "args": ["demo-server", "--credential-env", "DEMO_TOKEN"],
        "env": { "DEMO_TOKEN": TOKEN, "MODE": "plain" } });
    let claude = json!({ "mcpServers": { "demo": demo, "already": { "command": "portcullis", "args": ["serve", "--stdio"] } },
        "globalShortcut": "Ctrl+Space" });
    let claude = write(".config/Claude/claude_desktop_config.json", &serde_json::to_string_pretty(&claude).unwrap());
    let cursor = json!({ "mcpServers": { "demo": demo,
        "remote": { "url": "https://mcp.example.com/mcp", "headers": { "Authorization": BEARER } } } });
    let cursor = write(".cursor/mcp.json", &serde_json::to_string_pretty(&cursor).unwrap());
    let vscode = write(
        ".config/Code/User/settings.json",
        "{\n  // editor settings\n  \"mcp\": { \"servers\": { \"notes\": { \"command\": \"notes-server\" } } },\n}\n",
    );
    let config = dir.path().join("gw/portcullis.yaml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(config.with_file_name("vault.key"), "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=").unwrap();
    std::fs::write(&config, "# my gateway\nvault: { key_file: vault.key }\n").unwrap();
    Fixture { _dir: dir, home, project, config, claude, cursor, vscode }
}

fn import(f: &Fixture, extra: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("import")
        .arg("--config")
        .arg(&f.config)
        .arg("--home")
        .arg(&f.home)
        .arg("--project")
        .arg(&f.project)
        .args(extra)
        .env_remove("PORTCULLIS_VAULT_KEY")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_shows_the_changes_and_the_import_moves_servers_and_secrets_behind_the_gateway() {
    let f = fixture();
    let before = [&f.config, &f.claude, &f.cursor, &f.vscode].map(|p| read(p));

    let (ok, out, err) = import(&f, &["--dry-run"]);
    assert!(ok, "{out}{err}");
    // demo twice (one entry), remote, and notes (whose file a person edits).
    assert!(out.contains("Would import 4 server(s) as 3 gateway server(s)"), "{out}");
    assert!(out.contains("secret:demo_demo_token <- env DEMO_TOKEN of server `demo`"), "{out}");
    assert!(out.contains("secret:remote_authorization <- header Authorization of server `remote`"), "{out}");
    assert!(out.lines().any(|l| l.starts_with('-') && l.contains("\"demo\": {")), "{out}");
    assert!(out.lines().any(|l| l.starts_with('+') && l.contains("\"portcullis\": {")), "{out}");
    assert!(out.contains("edit by hand: ") && out.contains("settings.json") && out.contains("`notes`"), "{out}");
    assert!(!out.contains(TOKEN) && !out.contains(BEARER) && !err.contains(TOKEN), "no secret in the dry run");
    assert_eq!([&f.config, &f.claude, &f.cursor, &f.vscode].map(|p| read(p)), before, "a dry run changes nothing");

    let (ok, out, err) = import(&f, &[]);
    assert!(ok, "{out}{err}");
    // The gateway config: the servers, with references instead of values; what was there stays.
    let config = read(&f.config);
    assert!(!config.contains(TOKEN) && !config.contains(BEARER), "{config}");
    let parsed: Value = serde_yaml_ng::from_str(&config).unwrap();
    assert_eq!(
        parsed["servers"]["demo"]["stdio"]["env"],
        json!({ "DEMO_TOKEN": "secret:demo_demo_token", "MODE": "plain" })
    );
    assert_eq!(parsed["servers"]["remote"]["http"]["headers"]["Authorization"], "secret:remote_authorization");
    assert_eq!(parsed["servers"]["notes"]["stdio"]["command"], "notes-server");
    assert_eq!(parsed["vault"]["key_file"], "vault.key");
    let checked = Command::new(BIN).arg("check").arg(&f.config).output().unwrap();
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stdout));
    // The clients: the gateway instead of the servers, everything else kept, backups beside.
    let claude: Value = serde_json::from_str(&read(&f.claude)).unwrap();
    let servers = claude["mcpServers"].as_object().unwrap();
    assert_eq!(servers.keys().collect::<Vec<_>>(), ["already", "portcullis"]);
    let args = json!(["serve", "--stdio", "--config", f.config.display().to_string()]);
    assert_eq!(servers["portcullis"]["args"], args);
    assert_eq!(claude["globalShortcut"], "Ctrl+Space");
    assert!(!read(&f.cursor).contains(TOKEN) && !read(&f.cursor).contains(BEARER));
    assert_eq!(read(Path::new(&format!("{}.portcullis-backup", f.claude.display()))), before[1]);
    assert_eq!(read(&f.vscode), before[3], "a file with comments is left for a person");
    // The secrets are in the vault, by name.
    let listed = Command::new(BIN).args(["secrets", "list", "--config"]).arg(&f.config).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("demo_demo_token") && listed.contains("remote_authorization"), "{listed}");

    // Run again: the server left for a person is not added twice.
    let config_now = read(&f.config);
    let (ok, out, err) = import(&f, &[]);
    assert!(ok && out.contains("Nothing new to import") && out.contains("settings.json"), "{out}{err}");
    assert_eq!(read(&f.config), config_now);

    // The gateway serves the imported server with the token from the vault.
    let yaml = read(&f.config)
        .replace("key_file: vault.key", &format!("key_file: {}", f.config.with_file_name("vault.key").display()));
    let yaml = format!("{yaml}store: {{ path: \"{}\" }}\n", f.config.with_file_name("portcullis.db").display());
    let gw = Gateway::start(&yaml, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    let r = c.request("tools/call", json!({ "name": "demo__credential_fingerprint", "arguments": {} })).await;
    assert_eq!(r.result()["content"][0]["text"], portcullis_demo::fingerprint(TOKEN));
    gw.server.shutdown().await.unwrap();
}
