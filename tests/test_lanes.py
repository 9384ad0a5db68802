"""Per-broadcaster lanes in Redis (sev/lanes.py) around the MongoDB store's batches.

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
from sev.lanes import RedisLanes
from sev.store.mongo import MongoStore
from tests.support.factories import make_event
from tests.support.services import RedisServer
from tests.support.settings import TOKEN_KEY


@asynccontextmanager
async def two_processes(
    mongo_uri: str, redis_url: str | None, **lanes: Any
) -> AsyncIterator[list[MongoStore]]:
    database = f"sev_lanes_{uuid.uuid4().hex[:12]}"
    stores = [MongoStore(mongo_uri, TokenCipher(TOKEN_KEY), database=database) for _ in range(2)]
    for store in stores:
        await store.open()
        if redis_url is not None:
            store.lanes = RedisLanes(redis_url, prefix=f"{database}:", **lanes)
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
    caplog.set_level(logging.WARNING, logger="sev.lanes")
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
    logged = [r.getMessage() for r in caplog.records if r.name == "sev.lanes"]
    # One line per process when Redis goes, one when it is back: not one per batch.
    assert sum("unavailable" in line for line in logged) == 2, logged
    assert sum("back" in line for line in logged) == 2, logged
