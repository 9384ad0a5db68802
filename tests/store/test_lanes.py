"""Per-broadcaster lanes in Redis (sev/store/lanes.py) around the MongoDB store's batches.

Real services: the MongoDB-wire server and redis-server (fixtures). Two MongoStore instances on
one database are two SEV processes.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from redis.asyncio import Redis

from sev.crypto import TokenCipher
from sev.store.lanes import RedisLanes
from sev.store.mongo import MongoStore
from tests.support.factories import make_event
from tests.support.services import RedisServer
from tests.support.settings import SESSION_SECRET, TOKEN_KEY


@asynccontextmanager
async def two_processes(
    mongo_uri: str, redis_url: str | None, **lanes: Any
) -> AsyncIterator[list[MongoStore]]:
    database = f"sev_lanes_{uuid.uuid4().hex[:12]}"
    stores = [
        MongoStore(
            mongo_uri,
            TokenCipher(TOKEN_KEY),
            database=database,
            lanes=(
                RedisLanes(redis_url, prefix=f"{database}:", **lanes)
                if redis_url is not None
                else None
            ),
        )
        for _ in range(2)
    ]
    for store in stores:
        await store.open()
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()
            if store.lanes is not None:
                await store.lanes.close()


async def take_turns(stores: list[MongoStore], count: int, first: int = 0) -> list[int]:
    """A load balancer's round-robin: each process in turn gets the broadcaster's next
    webhook, and they arrive faster than a batch is stored (two in flight at once)."""

    async def one(n: int) -> list[int]:
        results = await stores[n % 2].insert_events([make_event(message_id=f"turn-{first + n}")])
        return [r.event.seq for r in results]

    seqs: list[int] = []
    for n in range(0, count, 2):
        for pair in await asyncio.gather(one(n), one(n + 1)):
            seqs += pair
    return seqs


async def test_processes_taking_turns_number_one_at_a_time_without_colliding(
    mongo_server: Any, redis_server: RedisServer
) -> None:
    async with two_processes(mongo_server.uri, redis_server.url) as stores:
        seqs = await take_turns(stores, 40)
        stored = await stores[0].events_after("1337", 0, 100)
        assert sorted(seqs) == list(range(1, 41))
        assert [e.seq for e in stored] == list(range(1, 41))
        assert [s.collisions for s in stores] == [0, 0]
        assert all(s.lanes is not None and s.lanes.held == 20 for s in stores)


async def test_without_lanes_the_same_turns_collide_and_still_keep_the_order(
    mongo_server: Any,
) -> None:
    # What the lanes save: the unique index orders the batches either way.
    async with two_processes(mongo_server.uri, None) as stores:
        await take_turns(stores, 40)
        stored = await stores[0].events_after("1337", 0, 100)
        assert [e.seq for e in stored] == list(range(1, 41))
        assert sum(s.collisions for s in stores) > 0


async def test_a_lane_held_too_long_elsewhere_is_waited_for_then_written_without(
    mongo_server: Any, redis_server: RedisServer
) -> None:
    async with two_processes(mongo_server.uri, redis_server.url, wait_s=0.3) as stores:
        await stores[0].insert_events([make_event(message_id="first")])
        lanes = stores[1].lanes
        assert lanes is not None
        async with Redis.from_url(redis_server.url) as redis:
            # A holder that hangs (its lane would expire by itself after HOLD_MS).
            await redis.set(f"{lanes._prefix}1337", "somebody-else", px=60_000)
            started = time.monotonic()
            [result] = await stores[1].insert_events([make_event(message_id="second")])
            waited = time.monotonic() - started
        assert 0.3 <= waited < 2.0
        assert result.created and result.event.seq == 2
        assert lanes.unheld == 1


async def test_batches_are_stored_while_redis_is_down(
    mongo_server: Any, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sev.store.lanes")
    async with two_processes(mongo_server.uri, redis_server.url) as stores:
        await take_turns(stores, 4)
        redis_server.stop()
        try:
            started = time.monotonic()
            seqs = await take_turns(stores, 6, first=4)
            assert time.monotonic() - started < 5
        finally:
            redis_server.start()
        seqs += await take_turns(stores, 4, first=10)
        stored = await stores[0].events_after("1337", 0, 100)
    assert sorted(seqs) == list(range(5, 15))
    assert [e.seq for e in stored] == list(range(1, 15))
    logged = [r.getMessage() for r in caplog.records if r.name == "sev.store.lanes"]
    # One line per process when Redis goes, one when it is back: not one per batch.
    assert sum("unavailable" in line for line in logged) == 2, logged
    assert sum("back" in line for line in logged) == 2, logged


async def test_with_a_secret_where_a_holder_stopped_is_sealed_and_turns_still_do_not_collide(
    mongo_server: Any, redis_server: RedisServer
) -> None:
    async with two_processes(mongo_server.uri, redis_server.url, secret=SESSION_SECRET) as stores:
        seqs = await take_turns(stores, 20)
        lanes = stores[0].lanes
        assert lanes is not None
        async with Redis.from_url(redis_server.url) as redis:
            left = await redis.get(f"{lanes._prefix}1337:next")
    assert sorted(seqs) == list(range(1, 21))
    assert [s.collisions for s in stores] == [0, 0]
    assert all(s.lanes is not None and s.lanes.invalid == 0 for s in stores)
    seq, _, mac = left.partition(b".")
    assert seq == b"21" and len(mac) == 64


@pytest.mark.parametrize(
    "value",
    [
        # Each case is a database of its own; the reading itself is tested case by case below.
        pytest.param(b"banana", id="not-a-number"),
        pytest.param(b"1000", id="plausible-but-unsealed"),
        pytest.param(b"x" * 100_000, id="huge"),
        pytest.param(None, id="sealed-for-another-broadcaster"),
    ],
)
async def test_a_next_seq_sev_did_not_write_is_ignored_and_logged_once(
    mongo_server: Any,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
    value: bytes | None,
) -> None:
    from sev.store.lanes import lane_key, next_value

    if value is None:
        value = next_value(1000, "4242", lane_key(SESSION_SECRET)).encode()
    caplog.set_level(logging.WARNING, logger="sev.store.lanes")
    async with two_processes(mongo_server.uri, redis_server.url, secret=SESSION_SECRET) as stores:
        await stores[0].insert_events([make_event(message_id="first")])
        lanes = stores[1].lanes
        assert lanes is not None
        async with Redis.from_url(redis_server.url) as redis:
            for n in range(2):
                await redis.set(f"{lanes._prefix}1337:next", value)
                await stores[1].insert_events([make_event(message_id=f"then-{n}")])
        stored = await stores[0].events_after("1337", 0, 10)
    assert [e.seq for e in stored] == [1, 2, 3]
    assert lanes.invalid == 2
    logged = [r.getMessage() for r in caplog.records if r.name == "sev.store.lanes"]
    # One line for both (rate-limited), naming the key, never the value.
    assert len(logged) == 1, logged
    assert logged[0].startswith("ignored 1 value(s)"), logged
    assert f"(last: {lanes._prefix}1337:next);" in logged[0], logged


@pytest.mark.parametrize(
    ("value", "sealed", "seq"),
    [
        (b"42", False, 42),
        (b"1", False, 1),
        (b"9223372036854775807", False, 2**63 - 1),
        (b"9223372036854775808", False, None),
        (b"42.", False, None),
        (b"+42", False, None),
        (b"4_2", False, None),
        ("42", False, None),
        (b"\xd9\xa4\xd9\xa2", False, None),  # Arabic-Indic digits: isdigit() yet not ASCII
        (b"42", True, None),
        (b" 7", False, None),
        (b"-5", False, None),
        (b"0", False, None),
        (b"9" * 30, False, None),
        (b"1000." + b"0" * 64, True, None),
        (b"x" * 100_000, False, None),
    ],
)
def test_reading_a_next_seq_takes_only_what_sev_writes(
    value: bytes | str, sealed: bool, seq: int | None
) -> None:
    from sev.store.lanes import lane_key, next_value, read_next

    key = lane_key(SESSION_SECRET) if sealed else None
    assert read_next(value, "1337", key) == seq
    assert read_next(next_value(77, "1337", key).encode(), "1337", key) == 77
