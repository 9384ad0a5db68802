"""Run the real SEV (and, where a test needs Twitch to outlive SEV, the simulated Twitch) as
processes on free loopback ports: `uvicorn sev.app:app`, exactly as a developer runs it."""

from __future__ import annotations

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


class SimulatorProcess(_Process):
    """The simulated Twitch alone (`python -m twitchsim --port N`)."""

    def __init__(
        self, tmp: Path, port: int | None = None, *, token_lifetime: int | None = None
    ) -> None:
        super().__init__("simulated Twitch", port or free_port(), tmp / "simulator.log")
        self.token_lifetime = token_lifetime

    def command(self) -> list[str]:
        extra = ["--token-lifetime", str(self.token_lifetime)] if self.token_lifetime else []
        return [sys.executable, "-m", "twitchsim", "--port", str(self.port), *extra]

    def environment(self) -> dict[str, str]:
        return _clean_env({})

    def ready_path(self) -> str:
        return "/control/accounts"

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
        ]

    def environment(self) -> dict[str, str]:
        return _clean_env(self.env)

    def ready_path(self) -> str:
        return "/healthz"

    @asynccontextmanager
    async def store(self) -> AsyncIterator[Store]:
        """SEV's own embedded store, opened from the test (SQLite in WAL mode allows it)."""
        path = self.data_dir / "sev.sqlite3"
        opened = SqliteStore(path, TokenCipher(self.env["SEV_TOKEN_KEY"]))
        await opened.open()
        try:
            yield opened
        finally:
            await opened.close()
