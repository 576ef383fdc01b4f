//! Phone numbers: a small grammar for written numbers (`+CC`, `00CC`, `(area)`, groups
//! separated by one consistent space, dash or dot) and per-country validation of the
//! national significant number (NSN): its length and leading digit, plus the NANP rules
//! (NXX area and exchange, no N11, no fictional 555-01xx).
//!
//! This is deliberately not libphonenumber: its Rust port keeps its regexes in a global
//! mutex-guarded LRU cache, which is global mutable state and too slow for a scanner
//! that must keep up with 100 MB/s. The table below covers the regions that can be named
//! in `phone_regions`; international numbers of other assigned country codes get a
//! generic length check.

/// Validation rule of one region.
pub(crate) struct Region {
    /// ISO 3166 alpha-2.
    pub iso: &'static str,
    /// Country calling code.
    pub cc: &'static str,
    /// The national (trunk) prefix written before the NSN nationally; empty for none.
    pub trunk: &'static str,
    /// NSN length range.
    pub min: u8,
    pub max: u8,
    /// Allowed first digits of the NSN.
    pub lead: &'static [u8],
    /// North American Numbering Plan rules instead of `lead`/`min`/`max`.
    pub nanp: bool,
    /// The trunk prefix is commonly left out nationally (Brazil's `(16) 4148-3350`).
    pub trunk_optional: bool,
}

const fn r(iso: &'static str, cc: &'static str, trunk: &'static str, min: u8, max: u8, lead: &'static [u8]) -> Region {
    Region { iso, cc, trunk, min, max, lead, nanp: false, trunk_optional: false }
}

/// A region whose trunk prefix is optional in national writing.
const fn r_optional_trunk(
    iso: &'static str,
    cc: &'static str,
    trunk: &'static str,
    min: u8,
    max: u8,
    lead: &'static [u8],
) -> Region {
    Region { iso, cc, trunk, min, max, lead, nanp: false, trunk_optional: true }
}

const ALL: &[u8] = b"123456789";

pub(crate) static REGIONS: &[Region] = &[
    Region { iso: "US", cc: "1", trunk: "1", min: 10, max: 10, lead: b"23456789", nanp: true, trunk_optional: false },
    Region { iso: "CA", cc: "1", trunk: "1", min: 10, max: 10, lead: b"23456789", nanp: true, trunk_optional: false },
    r("GB", "44", "0", 9, 10, b"123579"),
    r("DE", "49", "0", 6, 11, ALL),
    r("FR", "33", "0", 9, 9, ALL),
    r("ES", "34", "", 9, 9, b"6789"),
    r("IT", "39", "", 6, 11, b"03"),
    r("NL", "31", "0", 9, 9, ALL),
    r("BE", "32", "0", 8, 9, ALL),
    r("AT", "43", "0", 7, 13, ALL),
    r("CH", "41", "0", 9, 9, b"23456789"),
    r("IE", "353", "0", 7, 9, ALL),
    r("PT", "351", "", 9, 9, b"29"),
    r("SE", "46", "0", 7, 9, ALL),
    r("NO", "47", "", 8, 8, b"23456789"),
    r("DK", "45", "", 8, 8, b"23456789"),
    r("FI", "358", "0", 5, 12, ALL),
    r("PL", "48", "", 9, 9, ALL),
    r("CZ", "420", "", 9, 9, b"23456789"),
    r("GR", "30", "", 10, 10, b"2689"),
    r("HU", "36", "06", 8, 9, ALL),
    r("RO", "40", "0", 9, 9, b"237"),
    r("LU", "352", "", 6, 11, b"23456789"),
    r("AU", "61", "0", 9, 9, b"23478"),
    r("NZ", "64", "0", 8, 10, b"234679"),
    r("IN", "91", "0", 10, 10, ALL),
    r("JP", "81", "0", 9, 10, ALL),
    r("CN", "86", "0", 10, 11, ALL),
    r("KR", "82", "0", 8, 10, b"123456"),
    r("SG", "65", "", 8, 8, b"3689"),
    r("HK", "852", "", 8, 8, b"235679"),
    r_optional_trunk("BR", "55", "0", 10, 11, ALL),
    r("MX", "52", "", 10, 10, ALL),
    r_optional_trunk("AR", "54", "0", 10, 11, ALL),
    r("ZA", "27", "0", 9, 9, b"12345678"),
    r("IL", "972", "0", 8, 9, b"23456789"),
    r("TR", "90", "0", 10, 10, b"2345789"),
    r("RU", "7", "8", 10, 10, b"3489"),
    r("AE", "971", "0", 8, 9, b"234679"),
];

pub(crate) fn region(iso: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.iso == iso)
}

/// Assigned country calling codes without a rule above (generic NSN 6..=12 check).
const OTHER_CC: &[u16] = &[
    20, 51, 53, 56, 57, 58, 60, 62, 63, 66, 84, 92, 93, 94, 95, 98, 211, 212, 213, 216, 218, 220, 221, 222, 223, 224,
    225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 248,
    249, 250, 251, 252, 253, 254, 255, 256, 257, 258, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 290, 291, 297,
    298, 299, 350, 354, 355, 356, 357, 359, 370, 371, 372, 373, 374, 375, 376, 377, 378, 380, 381, 382, 383, 385, 386,
    387, 389, 421, 423, 500, 501, 502, 503, 504, 505, 506, 507, 508, 509, 590, 591, 592, 593, 594, 595, 596, 597, 598,
    599, 670, 672, 673, 674, 675, 676, 677, 678, 679, 680, 681, 682, 683, 685, 686, 687, 688, 689, 690, 691, 692, 850,
    853, 855, 856, 880, 886, 960, 961, 962, 963, 964, 965, 966, 967, 968, 970, 973, 974, 975, 976, 977, 992, 993, 994,
    995, 996, 998,
];

pub(crate) const MAX_DIGITS: usize = 17;
const MAX_GROUPS: usize = 10;

/// One digit group of a parsed candidate.
#[derive(Clone, Copy, Default)]
pub(crate) struct Group {
    /// Digits in the group.
    pub len: u8,
    /// Byte offset just after the group (after `)` for a parenthesized one).
    pub end: usize,
    /// The separator byte before the group (0 for none).
    pub sep_before: u8,
    /// Written in parentheses.
    pub paren: bool,
}

/// A written number: digit groups with their separators.
pub(crate) struct Parsed {
    pub digits: [u8; MAX_DIGITS + 8],
    pub nd: usize,
    pub groups: [Group; MAX_GROUPS],
    pub ng: usize,
}

/// Parses groups from `p` (a digit or `(`). Never reads more than ~40 bytes.
pub(crate) fn parse_groups(b: &[u8], mut p: usize) -> Parsed {
    let mut out = Parsed { digits: [0; MAX_DIGITS + 8], nd: 0, groups: [Group::default(); MAX_GROUPS], ng: 0 };
    let mut sep_before = 0u8;
    loop {
        let paren = b.get(p) == Some(&b'(');
        let gs = if paren { p + 1 } else { p };
        let mut q = gs;
        while q < b.len() && b[q].is_ascii_digit() && q - gs <= MAX_DIGITS {
            q += 1;
        }
        let len = q - gs;
        if len == 0 || out.nd + len > MAX_DIGITS + 4 {
            break;
        }
        if paren {
            if b.get(q) != Some(&b')') || len > 5 {
                break;
            }
            q += 1;
        }
        out.digits[out.nd..out.nd + len].copy_from_slice(&b[gs..gs + len]);
        out.nd += len;
        out.groups[out.ng] = Group { len: len as u8, end: q, sep_before, paren };
        out.ng += 1;
        if out.ng == MAX_GROUPS || out.nd > MAX_DIGITS {
            break;
        }
        // The next group: after one separator, or directly after `)` / before `(`.
        let next = b.get(q).copied().unwrap_or(0);
        let after = b.get(q + 1).copied().unwrap_or(0);
        let starts_group = |c: u8| c.is_ascii_digit() || c == b'(';
        if matches!(next, b' ' | b'-' | b'.') && starts_group(after) {
            sep_before = next;
            p = q + 1;
        } else if (paren && next.is_ascii_digit()) || next == b'(' {
            sep_before = 0;
            p = q;
        } else {
            break;
        }
    }
    out
}

/// How a candidate was written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Form {
    /// `+CC ...` or `00CC ...`.
    International,
    /// National format with separators or parentheses.
    National,
    /// A bare digit run (needs a context word).
    Bare,
}

/// An international prefix.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Prefix {
    None,
    /// `+` before the first group.
    Plus,
    /// The first group starts with `00` (still in `Parsed::digits`).
    DoubleZero,
}

/// Validates the first `k` groups of `p`. Returns how the number was written if valid.
pub(crate) fn validate(p: &Parsed, k: usize, prefix: Prefix, regions: &[&'static Region]) -> Option<Form> {
    let groups = &p.groups[..k];
    let nd: usize = groups.iter().map(|g| g.len as usize).sum();
    let digits = &p.digits[..nd];
    // Separators between "body" groups are all the same (the one after a country code,
    // after an area code that follows it, or around a parenthesized group may differ:
    // `+55 16 4728-8018`).
    let mut body_sep = 0u8;
    for (i, g) in groups.iter().enumerate().skip(1) {
        let prev = &groups[i - 1];
        let after_area_code = prefix != Prefix::None && i == 2 && g.sep_before == b' ';
        if g.paren || prev.paren || (prefix != Prefix::None && i == 1) || after_area_code {
            continue;
        }
        if body_sep == 0 {
            body_sep = g.sep_before;
        } else if g.sep_before != body_sep {
            return None;
        }
    }
    // Dots: 415.555.2671, not decimals (52.520008) or version-like numbers.
    if body_sep == b'.' && (k < 3 || groups.iter().any(|g| g.len < 2)) {
        return None;
    }
    // Groups of one digit only right after a country code (+33 6 ..), as a "(0)" trunk
    // or as the NANP "1" (1 415 555 2671): not ISBN-like 0-306-40615-2.
    for (i, g) in groups.iter().enumerate() {
        let first_body = if prefix == Prefix::None { i == 0 } else { i <= 1 };
        if g.len < 2 && !g.paren && !(first_body && (prefix != Prefix::None || p.digits[0] == b'1')) {
            return None;
        }
    }
    if prefix != Prefix::None {
        // Digits without a "(0)" trunk group.
        let mut buf = [0u8; MAX_DIGITS + 8];
        let (mut n, mut pos) = (0, 0);
        for g in groups {
            let len = g.len as usize;
            let gd = &p.digits[pos..pos + len];
            pos += len;
            if g.paren && gd == b"0" {
                continue;
            }
            buf[n..n + len].copy_from_slice(gd);
            n += len;
        }
        let mut d = &buf[..n];
        if prefix == Prefix::DoubleZero {
            // 00CC written compactly is too ambiguous.
            d = match d.strip_prefix(b"00") {
                Some(rest) if k >= 2 => rest,
                _ => return None,
            };
        }
        return valid_international(d).then_some(Form::International);
    }
    // Dates: 25.12.2023, 2023-12-25, 25-12-23.
    let lens = [groups[0].len, groups.get(1).map_or(0, |g| g.len), groups.get(2).map_or(0, |g| g.len)];
    if k == 3 && body_sep != b' ' && matches!(lens, [2, 2, 4] | [4, 2, 2] | [2, 2, 2]) {
        return None;
    }
    let bare = k == 1 && !groups[0].paren;
    for region in regions {
        if valid_national(digits, groups, region) {
            return Some(if bare { Form::Bare } else { Form::National });
        }
    }
    None
}

fn valid_international(d: &[u8]) -> bool {
    if d.len() < 7 || d.len() > 15 || d[0] == b'0' {
        return false;
    }
    for cc_len in 1..=3 {
        let cc = &d[..cc_len];
        let nsn = &d[cc_len..];
        if let Some(region) = REGIONS.iter().find(|r| r.cc.as_bytes() == cc) {
            return valid_nsn(nsn, region);
        }
        let code = cc.iter().fold(0u16, |a, &b| a * 10 + u16::from(b - b'0'));
        if OTHER_CC.contains(&code) {
            return (6..=12).contains(&nsn.len()) && nsn[0] != b'0';
        }
    }
    false
}

fn valid_national(digits: &[u8], groups: &[Group], region: &Region) -> bool {
    if region.nanp {
        let (nsn, groups) = if digits.len() == 11 && digits[0] == b'1' {
            // "1 415 555 2671": the leading 1 is a group of its own (or all compact).
            if groups.len() > 1 && groups[0].len != 1 {
                return false;
            }
            (&digits[1..], if groups.len() > 1 { &groups[1..] } else { groups })
        } else {
            (digits, groups)
        };
        let shape_ok = match groups.len() {
            1 => true,
            2 => groups[0].len == 3 && groups[1].len == 7,
            3 => groups[0].len == 3 && groups[1].len == 3 && groups[2].len == 4,
            _ => false,
        };
        return shape_ok && valid_nsn(nsn, region);
    }
    let nsn = match digits.strip_prefix(region.trunk.as_bytes()) {
        Some(nsn) => nsn,
        // Without its trunk prefix only where that is how numbers are written, and only
        // with its two-digit area code in parentheses: `(16) 4148-3350`.
        None if region.trunk_optional && groups.len() > 1 && groups[0].paren && groups[0].len == 2 => digits,
        None => return false,
    };
    if !region.trunk.is_empty() && groups.len() > 1 && (groups[0].len as usize) < region.trunk.len() {
        return false;
    }
    valid_nsn(nsn, region)
}

fn valid_nsn(nsn: &[u8], region: &Region) -> bool {
    if region.nanp {
        return nsn.len() == 10 && nanp_ok(nsn);
    }
    let len = nsn.len();
    len >= region.min as usize && len <= region.max as usize && region.lead.contains(&nsn[0])
}

/// NXX-NXX-XXXX; area and exchange not N11; not the fictional 555-0100..555-0199.
fn nanp_ok(d: &[u8]) -> bool {
    let n2_9 = |c: u8| (b'2'..=b'9').contains(&c);
    n2_9(d[0])
        && n2_9(d[3])
        && !(d[1] == b'1' && d[2] == b'1')
        && !(d[4] == b'1' && d[5] == b'1')
        && !(&d[3..6] == b"555" && &d[6..8] == b"01")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(s: &str, regions: &[&str]) -> Option<Form> {
        let regions: Vec<_> = regions.iter().map(|r| region(r).unwrap()).collect();
        let b = s.as_bytes();
        let (prefix, start) = if b[0] == b'+' {
            (Prefix::Plus, 1)
        } else if b.starts_with(b"00") {
            (Prefix::DoubleZero, 0)
        } else {
            (Prefix::None, 0)
        };
        let p = parse_groups(b, start);
        if p.groups[p.ng - 1].end != b.len() {
            return None;
        }
        validate(&p, p.ng, prefix, &regions)
    }

    #[test]
    fn international() {
        for s in ["+1 415 555 2671", "+1-415-555-2671", "+1 (415) 555-2671", "+14155552671", "+44 20 7946 0958"] {
            assert_eq!(check(s, &[]), Some(Form::International), "{s}");
        }
        for s in ["+44 (0)20 7946 0958", "+49 30 12345678", "+33 1 23 45 67 89", "0044 20 7946 0958", "+254 712 345678"]
        {
            assert_eq!(check(s, &[]), Some(Form::International), "{s}");
        }
        for s in ["+1 415 555 0123", "+1 115 555 2671", "+44 0 1234", "+999 1234 5678", "+12", "+1 415.555-2671"] {
            assert_eq!(check(s, &[]), None, "{s}");
        }
    }

    #[test]
    fn national() {
        assert_eq!(check("(415) 555-2671", &["US"]), Some(Form::National));
        assert_eq!(check("415.555.2671", &["US"]), Some(Form::National));
        assert_eq!(check("1-415-555-2671", &["US"]), Some(Form::National));
        assert_eq!(check("4155552671", &["US"]), Some(Form::Bare));
        assert_eq!(check("020 7946 0958", &["GB"]), Some(Form::National));
        assert_eq!(check("030 123456", &["DE"]), Some(Form::National));
        assert_eq!(check("06 12 34 56 78", &["FR"]), Some(Form::National));
        // Brazil writes its trunk prefix rarely, and an area code apart from the rest.
        assert_eq!(check("(16) 4148-3350", &["BR"]), Some(Form::National));
        assert_eq!(check("+55 16 4728-8018", &[]), Some(Form::International));
        assert_eq!(check("1641483350", &["BR"]), None, "bare digits are not a Brazilian number");
        assert_eq!(check("020 7946 0958", &["US"]), None);
        assert_eq!(check("415-555-0142", &["US"]), None);
        assert_eq!(check("2024-01-15", &["US", "GB", "DE", "FR", "ES"]), None);
        assert_eq!(check("41-5555-2671", &["US"]), None);
        assert_eq!(check("25.12.2023", &["NO", "DK"]), None);
        assert_eq!(check("2023-12-25", &["NO", "DK"]), None);
        assert_eq!(check("22 12 34 56", &["NO"]), Some(Form::National));
    }
}
