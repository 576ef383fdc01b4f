//! Prints the detector catalogue as Markdown (the tables in GUARDRAILS.md):
//! `cargo run -q -p portcullis-guard --example detectors`.

use portcullis_guard::secrets::SecretScanner;
use portcullis_guard::{builtin_detectors, Category};

fn main() {
    println!("| category | detectors |\n|---|---|");
    for category in Category::ALL {
        if category == Category::Secret {
            continue;
        }
        let mut ids: Vec<String> =
            builtin_detectors().into_iter().filter(|(_, c)| *c == category).map(|(id, _)| format!("`{id}`")).collect();
        if category == Category::Topic {
            // Named by the config: one per topic list and per webhook guard.
            ids.extend(["`topic.<name>` (a profile's topics)".into(), "`webhook.<name>` (a webhook guard)".into()]);
        }
        if category == Category::Pii {
            ids.push("your recognizers' ids (`custom.*` or `pii.*`)".into());
        }
        println!("| {category} | {} |", ids.join(", "));
    }
    println!("\n| secret detector | format documented at |\n|---|---|");
    for (id, source) in SecretScanner::formats() {
        println!("| `{id}` | <{source}> |");
    }
}
