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
    for_each_feature_at(text, |_, f| emit(f))
}

/// As [`for_each_feature`], with the byte offset at which each feature ends.
#[inline]
pub fn for_each_feature_at(text: &str, mut emit: impl FnMut(usize, u32)) -> usize {
    let mut n = 0;
    let mut reg: u64 = 0;
    let mut filled = 0u32;
    let mut last_space = true;
    let mut word: u64 = 0xcbf2_9ce4_8422_2325;
    let mut in_word = false;
    let mut prev_word: u64 = 0;
    for (at, &b) in text.as_bytes().iter().enumerate() {
        let class = BYTE_CLASS[b as usize];
        let is_space = class == SPACE;
        let is_word = class == WORD;
        if is_word {
            word = (word ^ b as u64).wrapping_mul(0x0100_0000_01b3);
            in_word = true;
        } else if in_word {
            emit(at, bucket(mix(word ^ TAG_WORD)));
            emit(at, bucket(mix(prev_word.rotate_left(17) ^ word ^ TAG_BIGRAM)));
            n += 2;
            prev_word = word;
            word = 0xcbf2_9ce4_8422_2325;
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
        filled += 1;
        if filled >= 3 {
            emit(at, bucket(mix((reg & 0xFF_FFFF) ^ TAG_BYTES ^ (3 << 56))));
            n += 1;
        }
        if filled >= 5 {
            emit(at, bucket(mix((reg & 0xFF_FFFF_FFFF) ^ TAG_BYTES ^ (5 << 56))));
            n += 1;
        }
    }
    if in_word {
        emit(text.len(), bucket(mix(word ^ TAG_WORD)));
        emit(text.len(), bucket(mix(prev_word.rotate_left(17) ^ word ^ TAG_BIGRAM)));
        n += 2;
    }
    n
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
