"""The Socket.IO server: session check on connect, `watch` a streamer, publish events to rooms."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio

from sev.config import Settings
from sev.events import Event
from sev.live.engine import SocketServer, shrink_environ
from sev.live.fanout import RedisFanout
from sev.live.rooms import RoomManager
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


class Live:
    """Owns the AsyncServer; `publish` is the one function the webhook path calls."""

    def __init__(
        self, settings: Settings, store: Store, manager: socketio.AsyncManager | None = None
    ) -> None:
        self._settings = settings
        self._store = store
        # The actors' pictures for the watch ack; the lifespan sets it once Twitch's client is up.
        self.faces: Faces | None = None
        # SocketServer: engine.io's per-socket state made lean (engine.py).
        self.sio = SocketServer(
            async_mode="asgi",
            transports=["websocket"],
            # RoomManager: one encoded packet per room emit, slow viewers dropped (rooms.py).
            client_manager=manager if manager is not None else RoomManager(),
            cors_allowed_origins=_origins(settings),
            logger=False,
            engineio_logger=False,
        )
        self.sio.on("connect", self._connect)
        self.sio.on("watch", self._watch)
        self.sio.on("fill", self._fill)
        # With Redis: the highest seq this process's viewers of each broadcaster have been sent,
        # and what it was when the subscription was lost, so that what this process did not
        # receive meanwhile can be re-sent from the store when it is back.
        self._sent: dict[str, int] | None = None
        self._sent_when_lost: dict[str, int] | None = None
        # Sockets whose session ended while their connect handler was still reading the user.
        self._ended_while_connecting: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        room_manager = self.sio.manager
        if isinstance(room_manager, RoomManager):
            room_manager.on_emit = self._observe_emit
        if isinstance(manager, RedisFanout):
            self._sent = {}
            manager.on_lost = self._fanout_lost
            manager.on_back = self.catch_up

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
        try:
            user = await self._store.get_user(user_id)
        except StoreUnavailable:
            # The cookie is genuine; `watch` will say the store is down and the page retries.
            user = None
        else:
            # A signed cookie outlives a logout or a token Twitch refused: the store decides.
            if user is None or not is_current(session, user):
                return False
        if sid in self._ended_while_connecting:
            self._ended_while_connecting.discard(sid)
            return False
        await self.sio.save_session(sid, {"user_id": user_id})
        return True

    async def _watch(self, sid: str, data: Any) -> dict[str, Any]:
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
        try:
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
            ack = await read_events(self._store, broadcaster, after=after, faces=self.faces)
            self._note_sent(broadcaster.id, max([after or 0] + [e["seq"] for e in ack["events"]]))
            return ack
        except StoreUnavailable:
            return {"error": "SEV's database is unavailable; retrying", "retry": True}

    async def _fill(self, sid: str, data: Any) -> dict[str, Any]:
        """The stored events strictly between `after` and `before` of the streamer this socket
        watches: a hole in what the page holds (seq N+1 arrived, N not yet) is filled from the
        store, never waited out. The stores never show N+1 before N, so what this answers is
        every event there will ever be in the range."""
        if not isinstance(data, dict) or not isinstance(data.get("streamer"), str):
            return {"error": "fill needs {streamer: login, after: seq, before: seq}"}
        login = normalize_login(data["streamer"])
        after, before = _seq(data.get("after")), _seq(data.get("before"))
        if login is None or after is None or before is None or before <= after:
            return {"error": "invalid streamer, after or before"}
        if before - after - 1 > MAX_CATCH_UP:
            return {"error": f"fill at most {MAX_CATCH_UP} events at a time"}
        try:
            broadcaster = await self._store.get_broadcaster_by_login(login)
            if broadcaster is None or room_of(broadcaster.id) not in self.sio.rooms(sid):
                return {"error": f"watch {login} first"}
            missed = await self._store.events_after(broadcaster.id, after, before - after - 1)
            events = [event for event in missed if event.seq < before][::-1]
            if self.faces is not None:
                events = await self.faces(events)
        except StoreUnavailable:
            return {"error": "SEV's database is unavailable; retrying", "retry": True}
        return {"events": [event.model_dump(mode="json") for event in events]}

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


def _seq(value: Any) -> int | None:
    """A seq from the client (bool is an int in Python, and `true` is no seq), or None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEQ:
        return value
    return None
