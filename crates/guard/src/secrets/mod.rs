//! Credentials: vendor token formats behind a one-pass keyword prefilter, plus a generic
//! high-entropy rule that needs an assignment context (`password = ...`).
//!
//! Each rule names literal keywords, one of which occurs (ASCII case-insensitively) in every
//! match: one Aho-Corasick pass over the text finds them, and only the rules whose keywords
//! occur run their regex. Text without any keyword costs one pass.

mod rules;

use crate::finding::{Category, Finding};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;

/// One credential format.
pub(crate) struct SecretRule {
    /// The detector id, `secret.<id>`.
    pub id: &'static str,
    /// Literals, one of which occurs (ASCII case-insensitively) in every match of `pattern`.
    pub keywords: &'static [&'static str],
    /// The format as a Rust `regex`. With a capture group named `secret`, only that group
    /// is the finding (and what gets redacted); otherwise the whole match is.
    pub pattern: &'static str,
    /// The least Shannon entropy (bits per character) the secret must have; 0 for none.
    /// Screens out placeholders such as `xoxb-xxxxxxxx` where a format is loose.
    pub min_entropy: f32,
    /// Where the vendor documents the format.
    pub source: &'static str,
}

/// All rules compiled once; scanning allocates nothing but its findings.
pub struct SecretScanner {
    prefilter: AhoCorasick,
    /// Keyword index -> the rules it triggers.
    keyword_rules: Vec<Vec<usize>>,
    regexes: Vec<Regex>,
}

impl SecretScanner {
    pub fn new() -> Self {
        let mut keywords: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        for (i, rule) in rules::RULES.iter().enumerate() {
            for kw in rule.keywords {
                let kw = kw.to_ascii_lowercase();
                match keywords.iter().position(|k| *k == kw) {
                    Some(p) => keyword_rules[p].push(i),
                    None => {
                        keywords.push(kw);
                        keyword_rules.push(vec![i]);
                    }
                }
            }
        }
        // The rule table is static and its patterns are tested to compile (rules::tests),
        // so a failure here is a programming error caught by the test suite.
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&keywords)
            .expect("secret keywords are plain literals");
        let regexes = rules::RULES
            .iter()
            .map(|r| Regex::new(r.pattern).unwrap_or_else(|e| panic!("secret rule {}: {e}", r.id)))
            .collect();
        SecretScanner { prefilter, keyword_rules, regexes }
    }

    /// The number of credential formats known.
    pub fn rule_count() -> usize {
        rules::RULES.len()
    }

    /// Appends a finding for every credential in `text`.
    pub fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        let mut hit = [0u64; 8];
        let mut any = false;
        for m in self.prefilter.find_overlapping_iter(text) {
            for &rule in &self.keyword_rules[m.pattern().as_usize()] {
                hit[rule / 64] |= 1 << (rule % 64);
                any = true;
            }
        }
        if !any {
            return;
        }
        for (i, rule) in rules::RULES.iter().enumerate() {
            if hit[i / 64] & (1 << (i % 64)) == 0 {
                continue;
            }
            for caps in self.regexes[i].captures_iter(text) {
                let Some(m) = caps.name("secret").or_else(|| caps.get(0)) else { continue };
                if rule.min_entropy > 0.0 && shannon_entropy(m.as_str()) < rule.min_entropy {
                    continue;
                }
                out.push(Finding::new(rule_detector(rule), Category::Secret, m.start(), m.end(), 1.0));
            }
        }
    }
}

impl Default for SecretScanner {
    fn default() -> Self {
        Self::new()
    }
}

fn rule_detector(rule: &SecretRule) -> &'static str {
    rule.id
}

/// Shannon entropy in bits per character.
pub fn shannon_entropy(s: &str) -> f32 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f32;
    if n == 0.0 {
        return 0.0;
    }
    counts.iter().filter(|&&c| c > 0).map(|&c| c as f32 / n).map(|p| -p * p.log2()).sum()
}
