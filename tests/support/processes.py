"""Run the real SEV (and, where a test needs Twitch to outlive SEV, the simulated Twitch) as
processes on free loopback ports: `uvicorn sev.app:app`, exactly as a developer runs it, or
`sev demo`, exactly as a newcomer does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from sev.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from sev.crypto import TokenCipher
from sev.live import MAX_MESSAGE_BYTES
from sev.store import Store
from sev.store.sqlite import SqliteStore
from tests.support.services import free_port
from tests.support.settings import real_twitch_env

ROOT = Path(__file__).resolve().parents[2]  # the checkout: tests/support/ is two levels down
# Variables a developer's shell might carry that would change what the test starts.
_SCRUB = ("TWITCH_", "SEV_", "MONGODB_URI", "REDIS_URL", "PORT")


def _clean_env(overrides: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    env.update(overrides)
    return env


class _Process:
    """A child process on a fixed loopback port that can be stopped, killed and restarted."""

    def __init__(self, name: str, port: int, log_path: Path) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        raise NotImplementedError

    def ready_path(self) -> str:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> None:
        """Start the process and wait until it answers."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up:\n{self.logs()[-3000:]}")
            try:
                if httpx.get(self.url + self.ready_path(), timeout=1.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout}s:\n{self.logs()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Stop the process (SIGTERM: graceful; SIGKILL: a crash)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class TwitchControl:
    """The simulated Twitch's `/control` remote at `url`, wherever it runs: alone
    (`SimulatorProcess`) or mounted in `sev demo` (`DemoProcess.twitch`)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def subscriptions(self) -> list[dict[str, Any]]:
        """Every subscription the simulated Twitch holds."""
        response = httpx.get(f"{self.url}/control/subscriptions", timeout=10)
        response.raise_for_status()
        return list(response.json()["data"])

    def trigger(
        self, event_type: str, broadcaster: str, count: int = 1, **fields: Any
    ) -> list[str]:
        """Send events through the simulator's control endpoint; returns their message ids."""
        response = httpx.post(
            f"{self.url}/control/trigger",
            json={
                "type": event_type,
                "broadcaster": broadcaster,
                "count": count,
                "overrides": fields,
            },
            timeout=10,
        )
        response.raise_for_status()
        return list(response.json()["sent"])

    def set_faults(self, **faults: Any) -> None:
        """Switch delivery faults on or off (`delay_s=30`: hold every message that long)."""
        response = httpx.post(f"{self.url}/control/faults", json=faults, timeout=10)
        response.raise_for_status()

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """GET (or, with a body, POST) `/control/{path}`; its JSON, asserting a 200."""
        if body is None:
            response = httpx.get(f"{self.url}/control/{path}", timeout=10)
        else:
            response = httpx.post(f"{self.url}/control/{path}", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def socket_subscriptions(self, user_id: str) -> list[dict[str, Any]]:
        """The enabled WebSocket subscriptions whose condition names `user_id`."""
        return [
            s
            for s in self.subscriptions()
            if s["transport"]["method"] == "websocket"
            and user_id in s["condition"].values()
            and s["status"] == "enabled"
        ]

    def subscription_creates(self) -> int:
        """How many Create EventSub Subscription requests the simulator has answered."""
        requests = self.control("requests")["data"]
        return sum(
            1 for r in requests if r["method"] == "POST" and r["path"].endswith("/subscriptions")
        )

    def account_id(self, login: str) -> str:
        """The id of a demo account."""
        response = httpx.get(f"{self.url}/control/accounts", timeout=10)
        response.raise_for_status()
        return str(next(a["id"] for a in response.json()["data"] if a["login"] == login))

    def enabled_types(self, broadcaster_id: str) -> set[str]:
        """The types of the enabled subscriptions that name this user."""
        return {
            s["type"]
            for s in self.subscriptions()
            if broadcaster_id in s["condition"].values() and s["status"] == "enabled"
        }


class SimulatorProcess(_Process, TwitchControl):
    """The simulated Twitch alone (`python -m twitchsim --port N`); with `data_dir`, its state
    outlives a restart."""

    def __init__(
        self,
        tmp: Path,
        port: int | None = None,
        *,
        token_lifetime: int | None = None,
        data_dir: Path | None = None,
        extra: list[str] | None = None,
    ) -> None:
        super().__init__("simulated Twitch", port or free_port(), tmp / "simulator.log")
        self.token_lifetime = token_lifetime
        self.data_dir = data_dir
        # More command-line options (`python -m twitchsim --help`).
        self.extra = list(extra or [])

    def command(self) -> list[str]:
        return [sys.executable, "-m", "twitchsim", *self.arguments()]

    def arguments(self) -> list[str]:
        extra = ["--token-lifetime", str(self.token_lifetime)] if self.token_lifetime else []
        if self.data_dir is not None:
            extra += ["--data-dir", str(self.data_dir)]
        return ["--port", str(self.port), *extra, *self.extra]

    def environment(self) -> dict[str, str]:
        return _clean_env({})

    def app_token(self) -> str:
        """An app access token of the demo registration (client credentials grant)."""
        response = httpx.post(
            f"{self.url}/oauth2/token",
            data={
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
                "grant_type": "client_credentials",
            },
            timeout=10,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def ready_path(self) -> str:
        return "/control/accounts"


class SevSimulateProcess(SimulatorProcess):
    """The simulated Twitch as `sev simulate` runs it."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "sev.cli", "simulate", *self.arguments()]


class SevProcess(_Process):
    """SEV itself: `uvicorn sev.app:app` with the given settings."""

    def __init__(
        self,
        tmp: Path,
        env: dict[str, str] | None = None,
        port: int | None = None,
        data_dir: Path | None = None,
    ) -> None:
        port = port or free_port()
        super().__init__("SEV", port, tmp / f"sev-{port}.log")
        self.data_dir = data_dir or tmp / "var"
        self.env = {
            "SEV_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "SEV_DATA_DIR": str(self.data_dir),
            "SEV_DEMO_EVENTS_PER_MINUTE": "0",
            "SEV_LOG_LEVEL": "INFO",
            **(env or {}),
        }

    @classmethod
    def against(
        cls,
        simulator: SimulatorProcess,
        tmp: Path,
        env: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> SevProcess:
        """SEV configured as for real Twitch, but pointing at a standalone simulated Twitch."""
        twitch = real_twitch_env(
            simulator.url, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET
        )
        return cls(tmp, {**twitch, **(env or {})}, **kwargs)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "sev.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ws-per-message-deflate",
            "false",
            "--ws-max-size",
            str(MAX_MESSAGE_BYTES),
            # As deployed (Procfile): uvicorn's websockets-sansio, lean per viewer.
            "--ws",
            "sev.live:Wire",
        ]

    def environment(self) -> dict[str, str]:
        return _clean_env(self.env)

    def ready_path(self) -> str:
        return "/healthz"

    def token_key(self) -> str:
        """The key SEV encrypts tokens with in its store."""
        return self.env["SEV_TOKEN_KEY"]

    @asynccontextmanager
    async def store(self) -> AsyncIterator[Store]:
        """SEV's own embedded store, opened from the test (SQLite in WAL mode allows it)."""
        path = self.data_dir / "sev.sqlite3"
        opened = SqliteStore(path, TokenCipher(self.token_key()))
        await opened.open()
        try:
            yield opened
        finally:
            await opened.close()


class DemoProcess(SevProcess):
    """`sev demo` as a newcomer runs it: SEV with the simulated Twitch mounted at /_twitch,
    secrets generated into the data dir, and both keeping their state there across restarts."""

    def __init__(self, tmp: Path, env: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(tmp, env, **kwargs)
        self.twitch = TwitchControl(f"{self.url}/_twitch")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "sev.cli", "demo", "--port", str(self.port)]

    def token_key(self) -> str:
        """The key `sev demo` generated (SEV_DATA_DIR/demo-secrets.json)."""
        secrets = json.loads((self.data_dir / "demo-secrets.json").read_text())
        return str(secrets["sev_token_key"])
