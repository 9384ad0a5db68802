"""The viewer protocol: what a page may ask of SEV (`watch`, `fill`) and what it missed.

It knows no transport: a viewer is an id the transport gives (a Socket.IO sid), a room is a
broadcaster's id, and the transport implements `Rooms`. `server.py` adapts it to Socket.IO; a
second way to reach browsers would adapt the same `Viewers`.

A viewer's calls are bounded, because each reads the store and builds an ack the size of what
it read: one call at a time per viewer, `CALLS_PER_WINDOW` store reads per user in any
`CALL_WINDOW_S` seconds (in this process), and at most about `MAX_ACK_EVENT_BYTES` of event
JSON per ack. A refused call gets an error ack with `retry: true`, which the page retries after
a back-off.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sev.events import Event
from sev.ratelimit import RateLimiter
from sev.sessions import is_current
from sev.store import MAX_CATCH_UP, MAX_SEQ, Store, StoreUnavailable
from sev.streamers import Faces, normalize_login, read_events

# Calls that read the store, per user: a page makes one per (re)connect and one per hole it
# fills. Fifty tabs of one account on three processes, a third of them reconnecting twice a
# second and the rest filling holes, make about 70 in 10 s per process (tests/live/
# test_processes.py); 200 leaves room for that (more retry after a back-off) and holds a flood
# from one account to 20 reads/s per process, each answering at most ~MAX_ACK_EVENT_BYTES.
CALLS_PER_WINDOW = 200
CALL_WINDOW_S = 10.0
# Event JSON in one ack: a catch-up of 100 ordinary events is ~100 KB; events of up to a webhook
# body's 1 MiB each would otherwise make one ack of 100 MiB.
MAX_ACK_EVENT_BYTES = 1024 * 1024
# After a Redis outage, re-send at most this many pages of MAX_CATCH_UP events per broadcaster.
CATCH_UP_PAGES = 10
BUSY_ERROR = "one call at a time"
RATE_ERROR = "too many calls; retrying"
STORE_ERROR = "SEV's database is unavailable; retrying"
WATCH_USAGE = "watch needs {streamer: login, after: seq or null}"
FILL_USAGE = "fill needs {streamer: login, after: seq, before: seq}"
SESSION_ENDED_REASON = "Your SEV session has ended: log in again to see live events."


class Rooms(Protocol):
    """The transport's rooms, one per broadcaster: a viewer in one is sent its events as they
    are published."""

    async def join(self, viewer: str, broadcaster_id: str) -> None:
        """Put the viewer in the broadcaster's room (returns once it will be sent its events)."""
        ...

    async def leave(self, viewer: str, broadcaster_id: str) -> None:
        """Take the viewer out of the broadcaster's room."""
        ...

    def watching(self, viewer: str) -> list[str]:
        """The broadcasters whose rooms the viewer is in."""
        ...


@dataclass
class Session:
    """A viewer's session as its transport keeps it between calls.

    A session let in while the store could not say whether it is current is `unchecked` (with
    the `epoch` its cookie carried): `watch` checks it, clears `unchecked` once it proves
    current (the transport keeps that), or sets `ended` to why it is not (the transport tells
    the viewer and disconnects it).
    """

    user_id: str
    unchecked: bool = False
    epoch: object = 0
    ended: str | None = None


class Viewers:
    """Answers viewers' `watch` and `fill`, and reads what they missed, from the store."""

    def __init__(
        self,
        store: Store,
        rooms: Rooms,
        *,
        faces: Faces | None = None,
        sent: Callable[[str, int], None] | None = None,
    ) -> None:
        self._store = store
        self._rooms = rooms
        # The actors' pictures for the watch and fill acks.
        self._faces = faces
        # Told (broadcaster id, highest seq) of each watch ack: catch-up after a Redis outage
        # starts from there.
        self._sent = sent
        # Viewers with a call running (a viewer is in here only while its call runs).
        self._calling: set[str] = set()
        self._calls = RateLimiter(CALLS_PER_WINDOW, CALL_WINDOW_S)

    async def watch(
        self, viewer: str, session: Session, streamer: object, after: object
    ) -> dict[str, Any]:
        """Watch a streamer: join its room, then the ack `{streamer, events[, gap]}` of its
        newest events, or of every event above `after` (the page's contiguous mark)."""
        if viewer in self._calling:
            return {"error": BUSY_ERROR, "retry": True}
        self._calling.add(viewer)
        try:
            return await self._watch(viewer, session, streamer, after)
        finally:
            self._calling.discard(viewer)

    async def fill(
        self, viewer: str, session: Session, streamer: object, after: object, before: object
    ) -> dict[str, Any]:
        """The stored events strictly between `after` and `before` of the streamer this viewer
        watches: a hole in what the page holds (seq N+1 arrived, N not yet) is filled from the
        store, never waited out. The stores never show N+1 before N, so what this answers is
        every event there will ever be in the range; past MAX_ACK_EVENT_BYTES, only its newest
        events (the ones the page shows), with `gap: true`."""
        if viewer in self._calling:
            return {"error": BUSY_ERROR, "retry": True}
        self._calling.add(viewer)
        try:
            return await self._fill(viewer, session, streamer, after, before)
        finally:
            self._calling.discard(viewer)

    async def missed(self, broadcaster_id: str, after: int) -> AsyncGenerator[Event, None]:
        """The stored events of a broadcaster above `after`, oldest first, up to CATCH_UP_PAGES
        pages of MAX_CATCH_UP (raises StoreUnavailable, having yielded what it read)."""
        for _ in range(CATCH_UP_PAGES):
            page = await self._store.events_after(broadcaster_id, after, MAX_CATCH_UP)
            for event in page:
                yield event
                after = event.seq
            if len(page) < MAX_CATCH_UP:
                return

    async def _watch(
        self, viewer: str, session: Session, streamer: object, after: object
    ) -> dict[str, Any]:
        if not isinstance(streamer, str):
            return {"error": WATCH_USAGE}
        login = normalize_login(streamer)
        # bool is an int in Python: `after: true` is not a seq.
        valid_after = after is None or _seq(after) is not None
        if login is None or not valid_after:
            return {"error": "invalid streamer or after"}
        mark = _seq(after)
        if not self._allow(session):
            return {"error": RATE_ERROR, "retry": True}
        try:
            ended = await self._check(session)
            if ended is not None:
                session.ended = ended
                return {"error": ended}
            broadcaster = await self._store.get_broadcaster_by_login(login)
            if broadcaster is None:
                return {"error": f"SEV does not follow {login} yet: set it as a favourite first"}
            for watched in self._rooms.watching(viewer):
                await self._rooms.leave(viewer, watched)
            # Join first, then read: an event stored in between arrives both ways and the
            # client drops the copy by seq; the other order could lose it. (With Redis, joining
            # returns once this process is subscribed to the room's channel: fanout.py.)
            await self._rooms.join(viewer, broadcaster.id)
            ack = await read_events(self._store, broadcaster, after=mark, faces=self._faces)
            ack["events"], cut = _within_budget(ack["events"])
            if cut:
                # The page shows the newest events and says that older ones were skipped, as
                # for a catch-up longer than MAX_CATCH_UP.
                ack["gap"] = True
            if self._sent is not None:
                self._sent(broadcaster.id, max([mark or 0] + [e["seq"] for e in ack["events"]]))
            return ack
        except StoreUnavailable:
            return {"error": STORE_ERROR, "retry": True}

    async def _fill(
        self, viewer: str, session: Session, streamer: object, after: object, before: object
    ) -> dict[str, Any]:
        if not isinstance(streamer, str):
            return {"error": FILL_USAGE}
        login = normalize_login(streamer)
        low, high = _seq(after), _seq(before)
        if login is None or low is None or high is None or high <= low:
            return {"error": "invalid streamer, after or before"}
        if high - low - 1 > MAX_CATCH_UP:
            return {"error": f"fill at most {MAX_CATCH_UP} events at a time"}
        if not self._allow(session):
            return {"error": RATE_ERROR, "retry": True}
        try:
            broadcaster = await self._store.get_broadcaster_by_login(login)
            if broadcaster is None or broadcaster.id not in self._rooms.watching(viewer):
                return {"error": f"watch {login} first"}
            missed = await self._store.events_after(broadcaster.id, low, high - low - 1)
            events = [event for event in missed if event.seq < high][::-1]
            if self._faces is not None:
                events = await self._faces(events)
        except StoreUnavailable:
            return {"error": STORE_ERROR, "retry": True}
        answer, cut = _within_budget([event.model_dump(mode="json") for event in events])
        return {"events": answer, "gap": True} if cut else {"events": answer}

    def _allow(self, session: Session) -> bool:
        """Count a call that reads the store against its user's rate (a malformed call costs
        no more than the busy refusal one viewer's flood already gets)."""
        return self._calls.allow(session.user_id)

    async def _check(self, session: Session) -> str | None:
        """For a session let in while the store was away: None once it proves current, else
        why it is not (raises StoreUnavailable while the store is still away)."""
        if not session.unchecked:
            return None
        user = await self._store.get_user(session.user_id)
        if user is None or not is_current({"epoch": session.epoch}, user):
            return (user.session_ended_reason if user else None) or SESSION_ENDED_REASON
        session.unchecked = False
        return None


def _within_budget(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """The newest (first) of `events` whose JSON fits in MAX_ACK_EVENT_BYTES (always the first,
    so that an ack moves the page on), and whether any were left out."""
    spent = 0
    for index, event in enumerate(events):
        spent += len(json.dumps(event))
        if spent > MAX_ACK_EVENT_BYTES and index > 0:
            return events[:index], True
    return events, False


def _seq(value: object) -> int | None:
    """A seq from the client (bool is an int in Python, and `true` is no seq), or None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEQ:
        return value
    return None
