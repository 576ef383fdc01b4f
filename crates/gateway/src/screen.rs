//! Poisoned tools are withheld. A tool whose definition carries instructions for the model
//! (the guard's tool inspection: hidden instructions, requests for credentials or dotfiles,
//! side-channel parameters, mentions of other servers' tools, every injection detector) is
//! left out of `tools/list` and its calls are refused when the caller's guard profile blocks
//! the finding (the default for `poisoning` and `injection`); a profile that flags lists it
//! and logs it. The poisoned text never reaches the model.
//!
//! Verdicts are cached per profile, server and tool, and recomputed when the definition
//! changes (a hash of its JSON), so a list costs one hash per tool once screened.

use portcullis_guard::{Action, Guard, Profile};
use portcullis_mcp::object::RawObject;
use portcullis_mcp::peer::lock;
use std::collections::HashMap;
use std::sync::Mutex;

/// What screening decided for one tool definition.
#[derive(Debug, Clone)]
pub struct Screened {
    /// The profile's action for the worst finding (monitor mode already applied).
    pub action: Action,
    /// `detector in field` for each finding acted on.
    pub findings: Vec<String>,
}

impl Screened {
    pub fn withheld(&self) -> bool {
        self.action >= Action::Block
    }
}

/// (profile, server, tool)
type Key = (String, String, String);

#[derive(Default)]
pub struct ToolScreen {
    /// The verdict on each tool, with the hash of the definition it was made on.
    cache: Mutex<HashMap<Key, (u64, Screened)>>,
}

impl ToolScreen {
    /// The verdict on `tool` of `server` under `profile`; `others` are other servers' tool
    /// names (a description that mentions them shadows them).
    pub fn check(&self, guard: &Guard, profile: &Profile, server: &str, tool: &RawObject, others: &[&str]) -> Screened {
        let hash = tool.fingerprint();
        let name = tool.get_str("name").unwrap_or_default();
        let key = (profile.name.clone(), server.to_owned(), name.clone());
        if let Some((h, verdict)) = lock(&self.cache).get(&key) {
            if *h == hash {
                return verdict.clone();
            }
        }
        let definition: serde_json::Value = serde_json::from_str(tool.to_raw().get()).unwrap_or_default();
        let inspection = guard.inspect_tool(profile, &definition, others);
        let mut findings: Vec<String> = inspection
            .decisions
            .iter()
            .map(|(f, _)| format!("{} in {}", f.finding.detector.as_str(), f.field))
            .collect();
        findings.dedup();
        let verdict = Screened { action: inspection.enforced, findings };
        if inspection.action >= Action::Flag {
            tracing::warn!(
                server = %server,
                tool = %name,
                action = ?verdict.action,
                findings = %verdict.findings.join(", "),
                "tool definition carries instructions for the model"
            );
        }
        lock(&self.cache).insert(key, (hash, verdict.clone()));
        verdict
    }
}
