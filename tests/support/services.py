"""Real services for the test suite: FerretDB (MongoDB wire), Redis, Twitch's CLI, Chromium.

Plain helpers, no fixtures: ``tests/conftest.py`` (section ``# --- services ---``) wraps them.
Every server listens on a free loopback port, keeps its files in its own temporary directory,
can be stopped and started again on the same port (``stop()`` then ``start()``), and is
stopped when the interpreter exits if nobody did it before (no stray or zombie processes).

The Go-built binaries come from ``scripts/build-test-tools.sh`` (``tools_bin_dir()``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import IO, Any, NoReturn

__all__ = [
    "BUILD_HINT",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "ExternalMongoServer",
    "MongoServer",
    "RedisServer",
    "ServiceError",
    "ferretdb_path",
    "free_port",
    "is_executable",
    "mongo_ping",
    "require",
    "tools_bin_dir",
]

BUILD_HINT = "run scripts/build-test-tools.sh (or scripts/setup.sh --dev)"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Taken at import: tests that point HOME elsewhere (twitch-cli keeps its state there) must not
# move the tools directory under our feet.
_DEFAULT_TOOLS_DIR = Path.home() / ".cache" / "sev-tools"


class ServiceError(RuntimeError):
    """A test service did not start, or did not become ready in time."""


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tools_bin_dir() -> Path:
    """Where scripts/build-test-tools.sh puts its binaries.

    ``$SEV_TOOLS_DIR/bin``, or ``~/.cache/sev-tools/bin`` when it is unset or empty.
    """
    base = os.environ.get("SEV_TOOLS_DIR") or _DEFAULT_TOOLS_DIR
    return Path(base) / "bin"


def ferretdb_path() -> Path:
    """The ``ferretdb-sev`` binary (may not exist: check, or use ``require``)."""
    return tools_bin_dir() / "ferretdb-sev"


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def in_ci() -> bool:
    """Whether this run is CI's (CI=true or 1): there, nothing may be skipped."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def require(what: str, ok: bool, how_to_fix: str) -> None:
    """Skip the test when ``what`` is missing, or fail it when running in CI (CI=true or 1)."""
    if ok:
        return
    import pytest

    message = f"{what} is not available: {how_to_fix}"
    if in_ci():
        pytest.fail(f"{message} (CI: a missing test service is an error)", pytrace=False)
    pytest.skip(message)


def _port_open(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _stop_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, wait; SIGKILL if it does not go. Always reaps (no zombie)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


class _Service:
    """A server process on a fixed loopback port, restartable on that port."""

    name = "service"
    start_timeout = 30.0
    stop_timeout = 10.0

    def __init__(self, port: int | None = None) -> None:
        self._fixed_port = port is not None
        self.port: int = port if port is not None else free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"sev-{self.name}-"))
        self.log_path = self.workdir / f"{self.name}.log"
        self._run = _Running()
        self._started_once = False
        self._closed = False
        # Stops the process and deletes the files when this object is collected or, at the
        # latest, when the interpreter exits (finalize registers itself with atexit).
        self._finalizer = weakref.finalize(self, self._run.cleanup, self.workdir)

    # --- to override ---
    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _ping(self) -> bool:
        """One real request to the server; True when it answered."""
        raise NotImplementedError

    # --- public API ---
    @property
    def running(self) -> bool:
        proc = self._run.proc
        return proc is not None and proc.poll() is None

    @property
    def pid(self) -> int | None:
        proc = self._run.proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self, timeout: float | None = None) -> None:
        """Start the server (on the same port as before, if it ran already) and wait until ready."""
        if self._closed:
            raise ServiceError(f"{self.name}: closed, make a new one")
        if self.running:
            return
        attempts = 1 if (self._fixed_port or self._started_once) else 3
        for attempt in range(attempts):
            self._spawn()
            try:
                self.wait_ready(self.start_timeout if timeout is None else timeout)
            except ServiceError:
                log = self.log_tail()
                self.stop()
                # Another process took our free port between free_port() and bind: new port.
                if attempt + 1 < attempts and "address already in use" in log.lower():
                    self.port = free_port()
                    continue
                raise
            self._started_once = True
            return

    def stop(self, timeout: float | None = None) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``); its data stays for start()."""
        self._run.stop(self.stop_timeout if timeout is None else timeout)

    def restart(self, timeout: float | None = None) -> None:
        self.stop()
        self.start(timeout)

    def close(self) -> None:
        """Stop the server and delete its files."""
        self._closed = True
        self._finalizer()  # stop + delete, once

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll until the port accepts connections and the server answers a real request."""
        deadline = time.monotonic() + timeout
        while True:
            proc = self._run.proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise ServiceError(
                    f"{self.name} is not running (exit code {code}); log {self.log_path}:\n"
                    f"{self.log_tail()}"
                )
            if _port_open(self.port) and self._ping():
                return
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{self.name} on port {self.port} not ready after {timeout} s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} port={self.port} {state}>"

    # --- internals ---
    def _spawn(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed by _Running.stop()
        try:
            proc = subprocess.Popen(
                self._argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        except BaseException:
            log.close()
            raise
        self._run.proc, self._run.log = proc, log


class _Running:
    """The live parts of a service, apart from it so the finalizer does not keep it alive."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None

    def stop(self, timeout: float) -> None:
        if self.proc is not None:
            _stop_process(self.proc, timeout)
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def cleanup(self, workdir: Path) -> None:
        self.stop(10.0)
        shutil.rmtree(workdir, ignore_errors=True)


class MongoServer(_Service):
    """FerretDB v1 (SQLite backend) speaking the MongoDB wire protocol: ``ferretdb-sev``.

    Its data lives in ``state_dir`` and survives ``stop()``/``start()`` (same port, same data).
    ``stop()`` returns once the process is gone, so every connection is closed by then; FerretDB
    would wait 3 s for connected clients, ``shutdown_timeout`` (seconds) cuts that short.
    Remember FerretDB v1's limits (docs/PITFALLS.md): no TTL indexes, change streams,
    transactions or ``$lookup``.
    """

    name = "ferretdb"

    def __init__(
        self,
        binary: Path | None = None,
        port: int | None = None,
        shutdown_timeout: float = 0.25,
    ) -> None:
        self.binary = Path(binary) if binary is not None else ferretdb_path()
        self.shutdown_timeout = shutdown_timeout
        if not is_executable(self.binary):
            raise ServiceError(f"no ferretdb-sev binary at {self.binary}: {BUILD_HINT}")
        super().__init__(port)
        self.state_dir = self.workdir / "state"
        self.state_dir.mkdir()

    @property
    def uri(self) -> str:
        """``mongodb://127.0.0.1:PORT/``: append a database name if you want one in the URI."""
        return f"mongodb://127.0.0.1:{self.port}/"

    def _argv(self) -> list[str]:
        return [
            str(self.binary),
            "-listen-addr",
            f"127.0.0.1:{self.port}",
            "-state-dir",
            str(self.state_dir),
            "-shutdown-timeout",
            f"{int(self.shutdown_timeout * 1000)}ms",
        ]

    def _ping(self) -> bool:
        return mongo_ping(self.uri)


class ExternalMongoServer:
    """A MongoDB server the tests did not start (``SEV_TEST_MONGODB_URI``): it cannot be stopped."""

    external = True

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not mongo_ping(self.uri, timeout_ms=1000):
            if time.monotonic() > deadline:
                raise ServiceError(f"MongoDB at {self.uri} does not answer ping")
            time.sleep(0.2)

    def _cannot(self, action: str) -> NoReturn:
        # Skipped locally, failed in CI: a CI run must not silently lose the outage tests.
        require(
            f"{action} of the MongoDB server",
            False,
            "SEV_TEST_MONGODB_URI points at an external server; unset it to let the tests run "
            "their own FerretDB",
        )
        raise AssertionError("unreachable")  # require() raised

    def start(self, timeout: float | None = None) -> NoReturn:
        self._cannot("start")

    def stop(self, timeout: float | None = None) -> NoReturn:
        self._cannot("stop")

    def restart(self, timeout: float | None = None) -> NoReturn:
        self._cannot("restart")

    def __repr__(self) -> str:
        return f"<ExternalMongoServer {self.uri}>"


def mongo_ping(uri: str, timeout_ms: int = 500) -> bool:
    """True if the server at ``uri`` answers ``ping`` (sync PyMongo, short timeouts)."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client: MongoClient[dict[str, Any]] = MongoClient(
        uri,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms, 2000),
    )
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


class RedisServer(_Service):
    """``redis-server`` without persistence: a restart keeps the port but not the data."""

    name = "redis"

    def __init__(self, binary: str | Path | None = None, port: int | None = None) -> None:
        found = binary if binary is not None else shutil.which("redis-server")
        if found is None:
            raise ServiceError("redis-server is not on PATH: apt-get install redis-server")
        self.binary = Path(found)
        super().__init__(port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _argv(self) -> list[str]:
        return [
            str(self.binary),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.workdir),
            "--logfile", "",
        ]  # fmt: skip

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False
