//! Checksums and number rules behind the PII detectors, public so other detectors (and
//! user-defined recognizers) reuse them. All functions are total: any input, no panic.

/// Luhn (mod 10) check over the digits of `digits`. Single spaces and dashes between
/// groups are ignored; any other character, or fewer than two digits, fails.
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    let mut count = 0usize;
    for b in digits.bytes().rev() {
        match b {
            b'0'..=b'9' => {
                let mut d = u32::from(b - b'0');
                if count & 1 == 1 {
                    d *= 2;
                    if d > 9 {
                        d -= 9;
                    }
                }
                sum += d;
                count += 1;
            }
            b' ' | b'-' => {}
            _ => return false,
        }
    }
    let check = sum % 10;
    count >= 2 && check == 0
}

/// Luhn over ASCII digits already extracted (no separators).
pub(crate) fn luhn_bytes(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &b) in digits.iter().rev().enumerate() {
        let mut d = u32::from(b.wrapping_sub(b'0'));
        if d > 9 {
            return false;
        }
        if i & 1 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    let check = sum % 10;
    digits.len() >= 2 && check == 0
}

/// ISO 13616 check: the IBAN (spaces ignored, letters case-insensitive) is two letters,
/// two digits and an alphanumeric BBAN, 5..=34 characters, and mod 97 of its rearranged
/// numeric form is 1. Does not check the per-country length; see [`iban_length`] and
/// [`iban_valid`].
pub fn iban_mod97(iban: &str) -> bool {
    let mut buf = [0u8; 34];
    let mut n = 0;
    for b in iban.bytes() {
        if b == b' ' {
            continue;
        }
        if !b.is_ascii_alphanumeric() || n == buf.len() {
            return false;
        }
        buf[n] = b.to_ascii_uppercase();
        n += 1;
    }
    mod97_compact(&buf[..n])
}

/// [`iban_mod97`] over an uppercase compact IBAN.
pub(crate) fn mod97_compact(iban: &[u8]) -> bool {
    if iban.len() < 5
        || iban.len() > 34
        || !iban[0].is_ascii_uppercase()
        || !iban[1].is_ascii_uppercase()
        || !iban[2].is_ascii_digit()
        || !iban[3].is_ascii_digit()
    {
        return false;
    }
    let mut rem = 0u32;
    for &b in iban[4..].iter().chain(&iban[..4]) {
        match b {
            b'0'..=b'9' => rem = (rem * 10 + u32::from(b - b'0')) % 97,
            b'A'..=b'Z' => rem = (rem * 100 + u32::from(b - b'A' + 10)) % 97,
            _ => return false,
        }
    }
    rem == 1
}

/// The IBAN length of a country (ISO 3166 alpha-2, uppercase): all SEPA countries and
/// the other IBAN countries of the SWIFT registry in common use.
pub fn iban_length(country: &str) -> Option<usize> {
    let c = country.as_bytes();
    if c.len() != 2 {
        return None;
    }
    iban_length_bytes([c[0], c[1]])
}

pub(crate) fn iban_length_bytes(cc: [u8; 2]) -> Option<usize> {
    IBAN_LENGTHS.binary_search_by(|(k, _)| k.as_bytes().cmp(&cc[..])).ok().map(|i| IBAN_LENGTHS[i].1 as usize)
}

/// Sorted by country code (tested).
const IBAN_LENGTHS: &[(&str, u8)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// A complete IBAN check: [`iban_mod97`] and the country's length.
pub fn iban_valid(iban: &str) -> bool {
    let compact: String = iban.chars().filter(|c| *c != ' ').collect();
    compact.get(..2).and_then(|cc| iban_length(&cc.to_ascii_uppercase())) == Some(compact.len()) && iban_mod97(&compact)
}

/// A US Social Security number as `AAA-GG-SSSS`, `AAA GG SSSS` or nine digits: area not
/// 000, 666 or 900-999, group not 00, serial not 0000, and not one of the numbers
/// published in advertising (078-05-1120, 219-09-9999).
pub fn ssn_valid(ssn: &str) -> bool {
    let b = ssn.as_bytes();
    let mut d = [0u8; 9];
    match b.len() {
        9 => d.copy_from_slice(b),
        11 if b[3] == b[6] && (b[3] == b'-' || b[3] == b' ') => {
            d[..3].copy_from_slice(&b[..3]);
            d[3..5].copy_from_slice(&b[4..6]);
            d[5..].copy_from_slice(&b[7..]);
        }
        _ => return false,
    }
    d.iter().all(u8::is_ascii_digit) && ssn_digits_valid(&d)
}

/// [`ssn_valid`] over exactly nine ASCII digits.
pub(crate) fn ssn_digits_valid(d: &[u8; 9]) -> bool {
    let num = |s: &[u8]| s.iter().fold(0u32, |a, &b| a * 10 + u32::from(b - b'0'));
    let (area, group, serial) = (num(&d[..3]), num(&d[3..5]), num(&d[5..]));
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && !(area == 78 && group == 5 && serial == 1120)
        && !(area == 219 && group == 9 && serial == 9999)
}

/// A payment card brand, as told by the issuer identification number and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardBrand {
    Visa,
    Mastercard,
    Amex,
    Discover,
    Jcb,
    Diners,
    UnionPay,
    Maestro,
}

/// The brand whose IIN range and length fit `digits` (ASCII digits only), if any.
pub fn card_brand(digits: &[u8]) -> Option<CardBrand> {
    let len = digits.len();
    if !(12..=19).contains(&len) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let p = |n: usize| digits[..n].iter().fold(0u32, |a, &b| a * 10 + u32::from(b - b'0'));
    let (p1, p2, p3, p4) = (p(1), p(2), p(3), p(4));
    let brand = if p1 == 4 && matches!(len, 13 | 16 | 19) {
        CardBrand::Visa
    } else if ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16 {
        CardBrand::Mastercard
    } else if (p2 == 34 || p2 == 37) && len == 15 {
        CardBrand::Amex
    } else if (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65) && len >= 16 {
        CardBrand::Discover
    } else if (3528..=3589).contains(&p4) && len >= 16 {
        CardBrand::Jcb
    } else if ((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39) && len >= 14 {
        CardBrand::Diners
    } else if p2 == 62 && len >= 16 {
        CardBrand::UnionPay
    } else if matches!(p4, 5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761..=6763) {
        // Maestro's published IINs only: its historical 50/56-69 range would take a third
        // of all Luhn-valid digit groups (IBAN bodies, account numbers) for cards.
        CardBrand::Maestro
    } else {
        return None;
    };
    Some(brand)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known() {
        assert!(luhn("4111111111111111"));
        assert!(luhn("4111 1111 1111 1111"));
        assert!(luhn("378282246310005"));
        assert!(!luhn("4111111111111112"));
        assert!(!luhn("4111x111"));
        assert!(!luhn(""));
        assert!(!luhn("0"));
        assert!(luhn_bytes(b"79927398713"));
        assert!(!luhn_bytes(b"79927398710"));
    }

    #[test]
    fn iban_known() {
        assert!(iban_mod97("DE89 3704 0044 0532 0130 00"));
        assert!(iban_valid("DE89370400440532013000"));
        assert!(iban_valid("GB82 WEST 1234 5698 7654 32"));
        assert!(iban_valid("gb82west12345698765432"));
        assert!(iban_valid("FR1420041010050500013M02606"));
        assert!(iban_valid("NL91ABNA0417164300"));
        assert!(!iban_mod97("DE88 3704 0044 0532 0130 00"));
        assert!(!iban_valid("DE89 3704 0044 0532 0130 0"));
        assert!(!iban_mod97("DE8"));
        assert!(!iban_mod97("DÉ89370400440532013000"));
        assert_eq!(iban_length("CH"), Some(21));
        assert_eq!(iban_length("US"), None);
        assert!(IBAN_LENGTHS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn ssn_rules() {
        assert!(ssn_valid("123-45-6789"));
        assert!(ssn_valid("123 45 6789"));
        assert!(ssn_valid("123456789"));
        for bad in ["000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456", "123-00-4567", "123-45-0000"] {
            assert!(!ssn_valid(bad), "{bad}");
        }
        assert!(!ssn_valid("078-05-1120"));
        assert!(!ssn_valid("219-09-9999"));
        assert!(!ssn_valid("123-45 6789"));
        assert!(!ssn_valid("12a-45-6789"));
        assert!(!ssn_valid(""));
    }

    #[test]
    fn card_brands() {
        let b = |s: &str| card_brand(s.as_bytes());
        assert_eq!(b("4111111111111111"), Some(CardBrand::Visa));
        assert_eq!(b("5555555555554444"), Some(CardBrand::Mastercard));
        assert_eq!(b("2223003122003222"), Some(CardBrand::Mastercard));
        assert_eq!(b("378282246310005"), Some(CardBrand::Amex));
        assert_eq!(b("6011111111111117"), Some(CardBrand::Discover));
        assert_eq!(b("3530111333300000"), Some(CardBrand::Jcb));
        assert_eq!(b("30569309025904"), Some(CardBrand::Diners));
        assert_eq!(b("6200000000000005"), Some(CardBrand::UnionPay));
        assert_eq!(b("1705312245123"), None);
        assert_eq!(b("41111111111111"), None);
    }
}
