"""Retention: events older than SEV_EVENT_RETENTION_DAYS are deleted, in bounded batches.

Run as a duty (`sev/jobs.py`), so one process at a time does it. Both stores delete by the
moment SEV received an event; MongoDB's TTL index (where the server has one) does the same
on its own, and this duty still covers servers without TTL indexes (FerretDB v1) and events
stored before the indexed date existed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sev.clock import now_utc
from sev.store import Store

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0
# One delete of this many events holds SQLite's write lock for milliseconds, not seconds:
# webhooks go on being stored between batches.
PRUNE_BATCH = 1000
# A backlog larger than this (a lowered setting, a long outage) is worked down over several runs.
PRUNE_MAX_BATCHES = 100


class Retention:
    """Deletes a store's events once they are older than the retention."""

    def __init__(
        self,
        store: Store,
        days: int,
        *,
        batch: int = PRUNE_BATCH,
        max_batches: int = PRUNE_MAX_BATCHES,
    ) -> None:
        self._store = store
        self._days = days
        self._batch = batch
        self._max_batches = max_batches

    async def prune(self) -> int:
        """Delete events received more than the retention ago; return how many went."""
        cutoff = now_utc() - timedelta(days=self._days)
        total = 0
        for _ in range(self._max_batches):
            deleted = await self._store.prune_events(cutoff, self._batch)
            total += deleted
            if deleted < self._batch:
                break
            await asyncio.sleep(0)
        if total:
            log.info("retention: deleted %d events received before %s", total, cutoff.isoformat())
        return total

    async def run(self) -> None:
        """The duty: one pruning pass."""
        await self.prune()
