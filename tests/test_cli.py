"""The `sev` command: its help, `sev trigger` against a running demo (as the README walks
through it) and its refusals, `sev simulate` and `sev serve`."""

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
from sev.config import DEMO_CLIENT_ID, SIMULATOR_MOUNT
from sev.crypto import TokenCipher
from sev.store import User
from sev.store.sqlite import SqliteStore
from tests.support.factories import session_cookie
from tests.support.login import connect_channel, csrf_token, log_in
from tests.support.polling import eventually
from tests.support.processes import ROOT, SevProcess, SevSimulateProcess, _clean_env
from twitchsim.directory import DEMO_ACCOUNTS
from twitchsim.triggers import ALIASES, CHANNEL_TYPES

# Nothing listens on port 9 (discard): a trigger refused before it is sent never notices.
UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[SevProcess]:
    process = SevProcess(tmp_path)
    process.start()
    yield process
    process.stop()


def _sev(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sev.cli", *args],
        cwd=ROOT,
        env=_clean_env(env or {}),
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


def test_sev_trigger_help_lists_every_type_alias_and_demo_login() -> None:
    result = _sev("trigger", "--help")
    assert result.returncode == 0
    listed = result.stdout.split()
    for type_ in CHANNEL_TYPES:
        assert type_ in listed or f"{type_}," in listed, type_
    for alias in ALIASES:
        assert alias.name in listed, alias.name
    for account in DEMO_ACCOUNTS:
        assert account.login in listed or f"{account.login}," in listed, account.login
    assert '"Connect your channel"' in result.stdout
    for option in ("--streamer", "--count", "--url", "--simulator"):
        assert option in result.stdout


@pytest.mark.parametrize("command", ["demo", "serve"])
def test_sev_serve_and_demo_help_give_every_default(command: str) -> None:
    result = _sev(command, "--help")
    assert result.returncode == 0
    host = "127.0.0.1" if command == "demo" else "0.0.0.0"  # noqa: S104
    help_text = " ".join(result.stdout.split())
    assert f"(default: {host})" in help_text
    assert "(default: PORT, else 8000)" in help_text
    assert "SEV_PUBLIC_URL" in help_text
    assert "default: 127.0.0.1)" in help_text  # --forwarded-allow-ips


def test_sev_trigger_refuses_an_unknown_type_with_the_list() -> None:
    # No demo running: the list is known without one.
    result = _sev("trigger", "channel.nonsense", "--streamer", "bytebard", "--url", UNREACHABLE)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("sev trigger: unknown event type 'channel.nonsense'")
    assert "cheer" in result.stderr.split() and "channel.cheer" in result.stderr.split()
    assert "Traceback" not in result.stderr


def test_sev_trigger_refuses_an_unknown_streamer_naming_the_demo_streamers() -> None:
    result = _sev("trigger", "cheer", "--streamer", "nobody_at_all", "--url", UNREACHABLE)
    assert result.returncode == 2
    assert "no account 'nobody_at_all'" in result.stderr
    assert "bytebard" in result.stderr and "viewer_vic" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("count", ["0", "101", "three"])
def test_sev_trigger_refuses_a_count_out_of_range(count: str) -> None:
    result = _sev("trigger", "cheer", "--streamer", "bytebard", "--count", count)
    assert result.returncode == 2
    assert "a whole number from 1 to 100" in result.stderr


def test_sev_trigger_reports_an_unreachable_simulator() -> None:
    result = _sev("trigger", "stream.online", "--streamer", "bytebard", "--url", UNREACHABLE)
    assert result.returncode != 0
    assert "cannot reach the simulated Twitch" in result.stderr


@pytest.mark.parametrize(
    ("env", "target"),
    [
        ({"PORT": "9"}, "http://localhost:9/_twitch"),
        ({"PORT": "9", "SEV_PUBLIC_URL": "http://127.0.0.1:9"}, "http://127.0.0.1:9/_twitch"),
    ],
)
def test_sev_trigger_finds_sev_where_sev_demo_would_be(env: dict[str, str], target: str) -> None:
    result = _sev("trigger", "cheer", "--streamer", "bytebard", env=env)
    assert result.returncode == 1
    assert f"cannot reach the simulated Twitch at {target}:" in result.stderr


def test_sev_simulate_help_names_the_simulators_default_port(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--help"])
    assert f"default: {twitchsim.serve.DEFAULT_PORT}" in capsys.readouterr().out


def test_sev_simulate_with_a_data_dir_still_knows_its_tokens_after_a_restart(
    tmp_path: Path,
) -> None:
    simulator = SevSimulateProcess(tmp_path, data_dir=tmp_path / "twitch")
    simulator.start()
    try:
        token = simulator.app_token()
        simulator.restart()
        validated = httpx.get(
            f"{simulator.url}/oauth2/validate",
            headers={"Authorization": f"OAuth {token}"},
            timeout=10,
        )
    finally:
        simulator.stop()
    assert validated.status_code == 200
    assert validated.json()["client_id"] == DEMO_CLIENT_ID
    assert (tmp_path / "twitch" / "twitchsim-state.json").exists()


def test_sev_serve_refuses_a_demo_beyond_this_machine() -> None:
    result = _sev("serve", "--host", "0.0.0.0", "--port", "1")  # noqa: S104
    assert result.returncode != 0
    assert "demo mode" in result.stderr and "SEV_DEMO=1" in result.stderr
    assert "Traceback" not in result.stderr


class DemoProcess(SevProcess):
    """`sev demo --port N` as the README runs it: no SEV_PUBLIC_URL, so the URL follows the port."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        del self.env["SEV_PUBLIC_URL"]
        self.url = f"http://localhost:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "sev.cli", "demo", "--port", str(self.port)]


def _readme_triggers() -> list[list[str]]:
    """The `sev trigger` commands of the README's demo walk-through, in order."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### What the demo shows")[1].split("\n## ")[0]
    lines = (line.strip() for line in section.splitlines())
    return [line.split()[1:] for line in lines if line.startswith(".venv/bin/sev trigger ")]


async def _enabled(demo: DemoProcess, type_: str, user_id: str) -> bool:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{demo.url}{SIMULATOR_MOUNT}/control/subscriptions")
    return any(
        s["type"] == type_ and s["status"] == "enabled" and user_id in s["condition"].values()
        for s in response.json()["data"]
    )


async def test_readme_demo_steps_make_its_trigger_commands_work(tmp_path: Path) -> None:
    raid, cheer = _readme_triggers()
    assert cheer == ["trigger", "channel.cheer", "--streamer", "<login>", "--count", "3"]
    login, user_id = "bytebard", "41000006"
    demo = DemoProcess(tmp_path)
    demo.start()

    def run(command: list[str]) -> subprocess.CompletedProcess[str]:
        return _sev(*[login if arg == "<login>" else arg for arg in command], "--url", demo.url)

    try:
        # A fresh demo: nobody has chosen the streamer, so SEV subscribes to nothing of theirs.
        fresh = run(cheer)
        assert fresh.returncode == 1
        assert json.loads(fresh.stdout) == {
            "sent": 0,
            "message_ids": [],
            "reason": "no_subscription",
        }
        assert "nobody has set bytebard as their favourite" in fresh.stderr
        async with httpx.AsyncClient(timeout=20) as viewer:
            await log_in(viewer, demo.url, "viewer_vic")
            favourite = await viewer.post(
                f"{demo.url}/favorite",
                data={"streamer": login, "csrf_token": await csrf_token(viewer, demo.url)},
            )
            assert favourite.status_code == 303
            await eventually(lambda: _enabled(demo, "channel.raid", user_id), timeout=20)
            raided = run(raid)
            assert (raided.returncode, json.loads(raided.stdout)["sent"]) == (0, 1)
            # Cheers are shared only with the streamer's consent.
            unconnected = run(cheer)
            assert unconnected.returncode == 1
            assert 'as bytebard and press "Connect your channel"' in unconnected.stderr

            async with httpx.AsyncClient(timeout=20) as streamer:
                await log_in(streamer, demo.url, login)
                assert (await connect_channel(streamer, demo.url, login)).status_code == 303
            await eventually(lambda: _enabled(demo, "channel.cheer", user_id), timeout=20)
            cheered = run(cheer)
            assert cheered.returncode == 0, cheered.stderr
            assert json.loads(cheered.stdout)["sent"] == 3

            async def cheers_shown() -> bool:
                response = await viewer.get(f"{demo.url}/api/streamers/{login}/events")
                types = [event["type"] for event in response.json()["events"]]
                return types.count("channel.cheer") == 3 and "channel.raid" in types

            await eventually(cheers_shown, timeout=20, what="the cheers and the raid on the page")
    finally:
        demo.stop()
