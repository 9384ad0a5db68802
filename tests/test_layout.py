"""docs/layout.dot is drawn from sev/'s real imports and layers (scripts/layout.py): it must be
what the code draws today, or the picture lies."""

from __future__ import annotations

import subprocess
import sys

from tests.support.processes import ROOT


def test_the_layout_picture_is_what_the_imports_draw() -> None:
    check = subprocess.run(
        [sys.executable, "scripts/layout.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_every_area_of_the_layers_is_in_the_picture() -> None:
    dot = (ROOT / "docs" / "layout.dot").read_text()
    for area in ("sev.web", "sev.eventsub", "sev.live", "sev.store", "sev.events", "sev.config"):
        assert f"<b>{area}</b>" in dot
    assert "web -> " in dot and "-> clock;" in dot
