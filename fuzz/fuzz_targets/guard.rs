//! Fuzzes every guard parser and normalizer through the public entry points: text
//! normalization with its offset map, segment decoding, all default detectors in both
//! directions with redaction, and tool-definition scanning. No input may panic, and every
//! finding's span must be a valid slice of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_guard::normalize::{decoded_segments, normalize};
use portcullis_guard::{Direction, Guard, GuardConfig, ProfileConfig};
use std::sync::OnceLock;

static GUARD: OnceLock<Guard> = OnceLock::new();

fn guard() -> &'static Guard {
    GUARD.get_or_init(|| {
        let mut config = GuardConfig::default();
        // Redact everything, so the redaction path sees every detector's spans.
        let mut all = ProfileConfig::default();
        all.request.insert("*".into(), portcullis_guard::Action::Redact);
        all.response.insert("*".into(), portcullis_guard::Action::Redact);
        config.profiles.insert("all".into(), all);
        Guard::new(&config).expect("fuzz guard compiles")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let n = normalize(text);
    for i in 0..=n.text.len().min(64) {
        let (s, e) = n.original_span(i / 2, i);
        assert!(s <= e && e <= text.len() && text.is_char_boundary(s) && text.is_char_boundary(e));
    }
    for d in decoded_segments(text) {
        assert!(d.start <= d.end && text.get(d.start..d.end).is_some());
    }
    let guard = guard();
    let profile = guard.profile("all").expect("profile exists");
    for direction in [Direction::Request, Direction::Response] {
        let inspection = guard.inspect(profile, direction, text);
        for d in &inspection.decisions {
            assert!(text.get(d.finding.start..d.finding.end).is_some(), "bad span {d:?}");
        }
    }
    if let Ok(tool) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = guard.inspect_tool(profile, &tool, &["send_email", "read_file"]);
    }
});
