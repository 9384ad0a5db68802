#!/usr/bin/env bash
# The demo: SEV on http://localhost:8000 against its simulated Twitch, embedded store.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/sev demo "$@"
