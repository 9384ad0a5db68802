"""Settings: validated at start, one clear line naming a bad variable, demo defaults."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from sev.config import SIMULATOR_MOUNT, Settings, SettingsError, load_settings

REAL = {
    "twitch_client_id": "abc",
    "twitch_client_secret": "def",
    "twitch_eventsub_secret": "0123456789abcdef",
    "sev_session_secret": "test-session-secret-0123456789-abcdefghij",
    "sev_token_key": Fernet.generate_key().decode(),
}


def _load(tmp_path: Path, **values: Any) -> Settings:
    return load_settings(_env_file=None, sev_data_dir=tmp_path, **values)


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({**REAL, "twitch_eventsub_secret": "short"}, "TWITCH_EVENTSUB_SECRET"),
        ({**REAL, "twitch_eventsub_secret": "x" * 101}, "TWITCH_EVENTSUB_SECRET"),
        ({"mongodb_uri": "nonsense"}, "MONGODB_URI"),
        ({"mongodb_uri": "mongodb://"}, "MONGODB_URI"),
        ({"sev_public_url": "localhost:8000"}, "SEV_PUBLIC_URL"),
        ({"redis_url": "http://x"}, "REDIS_URL"),
        ({"sev_token_key": "not-a-key"}, "SEV_TOKEN_KEY"),
        ({"sev_session_secret": "short"}, "SEV_SESSION_SECRET"),
        ({**REAL, "sev_session_secret": "a" * 48}, "SEV_SESSION_SECRET"),
        ({"port": 0}, "PORT"),
        ({"sev_event_retention_days": 0}, "SEV_EVENT_RETENTION_DAYS"),
        ({"twitch_api_url": "ftp://x"}, "TWITCH_API_URL"),
        ({"twitch_client_id": "abc"}, "TWITCH_CLIENT_SECRET"),
        ({"twitch_client_secret": "abc"}, "TWITCH_CLIENT_ID"),
        ({**REAL, "sev_token_key": None}, "SEV_TOKEN_KEY"),
        ({"sev_public_url": "https://sev.example.com"}, "SEV_DEMO"),
        # Plain http too: a demo reachable from the network is a public demo.
        ({"sev_public_url": "http://sev.example.com"}, "SEV_DEMO"),
        ({"sev_public_url": "http://192.168.1.20:8000"}, "SEV_DEMO"),
    ],
)
def test_settings_name_the_bad_variable(
    tmp_path: Path, values: dict[str, Any], variable: str
) -> None:
    with pytest.raises(SettingsError) as error:
        _load(tmp_path, **values)
    message = str(error.value)
    assert variable in message
    assert "\n" not in message


def test_settings_demo_mode_points_at_the_simulator(tmp_path: Path) -> None:
    settings = _load(tmp_path)
    assert settings.demo
    assert settings.twitch_api_url == f"http://localhost:8000{SIMULATOR_MOUNT}/helix"
    assert settings.twitch_auth_url == f"http://localhost:8000{SIMULATOR_MOUNT}/oauth2"
    assert settings.resolve() is settings


def test_settings_demo_secrets_survive_a_restart(tmp_path: Path) -> None:
    first = _load(tmp_path)
    second = _load(tmp_path)
    for name in ("session", "token_key", "eventsub"):
        assert first.secret(name) == second.secret(name)
    stored = json.loads((tmp_path / "demo-secrets.json").read_text())
    assert stored["sev_session_secret"] == first.secret("session")
    assert (tmp_path / "demo-secrets.json").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "url",
    ["http://localhost:8000", "http://127.0.0.1:9000", "http://[::1]:8000", "http://sev.localhost"],
)
def test_settings_run_a_demo_on_this_machine_without_asking(tmp_path: Path, url: str) -> None:
    assert _load(tmp_path, sev_public_url=url).demo


def test_settings_allow_a_public_demo_when_asked(tmp_path: Path) -> None:
    settings = _load(tmp_path, sev_public_url="https://demo.example.com", sev_demo=True)
    assert settings.demo and settings.secure_cookies


def test_settings_real_twitch_is_not_demo(tmp_path: Path) -> None:
    settings = _load(tmp_path, **REAL)
    assert not settings.demo
    assert settings.callback_url == "http://localhost:8000/webhooks/eventsub"
    assert settings.twitch_api_url == "https://api.twitch.tv/helix"


def test_settings_read_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEV_PUBLIC_URL", "http://127.0.0.1:9999/")
    monkeypatch.setenv("UNRELATED_VARIABLE", "ignored")
    monkeypatch.setenv("MONGODB_URI", "")
    settings = _load(tmp_path)
    assert settings.sev_public_url == "http://127.0.0.1:9999"
    assert settings.mongodb_uri is None
    assert settings.sev_event_retention_days == 30
    monkeypatch.setenv("SEV_EVENT_RETENTION_DAYS", "7")
    assert _load(tmp_path).sev_event_retention_days == 7


def test_settings_never_show_secrets_in_their_repr(tmp_path: Path) -> None:
    settings = _load(tmp_path, **REAL)
    assert REAL["sev_token_key"] not in repr(settings)
    assert "0123456789abcdef" not in repr(settings)


def test_importing_settings_loads_neither_the_simulator_nor_uvicorn() -> None:
    # A fresh interpreter: this one has long imported both for other tests.
    code = (
        "import sys, sev.config; "
        "print('\\n'.join(name for name in sys.modules "
        "if name.split('.')[0] in ('twitchsim', 'uvicorn')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == []


@pytest.mark.parametrize(
    ("values", "transport", "why"),
    [
        # A laptop against real Twitch: Twitch cannot reach localhost, so no tunnel is needed.
        (REAL, "websocket", "not a public https URL"),
        ({**REAL, "sev_public_url": "http://sev.example.com"}, "websocket", "not a public"),
        ({**REAL, "sev_public_url": "https://127.0.0.1:8443"}, "websocket", "not a public"),
        ({**REAL, "sev_public_url": "https://sev.example.com"}, "webhook", "Twitch reaches"),
        # The simulated Twitch runs on this machine and reaches SEV's webhook wherever it is.
        ({}, "webhook", "simulated Twitch"),
        ({**REAL, "twitch_api_url": "http://127.0.0.1:9/helix"}, "webhook", "simulated Twitch"),
        # Said in so many words, it wins either way.
        ({**REAL, "sev_eventsub_transport": "webhook"}, "webhook", "SEV_EVENTSUB_TRANSPORT"),
        ({"sev_eventsub_transport": "websocket"}, "websocket", "SEV_EVENTSUB_TRANSPORT"),
        ({**REAL, "sev_eventsub_transport": " "}, "websocket", "not a public https URL"),
    ],
)
def test_settings_choose_the_eventsub_transport_and_say_why_in_one_line(
    tmp_path: Path, values: dict[str, Any], transport: str, why: str
) -> None:
    settings = _load(tmp_path, **values)
    assert settings.eventsub_transport == transport
    line = settings.transport_reason()
    assert line.startswith(f"EventSub transport: {transport} (")
    assert why in line and "\n" not in line


def test_settings_point_the_demo_websocket_at_the_simulator_and_check_the_scheme(
    tmp_path: Path,
) -> None:
    assert _load(tmp_path).twitch_eventsub_ws_url == f"ws://localhost:8000{SIMULATOR_MOUNT}/ws"
    demo = _load(tmp_path, sev_public_url="https://demo.example.com", sev_demo=True)
    assert demo.twitch_eventsub_ws_url == f"wss://demo.example.com{SIMULATOR_MOUNT}/ws"
    assert _load(tmp_path, **REAL).twitch_eventsub_ws_url == "wss://eventsub.wss.twitch.tv/ws"
    with pytest.raises(SettingsError) as error:
        _load(tmp_path, **REAL, twitch_eventsub_ws_url="https://eventsub.wss.twitch.tv/ws")
    assert "TWITCH_EVENTSUB_WS_URL" in str(error.value)
    with pytest.raises(SettingsError) as error:
        _load(tmp_path, **REAL, sev_eventsub_transport="carrier-pigeon")
    assert "SEV_EVENTSUB_TRANSPORT" in str(error.value)
