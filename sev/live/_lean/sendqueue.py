"""A viewer's send queue without the cost of an idle `asyncio.Queue`.

engine.io gives every socket an `asyncio.Queue` (through `AsyncServer.create_queue`, which
engine.py overrides) drained by the socket's writer task. An empty `asyncio.Queue` holds three
deques and an `asyncio.Event` with a fourth: about 3.2 KB per connected viewer, idle or not
(docs/PERFORMANCE.md). `SendQueue` has the same interface for that one use (unbounded, FIFO,
`task_done`/`join`) and holds nothing while empty: its deque exists only while packets wait.

It keeps `asyncio.Queue`'s attribute names for the two things rooms.py reads to tell an idle
writer (`_getters`: futures of pending `get` calls; `_queue`: the waiting items, falsy when
none), so RoomManager works the same over either queue.

A queue can also be drained without any task waiting on it: `writer`, when set (by
transport.py, for a websocket SEV writes itself), is told of every `put` (`writer.wake()`) and
says whether it is idle (`writer.idle`), as a waiting `get` does for engine.io's writer task.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class SendQueue:
    """An unbounded FIFO queue with `asyncio.Queue`'s methods, empty when idle."""

    __slots__ = ("_getters", "_joiners", "_queue", "_unfinished", "writer")

    def __init__(self) -> None:
        self._queue: deque[Any] | None = None
        self._getters: list[asyncio.Future[None]] = []
        self._joiners: list[asyncio.Future[None]] | None = None
        self._unfinished = 0
        # Drains the queue on `put` when there is no writer task (transport.py), else None.
        self.writer: Any = None

    def qsize(self) -> int:
        """How many items wait."""
        return len(self._queue) if self._queue else 0

    def empty(self) -> bool:
        """True when no item waits."""
        return not self._queue

    def full(self) -> bool:
        """Never: the queue is unbounded (rooms.py bounds it by disconnecting)."""
        return False

    def put_nowait(self, item: Any) -> None:
        """Append an item and wake the oldest waiting `get`."""
        if self._queue is None:
            self._queue = deque()
        self._queue.append(item)
        self._unfinished += 1
        self._wake_getter()
        if self.writer is not None:
            self.writer.wake()

    async def put(self, item: Any) -> None:
        """As `put_nowait` (never waits: unbounded)."""
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        """The oldest item; asyncio.QueueEmpty if none."""
        if not self._queue:
            raise asyncio.QueueEmpty
        item = self._queue.popleft()
        if not self._queue:
            self._queue = None
        return item

    async def get(self) -> Any:
        """The oldest item, waiting for one if needed."""
        while not self._queue:
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                if getter in self._getters:
                    self._getters.remove(getter)
                elif self._queue:
                    # Woken, then cancelled: pass the wake-up on.
                    self._wake_getter()
                raise
        return self.get_nowait()

    def task_done(self) -> None:
        """One item fully processed; wakes `join` when none is left unfinished."""
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._joiners:
            joiners, self._joiners = self._joiners, None
            for joiner in joiners:
                if not joiner.done():
                    joiner.set_result(None)

    async def join(self) -> None:
        """Wait until every item put has been marked done."""
        if self._unfinished:
            joiner = asyncio.get_running_loop().create_future()
            if self._joiners is None:
                self._joiners = []
            self._joiners.append(joiner)
            await joiner

    def _wake_getter(self) -> None:
        while self._getters:
            getter = self._getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return
