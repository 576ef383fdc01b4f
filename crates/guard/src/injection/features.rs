//! Hashed n-gram features for the injection classifier, shared by the scorer and the
//! trainer (`examples/train_injection.rs`) so both see exactly the same numbers.
//!
//! Byte 3- and 5-grams (whitespace runs count as one space) catch spelling tricks and
//! sub-word cues; word unigrams and bigrams catch phrasing. Each feature is hashed into
//! `2^DIM_BITS` buckets. A text's vector is its feature counts divided by the square root of
//! the number of features, so a score needs no per-text table: `bias + sum(w[f]) / sqrt(n)`.

/// log2 of the number of weight buckets.
pub const DIM_BITS: u32 = 18;
pub const DIM: usize = 1 << DIM_BITS;

const TAG_BYTES: u64 = 0x9E37_79B9_7F4A_7C15;
const TAG_WORD: u64 = 0xC2B2_AE3D_27D4_EB4F;
const TAG_BIGRAM: u64 = 0x1656_67B1_9E37_79F9;

/// Fibonacci hashing: one multiply spreads n-gram bits into the top bits, which
/// [`bucket`] keeps. Cheap enough to run three times per byte.
#[inline]
fn mix(z: u64) -> u64 {
    (z ^ (z >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[inline]
fn bucket(h: u64) -> u32 {
    (h >> (64 - DIM_BITS)) as u32
}

const OTHER: u8 = 0;
const SPACE: u8 = 1;
const WORD: u8 = 2;

/// Byte classes as a table (the feature loop's hot branch): ASCII whitespace, word bytes
/// (ASCII letters and digits, and every byte of a non-ASCII character), the rest.
static BYTE_CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_whitespace() {
            SPACE
        } else if c.is_ascii_alphanumeric() || c >= 0x80 {
            WORD
        } else {
            OTHER
        };
        b += 1;
    }
    t
};

/// Calls `emit` with the bucket of every feature of `text` (already normalized and lower
/// case) and returns how many there were.
#[inline]
pub fn for_each_feature(text: &str, mut emit: impl FnMut(u32)) -> usize {
    let mut features = Features::new();
    features.feed(text.as_bytes(), &mut emit) + features.finish(&mut emit)
}

/// The feature pass as a state machine that can be fed a text piece by piece (the scorer
/// feeds it one window edge to the next). Features are the same however the text is cut:
/// a word's features are emitted by the byte that ends it, the last word's by
/// [`Features::finish`].
#[derive(Clone, Copy)]
pub struct Features {
    /// The last five bytes (whitespace runs as one space).
    reg: u64,
    /// Bytes in `reg` so far, capped at 5.
    filled: u8,
    last_space: bool,
    in_word: bool,
    word: u64,
    prev_word: u64,
}

const WORD_SEED: u64 = 0xcbf2_9ce4_8422_2325;

impl Default for Features {
    fn default() -> Self {
        Self::new()
    }
}

impl Features {
    pub fn new() -> Self {
        Features { reg: 0, filled: 0, last_space: true, in_word: false, word: WORD_SEED, prev_word: 0 }
    }

    /// Feeds the next bytes of the text; returns how many features they completed.
    #[inline]
    pub fn feed(&mut self, bytes: &[u8], mut emit: impl FnMut(u32)) -> usize {
        // Locals, not fields, in the hot loop: they stay in registers.
        let Features { mut reg, mut filled, mut last_space, mut in_word, mut word, mut prev_word } = *self;
        let mut n = 0;
        for &b in bytes {
            let class = BYTE_CLASS[b as usize];
            let is_space = class == SPACE;
            if class == WORD {
                word = (word ^ b as u64).wrapping_mul(0x0100_0000_01b3);
                in_word = true;
            } else if in_word {
                emit(bucket(mix(word ^ TAG_WORD)));
                emit(bucket(mix(prev_word.rotate_left(17) ^ word ^ TAG_BIGRAM)));
                n += 2;
                prev_word = word;
                word = WORD_SEED;
                in_word = false;
            }
            if is_space {
                if last_space {
                    continue;
                }
                last_space = true;
            } else {
                last_space = false;
            }
            let b = if is_space { b' ' } else { b };
            reg = (reg << 8) | b as u64;
            if filled < 5 {
                filled += 1;
            }
            if filled >= 3 {
                emit(bucket(mix((reg & 0xFF_FFFF) ^ TAG_BYTES ^ (3 << 56))));
                n += 1;
            }
            if filled >= 5 {
                emit(bucket(mix((reg & 0xFF_FFFF_FFFF) ^ TAG_BYTES ^ (5 << 56))));
                n += 1;
            }
        }
        *self = Features { reg, filled, last_space, in_word, word, prev_word };
        n
    }

    /// Ends the text: the features of a word still open.
    #[inline]
    pub fn finish(&mut self, mut emit: impl FnMut(u32)) -> usize {
        if !self.in_word {
            return 0;
        }
        emit(bucket(mix(self.word ^ TAG_WORD)));
        emit(bucket(mix(self.prev_word.rotate_left(17) ^ self.word ^ TAG_BIGRAM)));
        self.in_word = false;
        2
    }
}

/// Splits a long text into overlapping windows of about `WINDOW` bytes (on char
/// boundaries, preferring whitespace), so one injected sentence in a long tool result is
/// scored on its own rather than diluted by the rest.
pub const WINDOW: usize = 512;

pub fn windows(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let len = text.len();
    let stride = WINDOW / 2;
    let mut start = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        if len <= start + WINDOW {
            done = true;
            return Some((start, len));
        }
        let mut end = start + WINDOW;
        // Back up to whitespace (at most a quarter window) so words stay whole.
        let floor = end - WINDOW / 4;
        while end > floor && !text.as_bytes()[end].is_ascii_whitespace() {
            end -= 1;
        }
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let window = (start, end);
        let mut next = start + stride;
        while next < len && !text.is_char_boundary(next) {
            next += 1;
        }
        start = next;
        Some(window)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_runs_count_once_and_features_are_stable() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        let na = for_each_feature("ignore  all\n\tprevious", |f| a.push(f));
        let nb = for_each_feature("ignore all previous", |f| b.push(f));
        assert_eq!(na, nb);
        assert_eq!(a, b);
        assert!(a.iter().all(|&f| (f as usize) < DIM));
        // Fed in pieces, the same features.
        let mut c = Vec::new();
        let mut features = Features::new();
        for piece in ["ign", "ore  a", "ll\n", "\tprevious"] {
            features.feed(piece.as_bytes(), |f| c.push(f));
        }
        features.finish(|f| c.push(f));
        assert_eq!(a, c);
    }

    #[test]
    fn windows_cover_long_text_on_char_boundaries() {
        let text = "héllo wörld ".repeat(200);
        let spans: Vec<_> = windows(&text).collect();
        assert!(spans.len() > 4);
        assert_eq!(spans[0].0, 0);
        assert_eq!(spans.last().unwrap().1, text.len());
        for (s, e) in spans {
            assert!(text.is_char_boundary(s) && text.is_char_boundary(e) && s < e);
        }
        assert_eq!(windows("short").collect::<Vec<_>>(), [(0, 5)]);
    }
}
