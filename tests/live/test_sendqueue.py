"""SendQueue (sev/live/_lean/sendqueue.py) behaves as asyncio.Queue does for engine.io's writer."""

from __future__ import annotations

import asyncio
import sys
from collections import deque

import pytest

from sev.live._lean.sendqueue import SendQueue


@pytest.mark.parametrize("make", [SendQueue, asyncio.Queue], ids=["SendQueue", "asyncio.Queue"])
async def test_fifo_get_waits_and_join_waits_for_task_done(make: type) -> None:
    queue = make()
    assert queue.empty() and queue.qsize() == 0
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert len(queue._getters) == 1 and not queue._queue  # an idle writer, as rooms.py sees it
    await queue.put("a")
    queue.put_nowait("b")
    assert await getter == "a"
    assert queue.qsize() == 1 and queue.get_nowait() == "b"
    joined = asyncio.ensure_future(queue.join())
    await asyncio.sleep(0)
    assert not joined.done()
    queue.task_done()
    await asyncio.sleep(0)
    assert not joined.done()
    queue.task_done()
    await asyncio.wait_for(joined, 1)
    with pytest.raises(ValueError):
        queue.task_done()


async def test_a_cancelled_get_leaves_no_waiter_and_passes_a_wake_up_on() -> None:
    queue = SendQueue()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.get(), 0.01)
    assert queue._getters == []
    first, second = asyncio.ensure_future(queue.get()), asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(1)
    first.cancel()  # woken, then cancelled before it ran: the other getter takes the item
    assert await asyncio.wait_for(second, 1) == 1
    assert first.cancelled()


def test_an_empty_queue_holds_no_deque() -> None:
    queue = SendQueue()
    queue.put_nowait(1)
    queue.get_nowait()
    assert queue._queue is None
    assert sys.getsizeof(queue) + sys.getsizeof(queue._getters) < 200
    assert sys.getsizeof(deque()) > 500  # an idle asyncio.Queue holds four of these
