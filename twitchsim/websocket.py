"""EventSub's WebSocket transport at `/ws`: sessions, their welcome, keepalives, notifications,
revocations, reconnects and closes.

Shapes and rules are those of Twitch's "Handling WebSocket Events" and "WebSocket Messages"
pages (dev.twitch.tv/docs/eventsub/handling-websocket-events, .../websocket-reference); where
they are silent, twitch-cli's mock server (internal/events/websocket/mock_server/). Each
connection has one writer task that sends its queued messages in order and a keepalive when it
has been quiet; a reader that closes the connection on any inbound message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from .config import SimulatorConfig
from .deliveries import encode
from .subscriptions import SimSubscription
from .timestamps import rfc3339_nano

log = logging.getLogger(__name__)

# "Valid values are whole integers between 10 and 600"; absent, Twitch uses 10 (the
# documented welcome example, and twitch-cli's KEEPALIVE_TIMEOUT_SECONDS).
MAX_KEEPALIVE_S = 600
DEFAULT_KEEPALIVE_S = 10
# A keepalive goes out once a connection has been quiet for this share of its timeout, so a
# client never meets a silence as long as the timeout (twitch-cli: every 10 s against 10 s).
KEEPALIVE_SHARE = 0.75
# The reconnect URL's one-time parameter (twitch-cli's name; its value is opaque here).
RECONNECT_PARAMETER = "reconnect_id"

# Twitch's close codes with twitch-cli's reason texts (close_messages.go). twitch-cli's
# GetCloseMessageFromCode answers 4004 with 4005's text; the docs name 4004 "Reconnect grace
# time expired", so 4004 keeps its own text here.
CLOSE_REASONS: dict[int, str] = {
    1000: "client disconnected",
    4000: "internal server error",
    4001: "sent inbound traffic",
    4002: "failed ping pong",
    4003: "connection unused",
    4004: "client reconnect grace time expired",
    4005: "network timeout",
    4006: "network error",
    4007: "invalid reconnect attempt",
}
# The simulator stopping (not one of Twitch's codes: any close would do).
SHUTDOWN = (1001, "server shutting down")
# What a subscription becomes when its connection ends (Get EventSub Subscriptions' statuses).
DISABLED_STATUS: dict[int, str] = {
    1000: "websocket_disconnected",
    1001: "websocket_disconnected",
    4000: "websocket_internal_error",
    4001: "websocket_received_inbound_traffic",
    4002: "websocket_failed_ping_pong",
    4003: "websocket_connection_unused",
    4004: "websocket_failed_to_reconnect",
    4005: "websocket_network_timeout",
    4006: "websocket_network_error",
    4007: "websocket_failed_to_reconnect",
}


def keepalive_seconds(value: str | None, floor: int, default: int) -> int:
    """The query's keepalive_timeout_seconds: "an invalid, but numeric value will return the
    nearest acceptable value"; absent or not a number, the default."""
    if value is None:
        return default
    try:
        seconds = round(float(value))
    except (ValueError, OverflowError):
        return default
    return max(floor, min(MAX_KEEPALIVE_S, seconds))


@dataclass
class Outgoing:
    """One message waiting in a session's queue, rendered when it is sent (its timestamp is
    "the UTC date and time that the message was sent")."""

    message_type: str
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    payload: dict[str, Any] | None = None
    subscription: SimSubscription | None = None
    event: dict[str, Any] | None = None

    def render(self) -> str:
        """The message as Twitch writes it: `{"metadata", "payload"}`."""
        metadata: dict[str, Any] = {
            "message_id": self.message_id,
            "message_type": self.message_type,
            "message_timestamp": rfc3339_nano(),
        }
        payload = self.payload or {}
        sub = self.subscription
        if sub is not None:
            metadata["subscription_type"] = sub.type
            metadata["subscription_version"] = sub.version
            if self.event is not None:
                # Enabled when it was sent out, whatever became of it since.
                payload = {"subscription": sub.public(status="enabled"), "event": self.event}
            else:
                payload = {"subscription": sub.public()}
        return encode({"metadata": metadata, "payload": payload}).decode()


@dataclass(eq=False)
class Session:
    """One WebSocket connection and what it is doing."""

    id: str
    connected_at: str
    keepalive_s: int
    url: str
    websocket: WebSocket
    status: str = "connected"
    user_ids: set[str] = field(default_factory=set)
    used: bool = False
    outbox: deque[Outgoing] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_sent: float = 0.0
    silent_until: float = 0.0
    # The close the writer is to send (code, reason); set once.
    closing: tuple[int, str] | None = None
    # The connection is gone (closed by either side).
    ended: bool = False
    # Its subscriptions moved to the connection made to its reconnect URL.
    handed_over: bool = False

    @property
    def open(self) -> bool:
        """Still able to take subscriptions and messages."""
        return self.closing is None and not self.ended and not self.handed_over


class EventSockets:
    """Every open EventSub WebSocket session, and what they send."""

    def __init__(
        self,
        config: SimulatorConfig,
        subscriptions: Mapping[str, SimSubscription],
        *,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._config = config
        self._subscriptions = subscriptions
        self._on_change = on_change
        self._sessions: dict[str, Session] = {}
        self._reconnects: dict[str, Session] = {}
        self._timers: set[asyncio.Task[None]] = set()

    def sessions(self) -> list[Session]:
        """The sessions open now (not one whose subscriptions moved to its successor)."""
        return [s for s in self._sessions.values() if s.open]

    def get(self, session_id: str) -> Session | None:
        """An open session by id."""
        session = self._sessions.get(session_id)
        return session if session is not None and session.open else None

    def connected_at(self, session_id: str) -> str | None:
        """When an open session connected; None if there is no such open session."""
        session = self.get(session_id)
        return session.connected_at if session is not None else None

    def subscribed(self, session_id: str, user_id: str) -> None:
        """A subscription was created on the session (it is no longer unused)."""
        session = self._sessions.get(session_id)
        if session is not None:
            session.used = True
            session.user_ids.add(user_id)

    def carried(self, session: Session) -> list[SimSubscription]:
        """The enabled subscriptions the session delivers."""
        return [
            s
            for s in self._subscriptions.values()
            if s.websocket and s.session_id == session.id and s.status == "enabled"
        ]

    def notify(self, sub: SimSubscription, event: dict[str, Any]) -> str | None:
        """Queue a notification on the subscription's connection; its message id, or None
        when that connection is gone. A silenced connection loses it, as a dead path would."""
        session = self._sessions.get(sub.session_id)
        if session is None or session.closing is not None or session.ended:
            return None
        message = Outgoing("notification", subscription=sub, event=event)
        self._queue(session, message)
        return message.message_id

    def revoke(self, sub: SimSubscription) -> None:
        """Queue the revocation message of a subscription already marked revoked."""
        session = self._sessions.get(sub.session_id)
        if session is not None and session.closing is None and not session.ended:
            self._queue(session, Outgoing("revocation", subscription=sub))

    def _queue(self, session: Session, message: Outgoing) -> None:
        if self._silent(session):
            return
        session.outbox.append(message)
        session.wake.set()

    def _silent(self, session: Session) -> bool:
        return asyncio.get_running_loop().time() < session.silent_until

    def silence(self, session: Session, seconds: float) -> None:
        """Send nothing at all for a while; what falls due meanwhile is lost."""
        session.silent_until = asyncio.get_running_loop().time() + seconds
        session.outbox.clear()
        session.wake.set()

    def reconnect(self, session: Session) -> str:
        """Send `session_reconnect` with a new one-time URL; returns that URL. Without a
        connection to it within the grace, the old connection closes with 4004."""
        for token, waiting in list(self._reconnects.items()):
            if waiting is session:
                del self._reconnects[token]
        token = secrets.token_urlsafe(24)
        self._reconnects[token] = session
        session.status = "reconnecting"
        url = f"{session.url}?{RECONNECT_PARAMETER}={token}"
        reconnect = {
            "session": {
                "id": session.id,
                "status": "reconnecting",
                "keepalive_timeout_seconds": None,
                "reconnect_url": url,
                "connected_at": session.connected_at,
            }
        }
        self._queue(session, Outgoing("session_reconnect", payload=reconnect))
        self._start_timer(self._grace(session, token))
        return url

    def close(self, session: Session, code: int, reason: str | None = None) -> None:
        """Close a connection with a code; its enabled subscriptions are disabled with the
        status the code stands for."""
        if session.closing is not None or session.ended:
            return
        session.closing = (code, reason if reason is not None else CLOSE_REASONS[code])
        self._disable(session, DISABLED_STATUS[code])
        session.wake.set()

    def _lost(self, session: Session) -> None:
        """The client closed the connection, or it broke."""
        if session.ended:
            return
        session.ended = True
        if session.closing is None:
            self._disable(session, "websocket_disconnected")
        session.wake.set()

    def _disable(self, session: Session, status: str) -> None:
        now = rfc3339_nano()
        for sub in self.carried(session):
            sub.status = status
            sub.disconnected_at = now
            log.info("websocket subscription %s disabled: %s", sub.id, status)
        self._on_change()

    def _hand_over(self, old: Session, new: Session) -> None:
        """The client connected to the reconnect URL: the old session's subscriptions (same
        ids) and the messages it has not sent yet go to the new one, after its welcome."""
        for sub in self._subscriptions.values():
            if sub.websocket and sub.session_id == old.id:
                sub.session_id = new.id
                sub.connected_at = new.connected_at
        new.used = old.used
        new.user_ids |= old.user_ids
        new.outbox.extend(old.outbox)
        old.outbox.clear()
        old.handed_over = True
        new.wake.set()
        self._on_change()

    def _start_timer(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _grace(self, session: Session, token: str) -> None:
        await asyncio.sleep(self._config.ws_reconnect_grace_s)
        self._reconnects.pop(token, None)
        # Twitch gives the client the grace "to reconnect to the server and close the old
        # connection": still open, it is closed (what it carried moved already, if anything).
        self.close(session, 4004)

    async def _expect_subscription(self, session: Session) -> None:
        # "For a welcome message, this is the number of seconds that you have to subscribe to
        # an event after receiving the welcome message."
        await asyncio.sleep(session.keepalive_s)
        if not session.used:
            self.close(session, 4003)

    async def stop(self) -> None:
        """Close every connection (as a restart would) and stop the timers."""
        for task in list(self._timers):
            task.cancel()
        for session in list(self._sessions.values()):
            self.close(session, *SHUTDOWN)
        self._reconnects.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                while self._sessions:
                    await asyncio.sleep(0.01)

    def _url(self, websocket: WebSocket) -> str:
        """The address of `/ws` as this client reached it (or under the public URL)."""
        public = self._config.public_url.rstrip("/")
        if public.startswith(("http://", "https://")):
            return "ws" + public.removeprefix("http") + "/ws"
        return str(websocket.url.replace(query=""))

    async def endpoint(self, websocket: WebSocket) -> None:
        """`/ws`: a new session, or with a reconnect URL's parameter the successor of one."""
        await websocket.accept()
        query = websocket.query_params
        old: Session | None = None
        if RECONNECT_PARAMETER in query:
            old = self._reconnects.pop(query[RECONNECT_PARAMETER], None)
            if old is None or not old.open:
                code = 4007
                with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                    await websocket.close(code, CLOSE_REASONS[code])
                return
        floor = max(1, min(self._config.ws_min_keepalive_s, DEFAULT_KEEPALIVE_S))
        default = old.keepalive_s if old is not None else DEFAULT_KEEPALIVE_S
        keepalive = keepalive_seconds(query.get("keepalive_timeout_seconds"), floor, default)
        session = Session(
            id=secrets.token_urlsafe(21),
            connected_at=rfc3339_nano(),
            keepalive_s=keepalive,
            url=self._url(websocket),
            websocket=websocket,
        )
        # The documented welcome example has `recovery_url: null`; twitch-cli's mock leaves it
        # out. The docs win.
        welcome = {
            "session": {
                "id": session.id,
                "status": "connected",
                "keepalive_timeout_seconds": keepalive,
                "reconnect_url": None,
                "connected_at": session.connected_at,
                "recovery_url": None,
            }
        }
        self._sessions[session.id] = session
        session.outbox.append(Outgoing("session_welcome", payload=welcome))
        if old is not None:
            self._hand_over(old, session)
        try:
            await self._serve(session)
        finally:
            self._sessions.pop(session.id, None)

    async def _serve(self, session: Session) -> None:
        session.last_sent = asyncio.get_running_loop().time()
        reader = asyncio.create_task(self._read(session))
        unused = None if session.used else asyncio.create_task(self._expect_subscription(session))
        try:
            await self._write(session)
        finally:
            for task in (reader, unused):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _read(self, session: Session) -> None:
        while True:
            message = await session.websocket.receive()
            if message["type"] == "websocket.disconnect":
                self._lost(session)
                return
            # "Sending outgoing messages to the server is prohibited with the exception of
            # pong messages" (pongs never reach the app).
            self.close(session, 4001)

    async def _write(self, session: Session) -> None:
        loop = asyncio.get_running_loop()
        websocket = session.websocket
        try:
            while not session.ended:
                session.wake.clear()
                if session.closing is not None:
                    await websocket.close(*session.closing)
                    session.ended = True
                    return
                now = loop.time()
                if now < session.silent_until:
                    await self._sleep(session, session.silent_until - now)
                    continue
                if session.outbox:
                    await websocket.send_text(session.outbox.popleft().render())
                    session.last_sent = loop.time()
                    continue
                due = session.last_sent + session.keepalive_s * KEEPALIVE_SHARE
                if now >= due:
                    await websocket.send_text(Outgoing("session_keepalive").render())
                    session.last_sent = loop.time()
                    continue
                await self._sleep(session, due - now)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._lost(session)

    @staticmethod
    async def _sleep(session: Session, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await session.wake.wait()
