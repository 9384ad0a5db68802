"""The simulated Twitch stands alone: importing every module of it loads nothing of SEV."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import twitchsim


def test_twitchsim_imports_nothing_of_sev() -> None:
    modules = [
        f"twitchsim.{module.name}"
        for module in pkgutil.iter_modules(twitchsim.__path__)
        if module.name != "__main__"
    ]
    # A fresh interpreter: this one has SEV loaded for other tests.
    code = (
        f"import sys, {', '.join(modules)}; "
        "print('\\n'.join(name for name in sys.modules if name.split('.')[0] == 'sev'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert len(modules) > 10
    assert result.stdout.split() == []
