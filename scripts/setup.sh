#!/usr/bin/env bash
# Sets up everything SEV needs on this machine. Idempotent: quick when all is already there.
#   scripts/setup.sh          Python environment for running SEV (the demo)
#   scripts/setup.sh --dev    ... plus test tools: Chromium, Redis, Graphviz, the Go-built
#                             MongoDB-wire server (FerretDB), axe-core (tests/a11y)
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1
PYTHON=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
# The exact versions the suite passed with (scripts/lock.sh writes them), then SEV itself.
lock=requirements.lock
[ "$dev" = 1 ] && lock=requirements-dev.lock
stamp=".venv/.installed-$lock"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
  echo "setup: installing Python packages from $lock (a minute or two the first time)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$lock"
  .venv/bin/python -m pip install --quiet --no-deps -e .
  touch "$stamp"
fi

[ "$dev" = 1 ] || exit 0

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v dot >/dev/null 2>&1 || need+=(graphviz)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v node >/dev/null 2>&1 || need+=(nodejs)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages with apt-get: ${need[*]} (a few minutes)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  # apt chatters on stderr even when all goes well (debconf, dpkg notes): its words are shown
  # only when it fails.
  if ! apt_log=$($sudo apt-get update -qq 2>&1 &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" 2>&1); then
    printf '%s\n' "$apt_log" >&2
    echo "setup: apt-get failed (above)" >&2
    exit 1
  fi
fi

if [ -f bench/package.json ] && [ ! -d bench/node_modules ]; then
  echo "setup: installing the benchmark's Node load generator with npm"
  (cd bench && npm ci --silent --no-audit --no-fund)
fi

# axe-core, which the page tests run inside the pages (accessibility); pinned in its lock file.
if [ -f tests/a11y/package.json ] && [ ! -f tests/a11y/node_modules/axe-core/axe.min.js ]; then
  echo "setup: installing axe-core for the accessibility tests"
  (cd tests/a11y && npm ci --silent --no-audit --no-fund)
fi

scripts/build-test-tools.sh
