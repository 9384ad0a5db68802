#!/usr/bin/env bash
# Re-resolve SEV's dependencies within pyproject.toml's ranges and write the lock files that
# scripts/setup.sh (so CI and every fresh machine) installs from:
#   requirements.lock      what SEV needs to run (the demo, Heroku)
#   requirements-dev.lock  plus the test and lint tools
# Upgrading: widen or move a range in pyproject.toml if needed, run this, then scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
tool=${SEV_LOCK_VENV:-$HOME/.cache/sev-tools/uv-venv}
[ -x "$tool/bin/uv" ] || { python3 -m venv "$tool" && "$tool/bin/pip" install --quiet uv; }
for extra in "" dev; do
  out=requirements${extra:+-$extra}.lock
  "$tool/bin/uv" pip compile pyproject.toml ${extra:+--extra "$extra"} --upgrade \
    --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
    --quiet --no-header --annotation-style line -o "$out"
  echo "lock: wrote $out"
done
