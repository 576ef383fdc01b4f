//! GUARDRAILS.md documents every built-in detector and cites every secret format's source:
//! a detector added without its line there fails here.

use portcullis_guard::builtin_detectors;
use portcullis_guard::secrets::SecretScanner;

#[test]
fn guardrails_md_lists_every_detector_and_secret_source() {
    // The run-time variable, not `env!`: a shared target directory may hold a binary built in
    // another checkout.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let doc = std::fs::read_to_string(std::path::Path::new(&manifest).join("../../GUARDRAILS.md")).unwrap();
    let missing: Vec<&str> =
        builtin_detectors().into_iter().map(|(id, _)| id).filter(|id| !doc.contains(&format!("`{id}`"))).collect();
    assert!(
        missing.is_empty(),
        "not in GUARDRAILS.md (regenerate with `cargo run -q -p portcullis-guard --example detectors`): {missing:?}"
    );
    for (id, source) in SecretScanner::formats() {
        assert!(doc.contains(&format!("| `{id}` | <{source}> |")), "{id}: its source is not cited in GUARDRAILS.md");
    }
}
