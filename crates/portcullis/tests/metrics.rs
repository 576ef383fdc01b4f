//! Prometheus metrics end to end: calls through a gateway in front of the real demo server
//! (answered, refused by an access rule, blocked by a guard, stopped by the loop breaker),
//! then `/metrics` read as Prometheus would, and parsed by the official client's parser.

use portcullis_testkit::{python, Client, Gateway};
use serde_json::json;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

const CONFIG: &str = r#"
servers:
  demo:
    stdio: { command: "{bin}", args: [demo-server] }
access:
  - allow: { tools: demo__echo }
  - id: no-adding
    deny: { tools: demo__add }
loops: { repeats: 3 }
"#;

async fn echo(c: &mut Client, message: &str) -> portcullis_testkit::Reply {
    c.request("tools/call", json!({ "name": "demo__echo", "arguments": { "message": message } })).await
}

/// Runs the calls every test here counts, and returns the scraped text.
async fn scrape_after_calls(gw: &Gateway) -> (reqwest::StatusCode, Option<String>, String) {
    let mut c = Client::connect(&gw.url, json!({})).await;
    for _ in 0..3 {
        echo(&mut c, "same again").await.result();
    }
    assert_eq!(echo(&mut c, "same again").await.error()["data"]["rule"], "loop-breaker");
    echo(&mut c, "ghp_R4nd0mT0k3nV4lu3F0rT35t1ngPurp0s3s12").await.error();
    c.request("tools/call", json!({ "name": "demo__add", "arguments": { "a": 1, "b": 2 } })).await.error();
    let reply = reqwest::get(format!("{}/metrics", gw.base())).await.unwrap();
    let status = reply.status();
    let kind = reply.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    (status, kind, reply.text().await.unwrap())
}

/// The value of the sample `name{labels}` (labels in the order the gateway writes them).
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_decisions_and_upstream_health() {
    let gw = Gateway::start(CONFIG, BIN).await;
    let (status, kind, text) = scrape_after_calls(&gw).await;
    assert_eq!(status, 200);
    assert!(kind.unwrap().starts_with("application/openmetrics-text"));
    let ok = r#"portcullis_requests_total{server="demo",tool="demo__echo",method="tools/call",outcome="ok",decision="allow"}"#;
    assert_eq!(sample(&text, ok), Some(3.0), "{text}");
    let refused = r#"portcullis_requests_total{server="demo",tool="demo__echo",method="tools/call",outcome="refused",decision="deny"}"#;
    assert_eq!(sample(&text, refused), Some(2.0), "the loop and the secret: {text}");
    let limit = r#"portcullis_limit_rejections_total{policy="limits",rule="loop-breaker"}"#;
    assert_eq!(sample(&text, limit), Some(1.0), "{text}");
    let access = r#"portcullis_refusals_total{policy="access",rule="no-adding"}"#;
    assert_eq!(sample(&text, access), Some(1.0), "{text}");
    let finding = r#"portcullis_guard_findings_total{detector="secret.github_pat",action="deny",direction="request"}"#;
    assert_eq!(sample(&text, finding), Some(1.0), "{text}");
    let calls = r#"portcullis_request_duration_seconds_count{server="demo",method="tools/call"}"#;
    assert_eq!(sample(&text, calls), Some(6.0), "{text}");
    assert_eq!(sample(&text, r#"portcullis_upstream_up{server="demo"}"#), Some(1.0), "{text}");
    assert_eq!(sample(&text, r#"portcullis_upstream_restarts{server="demo"}"#), Some(0.0), "{text}");
    assert!(sample(&text, "portcullis_audit_queue_depth").is_some(), "{text}");
    assert_eq!(sample(&text, "portcullis_audit_events_lost"), Some(0.0), "{text}");
    assert!(!text.contains("ghp_"), "no argument values in metrics");
    gw.server.shutdown().await.unwrap();

    let gw = Gateway::start(&format!("{CONFIG}metrics: {{ enabled: false }}\n"), BIN).await;
    let off = reqwest::get(format!("{}/metrics", gw.base())).await.unwrap();
    assert_eq!(off.status(), 404);
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs the test peers: run scripts/test.sh"]
async fn the_official_prometheus_parser_reads_the_metrics() {
    let gw = Gateway::start(CONFIG, BIN).await;
    let (_, _, text) = scrape_after_calls(&gw).await;
    gw.server.shutdown().await.unwrap();
    let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
requests = sum(s.value for s in families["portcullis_requests"].samples if s.name == "portcullis_requests_total"
               and s.labels.get("method") == "tools/call")
buckets = [s for s in families["portcullis_request_duration_seconds"].samples if s.name.endswith("_bucket")]
print(len(families), int(requests), len(buckets) > 0)
"#;
    let mut child = Command::new(python())
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused /metrics: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    let answer = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = answer.split_whitespace().collect();
    assert!(fields[0].parse::<usize>().unwrap() >= 9, "{answer}");
    assert_eq!(&fields[1..], ["6", "True"], "{answer}");
}
