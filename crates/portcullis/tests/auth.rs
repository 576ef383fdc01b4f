//! Who is calling, end to end: API keys from `portcullis keys` against a running gateway
//! (401 challenges, revocation within a second, rotation without a failed request,
//! expiry, sessions bound to their owner), and the loopback rule at start.

use portcullis_testkit::{BearerLoad, Client, Gateway};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

const CONFIG: &str = r#"
auth:
  api_keys: {}
servers:
  demo:
    stdio: { command: "{bin}", args: [demo-server] }
"#;

/// `portcullis keys <args> --config <config>`: (exit status, stdout, stderr).
fn keys(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).arg("keys").args(args).arg("--config").arg(config).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// `portcullis keys <args> --json` that must succeed: its JSON.
fn keys_json(config: &Path, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let (ok, out, err) = keys(config, &args);
    assert!(ok, "keys {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

async fn echo(c: &mut Client, message: &str) -> portcullis_testkit::Reply {
    c.request("tools/call", json!({ "name": "demo__echo", "arguments": { "message": message } })).await
}

fn initialize() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
           "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_admit_callers_and_a_revoked_key_is_refused_within_a_second() {
    let (gw, config) = Gateway::start_file(CONFIG, BIN).await;
    let alice = keys_json(&config, &["create", "--user", "alice", "--team", "eng"]);
    let (alice_id, alice_key) = (alice["id"].as_str().unwrap(), alice["key"].as_str().unwrap());
    assert!(alice_key.starts_with("pcs_") && alice_key.contains(alice_id));

    // No credential: 401 with a challenge that names the protected-resource metadata.
    let anonymous = Client::new(&gw.url).post_raw(&initialize()).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.raw);
    let challenge = anonymous.headers["www-authenticate"].to_str().unwrap().to_owned();
    let metadata_url = format!("{}/.well-known/oauth-protected-resource/mcp", gw.base());
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );
    let metadata: Value = reqwest::get(&metadata_url).await.unwrap().json().await.unwrap();
    assert_eq!(metadata["resource"], gw.url.as_str());
    assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));

    // A forged key: 401 invalid_token, and the presented value is not echoed.
    let forged = format!("pcs_{alice_id}_{}", "A".repeat(43));
    let refused = Client::with_bearer(&gw.url, &forged).post_raw(&initialize()).await;
    assert_eq!(refused.status, 401);
    assert!(refused.headers["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
    assert!(!refused.raw.contains(&forged) && !refused.raw.contains(alice_key));

    let mut c = Client::connect_with_bearer(&gw.url, alice_key).await;
    assert_eq!(echo(&mut c, "hello").await.result()["content"][0]["text"], "hello");

    // Bob's valid key cannot ride on Alice's session.
    let bob = keys_json(&config, &["create", "--user", "bob"]);
    let mut hijack = Client::with_bearer(&gw.url, bob["key"].as_str().unwrap());
    hijack.session = c.session.clone();
    let r = echo(&mut hijack, "hi").await;
    assert_eq!(r.status, 404, "{}", r.raw);
    assert!(r.raw.contains("opened by another caller"), "{}", r.raw);

    let (ok, out, err) = keys(&config, &["revoke", alice_id]);
    assert!(ok, "{err}");
    assert!(out.contains(alice_id));
    let revoked_at = Instant::now();
    loop {
        let r = echo(&mut c, "still there?").await;
        if r.status == 401 {
            assert!(r.raw.contains("revoked"), "{}", r.raw);
            break;
        }
        assert!(revoked_at.elapsed() < Duration::from_secs(1), "a revoked key still worked after a second");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let listed = keys_json(&config, &["list"]);
    let statuses: Vec<_> =
        listed.as_array().unwrap().iter().map(|k| (k["user"].clone(), k["status"].clone())).collect();
    assert_eq!(statuses, [(json!("alice"), json!("revoked")), (json!("bob"), json!("active"))]);
    assert!(!listed.to_string().contains("pcs_"), "listings never show keys");
    gw.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_keeps_working_through_its_grace_period_so_clients_switch_without_a_failure() {
    let (gw, config) = Gateway::start_file(CONFIG, BIN).await;
    let old = keys_json(&config, &["create", "--app", "ci", "--role", "deployer"]);
    // Four clients open sessions continuously; they switch to the new key after the rotation.
    let load = BearerLoad::start(&gw.url, 4, old["key"].as_str().unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let new = keys_json(&config, &["rotate", old["id"].as_str().unwrap(), "--grace", "2s"]);
    assert_eq!((&new["app"], &new["roles"]), (&json!("ci"), &json!(["deployer"])), "same holder");
    tokio::time::sleep(Duration::from_millis(300)).await;
    load.switch_to(new["key"].as_str().unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ok, failures) = load.stop().await;
    assert!(failures.is_empty(), "requests failed during the rotation: {failures:?}");
    assert!(ok > 20);

    // After the grace period the old key is refused as expired; the new one works.
    let old_key = old["key"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = Client::with_bearer(&gw.url, old_key).post_raw(&initialize()).await;
        if r.status == 401 {
            assert!(r.raw.contains("expired"), "{}", r.raw);
            break;
        }
        assert!(Instant::now() < deadline, "the rotated key outlived its grace period");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut c = Client::connect_with_bearer(&gw.url, new["key"].as_str().unwrap()).await;
    assert_eq!(echo(&mut c, "new key").await.result()["content"][0]["text"], "new key");
    gw.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_with_an_expiry_stop_working_and_bad_key_commands_say_why() {
    let (gw, config) = Gateway::start_file(CONFIG, BIN).await;
    let short = keys_json(&config, &["create", "--user", "temp", "--expires", "1s"]);
    let key = short["key"].as_str().unwrap();
    assert!(short["expires_at"].is_string());
    assert_eq!(Client::with_bearer(&gw.url, key).post_raw(&initialize()).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = Client::with_bearer(&gw.url, key).post_raw(&initialize()).await;
    assert_eq!(r.status, 401);
    assert!(r.raw.contains("expired"), "{}", r.raw);

    let (ok, _, err) = keys(&config, &["create", "--team", "eng"]);
    assert!(!ok && err.contains("--user NAME and/or --app NAME"), "{err}");
    let (ok, _, err) = keys(&config, &["revoke", "0000000000000000"]);
    assert!(!ok && err.contains("no API key with id 0000000000000000"), "{err}");
    let (ok, _, err) = keys(&config, &["create", "--user", "has space"]);
    assert!(!ok && err.contains("without spaces"), "{err}");
    gw.server.shutdown().await.unwrap();
}

#[test]
fn without_auth_the_gateway_refuses_to_listen_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN).args(["serve", "--listen", "0.0.0.0:0"]).current_dir(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to listen on 0.0.0.0:0 without authentication"), "{err}");
    assert!(err.contains("auth: { anonymous: true }") && err.contains("api_keys"), "{err}");

    // Chosen explicitly, anonymous access beyond loopback starts.
    let config = dir.path().join("portcullis.yaml");
    std::fs::write(&config, "auth: { anonymous: true }\n").unwrap();
    let port = portcullis_testkit::free_port();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--listen", &format!("0.0.0.0:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut healthy = false;
    while Instant::now() < deadline && !healthy {
        healthy = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(healthy, "the gateway did not start with `auth: {{ anonymous: true }}`");

    // An `auth` section that lets nobody in is a config error.
    std::fs::write(&config, "auth: {}\n").unwrap();
    let out = Command::new(BIN).arg("check").arg(&config).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("auth: names no way to let callers in"));
    // JWT settings that cannot work are config errors with their path.
    std::fs::write(&config, "auth:\n  jwt: { issuer: \"https://idp.example.com\", algorithms: [HS256] }\n").unwrap();
    let out = Command::new(BIN).arg("check").arg(&config).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auth.jwt.algorithms: `HS256` uses a shared secret"), "{err}");
    std::fs::write(&config, "auth:\n  jwt: { issuer: \"https://idp.example.com\" }\n").unwrap();
    let out = Command::new(BIN).arg("check").arg(&config).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auth.jwt.audience: set the audience"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_manages_keys_for_callers_with_the_admin_role() {
    let (gw, config) = Gateway::start_file(CONFIG, BIN).await;
    let admin =
        keys_json(&config, &["create", "--user", "root", "--role", "admin"])["key"].as_str().unwrap().to_owned();
    let plain = keys_json(&config, &["create", "--user", "eve"])["key"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", gw.base());
    let as_ = |key: &str, req: reqwest::RequestBuilder| req.bearer_auth(key.to_owned());

    assert_eq!(http.get(url("/admin/keys")).send().await.unwrap().status(), 401);
    let r = as_(&plain, http.get(url("/admin/keys"))).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("`admin` role"));

    let r = as_(&admin, http.post(url("/admin/keys"))).json(&json!({ "team": "eng" })).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("a user and/or an app"));

    let r = as_(&admin, http.post(url("/admin/keys")))
        .json(&json!({ "user": "dave", "team": "eng", "expires": "30d" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let dave: Value = r.json().await.unwrap();
    let (dave_id, dave_key) = (dave["id"].as_str().unwrap().to_owned(), dave["key"].as_str().unwrap().to_owned());
    assert!(dave["expires_at"].is_string());
    let mut c = Client::connect_with_bearer(&gw.url, &dave_key).await;
    assert_eq!(echo(&mut c, "made by the API").await.result()["content"][0]["text"], "made by the API");

    let listed: Value = as_(&admin, http.get(url("/admin/keys"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert!(!listed.to_string().contains("pcs_"), "listings never show keys");

    // Rotate with no grace: the old key stops at once, the new one works.
    let r = as_(&admin, http.post(url(&format!("/admin/keys/{dave_id}/rotate"))))
        .json(&json!({ "grace": "0s" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.unwrap();
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    assert_eq!(Client::with_bearer(&gw.url, &dave_key).post_raw(&initialize()).await.status, 401);
    assert_eq!(Client::with_bearer(&gw.url, &new_key).post_raw(&initialize()).await.status, 200);

    let new_id = rotated["id"].as_str().unwrap();
    let r = as_(&admin, http.delete(url(&format!("/admin/keys/{new_id}")))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        Client::with_bearer(&gw.url, &new_key).post_raw(&initialize()).await.status,
        401,
        "revoked at once on this gateway"
    );
    let r = as_(&admin, http.delete(url("/admin/keys/0000000000000000"))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    gw.server.shutdown().await.unwrap();
}
