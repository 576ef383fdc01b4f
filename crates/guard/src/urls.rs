//! URLs: extracts `http`, `https`, `ftp`, `ws`, `wss` URLs and bare `www.` hosts from text
//! and reports hosts that are IP literals, punycode, mixed-script or confusable, denied, or
//! outside an allow-list.
//!
//! Extraction is a hand-written scanner behind a `memchr` search for `://` and `www.`, so
//! text without either costs one SIMD pass. Hosts are parsed with the WHATWG host parser
//! (`url::Host::parse`), which percent-decodes, maps IDNs to punycode and reads IPv4 in
//! every legacy notation (`2130706433`, `0x7f.1`, `0177.0.0.1`).

use crate::finding::{Category, Finding};
use crate::ConfigError;
use std::net::{Ipv4Addr, Ipv6Addr};
use unicode_security::{skeleton, MixedScript};

/// Host IP literal (`http://10.0.0.1/`, `http://[::1]/`, `http://2130706433/`).
pub const IP_LITERAL: &str = "url.ip_literal";
/// A host label written in punycode (`xn--`).
pub const PUNYCODE: &str = "url.punycode";
/// A host label mixing scripts, or made entirely of look-alikes of an ASCII label.
pub const MIXED_SCRIPT: &str = "url.mixed_script";
/// The host is on `deny_domains`.
pub const DENIED_DOMAIN: &str = "url.denied_domain";
/// `allow_domains` is set and the host is not on it.
pub const NOT_ALLOWED: &str = "url.not_allowed";

/// Every detector id this module reports.
pub const DETECTORS: [&str; 5] = [IP_LITERAL, PUNYCODE, MIXED_SCRIPT, DENIED_DOMAIN, NOT_ALLOWED];

/// Which URL hosts are acceptable.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct UrlConfig {
    /// When non-empty, URLs whose host is not one of these domains (or a subdomain of one)
    /// are reported as `url.not_allowed`. Entries are lower-case host names without scheme,
    /// port or path: `example.com` matches `example.com` and every subdomain, `*.example.com`
    /// only the subdomains. IPv4 addresses (`10.0.0.1`) match that address exactly.
    /// Internationalized names are written in punycode (`xn--...`).
    pub allow_domains: Vec<String>,
    /// URLs whose host is one of these domains (or a subdomain of one) are reported as
    /// `url.denied_domain`. Same syntax as `allow_domains`.
    pub deny_domains: Vec<String>,
}

/// The URL detectors, compiled once from a [`UrlConfig`].
#[derive(Debug, Clone)]
pub struct UrlScanner {
    allow: DomainList,
    deny: DomainList,
}

impl UrlScanner {
    pub fn new(config: &UrlConfig) -> Result<Self, ConfigError> {
        Ok(UrlScanner {
            allow: DomainList::parse(&config.allow_domains, "urls.allow_domains")?,
            deny: DomainList::parse(&config.deny_domains, "urls.deny_domains")?,
        })
    }

    /// Appends the findings for every URL in `text`; each spans the whole URL.
    pub fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        for (start, end) in find_urls(text) {
            let url = &text[start..end];
            let Some(parts) = UrlParts::parse(url) else { continue };
            let raw_host = &url[parts.host.clone()];
            if raw_host.is_empty() {
                continue;
            }
            let host = HostKind::parse(raw_host);
            let mut push = |id: &'static str, score: f32| out.push(Finding::new(id, Category::Url, start, end, score));
            match &host {
                HostKind::Ipv4(ip) => push(IP_LITERAL, if ipv4_is_internal(ip) { 0.6 } else { 0.8 }),
                HostKind::Ipv6(ip) => push(IP_LITERAL, if ipv6_is_internal(ip) { 0.6 } else { 0.8 }),
                HostKind::Domain(domain) => {
                    if raw_host.split('.').any(|l| starts_with_ci(l, "xn--")) {
                        push(PUNYCODE, 0.5);
                    }
                    if let Some(score) = mixed_script_score(domain) {
                        push(MIXED_SCRIPT, score);
                    }
                }
                HostKind::Invalid => {}
            }
            if self.deny.matches(&host) {
                push(DENIED_DOMAIN, 1.0);
            }
            if !self.allow.is_empty() && !self.allow.matches(&host) {
                push(NOT_ALLOWED, 0.7);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Extraction
// ---------------------------------------------------------------------------------------

/// The schemes whose URLs are extracted (compared ASCII case-insensitively).
const SCHEMES: [&str; 6] = ["http", "https", "ftp", "ftps", "ws", "wss"];

/// Every URL in `text` as a byte range `(start, end)`, in order and non-overlapping:
/// `scheme://...` for the schemes above and bare `www.host.tld...`. Trailing punctuation
/// and unbalanced closing brackets are left out, so `(see https://x.org/a).` yields
/// `https://x.org/a`. Both offsets lie on char boundaries.
pub fn find_urls(text: &str) -> UrlMatches<'_> {
    UrlMatches { text, pos: 0, next_scheme: None, next_www: None, next_www_upper: None }
}

/// The iterator returned by [`find_urls`].
#[derive(Debug, Clone)]
pub struct UrlMatches<'t> {
    text: &'t str,
    pos: usize,
    // Cached positions of the next candidates at or after `pos` (`Some(None)`: none left).
    next_scheme: Option<Option<usize>>,
    next_www: Option<Option<usize>>,
    next_www_upper: Option<Option<usize>>,
}

fn next_from(cache: &mut Option<Option<usize>>, hay: &[u8], pos: usize, needle: &[u8]) -> Option<usize> {
    if let Some(Some(p)) = *cache {
        if p < pos {
            *cache = None;
        }
    }
    *cache.get_or_insert_with(|| memchr::memmem::find(&hay[pos..], needle).map(|p| p + pos))
}

impl Iterator for UrlMatches<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let bytes = self.text.as_bytes();
        loop {
            if self.pos >= bytes.len() {
                return None;
            }
            let pos = self.pos;
            let s = next_from(&mut self.next_scheme, bytes, pos, b"://");
            let w = next_from(&mut self.next_www, bytes, pos, b"www.");
            let wu = next_from(&mut self.next_www_upper, bytes, pos, b"WWW.");
            let cand = [s, w, wu].into_iter().flatten().min()?;
            if Some(cand) == s {
                self.pos = cand + 3;
                if let Some(span) = scheme_url_at(self.text, cand) {
                    self.pos = span.1;
                    return Some(span);
                }
            } else {
                self.pos = cand + 4;
                if let Some(span) = www_url_at(self.text, cand) {
                    self.pos = span.1;
                    return Some(span);
                }
            }
        }
    }
}

/// A URL around the `://` at `sep`, if the scheme before it is one we extract.
fn scheme_url_at(text: &str, sep: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut start = sep;
    while start > 0 && sep - start < 5 && bytes[start - 1].is_ascii_alphabetic() {
        start -= 1;
    }
    // The scheme must start at a word boundary: `xhttp://` is not ours.
    if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || matches!(bytes[start - 1], b'+' | b'-' | b'.')) {
        return None;
    }
    let scheme = &text[start..sep];
    if !SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return None;
    }
    let opener = if start > 0 { Some(bytes[start - 1]) } else { None };
    let end = url_end(text, sep + 3, opener);
    // Something must follow `://` before the first `/`.
    let first = *bytes.get(sep + 3)?;
    if end <= sep + 3 || matches!(first, b'/' | b'?' | b'#' | b'.' | b':' | b'@') {
        return None;
    }
    Some((start, end))
}

/// A bare `www.` URL at `at`, if it starts at a word boundary and names `www.x.y`.
fn www_url_at(text: &str, at: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    if at > 0 {
        let prev = bytes[at - 1];
        if prev.is_ascii_alphanumeric() || matches!(prev, b'.' | b'-' | b'/' | b'@' | b':' | b'_' | b'%') {
            return None;
        }
        // A multi-byte char ending right before (e.g. a letter) also joins the word.
        if prev >= 0x80 && text[..at].chars().next_back().is_some_and(char::is_alphanumeric) {
            return None;
        }
    }
    let opener = if at > 0 { Some(bytes[at - 1]) } else { None };
    let end = url_end(text, at, opener);
    if end <= at + 4 {
        return None;
    }
    let host_end = text[at..end].find(['/', '?', '#', ':']).map_or(end, |p| at + p);
    let host = &text[at + 4..host_end];
    // `www.example.com`, not `www.` or `www.example`.
    let mut labels = host.split('.');
    let ok = labels.next().is_some_and(|l| !l.is_empty())
        && labels.next().is_some_and(|l| l.chars().next().is_some_and(char::is_alphanumeric));
    ok.then_some((at, end))
}

/// Whether a non-ASCII char ends a URL: white space, controls, typographic punctuation,
/// arrows and other symbols (U+2000..U+2BFF), CJK punctuation and emoji, none of which
/// appears unescaped inside a URL in practice.
fn ends_url(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(c, '\u{3000}'..='\u{303F}' | '\u{2000}'..='\u{2BFF}' | '\u{1F000}'..)
        || matches!(c, '\u{FF08}' | '\u{FF09}' | '\u{FF0C}' | '\u{FF1A}' | '\u{FF1B}' | '\u{FF01}' | '\u{FF1F}')
        || matches!(c, '\u{00AB}' | '\u{00BB}' | '\u{FEFF}')
}

/// Where the URL whose body starts at `from` ends. `opener` is the byte before the URL; a
/// quote there ends the URL at the matching quote.
pub(crate) fn url_end(text: &str, from: usize, opener: Option<u8>) -> usize {
    let bytes = text.as_bytes();
    let mut i = from;
    let mut parens = 0u32;
    let mut brackets = 0u32;
    while i < bytes.len() {
        let b = bytes[i];
        if b >= 0x80 {
            let c = text[i..].chars().next().unwrap_or(' ');
            if ends_url(c) {
                break;
            }
            i += c.len_utf8();
            continue;
        }
        match b {
            0..=0x20 | 0x7f | b'<' | b'>' | b'"' | b'`' | b'\\' => break,
            b'\'' if opener == Some(b'\'') => break,
            b'(' => parens += 1,
            b')' => {
                if parens == 0 {
                    break;
                }
                parens -= 1;
            }
            b'[' => brackets += 1,
            b']' => {
                if brackets == 0 {
                    break;
                }
                brackets -= 1;
            }
            _ => {}
        }
        i += 1;
    }
    // Sentence punctuation after a URL is not part of it.
    while i > from && matches!(bytes[i - 1], b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\'' | b'*' | b'_') {
        i -= 1;
    }
    i
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

/// The parts of an extracted URL, as ranges into it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UrlParts {
    /// The host as written (without userinfo, port or brackets' surroundings).
    pub host: std::ops::Range<usize>,
    /// Where the path (or query, or fragment) starts; the URL's length if none.
    pub rest: usize,
}

impl UrlParts {
    /// Splits `scheme://user@host:port/rest`, `//host/rest` or `www.host/rest`.
    pub fn parse(url: &str) -> Option<UrlParts> {
        let auth_start = if let Some(p) = url.find("://") {
            p + 3
        } else if url.starts_with("//") {
            2
        } else if starts_with_ci(url, "www.") {
            0
        } else {
            return None;
        };
        let rest = url[auth_start..].find(['/', '?', '#', '\\']).map_or(url.len(), |p| auth_start + p);
        let authority = &url[auth_start..rest];
        let host_start = authority.rfind('@').map_or(auth_start, |p| auth_start + p + 1);
        let hostport = &url[host_start..rest];
        let host_end = if hostport.starts_with('[') {
            hostport.find(']').map_or(rest, |p| host_start + p + 1)
        } else {
            hostport.find(':').map_or(rest, |p| host_start + p)
        };
        Some(UrlParts { host: host_start..host_end, rest })
    }
}

/// Whether `s` starts with the ASCII `prefix`, ignoring ASCII case.
pub(crate) fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// A host after WHATWG host parsing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HostKind {
    /// ASCII, lower case, punycode for IDNs, without a trailing dot.
    Domain(String),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// Not a valid host (placeholders such as `{host}`, bad IPv6, ...).
    Invalid,
}

impl HostKind {
    pub fn parse(raw: &str) -> HostKind {
        let raw = raw.strip_suffix('.').unwrap_or(raw);
        match url::Host::parse(raw) {
            Ok(url::Host::Domain(d)) => HostKind::Domain(d),
            Ok(url::Host::Ipv4(ip)) => HostKind::Ipv4(ip),
            Ok(url::Host::Ipv6(ip)) => HostKind::Ipv6(ip),
            Err(_) => HostKind::Invalid,
        }
    }
}

fn ipv4_is_internal(ip: &Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space, 100.64.0.0/10
}

fn ipv6_is_internal(ip: &Ipv6Addr) -> bool {
    let s = ip.segments();
    ip.is_loopback()
        || ip.is_unspecified()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link local
        || ip.to_ipv4_mapped().is_some_and(|v4| ipv4_is_internal(&v4))
}

/// 0.9 if a label of `domain` (ASCII, punycode for IDNs) mixes scripts, 0.8 if a label is
/// made entirely of look-alikes of ASCII letters (`раураl` in Cyrillic), else `None`.
fn mixed_script_score(domain: &str) -> Option<f32> {
    if !domain.contains("xn--") {
        return None;
    }
    let (unicode, _) = idna::domain_to_unicode(domain);
    let mut score: Option<f32> = None;
    for label in unicode.split('.') {
        if label.is_ascii() {
            continue;
        }
        if !label.is_single_script() {
            return Some(0.9);
        }
        if skeleton(label).all(|c| c.is_ascii()) {
            score = Some(0.8);
        }
    }
    score
}

// ---------------------------------------------------------------------------------------
// Domain lists
// ---------------------------------------------------------------------------------------

/// A validated list of domains: `example.com` (the domain and its subdomains),
/// `*.example.com` (only its subdomains) or an IPv4 address.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DomainList {
    /// (domain, subdomains only)
    domains: Vec<(String, bool)>,
    ips: Vec<Ipv4Addr>,
}

impl DomainList {
    /// Validates `entries`; errors name `path[i]`.
    pub fn parse(entries: &[String], path: &str) -> Result<DomainList, ConfigError> {
        let mut list = DomainList::default();
        for (i, entry) in entries.iter().enumerate() {
            let err = |msg: String| ConfigError::new(format!("{path}[{i}]"), msg);
            if let Ok(ip) = entry.parse::<Ipv4Addr>() {
                list.ips.push(ip);
                continue;
            }
            let (name, wildcard) = match entry.strip_prefix("*.") {
                Some(rest) => (rest, true),
                None => (entry.as_str(), false),
            };
            validate_domain(entry, name).map_err(err)?;
            list.domains.push((name.to_string(), wildcard));
        }
        Ok(list)
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.ips.is_empty()
    }

    /// Whether `host` is on the list.
    pub fn matches(&self, host: &HostKind) -> bool {
        match host {
            HostKind::Domain(d) => self.matches_domain(d),
            HostKind::Ipv4(ip) => self.ips.contains(ip),
            HostKind::Ipv6(_) | HostKind::Invalid => false,
        }
    }

    /// Whether `host` (ASCII, lower case) is on the list.
    pub fn matches_domain(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        self.domains.iter().any(|(d, subdomains_only)| {
            (!subdomains_only && host == d)
                || (host.len() > d.len() + 1
                    && host.ends_with(d.as_str())
                    && host.as_bytes()[host.len() - d.len() - 1] == b'.')
        })
    }
}

/// What the user probably meant by a malformed entry: the bare, lower-case host name.
fn suggest(entry: &str) -> String {
    let mut s = entry.trim();
    if let Some(p) = s.find("://") {
        s = &s[p + 3..];
    }
    if let Some(p) = s.find(['/', '?', '#']) {
        s = &s[..p];
    }
    if let Some(p) = s.rfind('@') {
        s = &s[p + 1..];
    }
    if let Some(p) = s.find(':') {
        s = &s[..p];
    }
    let s = s.trim_matches('.').to_lowercase();
    if s.is_ascii() {
        s
    } else {
        idna::domain_to_ascii(&s).unwrap_or(s)
    }
}

fn validate_domain(entry: &str, name: &str) -> Result<(), String> {
    let hint = suggest(entry);
    if entry.trim().is_empty() {
        return Err("empty entry; write a host name such as \"example.com\"".into());
    }
    if entry.contains("://") {
        return Err(format!("write the host name without a scheme: \"{hint}\" instead of \"{entry}\""));
    }
    if entry.contains(['/', '?', '#']) {
        return Err(format!("write the host name without a path: \"{hint}\" instead of \"{entry}\""));
    }
    if entry.contains(':') {
        return Err(format!("write the host name without a port: \"{hint}\" instead of \"{entry}\""));
    }
    if entry.contains('@') {
        return Err(format!("write the host name without user info: \"{hint}\" instead of \"{entry}\""));
    }
    if name.contains('*') {
        return Err(format!(
            "a wildcard is only allowed as a leading \"*.\" (\"*.example.com\" matches the subdomains of \
             example.com); write \"{}\" to match a domain and all its subdomains",
            hint.trim_start_matches("*.")
        ));
    }
    if !entry.is_ascii() {
        return Err(format!("write internationalized names in punycode: \"{hint}\" instead of \"{entry}\""));
    }
    if entry.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("write host names in lower case: \"{hint}\" instead of \"{entry}\""));
    }
    if name.starts_with('.') || name.ends_with('.') {
        return Err(format!(
            "write the host name without leading or trailing dots: \"{hint}\" (it also matches all subdomains)"
        ));
    }
    if name.len() > 253 {
        return Err("host name longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("\"{entry}\" has an empty label (\"..\"); write a host name such as \"example.com\""));
        }
        if label.len() > 63 {
            return Err(format!("label \"{label}\" is longer than 63 characters"));
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
            return Err(format!(
                "'{c}' is not allowed in a host name; labels hold only a-z, 0-9 and '-' (e.g. \"example.com\")"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label \"{label}\" starts or ends with '-', which host names do not allow"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(text: &str) -> Vec<&str> {
        find_urls(text).map(|(s, e)| &text[s..e]).collect()
    }

    fn scanner(allow: &[&str], deny: &[&str]) -> UrlScanner {
        UrlScanner::new(&UrlConfig {
            allow_domains: allow.iter().map(|s| s.to_string()).collect(),
            deny_domains: deny.iter().map(|s| s.to_string()).collect(),
        })
        .unwrap()
    }

    fn scan(s: &UrlScanner, text: &str) -> Vec<(String, String, f32)> {
        let mut out = Vec::new();
        s.scan(text, &mut out);
        crate::finding::checked_spans(text, &out, Category::Url)
    }

    fn ids(s: &UrlScanner, text: &str) -> Vec<String> {
        scan(s, text).into_iter().map(|(id, _, _)| id).collect()
    }

    #[test]
    fn extracts_urls_with_sensible_ends() {
        assert_eq!(urls("see https://example.com/a/b?x=1#f."), ["https://example.com/a/b?x=1#f"]);
        assert_eq!(urls("(see https://x.org/a)."), ["https://x.org/a"]);
        assert_eq!(
            urls("https://en.wikipedia.org/wiki/Rust_(language), ok"),
            ["https://en.wikipedia.org/wiki/Rust_(language)"]
        );
        assert_eq!(
            urls("[docs](https://docs.rs/regex) and ![b](http://img.example/x.png \"t\")"),
            ["https://docs.rs/regex", "http://img.example/x.png"]
        );
        assert_eq!(
            urls(r#"{"url":"https://api.example.com/v1","next":"wss://s.example.com/ws"}"#),
            ["https://api.example.com/v1", "wss://s.example.com/ws"]
        );
        assert_eq!(urls("<a href='http://a.example/x'>"), ["http://a.example/x"]);
        assert_eq!(
            urls("go to www.example.com/path, or WWW.EXAMPLE.ORG!"),
            ["www.example.com/path", "WWW.EXAMPLE.ORG"]
        );
        assert_eq!(
            urls("FTP://files.example.com/pub and ws://h:8080/"),
            ["FTP://files.example.com/pub", "ws://h:8080/"]
        );
        assert_eq!(urls("访问https://例子.中国/路径。谢谢"), ["https://例子.中国/路径"]);
        assert_eq!(urls("\"http://a.example/\\\"x\""), ["http://a.example/"]);
    }

    #[test]
    fn ignores_non_urls() {
        assert!(urls("file:///etc/passwd mailto:a@b.c javascript://x xhttp://a.b").is_empty());
        assert!(urls("http:// https:/// www. www.example notwww.example.com a/www.b.c").is_empty());
        assert!(urls("the ratio was 3://4 and nothing else").is_empty());
        assert!(urls("").is_empty());
        assert!(urls("://").is_empty());
    }

    #[test]
    fn http_www_is_one_url() {
        assert_eq!(urls("http://www.example.com/x www.example.com"), ["http://www.example.com/x", "www.example.com"]);
    }

    #[test]
    fn parts() {
        let p = UrlParts::parse("https://user:pw@Example.COM:8443/p?q#f").unwrap();
        assert_eq!(&"https://user:pw@Example.COM:8443/p?q#f"[p.host.clone()], "Example.COM");
        let url = "http://google.com@evil.example/x";
        assert_eq!(&url[UrlParts::parse(url).unwrap().host], "evil.example");
        let url = "http://[::1]:80/";
        assert_eq!(&url[UrlParts::parse(url).unwrap().host], "[::1]");
        let url = "www.example.com";
        assert_eq!(&url[UrlParts::parse(url).unwrap().host], "www.example.com");
    }

    #[test]
    fn ip_literals() {
        let s = scanner(&[], &[]);
        assert_eq!(
            scan(&s, "curl http://127.0.0.1:8080/admin now"),
            [(IP_LITERAL.into(), "http://127.0.0.1:8080/admin".into(), 0.6)]
        );
        assert_eq!(scan(&s, "http://8.8.8.8/")[0].2, 0.8);
        assert_eq!(scan(&s, "http://169.254.169.254/latest/meta-data/")[0].2, 0.6);
        assert_eq!(scan(&s, "http://10.1.2.3/")[0].2, 0.6);
        assert_eq!(scan(&s, "http://100.64.1.1/")[0].2, 0.6);
        // Legacy notations of 127.0.0.1.
        for url in ["http://2130706433/", "http://0x7f.1/", "http://0x7f000001/", "http://0177.0.0.1/", "http://127.1/"]
        {
            assert_eq!(scan(&s, url), [(IP_LITERAL.into(), url.into(), 0.6)], "{url}");
        }
        assert_eq!(scan(&s, "http://[::1]/x")[0].2, 0.6);
        assert_eq!(scan(&s, "http://[fd00::1]/x")[0].2, 0.6);
        assert_eq!(scan(&s, "http://[::ffff:192.168.0.1]/x")[0].2, 0.6);
        assert_eq!(scan(&s, "http://[2606:4700::1111]/x")[0].2, 0.8);
        // Version numbers are not hosts.
        assert!(ids(&s, "https://example.com/v1.2.3/ and http://a1.example.com/").is_empty());
    }

    #[test]
    fn punycode_and_mixed_script() {
        let s = scanner(&[], &[]);
        // xn--pple-43d.com is "аpple.com" with a Cyrillic а.
        assert_eq!(ids(&s, "https://xn--pple-43d.com/login"), [PUNYCODE, MIXED_SCRIPT]);
        assert_eq!(ids(&s, "https://аpple.com/login"), [MIXED_SCRIPT]);
        // All-Cyrillic look-alike of "paypal"... "раураl" has a Latin l; all-Cyrillic "рорра":
        let found = scan(&s, "http://рорра.com/");
        assert_eq!(found, [(MIXED_SCRIPT.into(), "http://рорра.com/".into(), 0.8)]);
        // Legitimate IDNs: single script, not confusable with ASCII.
        assert!(ids(&s, "https://bücher.de/ https://пример.рф/ https://例子.中国/").is_empty());
        assert_eq!(ids(&s, "https://xn--bcher-kva.de/"), [PUNYCODE]);
        assert_eq!(ids(&s, "www.xn--bcher-kva.de"), [PUNYCODE]);
    }

    #[test]
    fn deny_and_allow() {
        let s = scanner(&[], &["evil.example", "*.tracker.example", "10.9.9.9"]);
        assert_eq!(
            scan(&s, "x https://evil.example/a y")[0],
            (DENIED_DOMAIN.into(), "https://evil.example/a".into(), 1.0)
        );
        assert_eq!(ids(&s, "https://a.b.EVIL.example./a"), [DENIED_DOMAIN]);
        assert_eq!(ids(&s, "https://user@evil.example:444/"), [DENIED_DOMAIN]);
        assert_eq!(ids(&s, "https://%65vil.example/"), [DENIED_DOMAIN]);
        assert_eq!(ids(&s, "https://ｅｖｉｌ.example/"), [DENIED_DOMAIN]);
        assert!(ids(&s, "https://notevil.example/ https://evil.example.com/").is_empty());
        assert!(ids(&s, "https://tracker.example/").is_empty());
        assert_eq!(ids(&s, "https://t.tracker.example/"), [DENIED_DOMAIN]);
        assert_eq!(ids(&s, "http://10.9.9.9/"), [IP_LITERAL, DENIED_DOMAIN]);

        let s = scanner(&["github.com", "*.githubusercontent.com"], &[]);
        assert!(ids(&s, "https://github.com/a/b www.github.com https://raw.githubusercontent.com/x").is_empty());
        assert_eq!(ids(&s, "https://githubusercontent.com/"), [NOT_ALLOWED]);
        assert_eq!(ids(&s, "https://github.com.evil.example/"), [NOT_ALLOWED]);
        assert_eq!(ids(&s, "http://8.8.8.8/"), [IP_LITERAL, NOT_ALLOWED]);
        assert_eq!(ids(&s, "http://{host}/x"), [NOT_ALLOWED]);
        assert_eq!(scan(&s, "see www.example.org.")[0].1, "www.example.org");
    }

    #[test]
    fn ordinary_text_is_quiet() {
        let s = scanner(&[], &[]);
        let readme = "# Project\n\n[![CI](https://github.com/o/r/actions/workflows/ci.yml/badge.svg)](https://github.com/o/r/actions)\n\
                      See the [docs](https://docs.rs/portcullis) or www.rust-lang.org. Version 1.2.3, 10.0 percent.\n";
        assert!(ids(&s, readme).is_empty());
        let json = r#"{"homepage":"https://example.com","repo":"git+https://github.com/o/r.git","ip":"10.0.0.1"}"#;
        assert!(ids(&s, json).is_empty());
    }

    #[test]
    fn config_validation() {
        let err = |allow: &[&str]| {
            UrlScanner::new(&UrlConfig {
                allow_domains: allow.iter().map(|s| s.to_string()).collect(),
                deny_domains: vec![],
            })
            .unwrap_err()
        };
        let e = err(&["example.com", "https://Example.com/path"]);
        assert_eq!(e.path, "urls.allow_domains[1]");
        assert!(e.message.contains("without a scheme") && e.message.contains("\"example.com\""), "{e}");
        assert!(err(&["example.com/x"]).message.contains("without a path"));
        assert!(err(&["example.com:443"]).message.contains("without a port"));
        assert!(err(&["Example.com"]).message.contains("lower case: \"example.com\""));
        assert!(err(&["ex*ample.com"]).message.contains("wildcard"));
        assert!(err(&["*example.com"]).message.contains("wildcard"));
        assert!(err(&["bücher.de"]).message.contains("xn--bcher-kva.de"));
        assert!(err(&[".example.com"]).message.contains("\"example.com\""));
        assert!(err(&["exa_mple.com"]).message.contains("'_'"));
        assert!(err(&["-a.com"]).message.contains("'-'"));
        assert!(err(&[""]).message.contains("empty"));
        assert!(err(&["a..b"]).message.contains("empty label"));
        let e = UrlScanner::new(&UrlConfig { allow_domains: vec![], deny_domains: vec!["a.com".into(), "x y".into()] })
            .unwrap_err();
        assert_eq!(e.path, "urls.deny_domains[1]");
        assert!(UrlScanner::new(&UrlConfig {
            allow_domains: vec!["*.example.com".into(), "10.0.0.1".into(), "xn--bcher-kva.de".into()],
            deny_domains: vec![]
        })
        .is_ok());
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let s = scanner(&["example.com"], &["evil.example"]);
        let mut inputs: Vec<String> = vec![
            "".into(),
            "://".into(),
            "http://".into(),
            "http://[".into(),
            "http://[::1".into(),
            "http://a@".into(),
            "http://:80".into(),
            "https://é".into(),
            "ééhttp://ééé.é/ééwww.é".into(),
            "www.".into(),
            "www.é".into(),
            "www.a.é".into(),
            "https://a.b/\u{3000}x".into(),
            "http://xn--/".into(),
            "http://xn--zz.com/".into(),
            "http://999.1.1.1/".into(),
            "http://0x/".into(),
            "(((((http://a.b/((((".into(),
        ];
        inputs.push("://".repeat(10_000));
        inputs.push("www.".repeat(10_000));
        inputs.push("http://a.".repeat(5_000));
        inputs.push(format!("http://{}", "é".repeat(10_000)));
        for text in &inputs {
            scan(&s, text);
            for (a, b) in find_urls(text) {
                assert!(a < b && text.is_char_boundary(a) && text.is_char_boundary(b));
            }
        }
    }

    #[test]
    fn multibyte_neighbours() {
        let s = scanner(&[], &[]);
        let text = "é→http://10.0.0.1/ü←";
        let found = scan(&s, text);
        assert_eq!(found, [(IP_LITERAL.into(), "http://10.0.0.1/ü".into(), 0.6)]);
    }
}
