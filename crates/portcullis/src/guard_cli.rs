//! `portcullis guard` (scan JSON Lines from stdin) and `portcullis eval` (precision,
//! recall and false-positive rate on labelled corpora).

use anyhow::{bail, Context, Result};
use portcullis_gateway::config::Config;
use portcullis_guard::{Action, Category, Direction, Finding, Guard, GuardConfig, Mode, Profile};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The guard of a config file (or the built-in defaults) and the chosen profile.
pub fn load(config: Option<&Path>) -> Result<Guard> {
    let settings = match config {
        Some(path) => Config::load(path)?.guards,
        None => GuardConfig::default(),
    };
    // Validation compiled these settings already; this error is only for the no-file case.
    portcullis_gateway::deep_tier::compile_guard(&settings)
        .map_err(|e| anyhow::anyhow!("invalid guard settings: guards.{e}"))
}

pub fn profile<'g>(guard: &'g Guard, name: &str) -> Result<&'g Profile> {
    guard.profile(name).with_context(|| {
        let known: Vec<_> = guard.profile_names().collect();
        format!("no guard profile named `{name}`; known profiles: {}", known.join(", "))
    })
}

/// Reads `{"text": ...}` or `{"tool": {...}}` lines from stdin and writes one verdict line
/// per input line, in order. A line that cannot be read gets `{"error": ...}` in its place
/// and the exit status is 1.
pub fn guard(config: Option<PathBuf>, profile_name: &str, direction: Direction) -> Result<ExitCode> {
    let guard = load(config.as_deref())?;
    let profile = profile(&guard, profile_name)?;
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = false;
    for (i, line) in stdin.lines().enumerate() {
        let line = line.context("cannot read stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let out = match scan_line(&guard, profile, direction, &line) {
            Ok(v) => v,
            Err(message) => {
                failed = true;
                json!({ "error": format!("line {}: {message}", i + 1) })
            }
        };
        serde_json::to_writer(&mut stdout, &out)?;
        stdout.write_all(b"\n")?;
    }
    stdout.flush()?;
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn scan_line(guard: &Guard, profile: &Profile, direction: Direction, line: &str) -> Result<Value, String> {
    let input: Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON ({e}); expected {{\"text\": \"...\"}}"))?;
    if let Some(text) = input.get("text") {
        let text = text.as_str().ok_or("\"text\" must be a string")?;
        let inspection = guard.inspect(profile, direction, text);
        let findings = inspection.decisions.iter().map(|d| finding_json(&d.finding, d.action)).collect();
        let shown = inspection.redacted.as_deref().unwrap_or(text);
        return Ok(verdict_json(profile, inspection.enforced, inspection.action, findings, shown));
    }
    if let Some(tool) = input.get("tool") {
        if !tool.is_object() {
            return Err("\"tool\" must be an object with name, description and inputSchema".into());
        }
        let inspection = guard.inspect_tool(profile, tool, &[]);
        let findings = inspection
            .decisions
            .iter()
            .map(|(f, action)| {
                let mut out = finding_json(&f.finding, *action);
                out["field"] = json!(f.field);
                out
            })
            .collect();
        let description = tool.get("description").and_then(Value::as_str).unwrap_or_default();
        return Ok(verdict_json(profile, inspection.enforced, inspection.action, findings, description));
    }
    Err("expected an object with \"text\" (content to scan) or \"tool\" (a tool definition)".into())
}

/// One output line: what was done, the findings, the text after redaction; in monitor mode
/// also what would have been done.
fn verdict_json(profile: &Profile, enforced: Action, would: Action, findings: Vec<Value>, text: &str) -> Value {
    let mut out = json!({ "verdict": enforced, "findings": findings, "text": text });
    if profile.mode == Mode::Monitor {
        out["monitor"] = json!({ "would": would });
    }
    out
}

fn finding_json(f: &Finding, action: Action) -> Value {
    json!({
        "detector": f.detector.as_str(), "category": f.category,
        "start": f.start, "end": f.end, "score": round(f.score), "action": action,
    })
}

fn round(x: f32) -> f64 {
    (x as f64 * 1e4).round() / 1e4
}

#[derive(Default, Clone, Copy)]
struct Counts {
    tp: u64,
    fp: u64,
    fn_: u64,
    tn: u64,
}

impl Counts {
    fn add(&mut self, expected: bool, found: bool) {
        match (expected, found) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }
    fn ratio(a: u64, b: u64) -> Option<f64> {
        (b > 0).then(|| a as f64 / b as f64)
    }
    fn json(&self) -> Value {
        json!({
            "positives": self.tp + self.fn_, "negatives": self.fp + self.tn,
            "tp": self.tp, "fp": self.fp, "fn": self.fn_, "tn": self.tn,
            "precision": Self::ratio(self.tp, self.tp + self.fp),
            "recall": Self::ratio(self.tp, self.tp + self.fn_),
            "fpr": Self::ratio(self.fp, self.fp + self.tn),
        })
    }
}

/// One labelled line: its text and the detector ids or categories expected to fire.
struct Labelled {
    text: String,
    labels: Vec<String>,
}

/// The metrics of one corpus file.
struct FileReport {
    file: PathBuf,
    lines: usize,
    bytes: usize,
    elapsed: std::time::Duration,
    by_category: BTreeMap<Category, Counts>,
    by_detector: BTreeMap<String, Counts>,
}

/// Runs every corpus and prints metrics per file, per category and per detector.
pub fn eval(
    config: Option<PathBuf>,
    profile_name: &str,
    direction: Direction,
    files: &[PathBuf],
    only: &[Category],
    as_json: bool,
) -> Result<ExitCode> {
    if files.is_empty() {
        bail!("no corpus given: pass JSON Lines files of {{\"text\": ..., \"labels\": [...]}} (scripts/guard-data.sh writes them)");
    }
    let guard = load(config.as_deref())?;
    let profile = profile(&guard, profile_name)?;
    let mut reports = Vec::new();
    for file in files {
        let rows = read_corpus(file, only)?;
        reports.push(evaluate(&guard, profile, direction, file, &rows, only));
    }
    if as_json {
        let files: Vec<Value> = reports
            .iter()
            .map(|r| {
                json!({
                    "file": r.file.display().to_string(), "lines": r.lines, "bytes": r.bytes,
                    "seconds": r.elapsed.as_secs_f64(),
                    "categories": r.by_category.iter().map(|(c, v)| (c.as_str().to_owned(), v.json())).collect::<serde_json::Map<_, _>>(),
                    "detectors": r.by_detector.iter().map(|(d, v)| (d.clone(), v.json())).collect::<serde_json::Map<_, _>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json!({ "profile": profile_name, "files": files }))?);
    } else {
        reports.iter().for_each(print_report);
    }
    Ok(ExitCode::SUCCESS)
}

fn evaluate(
    guard: &Guard,
    profile: &Profile,
    direction: Direction,
    file: &Path,
    rows: &[Labelled],
    only: &[Category],
) -> FileReport {
    let started = std::time::Instant::now();
    let scanned: Vec<Vec<Finding>> = rows
        .iter()
        .map(|row| {
            let mut findings = guard.scan(profile, direction, &row.text);
            findings.retain(|f| only.is_empty() || only.contains(&f.category));
            findings
        })
        .collect();
    let elapsed = started.elapsed();
    // Every line counts for every category and detector that the corpus labels or that fired
    // anywhere in it: a finding on an unlabelled line is a false positive, a labelled line
    // without one a false negative.
    let mut categories: Vec<Category> =
        rows.iter().flat_map(|r| r.labels.iter()).filter_map(|l| label_category(l)).collect();
    categories.extend(scanned.iter().flatten().map(|f| f.category));
    categories.sort();
    categories.dedup();
    let mut detectors: Vec<String> =
        rows.iter().flat_map(|r| r.labels.iter()).filter(|l| l.contains('.')).cloned().collect();
    detectors.extend(scanned.iter().flatten().map(|f| f.detector.as_str().to_owned()));
    detectors.sort();
    detectors.dedup();
    let mut by_category: BTreeMap<Category, Counts> = BTreeMap::new();
    let mut by_detector: BTreeMap<String, Counts> = BTreeMap::new();
    for (row, findings) in rows.iter().zip(&scanned) {
        for &c in &categories {
            let expected = row.labels.iter().any(|l| label_category(l) == Some(c));
            by_category.entry(c).or_default().add(expected, findings.iter().any(|f| f.category == c));
        }
        for d in &detectors {
            // A line labelled with a bare category (`injection`) is a positive for every
            // detector of that category: their recall says how much each one catches.
            let category = Category::of_detector(d);
            let expected =
                row.labels.iter().any(|l| l == d || (Category::parse(l).is_some() && Category::parse(l) == category));
            let found = findings.iter().any(|f| f.detector.as_str() == d);
            by_detector.entry(d.clone()).or_default().add(expected, found);
        }
    }
    FileReport {
        file: file.to_owned(),
        lines: rows.len(),
        bytes: rows.iter().map(|r| r.text.len()).sum(),
        elapsed,
        by_category,
        by_detector,
    }
}

fn print_report(r: &FileReport) {
    let pct = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{:.2}%", v * 100.0));
    println!(
        "\n{} — {} lines, {:.1} KiB, {:.1} MB/s",
        r.file.display(),
        r.lines,
        r.bytes as f64 / 1024.0,
        r.bytes as f64 / r.elapsed.as_secs_f64().max(1e-9) / 1e6
    );
    println!(
        "{:<36} {:>6} {:>6} {:>6} {:>6} {:>10} {:>8} {:>8}",
        "", "pos", "neg", "tp", "fp", "precision", "recall", "fpr"
    );
    let rows = r
        .by_category
        .iter()
        .map(|(c, v)| (c.as_str().to_owned(), v))
        .chain(r.by_detector.iter().map(|(d, v)| (format!("  {d}"), v)));
    for (name, c) in rows {
        println!(
            "{:<36} {:>6} {:>6} {:>6} {:>6} {:>10} {:>8} {:>8}",
            name,
            c.tp + c.fn_,
            c.fp + c.tn,
            c.tp,
            c.fp,
            pct(Counts::ratio(c.tp, c.tp + c.fp)),
            pct(Counts::ratio(c.tp, c.tp + c.fn_)),
            pct(Counts::ratio(c.fp, c.fp + c.tn)),
        );
    }
}

fn label_category(label: &str) -> Option<Category> {
    Category::parse(label).or_else(|| Category::of_detector(label))
}

fn read_corpus(path: &Path, only: &[Category]) -> Result<Vec<Labelled>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let v: Value = serde_json::from_str(&line).with_context(|| format!("{}: not JSON", at()))?;
        let text = v["text"].as_str().with_context(|| format!("{}: no string \"text\"", at()))?.to_owned();
        let labels = match &v["labels"] {
            Value::Array(items) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Value::Null => match v["label"].as_i64() {
                // The injection datasets' own format: label 1 = injection.
                Some(1) => vec!["injection".to_owned()],
                Some(_) => Vec::new(),
                None => bail!("{}: needs \"labels\": [detector ids or categories] (or \"label\": 0|1)", at()),
            },
            _ => bail!("{}: \"labels\" must be a list of detector ids or categories", at()),
        };
        for l in &labels {
            if label_category(l).is_none() {
                bail!("{}: unknown label `{l}`; use a category (pii, secret, injection, ...) or a detector id", at());
            }
        }
        let labels = labels
            .into_iter()
            .filter(|l| only.is_empty() || label_category(l).is_some_and(|c| only.contains(&c)))
            .collect();
        rows.push(Labelled { text, labels });
    }
    Ok(rows)
}
