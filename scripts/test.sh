#!/usr/bin/env bash
# The whole test suite: installs the test peers, then runs every test, including the
# ones against third-party MCP clients and servers (marked `#[ignore]` so a plain
# `cargo test` stays fast and offline).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-deps.sh
cargo test --workspace -- --include-ignored
