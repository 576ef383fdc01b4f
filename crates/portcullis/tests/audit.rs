//! The audit log end to end: calls through a gateway in front of the real demo server, read
//! back with `portcullis audit` and the admin API as an operator would, and the chain
//! checked by `portcullis audit verify` before and after someone edits the database file.

use portcullis_testkit::{Client, Gateway};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

const TOKEN: &str = "ghp_R4nd0mT0k3nV4lu3F0rT35t1ngPurp0s3s12";

/// Runs `portcullis audit ARGS --config CONFIG`: exit code and stdout.
fn audit(config: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).arg("audit").args(args).arg("--config").arg(config).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.code().is_some(), "portcullis audit {args:?} crashed: {}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), stdout)
}

fn events(config: &Path, args: &[&str]) -> Vec<Value> {
    let mut args = args.to_vec();
    args.push("--json");
    let (code, out) = audit(config, &args);
    assert_eq!(code, 0, "portcullis audit {args:?}: {out}");
    out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

async fn echo(c: &mut Client, message: &str) -> portcullis_testkit::Reply {
    c.request("tools/call", json!({ "name": "demo__echo", "arguments": { "message": message } })).await
}

/// Edits the database as someone with access to the file would.
fn tamper(db: &Path, statement: &str) {
    let script = format!("import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute({statement:?})\nc.commit()");
    let out = Command::new("python3").arg("-c").arg(script).arg(db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exchange_is_recorded_with_its_decisions_and_edits_are_detected() {
    let config = r#"
region: eu-west-1
servers:
  demo:
    stdio: { command: "{bin}", args: [demo-server] }
access:
  - allow: { tools: demo__echo }
  - id: no-adding
    deny: { tools: demo__add }
guards:
  profiles:
    default: { response: { pii: redact } }
"#;
    let (gw, path) = Gateway::start_file(config, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    assert_eq!(echo(&mut c, "hello").await.result()["content"][0]["text"], "hello");
    let blocked = echo(&mut c, &format!("deploy with {TOKEN}")).await;
    assert_eq!(blocked.error()["data"]["policy"], "guard");
    let redacted = echo(&mut c, "write to alice.smith@acmecorp.io").await;
    let text = redacted.result()["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("[REDACTED:EMAIL]"), "{text}");
    let denied = c.request("tools/call", json!({ "name": "demo__add", "arguments": { "a": 1, "b": 2 } })).await;
    assert_eq!(denied.error()["data"]["rule"], "no-adding");

    // The admin API sees the events as soon as the writer has them (within its batch).
    let admin = reqwest::Client::new();
    let url = format!("{}/admin/audit?tool=echo", gw.base());
    let mut listed = Value::Null;
    for _ in 0..100 {
        listed = admin.get(&url).send().await.unwrap().json().await.unwrap();
        if listed["events"].as_array().is_some_and(|e| e.len() == 3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(listed["events"].as_array().map(Vec::len), Some(3), "{listed}");
    let bad = admin.get(format!("{}/admin/audit?decision=blocked", gw.base())).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("use one of allow, flag, redact, deny"));
    gw.server.shutdown().await.unwrap();

    let calls = events(&path, &["--tool", "demo__echo"]);
    assert_eq!(calls.len(), 3, "{calls:?}");
    let [hello, secret, email] = [&calls[0], &calls[1], &calls[2]];
    assert_eq!((hello["decision"].as_str(), hello["outcome"].as_str()), (Some("allow"), Some("ok")));
    assert_eq!(hello["caller"], "anonymous");
    assert_eq!(hello["server"], "demo");
    assert_eq!(hello["region"], "eu-west-1");
    assert_eq!(hello["arguments"], json!({ "message": "hello" }));
    assert!(hello["result_bytes"].as_u64().unwrap() > 0 && hello["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(hello["decisions"].as_array().unwrap().iter().any(|d| d["policy"] == "access" && d["action"] == "allow"));
    // The blocked secret is on record as a denial by the guard, without the secret itself.
    assert_eq!((secret["decision"].as_str(), secret["outcome"].as_str()), (Some("deny"), Some("refused")));
    assert_eq!(secret["status"], -32002);
    let guard = secret["decisions"].as_array().unwrap().iter().find(|d| d["policy"] == "guard").unwrap();
    assert_eq!((guard["rule"].as_str(), guard["action"].as_str()), (Some("default"), Some("deny")));
    assert_eq!(guard["detail"]["detectors"], json!(["secret.github_pat"]));
    assert_eq!(secret["arguments"]["message"], "deploy with [REDACTED:GITHUB_PAT]");
    let (_, everything) = audit(&path, &["--json"]);
    assert!(!everything.contains(TOKEN), "the audit log holds the secret");
    // The redacted result is on record as a redaction.
    assert_eq!(email["decision"], "redact");
    let guards: Vec<(&str, &str)> = email["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["policy"] == "guard" && d["detail"]["detectors"] == json!(["pii.email"]))
        .map(|d| (d["detail"]["direction"].as_str().unwrap(), d["action"].as_str().unwrap()))
        .collect();
    assert_eq!(guards, [("request", "flag"), ("response", "redact")]);
    assert_eq!(email["arguments"]["message"], "write to [REDACTED:EMAIL]");

    // Filters: by decision, by user (the anonymous caller), and by time.
    let denials = events(&path, &["--decision", "deny"]);
    let rules: Vec<&str> = denials.iter().filter_map(|e| e["decisions"].as_array()?.last()?["rule"].as_str()).collect();
    assert_eq!(rules, ["default", "no-adding"]);
    assert_eq!(events(&path, &["--user", "anonymous", "--tool", "add"]).len(), 1);
    assert!(events(&path, &["--since", "2030-01-01T00:00:00Z"]).is_empty());
    assert_eq!(events(&path, &["--since", "1h", "--tool", "echo"]).len(), 3);
    let (code, lines) = audit(&path, &["--decision", "deny"]);
    assert_eq!(code, 0);
    assert!(
        lines.lines().any(|l| l.contains("demo__add deny refused") && l.contains("[access:no-adding deny]")),
        "{lines}"
    );

    // The chain is whole; an edit on disk is found and named.
    let (code, out) = audit(&path, &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("audit log intact:"), "{out}");
    let db = path.with_file_name("portcullis.db");
    let seq = denials[1]["seq"].as_i64().unwrap();
    tamper(&db, &format!("UPDATE audit_events SET decision = 'allow' WHERE seq = {seq}"));
    let (code, out) = audit(&path, &["verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("event {seq}: its content does not match its hash (edited)")), "{out}");
    let (code, out) = audit(&path, &["verify", "--json"]);
    let check: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((code, check["ok"].as_bool()), (1, Some(false)), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_calls_make_a_thousand_events_and_deletions_are_detected() {
    let config = "servers:\n  demo:\n    stdio: { command: \"{bin}\", args: [demo-server] }\n";
    let (gw, path) = Gateway::start_file(config, BIN).await;
    let clients = (0..4).map(|worker| {
        let url = gw.url.clone();
        tokio::spawn(async move {
            let mut c = Client::connect(&url, json!({})).await;
            for i in 0..250 {
                let reply = echo(&mut c, &format!("call {worker}-{i}")).await;
                assert_eq!(reply.result()["content"][0]["text"], format!("call {worker}-{i}"));
            }
        })
    });
    for client in clients.collect::<Vec<_>>() {
        client.await.unwrap();
    }
    gw.server.shutdown().await.unwrap();

    let calls = events(&path, &["--tool", "demo__echo"]);
    assert_eq!(calls.len(), 1000);
    let mut messages: Vec<&str> = calls.iter().map(|e| e["arguments"]["message"].as_str().unwrap()).collect();
    messages.sort_unstable();
    messages.dedup();
    assert_eq!(messages.len(), 1000, "every call once");
    assert!(events(&path, &["--decision", "lost"]).is_empty());
    let (_, limited) = audit(&path, &["--tool", "echo", "--limit", "5"]);
    assert_eq!(limited.lines().count(), 5);

    let (code, out) = audit(&path, &["verify"]);
    assert_eq!(code, 0, "{out}");
    let db = path.with_file_name("portcullis.db");
    let seq = calls[500]["seq"].as_i64().unwrap();
    tamper(&db, &format!("DELETE FROM audit_events WHERE seq = {seq}"));
    let (code, out) = audit(&path, &["verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("events {seq}..{seq} are missing (deleted)")), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_the_front_door_refuses_are_on_record_without_their_credential() {
    let config = "auth: { api_keys: {} }\nservers:\n  demo:\n    stdio: { command: \"{bin}\", args: [demo-server] }\n";
    let (gw, path) = Gateway::start_file(config, BIN).await;
    let bogus = "pcs_0123456789abcdef_NotARealSecretAtAllButLongEnough42";
    let init =
        json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } });
    let anonymous = Client::new(&gw.url).request("initialize", init.clone()).await;
    assert_eq!(anonymous.status, 401);
    let forged = Client::with_bearer(&gw.url, bogus).request("initialize", init).await;
    assert_eq!(forged.status, 401);
    gw.server.shutdown().await.unwrap();

    let refused = events(&path, &["--decision", "deny"]);
    let rules: Vec<&str> = refused.iter().filter_map(|e| e["decisions"][0]["rule"].as_str()).collect();
    assert_eq!(rules, ["no-credential", "invalid-credential"], "{refused:?}");
    for e in &refused {
        assert_eq!(
            (e["caller"].as_str(), e["method"].as_str(), e["status"].as_i64()),
            (Some("unauthenticated"), Some("POST /mcp"), Some(401))
        );
        assert_eq!(e["decisions"][0]["policy"], "auth");
    }
    let (_, everything) = audit(&path, &["--json"]);
    assert!(!everything.contains(bogus) && !everything.contains("NotARealSecret"), "{everything}");
}
