//! Topic and toxicity phrase lists: each profile names topics with phrases, and one
//! Aho-Corasick pass over the normalized text finds them all (whole words only).

use crate::finding::{Category, DetectorId, Finding};
use crate::normalize::normalize;
use aho_corasick::{AhoCorasick, MatchKind};
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;

/// A topic to watch for, such as competitors, weapons, medical advice or slurs.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// Name of the topic; the detector id is `topic.<name>`.
    pub name: String,
    /// Words or phrases, matched case-insensitively as whole words after normalization
    /// (so look-alike letters and invisible characters do not evade them).
    pub phrases: Vec<String>,
}

/// All of a profile's topics, compiled into one automaton.
pub struct TopicScanner {
    automaton: Option<AhoCorasick>,
    /// Pattern index -> the topic's detector id.
    ids: Vec<Arc<str>>,
}

impl TopicScanner {
    pub fn new(topics: &[TopicConfig], path: &str) -> Result<Self, crate::ConfigError> {
        let mut phrases = Vec::new();
        let mut ids = Vec::new();
        for (i, topic) in topics.iter().enumerate() {
            if topic.name.is_empty() || !topic.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(crate::ConfigError::new(
                    format!("{path}[{i}].name"),
                    format!("`{}` is not a usable name; use letters, digits, `_` or `-`, e.g. `weapons`", topic.name),
                ));
            }
            let id: Arc<str> = Arc::from(format!("topic.{}", topic.name));
            for (j, phrase) in topic.phrases.iter().enumerate() {
                let folded = normalize(phrase.trim()).text;
                if folded.is_empty() {
                    return Err(crate::ConfigError::new(
                        format!("{path}[{i}].phrases[{j}]"),
                        "empty phrase; remove it",
                    ));
                }
                phrases.push(folded);
                ids.push(id.clone());
            }
        }
        let automaton = if phrases.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&phrases)
                    .map_err(|e| crate::ConfigError::new(path, format!("cannot compile the phrases: {e}")))?,
            )
        };
        Ok(TopicScanner { automaton, ids })
    }

    pub fn is_empty(&self) -> bool {
        self.automaton.is_none()
    }

    pub fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        let Some(automaton) = &self.automaton else { return };
        let n = normalize(text);
        let bytes = n.text.as_bytes();
        for m in automaton.find_iter(&n.text) {
            let before = m.start().checked_sub(1).map(|i| bytes[i]);
            let after = bytes.get(m.end()).copied();
            let word = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
            if word(before) || word(after) {
                continue;
            }
            let (start, end) = n.original_span(m.start(), m.end());
            out.push(Finding {
                detector: DetectorId::Shared(self.ids[m.pattern().as_usize()].clone()),
                category: Category::Topic,
                start,
                end,
                score: 1.0,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_after_normalization() {
        let topics = vec![TopicConfig { name: "weapons".into(), phrases: vec!["Pipe Bomb".into(), "gun".into()] }];
        let scanner = TopicScanner::new(&topics, "topics").unwrap();
        let mut out = Vec::new();
        let text = "how to build a ＰＩＰＥ bomb, not a gunicorn server";
        scanner.scan(text, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].detector.as_str(), "topic.weapons");
        assert_eq!(&text[out[0].start..out[0].end], "ＰＩＰＥ bomb");
    }

    #[test]
    fn bad_names_are_config_errors() {
        let topics = vec![TopicConfig { name: "no spaces".into(), phrases: vec!["x".into()] }];
        let err = TopicScanner::new(&topics, "profiles.default.topics").err().unwrap();
        assert_eq!(err.path, "profiles.default.topics[0].name");
    }
}
