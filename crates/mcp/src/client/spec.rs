//! How to reach an upstream MCP server: the transport part of its configuration.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Launch a local MCP server as a child process and talk to it over stdin/stdout.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StdioSpec {
    /// The program to run. `portcullis` means this very binary.
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables for the child (added to the gateway's own environment).
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// Working directory of the child; defaults to the gateway's.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

/// A remote MCP server over Streamable HTTP (`http`) or the legacy HTTP+SSE transport (`sse`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// The endpoint, e.g. `http://127.0.0.1:3001/mcp` (Streamable HTTP) or `.../sse` (legacy).
    pub url: String,
    /// Static headers sent with every request (e.g. an API key the upstream requires).
    #[serde(default)]
    pub headers: IndexMap<String, String>,
}

/// Environment values and header values often hold credentials: debug output shows only
/// their names.
fn redacted(map: &IndexMap<String, String>) -> Vec<(&str, &str)> {
    map.keys().map(|k| (k.as_str(), "<redacted>")).collect()
}

impl std::fmt::Debug for StdioSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioSpec")
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &redacted(&self.env))
            .field("cwd", &self.cwd)
            .finish()
    }
}

impl std::fmt::Debug for HttpSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSpec").field("url", &self.url).field("headers", &redacted(&self.headers)).finish()
    }
}

/// The transport of one upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportSpec {
    Stdio(StdioSpec),
    Http(HttpSpec),
    Sse(HttpSpec),
}

impl TransportSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            TransportSpec::Stdio(_) => "stdio",
            TransportSpec::Http(_) => "http",
            TransportSpec::Sse(_) => "sse",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_header_and_env_values() {
        let http = HttpSpec {
            url: "http://x/mcp".into(),
            headers: IndexMap::from([("X-Api-Key".into(), "sk-secret".into())]),
        };
        let stdio = StdioSpec {
            command: "srv".into(),
            args: vec![],
            env: IndexMap::from([("TOKEN".into(), "hunter2".into())]),
            cwd: None,
        };
        let shown = format!("{http:?} {stdio:?} {:?}", TransportSpec::Http(http.clone()));
        assert!(!shown.contains("sk-secret") && !shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("X-Api-Key") && shown.contains("TOKEN"));
    }
}
