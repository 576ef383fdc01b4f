//! Profiles: which action each detector's findings get, per direction.
//!
//! A rule's key (a selector) is a detector id (`pii.email`), a family (`secret.*`), a
//! category (`pii`) or `*`. The most specific selector wins: id, then family, then
//! category, then `*`, then the built-in defaults (unless `inherit_defaults: false`).

use crate::finding::{Category, Direction, Finding};
use crate::ConfigError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// What happens to content with a finding. Ordered: the strongest action wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Ignore the finding.
    Allow,
    /// Let the content through and record the finding.
    Flag,
    /// Replace the finding's text in place, e.g. `[REDACTED:EMAIL]`.
    Redact,
    /// Refuse the call with an error naming the policy (never the value).
    Block,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Flag => "flag",
            Action::Redact => "redact",
            Action::Block => "block",
        }
    }
}

/// Enforce actions, or only record what they would have done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    /// Record what would have been blocked or redacted, change nothing.
    Monitor,
}

/// The built-in actions: block credentials leaving for tools and injections arriving
/// from them, redact credentials in results, record the rest.
///
/// The injection classifier alone only flags: on short strings it is wrong about one time
/// in two hundred (GUARDRAILS.md), and a tool result holds many strings, so blocking on it
/// by default would break ordinary calls. `injection.classifier: block` opts in.
pub fn default_action(direction: Direction, detector: &str, category: Category) -> Action {
    if detector == "injection.classifier" {
        return Action::Flag;
    }
    match (direction, category) {
        (Direction::Request, Category::Secret) => Action::Block,
        (Direction::Response, Category::Secret) => Action::Redact,
        (Direction::Request, Category::Injection) => Action::Flag,
        (Direction::Response, Category::Injection) => Action::Block,
        (Direction::Request, Category::Code) => Action::Block,
        (Direction::Response, Category::Code) => Action::Flag,
        (_, Category::Topic) => Action::Block,
        (_, Category::Poisoning) => Action::Block,
        (_, Category::Pii) | (_, Category::Url) => Action::Flag,
    }
}

/// The action table of one direction of one profile.
#[derive(Debug, Clone)]
pub struct Actions {
    direction: Direction,
    inherit: bool,
    rules: HashMap<String, Action>,
}

/// The detector families a selector may name besides categories.
const FAMILIES: [&str; 10] =
    ["pii", "secret", "injection", "exfil", "url", "code", "topic", "poisoning", "custom", "webhook"];

impl Actions {
    /// `known` lists the detector ids a selector may name exactly (built-in ones, the
    /// config's recognizers and topics).
    pub fn new(
        direction: Direction,
        inherit: bool,
        rules: &BTreeMap<String, Action>,
        known: &[String],
        path: &str,
    ) -> Result<Self, ConfigError> {
        for key in rules.keys() {
            check_selector(key, known).map_err(|m| ConfigError::new(format!("{path}.{key}"), m))?;
        }
        Ok(Actions { direction, inherit, rules: rules.iter().map(|(k, v)| (k.clone(), *v)).collect() })
    }

    /// The action for one detector's findings.
    pub fn resolve(&self, detector: &str, category: Category) -> Action {
        if let Some(a) = self.rules.get(detector) {
            return *a;
        }
        if let Some((family, _)) = detector.split_once('.') {
            if let Some(a) = self.rules.get(&format!("{family}.*")) {
                return *a;
            }
        }
        if let Some(a) = self.rules.get(category.as_str()).or_else(|| self.rules.get("*")) {
            return *a;
        }
        if self.inherit {
            default_action(self.direction, detector, category)
        } else {
            Action::Allow
        }
    }

    /// Whether any detector of `category` (or of a family named after it) can get an
    /// action other than allow, so scanning for it is worth its cost.
    pub fn wants(&self, category: Category, family: &str) -> bool {
        let by_category = self.resolve("", category) != Action::Allow;
        by_category
            || self.rules.iter().any(|(k, a)| {
                *a != Action::Allow && (k == category.as_str() || k.split('.').next() == Some(family) || k == "*")
            })
    }

    pub fn decide(&self, finding: &Finding) -> Action {
        self.resolve(finding.detector.as_str(), finding.category)
    }
}

fn check_selector(key: &str, known: &[String]) -> Result<(), String> {
    if key == "*" || Category::parse(key).is_some() {
        return Ok(());
    }
    let hint = "use a category (pii, secret, injection, url, code, topic, poisoning), a family such as `secret.*`, \
                a detector id such as `pii.email`, or `*`";
    match key.split_once('.') {
        Some((family, "*")) if FAMILIES.contains(&family) => Ok(()),
        Some((family, _)) if FAMILIES.contains(&family) => {
            if known.iter().any(|k| k == key) {
                return Ok(());
            }
            let siblings: Vec<&str> =
                known.iter().map(String::as_str).filter(|k| k.starts_with(&format!("{family}."))).take(12).collect();
            Err(format!(
                "no detector `{key}`; {family} detectors include: {}{}",
                siblings.join(", "),
                if siblings.len() == 12 { ", ... (see GUARDRAILS.md)" } else { "" }
            ))
        }
        _ => Err(format!("unknown detector selector `{key}`; {hint}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(rules: &[(&str, Action)], inherit: bool) -> Actions {
        let rules = rules.iter().map(|(k, a)| (k.to_string(), *a)).collect();
        Actions::new(Direction::Response, inherit, &rules, &known(), "profiles.p.response").unwrap()
    }

    #[test]
    fn most_specific_selector_wins() {
        let a = actions(&[("pii", Action::Redact), ("pii.ipv4", Action::Allow), ("secret.*", Action::Block)], true);
        assert_eq!(a.resolve("pii.email", Category::Pii), Action::Redact);
        assert_eq!(a.resolve("pii.ipv4", Category::Pii), Action::Allow);
        assert_eq!(a.resolve("secret.github_pat", Category::Secret), Action::Block);
        assert_eq!(a.resolve("injection.override", Category::Injection), Action::Block, "built-in default");
        assert_eq!(a.resolve("injection.classifier", Category::Injection), Action::Flag, "built-in default");
        let none = actions(&[("pii.email", Action::Flag)], false);
        assert_eq!(none.resolve("injection.classifier", Category::Injection), Action::Allow);
        assert!(none.wants(Category::Pii, "pii"));
        assert!(!none.wants(Category::Secret, "secret"));
    }

    fn known() -> Vec<String> {
        crate::builtin_detectors().into_iter().map(|(id, _)| id.to_owned()).collect()
    }

    #[test]
    fn bad_selectors_name_the_path() {
        let rules = [("emails".to_string(), Action::Block)].into_iter().collect();
        let err = Actions::new(Direction::Request, true, &rules, &known(), "profiles.p.request").unwrap_err();
        assert_eq!(err.path, "profiles.p.request.emails");
        assert!(err.message.contains("unknown detector selector"), "{}", err.message);
        let rules = [("pii.emial".to_string(), Action::Block)].into_iter().collect();
        let err = Actions::new(Direction::Request, true, &rules, &known(), "p").unwrap_err();
        assert!(
            err.message.starts_with("no detector `pii.emial`; pii detectors include: pii.email"),
            "{}",
            err.message
        );
    }
}
