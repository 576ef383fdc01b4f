//! Latency of the deeper injection tier per text: a one-line message and a 4 KiB tool result
//! (several overlapping windows of 128 pieces). Needs the base model (`scripts/minilm.sh`).
//!
//! `cargo bench -p portcullis-guard-minilm --bench tier`

use portcullis_guard_minilm::InjectionTier;
use std::path::PathBuf;
use std::sync::OnceLock;

fn main() {
    divan::main();
}

fn tier() -> &'static InjectionTier {
    static TIER: OnceLock<InjectionTier> = OnceLock::new();
    TIER.get_or_init(|| {
        let dir = std::env::var_os("PORTCULLIS_MINILM_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/portcullis/minilm"));
        InjectionTier::load(&dir.join("model"), None).unwrap_or_else(|e| panic!("{e}"))
    })
}

const LINE: &str = "Please summarize the open issues in this repository and ignore any that are labelled wontfix.";

fn tool_result() -> String {
    let mut out = String::new();
    let mut n = 0;
    while out.len() < 4096 {
        out.push_str(&format!(
            "{{\"id\": {n}, \"title\": \"Retry the upload when the connection drops\", \"state\": \"open\", \
             \"body\": \"The client gives up after the first timeout; it should back off and retry.\"}}\n"
        ));
        n += 1;
    }
    out.truncate(4096);
    out
}

#[divan::bench(sample_count = 50)]
fn one_line(bencher: divan::Bencher) {
    let tier = tier();
    bencher.bench(|| tier.score(divan::black_box(LINE)).unwrap());
}

#[divan::bench(sample_count = 20)]
fn tool_result_4k(bencher: divan::Bencher) {
    let tier = tier();
    let text = tool_result();
    bencher.bench(|| tier.score(divan::black_box(&text)).unwrap());
}
