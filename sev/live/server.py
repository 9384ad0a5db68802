"""The Socket.IO server: session check on connect, `watch` a streamer, publish events to rooms.

A viewer's calls (`watch`, `fill`) are bounded, because each reads the store and builds an ack
the size of what it read: one call at a time per socket, `CALLS_PER_WINDOW` store reads per
user in any `CALL_WINDOW_S` seconds (in this process), and at most about `MAX_ACK_EVENT_BYTES`
of event JSON per ack. A refused call gets an error ack with `retry: true`, which the page
retries after a back-off.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sev.config import Settings
from sev.events import Event
from sev.live._lean.engine import SocketServer, shrink_environ
from sev.live.fanout import RedisFanout
from sev.live.rooms import RoomManager
from sev.ratelimit import RateLimiter
from sev.sessions import is_current, read_session
from sev.store import MAX_CATCH_UP, MAX_SEQ, Store, StoreUnavailable
from sev.streamers import Faces, normalize_login, read_events

log = logging.getLogger(__name__)
_ROOM_PREFIX = "broadcaster:"
# Every socket of a user is in its user room: a session that ends reaches all of them.
_USER_PREFIX = "user:"
SESSION_ENDED_EVENT = "session_ended"
# After a Redis outage, re-send at most this many pages of MAX_CATCH_UP events per room.
_CATCH_UP_PAGES = 10
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
BUSY_ERROR = "one call at a time"
RATE_ERROR = "too many calls; retrying"
SESSION_ENDED_REASON = "Your SEV session has ended: log in again to see live events."

# A call's handler: (sid, its Socket.IO session, the call's data) -> the ack.
_Call = Callable[[str, dict[str, Any], Any], Awaitable[dict[str, Any]]]


def room_of(broadcaster_id: str) -> str:
    """The Socket.IO room of a broadcaster's viewers."""
    return f"{_ROOM_PREFIX}{broadcaster_id}"


def user_room(user_id: str) -> str:
    """The Socket.IO room of all of one user's sockets, in every process."""
    return f"{_USER_PREFIX}{user_id}"


def _origins(settings: Settings) -> list[str]:
    origin = settings.sev_public_url
    return [
        origin,
        origin.replace("://localhost", "://127.0.0.1"),
        origin.replace("://127.0.0.1", "://localhost"),
    ]


def create_server(settings: Settings) -> SocketServer:
    """The Socket.IO server, through Redis when REDIS_URL is set; `Live` serves on it.

    It exists before `Live`: the ASGI app wraps it when the app is built, and `Live` (which needs
    the store and the pictures of Twitch's users) is built when the app starts.
    """
    manager: RoomManager
    if settings.redis_url is not None:
        manager = RedisFanout(
            settings.redis_url.get_secret_value(),
            room_prefix=room_of(""),
            secret=settings.secret("session"),
        )
    else:
        # One encoded packet per room emit, slow viewers dropped (rooms.py).
        manager = RoomManager()
    # SocketServer: engine.io's per-socket state made lean (engine.py).
    return SocketServer(
        async_mode="asgi",
        transports=["websocket"],
        client_manager=manager,
        cors_allowed_origins=_origins(settings),
        logger=False,
        engineio_logger=False,
    )


class Live:
    """Serves viewers on the Socket.IO server; `publish` is the one function the webhook path
    calls."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        sio: SocketServer,
        *,
        faces: Faces | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        # The actors' pictures for the watch and fill acks.
        self._faces = faces
        self.sio = sio
        self.sio.on("connect", self._connect)
        self.sio.on("watch", self._watch)
        self.sio.on("fill", self._fill)
        # Sockets with a call running (a sid is in here only while its handler runs).
        self._calling: set[str] = set()
        self._calls = RateLimiter(CALLS_PER_WINDOW, CALL_WINDOW_S)
        # With Redis: the highest seq this process's viewers of each broadcaster have been sent,
        # and what it was when the subscription was lost, so that what this process did not
        # receive meanwhile can be re-sent from the store when it is back.
        self._sent: dict[str, int] | None = None
        self._sent_when_lost: dict[str, int] | None = None
        # Sockets whose session ended while their connect handler was still reading the user.
        self._ended_while_connecting: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # The manager exists before this object (the server is built with it, and the ASGI app
        # with the server), so this object subscribes to it here, not through its constructor.
        manager = self.sio.manager
        if isinstance(manager, RoomManager):
            manager.on_emit = self._observe_emit
        self._fanout = manager if isinstance(manager, RedisFanout) else None
        if self._fanout is not None:
            self._sent = {}
            self._fanout.on_lost = self._fanout_lost
            self._fanout.on_back = self.catch_up

    async def start(self) -> None:
        """Connect the fan-out to Redis (with REDIS_URL)."""
        if self._fanout is not None:
            await self._fanout.start()

    async def stop(self) -> None:
        """Disconnect the fan-out from Redis."""
        if self._fanout is not None:
            await self._fanout.stop()

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        cookie = environ.get("HTTP_COOKIE")
        # Nothing else of the request is read again: a socket keeps a small environ (engine.py).
        shrink_environ(environ)
        session = read_session(
            cookie,
            self._settings.secret("session"),
            self._settings.sev_session_max_age_s,
        )
        user_id = session.get("user_id")
        if not isinstance(user_id, str):
            return False
        # Join the user's room before reading the user: a session ended after this read reaches
        # this socket through the room (`end_sessions`), one ended before it is refused here.
        await self.sio.enter_room(sid, user_room(user_id))
        checked = True
        try:
            user = await self._store.get_user(user_id)
        except StoreUnavailable:
            # The cookie is genuine but may be logged out: let the socket in unchecked (a refusal
            # would end the page's session for a blip); its first `watch` checks the store, and
            # answers "retrying" until the store is back.
            checked = False
        else:
            # A signed cookie outlives a logout or a token Twitch refused: the store decides.
            if user is None or not is_current(session, user):
                return False
        if sid in self._ended_while_connecting:
            self._ended_while_connecting.discard(sid)
            return False
        saved: dict[str, Any] = {"user_id": user_id}
        if not checked:
            saved.update(unchecked=True, epoch=session.get("epoch", 0))
        await self.sio.save_session(sid, saved)
        return True

    async def _one_call(self, sid: str, call: _Call, data: Any) -> dict[str, Any]:
        """Run a viewer's call unless this socket has one running (then an error ack the page
        retries)."""
        if sid in self._calling:
            return {"error": BUSY_ERROR, "retry": True}
        self._calling.add(sid)
        try:
            try:
                session: dict[str, Any] = await self.sio.get_session(sid)
            except KeyError:  # disconnected before its call ran: nobody reads the ack
                return {"error": "not connected"}
            return await call(sid, session, data)
        finally:
            self._calling.discard(sid)

    async def _watch(self, sid: str, data: Any) -> dict[str, Any]:
        return await self._one_call(sid, self._watch_call, data)

    async def _fill(self, sid: str, data: Any) -> dict[str, Any]:
        return await self._one_call(sid, self._fill_call, data)

    def _allow(self, session: dict[str, Any]) -> bool:
        """Count a call that reads the store against its user's rate (a malformed call costs
        no more than the busy refusal one socket's flood already gets)."""
        return self._calls.allow(str(session.get("user_id")))

    async def _session_ended(self, sid: str, session: dict[str, Any]) -> str | None:
        """For a socket let in while the store was away: None once its session proves
        current, else why it is not (raises StoreUnavailable while the store is still away)."""
        if not session.get("unchecked"):
            return None
        user = await self._store.get_user(str(session.get("user_id")))
        if user is None or not is_current(session, user):
            return (user.session_ended_reason if user else None) or SESSION_ENDED_REASON
        await self.sio.save_session(sid, {"user_id": user.id})
        return None

    def _end_socket(self, sid: str, reason: str) -> None:
        """Tell one socket its session ended and disconnect it after its ack is written."""
        notice = {"reason": reason}
        task = asyncio.create_task(self._tell_and_disconnect(sid, notice))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tell_and_disconnect(self, sid: str, notice: dict[str, Any]) -> None:
        await self.sio.emit(SESSION_ENDED_EVENT, notice, to=sid)
        # A turn later: the call's ack, sent when its handler returns, goes out first.
        await asyncio.sleep(0)
        await self.sio.disconnect(sid, ignore_queue=True)

    async def _watch_call(self, sid: str, session: dict[str, Any], data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("streamer"), str):
            return {"error": "watch needs {streamer: login, after: seq or null}"}
        login = normalize_login(data["streamer"])
        after = data.get("after")
        # bool is an int in Python: `after: true` is not a seq.
        valid_after = after is None or (
            isinstance(after, int) and not isinstance(after, bool) and 0 <= after <= MAX_SEQ
        )
        if login is None or not valid_after:
            return {"error": "invalid streamer or after"}
        if not self._allow(session):
            return {"error": RATE_ERROR, "retry": True}
        try:
            ended = await self._session_ended(sid, session)
            if ended is not None:
                self._end_socket(sid, ended)
                return {"error": ended}
            broadcaster = await self._store.get_broadcaster_by_login(login)
            if broadcaster is None:
                return {"error": f"SEV does not follow {login} yet: set it as a favourite first"}
            for room in self.sio.rooms(sid):
                if room.startswith("broadcaster:"):
                    await self.sio.leave_room(sid, room)
            # Join first, then read: an event stored in between arrives both ways and the
            # client drops the copy by seq; the other order could lose it. (With Redis, joining
            # returns once this process is subscribed to the room's channel: fanout.py.)
            await self.sio.enter_room(sid, room_of(broadcaster.id))
            ack = await read_events(self._store, broadcaster, after=after, faces=self._faces)
            ack["events"], cut = _within_budget(ack["events"])
            if cut:
                # The page shows the newest events and says that older ones were skipped, as
                # for a catch-up longer than MAX_CATCH_UP.
                ack["gap"] = True
            self._note_sent(broadcaster.id, max([after or 0] + [e["seq"] for e in ack["events"]]))
            return ack
        except StoreUnavailable:
            return {"error": "SEV's database is unavailable; retrying", "retry": True}

    async def _fill_call(self, sid: str, session: dict[str, Any], data: Any) -> dict[str, Any]:
        """The stored events strictly between `after` and `before` of the streamer this socket
        watches: a hole in what the page holds (seq N+1 arrived, N not yet) is filled from the
        store, never waited out. The stores never show N+1 before N, so what this answers is
        every event there will ever be in the range; past MAX_ACK_EVENT_BYTES, only its newest
        events (the ones the page shows), with `gap: true`."""
        if not isinstance(data, dict) or not isinstance(data.get("streamer"), str):
            return {"error": "fill needs {streamer: login, after: seq, before: seq}"}
        login = normalize_login(data["streamer"])
        after, before = _seq(data.get("after")), _seq(data.get("before"))
        if login is None or after is None or before is None or before <= after:
            return {"error": "invalid streamer, after or before"}
        if before - after - 1 > MAX_CATCH_UP:
            return {"error": f"fill at most {MAX_CATCH_UP} events at a time"}
        if not self._allow(session):
            return {"error": RATE_ERROR, "retry": True}
        try:
            broadcaster = await self._store.get_broadcaster_by_login(login)
            if broadcaster is None or room_of(broadcaster.id) not in self.sio.rooms(sid):
                return {"error": f"watch {login} first"}
            missed = await self._store.events_after(broadcaster.id, after, before - after - 1)
            events = [event for event in missed if event.seq < before][::-1]
            if self._faces is not None:
                events = await self._faces(events)
        except StoreUnavailable:
            return {"error": "SEV's database is unavailable; retrying", "retry": True}
        answer, cut = _within_budget([event.model_dump(mode="json") for event in events])
        return {"events": answer, "gap": True} if cut else {"events": answer}

    async def publish(self, event: Event) -> None:
        """Send a stored event to everyone watching its broadcaster."""
        await self.sio.emit(
            "event", event.model_dump(mode="json"), room=room_of(event.broadcaster.id)
        )

    async def notify(self, broadcaster_id: str, notice: dict[str, Any]) -> None:
        """Send a notice (a revoked subscription, say) to a broadcaster's viewers."""
        await self.sio.emit("notice", notice, room=room_of(broadcaster_id))

    async def end_sessions(self, user_id: str, reason: str) -> None:
        """A user's session ended (logout, a refused token, SEV disconnected on Twitch): tell
        each of their open pages why, in every process, and disconnect them."""
        notice, room = {"reason": reason}, user_room(user_id)
        # This process's sockets at once, even while Redis is away; the others' through Redis.
        await self.sio.emit(SESSION_ENDED_EVENT, notice, room=room, ignore_queue=True)
        if isinstance(self.sio.manager, RedisFanout):
            await self.sio.emit(SESSION_ENDED_EVENT, notice, room=room)

    def _observe_emit(self, name: str, data: Any, room: str | None) -> None:
        """Sees every emit delivered to this process's sockets (with Redis, also those that
        other processes published)."""
        if room is None:
            return
        if name == SESSION_ENDED_EVENT and room.startswith(_USER_PREFIX):
            self._disconnect_room(room)
        elif self._sent is not None:
            self._note_emit(name, data, room)

    def _disconnect_room(self, room: str) -> None:
        manager = self.sio.manager
        for sid, _ in list(manager.get_participants("/", room)):
            # Out of the room at once: the copy of the notice that comes back through Redis
            # (`end_sessions` sends this process's copy directly) finds nobody here.
            manager.basic_leave_room(sid, "/", room)
            if manager.is_connected(sid, "/"):
                # After this turn of the loop, so the notice is written before the disconnect.
                task = asyncio.create_task(self.sio.disconnect(sid, ignore_queue=True))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                self._ended_while_connecting.add(sid)

    def _note_sent(self, broadcaster_id: str, seq: int) -> None:
        if self._sent is None:
            return
        if seq > self._sent.get(broadcaster_id, -1):
            self._sent[broadcaster_id] = seq
        if self._sent_when_lost is not None:
            # A room first watched during the outage catches up from what its ack held.
            self._sent_when_lost.setdefault(broadcaster_id, seq)

    def _note_emit(self, name: str, data: Any, room: str | None) -> None:
        if name == "event" and room and room.startswith(_ROOM_PREFIX) and isinstance(data, dict):
            seq = data.get("seq")
            if isinstance(seq, int):
                self._note_sent(room.removeprefix(_ROOM_PREFIX), seq)

    def _fanout_lost(self) -> None:
        if self._sent is not None and self._sent_when_lost is None:
            rooms = self.sio.manager.rooms.get("/", {})
            # Forget broadcasters nobody here watches any more, then note where the rest were.
            for broadcaster_id in [b for b in self._sent if not rooms.get(room_of(b))]:
                del self._sent[broadcaster_id]
            self._sent_when_lost = dict(self._sent)

    async def catch_up(self) -> None:
        """Re-send from the store what this process's viewers missed while Redis was away."""
        since, self._sent_when_lost = self._sent_when_lost, None
        if since is None:
            return
        rooms = self.sio.manager.rooms.get("/", {})
        for broadcaster_id, after in since.items():
            room = room_of(broadcaster_id)
            if not rooms.get(room):
                continue
            try:
                for _ in range(_CATCH_UP_PAGES):
                    missed = await self._store.events_after(broadcaster_id, after, MAX_CATCH_UP)
                    for event in missed:
                        # Only to this process's viewers: the others catch up themselves.
                        await self.sio.emit(
                            "event", event.model_dump(mode="json"), room=room, ignore_queue=True
                        )
                        self._note_sent(broadcaster_id, event.seq)
                        after = event.seq
                    if len(missed) < MAX_CATCH_UP:
                        break
            except StoreUnavailable as error:
                log.warning("could not catch viewers up after a Redis outage: %s", error)
                return


def _within_budget(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """The newest (first) of `events` whose JSON fits in MAX_ACK_EVENT_BYTES (always the first,
    so that an ack moves the page on), and whether any were left out."""
    spent = 0
    for index, event in enumerate(events):
        spent += len(json.dumps(event))
        if spent > MAX_ACK_EVENT_BYTES and index > 0:
            return events[:index], True
    return events, False


def _seq(value: Any) -> int | None:
    """A seq from the client (bool is an int in Python, and `true` is no seq), or None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEQ:
        return value
    return None
