//! What a detector reports: a finding with its detector id, category, byte span and score.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The families of findings; a profile may set one action for a whole category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Pii,
    Secret,
    Injection,
    Url,
    Code,
    Topic,
    Poisoning,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Pii,
        Category::Secret,
        Category::Injection,
        Category::Url,
        Category::Code,
        Category::Topic,
        Category::Poisoning,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Pii => "pii",
            Category::Secret => "secret",
            Category::Injection => "injection",
            Category::Url => "url",
            Category::Code => "code",
            Category::Topic => "topic",
            Category::Poisoning => "poisoning",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A detector id such as `pii.email` or `secret.aws_access_key_id`. Built-in ids are
/// static; user-defined recognizers share theirs, so cloning a finding never copies text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DetectorId {
    Static(&'static str),
    Shared(Arc<str>),
}

impl DetectorId {
    pub fn as_str(&self) -> &str {
        match self {
            DetectorId::Static(s) => s,
            DetectorId::Shared(s) => s,
        }
    }
}

impl fmt::Display for DetectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DetectorId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One thing a detector found. `start..end` are byte offsets into the scanned text (for
/// text found after decoding or normalization, the span of the original that produced it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub detector: DetectorId,
    pub category: Category,
    pub start: usize,
    pub end: usize,
    /// Confidence in 0..=1: 1 for validated formats, the model's probability for classifiers.
    pub score: f32,
}

impl Finding {
    pub fn new(detector: &'static str, category: Category, start: usize, end: usize, score: f32) -> Self {
        Finding { detector: DetectorId::Static(detector), category, start, end, score }
    }
}

/// Which way the content flows: to the upstream (tool arguments) or back (tool results).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Request,
    Response,
}

impl Category {
    /// The category of a detector id, from its family (`exfil.*` is injection, `custom.*`
    /// recognizers are PII); `None` for an unknown family.
    pub fn of_detector(id: &str) -> Option<Category> {
        let family = id.split('.').next().unwrap_or(id);
        match family {
            "exfil" => Some(Category::Injection),
            "custom" => Some(Category::Pii),
            // A webhook's category is configured; topic is its default.
            "webhook" => Some(Category::Topic),
            other => Category::parse(other),
        }
    }
}

/// Test helper: checks every finding is a non-empty span on char boundaries of `text` with
/// the `category` expected, and returns `(detector, matched text, score)` triples.
#[cfg(test)]
pub(crate) fn checked_spans(text: &str, findings: &[Finding], category: Category) -> Vec<(String, String, f32)> {
    findings
        .iter()
        .map(|f| {
            assert!(f.start < f.end && f.end <= text.len(), "{f:?}");
            assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end), "{f:?}");
            assert_eq!(f.category, category, "{f:?}");
            (f.detector.to_string(), text[f.start..f.end].to_string(), f.score)
        })
        .collect()
}
