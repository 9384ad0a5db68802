"""The ingest worker with a real embedded store: one event the store cannot take fails alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sev.crypto import TokenCipher
from sev.events import Event
from sev.ingest import Ingestor, Unstorable
from sev.store.sqlite import SqliteStore
from tests.support.factories import make_event
from tests.support.settings import TOKEN_KEY


async def test_an_unstorable_event_fails_alone_and_the_rest_are_stored_and_published(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "sev.sqlite3", TokenCipher(TOKEN_KEY))
    await store.open()
    published: list[Event] = []

    async def publish(event: Event) -> None:
        published.append(event)

    ingestor = Ingestor(store, publish)
    await ingestor.start()
    try:
        good = [make_event(message_id=f"good-{n}") for n in range(3)]
        # Built past the webhook (which replaces lone surrogates): SQLite cannot encode it.
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
async def test_a_store_outage_fails_every_event_of_the_batch(tmp_path: Path, count: int) -> None:
    store = SqliteStore(tmp_path / "sev.sqlite3", TokenCipher(TOKEN_KEY))
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
