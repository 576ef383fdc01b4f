//! The scan as SARIF 2.1.0, for code-scanning tools (GitHub code scanning and others).

use super::findings::{Level, RULES};
use super::Report;
use serde_json::{json, Value};

fn level(l: Level) -> &'static str {
    match l {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Note => "note",
    }
}

pub fn report(report: &Report) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|(id, l, text)| {
            json!({ "id": id, "shortDescription": { "text": text }, "defaultConfiguration": { "level": level(*l) } })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let s = &report.servers[f.server];
            let uri =
                url::Url::from_file_path(&s.file).map_or_else(|_| s.file.display().to_string(), |u| u.to_string());
            json!({
                "ruleId": f.rule,
                "level": level(f.level),
                "message": { "text": format!("{} server `{}`: {}", s.client, s.name, f.message) },
                "locations": [{ "physicalLocation": { "artifactLocation": { "uri": uri } } }],
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "portcullis scan",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            } },
            "results": results,
        }],
    })
}
