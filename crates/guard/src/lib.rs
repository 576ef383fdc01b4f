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
pub mod timing;
pub mod tool;
pub mod topics;
pub mod urls;
pub mod webhook;

pub use engine::{
    BindingConfig, Caller, Decision, Guard, GuardConfig, Inspection, Profile, ProfileConfig, ToolInspection,
};
pub use profile::{Action, Mode};

/// Every built-in detector id with its category, in a stable order: what profiles may
/// name, what GUARDRAILS.md documents. User recognizers (`custom.*`, `pii.*`) and topics
/// (`topic.<name>`) come from the config and are not listed.
pub fn builtin_detectors() -> Vec<(&'static str, Category)> {
    let mut out: Vec<(&'static str, Category)> = Vec::new();
    out.extend(pii::DETECTORS.iter().map(|&id| (id, Category::Pii)));
    out.extend(secrets::SecretScanner::formats().map(|(id, _)| (id, Category::Secret)));
    out.extend(injection::DETECTORS.iter().map(|&id| (id, Category::Injection)));
    out.extend(exfil::DETECTORS.iter().map(|&id| (id, Category::Injection)));
    out.extend(urls::DETECTORS.iter().map(|&id| (id, Category::Url)));
    out.extend(commands::DETECTORS.iter().map(|&id| (id, Category::Code)));
    out.extend(tool::DETECTORS.iter().map(|&id| (id, Category::Poisoning)));
    out
}

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
