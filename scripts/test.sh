#!/usr/bin/env bash
# Every check: lint, format, types, the page's JavaScript in Node's test runner, and the whole
# test suite with coverage, on real services.
# Extra arguments go to pytest (e.g. scripts/test.sh -k webhooks).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== lint-imports (the layers of sev/: pyproject.toml [tool.importlinter])"
.venv/bin/lint-imports --no-cache
echo "== mypy --strict sev twitchsim tests bench"
.venv/bin/mypy --strict sev twitchsim tests bench
echo "== node --test tests/js/"
node --test tests/js/
echo "== pytest"
.venv/bin/python -m pytest --cov --cov-branch --cov-report=term:skip-covered \
  --cov-report=xml:test-artifacts/coverage.xml "$@"
