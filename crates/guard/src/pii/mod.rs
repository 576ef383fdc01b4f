//! Personal data: emails, phone numbers, US SSNs, payment cards, IBANs, IP addresses and
//! user-defined recognizers. Category [`crate::Category::Pii`].
//!
//! Built for speed (>= 100 MB/s together with the secret scanner) without a regex over
//! the whole text for the built-in detectors:
//! - emails: `memchr` for `@`, then the local part and domain are expanded around it;
//! - IPv6: `memchr` for `:`, then the run of hex digits, colons and dots around it;
//! - everything numeric (IBAN, IPv4, SSN, card, phone): one pass over digit runs; a run
//!   that starts a token is classified locally by small parsers and validated (mod 97,
//!   Luhn + issuer prefix, SSN rules, per-country phone rules, octet ranges).
//!
//! Only user-defined recognizers run a regex over the text.
//!
//! Scores: checksum-validated cards and IBANs 1.0; emails 0.9; SSNs 0.9 (`AAA-GG-SSSS`)
//! or 0.8 (spaces, or nine digits after "ssn"/"social security"); phones 0.8
//! (international), 0.7 (national with separators), 0.6 (bare digits after a word such as
//! "phone"/"tel"/"mobile"); IP addresses 0.9 when public and **0.3 when loopback,
//! private, link-local, CGNAT, multicast, documentation or reserved**, so a profile can
//! act on public addresses only with a score threshold above 0.3. `0.0.0.0` and `::` are
//! not reported.

mod email;
mod ip;
mod numbers;
mod phone;
mod recognizer;
pub mod validate;

#[cfg(test)]
mod tests;

pub use email::EMAIL_SCORE;
pub use ip::{NON_PUBLIC_SCORE, PUBLIC_SCORE};
pub use numbers::{
    CHECKSUM_SCORE, PHONE_BARE_SCORE, PHONE_INTL_SCORE, PHONE_NATIONAL_SCORE, SSN_DASHED_SCORE, SSN_OTHER_SCORE,
};

use crate::finding::Finding;
use crate::ConfigError;
use recognizer::Recognizer;
use schemars::JsonSchema;
use serde::Deserialize;

/// The built-in detector ids.
pub const DETECTORS: [&str; 7] =
    ["pii.email", "pii.phone", "pii.ssn", "pii.credit_card", "pii.iban", "pii.ipv4", "pii.ipv6"];

/// PII detection settings.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PiiConfig {
    /// Regions (ISO 3166 alpha-2, e.g. `US`, `GB`, `DE`) whose national phone formats are
    /// recognized, such as `(415) 555-2671` or `020 7946 0958`. International numbers
    /// (`+44 20 7946 0958`, `0044 ...`) are recognized whatever this says. Supported: US,
    /// CA, GB, DE, FR, ES, IT, NL, BE, AT, CH, IE, PT, SE, NO, DK, FI, PL, CZ, GR, HU, RO,
    /// LU, AU, NZ, IN, JP, CN, KR, SG, HK, BR, MX, AR, ZA, IL, TR, RU, AE. Default `["US"]`.
    pub phone_regions: Vec<String>,
    /// Extra recognizers, each a regex with optional context words and validator.
    pub recognizers: Vec<RecognizerConfig>,
}

impl Default for PiiConfig {
    fn default() -> Self {
        PiiConfig { phone_regions: vec!["US".to_string()], recognizers: Vec::new() }
    }
}

/// A user-defined PII recognizer.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecognizerConfig {
    /// The detector id of its findings: `pii.<name>` or `custom.<name>` (a-z, 0-9, `_`,
    /// `-`, `.`).
    pub id: String,
    /// A Rust `regex` pattern; the whole match is the finding.
    pub pattern: String,
    /// Words of which one must occur (ASCII case-insensitively) within `context_window`
    /// bytes before or after the match; empty for no such condition.
    #[serde(default)]
    pub context: Vec<String>,
    /// How far around the match (in bytes) to look for a context word. Default 64.
    #[serde(default = "default_window")]
    pub context_window: usize,
    /// A checksum the match must pass: `luhn` (digits, spaces and dashes), `mod97`
    /// (IBAN), `ssn` (US SSN rules) or `none` (the default).
    #[serde(default)]
    pub validator: Option<Validator>,
    /// The score of its findings, 0..=1. Default 0.8.
    #[serde(default = "default_score")]
    pub score: f32,
}

fn default_window() -> usize {
    64
}

fn default_score() -> f32 {
    0.8
}

/// A checksum for user-defined recognizers (see [`validate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Validator {
    /// Luhn mod 10 over the digits (spaces and dashes allowed, nothing else).
    Luhn,
    /// IBAN mod 97 (spaces allowed).
    Mod97,
    /// US Social Security number rules.
    Ssn,
    /// No check.
    None,
}

/// The PII detectors compiled once from a [`PiiConfig`]; scanning allocates nothing but
/// findings (and a small span list when emails or IPv6 addresses are found).
pub struct PiiScanner {
    regions: Vec<&'static phone::Region>,
    recognizers: Vec<Recognizer>,
}

impl std::fmt::Debug for PiiScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiiScanner")
            .field("regions", &self.regions.iter().map(|r| r.iso).collect::<Vec<_>>())
            .field("recognizers", &self.recognizers.len())
            .finish()
    }
}

impl PiiScanner {
    pub fn new(config: &PiiConfig) -> Result<Self, ConfigError> {
        let mut regions: Vec<&'static phone::Region> = Vec::new();
        for (i, code) in config.phone_regions.iter().enumerate() {
            let Some(region) = phone::region(&code.trim().to_ascii_uppercase()) else {
                let known: Vec<&str> = phone::REGIONS.iter().map(|r| r.iso).collect();
                return Err(ConfigError::new(
                    format!("pii.phone_regions[{i}]"),
                    format!("unknown or unsupported region `{code}` (supported: {})", known.join(", ")),
                ));
            };
            // US and CA share the NANP rule; one copy suffices.
            if !regions.iter().any(|r| std::ptr::eq(*r, region) || (r.nanp && region.nanp)) {
                regions.push(region);
            }
        }
        let recognizers =
            config.recognizers.iter().enumerate().map(|(i, c)| Recognizer::new(i, c)).collect::<Result<_, _>>()?;
        Ok(PiiScanner { regions, recognizers })
    }

    /// Appends a finding for every piece of personal data in `text`, sorted by start.
    pub fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        let base = out.len();
        email::scan_emails(text, out);
        ip::scan_ipv6(text, out);
        let mut skip: Vec<(usize, usize)> = out[base..].iter().map(|f| (f.start, f.end)).collect();
        skip.sort_unstable();
        numbers::scan_numbers(text, &self.regions, &skip, out);
        for r in &self.recognizers {
            r.scan(text, out);
        }
        out[base..].sort_by_key(|f| (f.start, f.end));
    }
}

impl Default for PiiScanner {
    fn default() -> Self {
        PiiScanner::new(&PiiConfig::default()).expect("the default PII config is valid")
    }
}

/// A byte of a word: ASCII letter, digit or `_`.
pub(crate) fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Whether `word` (lowercase ASCII) occurs case-insensitively in the `window` bytes
/// before `s`.
pub(crate) fn ctx_before_ci(b: &[u8], s: usize, window: usize, word: &[u8]) -> bool {
    recognizer::contains_ci(&b[s.saturating_sub(window)..s], word)
}

/// Whether one of `words` (lowercase ASCII) occurs as a whole word within `before` bytes
/// before `s` or `after` bytes after `e` (`tel` in "tel: 555" but not in "telegram").
pub(crate) fn context_words(b: &[u8], s: usize, e: usize, before: usize, after: usize, words: &[&[u8]]) -> bool {
    let found = |lo: usize, hi: usize| {
        let hay = &b[lo..hi];
        words.iter().any(|w| {
            hay.windows(w.len()).enumerate().any(|(i, win)| {
                let at = lo + i;
                win.eq_ignore_ascii_case(w)
                    && (at == 0 || !b[at - 1].is_ascii_alphabetic())
                    && !b.get(at + w.len()).is_some_and(u8::is_ascii_alphabetic)
            })
        })
    };
    found(s.saturating_sub(before), s) || found(e, (e + after).min(b.len()))
}
