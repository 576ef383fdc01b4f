//! Traffic control end to end: the loop breaker in front of the real demo server.

use portcullis_testkit::{Client, Gateway};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

const DEMO: &str = r#"
servers:
  demo:
    stdio: { command: "{bin}", args: [demo-server] }
"#;

async fn echo(c: &mut Client, message: &str) -> portcullis_testkit::Reply {
    c.request("tools/call", json!({ "name": "demo__echo", "arguments": { "message": message } })).await
}

#[tokio::test]
async fn the_eleventh_identical_call_in_a_session_is_stopped_by_default() {
    let gw = Gateway::start(DEMO, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    for i in 1..=10 {
        assert_eq!(echo(&mut c, "close ticket 42").await.result()["content"][0]["text"], "close ticket 42", "call {i}");
    }
    let stopped = echo(&mut c, "close ticket 42").await;
    let err = stopped.error();
    assert_eq!((err["code"].as_i64(), err["data"]["rule"].as_str()), (Some(-32029), Some("loop-breaker")), "{err}");
    let retry = err["data"]["retryAfter"].as_u64().unwrap();
    assert!((1..=60).contains(&retry), "{err}");
    assert!(err["message"].as_str().unwrap().contains("called 10 times with the same arguments"), "{err}");
    // Other work in the session, and the same call in another session, go on.
    assert_eq!(echo(&mut c, "close ticket 43").await.result()["content"][0]["text"], "close ticket 43");
    let mut other = Client::connect(&gw.url, json!({})).await;
    assert_eq!(echo(&mut other, "close ticket 42").await.result()["content"][0]["text"], "close ticket 42");
    gw.server.shutdown().await.unwrap();

    // Turned off, the same loop runs on.
    let gw = Gateway::start(&format!("{DEMO}loops: {{ enabled: false }}\n"), BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    for _ in 0..15 {
        echo(&mut c, "close ticket 42").await.result();
    }
    gw.server.shutdown().await.unwrap();
}
