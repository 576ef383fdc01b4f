//! Credentials: vendor token formats behind a one-pass keyword prefilter, plus a generic
//! high-entropy rule that needs an assignment context (`password = ...`).
//!
//! Each rule names literal keywords, one of which occurs (ASCII case-insensitively) in every
//! match: one Aho-Corasick pass over the text finds them, and only the rules whose keywords
//! occur run their regex. Text without any keyword costs one pass.

mod rules;

use crate::finding::{Category, Finding};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, Input, MatchKind};
use regex::Regex;
use std::sync::OnceLock;

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

/// The prefilter built up front, each rule's regex on the first text that holds one of its
/// keywords; scanning allocates nothing but its findings.
pub struct SecretScanner {
    prefilter: AhoCorasick,
    /// Keyword index -> the rules it triggers.
    keyword_rules: Vec<Vec<usize>>,
    /// The length in bytes of the longest keyword.
    longest_keyword: usize,
    /// Compiled when first needed: all 252 formats compiled up front hold about 33 MiB and take
    /// about 80 ms, while most deployments only ever see a handful of vendors' keywords.
    regexes: Vec<OnceLock<Regex>>,
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
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            // A full DFA: the fastest overlapping search, worth its memory for one table.
            .kind(Some(AhoCorasickKind::DFA))
            .build(&keywords)
            .expect("secret keywords are plain literals");
        let regexes = rules::RULES.iter().map(|_| OnceLock::new()).collect();
        let longest_keyword = keywords.iter().map(String::len).max().unwrap_or(0);
        SecretScanner { prefilter, keyword_rules, longest_keyword, regexes }
    }

    /// The number of credential formats known.
    pub fn rule_count() -> usize {
        rules::RULES.len()
    }

    /// The credential formats known: each detector id with the vendor documentation that
    /// describes its format.
    pub fn formats() -> impl Iterator<Item = (&'static str, &'static str)> {
        rules::RULES.iter().map(|r| (r.id, r.source))
    }

    /// Appends a finding for every credential in `text`.
    pub fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        // Most text holds no keyword: a plain search says so faster than the overlapping one.
        let Some(first) = self.prefilter.find(text) else { return };
        // `first` is the keyword occurrence that ends first, so every other one ends no
        // earlier and starts at most one keyword's length before that end: the overlapping
        // search need not walk the text before it again.
        let from = first.end().saturating_sub(self.longest_keyword);
        let mut hit = [0u64; 8];
        let mut any = false;
        for m in self.prefilter.find_overlapping_iter(Input::new(text).range(from..)) {
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
            // The rule table is static and every pattern is compiled by its tests
            // (rules::tests), so a failure here is a programming error the suite catches.
            let regex = self.regexes[i]
                .get_or_init(|| Regex::new(rule.pattern).unwrap_or_else(|e| panic!("secret rule {}: {e}", rule.id)));
            for caps in regex.captures_iter(text) {
                let Some(m) = caps.name("secret").or_else(|| caps.get(0)) else { continue };
                if rule.min_entropy > 0.0 && shannon_entropy(m.as_str()) < rule.min_entropy {
                    continue;
                }
                if is_placeholder(m.as_str()) {
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

/// Words that mark a documentation value rather than a credential; matched ASCII
/// case-insensitively anywhere in the span.
const PLACEHOLDER_MARKERS: &[&str] = &[
    "example",
    "xxxxxx",
    "placeholder",
    "your_",
    "your-",
    "<",
    ">",
    "redacted",
    "changeme",
    "dummy",
    "sample",
    "accesstoken",
    "personal",
    "token0",
    "00000",
];

/// Whether a matched span is a placeholder from documentation or a template rather than a
/// credential: it contains (ASCII case-insensitively) one of `PLACEHOLDER_MARKERS`
/// (`AKIAIOSFODNN7EXAMPLE`, `ghp_xxxxxxxx…`, `<password>`, `YOUR_API_KEY`, `REDACTED`,
/// `ghp_PersonalAccessToken0124…00000`), or it is one character repeated (`0000000000`,
/// `********`). A random token holds a run of five zeros or one of these words with a
/// probability below one in a million.
fn is_placeholder(s: &str) -> bool {
    let mut bytes = s.bytes();
    if let Some(first) = bytes.next() {
        if bytes.all(|b| b == first) {
            return true;
        }
    }
    PLACEHOLDER_MARKERS.iter().any(|marker| contains_ignore_ascii_case(s.as_bytes(), marker.as_bytes()))
}

fn contains_ignore_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_recognised() {
        for s in [
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "sk_live_XXXXXXXXXXXXXXXXXXXXXXXX",
            "<password>",
            "YOUR_API_KEY_HERE",
            "your-token-goes-here",
            "Placeholder-Secret",
            "[REDACTED]",
            "ChangeMe123",
            "dummy-token-for-tests",
            "sample_auth_token_value",
            "ghp_PersonalAccessToken01245678900000000",
            "0000000000000000",
            "********",
            "a",
        ] {
            assert!(is_placeholder(s), "{s:?} should be a placeholder");
        }
    }

    #[test]
    fn real_looking_values_are_not_placeholders() {
        for s in [
            "ghp_R4nd0mT0k3nV4lu3F0rT35t1ngPurp0s3s12",
            "AKIAQWERTYUIOPASDF23",
            "wJ9xq2Lr7vTb0pHs4nKe6yUcZmAa3dFgS8iQo1Xx",
            "hunter2-Zq9",
            "",
        ] {
            assert!(!is_placeholder(s), "{s:?} is not a placeholder");
        }
    }

    #[test]
    fn entropy_of_uniform_and_repeated_strings() {
        assert_eq!(shannon_entropy(""), 0.0);
        assert_eq!(shannon_entropy("aaaa"), 0.0);
        assert!((shannon_entropy("abcd") - 2.0).abs() < 1e-6);
    }
}
