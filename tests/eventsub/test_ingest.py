"""The ingest worker with each real store: one event the store cannot take fails alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from sev.crypto import TokenCipher
from sev.events import Event
from sev.eventsub.ingest import Ingestor, Unstorable
from sev.store import Store
from sev.store.mongo import MongoStore
from sev.store.sqlite import SqliteStore
from tests.support.factories import make_event
from tests.support.settings import TOKEN_KEY


@pytest.fixture(params=["sqlite", "mongo"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    cipher = TokenCipher(TOKEN_KEY)
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "sev.sqlite3", cipher)
    server = request.getfixturevalue("mongo_server")
    database = f"sev_test_{uuid.uuid4().hex[:12]}"
    return lambda: MongoStore(server.uri, cipher, database=database)


async def test_an_unstorable_event_fails_alone_and_the_rest_are_stored_and_published(
    make_store: Callable[[], Store],
) -> None:
    store = make_store()
    await store.open()
    published: list[Event] = []

    async def publish(event: Event) -> None:
        published.append(event)

    ingestor = Ingestor(store, publish)
    await ingestor.start()
    try:
        good = [make_event(message_id=f"good-{n}") for n in range(3)]
        # Built past the webhook (which replaces lone surrogates): neither SQLite nor BSON can
        # encode it.
        bad = make_event(message_id="bad").model_copy(update={"summary": "x\ud800"})
        outcomes = await asyncio.gather(
            *(ingestor.ingest(event) for event in [good[0], bad, good[1], good[2]]),
            return_exceptions=True,
        )
    finally:
        await ingestor.stop()
    try:
        assert isinstance(outcomes[1], Unstorable)
        stored = await store.events_after("1337", 0, 10)
        assert [e.id for e in stored] == ["good-0", "good-1", "good-2"]
        assert [e.seq for e in published] == [1, 2, 3]
    finally:
        await store.close()


@pytest.mark.parametrize("count", [1, 5])
async def test_a_store_outage_fails_every_event_of_the_batch(
    make_store: Callable[[], Store], count: int
) -> None:
    store = make_store()
    await store.open()
    ingestor = Ingestor(store, lambda event: asyncio.sleep(0))
    await ingestor.start()
    await store.close()  # the database is gone
    try:
        outcomes = await asyncio.gather(
            *(ingestor.ingest(make_event(message_id=f"m{n}")) for n in range(count)),
            return_exceptions=True,
        )
    finally:
        await ingestor.stop()
    assert all(type(o).__name__ == "StoreUnavailable" for o in outcomes)
