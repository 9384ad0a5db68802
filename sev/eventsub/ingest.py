"""The path from a verified notification to viewers: store in batches, then publish in order.

One worker owns the path. Concurrent webhooks hand their events to it; it stores whatever has
queued up in one write (group commit: one fsync for many events), answers each webhook only once
its event is durably stored, then publishes the new events in seq order. Because one task does
all of this, an event is published only after every lower seq of its broadcaster was stored and
published, which is what lets a reconnecting client ask for `after=seq` and miss nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sev.events import Event
from sev.store import Inserted, Store, StoreUnavailable

log = logging.getLogger(__name__)

Publish = Callable[[Event], Awaitable[None]]
_Item = tuple[Event, "asyncio.Future[Inserted]"]


class Unstorable(Exception):
    """The store refused this one event for what it holds (not for being down)."""


class Ingestor:
    """Group-committing event writer with in-order publishing."""

    def __init__(
        self,
        store: Store,
        publish: Publish,
        *,
        max_batch: int = 256,
        prepare: Callable[[list[Event]], Awaitable[list[Event]]] | None = None,
    ) -> None:
        self._store = store
        self._publish = publish
        # What happens to stored events before they are published (the actors' pictures): after
        # the webhooks were answered, so it never holds up an acknowledgement.
        self._prepare = prepare
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        # With `prepare`, a second task publishes (in the order stored, one batch at a time), so
        # that preparing waits for Twitch without holding up the next batch's store and answers.
        self._published: asyncio.Queue[list[Event]] = asyncio.Queue()
        self._publisher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the worker."""
        self._task = asyncio.create_task(self._run(), name="sev-ingest")
        if self._prepare is not None:
            self._publisher = asyncio.create_task(self._run_publisher(), name="sev-publish")

    async def stop(self) -> None:
        """Finish what is queued, then stop the worker."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            # Bounded: a store that hangs must not keep the process from stopping.
            await asyncio.wait_for(self._queue.join(), timeout=10)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._publisher is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._published.join(), timeout=5)
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
            self._publisher = None

    async def ingest(self, event: Event) -> Inserted:
        """Store one event; return once it is durably stored (raises StoreUnavailable)."""
        if self._task is None or self._task.done():
            raise StoreUnavailable("the ingest worker is not running")
        future: asyncio.Future[Inserted] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((event, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[_Item]) -> None:
        try:
            results = await self._store.insert_events([event for event, _ in batch])
        except StoreUnavailable as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        except Exception:
            # One event the store cannot take must not fail its neighbours: one at a time.
            log.exception(
                "storing a batch of %d events failed; storing them one by one", len(batch)
            )
            results = await self._commit_one_by_one(batch)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
        created = [result.event for result in results if result.created]
        if not created:
            return
        if self._publisher is not None:
            self._published.put_nowait(created)
        else:
            await self._publish_all(created)

    async def _run_publisher(self) -> None:
        while True:
            events = await self._published.get()
            try:
                if self._prepare is not None:
                    try:
                        events = await self._prepare(events)
                    except Exception:
                        log.exception("preparing %d events for publishing failed", len(events))
                await self._publish_all(events)
            finally:
                self._published.task_done()

    async def _publish_all(self, events: list[Event]) -> None:
        for event in events:
            try:
                await self._publish(event)
            except Exception:
                # Stored is what matters: viewers catch up through `after` on reconnect.
                log.exception("publishing event %s failed", event.id)

    async def _commit_one_by_one(self, batch: list[_Item]) -> list[Inserted]:
        stored: list[Inserted] = []
        for event, future in batch:
            try:
                [result] = await self._store.insert_events([event])
            except StoreUnavailable as error:
                future.set_exception(error)
            except Exception as error:
                # Twitch would resend it, identical, until it revoked the subscription.
                log.exception("event %s cannot be stored; acknowledged, not kept", event.id)
                future.set_exception(Unstorable(repr(error)))
            else:
                future.set_result(result)
                stored.append(result)
        return stored
