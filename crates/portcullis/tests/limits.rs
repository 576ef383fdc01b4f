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

#[tokio::test]
async fn a_rate_limit_answers_429_with_retry_after_and_other_tools_go_on() {
    let config = format!(
        "{DEMO}limits:\n  - {{ id: calm, tools: ['demo__echo'], rate: 2/m }}\n  - {{ id: daily, per_day: 4 }}\n"
    );
    let gw = Gateway::start(&config, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    for i in 0..2 {
        assert_eq!(echo(&mut c, &format!("note {i}")).await.result()["content"][0]["text"], format!("note {i}"));
    }
    let refused = echo(&mut c, "note 2").await;
    assert_eq!(refused.status, 429, "{}", refused.raw);
    let header: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    let err = refused.error();
    assert_eq!((err["code"].as_i64(), err["data"]["rule"].as_str()), (Some(-32029), Some("calm")), "{err}");
    assert_eq!((err["data"]["limit"].as_str(), err["data"]["retryAfter"].as_u64()), (Some("rate"), Some(header)));
    assert!((20..=30).contains(&header), "a token comes back every 30 s: {header}");
    assert!(err["message"].as_str().unwrap().contains("at most 2 calls per minute for anonymous"), "{err}");
    // Tools the rate does not cover go on, until the day's budget (refused calls not counted).
    let simple = json!({ "name": "demo__test_simple_text", "arguments": {} });
    for _ in 0..2 {
        c.request("tools/call", simple.clone()).await.result();
    }
    let over = c.request("tools/call", simple).await;
    assert_eq!(over.status, 429);
    assert_eq!(
        (over.error()["data"]["rule"].as_str(), over.error()["data"]["limit"].as_str()),
        (Some("daily"), Some("per_day"))
    );
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_concurrency_cap_refuses_the_call_over_it_and_frees_its_place() {
    let config =
        format!("{DEMO}limits:\n  - {{ id: one-at-a-time, per: [], tools: ['demo__sleep'], concurrent: 1 }}\n");
    let gw = Gateway::start(&config, BIN).await;
    let mut first = Client::connect(&gw.url, json!({})).await;
    let mut second = Client::connect(&gw.url, json!({})).await;
    let slow = first.request("tools/call", json!({ "name": "demo__sleep", "arguments": { "ms": 1500 } }));
    let quick = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        second.request("tools/call", json!({ "name": "demo__sleep", "arguments": { "ms": 1 } })).await
    };
    let (slow, refused) = tokio::join!(slow, quick);
    assert_eq!(slow.result()["content"][0]["text"], "slept 1500 ms");
    assert_eq!(refused.error()["data"]["limit"], "concurrent", "{}", refused.raw);
    assert!(refused.error()["message"].as_str().unwrap().contains("at most 1 call at once for everyone"));
    let again = second.request("tools/call", json!({ "name": "demo__sleep", "arguments": { "ms": 1 } })).await;
    assert_eq!(again.result()["content"][0]["text"], "slept 1 ms", "the place is free once the call ended");
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failing_upstream_trips_its_circuit_breaker_and_a_probe_closes_it() {
    let config = format!("{DEMO}    timeout: 300ms\nbreaker: {{ failures: 2, open_for: 1s }}\n");
    let gw = Gateway::start(&config, BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    let health = || async {
        let ready: serde_json::Value =
            reqwest::get(format!("{}/readyz", gw.base())).await.unwrap().json().await.unwrap();
        ready["servers"]["demo"]["breaker"].as_str().unwrap().to_owned()
    };
    assert_eq!(health().await, "closed");
    for _ in 0..2 {
        let slow = c.request("tools/call", json!({ "name": "demo__sleep", "arguments": { "ms": 2000 } })).await;
        assert_eq!(slow.error()["data"]["kind"], "timeout", "{}", slow.raw);
    }
    // Open: the next call is not sent, and says when to try again.
    let fast = echo(&mut c, "are you there").await;
    let err = fast.error();
    assert_eq!(
        (err["data"]["kind"].as_str(), err["data"]["rule"].as_str()),
        (Some("circuit_open"), Some("circuit-open"))
    );
    assert_eq!(err["data"]["retryAfter"], 1, "{err}");
    assert!(err["message"].as_str().unwrap().contains("server `demo` is failing"), "{err}");
    assert_eq!(health().await, "open");
    let metrics = reqwest::get(format!("{}/metrics", gw.base())).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("portcullis_upstream_circuit_open{server=\"demo\"} 1"), "{metrics}");
    // After the open time one call goes through as a probe; it succeeds and closes the circuit.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(echo(&mut c, "are you there").await.result()["content"][0]["text"], "are you there");
    assert_eq!(health().await, "closed");
    gw.server.shutdown().await.unwrap();
}

/// A throwaway Redis server from the machine's packages (`scripts/test-deps.sh` installs it).
struct Redis {
    child: std::process::Child,
    port: u16,
}

impl Redis {
    async fn start() -> Redis {
        let port = portcullis_testkit::free_port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed by scripts/test-deps.sh");
        portcullis_testkit::wait_port(port).await;
        Redis { child, port }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn limits_hold_across_two_replicas_sharing_redis() {
    let redis = Redis::start().await;
    let config = format!(
        "{DEMO}redis: {{ url: 'redis://127.0.0.1:{}/0' }}\nlimits:\n  \
         - {{ id: team-rate, per: [], tools: ['demo__echo'], rate: 3/m }}\n  \
         - {{ id: slow-one, per: [], tools: ['demo__sleep'], concurrent: 1 }}\n",
        redis.port
    );
    let (a, b) = (Gateway::start(&config, BIN).await, Gateway::start(&config, BIN).await);
    let (mut on_a, mut on_b) = (Client::connect(&a.url, json!({})).await, Client::connect(&b.url, json!({})).await);
    // The gateways connect to Redis in the background and say so in /readyz.
    for gw in [&a, &b] {
        wait_shared(gw).await;
    }
    for i in 0..3 {
        let c = if i == 2 { &mut on_b } else { &mut on_a };
        let reply = echo(c, &format!("shared {i}")).await;
        assert_eq!(reply.result()["content"][0]["text"], format!("shared {i}"));
    }
    let refused = echo(&mut on_b, "shared 3").await;
    assert_eq!(refused.status, 429, "the budget is shared: {}", refused.raw);
    assert_eq!(refused.error()["data"]["rule"], "team-rate");
    let again = echo(&mut on_a, "shared 4").await;
    assert_eq!(again.status, 429, "{}", again.raw);

    // A call in flight on one replica holds the place on the other.
    let slow = on_a.request("tools/call", json!({ "name": "demo__sleep", "arguments": { "ms": 1500 } }));
    let quick = async {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        on_b.request("tools/call", json!({ "name": "demo__sleep", "arguments": { "ms": 1 } })).await
    };
    let (slow, refused) = tokio::join!(slow, quick);
    assert_eq!(slow.result()["content"][0]["text"], "slept 1500 ms");
    assert_eq!(refused.error()["data"]["limit"], "concurrent", "{}", refused.raw);

    // Without Redis each replica counts alone, and calls go on.
    drop(redis);
    let reply = on_b.request("tools/call", json!({ "name": "demo__sleep", "arguments": { "ms": 1 } })).await;
    assert_eq!(reply.result()["content"][0]["text"], "slept 1 ms");
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

/// Waits until the gateway counts its limits in Redis.
async fn wait_shared(gw: &Gateway) {
    let url = format!("{}/readyz", gw.base());
    for _ in 0..100 {
        let ready: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        if ready["limits"] == "shared" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the gateway never connected to Redis");
}
