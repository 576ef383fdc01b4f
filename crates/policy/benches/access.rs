//! Policy decision cost (BENCHMARKS.md, "Authorization"): one tool call decided by the Cedar
//! authorizer against the example rules plus twenty more, and one list check.
//!
//! `cargo bench -p portcullis-policy`

use portcullis_core::{AuthMethod, Principal};
use portcullis_policy::{Access, AccessRuleConfig};
use serde_json::json;
use std::hint::black_box;

fn main() {
    divan::main();
}

fn access() -> Access {
    let mut rules = vec![
        json!({ "allow": { "team": "eng", "tools": ["fs__read_*", "fs__list_*"] } }),
        json!({ "deny": { "tools": ["*delete*"] } }),
        json!({ "allow": { "team": "eng", "tools": ["fs__write_file"], "when": { "arg": "path", "starts_with": "/workspace/" } } }),
    ];
    for i in 0..20 {
        rules.push(json!({ "allow": { "team": format!("team{i}"), "tools": [format!("svc{i}__*")],
                                      "when": { "arg": "repo", "one_of": ["acme/api", "acme/web"] } } }));
    }
    let rules: Vec<AccessRuleConfig> = serde_json::from_value(json!(rules)).unwrap();
    Access::compile(&rules, None).unwrap()
}

fn alice() -> Principal {
    Principal {
        method: AuthMethod::ApiKey,
        user: Some("alice".into()),
        team: Some("eng".into()),
        app: None,
        roles: vec!["dev".into()],
        key_id: Some("0123456789abcdef".into()),
        presented: None,
    }
}

#[divan::bench]
fn call_with_a_path_argument(bencher: divan::Bencher) {
    let (access, alice) = (access(), alice());
    let args = json!({ "path": "/workspace/src/../notes/a.txt", "content": "hello" });
    bencher.bench(|| access.may_call(black_box(&alice), "fs", "fs__write_file", Some(black_box(&args))));
}

#[divan::bench]
fn list_check(bencher: divan::Bencher) {
    let (access, alice) = (access(), alice());
    bencher.bench(|| access.may_list(black_box(&alice), "fs", "fs__read_text_file"));
}
