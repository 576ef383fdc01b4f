//! BERT's uncased WordPiece tokenizer, as all-MiniLM-L6-v2 was trained with it.
//!
//! The steps follow the reference `BasicTokenizer` + `WordpieceTokenizer`: drop control characters,
//! treat every Unicode space as a separator, put spaces around CJK ideographs, lower-case, strip
//! accents (NFD without combining marks), split off punctuation, then cut each word into the longest
//! vocabulary pieces from the left (`##` marks a continuation). A word that cannot be cut, or is
//! longer than 100 characters, becomes `[UNK]`. The test `tokenizes_like_the_reference` checks the
//! ids against the Hugging Face `tokenizers` library on a fixture.

use std::collections::HashMap;
use unicode_general_category::{get_general_category, GeneralCategory};
use unicode_normalization::UnicodeNormalization;

/// Words longer than this many characters become `[UNK]`, as in the reference.
const MAX_WORD_CHARS: usize = 100;

/// A vocabulary and the ids of the special pieces.
pub struct WordPiece {
    vocab: HashMap<String, u32>,
    cls: u32,
    sep: u32,
    unk: u32,
}

/// The vocabulary file lacks a piece the model needs.
#[derive(Debug, thiserror::Error)]
#[error("the vocabulary has no {0} piece; is this a BERT uncased vocab.txt?")]
pub struct MissingPiece(&'static str);

impl WordPiece {
    /// Reads `vocab.txt`'s text: one piece per line, the line number is the id.
    pub fn from_vocab(text: &str) -> Result<Self, MissingPiece> {
        let vocab: HashMap<String, u32> =
            text.lines().enumerate().map(|(id, piece)| (piece.to_owned(), id as u32)).collect();
        let id = |piece: &'static str| vocab.get(piece).copied().ok_or(MissingPiece(piece));
        Ok(Self { cls: id("[CLS]")?, sep: id("[SEP]")?, unk: id("[UNK]")?, vocab })
    }

    /// The pieces of `text`, without `[CLS]` and `[SEP]`.
    pub fn pieces(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::with_capacity(text.len() / 3);
        let mut word = String::new();
        for c in text.chars() {
            if is_separator(c) || is_cjk(c) || is_punctuation(c) {
                self.push_word(&word, &mut ids);
                word.clear();
                if !is_separator(c) {
                    self.push_word(&c.to_string(), &mut ids);
                }
            } else if !is_dropped(c) {
                word.push(c);
            }
        }
        self.push_word(&word, &mut ids);
        ids
    }

    /// `[CLS] pieces [SEP]`, the first `max_len - 2` pieces if there are more.
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        let mut ids = vec![self.cls];
        ids.extend(self.pieces(text).into_iter().take(max_len.saturating_sub(2)));
        ids.push(self.sep);
        ids
    }

    /// Windows of at most `max_len` ids, each framed by `[CLS]` and `[SEP]`, that together cover
    /// every piece; consecutive windows share `overlap` pieces so a phrase cut by one boundary
    /// is whole in the next window.
    pub fn windows(&self, text: &str, max_len: usize, overlap: usize) -> Vec<Vec<u32>> {
        let pieces = self.pieces(text);
        let body = max_len.saturating_sub(2).max(1);
        let step = body.saturating_sub(overlap).max(1);
        let mut windows = Vec::new();
        let mut start = 0;
        loop {
            let end = (start + body).min(pieces.len());
            let mut ids = Vec::with_capacity(end - start + 2);
            ids.push(self.cls);
            ids.extend_from_slice(&pieces[start..end]);
            ids.push(self.sep);
            windows.push(ids);
            if end == pieces.len() {
                return windows;
            }
            start += step;
        }
    }

    /// Lower-cases and strips accents from one word or punctuation mark, then cuts it into pieces.
    fn push_word(&self, word: &str, ids: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        let folded: String =
            word.to_lowercase().nfd().filter(|&c| get_general_category(c) != GeneralCategory::NonspacingMark).collect();
        // Stripping accents can leave punctuation that was a letter's part; the reference splits
        // after stripping, so split again here.
        let mut part = String::new();
        for c in folded.chars() {
            if is_punctuation(c) {
                self.push_pieces(&part, ids);
                part.clear();
                self.push_pieces(&c.to_string(), ids);
            } else {
                part.push(c);
            }
        }
        self.push_pieces(&part, ids);
    }

    /// Greedy longest-match-first from the left; `[UNK]` for the whole word if any part fails.
    fn push_pieces(&self, word: &str, ids: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        let bounds: Vec<usize> = word.char_indices().map(|(i, _)| i).chain([word.len()]).collect();
        if bounds.len() - 1 > MAX_WORD_CHARS {
            ids.push(self.unk);
            return;
        }
        let first = ids.len();
        let mut key = String::new();
        let mut start = 0;
        while start < bounds.len() - 1 {
            let mut end = bounds.len() - 1;
            let found = loop {
                key.clear();
                if start > 0 {
                    key.push_str("##");
                }
                key.push_str(&word[bounds[start]..bounds[end]]);
                if let Some(&id) = self.vocab.get(&key) {
                    break Some(id);
                }
                end -= 1;
                if end == start {
                    break None;
                }
            };
            match found {
                Some(id) => ids.push(id),
                None => {
                    ids.truncate(first);
                    ids.push(self.unk);
                    return;
                }
            }
            start = end;
        }
    }
}

/// Whitespace as BERT sees it: space, tab, newline, carriage return and Unicode space separators.
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r') || get_general_category(c) == GeneralCategory::SpaceSeparator
}

/// NUL, the replacement character and control or format characters are dropped.
fn is_dropped(c: char) -> bool {
    c == '\0'
        || c == '\u{fffd}'
        || matches!(get_general_category(c), GeneralCategory::Control | GeneralCategory::Format)
}

/// ASCII non-alphanumerics count as punctuation, as in the reference, plus Unicode's P* classes.
fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_punctuation();
    }
    matches!(
        get_general_category(c),
        GeneralCategory::ConnectorPunctuation
            | GeneralCategory::DashPunctuation
            | GeneralCategory::OpenPunctuation
            | GeneralCategory::ClosePunctuation
            | GeneralCategory::InitialPunctuation
            | GeneralCategory::FinalPunctuation
            | GeneralCategory::OtherPunctuation
    )
}

/// The CJK Unified Ideograph blocks the reference splits character by character.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B820..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> WordPiece {
        WordPiece::from_vocab("[PAD]\n[UNK]\n[CLS]\n[SEP]\nign\n##ore\nall\n!\n.\nun\n##a\n##ff\ncafe\n").unwrap()
    }

    #[test]
    fn cuts_words_into_the_longest_pieces() {
        let t = tiny();
        assert_eq!(t.encode("IGNORE all!", 128), [2, 4, 5, 6, 7, 3]);
        // Accents are stripped, a word with an unknown part is one [UNK].
        assert_eq!(t.pieces("Café unaffx"), [12, 1]);
        assert_eq!(t.pieces("unaff."), [9, 10, 11, 8]);
        assert!(WordPiece::from_vocab("a\nb\n").is_err());
    }

    /// Arbitrary text (a deterministic stream of characters from many scripts, controls,
    /// combining marks, unassigned and private-use code points): no panic, windows in bounds
    /// and framed, nothing lost.
    #[test]
    fn any_text_tokenizes_without_panicking() {
        let t = tiny();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2_000 {
            let len = (next() % 400) as usize;
            let text: String = (0..len)
                .filter_map(|_| {
                    let r = next();
                    let cp = match r % 6 {
                        0 => (r >> 8) % 0x80,
                        1 => 0x300 + (r >> 8) % 0x70,
                        2 => 0x4E00 + (r >> 8) % 0x100,
                        3 => 0x2000 + (r >> 8) % 0x70,
                        4 => 0x1F300 + (r >> 8) % 0x300,
                        _ => (r >> 8) % 0x11_0000,
                    };
                    char::from_u32(cp as u32)
                })
                .collect();
            let pieces = t.pieces(&text);
            let windows = t.windows(&text, 16, 4);
            assert!(windows.iter().all(|w| w.len() <= 16 && w[0] == 2 && w[w.len() - 1] == 3));
            let covered: usize = windows.iter().map(|w| w.len() - 2).sum::<usize>() - 4 * (windows.len() - 1);
            assert_eq!(covered, pieces.len(), "{text:?}");
        }
    }
}
