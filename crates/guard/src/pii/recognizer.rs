//! User-defined recognizers: a regex, optional context words near the match, an optional
//! checksum validator.

use super::validate::{iban_mod97, luhn, ssn_valid};
use super::{RecognizerConfig, Validator};
use crate::finding::{Category, DetectorId, Finding};
use crate::ConfigError;
use regex::bytes::RegexBuilder;
use std::sync::Arc;

pub(crate) struct Recognizer {
    id: Arc<str>,
    regex: regex::bytes::Regex,
    /// Lowercased context words.
    context: Vec<Vec<u8>>,
    window: usize,
    validator: Validator,
    score: f32,
}

impl Recognizer {
    pub(crate) fn new(i: usize, c: &RecognizerConfig) -> Result<Self, ConfigError> {
        let path = |field: &str| format!("pii.recognizers[{i}].{field}");
        let name = c.id.strip_prefix("pii.").or_else(|| c.id.strip_prefix("custom."));
        let name_ok = name.is_some_and(|n| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b))
        });
        if !name_ok {
            return Err(ConfigError::new(
                path("id"),
                format!("`{}`: must be `pii.<name>` or `custom.<name>` with a-z, 0-9, `_`, `-`, `.`", c.id),
            ));
        }
        if c.pattern.is_empty() {
            return Err(ConfigError::new(path("pattern"), "empty pattern"));
        }
        let regex = RegexBuilder::new(&c.pattern)
            .size_limit(1 << 20)
            .dfa_size_limit(2 << 20)
            .build()
            .map_err(|e| ConfigError::new(path("pattern"), e.to_string()))?;
        if !(0.0..=1.0).contains(&c.score) {
            return Err(ConfigError::new(path("score"), format!("{} is not within 0..=1", c.score)));
        }
        let mut context = Vec::with_capacity(c.context.len());
        for (j, w) in c.context.iter().enumerate() {
            if w.trim().is_empty() {
                return Err(ConfigError::new(format!("pii.recognizers[{i}].context[{j}]"), "empty context word"));
            }
            context.push(w.to_lowercase().into_bytes());
        }
        Ok(Recognizer {
            id: Arc::from(c.id.as_str()),
            regex,
            context,
            window: c.context_window,
            validator: c.validator.unwrap_or(Validator::None),
            score: c.score,
        })
    }

    pub(crate) fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        let b = text.as_bytes();
        for m in self.regex.find_iter(b) {
            if m.is_empty() {
                continue;
            }
            if !self.context.is_empty() {
                let lo = m.start().saturating_sub(self.window);
                let hi = (m.end() + self.window).min(b.len());
                if !self.context.iter().any(|w| contains_ci(&b[lo..hi], w)) {
                    continue;
                }
            }
            let Ok(value) = std::str::from_utf8(m.as_bytes()) else { continue };
            let valid = match self.validator {
                Validator::None => true,
                Validator::Luhn => luhn(value),
                Validator::Mod97 => iban_mod97(value),
                Validator::Ssn => ssn_valid(value),
            };
            if valid {
                out.push(Finding {
                    detector: DetectorId::Shared(self.id.clone()),
                    category: Category::Pii,
                    start: m.start(),
                    end: m.end(),
                    score: self.score,
                });
            }
        }
    }
}

/// ASCII-case-insensitive substring search (`needle` already lowercase).
pub(crate) fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() || needle.len() > hay.len() {
        return needle.is_empty();
    }
    hay.windows(needle.len()).any(|w| w.iter().zip(needle).all(|(a, b)| a.to_ascii_lowercase() == *b))
}
