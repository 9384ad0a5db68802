"""Shared fixtures: the services, the simulated Twitch and SEV as processes, an in-process app,
and a viewer. Each section is self-contained; keep it between its marker comments."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from sev.store import Store, User
from tests.support.apps import AppHandle, running_app
from tests.support.factories import CSRF, session_cookie
from tests.support.processes import SevProcess, SimulatorProcess
from tests.support.services import (
    BUILD_HINT,
    CHROMIUM,
    CHROMIUM_ARGS,
    ExternalMongoServer,
    MongoServer,
    RedisServer,
    ferretdb_path,
    is_executable,
    require,
)

# In CI (CI=true), a skipped test fails the run (tests/support/no_skips.py).
pytest_plugins = ["tests.support.no_skips"]

# --- services ---
# Real servers for the whole session, on free loopback ports (tests/support/services.py). A missing
# binary skips the tests that need it, or fails them when CI=true. Tests pick their own
# database names (e.g. f"sev_test_{uuid4().hex[:12]}"), so they do not see each other's data.
# A test that stops a server must start it again (try/finally): the next tests share it.


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[MongoServer | ExternalMongoServer]:
    """FerretDB (ferretdb-sev) with ``.uri``, ``.stop()``, ``.start()``; or, if the environment
    sets SEV_TEST_MONGODB_URI, that server (its stop/start skip the calling test)."""
    external = os.environ.get("SEV_TEST_MONGODB_URI")
    if external:
        server = ExternalMongoServer(external)
        server.wait_ready(timeout=10)
        yield server
        return
    binary = ferretdb_path()
    require(f"ferretdb-sev ({binary})", is_executable(binary), BUILD_HINT)
    mongo = MongoServer(binary)
    try:
        mongo.start()
        yield mongo
    finally:
        mongo.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """redis-server (no persistence) with ``.url``, ``.stop()``, ``.start()``."""
    require(
        "redis-server", shutil.which("redis-server") is not None, "apt-get install redis-server"
    )
    redis = RedisServer()
    try:
        redis.start()
        yield redis
    finally:
        redis.close()


# --- end services ---


# --- processes ---
# The simulated Twitch and SEV as real processes on free loopback ports
# (tests/support/processes.py), stopped after the test in the reverse order of their start.
# `sev` is configured as for real Twitch against `simulator`; a module changes its settings
# with `pytestmark = pytest.mark.sev_env(SEV_RECONCILE_INTERVAL_S="0.5")`.


@pytest.fixture
def processes() -> Iterator[list[SimulatorProcess | SevProcess]]:
    started: list[SimulatorProcess | SevProcess] = []
    yield started
    for process in reversed(started):
        process.stop()


@pytest.fixture
def make_simulator(
    tmp_path: Path, processes: list[SimulatorProcess | SevProcess]
) -> Callable[..., SimulatorProcess]:
    """Start a simulated Twitch (optionally with tokens that live `token_lifetime` seconds)."""

    def make(token_lifetime: int | None = None) -> SimulatorProcess:
        simulator = SimulatorProcess(tmp_path, token_lifetime=token_lifetime)
        simulator.start()
        processes.append(simulator)
        return simulator

    return make


@pytest.fixture
def simulator(make_simulator: Callable[..., SimulatorProcess]) -> SimulatorProcess:
    return make_simulator()


@pytest.fixture
def make_sev(
    request: pytest.FixtureRequest, tmp_path: Path, processes: list[SimulatorProcess | SevProcess]
) -> Callable[..., SevProcess]:
    """Start SEV against a simulated Twitch, with the module's `sev_env` and these settings."""
    marker = request.node.get_closest_marker("sev_env")
    defaults: dict[str, str] = dict(marker.kwargs) if marker else {}

    def make(simulator: SimulatorProcess, port: int | None = None, **env: str) -> SevProcess:
        sev = SevProcess.against(simulator, tmp_path, env={**defaults, **env}, port=port)
        sev.start()
        processes.append(sev)
        return sev

    return make


@pytest.fixture
def sev(simulator: SimulatorProcess, make_sev: Callable[..., SevProcess]) -> SevProcess:
    return make_sev(simulator)


@pytest.fixture
async def sev_store(sev: SevProcess) -> AsyncIterator[Store]:
    """The SEV process's own store, opened from the test."""
    async with sev.store() as store:
        yield store


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like HTTP client with its own cookie jar."""
    async with httpx.AsyncClient(timeout=20) as browser:
        yield browser


@pytest.fixture
async def viewer(
    sev: SevProcess, sev_store: Store
) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """Clients logged in to `sev` as viewers "501" and "502" (session cookies, no Twitch login)."""
    clients: list[httpx.AsyncClient] = []

    def make(user_id: str) -> httpx.AsyncClient:
        cookie = session_cookie(sev.env["SEV_SESSION_SECRET"], user_id=user_id, csrf=CSRF)
        client = httpx.AsyncClient(base_url=sev.url, cookies={"sev_session": cookie}, timeout=20)
        clients.append(client)
        return client

    for user_id in ("501", "502"):
        await sev_store.save_user(
            User(id=user_id, login=f"viewer{user_id}", display_name=f"Viewer{user_id}")
        )
    yield make
    for made in clients:
        await made.aclose()


# --- end processes ---

# --- in-process app ---
# SEV's ASGI app with its lifespan run, reached through httpx's ASGITransport (fast route tests);
# Twitch at a loopback port where nothing listens.


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[AppHandle]:
    async with running_app(tmp_path) as handle:
        yield handle


# --- end in-process app ---


# --- browser ---
# Debian's Chromium through Playwright, one per test (pages: tests/support/browser.py); modules
# that use it are marked `pytestmark = pytest.mark.browser`.


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require("Chromium", is_executable(Path(CHROMIUM)), "apt-get install chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield launched
        finally:
            await launched.close()


# --- end browser ---
