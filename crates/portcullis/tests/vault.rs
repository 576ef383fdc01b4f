//! The credential vault end to end, with the real binary: secrets set with `portcullis
//! secrets`, injected into a stdio server's environment and an HTTP server's headers, an
//! OAuth client secret and the access token it buys, rotated under a running gateway (no
//! restart), a missing secret named by `/readyz`, and every byte the run printed (logs at
//! trace level included) searched for the planted values.

use portcullis_demo::fingerprint;
use portcullis_testkit::{free_port, wait_port, Client};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
/// Test-only vault key (base64 of 32 bytes).
const VAULT_KEY: &str = "dGVzdCB2YXVsdCBrZXkgLS0gMzIgYnl0ZXMgbG9uZyE=";

/// Values nobody would print by accident: if one shows up in any output, it leaked.
const FS_V1: &str = "planted-fs-token-7f3a9c1e";
const FS_V2: &str = "planted-fs-token-rotated-55d0b2";
const API_V1: &str = "planted-api-token-c4e81a";
const API_V2: &str = "planted-api-token-rotated-9be7";
const OAUTH_SECRET: &str = "planted-oauth-client-secret-3d2f";
/// The access token the test's token endpoint issues for it.
const OAUTH_TOKEN: &str = "planted-oauth-access-token-81ac";
/// Set through the admin API.
const FS_V3: &str = "planted-fs-token-admin-api-6e01";
const PLANTED: [&str; 7] = [FS_V1, FS_V2, FS_V3, API_V1, API_V2, OAUTH_SECRET, OAUTH_TOKEN];

/// Everything a test run printed, for the leak check at the end.
#[derive(Default)]
struct Output(String);

impl Output {
    fn add(&mut self, what: &str, text: &str) {
        self.0.push_str(&format!("--- {what}\n{text}\n"));
    }
}

struct Secrets<'a> {
    config: &'a Path,
}

impl Secrets<'_> {
    /// `portcullis secrets <args>`, with `stdin` as input; returns (ok, stdout + stderr).
    fn run(&self, args: &[&str], stdin: &str, out: &mut Output) -> (bool, String) {
        let (ok, text) = secrets_cli(self.config, args, stdin, Some(VAULT_KEY));
        out.add(&format!("secrets {args:?}"), &text);
        (ok, text)
    }
}

/// `portcullis secrets <args> --config <config>` with `stdin` as input (and the vault key in
/// `$PORTCULLIS_VAULT_KEY` if given): (success, stdout + stderr).
fn secrets_cli(config: &Path, args: &[&str], stdin: &str, key: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut command = Command::new(BIN);
    command.arg("secrets").args(args).arg("--config").arg(config);
    if let Some(key) = key {
        command.env("PORTCULLIS_VAULT_KEY", key);
    }
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let done = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&done.stdout), String::from_utf8_lossy(&done.stderr));
    (done.status.success(), text)
}

/// A child process, killed when dropped (also when a test fails half way).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `portcullis demo-server` over HTTP, answering only bearers listed in `accepted`.
async fn demo_requiring_bearer(accepted: &Path) -> (Process, u16) {
    let port = free_port();
    let child = Command::new(BIN)
        .args(["demo-server", "--listen", &format!("127.0.0.1:{port}"), "--require-bearer-file"])
        .arg(accepted)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port).await;
    (Process(child), port)
}

/// A gateway process whose stdout and stderr go to files.
struct GatewayProcess {
    _child: Process,
    port: u16,
    url: String,
}

impl GatewayProcess {
    fn start(config: &Path, dir: &Path) -> GatewayProcess {
        let port = free_port();
        let logs = dir.join("gateway.log");
        let log = std::fs::File::create(&logs).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--config"])
            .arg(config)
            .env("PORTCULLIS_VAULT_KEY", VAULT_KEY)
            // Every log line, at every level, is searched for leaks.
            .env("PORTCULLIS_LOG", "trace")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        GatewayProcess { _child: Process(child), port, url: format!("http://127.0.0.1:{port}/mcp") }
    }

    fn base(&self) -> &str {
        self.url.trim_end_matches("/mcp")
    }

    async fn readyz(&self, out: &mut Output) -> Value {
        let text = reqwest::get(format!("{}/readyz", self.base())).await.unwrap().text().await.unwrap();
        out.add("readyz", &text);
        serde_json::from_str(&text).unwrap()
    }
}

async fn call(c: &mut Client, tool: &str, out: &mut Output) -> Value {
    let reply = c.request("tools/call", json!({ "name": tool, "arguments": { "message": "hi" } })).await;
    out.add(&format!("tools/call {tool}"), &reply.raw);
    reply.response().clone()
}

fn text_of(response: &Value) -> String {
    response["result"]["content"][0]["text"].as_str().unwrap_or_default().to_owned()
}

/// Polls `check` until it holds or `limit` passes; returns how long it took.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_secrets_reach_upstreams_rotate_without_restart_and_never_leak() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = Output::default();

    // An HTTP upstream that only answers callers presenting the bearer in `accepted`.
    let accepted = dir.path().join("accepted");
    std::fs::write(&accepted, API_V1).unwrap();
    let (api, api_port) = demo_requiring_bearer(&accepted).await;

    // A second one behind OAuth client credentials: the token endpoint (in this test) checks
    // the planted client secret and issues the planted access token.
    let oauth_accepted = dir.path().join("oauth-accepted");
    std::fs::write(&oauth_accepted, OAUTH_TOKEN).unwrap();
    let (oauth_api, oauth_port) = demo_requiring_bearer(&oauth_accepted).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token_url = format!("http://{}/token", listener.local_addr().unwrap());
    let token_endpoint = axum::Router::new().route(
        "/token",
        axum::routing::post(|headers: axum::http::HeaderMap| async move {
            use base64::Engine;
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("gw:{OAUTH_SECRET}"));
            let ok = headers.get("authorization").is_some_and(|v| v == format!("Basic {basic}").as_str());
            let answer = if ok {
                json!({ "access_token": OAUTH_TOKEN, "token_type": "Bearer", "expires_in": 3600 })
            } else {
                json!({ "error": "invalid_client" })
            };
            let status = if ok { 200 } else { 401 };
            (axum::http::StatusCode::from_u16(status).unwrap(), axum::Json(answer))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, token_endpoint).await });

    let config = dir.path().join("portcullis.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
servers:
  fs:
    stdio: {{ command: "{BIN}", args: [demo-server, --credential-env, FS_TOKEN], env: {{ FS_TOKEN: "secret:fs_token" }} }}
  api:
    http: {{ url: "http://127.0.0.1:{api_port}/mcp", headers: {{ Authorization: "secret:api_auth" }} }}
  nosy:
    stdio: {{ command: "{BIN}", args: [demo-server, --credential-env, PORTCULLIS_VAULT_KEY] }}
  idp:
    http: {{ url: "http://127.0.0.1:{oauth_port}/mcp" }}
    auth: {{ oauth: {{ token_url: "{token_url}", client_id: gw, client_secret: "secret:oauth_client" }} }}
"#
        ),
    )
    .unwrap();
    let secrets = Secrets { config: &config };
    let (ok, text) = secrets.run(&["set", "fs_token"], &format!("{FS_V1}\n"), &mut out);
    assert!(ok && text.contains("servers.fs.stdio.env.FS_TOKEN"), "{text}");
    let (ok, text) = secrets.run(&["set", "oauth_client"], OAUTH_SECRET, &mut out);
    assert!(ok && text.contains("servers.idp.auth.oauth.client_secret"), "{text}");

    // `api_auth` is not set yet: the gateway starts, and says which secret `api` waits for.
    let gw = GatewayProcess::start(&config, dir.path());
    wait_port(gw.port).await;
    let settled = eventually(Duration::from_secs(20), || {
        let r = reqwest::get(format!("{}/readyz", gw.base()));
        async { r.await.map(|r| r.status() == 200).unwrap_or(false) }
    })
    .await;
    assert!(settled.is_some(), "gateway not ready");
    let ready = gw.readyz(&mut out).await;
    assert_eq!(ready["servers"]["fs"]["state"], "ready", "{ready}");
    assert_eq!(ready["servers"]["api"]["state"], "down", "{ready}");
    let why = ready["servers"]["api"]["detail"].as_str().unwrap();
    assert!(why.contains("secret `api_auth`") && why.contains("portcullis secrets set api_auth"), "{why}");

    let mut client = Client::connect(&gw.url, json!({})).await;
    let got = call(&mut client, "fs__credential_fingerprint", &mut out).await;
    assert_eq!(text_of(&got), fingerprint(FS_V1), "the stdio server got the vault's value: {got}");
    let got = call(&mut client, "nosy__credential_fingerprint", &mut out).await;
    assert_eq!(text_of(&got), "unset", "a stdio server does not inherit the vault key: {got}");
    let got = call(&mut client, "idp__echo", &mut out).await;
    assert_eq!(text_of(&got), "hi", "the OAuth upstream accepted the gateway's own token: {got}");
    let down = call(&mut client, "api__echo", &mut out).await;
    assert!(down["error"]["message"].as_str().unwrap_or_default().contains("api_auth"), "{down}");

    // Setting the missing secret brings `api` up without a restart.
    let (ok, text) = secrets.run(&["set", "api_auth"], &format!("Bearer {API_V1}"), &mut out);
    assert!(ok, "{text}");
    let up = eventually(Duration::from_secs(10), || {
        let r = reqwest::get(format!("{}/readyz", gw.base()));
        async { r.await.unwrap().json::<Value>().await.unwrap()["servers"]["api"]["state"] == "ready" }
    })
    .await;
    assert!(up.is_some(), "api did not come up after its secret was set: {}", gw.readyz(&mut out).await);
    let mut client = Client::connect(&gw.url, json!({})).await;
    let got = call(&mut client, "api__echo", &mut out).await;
    assert_eq!(text_of(&got), "hi", "the HTTP upstream accepted the vault's bearer: {got}");

    // Rotation: the upstream accepts only the new token from now on; the gateway picks the
    // new values up and reconnects, with no restart.
    std::fs::write(&accepted, API_V2).unwrap();
    std::env::set_var("NEW_FS_TOKEN", FS_V2);
    let (ok, text) = secrets.run(&["rotate", "fs_token", "--from-env", "NEW_FS_TOKEN"], "", &mut out);
    assert!(ok && text.contains("version 2"), "{text}");
    let new_value = dir.path().join("new-api");
    std::fs::write(&new_value, format!("Bearer {API_V2}\n")).unwrap();
    let (ok, text) = secrets.run(&["rotate", "api_auth", "--from-file", new_value.to_str().unwrap()], "", &mut out);
    assert!(ok, "{text}");
    let start = Instant::now();
    let (mut fs_now, mut api_now) = (String::new(), String::new());
    while start.elapsed() < Duration::from_secs(10) {
        let mut c = Client::connect(&gw.url, json!({})).await;
        fs_now = text_of(&call(&mut c, "fs__credential_fingerprint", &mut out).await);
        api_now = text_of(&call(&mut c, "api__echo", &mut out).await);
        if fs_now == fingerprint(FS_V2) && api_now == "hi" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(fs_now, fingerprint(FS_V2), "the rotated secret reached the stdio server");
    assert_eq!(api_now, "hi", "the HTTP upstream got the rotated bearer");

    // Listing shows names, versions and users, never values.
    let (ok, listing) = secrets.run(&["list", "--json"], "", &mut out);
    assert!(ok, "{listing}");
    let listing: Value = serde_json::from_str(&listing).unwrap();
    assert_eq!(listing["secrets"][1]["name"], "fs_token", "{listing}");
    assert_eq!(listing["secrets"][1]["version"], 2, "{listing}");
    assert_eq!(listing["secrets"][0]["used_by"], json!(["servers.api.http.headers.Authorization"]));
    let (ok, table) = secrets.run(&["list"], "", &mut out);
    assert!(ok && table.contains("fs_token"), "{table}");
    // A bad value source and a bad name are clear errors, not leaks.
    let (ok, text) = secrets.run(&["set", "bad name"], FS_V1, &mut out);
    assert!(!ok && text.contains("invalid secret name"), "{text}");

    // The admin API does the same (this gateway has no `auth`: its loopback callers are admins),
    // and its answers carry no values either. A value set there reaches the upstream too.
    let http = reqwest::Client::new();
    let admin = format!("{}/admin/secrets", gw.base());
    let listed = http.get(&admin).send().await.unwrap().text().await.unwrap();
    out.add("GET /admin/secrets", &listed);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert!(listed.as_array().unwrap().iter().any(|s| s["name"] == "fs_token" && s["version"] == 2), "{listed}");
    let put = http.put(format!("{admin}/fs_token")).json(&json!({ "value": FS_V3 })).send().await.unwrap();
    let put = put.text().await.unwrap();
    out.add("PUT /admin/secrets/fs_token", &put);
    assert_eq!(serde_json::from_str::<Value>(&put).unwrap()["version"], 3, "{put}");
    let start = Instant::now();
    while fs_now != fingerprint(FS_V3) && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut c = Client::connect(&gw.url, json!({})).await;
        fs_now = text_of(&call(&mut c, "fs__credential_fingerprint", &mut out).await);
    }
    assert_eq!(fs_now, fingerprint(FS_V3), "a value set through the admin API reached the stdio server");
    let bad = http.put(format!("{admin}/bad%20name")).json(&json!({ "value": "x" })).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let gone = http.delete(format!("{admin}/oauth_client")).send().await.unwrap();
    assert_eq!(gone.status(), 200);
    let missing = http.delete(format!("{admin}/oauth_client")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    gw.readyz(&mut out).await;

    // The leak check: every byte printed by the gateway (trace level), the CLI, the
    // upstreams' answers and /readyz; and the database file, where values are sealed.
    drop(gw);
    drop((api, oauth_api));
    out.add("gateway log", &std::fs::read_to_string(dir.path().join("gateway.log")).unwrap());
    assert!(out.0.contains("vault secrets changed"), "the log shows the reload");
    for planted in PLANTED {
        assert!(
            !out.0.contains(planted),
            "secret value {planted} appears in the output:\n{}",
            context(&out.0, planted)
        );
    }
    for file in ["portcullis.db", "portcullis.db-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        for planted in PLANTED {
            assert!(!bytes.windows(planted.len()).any(|w| w == planted.as_bytes()), "{planted} in {file}");
        }
    }
}

fn context(text: &str, needle: &str) -> String {
    text.lines().filter(|l| l.contains(needle)).take(5).collect::<Vec<_>>().join("\n")
}

#[test]
fn a_config_that_uses_secrets_needs_the_vault_key_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portcullis.yaml");
    std::fs::write(
        &config,
        "servers:\n  fs:\n    stdio: { command: x, env: { TOKEN: \"secret:tok\" } }\nvault: { key_env: PORTCULLIS_TEST_NO_SUCH_KEY }\n",
    )
    .unwrap();
    let out = Command::new(BIN).args(["serve", "--listen", "127.0.0.1:0", "--config"]).arg(&config).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("$PORTCULLIS_TEST_NO_SUCH_KEY") && err.contains("openssl rand -base64 32"), "{err}");

    // A secret on the command line is refused at load, with the way out.
    std::fs::write(&config, "servers:\n  fs:\n    stdio: { command: x, args: [\"secret:tok\"] }\n").unwrap();
    let out = Command::new(BIN).arg("check").arg(&config).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("servers.fs.stdio.args[0]") && err.contains("env"), "{err}");

    // The key from a file; a wrong key is named as such.
    let key_file = dir.path().join("vault.key");
    std::fs::write(&key_file, format!("{VAULT_KEY}\n")).unwrap();
    std::fs::write(&config, "vault: { key_file: vault.key }\n").unwrap();
    let secrets = |args: &[&str], stdin: &str| secrets_cli(&config, args, stdin, None);
    let (ok, text) = secrets(&["set", "tok"], "value-1");
    assert!(ok, "{text}");
    std::fs::write(&key_file, "c29tZSBvdGhlciBrZXkgb2YgdGhpcnR5LXR3byBieXQ=\n").unwrap();
    let (ok, text) = secrets(&["list"], "");
    assert!(!ok && text.contains("not the key this database's secrets were sealed with"), "{text}");
    std::fs::write(&key_file, "short").unwrap();
    let (ok, text) = secrets(&["list"], "");
    assert!(!ok && text.contains("vault.key") && text.contains("base64"), "{text}");
}
