//! Portcullis guardrails: detectors for what agents send to tools and what tools send back.
//!
//! Pure by design (DESIGN.md): no I/O, no async, no global state. Everything is compiled
//! once from a [`GuardConfig`] into a [`Guard`]; scanning a text borrows it immutably, so
//! one guard serves every request thread. The MCP pipeline and (later) the LLM door call it.
#![forbid(unsafe_code)]

pub mod finding;
pub mod injection;
pub mod normalize;
pub mod secrets;

pub use finding::{Category, DetectorId, Direction, Finding};
pub mod commands;
mod engine;
pub mod exfil;
pub mod pii;
pub mod profile;
mod redact;
pub mod tool;
pub mod topics;
pub mod urls;

pub use engine::{BindingConfig, Decision, Guard, GuardConfig, Inspection, Profile, ProfileConfig, ToolInspection};
pub use profile::{Action, Mode};

/// A guard configuration that cannot be compiled; `path` names the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { path: path.into(), message: message.into() }
    }
}
