"""Generated PII positives and hard negatives for evaluating the PII detectors.

Produces, under OUT (the guard-data directory):
  eval/pii.jsonl             positives, one generated valid value in a varied carrier per line:
                             {"text", "labels": ["pii.<kind>"], "source": "generated/pii",
                              "value": <the embedded value>} (+ "region", "format" for phones)
                             kinds: email, phone, ssn, credit_card, iban, ipv4, ipv6 (--per-kind each)
  eval/hard-negatives.jsonl  look-alikes that are NOT PII: {"text", "labels": [],
                             "source": "generated/hard-negatives/<kind>", "value": ...}

Source: generated here with fixed seeds (stdlib + `phonenumbers`, Apache-2.0, which validates
every phone number and every phone-shaped negative). No third-party data; no licence
constraints on the output.

Every line is checked before it is kept: a positive's text must contain no other PII-like
item besides its value, and a negative must contain none at all (valid e-mail on a
non-reserved domain, public IPv4, valid SSN, issuer-prefixed Luhn-valid card number, mod-97
valid IBAN, "+"-prefixed valid phone number; for phone-shaped negatives no valid number in
any of the 12 regions). Rejected candidates are regenerated and counted on stdout.
"""

import argparse
import base64
import collections
import hashlib
import ipaddress
import os
import random
import re
import string
import sys
import uuid

import phonenumbers
from phonenumbers import Leniency, PhoneNumberFormat, PhoneNumberType

from guardcorpus.carriers import embed
from guardcorpus.jsonl import write

REGIONS = ["US", "GB", "DE", "FR", "IN", "BR", "JP", "AU", "CA", "ES", "IT", "NL"]

# ---------------------------------------------------------------- validators


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_complete(partial: str) -> str:
    for c in "0123456789":
        if luhn_ok(partial + c):
            return partial + c
    raise AssertionError


def card_issuer(d: str):
    n = len(d)
    p2, p3, p4, p6 = int(d[:2]), int(d[:3]), int(d[:4]), int(d[:6])
    if d[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16:
        return "mastercard"
    if p2 in (34, 37) and n == 15:
        return "amex"
    if (p4 == 6011 or p2 == 65 or 644 <= p3 <= 649 or 622126 <= p6 <= 622925) and n in (16, 19):
        return "discover"
    if 3528 <= p4 <= 3589 and n in (16, 19):
        return "jcb"
    if (p2 in (36, 38, 39) or 300 <= p3 <= 305) and n in (14, 16):
        return "diners"
    if p2 == 62 and 16 <= n <= 19:
        return "unionpay"
    return None


def ssn_valid(s: str) -> bool:
    m = re.fullmatch(r"(\d{3})-(\d{2})-(\d{4})", s)
    if not m:
        return False
    a, g, sr = m.groups()
    return a != "000" and a != "666" and a[0] != "9" and g != "00" and sr != "0000"


IBAN_SPEC = {  # country: (length, BBAN pattern as (count, class) pairs)
    "DE": (22, [(8, "n"), (10, "n")]),
    "GB": (22, [(4, "bank"), (6, "n"), (8, "n")]),
    "FR": (27, [(5, "n"), (5, "n"), (11, "n"), (2, "n")]),
    "ES": (24, [(4, "n"), (4, "n"), (1, "n"), (1, "n"), (10, "n")]),
    "IT": (27, [(1, "a"), (5, "n"), (5, "n"), (12, "n")]),
    "NL": (18, [(4, "bank"), (10, "n")]),
    "BE": (16, [(3, "n"), (7, "n"), (2, "bekey")]),
    "CH": (21, [(5, "n"), (12, "n")]),
    "AT": (20, [(5, "n"), (11, "n")]),
    "PL": (28, [(8, "n"), (16, "n")]),
    "SE": (24, [(3, "n"), (16, "n"), (1, "n")]),
    "NO": (15, [(4, "n"), (6, "n"), (1, "n")]),
    "DK": (18, [(4, "n"), (9, "n"), (1, "n")]),
    "IE": (22, [(4, "bank"), (6, "n"), (8, "n")]),
    "PT": (25, [(4, "n"), (4, "n"), (11, "n"), (2, "n")]),
    "FI": (18, [(3, "n"), (11, "n")]),
    "LU": (20, [(3, "n"), (13, "n")]),
}
BANKS = {"GB": ["NWBK", "BARC", "LOYD", "HBUK", "MIDL", "CITI", "MONZ", "SRLG"],
         "NL": ["ABNA", "INGB", "RABO", "TRIO", "SNSB", "KNAB"],
         "IE": ["AIBK", "BOFI", "IPBS", "ULSB"]}
IBAN_LEN = {c: v[0] for c, v in IBAN_SPEC.items()}
IBAN_LEN.update({"LI": 21, "CZ": 24, "SK": 24, "HU": 28, "GR": 27, "RO": 24, "HR": 21, "SI": 19,
                 "LT": 20, "LV": 21, "EE": 20, "IS": 26, "MT": 31, "CY": 28, "BG": 22, "MC": 27})


def iban_check_digits(country: str, bban: str) -> str:
    num = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return "%02d" % (98 - int(num) % 97)


def iban_valid(s: str) -> bool:
    s = s.replace(" ", "").upper()
    if len(s) < 15 or not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", s) or IBAN_LEN.get(s[:2]) != len(s):
        return False
    num = "".join(str(int(ch, 36)) for ch in s[4:] + s[:4])
    return int(num) % 97 == 1


RESERVED_DOMAINS = ("example.com", "example.org", "example.net", "localhost", "test", "invalid", "example", "local")


def email_reserved(domain: str) -> bool:
    d = domain.lower().rstrip(".")
    return any(d == r or d.endswith("." + r) for r in RESERVED_DOMAINS)


_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_IPV4_RE = re.compile(r"(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_SSN_RE = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_CARD_RE = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?!\d)")
_IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_IPV6_RE = re.compile(r"(?<![0-9A-Za-z:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Za-z:])")


def pii_hits(text: str, strict_phone: bool = False):
    """PII-like items in text (the checker used to keep the labels honest)."""
    hits = []
    for m in _EMAIL_RE.finditer(text):
        dom = m.group(1)
        tld = dom.rsplit(".", 1)[-1]
        if tld.isalpha() and len(tld) >= 2 and not email_reserved(dom):
            hits.append(("email", m.group(0)))
    for m in _IPV4_RE.finditer(text):
        if all(int(x) <= 255 for x in m.groups()):
            ip = ipaddress.IPv4Address(".".join(str(int(x)) for x in m.groups()))
            if ip.is_global:
                hits.append(("ipv4", m.group(0)))
    for m in _IPV6_RE.finditer(text):
        try:
            ip = ipaddress.IPv6Address(m.group(0))
        except ValueError:
            continue
        if ip.is_global:
            hits.append(("ipv6", m.group(0)))
    for m in _SSN_RE.finditer(text):
        if ssn_valid(m.group(0)):
            hits.append(("ssn", m.group(0)))
    for m in _CARD_RE.finditer(text):
        d = re.sub(r"\D", "", m.group(0))
        if 13 <= len(d) <= 19 and card_issuer(d) and luhn_ok(d):
            hits.append(("credit_card", m.group(0)))
    for m in _IBAN_RE.finditer(text):
        if iban_valid(m.group(0)):
            hits.append(("iban", m.group(0)))
    if "+" in text or strict_phone:
        for m in phonenumbers.PhoneNumberMatcher(text, "US", leniency=Leniency.VALID):
            if m.raw_string.startswith("+"):
                hits.append(("phone", m.raw_string))
    if strict_phone:
        for r in REGIONS:
            for m in phonenumbers.PhoneNumberMatcher(text, r, leniency=Leniency.VALID):
                hits.append(("phone", f"{m.raw_string} ({r})"))
    return hits


# ---------------------------------------------------------------- positive generators

FIRST = ["james", "maria", "wei", "aisha", "lukas", "sofia", "oliver", "chloe", "mateo", "yuki", "priya", "arjun",
         "fatima", "noah", "emma", "liam", "hannah", "pierre", "camille", "giulia", "marco", "lars", "ingrid",
         "sean", "siobhan", "kenji", "haruto", "ana", "joao", "lucas", "isabella", "olga", "dmitri", "zainab",
         "tom", "lea", "jan", "eva", "raj", "mei", "diego", "carmen", "finn", "nora", "ahmed", "leila", "kwame", "amara"]
LAST = ["smith", "garcia", "chen", "khan", "mueller", "rossi", "dubois", "silva", "tanaka", "patel", "sharma",
        "johansson", "obrien", "kowalski", "nguyen", "kim", "martin", "schmidt", "fernandez", "van-dijk",
        "jensen", "novak", "santos", "murphy", "ito", "weber", "bianchi", "moreau", "lopez", "andersen",
        "okafor", "mensah", "haddad", "cohen", "larsen", "fischer", "costa", "reyes", "singh", "takahashi"]
FREEMAIL = ["gmail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "yahoo.com", "yahoo.fr", "icloud.com",
            "proton.me", "protonmail.com", "gmx.de", "web.de", "t-online.de", "orange.fr", "free.fr", "libero.it",
            "virgilio.it", "yandex.ru", "qq.com", "163.com", "naver.com", "uol.com.br", "rediffmail.com",
            "fastmail.com", "zoho.com", "btinternet.com", "live.nl", "ziggo.nl", "bigpond.com", "aol.com", "mail.com"]
CORP_A = ["north", "blue", "bright", "acorn", "silver", "rapid", "summit", "harbor", "pixel", "quantum", "cedar",
          "lumen", "atlas", "nova", "orbit", "vertex", "maple", "ember", "delta", "zenith"]
CORP_B = ["wind", "stack", "labs", "works", "soft", "logistics", "health", "bank", "retail", "systems", "media",
          "cloud", "foods", "energy", "legal", "partners", "analytics", "motors", "travel", "data"]
TLDS = ["com", "io", "co.uk", "de", "fr", "nl", "dev", "ai", "co", "net", "org", "com.au", "es", "it", "ch", "se", "ca", "in", "jp"]


def gen_email(rng):
    f, l = rng.choice(FIRST), rng.choice(LAST)
    style = rng.randrange(9)
    local = [f"{f}.{l}", f"{f}{l}", f"{f[0]}{l}", f"{f}_{l}", f"{f}.{l}+{rng.choice(['news', 'billing', 'github', 'shop'])}",
             f"{f}{rng.randint(1, 99)}", f"{l}.{f[0]}", f"{f}.{l}{rng.randint(70, 2005)}",
             rng.choice(["billing", "support", "hr", "sales", "ops", "accounts", "admin", "jobs", "privacy"])][style]
    if rng.random() < 0.5:
        dom = rng.choice(FREEMAIL)
    else:
        dom = f"{rng.choice(CORP_A)}{rng.choice(['', '-'])}{rng.choice(CORP_B)}.{rng.choice(TLDS)}"
        if rng.random() < 0.15:
            dom = rng.choice(["mail.", "eu.", "corp.", "uk."]) + dom
    e = f"{local}@{dom}"
    if rng.random() < 0.08:
        e = e[0].upper() + e[1:]
    return e


PHONE_FORMATS = [("INTERNATIONAL", PhoneNumberFormat.INTERNATIONAL), ("NATIONAL", PhoneNumberFormat.NATIONAL),
                 ("E164", PhoneNumberFormat.E164)]


def _fictional(region, nsn):
    if region in ("US", "CA") and nsn[3:6] == "555":
        return True
    if region == "GB" and (nsn.startswith("7700900") or nsn.startswith("2079460") or nsn.startswith("1134960")):
        return True
    if region == "AU" and (nsn.startswith("491570") or nsn.startswith("255501")):
        return True
    return False


def gen_phone(rng, region):
    types = [PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE]
    for _ in range(20000):
        t = rng.choice(types)
        ex = phonenumbers.example_number_for_type(region, t)
        if ex is None:
            continue
        nsn = str(ex.national_number)
        # keep at most the first digit or two of the example (the number type's leading
        # digits), randomise the rest, and let the metadata decide; vary the length a little
        # for regions with variable-length numbers (DE, AT-style area codes)
        keep = rng.choice([0, 1, 1, 2])
        length = len(nsn) + (rng.choice([0, 0, 0, 1, -1, 2]) if region in ("DE", "IT", "JP", "BR") else 0)
        cand = nsn[:keep] + "".join(rng.choice(string.digits) for _ in range(length - keep))
        if not cand or cand[0] == "0":
            continue
        num = phonenumbers.parse("+" + str(ex.country_code) + cand)
        if not phonenumbers.is_valid_number(num) or phonenumbers.region_code_for_number(num) != region:
            continue
        if _fictional(region, cand):
            continue
        return num
    raise RuntimeError(f"could not generate a valid phone number for {region}")


SSN_FMT = "%03d-%02d-%04d"


def gen_ssn(rng):
    while True:
        a = rng.randint(1, 899)
        if a != 666:
            break
    s = SSN_FMT % (a, rng.randint(1, 99), rng.randint(1, 9999))
    assert ssn_valid(s)
    return s


CARD_ISSUERS = [  # name, prefix generator, length
    ("visa", lambda r: "4", 16),
    ("mastercard", lambda r: str(r.randint(51, 55)), 16),
    ("mastercard", lambda r: str(r.randint(2221, 2720)), 16),
    ("amex", lambda r: r.choice(["34", "37"]), 15),
    ("discover", lambda r: r.choice(["6011", "65", str(r.randint(644, 649))]), 16),
    ("jcb", lambda r: str(r.randint(3528, 3589)), 16),
    ("diners", lambda r: r.choice(["36", str(r.randint(300, 305))]), 14),
    ("unionpay", lambda r: "62" + r.choice(["0", "1", "3", "4", "5", "8"]), 16),
]
WELL_KNOWN_TEST_CARDS = {"4111111111111111", "4242424242424242", "5555555555554444", "378282246310005",
                         "6011111111111117", "3530111333300000", "30569309025904", "4012888888881881"}


def group_card(d, sep):
    if len(d) == 15:
        parts = [d[:4], d[4:10], d[10:]]
    elif len(d) == 14:
        parts = [d[:4], d[4:10], d[10:]]
    else:
        parts = [d[i:i + 4] for i in range(0, len(d), 4)]
    return sep.join(parts)


def gen_card(rng, issuer_idx):
    name, pre, n = CARD_ISSUERS[issuer_idx]
    while True:
        p = pre(rng)
        d = luhn_complete(p + "".join(rng.choice(string.digits) for _ in range(n - len(p) - 1)))
        if d not in WELL_KNOWN_TEST_CARDS and card_issuer(d):
            break
    sep = rng.choice(["", " ", "-", " "])
    return name, group_card(d, sep) if sep else d


def gen_bban(rng, country):
    out = []
    for cnt, cls in IBAN_SPEC[country][1]:
        if cls == "n":
            out.append("".join(rng.choice(string.digits) for _ in range(cnt)))
        elif cls == "a":
            out.append("".join(rng.choice(string.ascii_uppercase) for _ in range(cnt)))
        elif cls == "bank":
            out.append(rng.choice(BANKS[country]))
        elif cls == "bekey":
            k = int("".join(out)) % 97
            out.append("%02d" % (k or 97))
    return "".join(out)


def gen_iban(rng, country):
    bban = gen_bban(rng, country)
    s = country + iban_check_digits(country, bban) + bban
    assert len(s) == IBAN_SPEC[country][0] and iban_valid(s), s
    return s


def group4(s):
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


def gen_ipv4(rng):
    while True:
        a = ipaddress.IPv4Address(rng.getrandbits(32))
        if a.is_global and not a.is_multicast and str(a).split(".")[0] not in ("0", "255") and str(a).split(".")[-1] not in ("0", "255"):
            return str(a)


def gen_ipv6(rng, form):
    while True:
        groups = [rng.randint(0x2000, 0x3fff)] + [rng.getrandbits(16) for _ in range(7)]
        if form == "compressed":
            start = rng.randint(1, 6)
            run = rng.randint(1, 7 - start)
            for i in range(start, start + run):
                groups[i] = 0
            if run == 1 and rng.random() < 0.5:
                groups[start + 1 if start < 7 else start - 1] = 0
        a = ipaddress.IPv6Address(":".join("%x" % g for g in groups))
        if not a.is_global or a in ipaddress.ip_network("2001:db8::/32"):
            continue
        if form == "exploded":
            return a.exploded
        if form == "compressed":
            if "::" not in a.compressed:
                continue
            return a.compressed
        if "::" in a.compressed:
            continue
        return a.compressed  # eight groups, no zero run: the "full" written form


FIELDS = {
    "email": ["email", "contact_email", "billing_email", "user_email", "reply_to", "owner_email"],
    "phone": ["phone", "mobile", "tel", "contact_phone", "phone_number"],
    "ssn": ["ssn", "social_security_number", "employee_ssn", "applicant_ssn"],
    "credit_card": ["card_number", "pan", "cc_number", "payment_card"],
    "iban": ["iban", "payout_iban", "account_iban", "bank_account"],
    "ipv4": ["client_ip", "remote_addr", "ip", "source_ip", "peer_address"],
    "ipv6": ["client_ip", "remote_addr", "ipv6", "source_ip"],
}


def positives(per_kind, rng, stats):
    rows = []

    def add(kind, value, extra=None):
        for _ in range(50):
            field = rng.choice(FIELDS[kind])
            text = embed(value, field, rng)
            other = pii_hits(text.replace(value, " "))
            if other:
                stats[f"pii/{kind}: carrier rejected"] += 1
                continue
            # the value itself must be found by the checker (sanity of generator + checker)
            found = pii_hits(value) if kind != "phone" else [("phone", value)]
            if kind not in ("phone",) and not any(k == kind for k, _ in found):
                raise AssertionError(f"checker does not recognise generated {kind}: {value!r}")
            row = {"text": text, "labels": [f"pii.{kind}"], "source": "generated/pii", "value": value}
            if extra:
                row.update(extra)
            rows.append(row)
            return
        raise RuntimeError(f"could not find a clean carrier for {kind} {value!r}")

    for i in range(per_kind):
        add("email", gen_email(rng))
    for i in range(per_kind):
        region = REGIONS[i % len(REGIONS)]
        fname, fmt = PHONE_FORMATS[(i // len(REGIONS)) % len(PHONE_FORMATS)]
        num = gen_phone(rng, region)
        value = phonenumbers.format_number(num, fmt)
        assert phonenumbers.is_valid_number(phonenumbers.parse(value, region))
        add("phone", value, {"region": region, "format": fname})
    for i in range(per_kind):
        add("ssn", gen_ssn(rng))
    for i in range(per_kind):
        issuer, value = gen_card(rng, i % len(CARD_ISSUERS))
        add("credit_card", value, {"issuer": issuer})
    countries = sorted(IBAN_SPEC)
    for i in range(per_kind):
        c = countries[i % len(countries)]
        s = gen_iban(rng, c)
        add("iban", group4(s) if rng.random() < 0.5 else s, {"country": c})
    for i in range(per_kind):
        add("ipv4", gen_ipv4(rng))
    forms = ["exploded", "compressed", "full"]
    for i in range(per_kind):
        add("ipv6", gen_ipv6(rng, forms[i % 3]), {"form": forms[i % 3]})
    return rows


# ---------------------------------------------------------------- hard negatives


def _hex(rng, n):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def hn_uuid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4)), rng.choice(["id", "request_id", "trace_id", "session_id", "tenant_id"])


def hn_sha40(rng):
    return _hex(rng, 40), rng.choice(["commit", "sha", "head_sha", "revision"])


def hn_sha7(rng):
    return _hex(rng, 7), rng.choice(["commit", "short_sha", "rev"])


def hn_digest(rng, kind):
    b = rng.getrandbits(256).to_bytes(32, "big")
    h = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256}[kind](b).hexdigest()
    if rng.random() < 0.3:
        h = f"{kind}:{h}" if kind != "md5" else h.upper()
    return h, rng.choice(["checksum", "digest", "etag", "integrity", "hash"])


def hn_luhn_fail(rng):
    while True:
        _, pre, _ = CARD_ISSUERS[rng.randrange(len(CARD_ISSUERS))]
        p = pre(rng)
        d = p + "".join(rng.choice(string.digits) for _ in range(16 - len(p)))
        if not luhn_ok(d):
            break
    sep = rng.choice(["", " ", "-"])
    return (group_card(d, sep) if sep else d), rng.choice(["tracking_number", "reference", "card_number", "account_ref", "barcode"])


def _bad_ssn_parts(rng):
    a, g, s = rng.randint(1, 899), rng.randint(1, 99), rng.randint(1, 9999)
    r = rng.randrange(5)
    if r == 0:
        a = 0
    elif r == 1:
        a = 666
    elif r == 2:
        a = rng.randint(900, 999)
    elif r == 3:
        g = 0
    else:
        s = 0
    return a, g, s


def hn_nine_digit(rng):
    a, g, s = _bad_ssn_parts(rng)
    return "%03d%02d%04d" % (a, g, s), rng.choice(["invoice_no", "batch_id", "bytes", "customer_no", "ref"])


def hn_ssn_invalid(rng):
    a, g, s = _bad_ssn_parts(rng)
    return SSN_FMT % (a, g, s), rng.choice(["ssn", "ref", "case_id", "ssn"])


def hn_iban_bad(rng):
    c = rng.choice(sorted(IBAN_SPEC))
    bban = gen_bban(rng, c)
    good = iban_check_digits(c, bban)
    while True:
        cd = "%02d" % rng.randint(0, 99)
        if cd != good:
            break
    s = c + cd + bban
    assert not iban_valid(s)
    return (group4(s) if rng.random() < 0.5 else s), rng.choice(["iban", "account", "payout_iban"])


def hn_version(rng):
    r = rng.randrange(6)
    if r == 0:
        v = f"{rng.randint(0, 20)}.{rng.randint(0, 40)}.{rng.randint(0, 60)}"
    elif r == 1:
        v = f"v{rng.randint(0, 20)}.{rng.randint(0, 40)}.{rng.randint(0, 60)}-{rng.choice(['rc', 'beta', 'alpha'])}.{rng.randint(1, 9)}"
    elif r == 2:  # four-part, out of IPv4 range: Windows/Chrome style builds
        v = f"{rng.randint(1, 15)}.0.{rng.randint(1000, 26000)}.{rng.randint(0, 5000)}"
    elif r == 3:
        v = f"{rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(256, 999)}.{rng.randint(1, 99)}"
    elif r == 4:
        v = f"{rng.randint(0, 5)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}+build.{rng.randint(1, 9999)}"
    else:
        v = f"{rng.randint(2019, 2026)}.{rng.randint(1, 12)}.{rng.randint(1, 31)}"
    return v, rng.choice(["version", "app_version", "tag", "release"])


def _dt(rng):
    return (rng.randint(2015, 2026), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))


def hn_timestamp(rng):
    y, mo, d, h, mi, s = _dt(rng)
    mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][mo - 1]
    v = rng.choice([f"{y}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z", f"{y}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}.{rng.randint(0, 999999):06d}",
                    f"{d:02d}/{mon}/{y}:{h:02d}:{mi:02d}:{s:02d} +0000", f"{mon} {d:2d} {h:02d}:{mi:02d}:{s:02d}",
                    f"{y}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}+05:30"])
    return v, rng.choice(["created_at", "timestamp", "last_seen", "ts"])


def hn_epoch(rng):
    s = rng.randint(1_400_000_000, 1_800_000_000)
    v = str(s * 1000 + rng.randint(0, 999)) if rng.random() < 0.6 else str(s)
    return v, rng.choice(["epoch_ms", "created", "expires_at", "timestamp"])


def hn_port(rng):
    p = rng.choice([22, 80, 443, 3000, 3306, 5432, 5672, 6379, 8000, 8080, 8443, 9090, 9200, 27017, rng.randint(1024, 65535)])
    v = rng.choice([str(p), f"localhost:{p}", f":{p}", f"0.0.0.0:{p}", f"127.0.0.1:{p}", f"tcp/{p}"])
    return v, rng.choice(["port", "listen", "bind_address", "upstream_port"])


def hn_order_id(rng):
    v = rng.choice([f"ORD-{rng.randint(2019, 2026)}-{rng.randint(0, 999999):06d}", f"#{rng.randint(100000, 99999999)}",
                    f"INV-{rng.randint(2019, 2026)}-{rng.randint(1, 9999):04d}", f"PO{rng.randint(10 ** 7, 10 ** 8 - 1)}",
                    f"{rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}-{rng.randint(1000, 99999)}-{rng.choice(string.ascii_uppercase)}"])
    return v, rng.choice(["order_id", "invoice", "purchase_order", "ticket"])


def hn_price(rng):
    a = rng.uniform(0.5, 250000)
    v = rng.choice([f"${a:,.2f}", f"€{a:,.2f}".replace(",", "X").replace(".", ",").replace("X", "."), f"USD {a:,.2f}",
                    f"£{a:.2f}", f"¥{int(a):,}", f"{a:.2f} EUR", f"CHF {a:,.2f}".replace(",", "'")])
    return v, rng.choice(["price", "total", "amount", "subtotal"])


def hn_data_url(rng):
    raw = bytes(rng.getrandbits(8) for _ in range(rng.randint(1500, 4500)))
    mime = rng.choice(["png", "png", "jpeg", "gif", "webp"])
    head = {"png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
            "gif": b"GIF89a", "webp": b"RIFF\x00\x00\x00\x00WEBPVP8 "}[mime]
    return f"data:image/{mime};base64," + base64.b64encode(head + raw).decode(), rng.choice(["avatar", "thumbnail", "icon", "image"])


def hn_placeholder_email(rng):
    local = rng.choice(["user", "name", "jane.doe", "john.doe", "foo", "admin", "you", "alice", "bob", "someone", "your.name", "test"])
    dom = rng.choice(["example.com", "example.org", "example.net", "test", "localhost", "mail.example.com",
                      "company.example", "domain.invalid", "acme.test", "sub.example.org"])
    return f"{local}@{dom}", rng.choice(["email", "contact_email", "reply_to"])


def hn_placeholder_phone(rng):
    x = rng.randint(0, 99)
    area = rng.choice([202, 212, 310, 415, 312, 617, 800])
    v = rng.choice([f"+1 {area}-555-01{x:02d}", f"({area}) 555-01{x:02d}", f"{area}-555-01{x:02d}", f"555-01{x:02d}",
                    f"+1 ({area}) 555-01{x:02d}", f"+1-{area}-555-01{x:02d}", "+1 XXX-XXX-XXXX", "(XXX) XXX-XXXX", "+44 XXXX XXXXXX"])
    return v, rng.choice(["phone", "tel", "support_phone"])


def hn_placeholder_ssn(rng):
    return rng.choice(["XXX-XX-XXXX", "xxx-xx-xxxx", f"***-**-{rng.randint(0, 9999):04d}", f"XXX-XX-{rng.randint(0, 9999):04d}",
                       "###-##-####", "000-00-0000", "123-45-6789".replace("6789", "XXXX")]), rng.choice(["ssn", "ssn_masked"])


def hn_placeholder_card(rng):
    last = "%04d" % rng.randint(0, 9999)
    return rng.choice(["4111 XXXX XXXX 1111", f"**** **** **** {last}", f"XXXX-XXXX-XXXX-{last}", f"•••• •••• •••• {last}",
                       f"{rng.choice(['4', '5', '3'])}XXX XXXX XXXX {last}", f"ending in {last}", "0000 0000 0000 0000"]), \
        rng.choice(["card", "card_number", "payment_method"])


NPM = ["lodash", "express", "react", "@types/node", "zod", "typescript", "@modelcontextprotocol/sdk", "vite", "axios", "eslint", "@babel/core", "hono"]
PIP = ["requests", "numpy", "pydantic", "fastapi", "uvicorn[standard]", "django", "mcp", "pandas", "httpx", "boto3"]


def hn_package_spec(rng):
    v = f"{rng.randint(0, 25)}.{rng.randint(0, 30)}.{rng.randint(0, 40)}"
    r = rng.randrange(5)
    if r == 0:
        s = f"{rng.choice(NPM)}@{v}"
    elif r == 1:
        s = f"{rng.choice(NPM)}@{rng.choice(['^', '~', ''])}{v}"
    elif r == 2:
        s = f"{rng.choice(PIP)}=={v}"
    elif r == 3:
        s = f"{rng.choice(PIP)}>={v},<{rng.randint(26, 30)}"
    else:
        s = f"npm install {rng.choice(NPM)}@{rng.choice(['latest', 'next', v])}"
    return s, rng.choice(["dependency", "package", "requirement"])


def hn_semver_range(rng):
    a, b, c = rng.randint(0, 20), rng.randint(0, 30), rng.randint(0, 40)
    return rng.choice([f"^{a}.{b}.{c}", f"~{a}.{b}", f">={a}.{b}.{c} <{a + 1}.0.0", f"{a}.x", f"{a}.{b}.{c} - {a}.{b + 2}.0",
                       f"^{a}.{b}.{c} || ^{a + 1}.0.0", f"~={a}.{b}"]), rng.choice(["engines", "range", "peerDependency"])


def hn_hex_color(rng):
    return rng.choice(["#%06x" % rng.getrandbits(24), "#%03x" % rng.getrandbits(12), "#%08X" % rng.getrandbits(32)]), \
        rng.choice(["color", "background", "accent", "border_color"])


def hn_coordinates(rng):
    lat, lon = rng.uniform(-89, 89), rng.uniform(-179, 179)
    return rng.choice([f"{lat:.4f}, {lon:.4f}", f"{lat:.6f},{lon:.6f}", f"POINT({lon:.5f} {lat:.5f})",
                       f"{abs(lat):.3f}°{'N' if lat >= 0 else 'S'} {abs(lon):.3f}°{'E' if lon >= 0 else 'W'}"]), \
        rng.choice(["location", "coords", "geo", "position"])


def hn_isbn(rng):
    if rng.random() < 0.6:
        d = rng.choice(["978", "979"]) + "".join(rng.choice(string.digits) for _ in range(9))
        chk = (10 - sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(d)) % 10) % 10
        d += str(chk)
        v = rng.choice([d, f"{d[:3]}-{d[3]}-{d[4:7]}-{d[7:12]}-{d[12]}", f"ISBN {d[:3]}-{d[3:5]}-{d[5:9]}-{d[9:12]}-{d[12]}"])
    else:
        d = "".join(rng.choice(string.digits) for _ in range(9))
        chk = sum((10 - i) * int(c) for i, c in enumerate(d)) % 11
        chk = (11 - chk) % 11
        d += "X" if chk == 10 else str(chk)
        v = rng.choice([d, f"{d[0]}-{d[1:4]}-{d[4:9]}-{d[9]}", f"ISBN-10 {d}"])
    return v, rng.choice(["isbn", "book_id"])


def _phone_like_valid_anywhere(s):
    for r in REGIONS:
        try:
            n = phonenumbers.parse(s, r)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(n):
            return True
    return False


def hn_phone_invalid(rng):
    for _ in range(1000):
        r = rng.randrange(7)
        if r == 0:  # NANP with area code starting 0/1
            v = f"({rng.randint(0, 1)}{rng.randint(10, 99)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
        elif r == 1:
            v = f"+1 {rng.randint(100, 199)}-{rng.randint(100, 999)}-{rng.randint(0, 9999):04d}"
        elif r == 2:  # too short
            v = f"+44 {rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(10, 99)}"
        elif r == 3:  # too long
            v = f"+49 {rng.randint(100, 999)} {rng.randint(10 ** 9, 10 ** 10 - 1)}"
        elif r == 4:
            v = f"+33 0{rng.randint(0, 9)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
        elif r == 5:  # unassigned country code
            v = f"+{rng.choice([80, 83, 89, 210, 259, 292, 384, 422, 689 + 4, 801, 887, 969])} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
        else:
            v = f"0{rng.randint(0, 9)}{rng.randint(0, 9)}-{rng.randint(0, 99):02d}-{rng.randint(0, 99):02d}"
        if not _phone_like_valid_anywhere(v):
            return v, rng.choice(["phone", "tel", "fax"])
    raise RuntimeError("phone-invalid")


def hn_date(rng):
    y, mo, d, *_ = _dt(rng)
    return rng.choice([f"{y}-{mo:02d}-{d:02d}", f"{d:02d}.{mo:02d}.{y}", f"{mo}/{d}/{y}", f"{y}{mo:02d}{d:02d}",
                       f"{d} {['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][mo - 1]} {y}"]), \
        rng.choice(["date", "due_date", "released", "valid_until"])


def hn_duration(rng):
    h, m, s = rng.randint(0, 99), rng.randint(0, 59), rng.randint(0, 59)
    return rng.choice([f"{h}h{m}m{s}s", f"PT{h}H{m}M", f"{h:02d}:{m:02d}:{s:02d}.{rng.randint(0, 999):03d}", f"{rng.randint(1, 9999)}ms",
                       f"{rng.uniform(0, 100):.3f}s", f"P{rng.randint(1, 30)}D", f"{m}m{s}.{rng.randint(0, 999)}s"]), \
        rng.choice(["duration", "elapsed", "timeout", "uptime"])


def hn_oid(rng):
    return "1.3.6.1." + ".".join(str(rng.randint(0, 9999 if i % 2 else 40)) for i in range(rng.randint(3, 8))), \
        rng.choice(["oid", "mib"])


def hn_git_remote(rng):
    org, repo = rng.choice(["acme", "octo-org", "platform-team", "infra"]), rng.choice(["widgets", "api", "web", "infra-live", "docs"])
    return rng.choice([f"git@github.com:{org}/{repo}.git", f"git@gitlab.com:{org}/{repo}.git", f"ssh://git@bitbucket.org/{org}/{repo}.git",
                       f"git+ssh://git@github.com/{org}/{repo}.git#v{rng.randint(1, 9)}.0.0"]), rng.choice(["repository", "remote", "url"])


HARD = {
    "uuid": hn_uuid, "git-sha40": hn_sha40, "git-sha7": hn_sha7,
    "md5": lambda r: hn_digest(r, "md5"), "sha1": lambda r: hn_digest(r, "sha1"), "sha256": lambda r: hn_digest(r, "sha256"),
    "luhn-fail-16": hn_luhn_fail, "nine-digit-invalid-ssn": hn_nine_digit, "ssn-invalid": hn_ssn_invalid,
    "iban-bad-check": hn_iban_bad, "version": hn_version, "timestamp": hn_timestamp, "epoch": hn_epoch,
    "port": hn_port, "order-id": hn_order_id, "price": hn_price, "data-url": hn_data_url,
    "placeholder-email": hn_placeholder_email, "placeholder-phone": hn_placeholder_phone,
    "placeholder-ssn": hn_placeholder_ssn, "placeholder-card": hn_placeholder_card,
    "package-spec": hn_package_spec, "semver-range": hn_semver_range, "hex-color": hn_hex_color,
    "coordinates": hn_coordinates, "isbn": hn_isbn, "phone-invalid": hn_phone_invalid, "date": hn_date,
    "duration": hn_duration, "oid": hn_oid, "git-ssh-remote": hn_git_remote,
}
# kinds whose look-alike is the point and which the checker would (rightly) flag by pattern
EXEMPT = {"placeholder-phone": {"phone"}, "git-ssh-remote": {"email"}}
STRICT_PHONE = {"phone-invalid", "nine-digit-invalid-ssn", "luhn-fail-16", "epoch", "isbn"}


def hard_negatives(per_kind, rng, stats):
    rows = []
    seen = set()
    for kind in HARD:
        got, tries = 0, 0
        while got < per_kind:
            tries += 1
            if tries > per_kind * 50:
                raise RuntimeError(f"hard negatives: cannot generate enough clean {kind}")
            value, field = HARD[kind](rng)
            text = embed(value, field, rng) if rng.random() < 0.85 else value
            if text in seen:
                stats[f"hard/{kind}: duplicate"] += 1
                continue
            hits = [h for h in pii_hits(text, strict_phone=kind in STRICT_PHONE) if h[0] not in EXEMPT.get(kind, ())]
            if hits:
                stats[f"hard/{kind}: rejected ({hits[0][0]})"] += 1
                continue
            seen.add(text)
            rows.append({"text": text, "labels": [], "source": f"generated/hard-negatives/{kind}", "value": value})
            got += 1
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-kind", type=int, default=400)
    ap.add_argument("--hard-per-kind", type=int, default=80)
    args = ap.parse_args()
    stats = collections.Counter()

    pos = positives(args.per_kind, random.Random(20250101), stats)
    random.Random(1).shuffle(pos)
    neg = hard_negatives(args.hard_per_kind, random.Random(20250102), stats)
    random.Random(2).shuffle(neg)
    pp = os.path.join(args.out, "eval", "pii.jsonl")
    pn = os.path.join(args.out, "eval", "hard-negatives.jsonl")
    write(pp, pos)
    write(pn, neg)
    c = collections.Counter(r["labels"][0] for r in pos)
    print(f"  wrote {pp}: {len(pos)} lines ({', '.join(f'{k} {v}' for k, v in sorted(c.items()))})")
    regions = collections.Counter((r["region"], r["format"]) for r in pos if "region" in r)
    print("  phones by region: " + ", ".join(f"{r} {sum(v for (rr, _), v in regions.items() if rr == r)}" for r in REGIONS)
          + "; formats: " + ", ".join(f"{f} {sum(v for (_, ff), v in regions.items() if ff == f)}" for f, _ in PHONE_FORMATS))
    print(f"  wrote {pn}: {len(neg)} lines ({len(HARD)} kinds x {args.hard_per_kind}, all labels [])")
    if stats:
        print("  checker rejections (regenerated): " + ", ".join(f"{k} {v}" for k, v in sorted(stats.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
