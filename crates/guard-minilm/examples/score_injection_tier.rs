//! Scores labelled JSON Lines (`{"text", "label"}` or `{"text", "labels"}`) with the tier and
//! prints recall at 1, 2 and 5 % false positives: a check of a fine-tuned file outside the
//! gateway. `cargo run --release -p portcullis-guard-minilm --example score_injection_tier --
//! MODEL_DIR [WEIGHTS] < corpus.jsonl`

use anyhow::{Context, Result};
use portcullis_guard_minilm::{recall_at, InjectionTier};
use std::io::BufRead;
use std::path::PathBuf;

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let model = args.next().context("usage: score_injection_tier MODEL_DIR [WEIGHTS] < corpus.jsonl")?;
    let weights = args.next();
    let tier = InjectionTier::load(&model, weights.as_deref())?;
    let (mut positives, mut negatives) = (Vec::new(), Vec::new());
    for line in std::io::stdin().lock().lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let text = v["text"].as_str().context("a line without `text`")?;
        let label = v["label"].as_i64() == Some(1)
            || v["labels"].as_array().is_some_and(|l| l.iter().any(|x| x == "injection"));
        let p = tier.score(text)?;
        if label {
            positives.push(p)
        } else {
            negatives.push(p)
        }
    }
    for fpr in [0.01, 0.02, 0.05] {
        let (recall, threshold) = recall_at(&positives, &negatives, fpr);
        println!(
            "recall {recall:.3} at {:.0} % false positives (threshold {threshold:.4}; {} positives, {} negatives)",
            fpr * 100.0,
            positives.len(),
            negatives.len()
        );
    }
    Ok(())
}
