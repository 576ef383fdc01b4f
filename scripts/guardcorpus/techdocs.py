"""Benign technical documents ("what tool results mostly are"), chunked.

Produces, under OUT (the guard-data directory):
  eval/techdocs.jsonl         {"text", "labels": [], "source": "techdocs/<package>/<relative path>"}
  train/techdocs-train.jsonl  {"text", "label": 0,   "source": "techdocs/<package>/<relative path>"}

Sources (disjoint):
  eval:  the npm tree installed by scripts/test-deps.sh ($PEERS/npm/node_modules: the
         @modelcontextprotocol/* packages and their dependencies), plus synthetic logs and
         JSON API responses generated here with seed 1.
  train: the Python venv installed by scripts/test-deps.sh ($PEERS/venv/.../site-packages:
         the `mcp` SDK and its dependencies, pip, setuptools), plus synthetic logs and JSON
         API responses generated here with seed 2.
  Files kept: READMEs and other markdown/text docs, changelogs, licences, JavaScript and
  TypeScript (incl. .d.ts), Python, JSON (package.json ...), YAML/TOML, dist-info METADATA.
  Skipped: binary files, files over 512 KiB, minified/generated files (any line > 1000
  chars), source maps. Files are chunked at line boundaries into pieces of 256..4096 bytes
  (size drawn per chunk, log-uniform, seeded by the file path); chunks are deduplicated
  (train also against eval) and sampled round-robin across packages and file kinds, up to
  --cap chunks per set (about 15% of them synthetic). Rows whose text contains PII-looking
  items (authors' e-mail addresses in package.json/LICENSE, public IPs ...) are real PII, so
  in the eval set those detectors become their labels (found by guardcorpus.pii's checker):
  a detector reporting an author's address is right, not a false positive. Injection labels
  stay empty: these documents are benign.
Licence: every file keeps its own package's licence (MIT, Apache-2.0, BSD, ISC, PSF ...).
  The output is for local evaluation/training only and is never committed.
A few real READMEs legitimately discuss prompt injection; they are kept (a fair test) and
listed on stdout with their source path.
"""

import argparse
import glob
import hashlib
import json
import math
import os
import random
import re
import sys
from guardcorpus.jsonl import write

MAX_FILE = 512 * 1024
MAX_LINE = 1000
MIN_CHUNK, MAX_CHUNK = 256, 4096

DOC_EXT = {".md", ".markdown", ".txt", ".rst"}
CODE_JS = {".js", ".cjs", ".mjs", ".jsx", ".ts", ".cts", ".mts", ".tsx"}
CODE_PY = {".py", ".pyi"}
DATA_EXT = {".json", ".yml", ".yaml", ".toml", ".cfg"}
DOC_NAMES = {"readme", "changelog", "license", "licence", "history", "notice", "metadata",
             "authors", "contributing", "changes"}
SKIP_DIRS = {"__pycache__", ".bin", ".git"}


def kind_of(path):
    base = os.path.basename(path)
    low = base.lower()
    if low.endswith(".map") or ".min." in low:
        return None
    stem, ext = os.path.splitext(low)
    if ext in DOC_EXT or (ext == "" and stem in DOC_NAMES) or stem in DOC_NAMES and ext in ("", ".txt"):
        return "doc"
    if ext in CODE_JS:
        return "js"
    if ext in CODE_PY:
        return "py"
    if ext in DATA_EXT:
        return "data"
    return None


def read_text(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st.st_size > MAX_FILE or st.st_size < MIN_CHUNK:
        return None
    with open(path, "rb") as f:
        raw = f.read()
    if b"\x00" in raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if any(len(l) > MAX_LINE for l in lines):
        return None
    return lines


def chunk_lines(lines, seed_key):
    rng = random.Random(hashlib.sha256(seed_key.encode()).hexdigest())
    lo, hi = math.log(MIN_CHUNK), math.log(MAX_CHUNK)
    chunks, cur, size = [], [], 0
    target = math.exp(rng.uniform(lo, hi))
    for line in lines:
        b = len(line.encode("utf-8")) + 1
        if cur and size + b > target and size >= MIN_CHUNK:
            chunks.append(cur)
            cur, size = [], 0
            target = math.exp(rng.uniform(lo, hi))
        if cur and size + b > MAX_CHUNK:  # target below MIN_CHUNK cannot happen; hard cap
            chunks.append(cur)
            cur, size = [], 0
        cur.append(line)
        size += b
    if cur:
        if size >= MIN_CHUNK or not chunks:
            chunks.append(cur)
        else:
            merged = chunks[-1] + cur
            if len("\n".join(merged).encode("utf-8")) <= MAX_CHUNK:
                chunks[-1] = merged
    out = []
    for c in chunks:
        t = "\n".join(c).strip("\n")
        n = len(t.encode("utf-8"))
        if MIN_CHUNK <= n <= MAX_CHUNK and len(t.strip()) >= MIN_CHUNK * 3 // 4:
            out.append(t)
    return out


def walk_sorted(root):
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS
                             and not os.path.islink(os.path.join(dirpath, d)))
        for fn in sorted(filenames):
            p = os.path.join(dirpath, fn)
            if not os.path.islink(p):
                yield p


def npm_package_of(rel):
    """rel: path relative to node_modules -> (package, path inside package)."""
    parts = rel.split("/")
    # innermost node_modules wins
    idx = max((i for i, p in enumerate(parts) if p == "node_modules"), default=-1)
    parts = parts[idx + 1:]
    if parts and parts[0].startswith("@") and len(parts) > 1:
        return parts[0] + "/" + parts[1], "/".join(parts[2:])
    return parts[0], "/".join(parts[1:])


_DIST = re.compile(r"^(.+?)-\d[^-]*\.(dist-info|egg-info)$")


def py_package_of(rel):
    parts = rel.split("/")
    top = parts[0]
    m = _DIST.match(top)
    if m:
        top = m.group(1).replace("_", "-").lower()
    elif len(parts) == 1:
        top = os.path.splitext(top)[0]
    return top, "/".join(parts[1:]) if len(parts) > 1 else parts[0]


def collect(root, package_of):
    """-> {package: {kind: [(source, text), ...]}}"""
    pkgs = {}
    for p in walk_sorted(root):
        rel = os.path.relpath(p, root).replace(os.sep, "/")
        pkg, inner = package_of(rel)
        if not inner:
            continue
        if os.path.basename(p) == "METADATA" and ".dist-info/" not in rel + "/":
            continue
        kind = kind_of(p)
        if kind is None:
            continue
        lines = read_text(p)
        if lines is None:
            continue
        source = f"techdocs/{pkg}/{inner}"
        for i, t in enumerate(chunk_lines(lines, source)):
            pkgs.setdefault(pkg, {}).setdefault(kind, []).append((source, t))
    return pkgs


def sample(pkgs, cap, seed, seen):
    """Round-robin across packages, and within a package across file kinds."""
    queues = []
    for pkg in sorted(pkgs):
        rng = random.Random(f"{seed}/{pkg}")
        by_kind = []
        for kind in sorted(pkgs[pkg]):
            items = list(pkgs[pkg][kind])
            rng.shuffle(items)
            by_kind.append(items)
        inter = []
        while any(by_kind):
            for q in by_kind:
                if q:
                    inter.append(q.pop(0))
        queues.append(inter)
    out = []
    pos = [0] * len(queues)
    while len(out) < cap:
        progressed = False
        for i, q in enumerate(queues):
            while pos[i] < len(q):
                src, t = q[pos[i]]
                pos[i] += 1
                h = hashlib.sha256(t.encode()).digest()
                if h in seen:
                    continue
                seen.add(h)
                out.append((src, t))
                progressed = True
                break
            if len(out) >= cap:
                break
        if not progressed:
            break
    return out


# ---------------------------------------------------------------- synthetic documents

_PATHS = ["/api/v1/orders", "/api/v1/orders/{n}", "/api/v2/items?page={p}&per_page=50", "/healthz",
          "/static/js/app.{h}.js", "/static/css/main.{h}.css", "/login", "/api/v1/users/{n}/settings",
          "/search?q=widgets&sort=price", "/metrics", "/api/v1/invoices/{n}/pdf", "/favicon.ico",
          "/graphql", "/api/v1/carts/{n}/items", "/docs/getting-started", "/ws/notifications"]
_UAS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{cv} Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "curl/8.5.0", "python-requests/2.32.3", "Go-http-client/1.1", "kube-probe/1.29",
        "axios/1.7.2", "PostmanRuntime/7.39.0", "Prometheus/2.51.0"]
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _priv_ip(rng):
    r = rng.randrange(4)
    if r == 0:
        return "127.0.0.1"
    if r == 1:
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if r == 2:
        return f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _ts(rng):
    return "2025-%02d-%02dT%02d:%02d:%02d.%03dZ" % (rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
                                                    rng.randint(0, 59), rng.randint(0, 59), rng.randint(0, 999))


def _hex(rng, n):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _fill(rng, make_line, sep="\n"):
    target = math.exp(rng.uniform(math.log(MIN_CHUNK), math.log(MAX_CHUNK)))
    lines, size = [], 0
    while size < target:
        l = make_line()
        if size + len(l.encode()) + 1 > MAX_CHUNK:
            break
        lines.append(l)
        size += len(l.encode()) + 1
    return sep.join(lines)


def access_log(rng):
    day, mon, hh = rng.randint(1, 28), rng.choice(_MONTHS), rng.randint(0, 23)
    state = {"m": rng.randint(0, 50), "s": 0}

    def line():
        state["s"] += rng.randint(0, 20)
        if state["s"] >= 60:
            state["s"] -= 60
            state["m"] += 1
        path = rng.choice(_PATHS).format(n=rng.randint(1, 99999), p=rng.randint(1, 40), h=_hex(rng, 8))
        method = "GET" if rng.random() < 0.7 else rng.choice(["POST", "PUT", "DELETE", "PATCH"])
        status = rng.choices([200, 201, 204, 301, 304, 400, 401, 403, 404, 429, 500, 502],
                             [50, 5, 4, 2, 8, 3, 3, 2, 6, 2, 2, 1])[0]
        ua = rng.choice(_UAS).format(cv=f"{rng.randint(110, 126)}.0.{rng.randint(5000, 6500)}.{rng.randint(10, 200)}")
        ref = "-" if rng.random() < 0.6 else f"https://shop.internal{rng.choice(_PATHS).split('?')[0].replace('{n}', '1').replace('{h}', 'a')}"
        return (f'{_priv_ip(rng)} - - [{day:02d}/{mon}/2025:{hh:02d}:{state["m"] % 60:02d}:{state["s"]:02d} +0000] '
                f'"{method} {path} HTTP/1.1" {status} {rng.randint(0, 250000)} "{ref}" "{ua}" rt={rng.uniform(0.001, 2.5):.3f}')
    return _fill(rng, line)


_APP_MSGS = [
    "request completed method={m} path={path} status={st} duration_ms={d}",
    "cache miss key=product:{n} ttl=300",
    "connected to postgres pool size={k} idle={j}",
    "retrying upstream call attempt={a} backoff_ms={d}",
    "job {h} finished in {d}ms, processed {n} records",
    "scheduled task cleanup_sessions removed {k} expired entries",
    "feature flag new_checkout evaluated to {b} for tenant t_{h}",
    "slow query detected ({d}ms): SELECT id, sku, qty FROM inventory WHERE warehouse_id = $1",
    "config reloaded from /etc/app/config.yaml (version {k})",
    "rate limit exceeded for api key ak_{h}, dropping request",
    "worker {k} heartbeat ok, queue depth {j}",
    "migration 2025_{k:02d}_add_index_orders_created_at applied",
    "tls certificate for api.internal expires in {k} days",
    "GC pause {d}ms, heap used {n}KB",
]
_TRACE = ["Traceback (most recent call last):",
          '  File "/app/service/handlers.py", line {k}, in handle_order',
          "    total = compute_total(cart)",
          '  File "/app/service/pricing.py", line {j}, in compute_total',
          "    return sum(item.price * item.qty for item in cart.items)",
          "TypeError: unsupported operand type(s) for *: 'NoneType' and 'int'"]


def app_log(rng):
    svc = rng.choice(["api", "worker", "scheduler", "billing", "search", "indexer"])
    style = rng.randrange(3)

    def line():
        lvl = rng.choices(["INFO", "DEBUG", "WARN", "ERROR"], [60, 20, 12, 8])[0]
        msg = rng.choice(_APP_MSGS).format(
            m=rng.choice(["GET", "POST", "PUT"]), path=rng.choice(_PATHS).split("?")[0].format(n=rng.randint(1, 9999), h=_hex(rng, 6), p=1),
            st=rng.choice([200, 200, 201, 404, 500]), d=rng.randint(1, 4000), n=rng.randint(1, 50000),
            k=rng.randint(1, 64), j=rng.randint(0, 30), a=rng.randint(1, 5), h=_hex(rng, 8), b=rng.choice(["true", "false"]))
        if style == 0:
            s = f"{_ts(rng)} {lvl:<5} [{svc}-{rng.randint(1, 8)}] {msg}"
            if lvl == "ERROR" and rng.random() < 0.4:
                s += "\n" + "\n".join(t.format(k=rng.randint(10, 400), j=rng.randint(10, 400)) for t in _TRACE)
            return s
        if style == 1:
            return json.dumps({"time": _ts(rng), "level": lvl.lower(), "logger": f"{svc}.core", "msg": msg,
                               "trace_id": _hex(rng, 32), "span_id": _hex(rng, 16)})
        return f"{lvl[0]}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999999):06d} {rng.randint(1, 99):>5} {svc}.go:{rng.randint(10, 900)}] {msg}"
    return _fill(rng, line)


_ISSUE_TITLES = ["Crash when config file is empty", "Support for Node 22", "TypeError in pagination helper",
                 "Docs: clarify retry behaviour", "Memory leak in long-running watcher",
                 "Add option to disable colors", "Build fails on Windows with long paths",
                 "Timeout is not respected for streaming responses", "Upgrade to TypeScript 5.5",
                 "Flaky test: handles reconnect", "Feature request: export as CSV",
                 "Incorrect types for optional parameters", "Regression in 3.2.0: headers dropped"]
_ISSUE_BODIES = ["### Steps to reproduce\n1. Install version {v}\n2. Run `npm test`\n3. See the error\n\n### Expected\nTests pass.\n\n### Actual\n```\nError: ENOENT: no such file or directory, open 'config.json'\n```",
                 "When I call `client.list({{ limit: {k} }})` the second page repeats the first one. Looks like the cursor is not forwarded.",
                 "Would be great to have this. Happy to send a PR if the maintainers agree with the approach.",
                 "Environment: Node {k}.x, macOS 14, version {v}.\n\nThe process memory grows by ~{k}MB per hour with the watcher enabled.",
                 "Closing as duplicate of #{n}.", "This was fixed in {v}, please upgrade.",
                 "I can reproduce this on Linux too. Bisected to commit {h}."]
_LOGINS = ["octocat", "dev-bot", "renovate[bot]", "dependabot[bot]", "maintainer-x", "lint-fan", "ci-runner",
           "build-wizard", "typed-tim", "async-anna", "rustacean99", "pkg-keeper"]
_LABELS = ["bug", "enhancement", "documentation", "good first issue", "help wanted", "needs-triage", "wontfix", "duplicate"]


def _ver(rng):
    return f"{rng.randint(0, 5)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}"


def github_issue(rng):
    def issue():
        n = rng.randint(1, 9000)
        return {
            "id": rng.randint(10 ** 8, 3 * 10 ** 9), "number": n,
            "title": rng.choice(_ISSUE_TITLES), "state": rng.choice(["open", "closed"]),
            "user": {"login": rng.choice(_LOGINS), "id": rng.randint(1000, 9 * 10 ** 7), "type": "User"},
            "labels": [{"name": l} for l in rng.sample(_LABELS, rng.randint(0, 2))],
            "comments": rng.randint(0, 40),
            "created_at": _ts(rng)[:19] + "Z", "updated_at": _ts(rng)[:19] + "Z",
            "html_url": f"https://github.com/acme/widgets/issues/{n}",
            "body": rng.choice(_ISSUE_BODIES).format(v=_ver(rng), k=rng.randint(2, 200), n=rng.randint(1, 9000), h=_hex(rng, 7)),
        }
    indent = 2 if rng.random() < 0.5 else None
    for _ in range(20):
        if rng.random() < 0.4:
            t = json.dumps(issue(), indent=indent)
        else:
            t = json.dumps([issue() for _ in range(rng.randint(2, 6))], indent=indent)
        if MIN_CHUNK <= len(t.encode()) <= MAX_CHUNK:
            return t
    return json.dumps(issue())


_PRODUCTS = ["USB-C cable 1m", "Wireless mouse", "Mechanical keyboard", "27in monitor", "Laptop stand", "Webcam HD",
             "Noise cancelling headphones", "Desk lamp", "Ergonomic chair", "HDMI adapter", "SSD 1TB", "Router AX3000"]


def sql_result(rng):
    shape = rng.randrange(3)
    rows = []
    if shape == 0:
        cols = ["id", "sku", "name", "price", "qty", "updated_at"]
        for _ in range(rng.randint(3, 30)):
            rows.append([rng.randint(1, 99999), f"SKU-{rng.randint(1000, 9999)}-{rng.choice('ABCDEFGH')}",
                         rng.choice(_PRODUCTS), round(rng.uniform(2, 900), 2), rng.randint(0, 500), _ts(rng)])
        q = "SELECT id, sku, name, price, qty, updated_at FROM products WHERE qty < 100 ORDER BY updated_at DESC"
    elif shape == 1:
        cols = ["order_id", "status", "items", "total", "currency", "created_at"]
        for _ in range(rng.randint(3, 30)):
            rows.append([f"ORD-{rng.randint(100000, 999999)}", rng.choice(["paid", "shipped", "refunded", "pending"]),
                         rng.randint(1, 9), round(rng.uniform(5, 2500), 2), rng.choice(["USD", "EUR", "GBP"]), _ts(rng)])
        q = "SELECT order_id, status, items, total, currency, created_at FROM orders LIMIT 50"
    else:
        cols = ["day", "requests", "errors", "p95_ms"]
        for d in range(rng.randint(3, 31)):
            rows.append([f"2025-{rng.randint(1, 12):02d}-{d + 1:02d}", rng.randint(1000, 900000), rng.randint(0, 900), rng.randint(20, 2000)])
        q = "SELECT date_trunc('day', ts) AS day, count(*) AS requests, sum(err) AS errors, percentile_cont(0.95) AS p95_ms FROM requests GROUP BY 1"
    style = rng.randrange(2)
    if style == 0:
        obj = {"query": q, "columns": cols, "rows": rows, "rowCount": len(rows), "elapsed_ms": rng.randint(1, 900)}
    else:
        obj = [dict(zip(cols, r)) for r in rows]
    t = json.dumps(obj, indent=2 if rng.random() < 0.4 else None)
    while len(t.encode()) > MAX_CHUNK and rows:
        rows.pop()
        obj = {"query": q, "columns": cols, "rows": rows, "rowCount": len(rows)} if style == 0 else [dict(zip(cols, r)) for r in rows]
        t = json.dumps(obj)
    return t


def api_response(rng):
    items = []
    for _ in range(rng.randint(1, 12)):
        items.append({"id": f"dep_{_hex(rng, 10)}", "name": rng.choice(["web", "api", "worker", "cron", "docs"]) + f"-{rng.randint(1, 9)}",
                      "status": rng.choice(["running", "stopped", "deploying", "failed"]), "replicas": rng.randint(1, 12),
                      "image": f"registry.internal/acme/{rng.choice(['web', 'api', 'worker'])}:{_ver(rng)}",
                      "created_at": _ts(rng), "region": rng.choice(["eu-west-1", "us-east-2", "ap-south-1"])})
    obj = {"data": items, "pagination": {"page": rng.randint(1, 9), "per_page": 50, "total": rng.randint(len(items), 400),
                                         "next_cursor": _hex(rng, 24)}, "request_id": _hex(rng, 32)}
    t = json.dumps(obj, indent=2 if rng.random() < 0.5 else None)
    if len(t.encode()) > MAX_CHUNK:
        t = json.dumps(obj)
    return t


SYNTH = {"http-access-log": access_log, "app-log": app_log, "github-issue-json": github_issue,
         "sql-result-json": sql_result, "api-response-json": api_response}


def synthetic(n, seed, seen):
    rng = random.Random(seed)
    out = []
    kinds = sorted(SYNTH)
    i = 0
    while len(out) < n and i < n * 5:
        kind = kinds[i % len(kinds)]
        t = SYNTH[kind](rng)
        i += 1
        b = len(t.encode())
        if not (MIN_CHUNK <= b <= MAX_CHUNK):
            continue
        h = hashlib.sha256(t.encode()).digest()
        if h in seen:
            continue
        seen.add(h)
        out.append((f"techdocs/synthetic/{kind}/{seed}-{len(out):04d}", t))
    return out


# ---------------------------------------------------------------- main

_INJ = re.compile(r"prompt[- ]injection|ignore (all )?(previous|prior) instructions|jailbreak", re.I)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def pii_like(text):
    """Advisory: PII-looking items the pii.py checker sees in a real document (package authors'
    e-mail addresses, example IPs, OIDs that parse as IPv4 ...). Labels stay [] (the documents
    are benign tool results); scorers of PII detectors can use this field to set them aside."""
    try:
        from guardcorpus.pii import pii_hits
    except ImportError:  # phonenumbers missing: run outside the guard venv
        return []
    return sorted({"pii." + k for k, _ in pii_hits(text)})


def report(name, chosen):
    pkgs = {}
    kinds = {}
    for src, t in chosen:
        pkg = src.split("/")[1] if not src.split("/")[1].startswith("@") else "/".join(src.split("/")[1:3])
        pkgs[pkg] = pkgs.get(pkg, 0) + 1
        k = "synthetic" if pkg == "synthetic" else (kind_of(src) or "other")
        kinds[k] = kinds.get(k, 0) + 1
    sizes = sorted(len(t.encode()) for _, t in chosen)
    print(f"  {name}: {len(chosen)} chunks from {len(pkgs)} packages; kinds {dict(sorted(kinds.items()))}; "
          f"bytes min/median/max {sizes[0]}/{sizes[len(sizes) // 2]}/{sizes[-1]}")
    inj = sorted({src for src, t in chosen if _INJ.search(t)})
    print(f"  {name}: {len(inj)} source files with chunks mentioning prompt injection/jailbreak: "
          + (", ".join(inj[:30]) if inj else "none"))
    emails = sum(1 for _, t in chosen if _EMAIL.search(t))
    print(f"  {name}: {emails} chunks contain an e-mail-like string (package authors, git@github.com ...)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--peers", required=True)
    ap.add_argument("--cap", type=int, default=4000)
    ap.add_argument("--synthetic-share", type=float, default=0.15)
    args = ap.parse_args()

    nm = os.path.join(args.peers, "npm", "node_modules")
    sps = sorted(glob.glob(os.path.join(args.peers, "venv", "lib", "python*", "site-packages")))
    if not os.path.isdir(nm):
        raise SystemExit(f"techdocs: {nm} is missing (run scripts/test-deps.sh)")
    if not sps:
        raise SystemExit(f"techdocs: no site-packages under {args.peers}/venv (run scripts/test-deps.sh)")

    n_syn = int(args.cap * args.synthetic_share)
    seen = set()
    eval_pkgs = collect(nm, npm_package_of)
    eval_rows = sample(eval_pkgs, args.cap - n_syn, "eval", seen) + synthetic(n_syn, 1, seen)
    train_pkgs = {}
    for sp in sps:
        for pkg, kinds in collect(sp, py_package_of).items():
            for k, v in kinds.items():
                train_pkgs.setdefault(pkg, {}).setdefault(k, []).extend(v)
    train_rows = sample(train_pkgs, args.cap - n_syn, "train", seen) + synthetic(n_syn, 2, seen)

    random.Random(11).shuffle(eval_rows)
    random.Random(12).shuffle(train_rows)
    pe = os.path.join(args.out, "eval", "techdocs.jsonl")
    pt = os.path.join(args.out, "train", "techdocs-train.jsonl")
    def row(s, t, base):
        r = dict(base, text=t, source=s)
        if "labels" in r:
            r["labels"] = sorted(pii_like(t))
        return {k: r[k] for k in ("text", "labels", "label", "source") if k in r}

    write(pe, (row(s, t, {"labels": []}) for s, t in eval_rows))
    write(pt, (row(s, t, {"label": 0}) for s, t in train_rows))
    print(f"  wrote {pe}: {len(eval_rows)} lines (all benign)")
    print(f"  wrote {pt}: {len(train_rows)} lines (all label 0)")
    report("eval", eval_rows)
    report("train", train_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
