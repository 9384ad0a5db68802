"""The process as developers run it (`uvicorn sev.app:app`): start-up, health, outages."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ROOT, SevProcess, _clean_env


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TWITCH_EVENTSUB_SECRET", "short"),
        ("MONGODB_URI", "nonsense"),
        ("SEV_PUBLIC_URL", "not a url"),
        ("SEV_SESSION_SECRET", "a" * 48),
    ],
)
def test_app_refuses_to_start_with_a_bad_setting(tmp_path: Path, variable: str, value: str) -> None:
    env = _clean_env({variable: value, "SEV_DATA_DIR": str(tmp_path)})
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "sev.app:app", "--port", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert variable in result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if variable in line]
    assert len(lines) == 1, result.stderr


def test_app_serves_the_demo_home_page_and_simulator(tmp_path: Path) -> None:
    sev = SevProcess(tmp_path)
    sev.start()
    try:
        home = httpx.get(sev.url + "/", timeout=10)
        assert home.status_code == 200
        assert "Log in with Twitch" in home.text
        assert "Demo mode" in home.text
        accounts = httpx.get(sev.url + "/_twitch/control/accounts", timeout=10).json()["data"]
        assert any(account["streamer"] for account in accounts)
        assert httpx.get(sev.url + "/healthz", timeout=10).json()["status"] == "ok"
        assert "DEMO MODE" in sev.logs()
    finally:
        sev.stop()


def test_healthz_reports_a_store_outage_quickly_and_recovers(
    tmp_path: Path, mongo_server: object
) -> None:
    uri = f"{mongo_server.uri.rstrip('/')}/sev_health"  # type: ignore[attr-defined]
    sev = SevProcess(tmp_path, {"MONGODB_URI": uri})
    sev.start()
    try:
        assert httpx.get(sev.url + "/healthz", timeout=10).status_code == 200
        mongo_server.stop()  # type: ignore[attr-defined]
        try:
            started = time.monotonic()
            response = httpx.get(sev.url + "/healthz", timeout=10)
            elapsed = time.monotonic() - started
            assert response.status_code == 503
            assert response.json()["store"] == "unavailable"
            assert elapsed < 2.0
        finally:
            mongo_server.start()  # type: ignore[attr-defined]
        deadline = time.monotonic() + 20
        while httpx.get(sev.url + "/healthz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "SEV did not recover"
            time.sleep(0.2)
        assert sev.process is not None and sev.process.poll() is None
    finally:
        sev.stop()
