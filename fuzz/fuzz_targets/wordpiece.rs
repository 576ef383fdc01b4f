//! Fuzzes the deeper tier's WordPiece tokenizer (BERT uncased: control characters, Unicode
//! spaces, CJK, accents, punctuation, the longest-match cut): no input may panic, every id
//! must be in the vocabulary, and the overlapping windows must be framed by `[CLS]`/`[SEP]`,
//! fit the length, and together hold every piece of the text in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_guard_minilm::wordpiece::WordPiece;
use std::sync::OnceLock;

/// A small vocabulary in `vocab.txt`'s shape: the special pieces, a few words and
/// continuations, and single characters, so both the cut and `[UNK]` are reached.
const VOCAB: &str = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nignore\nall\nprevious\ninstructions\nthe\nsystem\n\
prompt\n##s\n##ing\n##ed\n##al\nun\n##known\na\nb\nc\ne\ni\no\nn\ns\nt\n##a\n##e\n##i\n##n\n##t\n.\n,\n!\n?\n'\n\"\n-\n\
(\n)\n:\n;\n/\n\\\n@\n#\n$\n%\n&\n*\n+\n=\n<\n>\n[\n]\n{\n}\n|\n~\n`\n^\n_\n无\n视\n指\n令\né\n0\n1\n2\n3\n##0\n##1";

const MAX_LEN: usize = 16;
const OVERLAP: usize = 4;

static TOKENIZER: OnceLock<WordPiece> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let wp =
        TOKENIZER.get_or_init(|| WordPiece::from_vocab(VOCAB).expect("the fuzz vocabulary has the special pieces"));
    let (cls, sep, size) = (2, 3, VOCAB.lines().count() as u32);
    let pieces = wp.pieces(text);
    assert!(pieces.iter().all(|&id| id < size && id != cls && id != sep), "{pieces:?}");
    let windows = wp.windows(text, MAX_LEN, OVERLAP);
    assert!(!windows.is_empty());
    let mut covered: Vec<u32> = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        assert!(w.len() >= 2 && w.len() <= MAX_LEN, "window of {} ids", w.len());
        assert_eq!((w[0], w[w.len() - 1]), (cls, sep));
        let body = &w[1..w.len() - 1];
        // Each window after the first repeats the last OVERLAP pieces of the one before.
        let new = if i == 0 { body } else { &body[OVERLAP.min(body.len())..] };
        covered.extend_from_slice(new);
    }
    assert_eq!(covered, pieces, "the windows must hold every piece once, in order");
    let encoded = wp.encode(text, MAX_LEN);
    assert_eq!(encoded, windows[0]);
});
