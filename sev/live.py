"""The Socket.IO server: session check on connect, `watch` a streamer, publish events to rooms."""

from __future__ import annotations

import logging
from typing import Any

import socketio

from sev.config import Settings
from sev.events import Event
from sev.rooms import RoomManager
from sev.sessions import read_session
from sev.store import Store, StoreUnavailable
from sev.streamers import normalize_login, read_events

log = logging.getLogger(__name__)


def room_of(broadcaster_id: str) -> str:
    """The Socket.IO room of a broadcaster's viewers."""
    return f"broadcaster:{broadcaster_id}"


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
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            transports=["websocket"],
            # RoomManager: one encoded packet per room emit, slow viewers dropped (sev/rooms.py).
            client_manager=manager if manager is not None else RoomManager(),
            cors_allowed_origins=_origins(settings),
            logger=False,
            engineio_logger=False,
        )
        self.sio.on("connect", self._connect)
        self.sio.on("watch", self._watch)

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        session = read_session(
            environ.get("HTTP_COOKIE"),
            self._settings.secret("session"),
            self._settings.sev_session_max_age_s,
        )
        user_id = session.get("user_id")
        if not isinstance(user_id, str):
            return False
        await self.sio.save_session(sid, {"user_id": user_id})
        return True

    async def _watch(self, sid: str, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("streamer"), str):
            return {"error": "watch needs {streamer: login, after: seq or null}"}
        login = normalize_login(data["streamer"])
        after = data.get("after")
        if login is None or not (after is None or (isinstance(after, int) and after >= 0)):
            return {"error": "invalid streamer or after"}
        try:
            broadcaster = await self._store.get_broadcaster_by_login(login)
            if broadcaster is None:
                return {"error": f"SEV does not follow {login} yet: set it as a favourite first"}
            for room in self.sio.rooms(sid):
                if room.startswith("broadcaster:"):
                    await self.sio.leave_room(sid, room)
            # Join first, then read: an event stored in between arrives both ways and the
            # client drops the copy by seq; the other order could lose it.
            await self.sio.enter_room(sid, room_of(broadcaster.id))
            return await read_events(self._store, broadcaster, after=after)
        except StoreUnavailable:
            return {"error": "SEV's database is unavailable; retrying", "retry": True}

    async def publish(self, event: Event) -> None:
        """Send a stored event to everyone watching its broadcaster."""
        await self.sio.emit(
            "event", event.model_dump(mode="json"), room=room_of(event.broadcaster.id)
        )

    async def notify(self, broadcaster_id: str, notice: dict[str, Any]) -> None:
        """Send a notice (a revoked subscription, say) to a broadcaster's viewers."""
        await self.sio.emit("notice", notice, room=room_of(broadcaster_id))
