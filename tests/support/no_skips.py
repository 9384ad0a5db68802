"""A pytest plugin (loaded by tests/conftest.py): in CI, a skipped test is a failed test.

`require` (tests/support/services.py) already fails instead of skipping when CI=true; this
catches every other way a test could skip itself (a `pytest.skip` written later, a marker, a
plugin), so a green CI run means every test ran.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest
from pluggy import Result

from tests.support.services import in_ci


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Result[pytest.TestReport]]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI ({reason}): with CI=true every test must run"
