//! The gateway end to end: a real `portcullis demo-server` child behind an in-process
//! gateway, driven by a raw Streamable HTTP client.

use portcullis_testkit::{Client, Gateway};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

const ONE_DEMO: &str = r#"
servers:
  demo:
    stdio: { command: "{bin}", args: [demo-server] }
"#;

/// The demo server held to the legacy revisions (no discovery probe).
const LEGACY_DEMO: &str = r#"
servers:
  demo:
    stdio: { command: "{bin}", args: [demo-server] }
    protocol: legacy
"#;

/// Starts `portcullis demo-server` on Streamable HTTP; returns the child and its port.
async fn demo_over_http() -> (tokio::process::Child, u16) {
    let port = portcullis_testkit::free_port();
    let child = tokio::process::Command::new(BIN)
        .args(["demo-server", "--listen", &format!("127.0.0.1:{port}")])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    portcullis_testkit::wait_port(port).await;
    (child, port)
}

fn tool_names(result: &Value) -> Vec<String> {
    result["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn lists_and_calls_prefixed_tools() {
    let gw = Gateway::start(ONE_DEMO, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    let names = tool_names(c.request("tools/list", json!({})).await.result());
    assert!(names.contains(&"demo__echo".to_owned()), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("demo__")), "{names:?}");
    let r = c.request("tools/call", json!({ "name": "demo__echo", "arguments": { "message": "héllo" } })).await;
    assert_eq!(r.result()["content"][0]["text"], "héllo");
    let r = c
        .request(
            "prompts/get",
            json!({ "name": "demo__test_prompt_with_arguments",
        "arguments": { "arg1": "a", "arg2": "b" } }),
        )
        .await;
    assert_eq!(r.result()["messages"][0]["content"]["text"], "Prompt with arguments: arg1='a', arg2='b'");
    let r = c
        .request(
            "completion/complete",
            json!({ "ref": { "type": "ref/prompt", "name": "demo__test_prompt_with_arguments" },
        "argument": { "name": "arg1", "value": "testV" } }),
        )
        .await;
    assert_eq!(r.result()["completion"]["values"], json!(["testValue1", "testValue2"]));
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn resources_are_mapped_reversibly() {
    let gw = Gateway::start(ONE_DEMO, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    let list = c.request("resources/list", json!({})).await;
    let uris: Vec<&str> =
        list.result()["resources"].as_array().unwrap().iter().map(|r| r["uri"].as_str().unwrap()).collect();
    assert!(uris.contains(&"demo+test://static-text"), "{uris:?}");
    let templates = c.request("resources/templates/list", json!({})).await;
    assert_eq!(templates.result()["resourceTemplates"][0]["uriTemplate"], "demo+test://template/{id}/data");
    let read = c.request("resources/read", json!({ "uri": "demo+test://template/42/data" })).await;
    let content = &read.result()["contents"][0];
    assert_eq!(content["uri"], "demo+test://template/42/data");
    assert!(content["text"].as_str().unwrap().contains("Data for ID: 42"));
    let missing = c.request("resources/read", json!({ "uri": "nowhere+test://x" })).await;
    assert_eq!(missing.error()["code"], -32602);
    let sub = c.request("resources/subscribe", json!({ "uri": "demo+test://watched-resource" })).await;
    assert_eq!(sub.result(), &json!({}));
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn results_pass_through_byte_exact() {
    // The same call straight to the demo server over HTTP and through the gateway.
    let (mut child, port) = demo_over_http().await;
    // Legacy on both paths, so both answers have the same shape.
    let yaml =
        format!("servers:\n  demo:\n    http: {{ url: \"http://127.0.0.1:{port}/mcp\" }}\n    protocol: legacy\n");
    let gw = Gateway::start(&yaml, BIN).await;
    let mut direct = Client::connect(&format!("http://127.0.0.1:{port}/mcp"), json!({})).await;
    let mut via = Client::connect(&gw.url, json!({})).await;
    let a = direct.request("tools/call", json!({ "name": "test_multiple_content_types", "arguments": {} })).await;
    let b = via.request("tools/call", json!({ "name": "demo__test_multiple_content_types", "arguments": {} })).await;
    let result_text = |raw: &str| raw.split_once(r#""result":"#).unwrap().1.to_owned();
    assert_eq!(result_text(&a.raw), result_text(&b.raw));
    gw.server.shutdown().await.unwrap();
    child.kill().await.ok();
}

#[tokio::test]
async fn bad_input_gets_clear_json_rpc_errors() {
    let gw = Gateway::start(ONE_DEMO, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    let r = c.post_raw("{not json").await;
    assert_eq!((r.status, r.error()["code"].as_i64()), (400, Some(-32700)));
    let r = c.post_raw(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).await;
    assert_eq!((r.status, r.error()["code"].as_i64()), (400, Some(-32600)));
    let r = c.post_raw(r#"{"jsonrpc":"2.0","id":7,"params":{}}"#).await;
    assert_eq!(r.error()["code"], -32600);
    assert_eq!(r.response()["id"], 7, "the error names the request it answers");
    let r = c.request("no/such/method", json!({})).await;
    assert_eq!(r.error()["code"], -32601);
    let r = c.request("tools/call", json!({ "name": "demo__nope", "arguments": {} })).await;
    assert!(r.error()["message"].as_str().unwrap().contains("nope"), "{}", r.raw);
    let r = c.request("tools/call", json!({ "name": "ghost__tool" })).await;
    assert_eq!(r.error()["message"], "Unknown tool: ghost__tool");
    let r = c.request("tools/list", json!({ "cursor": "garbage" })).await;
    assert_eq!(r.error()["code"], -32602);

    let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":"{}"}}}}"#, "a".repeat(5 << 20));
    assert_eq!(c.post_raw(&big).await.status, 413);
    let r = c.post_with(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, &[("origin", "http://evil.example.com")]).await;
    assert_eq!(r.status, 403);
    let r = c.post_with(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, &[("origin", "http://localhost:3000")]).await;
    assert_eq!(r.status, 200);

    let anonymous = Client::new(&gw.url);
    let r = anonymous.post_raw(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).await;
    assert_eq!(r.status, 400);
    assert!(r.error()["message"].as_str().unwrap().contains("Mcp-Session-Id"));
    let mut forged = Client::new(&gw.url);
    forged.session = Some("forged-session".into());
    assert_eq!(forged.post_raw(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).await.status, 404);

    let del = c.http.delete(&gw.url).header("mcp-session-id", c.session.clone().unwrap()).send().await.unwrap();
    assert_eq!(del.status(), 200);
    assert_eq!(c.request("tools/list", json!({})).await.status, 404, "a deleted session is gone");
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn progress_reaches_the_client_with_its_own_token() {
    for config in [LEGACY_DEMO, ONE_DEMO] {
        progress_and_logs(config).await;
    }
}

async fn progress_and_logs(config: &str) {
    let gw = Gateway::start(config, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    let r = c
        .request(
            "tools/call",
            json!({ "name": "demo__test_tool_with_progress", "arguments": {},
                                        "_meta": { "progressToken": "my-token" } }),
        )
        .await;
    assert!(r.sse, "related messages switch the answer to SSE");
    let progress = r.notifications("notifications/progress");
    assert_eq!(progress.len(), 3, "{}", r.raw);
    for p in &progress {
        assert_eq!(p["params"]["progressToken"], "my-token");
    }
    let steps: Vec<i64> = progress.iter().map(|p| p["params"]["progress"].as_i64().unwrap()).collect();
    assert_eq!(steps, [0, 50, 100]);
    assert!(r.result()["content"].is_array());
    // Logs sent while handling a request travel on that request's stream.
    let r = c.request("tools/call", json!({ "name": "demo__test_tool_with_logging", "arguments": {} })).await;
    assert_eq!(r.notifications("notifications/message").len(), 3, "{}", r.raw);
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn sampling_requests_go_back_to_the_client_that_caused_them() {
    // From a legacy upstream (a server->client request) and a modern one (input_required).
    for config in [LEGACY_DEMO, ONE_DEMO] {
        sampling_round_trip(config).await;
    }
}

async fn sampling_round_trip(config: &str) {
    let gw = Gateway::start(config, BIN).await;
    let c = Client::connect(&gw.url, json!({ "sampling": {} })).await;
    let call = json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/call",
                       "params": { "name": "demo__test_sampling", "arguments": { "prompt": "2+2?" } } });
    let mut answer = c.post_stream(&call).await;
    let ask = answer.next().await;
    assert_eq!(ask["method"], "sampling/createMessage", "{ask}");
    assert_eq!(ask["params"]["messages"][0]["content"]["text"], "2+2?");
    let reply = json!({ "jsonrpc": "2.0", "id": ask["id"], "result": {
        "role": "assistant", "content": { "type": "text", "text": "4" }, "model": "m", "stopReason": "endTurn" } });
    assert_eq!(c.post_raw(&reply.to_string()).await.status, 202);
    let done = answer.next().await;
    assert_eq!(done["id"], 9);
    assert_eq!(done["result"]["content"][0]["text"], "LLM response: 4", "{done}");
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn sampling_without_the_capability_is_refused() {
    let gw = Gateway::start(LEGACY_DEMO, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    let r = c.request("tools/call", json!({ "name": "demo__test_sampling", "arguments": { "prompt": "x" } })).await;
    let err = r.error();
    assert!(err["message"].as_str().unwrap().contains("capability"), "{err}");
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn federates_several_upstreams_and_virtual_servers() {
    let (mut child, port) = demo_over_http().await;
    let yaml = format!(
        r#"
servers:
  local:
    stdio: {{ command: "{{bin}}", args: [demo-server] }}
  remote:
    http: {{ url: "http://127.0.0.1:{port}/mcp" }}
    prefix: far
http: {{ page_size: 10 }}
virtual_servers:
  eng:
    tools: ["local__echo", "far__test_*"]
    rename: {{ "local__echo": "say" }}
"#
    );
    let gw = Gateway::start(&yaml, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    // Pages of 10 with gateway cursors, covering both upstreams without duplicates.
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let params = cursor.as_ref().map(|c| json!({ "cursor": c })).unwrap_or(json!({}));
        let r = c.request("tools/list", params).await;
        let page = tool_names(r.result());
        assert!(page.len() <= 10);
        all.extend(page);
        cursor = r.result()["nextCursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert!(all.contains(&"local__echo".to_owned()) && all.contains(&"far__echo".to_owned()), "{all:?}");
    let unique: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len());
    let r = c.request("tools/call", json!({ "name": "far__echo", "arguments": { "message": "via http" } })).await;
    assert_eq!(r.result()["content"][0]["text"], "via http");

    let mut eng = Client::connect(&format!("{}/eng", gw.url), json!({})).await;
    let names = tool_names(eng.request("tools/list", json!({})).await.result());
    assert!(names.contains(&"say".to_owned()));
    assert!(names.iter().all(|n| n == "say" || n.starts_with("far__test_")), "{names:?}");
    let r = eng.request("tools/call", json!({ "name": "say", "arguments": { "message": "renamed" } })).await;
    assert_eq!(r.result()["content"][0]["text"], "renamed");
    let r = eng.request("tools/call", json!({ "name": "far__echo", "arguments": { "message": "x" } })).await;
    assert_eq!(r.error()["message"], "Unknown tool: far__echo", "tools outside the virtual server are not callable");
    // A session belongs to its endpoint.
    let mut wrong = Client::new(&gw.url);
    wrong.session = eng.session.clone();
    assert_eq!(wrong.request("tools/list", json!({})).await.status, 404);
    let unknown = Client::new(&format!("{}/nope", gw.url));
    assert_eq!(unknown.post_raw(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).await.status, 404);
    gw.server.shutdown().await.unwrap();
    child.kill().await.ok();
}

#[tokio::test]
async fn list_changes_reach_connected_clients() {
    let gw = Gateway::start(ONE_DEMO, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    assert!(!tool_names(c.request("tools/list", json!({})).await.result()).contains(&"demo__dynamic_tool".to_owned()));
    let mut stream = c.open_stream().await;
    c.request("tools/call", json!({ "name": "demo__test_trigger_tool_change", "arguments": {} })).await.result();
    let note = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let m = stream.recv().await.expect("stream open");
            if m["method"] == "notifications/tools/list_changed" {
                return m;
            }
        }
    })
    .await
    .expect("list_changed within 10 s");
    assert!(note.get("id").is_none());
    let names = tool_names(c.request("tools/list", json!({})).await.result());
    assert!(names.contains(&"demo__dynamic_tool".to_owned()), "the cache was refreshed: {names:?}");
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_hung_upstream_times_out_and_a_dead_one_fails_fast() {
    let closed_port = portcullis_testkit::free_port();
    let yaml = format!(
        r#"
servers:
  demo:
    stdio: {{ command: "{{bin}}", args: [demo-server] }}
    timeout: 1s
  gone:
    http: {{ url: "http://127.0.0.1:{closed_port}/mcp" }}
"#
    );
    let gw = Gateway::start(&yaml, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    let started = Instant::now();
    let r = c.request("tools/call", json!({ "name": "demo__sleep", "arguments": { "ms": 5000 } })).await;
    assert_eq!(r.error()["code"], -32001);
    assert!(r.error()["message"].as_str().unwrap().contains("timed out"), "{}", r.raw);
    assert!(started.elapsed() < Duration::from_secs(4), "answered within the timeout");
    // The dead upstream is left out of lists; the live one still serves.
    let names = tool_names(c.request("tools/list", json!({})).await.result());
    assert!(names.contains(&"demo__echo".to_owned()));
    let started = Instant::now();
    let r = c.request("tools/call", json!({ "name": "gone__anything", "arguments": {} })).await;
    assert_eq!(r.error()["code"], -32001);
    assert!(started.elapsed() < Duration::from_secs(3));
    let ready: Value = reqwest::get(format!("{}/readyz", gw.base())).await.unwrap().json().await.unwrap();
    assert_eq!(ready["servers"]["gone"]["state"], "down");
    assert_eq!(ready["servers"]["demo"]["state"], "ready");
    assert_eq!(ready["status"], "degraded");
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_upstream_writing_garbage_is_marked_degraded_and_others_keep_serving() {
    let yaml = r#"
servers:
  noisy:
    stdio: { command: sh, args: ["-c", "echo 'this is not json'; exec \"$0\" demo-server", "{bin}"] }
  demo:
    stdio: { command: "{bin}", args: [demo-server] }
"#;
    let gw = Gateway::start(yaml, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    let r = c.request("tools/call", json!({ "name": "demo__echo", "arguments": { "message": "ok" } })).await;
    assert_eq!(r.result()["content"][0]["text"], "ok");
    let ready: Value = reqwest::get(format!("{}/readyz", gw.base())).await.unwrap().json().await.unwrap();
    assert_eq!(ready["servers"]["noisy"]["state"], "degraded", "{ready}");
    assert!(ready["servers"]["noisy"]["detail"].as_str().unwrap().contains("not JSON-RPC"));
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_dead_stdio_upstream_is_restarted() {
    let yaml = r#"
servers:
  demo:
    stdio: { command: "{bin}", args: [demo-server] }
"#;
    let gw = Gateway::start(yaml, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    let r = c.request("tools/call", json!({ "name": "demo__exit_process", "arguments": {} })).await;
    assert_eq!(r.error()["code"], -32001, "the call in flight fails: {}", r.raw);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = c.request("tools/call", json!({ "name": "demo__echo", "arguments": { "message": "back" } })).await;
        if r.response().get("result").is_some() {
            assert_eq!(r.result()["content"][0]["text"], "back");
            break;
        }
        assert!(Instant::now() < deadline, "not restarted: {}", r.raw);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready: Value = reqwest::get(format!("{}/readyz", gw.base())).await.unwrap().json().await.unwrap();
    assert_eq!(ready["servers"]["demo"]["restarts"], 1);
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_session_continues_on_a_second_replica_with_the_same_key() {
    // SAFETY of set_var: this variable name is used by this test alone.
    std::env::set_var("PC_TEST_REPLICA_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
    let yaml = r#"
servers:
  demo:
    stdio: { command: "{bin}", args: [demo-server] }
sessions: { key_env: PC_TEST_REPLICA_KEY }
"#;
    let a = Gateway::start(yaml, BIN).await;
    let b = Gateway::start(yaml, BIN).await;
    let on_a = Client::connect(&a.url, json!({})).await;
    let mut on_b = Client::new(&b.url);
    on_b.session = on_a.session.clone();
    let r = on_b.request("tools/call", json!({ "name": "demo__echo", "arguments": { "message": "hop" } })).await;
    assert_eq!(r.result()["content"][0]["text"], "hop");
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn config_edits_apply_without_restart_and_broken_edits_are_rejected() {
    let (gw, path) = Gateway::start_file(ONE_DEMO, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    assert!(tool_names(c.request("tools/list", json!({})).await.result()).contains(&"demo__echo".to_owned()));
    let app = [("origin", "https://app.example.com")];
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    assert_eq!(c.post_with(ping, &app).await.status, 403);
    let renamed = ONE_DEMO.replace("{bin}", BIN)
        + "    prefix: renamed\nhttp:\n  allowed_origins: [\"https://app.example.com\"]\n";
    std::fs::write(&path, renamed).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let names = tool_names(c.request("tools/list", json!({})).await.result());
        if names.contains(&"renamed__echo".to_owned()) {
            break;
        }
        assert!(Instant::now() < deadline, "reload not applied: {names:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(c.post_with(ping, &app).await.status, 200, "allowed origins follow the reload");
    std::fs::write(&path, "servers:\n  demo:\n    stdoi: {}\n").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let names = tool_names(c.request("tools/list", json!({})).await.result());
    assert!(names.contains(&"renamed__echo".to_owned()), "the broken edit left the old config in force: {names:?}");
    gw.server.shutdown().await.unwrap();
}

/// A 2026-07-28 request: `_meta` envelope plus the mirrored headers.
async fn modern(c: &Client, id: u64, method: &str, params: Value, name: Option<&str>) -> portcullis_testkit::Reply {
    modern_with(c, id, method, params, name, json!({})).await
}

async fn modern_with(
    c: &Client,
    id: u64,
    method: &str,
    mut params: Value,
    name: Option<&str>,
    capabilities: Value,
) -> portcullis_testkit::Reply {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": { "name": "testkit", "version": "1" }
    });
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string();
    let mut headers = vec![("mcp-protocol-version", "2026-07-28"), ("mcp-method", method)];
    if let Some(n) = name {
        headers.push(("mcp-name", n));
    }
    c.post_with(&body, &headers).await
}

#[tokio::test]
async fn modern_clients_are_served_statelessly_by_a_legacy_upstream() {
    let gw = Gateway::start(LEGACY_DEMO, BIN).await;
    let c = Client::new(&gw.url);
    let d = modern(&c, 1, "server/discover", json!({}), None).await;
    assert_eq!(d.status, 200, "{}", d.raw);
    assert!(d.headers.get("mcp-session-id").is_none(), "no sessions in 2026-07-28");
    assert!(d.result()["supportedVersions"].as_array().unwrap().contains(&json!("2026-07-28")));
    assert_eq!(d.result()["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "portcullis");
    let list = modern(&c, 2, "tools/list", json!({}), None).await;
    assert_eq!(list.result()["resultType"], "complete");
    assert_eq!(list.result()["cacheScope"], "private");
    assert!(list.result()["tools"].as_array().unwrap().iter().any(|t| t["name"] == "demo__echo"));
    let call = modern(
        &c,
        3,
        "tools/call",
        json!({ "name": "demo__echo", "arguments": { "message": "m" } }),
        Some("demo__echo"),
    )
    .await;
    assert_eq!(call.result()["content"][0]["text"], "m");
    // Header checks, removed methods, versions.
    let r = modern(&c, 4, "tools/call", json!({ "name": "demo__echo", "arguments": {} }), Some("other")).await;
    assert_eq!((r.status, r.error()["code"].as_i64()), (400, Some(-32020)));
    let r = modern(&c, 5, "ping", json!({}), None).await;
    assert_eq!((r.status, r.error()["code"].as_i64()), (404, Some(-32601)));
    let r = c
        .post_with(
            r#"{"jsonrpc":"2.0","id":6,"method":"tools/list","params":{}}"#,
            &[("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/list")],
        )
        .await;
    assert_eq!((r.status, r.error()["code"].as_i64()), (400, Some(-32602)));
    // An upstream's sampling request cannot reach a modern client that did not declare sampling.
    let r = modern(
        &c,
        7,
        "tools/call",
        json!({ "name": "demo__test_missing_capability", "arguments": {} }),
        Some("demo__test_missing_capability"),
    )
    .await;
    assert_eq!((r.status, r.error()["code"].as_i64()), (400, Some(-32021)), "{}", r.raw);
    assert_eq!(r.error()["data"]["requiredCapabilities"], json!({ "sampling": {} }));
    // Logs only when asked for.
    let r = modern(
        &c,
        8,
        "tools/call",
        json!({ "name": "demo__test_logging_tool", "arguments": {} }),
        Some("demo__test_logging_tool"),
    )
    .await;
    assert!(r.notifications("notifications/message").is_empty(), "{}", r.raw);
    gw.server.shutdown().await.unwrap();
}

/// Opens a 2026-07-28 `subscriptions/listen` stream asking for `notifications`.
async fn open_listen(c: &Client, id: Value, notifications: Value) -> portcullis_testkit::SseReader {
    let meta = json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} });
    let listen = json!({ "jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
        "params": { "_meta": meta, "notifications": notifications } });
    let resp = c
        .http
        .post(&c.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .body(listen.to_string())
        .send()
        .await
        .unwrap();
    portcullis_testkit::SseReader::new(resp)
}

#[tokio::test]
async fn subscriptions_listen_delivers_only_what_was_asked_for() {
    let gw = Gateway::start(ONE_DEMO, BIN).await;
    let c = Client::new(&gw.url);
    let mut stream = open_listen(&c, json!("L1"), json!({ "toolsListChanged": true })).await;
    let ack = stream.next().await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["notifications"], json!({ "toolsListChanged": true }));
    assert_eq!(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "L1");
    // A prompts change is filtered out; the tools change arrives, stamped.
    for tool in ["demo__test_trigger_prompt_change", "demo__test_trigger_tool_change"] {
        let r = modern(&c, 2, "tools/call", json!({ "name": tool, "arguments": {} }), Some(tool)).await;
        r.result();
    }
    let note = stream.next().await;
    assert_eq!(note["method"], "notifications/tools/list_changed", "{note}");
    assert_eq!(note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "L1");
    drop(stream);
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_legacy_client_uses_a_modern_upstream() {
    let (mut child, port) = demo_over_http().await;
    let yaml = format!("servers:\n  demo:\n    http: {{ url: \"http://127.0.0.1:{port}/mcp\" }}\n");
    let gw = Gateway::start(&yaml, BIN).await;
    let ready: Value = reqwest::get(format!("{}/readyz", gw.base())).await.unwrap().json().await.unwrap();
    assert_eq!(ready["servers"]["demo"]["protocol"], "2026-07-28", "auto picks the stateless revision: {ready}");

    let c = Client::connect(&gw.url, json!({ "elicitation": {} })).await;
    let mut stream = c.open_stream().await;
    // The upstream answers input_required; the gateway asks this client and retries.
    let body = json!({ "jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": { "name": "demo__test_input_required_result_elicitation", "arguments": {} } });
    let mut sse = c.post_stream(&body).await;
    let ask = sse.next().await;
    assert_eq!(ask["method"], "elicitation/create", "{ask}");
    assert_eq!(ask["params"]["message"], "What is your name?");
    let answer =
        json!({ "jsonrpc": "2.0", "id": ask["id"], "result": { "action": "accept", "content": { "name": "Alice" } } });
    assert_eq!(c.post_raw(&answer.to_string()).await.status, 202);
    let done = sse.next().await;
    assert_eq!(done["id"], 5);
    assert_eq!(done["result"]["content"][0]["text"], "Hello, Alice!", "{done}");

    // List changes reach the legacy client through the gateway's listen on the upstream.
    let mut c2 = Client::connect(&gw.url, json!({})).await;
    c2.request("tools/call", json!({ "name": "demo__test_trigger_tool_change", "arguments": {} })).await.result();
    let note = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let m = stream.recv().await.expect("stream open");
            if m["method"] == "notifications/tools/list_changed" {
                return m;
            }
        }
    })
    .await
    .expect("list_changed within 10 s");
    assert!(note.get("id").is_none());
    gw.server.shutdown().await.unwrap();
    child.kill().await.ok();
}

#[tokio::test]
async fn modern_clients_answer_a_legacy_upstreams_requests_through_input_required() {
    let gw = Gateway::start(LEGACY_DEMO, BIN).await;
    let ready: Value = reqwest::get(format!("{}/readyz", gw.base())).await.unwrap().json().await.unwrap();
    assert_eq!(ready["servers"]["demo"]["protocol"], "2025-11-25");
    let c = Client::new(&gw.url);
    let tool = "demo__test_sampling";
    let call = json!({ "name": tool, "arguments": { "prompt": "2+2?" } });
    let first = modern_with(&c, 1, "tools/call", call.clone(), Some(tool), json!({ "sampling": {} })).await;
    let result = first.result();
    assert_eq!(result["resultType"], "input_required", "{}", first.raw);
    let (key, ask) = result["inputRequests"].as_object().unwrap().iter().next().unwrap();
    assert_eq!(ask["method"], "sampling/createMessage");
    assert_eq!(ask["params"]["messages"][0]["content"]["text"], "2+2?");
    let state = result["requestState"].as_str().unwrap();

    let mut tampered = call.clone();
    tampered["requestState"] = json!(format!("{state}x"));
    tampered["inputResponses"] = json!({});
    let r = modern_with(&c, 2, "tools/call", tampered, Some(tool), json!({ "sampling": {} })).await;
    // An altered gateway state is refused; the tool does not run again upstream.
    assert_eq!((r.status, r.error()["code"].as_i64()), (400, Some(-32602)), "{}", r.raw);

    let mut retry = call.clone();
    retry["requestState"] = json!(state);
    retry["inputResponses"] = json!({ key.as_str(): {
        "role": "assistant", "content": { "type": "text", "text": "4" }, "model": "m", "stopReason": "endTurn" } });
    let done = modern_with(&c, 3, "tools/call", retry.clone(), Some(tool), json!({ "sampling": {} })).await;
    assert_eq!(done.result()["content"][0]["text"], "LLM response: 4", "{}", done.raw);
    assert_eq!(done.result()["resultType"], "complete");
    // The same state cannot be used twice.
    let again = modern_with(&c, 4, "tools/call", retry, Some(tool), json!({ "sampling": {} })).await;
    assert_eq!((again.status, again.error()["code"].as_i64()), (400, Some(-32602)));
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn resource_updates_reach_only_the_sessions_subscribed() {
    // A legacy upstream gets resources/subscribe; a 2026-07-28 one a listen for the resource.
    for config in [LEGACY_DEMO, ONE_DEMO] {
        resource_updates(config).await;
    }
}

async fn resource_updates(config: &str) {
    let gw = Gateway::start(config, BIN).await;
    let mut a = Client::connect(&gw.url, json!({})).await;
    let mut b = Client::connect(&gw.url, json!({})).await;
    let mut a_stream = a.open_stream().await;
    let mut b_stream = b.open_stream().await;
    a.request("resources/subscribe", json!({ "uri": "demo+test://watched-resource" })).await.result();
    // B's subscription comes and goes; the upstream keeps watching for A.
    b.request("resources/subscribe", json!({ "uri": "demo+test://watched-resource" })).await.result();
    b.request("resources/unsubscribe", json!({ "uri": "demo+test://watched-resource" })).await.result();
    b.request("tools/call", json!({ "name": "demo__test_update_resource", "arguments": {} })).await.result();
    // A fence every stream receives: whatever B got before it was sent before it.
    b.request("tools/call", json!({ "name": "demo__test_trigger_prompt_change", "arguments": {} })).await.result();
    let got_a = until_fence(&mut a_stream).await;
    let got_b = until_fence(&mut b_stream).await;
    let updates = |got: &[Value]| {
        got.iter().filter(|m| m["method"] == "notifications/resources/updated").cloned().collect::<Vec<_>>()
    };
    assert_eq!(updates(&got_a).len(), 1, "{got_a:?}");
    assert_eq!(updates(&got_a)[0]["params"]["uri"], "demo+test://watched-resource");
    assert!(updates(&got_b).is_empty(), "B unsubscribed: {got_b:?}");
    gw.server.shutdown().await.unwrap();
}

/// Messages on a GET stream before the next `prompts/list_changed`.
async fn until_fence(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        if m["method"] == "notifications/prompts/list_changed" {
            return seen;
        }
        seen.push(m);
    }
}

#[tokio::test]
async fn a_get_stream_resumes_with_last_event_id() {
    let gw = Gateway::start(LEGACY_DEMO, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    let mut stream = c.get_stream(None).await;
    c.request("tools/call", json!({ "name": "demo__test_trigger_prompt_change", "arguments": {} })).await.result();
    let (first_id, first) = stream.next_event().await;
    assert_eq!(first["method"], "notifications/prompts/list_changed");
    let first_id = first_id.expect("GET stream events carry ids");
    drop(stream);
    // Missed while disconnected.
    c.request("tools/call", json!({ "name": "demo__test_trigger_tool_change", "arguments": {} })).await.result();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut resumed = c.get_stream(Some(&first_id)).await;
    let (id, missed) = resumed.next_event().await;
    assert_eq!(missed["method"], "notifications/tools/list_changed", "{missed}");
    assert!(id.unwrap().parse::<u64>().unwrap() > first_id.parse::<u64>().unwrap());
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_request_ends_at_once() {
    let gw = Gateway::start(LEGACY_DEMO, BIN).await;
    let c = Client::connect(&gw.url, json!({})).await;
    let slow = json!({ "jsonrpc": "2.0", "id": 77, "method": "tools/call",
                       "params": { "name": "demo__sleep", "arguments": { "ms": 20000 } } });
    let (url, session, http) = (gw.url.clone(), c.session.clone().unwrap(), c.http.clone());
    let started = Instant::now();
    let call = tokio::spawn(async move {
        http.post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", session)
            .body(slow.to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 77, "reason": "user" } });
    assert_eq!(c.post_raw(&cancel.to_string()).await.status, 202);
    let answer: Value =
        serde_json::from_str(&tokio::time::timeout(Duration::from_secs(5), call).await.unwrap().unwrap()).unwrap();
    assert_eq!(answer["error"]["code"], -32800, "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn subscriptions_survive_an_upstream_restart() {
    for config in [LEGACY_DEMO, ONE_DEMO] {
        subscription_after_restart(config).await;
    }
}

async fn subscription_after_restart(config: &str) {
    let gw = Gateway::start(config, BIN).await;
    let mut a = Client::connect(&gw.url, json!({})).await;
    let mut stream = a.open_stream().await;
    a.request("resources/subscribe", json!({ "uri": "demo+test://watched-resource" })).await.result();
    a.request("tools/call", json!({ "name": "demo__exit_process", "arguments": {} })).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = a.request("tools/call", json!({ "name": "demo__echo", "arguments": { "message": "up" } })).await;
        if r.response().get("result").is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "not restarted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The gateway renews the subscription on the new upstream session in the background.
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.request("tools/call", json!({ "name": "demo__test_update_resource", "arguments": {} })).await.result();
    a.request("tools/call", json!({ "name": "demo__test_trigger_prompt_change", "arguments": {} })).await.result();
    let mut seen = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), stream.recv()).await.unwrap().unwrap();
        if m["method"] == "notifications/resources/updated" {
            assert_eq!(m["params"]["uri"], "demo+test://watched-resource");
            break;
        }
        assert!(seen.len() < 50, "no resource update after the restart: {seen:?}");
        seen.push(m);
    }
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_modern_listen_gets_updates_of_the_resources_it_names() {
    for config in [LEGACY_DEMO, ONE_DEMO] {
        let gw = Gateway::start(config, BIN).await;
        let c = Client::new(&gw.url);
        let wanted = json!({ "resourceSubscriptions": ["demo+test://watched-resource"] });
        let mut stream = open_listen(&c, json!(7), wanted).await;
        let ack = stream.next().await;
        assert_eq!(ack["params"]["notifications"]["resourceSubscriptions"], json!(["demo+test://watched-resource"]));
        // The upstream subscription is made in the background.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let tool = "demo__test_update_resource";
        modern(&c, 2, "tools/call", json!({ "name": tool, "arguments": {} }), Some(tool)).await.result();
        let update = stream.next().await;
        assert_eq!(update["method"], "notifications/resources/updated", "{update}");
        assert_eq!(update["params"]["uri"], "demo+test://watched-resource");
        assert_eq!(update["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 7);
        drop(stream);
        gw.server.shutdown().await.unwrap();
    }
}
