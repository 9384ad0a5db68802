"""The viewer protocol (sev/live/viewers.py) on a real embedded SQLite store.

The rooms are the interface's other side, so a test implements them (`_Rooms`); everything
else is SEV's own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from sev.crypto import TokenCipher
from sev.events import Event
from sev.live.viewers import (
    BUSY_ERROR,
    CALLS_PER_WINDOW,
    MAX_ACK_EVENT_BYTES,
    RATE_ERROR,
    SESSION_ENDED_REASON,
    Session,
    Viewers,
)
from sev.store import MAX_CATCH_UP, Broadcaster, Store, User
from sev.store.sqlite import SqliteStore
from tests.support.factories import make_event

ALPHA = Broadcaster(id="101", login="alpha", display_name="Alpha")
BETA = Broadcaster(id="202", login="beta", display_name="Beta")
VIEWER = "sid-1"


class _Rooms:
    """Rooms in a dict; `on_join` runs inside `join`, before it returns."""

    def __init__(self) -> None:
        self.members: dict[str, set[str]] = {}
        self.on_join: Callable[[], Awaitable[None]] | None = None

    async def join(self, viewer: str, broadcaster_id: str) -> None:
        self.members.setdefault(broadcaster_id, set()).add(viewer)
        if self.on_join is not None:
            await self.on_join()

    async def leave(self, viewer: str, broadcaster_id: str) -> None:
        self.members.get(broadcaster_id, set()).discard(viewer)

    def watching(self, viewer: str) -> list[str]:
        return [b for b, viewers in self.members.items() if viewer in viewers]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = SqliteStore(tmp_path / "sev.sqlite3", TokenCipher(Fernet.generate_key().decode()))
    await opened.open()
    await opened.save_broadcaster(ALPHA)
    await opened.save_broadcaster(BETA)
    yield opened
    await opened.close()


@pytest.fixture
def rooms() -> _Rooms:
    return _Rooms()


@pytest.fixture
def sent() -> list[tuple[str, int]]:
    return []


@pytest.fixture
def viewers(store: Store, rooms: _Rooms, sent: list[tuple[str, int]]) -> Viewers:
    return Viewers(store, rooms, sent=lambda b, seq: sent.append((b, seq)))


async def _store_events(store: Store, broadcaster: Broadcaster, count: int, **data: Any) -> None:
    await store.insert_events([make_event(broadcaster.id, **data) for _ in range(count)])


def _seqs(ack: dict[str, Any]) -> list[int]:
    return [event["seq"] for event in ack["events"]]


async def test_watch_answers_the_newest_events_and_joins_the_room(
    store: Store, rooms: _Rooms, viewers: Viewers, sent: list[tuple[str, int]]
) -> None:
    await _store_events(store, ALPHA, 15)
    ack = await viewers.watch(VIEWER, Session("7"), "Alpha", None)
    assert ack["streamer"]["login"] == "alpha"
    assert _seqs(ack) == list(range(15, 5, -1))
    assert "gap" not in ack
    assert rooms.watching(VIEWER) == [ALPHA.id]
    assert sent == [(ALPHA.id, 15)]


async def test_watch_after_a_seq_answers_every_newer_event(store: Store, viewers: Viewers) -> None:
    await _store_events(store, ALPHA, 30)
    ack = await viewers.watch(VIEWER, Session("7"), "alpha", 12)
    assert _seqs(ack) == list(range(30, 12, -1))


async def test_watch_joins_the_room_before_reading_the_store(
    store: Store, rooms: _Rooms, viewers: Viewers
) -> None:
    await _store_events(store, ALPHA, 3)

    async def publish_while_joining() -> None:
        await _store_events(store, ALPHA, 1)

    # An event stored while the viewer joins is in the ack (and reaches the room too).
    rooms.on_join = publish_while_joining
    ack = await viewers.watch(VIEWER, Session("7"), "alpha", 3)
    assert _seqs(ack) == [4]


async def test_watch_leaves_the_streamer_watched_before(rooms: _Rooms, viewers: Viewers) -> None:
    await viewers.watch(VIEWER, Session("7"), "alpha", None)
    await viewers.watch(VIEWER, Session("7"), "beta", None)
    assert rooms.watching(VIEWER) == [BETA.id]


async def test_watch_cuts_an_ack_past_its_budget_to_the_newest_with_a_gap(
    store: Store, viewers: Viewers, sent: list[tuple[str, int]]
) -> None:
    await _store_events(store, ALPHA, 8, pad="x" * 300_000)
    ack = await viewers.watch(VIEWER, Session("7"), "alpha", 0)
    assert ack["gap"] is True
    assert _seqs(ack) == [8, 7, 6]
    assert sum(len(json.dumps(event)) for event in ack["events"]) <= MAX_ACK_EVENT_BYTES
    assert sent == [(ALPHA.id, 8)]


async def test_watch_answers_one_event_larger_than_the_budget(
    store: Store, viewers: Viewers
) -> None:
    await _store_events(store, ALPHA, 2, pad="x" * (MAX_ACK_EVENT_BYTES + 1))
    ack = await viewers.watch(VIEWER, Session("7"), "alpha", 0)
    assert _seqs(ack) == [2]
    assert ack["gap"] is True


@pytest.mark.parametrize(
    ("streamer", "after", "error"),
    [
        (None, None, "watch needs {streamer: login, after: seq or null}"),
        (7, None, "watch needs {streamer: login, after: seq or null}"),
        ("not a login!", None, "invalid streamer or after"),
        ("alpha", True, "invalid streamer or after"),
        ("alpha", -1, "invalid streamer or after"),
        ("alpha", "3", "invalid streamer or after"),
        ("nobody", None, "SEV does not follow nobody yet: set it as a favourite first"),
    ],
)
async def test_watch_refuses_what_it_cannot_answer(
    rooms: _Rooms, viewers: Viewers, streamer: object, after: object, error: str
) -> None:
    assert await viewers.watch(VIEWER, Session("7"), streamer, after) == {"error": error}
    assert rooms.watching(VIEWER) == []


async def test_watch_ends_an_unchecked_session_the_store_says_is_over(
    store: Store, rooms: _Rooms, viewers: Viewers
) -> None:
    await store.save_user(
        User(id="7", login="v", display_name="V", session_ended_reason="Twitch refused it")
    )
    session = Session("7", unchecked=True, epoch=0)
    assert await viewers.watch(VIEWER, session, "alpha", None) == {"error": "Twitch refused it"}
    assert session.ended == "Twitch refused it"
    assert rooms.watching(VIEWER) == []


async def test_watch_ends_an_unchecked_session_of_an_old_epoch(
    store: Store, viewers: Viewers
) -> None:
    await store.save_user(User(id="7", login="v", display_name="V", session_epoch=2))
    session = Session("7", unchecked=True, epoch=1)
    assert await viewers.watch(VIEWER, session, "alpha", None) == {"error": SESSION_ENDED_REASON}
    assert session.ended == SESSION_ENDED_REASON


async def test_watch_checks_an_unchecked_session_once_it_proves_current(
    store: Store, viewers: Viewers
) -> None:
    await store.save_user(User(id="7", login="v", display_name="V", session_epoch=2))
    session = Session("7", unchecked=True, epoch=2)
    ack = await viewers.watch(VIEWER, session, "alpha", None)
    assert "error" not in ack
    assert session.unchecked is False
    assert session.ended is None


async def test_a_second_call_while_one_runs_is_refused(
    store: Store, rooms: _Rooms, viewers: Viewers
) -> None:
    joining, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        joining.set()
        await release.wait()

    rooms.on_join = hold
    first = asyncio.create_task(viewers.watch(VIEWER, Session("7"), "alpha", None))
    await joining.wait()
    busy = {"error": BUSY_ERROR, "retry": True}
    assert await viewers.watch(VIEWER, Session("7"), "beta", None) == busy
    assert await viewers.fill(VIEWER, Session("7"), "alpha", 1, 3) == busy
    # Another viewer of the same user is not held up.
    assert await viewers.fill("sid-2", Session("7"), "alpha", 1, 3) == {
        "error": "watch alpha first"
    }
    release.set()
    assert "error" not in await first
    # Once the call is answered, the next one runs.
    assert await viewers.fill(VIEWER, Session("7"), "alpha", 1, 3) == {"events": []}


async def test_calls_past_the_rate_are_refused_per_user(viewers: Viewers) -> None:
    for _ in range(CALLS_PER_WINDOW):
        assert (await viewers.fill(VIEWER, Session("7"), "alpha", 1, 3))["error"] == (
            "watch alpha first"
        )
    refused = {"error": RATE_ERROR, "retry": True}
    assert await viewers.fill(VIEWER, Session("7"), "alpha", 1, 3) == refused
    # Another socket of the same user shares the count; another user has their own.
    assert await viewers.watch("sid-2", Session("7"), "alpha", None) == refused
    assert "error" not in await viewers.watch("sid-3", Session("8"), "alpha", None)


async def test_malformed_calls_do_not_count_against_the_rate(viewers: Viewers) -> None:
    for _ in range(CALLS_PER_WINDOW + 1):
        await viewers.fill(VIEWER, Session("7"), "alpha", 5, 5)
        await viewers.watch(VIEWER, Session("7"), "alpha", True)
    assert "error" not in await viewers.watch(VIEWER, Session("7"), "alpha", None)


async def test_fill_refuses_a_streamer_not_watched(store: Store, viewers: Viewers) -> None:
    await _store_events(store, ALPHA, 5)
    assert await viewers.fill(VIEWER, Session("7"), "alpha", 1, 4) == {"error": "watch alpha first"}
    await viewers.watch(VIEWER, Session("7"), "beta", None)
    assert await viewers.fill(VIEWER, Session("7"), "alpha", 1, 4) == {"error": "watch alpha first"}


async def test_fill_answers_the_events_strictly_between_two_seqs(
    store: Store, viewers: Viewers
) -> None:
    await _store_events(store, ALPHA, 20)
    await viewers.watch(VIEWER, Session("7"), "alpha", None)
    assert _seqs(await viewers.fill(VIEWER, Session("7"), "alpha", 3, 8)) == [7, 6, 5, 4]
    assert _seqs(await viewers.fill(VIEWER, Session("7"), "alpha", 3, 4)) == []


async def test_fill_cuts_past_its_budget_with_a_gap(store: Store, viewers: Viewers) -> None:
    await _store_events(store, ALPHA, 8, pad="x" * 300_000)
    await viewers.watch(VIEWER, Session("7"), "alpha", 8)
    ack = await viewers.fill(VIEWER, Session("7"), "alpha", 0, 9)
    assert ack["gap"] is True
    assert _seqs(ack) == [8, 7, 6]


@pytest.mark.parametrize(
    ("streamer", "after", "before", "error"),
    [
        (None, 1, 3, "fill needs {streamer: login, after: seq, before: seq}"),
        ("alpha", None, 3, "invalid streamer, after or before"),
        ("alpha", 3, 3, "invalid streamer, after or before"),
        ("alpha", False, 3, "invalid streamer, after or before"),
        ("alpha", 0, MAX_CATCH_UP + 2, f"fill at most {MAX_CATCH_UP} events at a time"),
    ],
)
async def test_fill_refuses_what_it_cannot_answer(
    viewers: Viewers, streamer: object, after: object, before: object, error: str
) -> None:
    assert await viewers.fill(VIEWER, Session("7"), streamer, after, before) == {"error": error}


async def test_fill_answers_a_full_hundred(store: Store, viewers: Viewers) -> None:
    await _store_events(store, ALPHA, MAX_CATCH_UP + 1)
    await viewers.watch(VIEWER, Session("7"), "alpha", None)
    ack = await viewers.fill(VIEWER, Session("7"), "alpha", 0, MAX_CATCH_UP + 1)
    assert _seqs(ack) == list(range(MAX_CATCH_UP, 0, -1))


async def test_missed_reads_every_page_above_a_seq_oldest_first(
    store: Store, viewers: Viewers
) -> None:
    count = MAX_CATCH_UP * 2 + 30
    await _store_events(store, ALPHA, count)
    missed: list[Event] = [event async for event in viewers.missed(ALPHA.id, 10)]
    assert [event.seq for event in missed] == list(range(11, count + 1))
    assert [event async for event in viewers.missed(ALPHA.id, count)] == []
