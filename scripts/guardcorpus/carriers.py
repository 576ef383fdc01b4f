"""Carriers: put one value into a realistic piece of text (tool-result shaped).

Produces nothing on its own; used by pii.py (positives and hard negatives) and by
other corpus generators. `embed(value, field, rng)` returns `value` inside a randomly
chosen carrier: JSON object, log line, .env, YAML, CSV row, prose sentence,
HTML/markdown, or code. The filler around the value is deliberately free of anything
PII-like (no person names, e-mail addresses, phone numbers, IP addresses, long digit
runs), so the only sensitive item in the result is `value` itself.

Source: generated here (stdlib only); no third-party data, no licence constraints.
"""

import json
import random

__all__ = ["embed", "KINDS", "filler_timestamp"]

KINDS = ("json", "log", "env", "yaml", "csv", "prose", "markup", "code")

# Human wording for common field names; anything else is derived from the name.
_LABELS = {
    "email": "email address",
    "contact_email": "contact email",
    "billing_email": "billing email",
    "phone": "phone number",
    "mobile": "mobile number",
    "tel": "telephone number",
    "ssn": "social security number",
    "card_number": "card number",
    "pan": "card number",
    "iban": "IBAN",
    "client_ip": "client IP",
    "remote_addr": "remote address",
    "ip": "IP address",
}

_SERVICES = ["billing-api", "auth-svc", "orders", "notifier", "crm-sync", "checkout",
             "profile-service", "ledger", "gateway", "support-desk", "export-worker"]
_LEVELS = ["INFO", "DEBUG", "WARN", "INFO", "INFO", "ERROR"]
_STATUSES = ["active", "pending", "verified", "archived", "queued", "ok"]
_PLANS = ["free", "team", "pro", "enterprise", "trial"]
_COUNTRY_WORDS = ["support ticket", "account record", "customer profile", "invoice",
                  "signup form", "CRM export", "audit entry", "webhook payload"]


def _label(field: str) -> str:
    return _LABELS.get(field, field.replace("_", " "))


def filler_timestamp(rng: random.Random) -> str:
    return "2025-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
        rng.randint(0, 59), rng.randint(0, 59), rng.randint(0, 999))


def _hexid(rng: random.Random, n: int = 12) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _small_id(rng: random.Random) -> int:
    return rng.randint(1, 99999)


def _camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(p.capitalize() for p in rest)


def _json(value, field, rng):
    obj = {"id": _small_id(rng)}
    if rng.random() < 0.5:
        obj["status"] = rng.choice(_STATUSES)
    obj[field if rng.random() < 0.7 else _camel(field)] = value
    if rng.random() < 0.5:
        obj["updated_at"] = filler_timestamp(rng)
    if rng.random() < 0.3:
        obj["plan"] = rng.choice(_PLANS)
    if rng.random() < 0.3:
        obj = {"data": obj, "request_id": _hexid(rng, 16)}
    if rng.random() < 0.5:
        return json.dumps(obj, ensure_ascii=False)
    return json.dumps(obj, ensure_ascii=False, indent=2)


def _log(value, field, rng):
    ts = filler_timestamp(rng)
    svc = rng.choice(_SERVICES)
    lvl = rng.choice(_LEVELS)
    style = rng.randrange(4)
    if style == 0:
        return f"{ts} {lvl} [{svc}] updated record id={_small_id(rng)} {field}={value}"
    if style == 1:
        return json.dumps({"ts": ts, "level": lvl.lower(), "service": svc,
                           "msg": "record updated", field: value}, ensure_ascii=False)
    if style == 2:
        return f"[{ts}] {lvl:<5} {svc}: lookup {field}=\"{value}\" took {rng.randint(1, 900)}ms"
    return f"{ts} {svc}[{rng.randint(100, 9999)}]: {lvl} processing {_label(field)} {value} (attempt {rng.randint(1, 3)})"


def _env(value, field, rng):
    key = field.upper()
    prefix = rng.choice(["", "APP_", "NOTIFY_", "ADMIN_", "DEFAULT_"])
    lines = [f"NODE_ENV={rng.choice(['production', 'staging', 'development'])}",
             f"LOG_LEVEL={rng.choice(['info', 'debug', 'warn'])}",
             f"{prefix}{key}={value}" if rng.random() < 0.7 else f'{prefix}{key}="{value}"',
             f"WORKERS={rng.randint(1, 16)}"]
    head, rest = lines[:2], lines[2:]
    rng.shuffle(head)
    return "\n".join(head[: rng.randint(0, 2)] + rest[: rng.randint(1, 2)])


def _yaml(value, field, rng):
    svc = rng.choice(_SERVICES)
    q = rng.choice(["", '"', "'"])
    if rng.random() < 0.5:
        return f"{field}: {q}{value}{q}\n"
    return (f"{svc.replace('-', '_')}:\n  enabled: {rng.choice(['true', 'false'])}\n"
            f"  {field}: {q}{value}{q}\n  retries: {rng.randint(0, 5)}\n")


def _csv(value, field, rng):
    sep = rng.choice([",", ",", ";", "\t"])
    cols = ["id", field, "status", "plan"]
    vals = [str(_small_id(rng)), value, rng.choice(_STATUSES), rng.choice(_PLANS)]
    if sep != "\t" and sep in value:
        vals[1] = '"' + value + '"'
    k = rng.randint(2, 4)
    order = list(range(k))
    if 1 not in order:
        order[-1] = 1
    header = sep.join(cols[i] for i in order)
    row = sep.join(vals[i] for i in order)
    return row if rng.random() < 0.3 else header + "\n" + row


_PROSE = [
    "The {label} on file is {v}.",
    "Please update the {label} to {v} before the next billing cycle.",
    "Customer asked us to use {v} as the new {label}.",
    "For the {what}, the {label} is {v} and the status is {status}.",
    "Found {v} in the {what}; flagging for review.",
    "{Label}: {v}",
    "I double-checked and the {label} ({v}) matches the {what}.",
    "Sync failed for the {what} with {label} {v}, will retry later.",
]


def _prose(value, field, rng):
    label = _label(field)
    return rng.choice(_PROSE).format(v=value, label=label, Label=label[:1].upper() + label[1:],
                                     what=rng.choice(_COUNTRY_WORDS), status=rng.choice(_STATUSES))


def _markup(value, field, rng):
    label = _label(field)
    style = rng.randrange(4)
    if style == 0:
        return f"<tr><td>{label}</td><td>{value}</td></tr>"
    if style == 1:
        return f'<input type="text" name="{field}" value="{value}">'
    if style == 2:
        return f"| Field | Value |\n|---|---|\n| {label} | `{value}` |"
    return f"- **{label[:1].upper() + label[1:]}:** {value}"


def _code(value, field, rng):
    style = rng.randrange(5)
    var = _camel(field)
    if style == 0:
        return f'const {var} = "{value}";'
    if style == 1:
        return f'{field.upper()} = "{value}"'
    if style == 2:
        return f"user.{field} = '{value}'\nsession.commit()"
    if style == 3:
        return f'assert record["{field}"] == "{value}"'
    return f'let {field} = String::from("{value}");'


_CARRIERS = {"json": _json, "log": _log, "env": _env, "yaml": _yaml, "csv": _csv,
             "prose": _prose, "markup": _markup, "code": _code}


def embed(value: str, field: str, rng: random.Random, kind: str = "") -> str:
    """Return `value` inside a randomly chosen carrier (or the one named by `kind`)."""
    fn = _CARRIERS[kind] if kind else _CARRIERS[rng.choice(KINDS)]
    out = fn(value, field, rng)
    assert value in out, (value, out)
    return out
