//! The Portcullis gateway: configuration, the pipeline every MCP request passes, and
//! the front doors (Streamable HTTP, stdio) with health endpoints and hot reload.
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod breaker;
pub mod callers;
pub mod config;
pub mod connect;
pub mod credentials;
pub mod deep_tier;
pub mod door;
pub mod egress;
pub mod federation;
pub mod flows;
pub mod inspect;
pub mod limits;
pub mod loops;
pub mod metrics;
pub mod pins;
pub mod pipeline;
pub mod screen;
pub mod server;
pub mod traces;
pub mod user_tokens;

pub use config::Config;
pub use server::{serve_http, serve_stdio, RunningServer};
