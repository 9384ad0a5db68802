"""Shared fixtures. Each section is self-contained; keep it between its marker comments."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.services import (
    BUILD_HINT,
    ExternalMongoServer,
    MongoServer,
    RedisServer,
    ferretdb_path,
    is_executable,
    require,
)

# --- services ---
# Real servers for the whole session, on free loopback ports (tests/services.py). A missing
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
