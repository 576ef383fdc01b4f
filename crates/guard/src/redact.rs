//! In-place redaction: each redacted finding's span becomes `[REDACTED:<KIND>]`, where the
//! kind comes from the detector id (`pii.email` -> `EMAIL`), never from the value.

use crate::engine::Decision;
use crate::profile::Action;

/// `text` with every `redact` (or stronger) decision's span replaced; overlapping spans
/// merge into one marker.
pub fn redact(text: &str, decisions: &[Decision], keep_card_last4: bool) -> String {
    let mut spans: Vec<(usize, usize, &Decision)> = decisions
        .iter()
        .filter(|d| d.action >= Action::Redact)
        .map(|d| (d.finding.start.min(text.len()), d.finding.end.min(text.len()), d))
        .filter(|(s, e, _)| s < e && text.is_char_boundary(*s) && text.is_char_boundary(*e))
        .collect();
    spans.sort_by_key(|(s, e, _)| (*s, std::cmp::Reverse(*e)));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (s, e, d) in spans {
        if e <= at {
            continue; // inside a span already redacted
        }
        let s = s.max(at);
        out.push_str(&text[at..s]);
        out.push_str(&marker(&text[s..e], d, keep_card_last4));
        at = e;
    }
    out.push_str(&text[at..]);
    out
}

fn marker(value: &str, d: &Decision, keep_card_last4: bool) -> String {
    let id = d.finding.detector.as_str();
    let kind = id.split_once('.').map_or(id, |(_, k)| k).to_ascii_uppercase();
    if keep_card_last4 && id == "pii.credit_card" {
        let digits: Vec<char> = value.chars().filter(char::is_ascii_digit).collect();
        if digits.len() >= 12 {
            let last4: String = digits[digits.len() - 4..].iter().collect();
            return format!("[REDACTED:{kind}:…{last4}]");
        }
    }
    format!("[REDACTED:{kind}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Category, Finding};

    fn d(id: &'static str, s: usize, e: usize, action: Action) -> Decision {
        Decision { finding: Finding::new(id, Category::Pii, s, e, 1.0), action }
    }

    #[test]
    fn replaces_spans_and_merges_overlaps() {
        let text = "mail bob@corp.io card 4111 1111 1111 1111 ok";
        let decisions = [
            d("pii.email", 5, 16, Action::Redact),
            d("pii.credit_card", 22, 41, Action::Redact),
            d("pii.phone", 27, 36, Action::Redact),
            d("pii.ipv4", 0, 4, Action::Flag),
        ];
        assert_eq!(redact(text, &decisions, true), "mail [REDACTED:EMAIL] card [REDACTED:CREDIT_CARD:…1111] ok");
        assert_eq!(redact(text, &decisions, false), "mail [REDACTED:EMAIL] card [REDACTED:CREDIT_CARD] ok");
    }
}
