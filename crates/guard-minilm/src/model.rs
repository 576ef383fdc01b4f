//! The MiniLM encoder (a 6-layer BERT) and the classification head, written so that the same code
//! scores texts at run time and trains the top layers: `Mode::Train` uses candle's differentiable
//! composite ops, `Mode::Infer` its fused kernels, which have no gradient.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::ops;
use std::collections::HashMap;

/// Selects the ops: differentiable while training, fused when only scoring.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Infer,
}

/// The shape of the encoder, read from the model's `config.json`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Config {
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: String,
}

/// The name-to-tensor map of a checkpoint, with what is missing said by name.
pub struct Weights(pub HashMap<String, Tensor>);

impl Weights {
    pub fn get(&self, name: &str) -> candle_core::Result<Tensor> {
        self.0.get(name).cloned().ok_or_else(|| candle_core::Error::Msg(format!("the weights have no tensor {name}")))
    }
}

/// Called on every parameter of a part as it is loaded: the identity when scoring, "make it a
/// trainable variable" when training.
pub type Param<'a> = dyn FnMut(Tensor) -> candle_core::Result<Tensor> + 'a;

/// The identity `Param`, for frozen parts.
pub fn frozen(t: Tensor) -> candle_core::Result<Tensor> {
    Ok(t)
}

/// `x · Wᵀ + b`, with `Wᵀ` stored transposed so the product is one contiguous matmul.
pub struct Linear {
    pub weight_t: Tensor,
    pub bias: Tensor,
}

impl Linear {
    /// Loads `{name}.weight` (out × in) and `{name}.bias`; `param` sees each tensor once, in
    /// the orientation used here (the trainer turns them into variables).
    pub fn load(w: &Weights, name: &str, param: &mut Param) -> candle_core::Result<Self> {
        Ok(Self {
            weight_t: param(w.get(&format!("{name}.weight"))?.t()?.contiguous()?)?,
            bias: param(w.get(&format!("{name}.bias"))?)?,
        })
    }

    /// `{name}.weight` (out × in) and `{name}.bias`, as a checkpoint stores them.
    pub fn named(&self, name: &str) -> candle_core::Result<Vec<(String, Tensor)>> {
        Ok(vec![
            (format!("{name}.weight"), self.weight_t.t()?.contiguous()?),
            (format!("{name}.bias"), self.bias.clone()),
        ])
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims();
        let inner = dims[dims.len() - 1];
        let rows = x.elem_count() / inner;
        let out = self.weight_t.dim(1)?;
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("a linear layer's input has a last dimension") = out;
        x.reshape((rows, inner))?.matmul(&self.weight_t)?.broadcast_add(&self.bias)?.reshape(shape)
    }
}

pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn load(w: &Weights, name: &str, eps: f64, param: &mut Param) -> candle_core::Result<Self> {
        Ok(Self {
            weight: param(w.get(&format!("{name}.weight"))?)?,
            bias: param(w.get(&format!("{name}.bias"))?)?,
            eps,
        })
    }

    fn named(&self, name: &str) -> Vec<(String, Tensor)> {
        vec![(format!("{name}.weight"), self.weight.clone()), (format!("{name}.bias"), self.bias.clone())]
    }

    fn forward(&self, x: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        match mode {
            Mode::Train => ops::layer_norm_slow(x, &self.weight, &self.bias, self.eps as f32),
            Mode::Infer => ops::layer_norm(x, &self.weight, &self.bias, self.eps as f32),
        }
    }
}

/// One transformer block: self-attention, then the feed-forward part, each with a residual and a
/// layer norm after it (BERT's post-norm order).
pub struct Layer {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub attention_out: Linear,
    pub attention_norm: LayerNorm,
    pub intermediate: Linear,
    pub output: Linear,
    pub output_norm: LayerNorm,
    heads: usize,
}

impl Layer {
    pub fn load(w: &Weights, index: usize, config: &Config, param: &mut Param) -> candle_core::Result<Self> {
        let p = |part: &str| format!("encoder.layer.{index}.{part}");
        let eps = config.layer_norm_eps;
        Ok(Self {
            query: Linear::load(w, &p("attention.self.query"), param)?,
            key: Linear::load(w, &p("attention.self.key"), param)?,
            value: Linear::load(w, &p("attention.self.value"), param)?,
            attention_out: Linear::load(w, &p("attention.output.dense"), param)?,
            attention_norm: LayerNorm::load(w, &p("attention.output.LayerNorm"), eps, param)?,
            intermediate: Linear::load(w, &p("intermediate.dense"), param)?,
            output: Linear::load(w, &p("output.dense"), param)?,
            output_norm: LayerNorm::load(w, &p("output.LayerNorm"), eps, param)?,
            heads: config.num_attention_heads,
        })
    }

    /// Every tensor of the layer under its checkpoint name.
    pub fn named(&self, index: usize) -> candle_core::Result<Vec<(String, Tensor)>> {
        let p = |part: &str| format!("encoder.layer.{index}.{part}");
        let mut all = Vec::new();
        all.extend(self.query.named(&p("attention.self.query"))?);
        all.extend(self.key.named(&p("attention.self.key"))?);
        all.extend(self.value.named(&p("attention.self.value"))?);
        all.extend(self.attention_out.named(&p("attention.output.dense"))?);
        all.extend(self.attention_norm.named(&p("attention.output.LayerNorm")));
        all.extend(self.intermediate.named(&p("intermediate.dense"))?);
        all.extend(self.output.named(&p("output.dense"))?);
        all.extend(self.output_norm.named(&p("output.LayerNorm")));
        Ok(all)
    }

    /// `x` is batch × sequence × hidden; `mask_bias` is batch × 1 × 1 × sequence, 0 for real
    /// pieces and a large negative number for padding.
    pub fn forward(&self, x: &Tensor, mask_bias: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        let (batch, seq, hidden) = x.dims3()?;
        let head_dim = hidden / self.heads;
        let split = |t: Tensor| t.reshape((batch, seq, self.heads, head_dim))?.transpose(1, 2)?.contiguous();
        let q = split(self.query.forward(x)?)?;
        let k = split(self.key.forward(x)?)?;
        let v = split(self.value.forward(x)?)?;
        let scores = (q.matmul(&k.t()?.contiguous()?)? / (head_dim as f64).sqrt())?.broadcast_add(mask_bias)?;
        let probs = match mode {
            Mode::Train => ops::softmax(&scores, D::Minus1)?,
            Mode::Infer => ops::softmax_last_dim(&scores)?,
        };
        let context = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((batch, seq, hidden))?;
        let attended = self.attention_norm.forward(&(self.attention_out.forward(&context)? + x)?, mode)?;
        let inner = self.intermediate.forward(&attended)?.gelu_erf()?;
        self.output_norm.forward(&(self.output.forward(&inner)? + &attended)?, mode)
    }
}

/// Word, position and token-type embeddings, summed and normalized.
pub struct Embeddings {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    norm: LayerNorm,
}

impl Embeddings {
    pub fn load(w: &Weights, config: &Config) -> candle_core::Result<Self> {
        Ok(Self {
            word: w.get("embeddings.word_embeddings.weight")?,
            position: w.get("embeddings.position_embeddings.weight")?,
            token_type: w.get("embeddings.token_type_embeddings.weight")?,
            norm: LayerNorm::load(w, "embeddings.LayerNorm", config.layer_norm_eps, &mut frozen)?,
        })
    }

    pub fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, seq) = ids.dims2()?;
        let hidden = self.word.dim(1)?;
        let x = self
            .word
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((batch, seq, hidden))?
            .broadcast_add(&self.position.narrow(0, 0, seq)?)?
            .broadcast_add(&self.token_type.narrow(0, 0, 1)?)?;
        self.norm.forward(&x, Mode::Infer)
    }
}

/// A batch of id sequences padded to the longest: the ids, a 0/1 mask and the attention bias.
pub struct Batch {
    pub ids: Tensor,
    pub mask: Tensor,
    pub mask_bias: Tensor,
}

impl Batch {
    pub fn new(sequences: &[&[u32]], device: &Device) -> candle_core::Result<Self> {
        let rows = sequences.len();
        let seq = sequences.iter().map(|s| s.len()).max().unwrap_or(1).max(1);
        let mut ids = vec![0u32; rows * seq];
        let mut mask = vec![0f32; rows * seq];
        for (r, s) in sequences.iter().enumerate() {
            ids[r * seq..r * seq + s.len()].copy_from_slice(s);
            mask[r * seq..r * seq + s.len()].fill(1.0);
        }
        let mask = Tensor::from_vec(mask, (rows, seq), device)?;
        let mask_bias = ((&mask - 1.0)? * 10_000.0)?.reshape((rows, 1, 1, seq))?;
        Ok(Self { ids: Tensor::from_vec(ids, (rows, seq), device)?, mask, mask_bias })
    }
}

/// The mean of the hidden states over the real pieces (the sentence embedding the model was
/// trained to produce), then a linear layer to two logits: benign, injection.
pub fn classify(hidden: &Tensor, mask: &Tensor, head: &Linear) -> candle_core::Result<Tensor> {
    let counts = mask.sum_keepdim(1)?;
    let pooled = hidden.broadcast_mul(&mask.unsqueeze(2)?)?.sum(1)?.broadcast_div(&counts)?;
    head.forward(&pooled)
}

/// The probability of the injection class, one per row of `logits`.
pub fn injection_probability(logits: &Tensor) -> candle_core::Result<Vec<f32>> {
    ops::softmax_last_dim(&logits.to_dtype(DType::F32)?)?.narrow(1, 1, 1)?.flatten_all()?.to_vec1::<f32>()
}
