//! Email addresses: every `@` (memchr) is expanded locally to a local part and a domain.

use crate::finding::{Category, Finding};

/// Score of a syntactically valid address on a non-reserved domain.
pub const EMAIL_SCORE: f32 = 0.9;

const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 253;

/// Local-part characters in practice (a subset of RFC 5322 atext: quotes, `=`, `/` and
/// the like make `key='bob@corp.com'` ambiguous), plus non-ASCII (SMTPUTF8).
fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-') || c >= 0x80
}

fn is_domain(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c >= 0x80
}

/// Asset and source-file extensions that are not top-level domains (`icon@2x.png`).
const FILE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "tif", "tiff", "avif", "heic", "pdf", "js", "mjs", "cjs",
    "ts", "tsx", "jsx", "css", "scss", "json", "yaml", "yml", "toml", "lock", "txt", "html", "htm", "xml", "rs", "py",
    "rb", "java", "kt", "swift", "vue", "wasm", "map", "gz", "tgz", "mp3", "mp4", "wav", "woff", "woff2", "ttf", "otf",
    "eot",
];

pub(crate) fn scan_emails(text: &str, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let mut last_end = 0;
    for at in memchr::memchr_iter(b'@', b) {
        if at < last_end {
            continue;
        }
        if let Some((s, e)) = email_at(b, at) {
            out.push(Finding::new("pii.email", Category::Pii, s, e, EMAIL_SCORE));
            last_end = e;
        }
    }
}

/// The address around the `@` at `at`, if any.
fn email_at(b: &[u8], at: usize) -> Option<(usize, usize)> {
    // Local part.
    let mut s = at;
    while s > 0 && is_local(b[s - 1]) {
        s -= 1;
        if at - s > MAX_LOCAL {
            return None;
        }
    }
    while s < at && b[s] == b'.' {
        s += 1;
    }
    let local = &b[s..at];
    if local.is_empty() || local.ends_with(b".") || local.windows(2).any(|w| w == b"..") {
        return None;
    }
    // URL userinfo (`https://user@host`, `ssh://git@host`, `https://user:pass@host`) is
    // not an address: look back over the user name for `://`.
    if s >= 2 && &b[s - 2..s] == b"//" {
        return None;
    }
    if s >= 1 && b[s - 1] == b':' {
        let lookback = &b[s.saturating_sub(256)..s - 1];
        let user_start = lookback.iter().rposition(|c| !(c.is_ascii_alphanumeric() || b"._%+-~".contains(c)));
        if user_start.is_some_and(|i| i >= 2 && &lookback[i - 2..=i] == b"://") {
            return None;
        }
    }
    // Domain.
    let mut e = at + 1;
    while e < b.len() && is_domain(b[e]) {
        e += 1;
        if e - at > MAX_DOMAIN + 1 {
            return None;
        }
    }
    while e > at + 1 && matches!(b[e - 1], b'.' | b'-') {
        e -= 1; // sentence punctuation
    }
    let domain = &b[at + 1..e];
    if let Some(&c) = b.get(e) {
        // `a@b.com@c`, `git@github.com:org/repo.git`.
        if c == b'@' || c == b'_' || (c == b':' && b.get(e + 1).is_some_and(|n| !n.is_ascii_whitespace())) {
            return None;
        }
    }
    let mut labels = 0;
    let mut tld: &[u8] = b"";
    let mut first: &[u8] = b"";
    for label in domain.split(|&c| c == b'.') {
        if label.is_empty() || label.len() > 63 || label[0] == b'-' || label[label.len() - 1] == b'-' {
            return None;
        }
        if labels == 0 {
            first = label;
        }
        labels += 1;
        tld = label;
    }
    if labels < 2 || tld.len() < 2 || !tld.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    // `icon@2x.png`, `bg@1.5x.jpg`: asset density suffixes.
    if first.len() >= 2 && first[first.len() - 1] == b'x' && first[0].is_ascii_digit() {
        return None;
    }
    if FILE_EXTENSIONS.iter().any(|x| tld.eq_ignore_ascii_case(x.as_bytes())) || reserved(domain) {
        return None;
    }
    Some((s, e))
}

/// RFC 2606 / RFC 6761 documentation and special-use names.
fn reserved(domain: &[u8]) -> bool {
    let d = domain;
    let ends = |suffix: &[u8]| {
        d.len() >= suffix.len() && d[d.len() - suffix.len()..].eq_ignore_ascii_case(suffix) && {
            let rest = d.len() - suffix.len();
            rest == 0 || d[rest - 1] == b'.'
        }
    };
    ends(b"example.com")
        || ends(b"example.org")
        || ends(b"example.net")
        || ends(b"example")
        || ends(b"test")
        || ends(b"invalid")
        || ends(b"localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        scan_emails(text, &mut out);
        out.iter().map(|f| &text[f.start..f.end]).collect()
    }

    #[test]
    fn positives() {
        assert_eq!(emails("mail jane.doe+tag@acme-corp.co.uk."), vec!["jane.doe+tag@acme-corp.co.uk"]);
        assert_eq!(emails("{\"email\":\"bob@corp.io\"}"), vec!["bob@corp.io"]);
        assert_eq!(
            emails("<alice@mail.acme.com>, carol_99@gmail.com"),
            vec!["alice@mail.acme.com", "carol_99@gmail.com"]
        );
        assert_eq!(emails("mailto:jörg@bücher.de"), vec!["jörg@bücher.de"]);
        assert_eq!(emails("EMAIL=ops@acme.com"), vec!["ops@acme.com"]);
        assert_eq!(emails("contact: ops@acme.com: urgent"), vec!["ops@acme.com"]);
    }

    #[test]
    fn negatives() {
        for t in [
            "user@example.com",
            "a@sub.example.org",
            "x@foo.test",
            "root@localhost",
            "y@site.invalid",
            "git@github.com:org/repo.git",
            "npm i lodash@4.17.21",
            "icon@2x.png",
            "logo@1.5x.jpg",
            "@decorator.name",
            "ssh://git@github.com/org/repo",
            "https://user@host.com/x",
            "https://admin:s3cr3t@git.corp-example.io/repo.git",
            "a..b@corp.com",
            "bob@corp",
            "bob@corp.c",
            "bob@-corp.com",
            "image@sha256:abcd",
            "x@y.com@z",
        ] {
            assert_eq!(emails(t), Vec::<&str>::new(), "{t}");
        }
        assert!(emails(&"@".repeat(100_000)).is_empty());
        assert!(emails(&"a".repeat(100_000)).is_empty());
        assert!(emails(&format!("{}@corp.com", "a".repeat(100))).is_empty());
    }
}
