//! MCP wire handling: the JSON-RPC envelope, both protocol eras, the downstream
//! transports (Streamable HTTP, stdio), and clients for upstream servers.
#![forbid(unsafe_code)]

pub mod client;
pub mod federation;
pub mod jsonrpc;
pub mod object;
pub mod peer;
pub mod protocol;
pub mod seal;
pub mod server;
pub mod trace_context;
