//! Guard speed (BENCHMARKS.md, "Guards"): every default detector over a 4 KiB tool result,
//! PII + secrets throughput, and the classifier per KiB.
//!
//! `cargo bench -p portcullis-guard`

use portcullis_guard::injection::classifier::Model;
use portcullis_guard::normalize::normalize;
use portcullis_guard::pii::{PiiConfig, PiiScanner};
use portcullis_guard::secrets::SecretScanner;
use portcullis_guard::{Direction, Guard, GuardConfig};
use std::hint::black_box;

fn main() {
    divan::main();
}

/// A realistic 4 KiB tool result: a JSON list of issues with prose, URLs, ids and dates.
fn tool_result(len: usize) -> String {
    let mut out = String::from("{\"issues\":[");
    let mut i = 0;
    while out.len() < len {
        out.push_str(&format!(
            "{{\"number\":{n},\"id\":\"{n:08x}-9c1e-4d2a-8f00-5b7c{n:08x}\",\"title\":\"Crash when the config file has a trailing comma (#{n})\",\
             \"state\":\"open\",\"created_at\":\"2026-10-{d:02}T12:3{m}:00Z\",\"user\":\"dev{n}\",\"labels\":[\"bug\",\"parser\"],\
             \"body\":\"Steps: run `tool --config x.yaml` on v1.{m}.{d}; the parser panics at line {n}. See https://github.com/acme/tool/issues/{n} \
             and the log below.\\n2026-10-{d:02} 12:00:0{m} ERROR parser: unexpected token at offset {n}\"}},",
            n = 1000 + i,
            d = 1 + i % 28,
            m = i % 10
        ));
        i += 1;
    }
    out.truncate(len);
    out
}

// More samples: the whole guard warms several lazy regex caches, and a shared machine is noisy.
#[divan::bench(sample_count = 1000)]
fn all_default_detectors_4k_response(bencher: divan::Bencher) {
    let guard = Guard::new(&GuardConfig::default()).unwrap();
    let profile = guard.profile("default").unwrap();
    let text = tool_result(4096);
    bencher
        .counter(divan::counter::BytesCount::new(text.len()))
        .bench(|| guard.inspect(profile, Direction::Response, black_box(&text)));
}

#[divan::bench(sample_count = 1000)]
fn all_default_detectors_4k_request(bencher: divan::Bencher) {
    let guard = Guard::new(&GuardConfig::default()).unwrap();
    let profile = guard.profile("default").unwrap();
    let text = tool_result(4096);
    bencher
        .counter(divan::counter::BytesCount::new(text.len()))
        .bench(|| guard.inspect(profile, Direction::Request, black_box(&text)));
}

#[divan::bench]
fn pii_and_secrets_64k(bencher: divan::Bencher) {
    let pii = PiiScanner::new(&PiiConfig::default()).unwrap();
    let secrets = SecretScanner::new();
    let text = tool_result(64 * 1024);
    bencher.counter(divan::counter::BytesCount::new(text.len())).bench(|| {
        let mut out = Vec::new();
        pii.scan(black_box(&text), &mut out);
        secrets.scan(black_box(&text), &mut out);
        out
    });
}

#[divan::bench]
fn classifier_1k(bencher: divan::Bencher) {
    let model = Model::builtin();
    let text = normalize(&tool_result(1024)).text;
    bencher.counter(divan::counter::BytesCount::new(text.len())).bench(|| model.score(black_box(&text)));
}

#[divan::bench]
fn normalize_4k_non_ascii(bencher: divan::Bencher) {
    let text = tool_result(4000).replace("parser", "pärser ÿ");
    bencher.counter(divan::counter::BytesCount::new(text.len())).bench(|| normalize(black_box(&text)));
}

/// Each family alone over the same 4 KiB, to see where the time goes.
mod families {
    use super::tool_result;
    use portcullis_guard::commands::{CommandConfig, CommandScanner};
    use portcullis_guard::exfil::{ExfilConfig, ExfilScanner};
    use portcullis_guard::injection::{InjectionConfig, InjectionScanner};
    use portcullis_guard::normalize::decoded_segments;
    use portcullis_guard::urls::{UrlConfig, UrlScanner};
    use std::hint::black_box;

    #[divan::bench]
    fn injection_rules_and_decoding_4k(bencher: divan::Bencher) {
        let s = InjectionScanner::new(&InjectionConfig { classifier: false, ..InjectionConfig::default() }).unwrap();
        let text = tool_result(4096);
        bencher.bench(|| {
            let mut out = Vec::new();
            s.scan(black_box(&text), &mut out);
            out
        });
    }

    #[divan::bench]
    fn injection_with_classifier_4k(bencher: divan::Bencher) {
        let s = InjectionScanner::new(&InjectionConfig::default()).unwrap();
        let text = tool_result(4096);
        bencher.bench(|| {
            let mut out = Vec::new();
            s.scan(black_box(&text), &mut out);
            out
        });
    }

    #[divan::bench]
    fn decoded_segments_4k(bencher: divan::Bencher) {
        let text = tool_result(4096);
        bencher.bench(|| decoded_segments(black_box(&text)));
    }

    #[divan::bench]
    fn urls_exfil_commands_4k(bencher: divan::Bencher) {
        let urls = UrlScanner::new(&UrlConfig::default()).unwrap();
        let exfil = ExfilScanner::new(&ExfilConfig::default()).unwrap();
        let commands = CommandScanner::new(&CommandConfig::default()).unwrap();
        let text = tool_result(4096);
        bencher.bench(|| {
            let mut out = Vec::new();
            urls.scan(black_box(&text), &mut out);
            exfil.scan(black_box(&text), &mut out);
            commands.scan(black_box(&text), &mut out);
            out
        });
    }
}

/// A short tool argument or result: the fixed cost per call.
#[divan::bench]
fn all_default_detectors_64b_response(bencher: divan::Bencher) {
    let guard = Guard::new(&GuardConfig::default()).unwrap();
    let profile = guard.profile("default").unwrap();
    let text = "The build for release v2.4.1 finished in 41 s; 3 tests were skipp";
    bencher.bench(|| guard.inspect(profile, Direction::Response, black_box(text)));
}
