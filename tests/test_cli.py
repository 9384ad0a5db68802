"""The `sev` command against a running demo: `sev trigger` reaches SEV's store."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import twitchsim
from sev import cli
from sev.crypto import TokenCipher
from sev.store import User
from sev.store.sqlite import SqliteStore
from tests.support.factories import session_cookie
from tests.support.processes import ROOT, SevProcess, _clean_env


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[SevProcess]:
    process = SevProcess(tmp_path)
    process.start()
    yield process
    process.stop()


def _sev(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sev.cli", *args],
        cwd=ROOT,
        env=_clean_env({}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_sev_trigger_delivers_to_the_streamers_live_subscriptions(demo: SevProcess) -> None:
    secrets = json.loads((demo.data_dir / "demo-secrets.json").read_text())
    store = SqliteStore(demo.data_dir / "sev.sqlite3", TokenCipher(secrets["sev_token_key"]))
    await store.open()
    try:
        await store.save_user(User(id="42000001", login="viewer_vic", display_name="Viewer_Vic"))
        cookie = session_cookie(secrets["sev_session_secret"], user_id="42000001", csrf="c")
        async with httpx.AsyncClient(base_url=demo.url, cookies={"sev_session": cookie}) as web:
            favourite = await web.post(
                "/favorite", data={"streamer": "bytebard", "csrf_token": "c"}, timeout=30
            )
        assert favourite.status_code == 303
        broadcaster = await store.get_broadcaster_by_login("bytebard")
        assert broadcaster is not None
        deadline = time.monotonic() + 20
        while not all(
            s.status == "enabled" for s in await store.list_subscriptions(broadcaster.id)
        ):
            assert time.monotonic() < deadline, "subscriptions never became enabled"
            time.sleep(0.2)

        result = _sev(
            "trigger", "stream.online", "--streamer", "bytebard", "--count", "2", "--url", demo.url
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["sent"] == 2
        deadline = time.monotonic() + 20
        while len(events := await store.latest_events(broadcaster.id, 10)) < 2:
            assert time.monotonic() < deadline, "triggered events never stored"
            time.sleep(0.2)
        assert {event.summary for event in events} == {"ByteBard went live"}
    finally:
        await store.close()


def test_sev_trigger_reports_an_unknown_type(demo: SevProcess) -> None:
    result = _sev("trigger", "channel.nonsense", "--streamer", "bytebard", "--url", demo.url)
    assert result.returncode != 0
    assert "400" in result.stderr


def test_sev_trigger_reports_an_unreachable_simulator() -> None:
    result = _sev("trigger", "stream.online", "--streamer", "x", "--url", "http://127.0.0.1:9")
    assert result.returncode != 0
    assert "cannot reach the simulated Twitch" in result.stderr


@pytest.mark.parametrize(
    ("args", "forwarded"), [([], []), (["--port", "9123"], ["--port", "9123"])]
)
def test_sev_simulate_leaves_the_default_port_to_the_simulator(
    monkeypatch: pytest.MonkeyPatch, args: list[str], forwarded: list[str]
) -> None:
    calls: list[tuple[list[str], str]] = []

    def fake_main(argv: list[str], prog: str) -> int:
        calls.append((argv, prog))
        return 0

    monkeypatch.setattr(twitchsim, "main", fake_main)
    assert cli.main(["simulate", *args]) == 0
    assert calls == [(forwarded, "sev simulate")]


def test_sev_simulate_help_names_the_simulators_default_port(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--help"])
    assert f"default: {twitchsim.serve.DEFAULT_PORT}" in capsys.readouterr().out


def test_sev_serve_refuses_a_demo_beyond_this_machine() -> None:
    result = _sev("serve", "--host", "0.0.0.0", "--port", "1")  # noqa: S104
    assert result.returncode != 0
    assert "demo mode" in result.stderr and "SEV_DEMO=1" in result.stderr
    assert "Traceback" not in result.stderr
