"""Processes the benchmarks start: SEV, the two ceilings, FerretDB; pinning and /proc metrics."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sev.config import Settings
from sev.store import Broadcaster, User, create_store
from tests.support.factories import session_cookie
from tests.support.processes import ROOT, SevProcess, _clean_env, _Process
from tests.support.services import free_port

BENCH = Path(__file__).resolve().parent
# Loopback-only benchmark secrets, not used anywhere else.
SECRET = "bench-eventsub-secret-0123456789"  # noqa: S105
SESSION_SECRET = "bench-session-secret-0123456789-abcdefghij"  # noqa: S105
TOKEN_KEY = "PlXSZG4DFHehgoeUGU0_hLVFSc_9YWaIpW1SYcL9Aew="  # noqa: S105
BROADCASTER = Broadcaster(id="1337", login="cooler_user", display_name="Cooler_User")
VIEWER = User(id="bench-viewer", login="bench_viewer", display_name="Bench_Viewer")
SERVER_CORE = 0
LOAD_CORE = 1


@functools.cache
def cores() -> tuple[set[int], set[int]]:
    """(server cores, load-generator cores): one each when the machine allows it.

    Cached: the first answer holds after the bench pins itself to the load cores.
    """
    available = sorted(os.sched_getaffinity(0))
    if len(available) >= 2:
        return {available[0]}, {available[1]}
    return set(available), set(available)


def raise_fd_limit(wanted: int = 40_000) -> int:
    """Raise this process's open-file limit towards `wanted` (up to the hard limit) so that it
    and the servers and clients it starts, which inherit it, can hold 10,000 sockets each;
    the machine's own limits are left alone. Returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def _pinned(command: list[str], cpus: set[int]) -> list[str]:
    if shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", ",".join(str(c) for c in sorted(cpus)), *command]


def cookie() -> str:
    """A valid `sev_session` for SEV's socket (the connect handler checks only this)."""
    return session_cookie(SESSION_SECRET, user_id=VIEWER.id)


def sev_env(tmp: Path, port: int, mongodb_uri: str | None) -> dict[str, str]:
    """SEV configured as for real Twitch, with Twitch at a port where nothing listens."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = {
        "TWITCH_CLIENT_ID": "bench-client-id",
        "TWITCH_CLIENT_SECRET": "bench-client-secret",
        "TWITCH_EVENTSUB_SECRET": SECRET,
        "SEV_SESSION_SECRET": SESSION_SECRET,
        "SEV_TOKEN_KEY": TOKEN_KEY,
        "TWITCH_API_URL": f"{nowhere}/helix",
        "TWITCH_AUTH_URL": f"{nowhere}/oauth2",
        "SEV_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SEV_DATA_DIR": str(tmp / "var"),
        "SEV_LOG_LEVEL": "WARNING",
        "SEV_RECONCILE_INTERVAL_S": "3600",
        "SEV_TOKEN_VALIDATE_INTERVAL_S": "3600",
    }
    if mongodb_uri:
        env["MONGODB_URI"] = mongodb_uri
    return env


def store_settings(env: dict[str, str]) -> Settings:
    """The settings that open the same store as SEV started with `env` (no Redis)."""
    return Settings(
        _env_file=None,
        twitch_client_id=env["TWITCH_CLIENT_ID"],
        twitch_client_secret=env["TWITCH_CLIENT_SECRET"],
        twitch_eventsub_secret=env["TWITCH_EVENTSUB_SECRET"],
        sev_session_secret=env["SEV_SESSION_SECRET"],
        sev_token_key=env["SEV_TOKEN_KEY"],
        sev_data_dir=Path(env["SEV_DATA_DIR"]),
        mongodb_uri=env.get("MONGODB_URI"),
        redis_url=None,
    )


async def prepare_store(env: dict[str, str], broadcasters: Sequence[Broadcaster] = ()) -> None:
    """Create the store SEV will open (from its environment) with the streamer, a viewer and
    any other `broadcasters`."""
    store = create_store(store_settings(env))
    await store.open()
    try:
        for broadcaster in (BROADCASTER, *broadcasters):
            await store.save_broadcaster(broadcaster)
        await store.save_user(VIEWER)
    finally:
        await store.close()


class BenchSev(SevProcess):
    """SEV under uvicorn as tests/support/processes.py runs it, pinned to the server core."""

    def __init__(self, tmp: Path, mongodb_uri: str | None = None, ws: str | None = None) -> None:
        port = free_port()
        tmp.mkdir(parents=True, exist_ok=True)
        super().__init__(tmp, sev_env(tmp, port, mongodb_uri), port=port)
        self.cpus = cores()[0]
        self.ws = ws
        asyncio.run(prepare_store(self.env))

    def command(self) -> list[str]:
        return _pinned(super().command() + (["--ws", self.ws] if self.ws else []), self.cpus)


class Ceiling(_Process):
    """A bench ASGI app (`bench.ceiling:app`, `bench.bare:app`) under SEV's uvicorn settings."""

    def __init__(self, tmp: Path, module: str, ws: str | None = None) -> None:
        port = free_port()
        super().__init__(module, port, tmp / f"{module}-{port}.log")
        self.module = module
        self.cpus = cores()[0]
        self.ws = ws

    def command(self) -> list[str]:
        return _pinned(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"{self.module}:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--ws-per-message-deflate",
                "false",
                "--ws-max-size",
                "1048576",
                *(["--ws", self.ws] if self.ws else []),
            ],
            self.cpus,
        )

    def environment(self) -> dict[str, str]:
        return _clean_env({"TWITCH_EVENTSUB_SECRET": SECRET, "PYTHONPATH": str(ROOT)})

    def ready_path(self) -> str:
        return "/healthz" if self.module == "bench.ceiling" else "/"


def core_share(cpus: set[int], seconds: float = 1.0) -> float:
    """The fraction of a core a busy loop pinned to `cpus` gets now (1.0 on an idle machine)."""
    spin = (
        "import time\n"
        f"end = time.monotonic() + {seconds}\n"
        "while time.monotonic() < end:\n    pass\n"
        "print(time.process_time())"
    )
    started = time.monotonic()
    done = subprocess.run(
        _pinned([sys.executable, "-c", spin], cpus), capture_output=True, text=True, check=True
    )
    return float(done.stdout) / (time.monotonic() - started)


def pid_of(process: _Process) -> int:
    assert process.process is not None
    return process.process.pid


def rss_kb(pid: int) -> int:
    """Resident set size of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ensure_node_modules() -> None:
    """`npm ci` in bench/ when node_modules is missing (scripts/setup.sh --dev does it too)."""
    if not (BENCH / "node_modules" / "ws").is_dir():
        subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=BENCH, check=True)


class NodeClients:
    """bench/clients.mjs: N viewers in one Node process on the load core."""

    def __init__(
        self,
        url: str,
        n: int,
        cookie_value: str | None,
        streamer: str,
        cpus: set[int] | None = None,
    ) -> None:
        config = {"url": url, "cookie": cookie_value, "n": n, "streamer": streamer}
        command = ["node", str(BENCH / "clients.mjs"), json.dumps(config)]
        self.process = subprocess.Popen(
            _pinned(command, cores()[1] if cpus is None else cpus),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=BENCH,
        )

    def read(self, timeout: float = 120.0) -> dict[str, Any]:
        """The next JSON line the clients print."""
        assert self.process.stdout is not None
        line = _readline(self.process, timeout)
        result: dict[str, Any] = json.loads(line)
        return result

    def command(self, line: str, timeout: float = 60.0) -> dict[str, Any]:
        """Send one stdin command and read its JSON answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.read(timeout)

    def close(self) -> None:
        """Close every client and wait for the process."""
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write("close\n")
                self.process.stdin.flush()
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(5)


def _readline(process: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    try:
        if not selector.select(timeout):
            raise TimeoutError(f"no answer from the Node clients within {timeout}s")
    finally:
        selector.close()
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"the Node clients exited ({process.poll()})")
    return line
