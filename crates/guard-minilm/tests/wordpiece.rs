//! The WordPiece tokenizer against the Hugging Face reference (fixture written by
//! `scripts/wordpiece-reference.py`), with the vocabulary of the registry package that
//! `scripts/minilm.sh` fetches.

mod common;

use portcullis_guard_minilm::wordpiece::WordPiece;

#[test]
#[ignore = "needs the base model: scripts/minilm.sh (run by scripts/test.sh)"]
fn tokenizes_like_the_reference() {
    let vocab = std::fs::read_to_string(common::base_dir().join("vocab.txt")).expect("vocab.txt");
    let tokenizer = WordPiece::from_vocab(&vocab).unwrap();
    let fixture = std::env::var("WORDPIECE_REFERENCE")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/tests/wordpiece-reference.jsonl").into());
    let mut checked = 0;
    let mut wrong = Vec::new();
    for line in std::fs::read_to_string(&fixture).unwrap().lines() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let got = tokenizer.encode(text, usize::MAX);
        if got != expected {
            wrong.push(format!("{text:?}\n  expected {expected:?}\n  got      {got:?}"));
        }
        checked += 1;
    }
    assert!(checked > 100, "the fixture {fixture} has only {checked} cases");
    assert!(wrong.is_empty(), "{} of {checked} differ:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
#[ignore = "needs the base model: scripts/minilm.sh (run by scripts/test.sh)"]
fn long_texts_are_covered_by_overlapping_windows() {
    let vocab = std::fs::read_to_string(common::base_dir().join("vocab.txt")).expect("vocab.txt");
    let tokenizer = WordPiece::from_vocab(&vocab).unwrap();
    let text = (0..300).map(|i| format!("word{i}")).collect::<Vec<_>>().join(" ");
    let pieces = tokenizer.pieces(&text);
    let windows = tokenizer.windows(&text, 128, 32);
    assert!(windows.iter().all(|w| w.len() <= 128 && w[0] == 101 && *w.last().unwrap() == 102));
    // Every piece is in some window, in order, and consecutive windows overlap by 32 pieces.
    let bodies: Vec<&[u32]> = windows.iter().map(|w| &w[1..w.len() - 1]).collect();
    assert_eq!(bodies[0], &pieces[..126]);
    assert_eq!(&bodies[0][126 - 32..], &bodies[1][..32]);
    assert_eq!(bodies.last().unwrap(), &&pieces[pieces.len() - bodies.last().unwrap().len()..]);
    let short = tokenizer.windows("hello", 128, 32);
    assert_eq!(short, vec![tokenizer.encode("hello", 128)]);
}
