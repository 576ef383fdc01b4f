//! Gateways on a shared PostgreSQL store: keys made by the CLI admit callers on two
//! replicas, both replicas' exchanges extend one audit chain, and an edit made in the
//! database is found by `portcullis audit verify`.

use portcullis_testkit::{Client, Gateway, Postgres};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn portcullis(config: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).arg("--config").arg(config).output().unwrap();
    let code = out.status.code().unwrap_or_else(|| panic!("portcullis {args:?} crashed"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    (code, format!("{}{stderr}", String::from_utf8_lossy(&out.stdout)))
}

fn events(config: &Path, args: &[&str]) -> Vec<Value> {
    let args = [&["audit", "--json"], args].concat();
    let out = Command::new(BIN).args(&args).arg("--config").arg(config).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: run scripts/test.sh"]
async fn two_gateways_share_keys_and_one_audit_chain_in_postgres() {
    let pg = Postgres::start();
    let config = format!(
        "store: {{ url: \"{}\" }}\nauth: {{ api_keys: {{}} }}\nservers:\n  demo:\n    stdio: {{ command: \"{{bin}}\", args: [demo-server] }}\n",
        pg.url()
    );
    let (one, path) = Gateway::start_file(&config, BIN).await;
    let (two, _) = Gateway::start_file(&config, BIN).await;

    // A key made by the CLI (another process) admits its user on both replicas.
    let out = Command::new(BIN)
        .args(["keys", "create", "--user", "alice", "--json", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = serde_json::from_slice::<Value>(&out.stdout).unwrap()["key"].as_str().unwrap().to_owned();
    let mut clients = Vec::new();
    for (n, gw) in [&one, &two, &one, &two].into_iter().enumerate() {
        let (url, key) = (gw.url.clone(), key.clone());
        clients.push(tokio::spawn(async move {
            let mut c = Client::connect_with_bearer(&url, &key).await;
            for i in 0..100 {
                let message = format!("call {n}-{i}");
                let reply =
                    c.request("tools/call", json!({"name": "demo__echo", "arguments": {"message": message}})).await;
                assert_eq!(reply.result()["content"][0]["text"], message, "{}", reply.raw);
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    one.server.shutdown().await.unwrap();
    two.server.shutdown().await.unwrap();

    let calls = events(&path, &["--tool", "echo"]);
    assert_eq!(calls.len(), 400);
    let mut messages: Vec<&str> = calls.iter().map(|e| e["arguments"]["message"].as_str().unwrap()).collect();
    messages.sort_unstable();
    messages.dedup();
    assert_eq!(messages.len(), 400, "every call once");
    assert!(calls.iter().all(|e| e["principal"]["user"] == "alice"), "{}", calls[0]);
    let (code, out) = portcullis(&path, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");

    // Someone with database access rewrites one decision: the chain names the event.
    let seq = calls[123]["seq"].as_i64().unwrap();
    pg.psql(&format!("UPDATE audit_events SET decision = 'deny' WHERE seq = {seq}"));
    let (code, out) = portcullis(&path, &["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("event {seq}: its content does not match its hash")), "{out}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test.sh"]
async fn a_store_url_from_the_environment_and_a_clear_error_when_it_is_unset() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portcullis.yaml");
    std::fs::write(&config, "store: { url_env: PORTCULLIS_TEST_STORE }\n").unwrap();
    let out = Command::new(BIN)
        .args(["keys", "create", "--user", "bob", "--config"])
        .arg(&config)
        .env("PORTCULLIS_TEST_STORE", pg.url())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(pg.psql("SELECT user_name FROM api_keys").contains("bob"));
    assert!(!dir.path().join("portcullis.db").exists(), "nothing went to SQLite");

    let out = Command::new(BIN)
        .args(["keys", "list", "--config"])
        .arg(&config)
        .env_remove("PORTCULLIS_TEST_STORE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("$PORTCULLIS_TEST_STORE (store.url_env) is not set"), "{err}");
}
