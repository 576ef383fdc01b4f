//! The single pass over digit runs: each run that starts a token is classified locally as
//! an IBAN (two capitals before it), IPv4 address, SSN, payment card or phone number, in
//! that order, by small parsers and the validators. Nothing here allocates.

use super::ip::{ipv4_at, V4};
use super::phone::{self, Form, Prefix, Region};
use super::validate::{card_brand, iban_length_bytes, luhn_bytes, mod97_compact, ssn_digits_valid};
use super::{context_words, is_word};
use crate::finding::{Category, Finding};

/// Score of an SSN written `AAA-GG-SSSS`.
pub const SSN_DASHED_SCORE: f32 = 0.9;
/// Score of an SSN written `AAA GG SSSS` or as nine digits after a context word.
pub const SSN_OTHER_SCORE: f32 = 0.8;
/// Score of a Luhn- and IIN-valid card number or a mod-97-valid IBAN.
pub const CHECKSUM_SCORE: f32 = 1.0;
/// Score of a valid international phone number (`+CC`, `00CC`).
pub const PHONE_INTL_SCORE: f32 = 0.8;
/// Score of a valid national phone number with separators or parentheses.
pub const PHONE_NATIONAL_SCORE: f32 = 0.7;
/// Score of a valid national phone number written as bare digits after a context word.
pub const PHONE_BARE_SCORE: f32 = 0.6;

const SSN_WORDS: &[&[u8]] = &[b"ssn", b"social security", b"social sec", b"ss#", b"ss #", b"ss no"];
const PHONE_WORDS: &[&[u8]] = &[
    b"phone",
    b"phones",
    b"telephone",
    b"tel",
    b"mobile",
    b"cell",
    b"fax",
    b"whatsapp",
    b"sms",
    b"call",
    b"mobil",
    b"telefon",
    b"telefono",
    b"ruf",
    b"appel",
];

enum Outcome {
    Found(&'static str, usize, usize, f32),
    /// Not reportable; resume at this offset.
    Skip(usize),
    None,
}

/// `skip`: spans already reported (emails, IPv6), sorted by start.
pub(crate) fn scan_numbers(text: &str, regions: &[&'static Region], skip: &[(usize, usize)], out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let n = b.len();
    let mut i = 0;
    let mut k = 0;
    while i < n {
        i = next_digit(b, i);
        if i >= n {
            break;
        }
        while k < skip.len() && skip[k].1 <= i {
            k += 1;
        }
        if k < skip.len() && skip[k].0 <= i {
            i = skip[k].1;
            continue;
        }
        let s = i;
        let mut run_end = s;
        while run_end < n && b[run_end].is_ascii_digit() {
            run_end += 1;
        }
        if s > 0 && b[s - 1].is_ascii_digit() {
            i = run_end;
            continue;
        }
        match classify(b, s, run_end, regions) {
            Outcome::Found(id, start, end, score) if k >= skip.len() || skip[k].0 >= end => {
                out.push(Finding::new(id, Category::Pii, start, end, score));
                i = end;
            }
            Outcome::Skip(end) => i = end.max(run_end),
            _ => i = run_end,
        }
    }
}

/// The offset of the first ASCII digit in `b` at or after `from`, or `b.len()`. Blocks of
/// 16 bytes are tested whole, without an early exit, which the compiler turns into vector
/// compares: the stretches between numbers (words, keys, markup) pass at a fraction of a
/// cycle per byte, where a byte-by-byte loop took 40 % of the PII scan.
fn next_digit(b: &[u8], from: usize) -> usize {
    const BLOCK: usize = 16;
    let mut i = from;
    while let Some(block) = b.get(i..i + BLOCK) {
        if block.iter().fold(false, |any, c| any | c.is_ascii_digit()) {
            break;
        }
        i += BLOCK;
    }
    b[i..].iter().position(u8::is_ascii_digit).map_or(b.len(), |p| i + p)
}

fn classify(b: &[u8], s: usize, run_end: usize, regions: &[&'static Region]) -> Outcome {
    let run = run_end - s;
    // IBAN: `CCkk` with the country letters right before the run.
    if s >= 2
        && run >= 2
        && b[s - 2].is_ascii_uppercase()
        && b[s - 1].is_ascii_uppercase()
        && (s == 2 || !is_word(b[s - 3]))
    {
        if let Some(end) = iban_at(b, s - 2) {
            return Outcome::Found("pii.iban", s - 2, end, CHECKSUM_SCORE);
        }
    }
    let prev = if s > 0 { b[s - 1] } else { 0 };
    if prev == b'+' {
        if plus_left_ok(b, s - 1) {
            if let Some((end, score)) = phone_at(b, s, Prefix::Plus, regions) {
                return Outcome::Found("pii.phone", s - 1, end, score);
            }
        }
        return Outcome::None;
    }
    if prev == b'(' && b.get(run_end) == Some(&b')') && left_ok(b, s - 1, run_end) {
        if let Some((end, score)) = phone_at(b, s - 1, Prefix::None, regions) {
            return Outcome::Found("pii.phone", s - 1, end, score);
        }
    }
    let next = b.get(run_end).copied().unwrap_or(0);
    if !left_ok(b, s, run_end) {
        // An address range: 10.0.0.1-10.0.0.9.
        if prev == b'-' && s >= 2 && b[s - 2].is_ascii_digit() && run <= 3 && next == b'.' {
            if let V4::Match { end, score } = ipv4_at(b, s) {
                return Outcome::Found("pii.ipv4", s, end, score);
            }
        }
        return Outcome::None;
    }
    if run <= 3 && next == b'.' {
        match ipv4_at(b, s) {
            V4::Match { end, score } => return Outcome::Found("pii.ipv4", s, end, score),
            V4::Skip { end } => return Outcome::Skip(end),
            V4::No => {}
        }
    }
    if run == 3 && (next == b'-' || next == b' ') {
        if let Some((end, score)) = ssn_at(b, s) {
            return Outcome::Found("pii.ssn", s, end, score);
        }
    }
    if run == 9
        && right_ok(b, run_end)
        && ssn_digits_valid(b[s..run_end].try_into().expect("nine digits"))
        && context_words(b, s, run_end, 48, 24, SSN_WORDS)
    {
        return Outcome::Found("pii.ssn", s, run_end, SSN_OTHER_SCORE);
    }
    let after = b.get(run_end + 1).copied().unwrap_or(0);
    let grouped = matches!(next, b' ' | b'-' | b'.') && (after.is_ascii_digit() || after == b'(');
    if run >= 13 || (run == 4 && grouped && next != b'.') {
        if let Some(end) = card_at(b, s) {
            return Outcome::Found("pii.credit_card", s, end, CHECKSUM_SCORE);
        }
    }
    // A phone number has seven digits or more: one long run, or several groups.
    if run < 7 && !grouped {
        return Outcome::None;
    }
    let prefix = if b[s..run_end].starts_with(b"00") { Prefix::DoubleZero } else { Prefix::None };
    if let Some((end, score)) = phone_at(b, s, prefix, regions) {
        return Outcome::Found("pii.phone", s, end, score);
    }
    Outcome::None
}

/// Whether a number may start at `s` (`run_end`: the end of its first digit run).
fn left_ok(b: &[u8], s: usize, run_end: usize) -> bool {
    if s == 0 {
        return true;
    }
    let p = b[s - 1];
    let pp = if s >= 2 { b[s - 2] } else { 0 };
    match p {
        _ if is_word(p) || p == b'@' || p == b'$' => false,
        // v1.2, 0.5, uuid-ish a-123
        b'.' | b'-' => !pp.is_ascii_alphanumeric(),
        // 12:30, 01/15
        b':' | b'/' => !pp.is_ascii_digit(),
        // 1,234 — unless what follows the group makes it a CSV field: a dotted quad
        // ("32563,205.222.158.169") or more digit groups ("47082,315 947 2170").
        b',' => {
            let next = b.get(run_end).copied().unwrap_or(0);
            let after = b.get(run_end + 1).copied().unwrap_or(0);
            let quad = next == b'.'
                && b[run_end..]
                    .iter()
                    .take(13)
                    .take_while(|c| c.is_ascii_digit() || **c == b'.')
                    .filter(|c| **c == b'.')
                    .count()
                    == 3;
            let grouped = next == b' ' && after.is_ascii_digit();
            !(pp.is_ascii_digit() && run_end - s == 3 && !matches!(next, b'-' | b'(' | b')') && !quad && !grouped)
        }
        // Currency signs: £ (C2 A3), ¥ (C2 A5), € (E2 82 AC), ₹ (E2 82 B9).
        0xA3 | 0xA5 | 0xAC | 0xB9 => !(pp == 0xC2 || pp == 0x82),
        _ => true,
    }
}

/// Whether a number may end at `e`.
fn right_ok(b: &[u8], e: usize) -> bool {
    let Some(&c) = b.get(e) else { return true };
    let next = b.get(e + 1).copied().unwrap_or(0);
    match c {
        _ if is_word(c) || c == b'@' => false,
        b'.' | b'-' => !next.is_ascii_alphanumeric(),
        b':' | b'/' => !next.is_ascii_digit(),
        // 1,234 (a thousands group), not a CSV field
        b',' => {
            let thousands = b.len() >= e + 4
                && b[e + 1..e + 4].iter().all(u8::is_ascii_digit)
                && b.get(e + 4).is_none_or(|&c| !c.is_ascii_alphanumeric() && c != b'-' && c != b'(');
            !thousands
        }
        _ => true,
    }
}

/// Before a `+`: nothing word-like (base64 data contains `+` and digits).
fn plus_left_ok(b: &[u8], q: usize) -> bool {
    q == 0 || !(is_word(b[q - 1]) || matches!(b[q - 1], b'/' | b'+' | b'.' | b'-' | b'@' | b'%'))
}

fn iban_at(b: &[u8], st: usize) -> Option<usize> {
    let len = iban_length_bytes([b[st], b[st + 1]])?;
    let ok = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    let mut buf = [0u8; 34];
    let mut p = st;
    while p < b.len() && p - st < 35 && ok(b[p]) {
        p += 1;
    }
    if p - st == len {
        if b.get(p).is_some_and(|&c| is_word(c)) {
            return None;
        }
        return mod97_compact(&b[st..p]).then_some(p);
    }
    if p - st != 4 || b.get(p) != Some(&b' ') {
        return None;
    }
    buf[..4].copy_from_slice(&b[st..st + 4]);
    let mut count = 4;
    let mut q = p;
    while count < len {
        if b.get(q) != Some(&b' ') {
            return None;
        }
        q += 1;
        let take = (len - count).min(4);
        let group = b.get(q..q + take)?;
        if !group.iter().all(|&c| ok(c)) {
            return None;
        }
        buf[count..count + take].copy_from_slice(group);
        count += take;
        q += take;
    }
    if b.get(q).is_some_and(|&c| is_word(c)) {
        return None;
    }
    mod97_compact(&buf[..len]).then_some(q)
}

fn ssn_at(b: &[u8], s: usize) -> Option<(usize, f32)> {
    let g = b.get(s..s + 11)?;
    let sep = g[3];
    let digits_at = |r: std::ops::Range<usize>| g[r].iter().all(u8::is_ascii_digit);
    if g[6] != sep || !digits_at(4..6) || !digits_at(7..11) {
        return None;
    }
    let end = s + 11;
    if !right_ok(b, end) {
        return None;
    }
    if sep == b' ' {
        // Not a piece of a longer space-separated digit sequence.
        let digit_at = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
        if (b.get(end) == Some(&b' ') && digit_at(end + 1)) || (s >= 2 && b[s - 1] == b' ' && digit_at(s - 2)) {
            return None;
        }
    }
    let mut d = [0u8; 9];
    d[..3].copy_from_slice(&g[..3]);
    d[3..5].copy_from_slice(&g[4..6]);
    d[5..].copy_from_slice(&g[7..11]);
    ssn_digits_valid(&d).then_some((end, if sep == b'-' { SSN_DASHED_SCORE } else { SSN_OTHER_SCORE }))
}

/// 13..19 digits, compact or in groups (the first of four digits, the others of three to
/// six) joined by one consistent space or dash; Luhn-valid with a known issuer prefix.
fn card_at(b: &[u8], s: usize) -> Option<usize> {
    let mut digits = [0u8; 19];
    let mut nd = 0;
    // (end offset, digit count) after each group.
    let mut ends = [(0usize, 0usize); 8];
    let mut ne = 0;
    let mut sep = 0u8;
    let mut p = s;
    loop {
        let gs = p;
        while p < b.len() && b[p].is_ascii_digit() && p - gs < 20 {
            p += 1;
        }
        let glen = p - gs;
        let valid_group = if ne == 0 { glen == 4 || (13..=19).contains(&glen) } else { (3..=6).contains(&glen) };
        if !valid_group || nd + glen > 19 {
            break;
        }
        digits[nd..nd + glen].copy_from_slice(&b[gs..p]);
        nd += glen;
        ends[ne] = (p, nd);
        ne += 1;
        let c = b.get(p).copied().unwrap_or(0);
        if ne < ends.len()
            && matches!(c, b' ' | b'-')
            && (sep == 0 || sep == c)
            && b.get(p + 1).is_some_and(u8::is_ascii_digit)
        {
            sep = c;
            p += 1;
        } else {
            break;
        }
    }
    for j in (0..ne).rev() {
        let (end, count) = ends[j];
        if !(13..=19).contains(&count) {
            continue;
        }
        // Cutting a group sequence short is fine only at a space.
        if j + 1 < ne && sep != b' ' {
            continue;
        }
        if !right_ok(b, end) {
            continue;
        }
        let d = &digits[..count];
        if luhn_bytes(d) && card_brand(d).is_some() {
            return Some(end);
        }
    }
    None
}

/// A phone number whose first group is at `gs` (a digit or `(`), `+` before it for
/// [`Prefix::Plus`]. Returns the end and score.
fn phone_at(b: &[u8], gs: usize, prefix: Prefix, regions: &[&'static Region]) -> Option<(usize, f32)> {
    let p = phone::parse_groups(b, gs);
    let start = if prefix == Prefix::Plus { gs - 1 } else { gs };
    // Not the inside of a longer space-separated digit sequence ("1234 5678 9012").
    if start >= 2 && b[start - 1] == b' ' && b[start - 2].is_ascii_digit() && p.ng > 1 && p.groups[1].sep_before == b' '
    {
        return None;
    }
    let mut nd: usize = p.groups[..p.ng].iter().map(|g| g.len as usize).sum();
    for k in (1..=p.ng).rev() {
        let g = p.groups[k - 1];
        if k < p.ng {
            nd -= p.groups[k].len as usize;
        }
        if nd < 7 {
            break;
        }
        if nd > phone::MAX_DIGITS {
            continue;
        }
        // Cut a longer sequence short only at a space.
        if k < p.ng && p.groups[k].sep_before != b' ' {
            continue;
        }
        if !right_ok(b, g.end) {
            continue;
        }
        let Some(form) = phone::validate(&p, k, prefix, regions) else { continue };
        let score = match form {
            Form::International => PHONE_INTL_SCORE,
            Form::National => {
                // Two groups without a trunk prefix ("304 161117") is how status codes,
                // counters and ids are written too, and 3-2-4 with dashes is an SSN's shape:
                // such a number needs a context word. Three or more groups, an area code in
                // parentheses, or a leading trunk `0` ("030 123456") is how people write
                // phone numbers.
                let groups = &p.groups[..k];
                let ssn_shape = k == 3 && groups.iter().map(|g| g.len).eq([3, 2, 4]) && groups[1].sep_before == b'-';
                let trunk = b.get(gs) == Some(&b'0') || b.get(gs + 1) == Some(&b'0') && b.get(gs) == Some(&b'(');
                let written_as_phone = (k >= 3 && !ssn_shape) || groups.iter().any(|g| g.paren) || (k == 2 && trunk);
                if !written_as_phone && !context_words(b, start, g.end, 40, 24, PHONE_WORDS) {
                    continue;
                }
                PHONE_NATIONAL_SCORE
            }
            Form::Bare => {
                if !context_words(b, start, g.end, 40, 24, PHONE_WORDS) {
                    continue;
                }
                PHONE_BARE_SCORE
            }
        };
        return Some((g.end, score));
    }
    None
}
