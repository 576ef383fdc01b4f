//! IP addresses. Loopback, private, link-local, CGNAT, documentation, multicast and
//! reserved ranges are reported with [`NON_PUBLIC_SCORE`]; public addresses with
//! [`PUBLIC_SCORE`], so a profile can act on public addresses only by a score threshold.

use super::{ctx_before_ci, is_word};
use crate::finding::{Category, Finding};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Score of a public (globally routable) address.
pub const PUBLIC_SCORE: f32 = 0.9;
/// Score of a loopback, private, link-local, shared, documentation or reserved address.
pub const NON_PUBLIC_SCORE: f32 = 0.3;

/// The result of trying a dotted quad at a digit-group start.
pub(crate) enum V4 {
    /// A valid address ending at `end`.
    Match { end: usize, score: f32 },
    /// A dotted number that is not reportable (version, OID, 0.0.0.0); skip to `end`.
    Skip { end: usize },
    /// Not four dotted octets.
    No,
}

/// Tries `a.b.c.d` at `s` (a digit after a left boundary).
pub(crate) fn ipv4_at(b: &[u8], s: usize) -> V4 {
    let mut octets = [0u8; 4];
    let mut p = s;
    for (i, octet) in octets.iter_mut().enumerate() {
        if i > 0 {
            if b.get(p) != Some(&b'.') {
                return V4::No;
            }
            p += 1;
        }
        let st = p;
        let mut v = 0u32;
        while p < b.len() && b[p].is_ascii_digit() && p - st < 4 {
            v = v * 10 + u32::from(b[p] - b'0');
            p += 1;
        }
        let len = p - st;
        if len == 0 || len > 3 || v > 255 || (len > 1 && b[st] == b'0') {
            return V4::No;
        }
        *octet = v as u8;
    }
    let end = p;
    // More dotted parts (OIDs, 5-part versions) or a word character: not an address.
    if let Some(&c) = b.get(end) {
        if is_word(c) || c == b'@' {
            return V4::No;
        }
        let next = b.get(end + 1).copied().unwrap_or(0);
        if (c == b'.' && next.is_ascii_alphanumeric()) || (c == b'-' && next.is_ascii_alphabetic()) {
            return V4::Skip { end: skip_dotted(b, end) };
        }
    }
    if version_context(b, s) {
        return V4::Skip { end };
    }
    let ip = Ipv4Addr::from(octets);
    if ip.is_unspecified() {
        return V4::Skip { end };
    }
    V4::Match { end, score: v4_score(ip) }
}

fn skip_dotted(b: &[u8], mut p: usize) -> usize {
    while p < b.len() && (b[p].is_ascii_alphanumeric() || b[p] == b'.' || b[p] == b'-') {
        p += 1;
    }
    p
}

/// `version 1.2.3.4`, `ver: 1.2.3.4`, `build 1.2.3.4`.
fn version_context(b: &[u8], s: usize) -> bool {
    const WORDS: &[&[u8]] = &[b"version", b"ver", b"release", b"build", b"firmware", b"rev"];
    // The word right before, past spaces, quotes, `:` and `=`.
    let mut p = s;
    while p > 0 && s - p < 6 && matches!(b[p - 1], b' ' | b'"' | b'\'' | b':' | b'=' | b'\t') {
        p -= 1;
    }
    let mut w = p;
    while w > 0 && p - w < 16 && (b[w - 1].is_ascii_alphabetic() || b[w - 1] == b'_') {
        w -= 1;
    }
    let word = &b[w..p];
    WORDS.iter().any(|k| word.len() >= k.len() && word[word.len() - k.len()..].eq_ignore_ascii_case(k))
        || ctx_before_ci(b, s, 24, b"version")
}

fn v4_score(ip: Ipv4Addr) -> f32 {
    let [a, b, c, _] = ip.octets();
    let non_public = ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19));
    if non_public {
        NON_PUBLIC_SCORE
    } else {
        PUBLIC_SCORE
    }
}

fn v6_score(ip: Ipv6Addr) -> f32 {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_score(v4);
    }
    let s = ip.segments();
    let non_public = ip.is_loopback()
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xff00) == 0xff00
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || s[0] == 0;
    if non_public {
        NON_PUBLIC_SCORE
    } else {
        PUBLIC_SCORE
    }
}

fn is_v6_byte(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b':' || c == b'.'
}

/// Finds IPv6 addresses: every `:` next to a hex digit or `:` is expanded to its run of
/// hex digits, colons and dots, which must stand alone and parse.
pub(crate) fn scan_ipv6(text: &str, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(off) = memchr::memchr(b':', &b[from..]) {
        let c = from + off;
        from = c + 1;
        let near = |i: Option<usize>| i.and_then(|i| b.get(i)).is_some_and(|&x| x.is_ascii_hexdigit() || x == b':');
        if !near(c.checked_sub(1)) && !near(Some(c + 1)) {
            continue;
        }
        let mut s = c;
        while s > 0 && is_v6_byte(b[s - 1]) && c - s <= 45 {
            s -= 1;
        }
        let mut e = c + 1;
        while e < b.len() && is_v6_byte(b[e]) && e - s <= 46 {
            e += 1;
        }
        // Resume after the run whatever happens (linear on "::::" or long hex runs).
        let mut run_end = e;
        while run_end < b.len() && is_v6_byte(b[run_end]) {
            run_end += 1;
        }
        from = from.max(run_end);
        if e - s > 45 || (s > 0 && is_v6_byte(b[s - 1])) || run_end != e {
            continue;
        }
        // A sentence's full stop is not part of the address.
        while e > s && b[e - 1] == b'.' {
            e -= 1;
        }
        if s > 0 && (is_word(b[s - 1]) || b[s - 1] == b'.' || b[s - 1] == b'@') {
            continue;
        }
        if e < b.len() && (is_word(b[e]) || b[e] == b'@') {
            continue;
        }
        // Without "::" an address has seven colons (six before an embedded IPv4).
        let colons = b[s..e].iter().filter(|&&x| x == b':').count();
        if colons < 2 || (colons < 6 && !b[s..e].windows(2).any(|w| w == b"::")) {
            continue;
        }
        let tok = &text[s..e];
        if let Some(score) = ipv6_token(tok) {
            out.push(Finding::new("pii.ipv6", Category::Pii, s, e, score));
        }
    }
}

/// A standalone IPv6 token: parses, is not `::`, looks like an address rather than a
/// MAC (all two-digit groups), a time or a namespace path.
fn ipv6_token(tok: &str) -> Option<f32> {
    let ip: Ipv6Addr = tok.parse().ok()?;
    if ip.is_unspecified() {
        return None;
    }
    let compressed = tok.contains("::");
    if !compressed && tok.split(':').all(|g| g.len() == 2) {
        return None;
    }
    // Something address-like: a 3+ digit hex group, or a leading "::" (::1, ::ffff:..).
    if !tok.starts_with("::") && !tok.split(':').any(|g| g.len() >= 3) {
        return None;
    }
    Some(v6_score(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(text: &str) -> Vec<(usize, usize, f32)> {
        let mut out = Vec::new();
        scan_ipv6(text, &mut out);
        out.iter().map(|f| (f.start, f.end, f.score)).collect()
    }

    #[test]
    fn ipv6_forms() {
        assert_eq!(v6("addr 2606:4700:4700::1111 ok"), vec![(5, 25, PUBLIC_SCORE)]);
        assert_eq!(v6("[::1]:8080"), vec![(1, 4, NON_PUBLIC_SCORE)]);
        assert_eq!(v6("fe80::1%eth0"), vec![(0, 7, NON_PUBLIC_SCORE)]);
        assert_eq!(v6("x=2001:0db8:85a3:0000:0000:8a2e:0370:7334."), vec![(2, 41, NON_PUBLIC_SCORE)]);
        assert_eq!(v6("::ffff:8.8.8.8"), vec![(0, 14, PUBLIC_SCORE)]);
        assert_eq!(v6("::ffff:10.1.2.3"), vec![(0, 15, NON_PUBLIC_SCORE)]);
        assert_eq!(v6("2a00:1450:4001:81b::200e"), vec![(0, 24, PUBLIC_SCORE)]);
    }

    #[test]
    fn ipv6_negatives() {
        for t in [
            "::",
            "std::vector<int>",
            "a::b",
            "12:30:45",
            "2024-01-15T12:30:45.123Z",
            "00:1a:2b:3c:4d:5e",
            "00:11:22:33:44:55:66:77",
            "Foo::Bar::baz",
            "\"key\": \"value\"",
            "localhost:8080",
            "10.0.0.1:8080",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "dead::beef:cafe:babe:dead:beef:cafe:babe:dead",
        ] {
            assert_eq!(v6(t), vec![], "{t}");
        }
        assert!(v6(&":".repeat(100_000)).is_empty());
        assert!(v6(&"a1:".repeat(50_000)).is_empty());
    }
}
