"""The service fixtures work: real FerretDB, Redis and Twitch's CLI on loopback ports."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure

from tests.support.services import (
    CHROMIUM_ARGS,
    MongoServer,
    RedisServer,
    free_port,
    mongo_ping,
    require,
    tools_bin_dir,
)


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_tools_bin_dir_honours_sev_tools_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SEV_TOOLS_DIR", str(tmp_path))
    assert tools_bin_dir() == tmp_path / "bin"
    monkeypatch.setenv("SEV_TOOLS_DIR", "")
    assert tools_bin_dir().parts[-3:] == (".cache", "sev-tools", "bin")


def test_chromium_args_keep_chromium_offline() -> None:
    assert "--no-sandbox" in CHROMIUM_ARGS
    assert "--disable-background-networking" in CHROMIUM_ARGS


def test_ferretdb_answers_ping(mongo_server: MongoServer) -> None:
    assert mongo_server.uri.startswith("mongodb://")
    assert mongo_ping(mongo_server.uri)


async def test_ferretdb_round_trip_survives_a_restart_on_the_same_port(
    mongo_server: MongoServer,
) -> None:
    database = f"sev_test_{uuid.uuid4().hex[:12]}"
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        mongo_server.uri, serverSelectionTimeoutMS=500, connectTimeoutMS=500
    )
    try:
        events = client[database]["events"]
        await events.insert_one({"_id": "e1", "type": "channel.follow", "seq": 1})
        assert await events.find_one({"_id": "e1"}) == {
            "_id": "e1",
            "type": "channel.follow",
            "seq": 1,
        }
        assert [d["_id"] async for d in events.find({"seq": {"$gte": 1}})] == ["e1"]

        uri = mongo_server.uri
        mongo_server.stop()
        try:
            # The pooled connection dies (AutoReconnect), then server selection times out:
            # both are ConnectionFailure, and both come quickly.
            for _ in range(2):
                started = time.monotonic()
                with pytest.raises(ConnectionFailure):
                    await client.admin.command("ping")
                assert time.monotonic() - started < 5
            assert not mongo_ping(mongo_server.uri)
        finally:
            mongo_server.start()
        assert mongo_server.uri == uri

        assert await events.find_one({"_id": "e1"}) == {
            "_id": "e1",
            "type": "channel.follow",
            "seq": 1,
        }
        await client.drop_database(database)
    finally:
        await client.close()


async def test_redis_set_get(redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        key = f"sev:test:{uuid.uuid4().hex}"
        await client.set(key, "hello", ex=60)
        assert await client.get(key) == b"hello"
        await client.delete(key)
    finally:
        await client.aclose()


async def test_redis_restarts_on_the_same_port(redis_server: RedisServer) -> None:
    port = redis_server.port
    redis_server.stop()
    redis_server.start()
    assert redis_server.port == port
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        await client.set("sev:test:restarted", "yes", ex=60)
        assert await client.get("sev:test:restarted") == b"yes"
    finally:
        await client.aclose()


def test_a_missing_service_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require("a service", False, "install it")
    for value in ("true", "1", "TRUE "):
        monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.fail.Exception, match="CI: a missing test service is an error"):
            require("a service", False, "install it")
    require("a service", True, "nothing to do")  # present: neither


@pytest.mark.parametrize(("ci", "code", "summary"), [("true", 1, "1 failed"), ("", 0, "1 skipped")])
def test_any_skip_fails_the_run_in_ci(tmp_path: Path, ci: str, code: int, summary: str) -> None:
    # A skip that does not go through require(): CI must still not pass with it.
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n\ndef test_skipped():\n    pytest.skip('no service here')\n"
    )
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.support.no_skips",
            "-p",
            "no:cacheprovider",
            "-c",
            os.devnull,
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_skips.py"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == code, result.stdout[-2000:]
    assert summary in result.stdout
    if ci:
        assert "with CI=true every test must run" in result.stdout
