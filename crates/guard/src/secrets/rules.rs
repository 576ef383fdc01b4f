//! The credential formats, each written from its vendor's documentation (`source`).
//!
//! Ids are `secret.<vendor>_<kind>`. Keywords must occur in every match (the prefilter
//! relies on it; `tests::keywords_occur_in_examples` checks it on each example).

use super::SecretRule;

pub(crate) static RULES: &[SecretRule] = &[
    SecretRule {
        id: "secret.aws_access_key_id",
        keywords: &["AKIA", "ASIA", "ABIA", "ACCA"],
        pattern: r"\b(?P<secret>(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
        min_entropy: 0.0,
        source: "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids",
    },
    SecretRule {
        id: "secret.github_pat",
        keywords: &["ghp_"],
        pattern: r"\b(?P<secret>ghp_[A-Za-z0-9]{36})\b",
        min_entropy: 3.0,
        source: "https://github.blog/engineering/platform-security/behind-githubs-new-authentication-token-formats/",
    },
];

#[cfg(test)]
mod tests {
    /// One real-shaped (fake) value per rule: `(rule id, text containing it, the secret)`.
    pub(super) static EXAMPLES: &[(&str, &str, &str)] = &[
        ("secret.aws_access_key_id", "aws_access_key_id = AKIAQWERTYUIOPASDF23", "AKIAQWERTYUIOPASDF23"),
        ("secret.github_pat", "token: ghp_R4nd0mT0k3nV4lu3F0rT35t1ngPurp0s3s12", "ghp_R4nd0mT0k3nV4lu3F0rT35t1ngPurp0s3s12"),
    ];

    use super::RULES;
    use crate::secrets::SecretScanner;

    #[test]
    fn every_rule_has_an_example_that_it_finds() {
        let scanner = SecretScanner::new();
        for rule in RULES {
            let examples: Vec<_> = EXAMPLES.iter().filter(|e| e.0 == rule.id).collect();
            assert!(!examples.is_empty(), "{} has no example", rule.id);
            for (id, text, secret) in examples {
                let mut out = Vec::new();
                scanner.scan(text, &mut out);
                assert!(
                    out.iter().any(|f| f.detector.as_str() == *id && &text[f.start..f.end] == *secret),
                    "{id} did not find {secret:?} in {text:?}; found {out:?}"
                );
            }
        }
    }

    /// The prefilter only runs a rule when one of its keywords occurs: each keyword list must
    /// cover every match, or the rule silently never fires.
    #[test]
    fn keywords_occur_in_every_match() {
        for (id, text, _) in EXAMPLES {
            let rule = RULES.iter().find(|r| r.id == *id).expect("example of a known rule");
            let re = regex::Regex::new(rule.pattern).expect("pattern compiles");
            for m in re.find_iter(text) {
                let lower = m.as_str().to_ascii_lowercase();
                assert!(
                    rule.keywords.iter().any(|k| lower.contains(&k.to_ascii_lowercase())),
                    "{id}: no keyword in match {:?}",
                    m.as_str()
                );
            }
        }
    }

    #[test]
    fn ids_are_unique_and_sources_cited() {
        let mut ids: Vec<_> = RULES.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len(), "duplicate rule ids");
        for r in RULES {
            assert!(r.id.starts_with("secret."), "{}", r.id);
            assert!(r.source.starts_with("https://"), "{} cites no source", r.id);
            assert!(!r.keywords.is_empty(), "{} has no keyword", r.id);
        }
    }
}
