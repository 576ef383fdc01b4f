//! Fine-tunes the layers (from `--train-from` up) of all-MiniLM-L6-v2 and a classification head
//! on labelled JSON Lines (`{"text": …, "label": 0|1}`), and writes what changed to a safetensors
//! file that `InjectionTier::load` overlays on the base model. `scripts/train-injection-tier.sh`
//! runs it on the public train splits; see GUARDRAILS.md.
//!
//! A text longer than one window of `MAX_PIECES` is read the way the gateway reads it, in
//! overlapping windows: the first and the last window of a benign text are benign examples (a
//! long document must not score high anywhere; all of them would triple the training time), an
//! injection contributes its first window (its other windows need not hold the attack).
//! Validation scores a text by its highest window, as the gateway does.
//!
//! The layers below `--train-from` stay frozen, so their output is computed once per window and
//! kept; each epoch then runs only the trained layers forward and backward.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{loss, AdamW, Optimizer, ParamsAdamW};
use clap::Parser;
use portcullis_guard_minilm::model::{self, Batch, Config, Embeddings, Layer, Linear, Mode, Weights};
use portcullis_guard_minilm::wordpiece::WordPiece;
use portcullis_guard_minilm::{load_safetensors, recall_at, HEAD, MAX_PIECES, WINDOW_OVERLAP};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// The base model folder (`config.json`, `vocab.txt`, `model.safetensors`).
    #[arg(long)]
    model: PathBuf,
    /// Training data, JSON Lines with `text` and `label`.
    #[arg(long, required = true, num_args = 1..)]
    train: Vec<PathBuf>,
    /// Benign documents (among `--train`) whose first `--lines-per-document` lines of three
    /// words or more are also benign examples: tool results are full of short lines (titles,
    /// log lines, code), which whole documents do not teach.
    #[arg(long, num_args = 1..)]
    lines_from: Vec<PathBuf>,
    #[arg(long, default_value_t = 4)]
    lines_per_document: usize,
    /// Validation data: scored after every epoch (recall at 1, 2 and 5 % false positives).
    #[arg(long, num_args = 1..)]
    validation: Vec<PathBuf>,
    /// Where to write the fine-tuned layers and head.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Continue from a file this trainer wrote (its trained layers and head) instead of the base
    /// model and a zero head; with `--start-epoch`, a run that stopped after an epoch goes on
    /// where it left off (the optimizer's moments start afresh).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// The number of the first epoch this run trains (1-based): it sets where the learning rate
    /// is on its fall, the epoch's batch order and the checkpoint names.
    #[arg(long, default_value_t = 1)]
    start_epoch: usize,
    /// The learning rates fall linearly to a tenth over this many epochs (default: `--epochs`);
    /// a run of fewer epochs is then the start of a longer one.
    #[arg(long)]
    decay_over: Option<usize>,
    /// The first layer that is trained; the ones below stay as the base model has them.
    #[arg(long, default_value_t = 2)]
    train_from: usize,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Learning rate of the trained layers; it falls linearly to a tenth (see `--decay-over`).
    #[arg(long, default_value_t = 5e-5)]
    lr: f64,
    /// Learning rate of the head (which starts at zero).
    #[arg(long, default_value_t = 1e-3)]
    head_lr: f64,
}

/// One window of a text.
struct Example {
    ids: Vec<u32>,
    label: bool,
    /// Which text of the input the window comes from.
    text: usize,
}

/// A fixed group of examples of similar length, with the frozen layers' output for it.
struct CachedBatch {
    hidden: Tensor,
    batch: Batch,
    labels: Tensor,
    examples: Vec<usize>,
}

/// The windows of every text that training uses, or with `every_window` (validation) all of
/// them, to score a text the way the gateway does (by its highest window).
fn read_examples(paths: &[PathBuf], tokenizer: &WordPiece, every_window: bool) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    let mut texts = 0;
    for path in paths {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
            let (Some(text), Some(label)) = (v["text"].as_str(), v.get("label")) else {
                bail!("{}:{}: needs `text` and `label`", path.display(), n + 1);
            };
            let label = label.as_i64() == Some(1) || label.as_bool() == Some(true);
            let mut windows = tokenizer.windows(text, MAX_PIECES, WINDOW_OVERLAP);
            if !every_window {
                let keep = if label { 1 } else { 2 };
                if windows.len() > keep {
                    // The first window, and for a benign text also the last.
                    let last = windows.pop().filter(|_| keep == 2);
                    windows.truncate(1);
                    windows.extend(last);
                }
            }
            out.extend(windows.into_iter().map(|ids| Example { ids, label, text: texts }));
            texts += 1;
        }
    }
    Ok(out)
}

/// Sorts by length (ties broken by a fixed hash so the classes mix) and cuts into batches, then
/// runs the frozen part once per batch.
fn cache(
    examples: &[Example],
    size: usize,
    embeddings: &Embeddings,
    frozen: &[Layer],
    device: &Device,
) -> Result<Vec<CachedBatch>> {
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| (examples[i].ids.len(), (i as u64 * 2_654_435_761) % 1_000_003));
    order
        .chunks(size)
        .map(|chunk| {
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| examples[i].ids.as_slice()).collect();
            let batch = Batch::new(&rows, device)?;
            let mut hidden = embeddings.forward(&batch.ids)?;
            for layer in frozen {
                hidden = layer.forward(&hidden, &batch.mask_bias, Mode::Infer)?;
            }
            let labels: Vec<u32> = chunk.iter().map(|&i| examples[i].label as u32).collect();
            Ok(CachedBatch {
                hidden,
                labels: Tensor::from_vec(labels, chunk.len(), device)?,
                batch,
                examples: chunk.to_vec(),
            })
        })
        .collect()
}

fn logits(cached: &CachedBatch, trained: &[Layer], head: &Linear, mode: Mode) -> Result<Tensor> {
    let mut x = cached.hidden.clone();
    for layer in trained {
        x = layer.forward(&x, &cached.batch.mask_bias, mode)?;
    }
    Ok(model::classify(&x, &cached.batch.mask, head)?)
}

/// Prints recall at 1, 2 and 5 % false positives with the threshold that gives each; a text
/// scores its highest window.
fn evaluate(batches: &[CachedBatch], examples: &[Example], trained: &[Layer], head: &Linear) -> Result<()> {
    let mut best: std::collections::BTreeMap<usize, (f32, bool)> = Default::default();
    for b in batches {
        let p = model::injection_probability(&logits(b, trained, head, Mode::Infer)?)?;
        for (&i, p) in b.examples.iter().zip(p) {
            let entry = best.entry(examples[i].text).or_insert((0.0, examples[i].label));
            entry.0 = entry.0.max(p);
        }
    }
    let score_of = |label: bool| -> Vec<f32> { best.values().filter(|(_, l)| *l == label).map(|(p, _)| *p).collect() };
    let (positives, negatives) = (score_of(true), score_of(false));
    for fpr in [0.01, 0.02, 0.05] {
        let (recall, threshold) = recall_at(&positives, &negatives, fpr);
        println!(
            "  validation: recall {recall:.3} at {:.0} % false positives (threshold {threshold:.4}; {} positives, {} negatives)",
            fpr * 100.0,
            positives.len(),
            negatives.len()
        );
    }
    Ok(())
}

/// A fixed permutation per epoch (Fisher-Yates with a linear congruential generator), so a
/// rerun trains on the same sequence.
fn shuffle(batches: &mut [CachedBatch], epoch: usize) {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ epoch as u64;
    for i in (1..batches.len()).rev() {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        batches.swap(i, (state >> 33) as usize % (i + 1));
    }
}

fn save(trained: &[Layer], first: usize, head: &Linear, path: &PathBuf) -> Result<()> {
    let mut named = head.named(HEAD)?;
    for (k, layer) in trained.iter().enumerate() {
        named.extend(layer.named(first + k)?);
    }
    let half: std::collections::HashMap<String, Tensor> =
        named.into_iter().map(|(n, t)| Ok((n, t.to_dtype(DType::F16)?))).collect::<Result<_>>()?;
    candle_core::safetensors::save(&half, path).with_context(|| format!("cannot write {}", path.display()))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let device = Device::Cpu;
    let started = Instant::now();
    let config: Config = serde_json::from_str(&std::fs::read_to_string(args.model.join("config.json"))?)?;
    let tokenizer = WordPiece::from_vocab(&std::fs::read_to_string(args.model.join("vocab.txt"))?)?;
    let mut weights = load_safetensors(&args.model.join("model.safetensors"), &device)?;
    if args.train_from >= config.num_hidden_layers {
        bail!("--train-from must be below the {} layers", config.num_hidden_layers);
    }
    if args.start_epoch == 0 {
        bail!("--start-epoch counts from 1");
    }
    if let Some(path) = &args.resume {
        let resumed = load_safetensors(path, &device)?;
        let first = format!("encoder.layer.{}.", args.train_from);
        if !resumed.contains_key(&format!("{HEAD}.weight")) || !resumed.keys().any(|k| k.starts_with(&first)) {
            bail!("{} was not written by this trainer with --train-from {}", path.display(), args.train_from);
        }
        weights.extend(resumed);
    }
    let weights = Weights(weights);

    let mut train = read_examples(&args.train, &tokenizer, false)?;
    let mut texts = train.last().map_or(0, |e| e.text + 1);
    for path in &args.lines_from {
        let content = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        for line in content.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("{}: not JSON", path.display()))?;
            let document = v["text"].as_str().unwrap_or_default();
            let lines = document.lines().map(str::trim).filter(|l| l.split_whitespace().nth(2).is_some());
            for line in lines.take(args.lines_per_document) {
                train.push(Example { ids: tokenizer.encode(line, MAX_PIECES), label: false, text: texts });
                texts += 1;
            }
        }
    }
    let validation = read_examples(&args.validation, &tokenizer, true)?;
    println!(
        "{} training windows of {} texts and lines ({} injections, {} pieces), {} validation windows",
        train.len(),
        texts,
        train.iter().filter(|e| e.label).count(),
        train.iter().map(|e| e.ids.len()).sum::<usize>(),
        validation.len()
    );

    let embeddings = Embeddings::load(&weights, &config)?;
    let frozen: Vec<Layer> = (0..args.train_from)
        .map(|i| Layer::load(&weights, i, &config, &mut model::frozen))
        .collect::<candle_core::Result<_>>()?;
    let mut vars = Vec::new();
    let mut trainable = |t: Tensor| {
        let v = Var::from_tensor(&t)?;
        vars.push(v.clone());
        Ok(v.as_tensor().clone())
    };
    let trained: Vec<Layer> = (args.train_from..config.num_hidden_layers)
        .map(|i| Layer::load(&weights, i, &config, &mut trainable))
        .collect::<candle_core::Result<_>>()?;
    let (head_weight, head_bias) = match &args.resume {
        Some(_) => {
            let resumed = Linear::load(&weights, HEAD, &mut model::frozen)?;
            (Var::from_tensor(&resumed.weight_t)?, Var::from_tensor(&resumed.bias)?)
        }
        None => (Var::zeros((config.hidden_size, 2), DType::F32, &device)?, Var::zeros(2, DType::F32, &device)?),
    };
    let head = Linear { weight_t: head_weight.as_tensor().clone(), bias: head_bias.as_tensor().clone() };

    let mut batches = cache(&train, args.batch, &embeddings, &frozen, &device)?;
    let validation_batches = cache(&validation, 64, &embeddings, &frozen, &device)?;
    println!("frozen layers cached [{:.0} s]", started.elapsed().as_secs_f64());

    let params = |lr| ParamsAdamW { lr, weight_decay: 0.01, ..Default::default() };
    let mut layer_opt = AdamW::new(vars, params(args.lr))?;
    let mut head_opt = AdamW::new(vec![head_weight, head_bias], params(args.head_lr))?;
    let last_epoch = args.start_epoch - 1 + args.epochs;
    let total_steps = (args.decay_over.unwrap_or(last_epoch).max(last_epoch) * batches.len()) as f64;
    let mut step = (args.start_epoch - 1) * batches.len();
    // Each epoch permutes the previous epoch's order; a resumed run replays the skipped ones.
    for epoch in 0..args.start_epoch - 1 {
        shuffle(&mut batches, epoch);
    }
    for epoch in args.start_epoch - 1..last_epoch {
        shuffle(&mut batches, epoch);
        let epoch_start = Instant::now();
        let mut loss_sum = 0.0;
        for (n, b) in batches.iter().enumerate() {
            let decay = 1.0 - 0.9 * step as f64 / total_steps;
            layer_opt.set_learning_rate(args.lr * decay);
            head_opt.set_learning_rate(args.head_lr * decay);
            let l = loss::cross_entropy(&logits(b, &trained, &head, Mode::Train)?, &b.labels)?;
            let grads = l.backward()?;
            layer_opt.step(&grads)?;
            head_opt.step(&grads)?;
            loss_sum += l.to_scalar::<f32>()?;
            step += 1;
            if (n + 1) % 50 == 0 {
                println!(
                    "epoch {} batch {}/{} loss {:.4} [{:.0} s]",
                    epoch + 1,
                    n + 1,
                    batches.len(),
                    loss_sum / 50.0,
                    epoch_start.elapsed().as_secs_f64()
                );
                loss_sum = 0.0;
            }
        }
        println!("epoch {} done [{:.0} s]", epoch + 1, epoch_start.elapsed().as_secs_f64());
        if !validation_batches.is_empty() {
            evaluate(&validation_batches, &validation, &trained, &head)?;
        }
        let mut checkpoint = args.out.clone().into_os_string();
        checkpoint.push(format!(".epoch{}", epoch + 1));
        save(&trained, args.train_from, &head, &PathBuf::from(checkpoint))?;
    }
    save(&trained, args.train_from, &head, &args.out)?;
    println!("wrote {} [{:.0} s]", args.out.display(), started.elapsed().as_secs_f64());
    Ok(())
}
