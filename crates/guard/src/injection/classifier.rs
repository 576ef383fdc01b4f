//! The injection classifier: logistic regression over hashed n-grams ([`super::features`]),
//! run in-process in microseconds. Weights are int8 with one scale, committed as
//! `model.bin` and reproduced by `scripts/train-injection.sh` from public data.
//!
//! File layout (little endian): `PCIJ`, version u32 (1), dim_bits u32, bias f32, scale f32,
//! threshold f32, then `2^dim_bits` i8 weights.

use super::features::{for_each_feature, windows, Features, DIM, DIM_BITS};

const MAGIC: &[u8; 4] = b"PCIJ";
const HEADER: usize = 4 + 4 + 4 + 4 + 4 + 4;

/// The model shipped in the binary.
static BUILTIN: &[u8] = include_bytes!("model.bin");

/// A loaded classifier.
#[derive(Clone)]
pub struct Model {
    bias: f32,
    scale: f32,
    /// The decision threshold picked on the validation splits (see GUARDRAILS.md).
    pub threshold: f32,
    weights: Box<[i8; DIM]>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("bias", &self.bias).field("threshold", &self.threshold).finish_non_exhaustive()
    }
}

impl Model {
    /// The committed model. Its bytes are checked by a unit test, so a broken file fails
    /// the build's tests rather than a running gateway.
    pub fn builtin() -> Model {
        Model::parse(BUILTIN).unwrap_or_else(|e| panic!("the committed injection model is invalid: {e}"))
    }

    pub fn parse(bytes: &[u8]) -> Result<Model, String> {
        if bytes.len() < HEADER || &bytes[..4] != MAGIC {
            return Err("not a Portcullis injection model (bad magic)".into());
        }
        let u32_at = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let f32_at = |i: usize| f32::from_bits(u32_at(i));
        if u32_at(4) != 1 {
            return Err(format!("unsupported model version {}", u32_at(4)));
        }
        if u32_at(8) != DIM_BITS {
            return Err(format!("model has 2^{} buckets, this build uses 2^{DIM_BITS}", u32_at(8)));
        }
        let weights = &bytes[HEADER..];
        if weights.len() != DIM {
            return Err(format!("model has {} weights, expected {DIM}", weights.len()));
        }
        Ok(Model {
            bias: f32_at(12),
            scale: f32_at(16),
            threshold: f32_at(20),
            weights: to_table(weights.iter().map(|&b| b as i8).collect())?,
        })
    }

    /// Builds a model from float weights (the trainer), quantized as it will be shipped.
    pub fn quantize(bias: f32, weights: &[f32], threshold: f32) -> Model {
        let max = weights.iter().fold(0f32, |m, w| m.max(w.abs())).max(f32::MIN_POSITIVE);
        let scale = max / 127.0;
        let weights = weights.iter().map(|w| (w / scale).round().clamp(-127.0, 127.0) as i8).collect();
        let weights = to_table(weights).unwrap_or_else(|e| panic!("the trainer passed a bad weight vector: {e}"));
        Model { bias, scale, threshold, weights }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + DIM);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&DIM_BITS.to_le_bytes());
        out.extend_from_slice(&self.bias.to_le_bytes());
        out.extend_from_slice(&self.scale.to_le_bytes());
        out.extend_from_slice(&self.threshold.to_le_bytes());
        out.extend(self.weights.iter().map(|&w| w as u8));
        out
    }

    pub fn with_threshold(mut self, threshold: f32) -> Model {
        self.threshold = threshold;
        self
    }

    /// The injection probability of one short text (normalized, lower case).
    pub fn score_one(&self, text: &str) -> f32 {
        let mut sum: i32 = 0;
        let n = for_each_feature(text, |f| sum += self.weight(f));
        self.probability(sum, n)
    }

    /// The highest window score of a text and that window's span. Texts of fewer than
    /// [`MIN_WORDS`] words score 0: a word or two (`"complete"`, `"true"`, a status field)
    /// carries too few features for a linear model to judge, and the phrase rules still
    /// see them.
    pub fn score(&self, text: &str) -> (f32, usize, usize) {
        if text.split_whitespace().nth(MIN_WORDS - 1).is_none() {
            return (0.0, 0, 0);
        }
        if text.len() <= super::features::WINDOW {
            return (self.score_one(text), 0, text.len());
        }
        // One feature pass for all the overlapping windows, fed from one window edge to the
        // next; the running weight sum and feature count at each edge give every window's
        // score as a difference of two.
        let spans: Vec<(usize, usize)> = windows(text).collect();
        let mut edges: Vec<usize> = spans.iter().flat_map(|&(s, e)| [s, e]).collect();
        edges.sort_unstable();
        edges.dedup();
        let mut features = Features::new();
        let (mut sum, mut count, mut from) = (0i32, 0usize, 0usize);
        let mut totals = Vec::with_capacity(edges.len());
        for &edge in &edges {
            count += features.feed(&text.as_bytes()[from..edge], |f| sum += self.weight(f));
            // The last window also takes the features that end with the text.
            if edge == text.len() {
                count += features.finish(|f| sum += self.weight(f));
            }
            totals.push((sum, count));
            from = edge;
        }
        let at_edge = |at: usize| totals[edges.partition_point(|&c| c < at)];
        let mut best = (0.0, 0, 0);
        for (s, e) in spans {
            let ((sum_s, count_s), (sum_e, count_e)) = (at_edge(s), at_edge(e));
            let p = self.probability(sum_e - sum_s, count_e - count_s);
            if p > best.0 {
                best = (p, s, e);
            }
        }
        best
    }

    #[inline]
    fn weight(&self, bucket: u32) -> i32 {
        self.weights[bucket as usize & (DIM - 1)] as i32
    }

    /// The probability for `count` features whose int8 weights sum to `sum`: features are
    /// counts scaled by one over the square root of their number.
    fn probability(&self, sum: i32, count: usize) -> f32 {
        if count == 0 {
            return sigmoid(self.bias);
        }
        sigmoid(self.bias + sum as f32 * self.scale / (count as f32).sqrt())
    }
}

/// A fixed-size table, so that a bucket masked to `DIM - 1` needs no bounds check.
fn to_table(weights: Vec<i8>) -> Result<Box<[i8; DIM]>, String> {
    let len = weights.len();
    weights.into_boxed_slice().try_into().map_err(|_| format!("model has {len} weights, expected {DIM}"))
}

/// The fewest words a text needs for the classifier to score it.
pub const MIN_WORDS: usize = 3;

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_model_loads_and_round_trips() {
        let m = Model::builtin();
        assert!(m.threshold > 0.0 && m.threshold < 1.0);
        assert_eq!(Model::parse(&m.to_bytes()).unwrap().to_bytes(), m.to_bytes());
        assert!(Model::parse(b"nope").is_err());
    }
}
