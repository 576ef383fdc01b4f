//! The gateway against real third-party MCP peers: the official conformance suite, the
//! reference servers `server-everything` and `server-filesystem`, and the Python SDK
//! client. They are installed by `scripts/test-deps.sh`; these tests are `#[ignore]`d so
//! a plain `cargo test` needs nothing but Rust, and `scripts/test.sh` runs them all.

use portcullis_testkit::{free_port, node22, node_modules, python, repo_root, wait_port, Client, Gateway};
use serde_json::{json, Value};
use std::process::Stdio;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// The demo server unprefixed, as the conformance suite expects its fixture names, reached
/// with each upstream protocol choice.
fn conformance_config(protocol: &str) -> String {
    format!("servers:\n  demo:\n    stdio: {{ command: \"{{bin}}\", args: [demo-server] }}\n    prefix: \"\"\n    protocol: {protocol}\n")
}

async fn run_conformance(url: &str, extra: &[&str]) -> (bool, String) {
    let cli = node_modules().join("@modelcontextprotocol/conformance/dist/index.js");
    let out = Command::new(node22())
        .arg(cli)
        .args(["server", "--url", url])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run the conformance suite");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The conformance suite's URL must be on `localhost` for its DNS-rebinding checks.
fn localhost_url(gw: &Gateway) -> String {
    format!("http://localhost:{}/mcp", gw.server.addr.port())
}

#[tokio::test]
#[ignore = "needs the test peers: run scripts/test.sh"]
async fn conformance_legacy_suite_passes_through_the_gateway() {
    for upstream in ["legacy", "modern"] {
        let gw = Gateway::start(&conformance_config(upstream), BIN).await;
        let baseline = repo_root().join("tests/conformance/expected-failures-2025.yaml");
        let (ok, out) =
            run_conformance(&localhost_url(&gw), &["--expected-failures", baseline.to_str().unwrap()]).await;
        assert!(ok, "conformance (2025-11-25, active suite, {upstream} upstream) failed:\n{out}");
        assert!(out.contains("Total: ") && out.contains(" 0 failed"), "{out}");
        gw.server.shutdown().await.unwrap();
    }
}

#[tokio::test]
#[ignore = "needs the test peers: run scripts/test.sh"]
async fn conformance_modern_suite_matches_its_expected_failures() {
    for upstream in ["legacy", "modern"] {
        let gw = Gateway::start(&conformance_config(upstream), BIN).await;
        let file = match upstream {
            "legacy" => "expected-failures-2026-legacy-upstream.yaml",
            _ => "expected-failures-2026.yaml",
        };
        let baseline = repo_root().join("tests/conformance").join(file);
        let args =
            ["--suite", "all", "--spec-version", "2026-07-28", "--expected-failures", baseline.to_str().unwrap()];
        let (ok, out) = run_conformance(&localhost_url(&gw), &args).await;
        assert!(ok, "conformance (2026-07-28, {upstream} upstream) differs from its expected failures:\n{out}");
        gw.server.shutdown().await.unwrap();
    }
}

async fn python_client(args: &[&str]) -> Value {
    python_script("python_client.py", args).await
}

async fn python_script(name: &str, args: &[&str]) -> Value {
    let script = repo_root().join("tests/peers").join(name);
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        Command::new(python()).arg(script).args(args).stdin(Stdio::null()).output(),
    )
    .await
    .expect("the Python client finished within 120 s")
    .expect("run python");
    assert!(
        out.status.success(),
        "python client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the client prints JSON")
}

fn assert_python_view(v: &Value) {
    assert_eq!(v["echo"], "from python", "{v}");
    assert_eq!(v["resource"], "This is the content of the static text resource.");
    assert_eq!(v["resource_uri"], "demo+test://static-text");
    assert_eq!(v["prompt"], "This is a simple prompt for testing.");
    assert_eq!(v["tool_error"], true);
    assert!(v["tools"].as_array().unwrap().iter().any(|t| t == "demo__echo"));
}

#[tokio::test]
#[ignore = "needs the test peers: run scripts/test.sh"]
async fn python_sdk_client_over_http_in_both_eras() {
    let gw = Gateway::start("servers:\n  demo:\n    stdio: { command: \"{bin}\", args: [demo-server] }\n", BIN).await;
    // `auto` probes with server/discover and stays on the stateless revision.
    for (mode, version) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let v = python_client(&[mode, &gw.url]).await;
        assert_python_view(&v);
        assert_eq!(v["protocol_version"], version, "mode {mode}");
    }
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs the test peers: run scripts/test.sh"]
async fn python_sdk_client_over_stdio() {
    let dir = tempfile_dir();
    let config = dir.join("portcullis.yaml");
    std::fs::write(&config, format!("servers:\n  demo:\n    stdio: {{ command: \"{BIN}\", args: [demo-server] }}\n"))
        .unwrap();
    for (mode, version) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let v = python_client(&[mode, "stdio", BIN, "serve", "--stdio", "--config", config.to_str().unwrap()]).await;
        assert_python_view(&v);
        assert_eq!(v["protocol_version"], version, "mode {mode}");
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-test-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `server-everything` on a free port with the given transport.
async fn everything(transport: &str) -> (tokio::process::Child, u16) {
    let port = free_port();
    let script = node_modules().join("@modelcontextprotocol/server-everything/dist/index.js");
    let child = Command::new(node22())
        .arg(script)
        .arg(transport)
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start server-everything");
    wait_port(port).await;
    (child, port)
}

#[tokio::test]
#[ignore = "needs the test peers: run scripts/test.sh"]
async fn server_everything_over_stdio_streamable_http_and_legacy_sse() {
    let (_http, http_port) = everything("streamableHttp").await;
    let (_sse, sse_port) = everything("sse").await;
    let node = node22();
    let script = node_modules().join("@modelcontextprotocol/server-everything/dist/index.js");
    let yaml = format!(
        r#"
servers:
  ev_stdio:
    stdio: {{ command: "{}", args: ["{}", stdio] }}
  ev_http:
    http: {{ url: "http://127.0.0.1:{http_port}/mcp" }}
  ev_sse:
    sse: {{ url: "http://127.0.0.1:{sse_port}/sse" }}
"#,
        node.display(),
        script.display()
    );
    let gw = Gateway::start(&yaml, BIN).await;
    let ready: Value = reqwest::get(format!("{}/readyz", gw.base())).await.unwrap().json().await.unwrap();
    for s in ["ev_stdio", "ev_http", "ev_sse"] {
        assert_eq!(ready["servers"][s]["state"], "ready", "{ready}");
    }
    let mut c = Client::connect(&gw.url, json!({})).await;
    let list = c.request("tools/list", json!({})).await;
    let names: Vec<&str> =
        list.result()["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    for prefix in ["ev_stdio", "ev_http", "ev_sse"] {
        let name = format!("{prefix}__echo");
        assert!(names.contains(&name.as_str()), "{name} missing from {names:?}");
        let r = c.request("tools/call", json!({ "name": name, "arguments": { "message": prefix } })).await;
        assert_eq!(r.result()["content"][0]["text"], format!("Echo: {prefix}"), "{}", r.raw);
    }
    // Resources from every transport, mapped and readable.
    let resources = c.request("resources/list", json!({})).await;
    let first_http = resources.result()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uri"].as_str().unwrap().starts_with("ev_http+"))
        .expect("a resource from the HTTP upstream")
        .clone();
    let read = c.request("resources/read", json!({ "uri": first_http["uri"] })).await;
    assert_eq!(read.result()["contents"][0]["uri"], first_http["uri"]);
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs the test peers: run scripts/test.sh"]
async fn server_filesystem_over_stdio() {
    let dir = tempfile_dir();
    std::fs::write(dir.join("notes.txt"), "portcullis was here\n").unwrap();
    let script = node_modules().join("@modelcontextprotocol/server-filesystem/dist/index.js");
    let yaml = format!(
        "servers:\n  fs:\n    stdio: {{ command: \"{}\", args: [\"{}\", \"{}\"] }}\n",
        node22().display(),
        script.display(),
        dir.display()
    );
    let gw = Gateway::start(&yaml, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    let path = dir.join("notes.txt");
    let r = c.request("tools/call", json!({ "name": "fs__read_text_file", "arguments": { "path": path } })).await;
    assert_eq!(r.result()["content"][0]["text"], "portcullis was here\n", "{}", r.raw);
    let r = c.request("tools/call", json!({ "name": "fs__list_directory", "arguments": { "path": dir } })).await;
    assert!(r.result()["content"][0]["text"].as_str().unwrap().contains("notes.txt"));
    let outside =
        c.request("tools/call", json!({ "name": "fs__read_text_file", "arguments": { "path": "/etc/passwd" } })).await;
    assert_eq!(outside.result()["isError"], true, "the server's own sandbox still applies: {}", outside.raw);
    gw.server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
#[ignore = "needs the test peers: run scripts/test.sh"]
async fn both_eras_reach_python_sdk_servers_that_speak_2026_07_28() {
    let port = free_port();
    let script = repo_root().join("tests/peers/python_server.py");
    let _http = Command::new(python())
        .arg(&script)
        .args(["http", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Python server");
    wait_port(port).await;
    let yaml = format!(
        "servers:\n  py:\n    http: {{ url: \"http://127.0.0.1:{port}/mcp\" }}\n  pys:\n    stdio: {{ command: \"{}\", args: [\"{}\", stdio] }}\n",
        python().display(),
        script.display()
    );
    let gw = Gateway::start(&yaml, BIN).await;
    let ready: Value = reqwest::get(format!("{}/readyz", gw.base())).await.unwrap().json().await.unwrap();
    for s in ["py", "pys"] {
        assert_eq!(ready["servers"][s]["protocol"], "2026-07-28", "{ready}");
    }
    for (mode, version) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let v = python_script("python_mrtr_client.py", &[mode, &gw.url]).await;
        assert_eq!(v["protocol_version"], version, "{v}");
        assert_eq!(v["tools"], json!(["py__add", "py__confirm", "pys__add", "pys__confirm"]));
        assert_eq!(v["add"], "5");
        assert_eq!(v["confirm_http"], "deploy: confirmed=True state=round1", "mode {mode}: {v}");
        assert_eq!(v["confirm_stdio"], "rollback: confirmed=True state=round1", "mode {mode}: {v}");
        assert_eq!(v["note"], "hello from python");
        assert_eq!(v["asked"], json!(["Confirm deploy?", "Confirm rollback?"]));
    }
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs the test peers: run scripts/test.sh"]
async fn a_modern_client_answers_server_everythings_sampling_through_input_required() {
    // server-everything speaks only the legacy revisions: its sampling request becomes an
    // input_required round for a 2026-07-28 client, and the gateway resumes the parked call.
    let script = node_modules().join("@modelcontextprotocol/server-everything/dist/index.js");
    let yaml = format!(
        "servers:\n  ev:\n    stdio: {{ command: \"{}\", args: [\"{}\", stdio] }}\n",
        node22().display(),
        script.display()
    );
    let gw = Gateway::start(&yaml, BIN).await;
    let ready: Value = reqwest::get(format!("{}/readyz", gw.base())).await.unwrap().json().await.unwrap();
    assert_eq!(ready["servers"]["ev"]["protocol"], "2025-11-25", "{ready}");
    let c = Client::new(&gw.url);
    let tool = "ev__trigger-sampling-request";
    let call = |extra: Value| {
        let mut params = json!({ "name": tool, "arguments": { "prompt": "capital of France?", "maxTokens": 20 } });
        if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        params["_meta"] = json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                  "io.modelcontextprotocol/clientCapabilities": { "sampling": {} } });
        json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params }).to_string()
    };
    let headers = [("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", tool)];
    let first = c.post_with(&call(json!({})), &headers).await;
    let result = first.result();
    assert_eq!(result["resultType"], "input_required", "{}", first.raw);
    let (key, ask) = result["inputRequests"].as_object().unwrap().iter().next().unwrap();
    assert_eq!(ask["method"], "sampling/createMessage");
    assert!(ask["params"]["messages"][0]["content"]["text"].as_str().unwrap().contains("capital of France?"));
    let answer = json!({ "requestState": result["requestState"], "inputResponses": { key.as_str(): {
        "role": "assistant", "content": { "type": "text", "text": "Paris" }, "model": "m", "stopReason": "endTurn" } } });
    let done = c.post_with(&call(answer), &headers).await;
    let text = done.result()["content"][0]["text"].as_str().unwrap().to_owned();
    assert!(text.contains("LLM sampling result") && text.contains("Paris"), "{}", done.raw);
    gw.server.shutdown().await.unwrap();
}
