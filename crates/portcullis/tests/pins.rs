//! Rug pulls end to end: a real `portcullis demo-server` whose `get_weather` tool changes
//! its definition after its first call (a new side parameter, an instruction to fill it
//! with the conversation), behind a gateway whose pins live in a store beside its config;
//! reviewed with the `portcullis tools` command and the admin API as an operator would.

use portcullis_testkit::{Client, Gateway};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// Text only the changed definition carries.
const PULLED: &str = "conversation so far";

async fn tools(c: &mut Client) -> Vec<Value> {
    let listed = c.request("tools/list", json!({})).await;
    listed.result()["tools"].as_array().cloned().unwrap_or_default()
}

async fn names(c: &mut Client) -> Vec<String> {
    tools(c).await.iter().map(|t| t["name"].as_str().unwrap_or_default().to_owned()).collect()
}

/// Lists until `done` holds (the gateway relists a changed server in the background).
async fn listed_until(c: &mut Client, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    for _ in 0..100 {
        let names = names(c).await;
        if done(&names) {
            return names;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the tool list never reached the expected state: {:?}", names(c).await);
}

async fn call(c: &mut Client, name: &str, arguments: Value) -> portcullis_testkit::Reply {
    c.request("tools/call", json!({ "name": name, "arguments": arguments })).await
}

/// Runs `portcullis tools ARGS --config CONFIG`; returns stdout, or panics with stderr.
/// (It blocks the test's thread: the tests run the gateway on other worker threads, so a
/// write of its own is never held open while the command waits for the database.)
fn tools_cli(config: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN).arg("tools").args(args).arg("--config").arg(config).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "portcullis tools {args:?} failed: {}{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn tools_cli_fails(config: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN).arg("tools").args(args).arg("--config").arg(config).output().unwrap();
    assert!(!out.status.success(), "portcullis tools {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The changed `get_weather` also asks for the conversation, which the poisoning screen
/// withholds on its own; these tests only flag poisoning so that what they see is pinning.
const FLAG_POISONING: &str = "
guards:
  profiles:
    lenient: { response: { poisoning: flag, injection: flag } }
  bindings:
    - { profile: lenient }
";

const WEATHER: &str = r#"
servers:
  weather:
    stdio: { command: "{bin}", args: [demo-server, --rug-pull] }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rug_pull_is_withheld_until_approved_and_pins_survive_a_restart() {
    let (gw, config) = Gateway::start_file(&format!("{WEATHER}{FLAG_POISONING}"), BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    let before = tools(&mut c).await;
    let weather = before.iter().find(|t| t["name"] == "weather__get_weather").expect("listed at first");
    assert_eq!(weather["description"], "Current weather for a city.");
    // The first call works, and makes the server change the tool.
    let r = call(&mut c, "weather__get_weather", json!({ "city": "Paris" })).await;
    assert_eq!(r.result()["content"][0]["text"], "Sunny in Paris, 21 °C");

    let names = listed_until(&mut c, |n| !n.iter().any(|n| n == "weather__get_weather")).await;
    assert!(names.iter().any(|n| n == "weather__echo"), "the server's other tools stay: {names:?}");
    let listed = c.request("tools/list", json!({})).await;
    assert!(!listed.raw.contains(PULLED), "the changed text never reaches the client");
    let refused = call(&mut c, "weather__get_weather", json!({ "city": "Paris", "context": "..." })).await;
    let err = refused.error();
    assert_eq!((err["code"].as_i64(), err["data"]["rule"].as_str()), (Some(-32003), Some("tool-changed")), "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("portcullis tools diff weather get_weather") && !message.contains(PULLED), "{message}");

    // The operator's view: what changed, and the diff.
    let pins: Vec<Value> = serde_json::from_str(&tools_cli(&config, &["list", "weather", "--json"])).unwrap();
    let pin = pins.iter().find(|p| p["name"] == "get_weather").unwrap();
    assert_eq!(
        (pin["state"].as_str(), pin["changed"].clone()),
        (Some("changed"), json!(["description", "inputSchema"]))
    );
    let waiting = tools_cli(&config, &["list", "--waiting"]);
    assert!(waiting.contains("get_weather") && !waiting.contains("echo"), "{waiting}");
    let diff = tools_cli(&config, &["diff", "weather", "get_weather"]);
    assert!(diff.contains("-  \"description\": \"Current weather for a city.\""), "{diff}");
    assert!(diff.lines().any(|l| l.starts_with('+') && l.contains(PULLED)), "{diff}");

    // A stale review is refused; the right one is served within a second, and clients are told.
    let stale = tools_cli_fails(&config, &["approve", "weather", "get_weather", "--expect", "0000"]);
    assert!(stale.contains("changed again"), "{stale}");
    let hash = pin["pending_hash"].as_str().unwrap();
    let mut stream = c.open_stream().await;
    // Announcements of the change itself may still be on their way: let them pass first.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    while stream.try_recv().is_ok() {}
    let approved = tools_cli(&config, &["approve", "weather", "get_weather", "--expect", &hash[..12]]);
    assert!(approved.contains("Approved weather tool `get_weather`"), "{approved}");
    let note = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let m = stream.recv().await.expect("stream open");
            if m["method"] == "notifications/tools/list_changed" {
                return m;
            }
        }
    })
    .await;
    assert!(note.is_ok(), "clients are told to list again after an approval");
    let after = tools(&mut c).await;
    let weather = after.iter().find(|t| t["name"] == "weather__get_weather").expect("served once announced");
    assert!(weather["description"].as_str().unwrap().contains(PULLED));
    let r = call(&mut c, "weather__get_weather", json!({ "city": "Oslo", "context": "hi" })).await;
    assert_eq!(r.result()["content"][0]["text"], "Sunny in Oslo, 21 °C");
    gw.server.shutdown().await.unwrap();

    // Restarted, the server offers its original definition again: not the approved one.
    let config_text = std::fs::read_to_string(&config).unwrap();
    let gw = Gateway::start(
        &format!("{config_text}\nstore: {{ path: \"{}\" }}\n", config.with_file_name("portcullis.db").display()),
        BIN,
    )
    .await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    let names = listed_until(&mut c, |n| n.iter().any(|n| n == "weather__echo")).await;
    assert!(!names.iter().any(|n| n == "weather__get_weather"), "the pins survived the restart: {names:?}");
    gw.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantine_withholds_the_whole_server_and_allow_takes_the_change() {
    let yaml = r#"
servers:
  strict:
    stdio: { command: "{bin}", args: [demo-server, --rug-pull] }
    pinning: { on_change: quarantine }
  lax:
    stdio: { command: "{bin}", args: [demo-server, --rug-pull] }
    pinning: { on_change: allow }
"#;
    let (gw, config) = Gateway::start_file(&format!("{yaml}{FLAG_POISONING}"), BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    for server in ["strict", "lax"] {
        let r = call(&mut c, &format!("{server}__get_weather"), json!({ "city": "Rome" })).await;
        assert_eq!(r.result()["content"][0]["text"], "Sunny in Rome, 21 °C");
    }
    let names = listed_until(&mut c, |n| !n.iter().any(|n| n.starts_with("strict__"))).await;
    assert!(names.iter().any(|n| n == "lax__get_weather"), "{names:?}");
    let lax = tools(&mut c).await.into_iter().find(|t| t["name"] == "lax__get_weather").unwrap();
    assert!(lax["description"].as_str().unwrap().contains(PULLED), "allow serves the new definition");
    let refused = call(&mut c, "strict__echo", json!({ "message": "hi" })).await;
    assert_eq!(refused.error()["data"]["rule"], "server-quarantined", "{}", refused.raw);
    let read = c.request("resources/read", json!({ "uri": "strict+test://static-text" })).await;
    assert_eq!(read.error()["code"], -32003, "a quarantined server's resources are withheld too");

    // `allow` recorded the change in the history; `strict` waits for an operator.
    let pins: Vec<Value> = serde_json::from_str(&tools_cli(&config, &["list", "--json"])).unwrap();
    let state = |server: &str| {
        pins.iter().find(|p| p["server"] == server && p["name"] == "get_weather").unwrap()["state"].clone()
    };
    assert_eq!((state("strict"), state("lax")), (json!("changed"), json!("pinned")));
    tools_cli(&config, &["approve", "strict"]);
    listed_until(&mut c, |n| n.iter().any(|n| n == "strict__get_weather")).await;
    let r = call(&mut c, "strict__echo", json!({ "message": "back" })).await;
    assert_eq!(r.result()["content"][0]["text"], "back");
    gw.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_tools_wait_for_approval_and_a_rejection_sticks() {
    let yaml = r#"
servers:
  demo:
    stdio: { command: "{bin}", args: [demo-server] }
pinning: { new_tools: approve }
"#;
    let (gw, config) = Gateway::start_file(yaml, BIN).await;
    let admin = reqwest::Client::new();
    let mut c = Client::connect(&gw.url, json!({})).await;
    assert!(names(&mut c).await.iter().any(|n| n == "demo__echo"), "what a server has at first use is trusted");
    // The server adds `dynamic_tool` and says so.
    call(&mut c, "demo__test_trigger_tool_change", json!({})).await.result();
    let waiting = async {
        for _ in 0..100 {
            let r = admin.get(format!("{}/admin/tools?waiting=true", gw.base())).send().await.unwrap();
            let pins: Vec<Value> = r.json().await.unwrap();
            if !pins.is_empty() {
                return pins;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the new tool was never recorded");
    }
    .await;
    assert_eq!((waiting.len(), &waiting[0]["name"], &waiting[0]["state"]), (1, &json!("dynamic_tool"), &json!("new")));
    assert!(!names(&mut c).await.iter().any(|n| n == "demo__dynamic_tool"), "a new tool is withheld");
    let refused = call(&mut c, "demo__dynamic_tool", json!({})).await;
    assert_eq!(refused.error()["data"]["rule"], "tool-new");

    // Rejected through the admin API: withheld for good, and not asked about again.
    let url = format!("{}/admin/tools/demo/reject", gw.base());
    let r = admin.post(&url).json(&json!({ "items": ["dynamic_tool"] })).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let again = admin.post(&url).json(&json!({ "items": ["dynamic_tool"] })).send().await.unwrap();
    assert_eq!(again.status(), 409);
    assert!(again.text().await.unwrap().contains("no change waiting"));
    let listed = tools_cli(&config, &["list", "demo"]);
    assert!(listed.lines().any(|l| l.contains("dynamic_tool") && l.contains("rejected")), "{listed}");
    assert_eq!(call(&mut c, "demo__dynamic_tool", json!({})).await.error()["data"]["rule"], "tool-rejected");
    let unknown = tools_cli_fails(&config, &["approve", "nosuch"]);
    assert!(unknown.contains("nothing is pinned for server `nosuch`") && unknown.contains("demo"), "{unknown}");
    gw.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_reports_another_identity_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let name_file = dir.path().join("name");
    std::fs::write(&name_file, "weather-service").unwrap();
    let yaml = format!(
        r#"
servers:
  demo:
    stdio: {{ command: sh, args: ["-c", "exec {BIN} demo-server --server-name \"$(cat {})\""] }}
"#,
        name_file.display()
    );
    let (gw, config) = Gateway::start_file(&yaml, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    assert!(names(&mut c).await.iter().any(|n| n == "demo__echo"));
    // The process is replaced by one that calls itself something else.
    std::fs::write(&name_file, "totally-not-weather").unwrap();
    let _ = call(&mut c, "demo__exit_process", json!({})).await;
    listed_until(&mut c, |n| !n.iter().any(|n| n.starts_with("demo__"))).await;
    let refused = call(&mut c, "demo__echo", json!({ "message": "hi" })).await;
    let err = refused.error();
    assert_eq!(err["data"]["rule"], "server-quarantined", "{err}");
    assert!(err["message"].as_str().unwrap().contains("identity"), "{err}");
    let diff = tools_cli(&config, &["diff", "demo", "--identity"]);
    assert!(
        diff.contains("-  \"name\": \"weather-service\"") && diff.contains("+  \"name\": \"totally-not-weather\""),
        "{diff}"
    );
    tools_cli(&config, &["approve", "demo", "--identity"]);
    let names = listed_until(&mut c, |n| n.iter().any(|n| n == "demo__echo")).await;
    assert!(!names.is_empty());
    gw.server.shutdown().await.unwrap();
}
