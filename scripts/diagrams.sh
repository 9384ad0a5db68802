#!/usr/bin/env bash
# Regenerate the deployment diagrams from their Graphviz sources:
#   docs/architecture.dot -> docs/architecture.png   (one process, AWS / Heroku)
#   docs/scaling.dot      -> docs/scaling.png        (the scaled design)
#   docs/layout.dot       -> docs/layout.png         (the code's areas and imports; the .dot is
#                                                      drawn first by scripts/layout.py)
# Needs Graphviz's `dot` (Debian: apt-get install graphviz) and the DejaVu fonts it pulls in.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dot >/dev/null; then
  echo "diagrams.sh: Graphviz is not installed (apt-get install graphviz)" >&2
  exit 1
fi

.venv/bin/python scripts/layout.py
for name in architecture scaling layout; do
  dot -Tpng -Gdpi=110 "docs/$name.dot" -o "docs/$name.png"
  echo "docs/$name.png"
done
