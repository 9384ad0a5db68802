"""The Socket.IO server: session check on connect, `watch` a streamer, publish events to rooms.

The viewer protocol (`watch`, `fill`, their bounds, what a viewer missed) is `viewers.py`'s;
`Live` adapts it to Socket.IO: sids are its viewers, Socket.IO rooms its `Rooms`, the Socket.IO
session its `Session`.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing, suppress
from typing import Any

from sev.config import Settings
from sev.events import Event
from sev.live._lean.engine import SocketServer, shrink_environ
from sev.live.fanout import RedisFanout
from sev.live.rooms import RoomManager
from sev.live.viewers import Session, Viewers
from sev.sessions import is_current, read_session
from sev.store import Store, StoreUnavailable
from sev.streamers import Faces

log = logging.getLogger(__name__)
_ROOM_PREFIX = "broadcaster:"
# Every socket of a user is in its user room: a session that ends reaches all of them.
_USER_PREFIX = "user:"
SESSION_ENDED_EVENT = "session_ended"


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
        self.sio = sio
        self._viewers = Viewers(store, _SocketRooms(sio), faces=faces, sent=self._note_sent)
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

    async def _watch(self, sid: str, data: Any) -> dict[str, Any]:
        session = await self._session(sid)
        if session is None:  # disconnected before its call ran: nobody reads the ack
            return {"error": "not connected"}
        # A call that is no object has no streamer: the protocol answers its usage.
        fields = data if isinstance(data, dict) else {}
        unchecked = session.unchecked
        ack = await self._viewers.watch(sid, session, fields.get("streamer"), fields.get("after"))
        if session.ended is not None:
            self._end_socket(sid, session.ended)
        elif unchecked and not session.unchecked:
            # Proven current: later calls need not ask the store (unless it left meanwhile).
            with suppress(KeyError):
                await self.sio.save_session(sid, {"user_id": session.user_id})
        return ack

    async def _fill(self, sid: str, data: Any) -> dict[str, Any]:
        session = await self._session(sid)
        if session is None:
            return {"error": "not connected"}
        fields = data if isinstance(data, dict) else {}
        return await self._viewers.fill(
            sid, session, fields.get("streamer"), fields.get("after"), fields.get("before")
        )

    async def _session(self, sid: str) -> Session | None:
        """The viewer session of a connected socket (as `_connect` saved it), or None."""
        try:
            saved: dict[str, Any] = await self.sio.get_session(sid)
        except KeyError:
            return None
        if saved.get("unchecked"):
            return Session(str(saved.get("user_id")), unchecked=True, epoch=saved.get("epoch", 0))
        return Session(str(saved.get("user_id")))

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
                async with aclosing(self._viewers.missed(broadcaster_id, after)) as missed:
                    async for event in missed:
                        # Only to this process's viewers: the others catch up themselves.
                        await self.sio.emit(
                            "event", event.model_dump(mode="json"), room=room, ignore_queue=True
                        )
                        self._note_sent(broadcaster_id, event.seq)
            except StoreUnavailable as error:
                log.warning("could not catch viewers up after a Redis outage: %s", error)
                return


class _SocketRooms:
    """`Rooms` on the Socket.IO server: a broadcaster's room is `room_of(its id)`."""

    def __init__(self, sio: SocketServer) -> None:
        self._sio = sio

    async def join(self, viewer: str, broadcaster_id: str) -> None:
        await self._sio.enter_room(viewer, room_of(broadcaster_id))

    async def leave(self, viewer: str, broadcaster_id: str) -> None:
        await self._sio.leave_room(viewer, room_of(broadcaster_id))

    def watching(self, viewer: str) -> list[str]:
        rooms: list[str] = self._sio.rooms(viewer)
        return [room.removeprefix(_ROOM_PREFIX) for room in rooms if room.startswith(_ROOM_PREFIX)]
