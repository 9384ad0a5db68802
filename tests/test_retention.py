"""Retention: old events deleted in bounded batches, by the duty SEV runs under a lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sev.clock import format_timestamp
from sev.crypto import TokenCipher
from sev.events import Event
from sev.retention import Retention
from sev.store.sqlite import SqliteStore
from tests.support.apps import running_app
from tests.support.factories import make_event
from tests.support.polling import eventually
from tests.support.settings import TOKEN_KEY


def _aged(message_id: str, days: float) -> Event:
    moment = datetime.now(UTC) - timedelta(days=days)
    return make_event(message_id=message_id).model_copy(
        update={"received_at": format_timestamp(moment)}
    )


async def test_retention_deletes_in_bounded_batches(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "sev.sqlite3", TokenCipher(TOKEN_KEY))
    await store.open()
    try:
        await store.insert_events([_aged(f"old-{n}", 8) for n in range(5)] + [_aged("recent", 6)])
        retention = Retention(store, 7, batch=2, max_batches=2)
        assert await retention.prune() == 4  # at most two batches of two per run
        assert await retention.prune() == 1
        assert await retention.prune() == 0
        assert [e.id for e in await store.events_after("1337", 0, 10)] == ["recent"]
    finally:
        await store.close()


async def test_sev_prunes_old_events_at_start_and_keeps_the_rest(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "var" / "sev.sqlite3", TokenCipher(TOKEN_KEY))
    await store.open()
    await store.insert_events([_aged("too-old", 3), _aged("kept", 1)])
    await store.close()
    async with running_app(tmp_path, sev_event_retention_days=2) as app:

        async def pruned() -> bool:
            return [e.id for e in await app.store.events_after("1337", 0, 10)] == ["kept"]

        await eventually(pruned, what="the retention duty's first run")
