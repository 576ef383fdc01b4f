//! The `portcullis` command line as a user runs it.

use portcullis_testkit::{free_port, repo_root, wait_port, Client};
use serde_json::{json, Value};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

#[test]
fn every_example_config_passes_check() {
    let dir = repo_root().join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let out = Command::new(BIN).arg("check").arg(&path).output().unwrap();
            if path.ends_with("guards-deep.yaml") && !minilm_fetched() {
                // A plain `cargo test` without scripts/minilm.sh: the check must say what to do.
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(!out.status.success() && err.contains("scripts/minilm.sh"), "{err}");
                continue;
            }
            assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
            assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
            checked += 1;
        }
    }
    assert!(checked >= 5, "examples/ holds the documented configs");
}

/// Whether `scripts/minilm.sh` has unpacked the deeper injection tier's base model.
fn minilm_fetched() -> bool {
    let root = std::env::var_os("PORTCULLIS_MINILM_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/portcullis/minilm")
    });
    root.join("model/model.safetensors").is_file()
}

#[test]
fn check_lists_every_problem_with_its_path_and_fails() {
    let dir = std::env::temp_dir().join(format!("portcullis-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "servers:\n  a:\n    stdio: { command: x }\n  b:\n    prefix: a\n    http: { url: 'not a url' }\n  c:\n    stdoi: {}\n",
    )
    .unwrap();
    let out = Command::new(BIN).arg("check").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    // Structural and semantic problems, all in one run.
    assert!(err.contains("servers.c.stdoi: unknown field `stdoi`"), "{err}");
    assert!(err.contains("servers.c: no transport"), "{err}");
    assert!(err.contains("servers.b.http.url:"), "{err}");
    assert!(err.contains("servers.b.prefix: prefix `a` is already used by server `a`"), "{err}");
    assert!(err.contains("4 problem(s)"), "{err}");
    let missing = Command::new(BIN).args(["check", "/nonexistent/portcullis.yaml"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read the file"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn schema_prints_the_config_schema() {
    let out = Command::new(BIN).arg("schema").output().unwrap();
    assert!(out.status.success());
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["title"], "Config");
    assert!(schema["properties"]["servers"].is_object());
}

#[tokio::test]
async fn serve_with_no_configuration_fronts_the_demo_server() {
    let dir = std::env::temp_dir().join(format!("portcullis-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(&dir)
        .env_remove("PORTCULLIS_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_port(port).await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let mut ready = false;
    for _ in 0..100 {
        if reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await.is_ok_and(|r| r.status().is_success()) {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready);
    let mut c = Client::connect(&url, json!({})).await;
    let r = c.request("tools/call", json!({ "name": "demo__echo", "arguments": { "message": "first run" } })).await;
    assert_eq!(r.result()["content"][0]["text"], "first run");
    child.kill().await.ok();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bad_listen_address_is_explained() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["serve", "--listen", &addr])
        .current_dir(std::env::temp_dir())
        .env_remove("PORTCULLIS_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")) && err.contains("--listen"), "{err}");
}
