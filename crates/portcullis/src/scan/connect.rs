//! `scan --connect`: starts (stdio) or reaches (HTTP) each configured server the way its
//! client would, lists its tools and scans every definition for poisoning with the guard's
//! tool inspection, including mentions of other servers' tools (shadowing).

use super::clients::Server;
use super::findings::{level, Finding};
use portcullis_guard::{Action, Guard, GuardConfig};
use portcullis_mcp::client::spec::{HttpSpec, StdioSpec, TransportSpec};
use portcullis_mcp::client::{Health, Upstream, UpstreamOptions};
use portcullis_mcp::object::RawObject;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The tools each server listed (`Err`: why it could not be reached).
pub type Listed = Vec<Result<Vec<Value>, String>>;

fn transport(s: &Server) -> Option<TransportSpec> {
    let headers = s.headers.iter().cloned().collect();
    match (s.transport.as_str(), &s.command, &s.url) {
        ("sse", _, Some(url)) => Some(TransportSpec::Sse(HttpSpec { url: url.clone(), headers })),
        (_, _, Some(url)) => Some(TransportSpec::Http(HttpSpec { url: url.clone(), headers })),
        (_, Some(command), None) => Some(TransportSpec::Stdio(StdioSpec {
            command: command.clone(),
            args: s.args.clone(),
            env: s.env.iter().cloned().collect(),
            cwd: None,
        })),
        _ => None,
    }
}

/// Lists one server's tools (all pages), within `timeout`.
async fn list_tools(s: &Server, timeout: Duration) -> Result<Vec<Value>, String> {
    let spec = transport(s).ok_or("no command or URL")?;
    let options = UpstreamOptions { connect_timeout: timeout, request_timeout: timeout, ..UpstreamOptions::default() };
    let upstream = Upstream::start(&s.name, spec, options, reqwest::Client::new());
    let deadline = Instant::now() + timeout;
    let result = async {
        loop {
            match upstream.health() {
                Health::Starting if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                Health::Starting => return Err(format!("not ready within {timeout:?}")),
                Health::Down(why) => return Err(why),
                Health::Ready | Health::Degraded(_) => break,
            }
        }
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let params = cursor.as_ref().map(|c| portcullis_mcp::jsonrpc::to_raw(&serde_json::json!({ "cursor": c })));
            let outcome = upstream.request("tools/list", params, None).await.map_err(|e| e.to_string())?;
            let raw =
                outcome.map_err(|e| format!("tools/list failed: {}", e.get().chars().take(200).collect::<String>()))?;
            let page = RawObject::parse(&raw, "result").map_err(|e| e.message)?;
            for tool in page.get_array("tools").map_err(|e| e.message)? {
                tools.push(serde_json::from_str(tool.to_raw().get()).unwrap_or(Value::Null));
            }
            cursor = page.get_str("nextCursor");
            if cursor.is_none() {
                break;
            }
        }
        Ok(tools)
    }
    .await;
    upstream.shutdown();
    result
}

/// Reaches every server (a few at a time) and lists its tools.
pub async fn list_all(servers: &[Server], timeout: Duration) -> Listed {
    let mut out = Vec::with_capacity(servers.len());
    for chunk in servers.chunks(4) {
        out.extend(futures::future::join_all(chunk.iter().map(|s| list_tools(s, timeout))).await);
    }
    out
}

/// Poisoning findings over the listed tools, and a note for each server not reached.
pub fn check(listed: &Listed) -> Vec<Finding> {
    // The built-in default guard settings compile (the guard crate's own tests build them).
    let Ok(guard) = Guard::new(&GuardConfig::default()) else { return Vec::new() };
    let Some(profile) = guard.profile("default") else { return Vec::new() };
    let mut out = Vec::new();
    for (i, tools) in listed.iter().enumerate() {
        let tools = match tools {
            Ok(tools) => tools,
            Err(why) => {
                let message = format!("could not list its tools: {}", why.chars().take(200).collect::<String>());
                out.push(Finding { rule: "unreachable", level: level("unreachable"), server: i, message });
                continue;
            }
        };
        // Names of every other server's tools: a description that mentions them shadows.
        let others: Vec<&str> = listed
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .filter_map(|(_, l)| l.as_ref().ok())
            .flatten()
            .filter_map(|t| t.get("name").and_then(Value::as_str))
            .collect();
        for tool in tools {
            let name = tool.get("name").and_then(Value::as_str).unwrap_or("?");
            let inspection = guard.inspect_tool(profile, tool, &others);
            if inspection.action < Action::Flag {
                continue;
            }
            let mut what: Vec<String> = inspection
                .decisions
                .iter()
                .map(|(f, _)| format!("{} in {}", f.finding.detector.as_str(), f.field))
                .collect();
            what.dedup();
            let message = format!("tool `{name}` carries instructions for the model: {}", what.join(", "));
            out.push(Finding { rule: "poisoned-tool", level: level("poisoned-tool"), server: i, message });
        }
    }
    out
}
