"""One carrier's EventSub WebSocket: connecting, reconnecting and which messages it admits.

Twitch's rules (docs/TWITCH.md, "WebSocket transport"), and what SEV does about each:
- A subscription must be created within the welcome's keepalive window (10 s) or Twitch closes
  the connection (4003): SEV subscribes right after the welcome and opens no connection for a
  carrier with nothing to carry.
- Silence longer than `keepalive_timeout_seconds` means the connection is dead: SEV drops it,
  connects anew and subscribes again (subscriptions die with their connection). The welcome's
  value is believed only within Twitch's 10-600 s (`keepalive_timeout`): a larger or non-finite
  one would keep SEV on a silent connection for as long as it says.
- `session_reconnect` names a URL to move to: SEV connects there while still reading the old
  connection, and closes the old one only after the new welcome (and after draining what was
  already on its way); subscriptions carry over, nothing is created again. Another
  `session_reconnect` during the move redirects it to the newer URL (the same URL again changes
  nothing); a move that fails keeps the old connection until Twitch names another URL or closes
  it.
- Revocations arrive on the connection; close codes 4000-4007 each mean something (`CLOSES`).
- Notifications carry no signature (the TLS connection SEV opened is the trust) but message ids:
  they take the webhook's own path (sev/eventsub/receiver.py), so dedup, seq, resume and fan-out are
  the same. A store outage holds them in order in memory and retries, since Twitch does not
  resend over a WebSocket.
- The trust reaches no further than Twitch: SEV follows a reconnect URL only to `wss://` on
  Twitch's EventSub host or to the configured URL's own scheme, host and port
  (`reconnect_allowed`); it takes a notification or revocation only for a subscription it holds
  on that connection, and only within the webhook's 10-minute window (`check_fresh`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from sev.eventsub.protocol import (
    MAX_BODY_BYTES,
    Message,
    MessageType,
    RejectedMessage,
    SocketMessage,
    SocketMessageType,
    check_fresh,
    parse_socket_message,
)
from sev.eventsub.websocket.plan import Wanted
from sev.eventsub.websocket.rules import CLOSES, keepalive_timeout, reconnect_allowed
from sev.store import StoreUnavailable
from sev.twitch import TwitchUnavailable

log = logging.getLogger(__name__)

# How often each process plans, renews its leases and retries a failed subscribe (at most).
TICK_S = 5.0
_WELCOME_TIMEOUT_S = 10.0
_DRAIN_S = 1.0
_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_MAX_HELD = 10_000


class Transport(Protocol):
    """What a carrier asks of the transport that keeps it (SocketTransport)."""

    url: str
    floor: float

    def now(self) -> datetime: ...

    def wake(self) -> None: ...

    async def receive(self, message: Message) -> None: ...

    async def sync(
        self,
        user_id: str,
        session_id: str,
        wanted: dict[tuple[str, str], Wanted],
        subscribed: dict[tuple[str, str], str],
    ) -> None: ...

    async def moved(self, ids: set[str], session_id: str) -> None: ...

    async def forget(self, ids: set[str], status: str | None) -> None: ...


@dataclass
class _Connection:
    ws: ClientConnection
    session_id: str
    keepalive_s: float


class _Reconnect(Exception):
    """Twitch asked the connection to move to `url`."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class _Newest:
    """The newest reconnect URL named on the old connection while a move is under way."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.changed = asyncio.Event()

    def name(self, url: str) -> None:
        if url != self.url:
            self.url = url
            self.changed.set()


class CarrierSocket:
    """One user's EventSub WebSocket and the subscriptions on it."""

    def __init__(self, carrier_id: str, transport: Transport) -> None:
        self.carrier_id = carrier_id
        self._transport = transport
        self._wanted: dict[tuple[str, str], Wanted] = {}
        # key -> Twitch's subscription id, on the current session.
        self._subscribed: dict[tuple[str, str], str] = {}
        self._session_id: str | None = None
        self._sync_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._resync: asyncio.Task[None] | None = None
        # Messages the store could not take yet, in arrival order (Twitch does not resend).
        self._held: deque[Message] = deque()
        self._retrying: asyncio.Task[None] | None = None
        # Open connections: one, or two while moving to a reconnect URL.
        self._open_connections: set[ClientConnection] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"sev-eventsub-{self.carrier_id}")

    async def stop(self) -> None:
        """Close the connection (its subscriptions die with it at Twitch)."""
        for task in (self._task, self._resync, self._retrying):
            if task is not None:
                task.cancel()
        for task in (self._task, self._resync, self._retrying):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._held:
            log.error(
                "stopping with the store down: %d EventSub messages of %s not stored",
                len(self._held),
                self.carrier_id,
            )
        await self._forget_records("websocket_disconnected")

    async def assign(self, wanted: list[Wanted]) -> None:
        """What this connection should carry from now on; applied at once if connected."""
        self._wanted = {w.key: w for w in wanted}
        if self._session_id is not None:
            await self._sync()

    # -- the connection's life ------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        url = self._transport.url
        while True:
            try:
                connection = await self._open(url)
                failures = 0
                url = self._transport.url
                await self._fresh_session(connection)
                await self._serve(connection)
            except asyncio.CancelledError:
                raise
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                meaning, again = CLOSES.get(code or 0, ("connection closed", True))
                log.warning(
                    "EventSub WebSocket of %s closed (%s: %s)", self.carrier_id, code, meaning
                )
                if not again:
                    failures = len(_BACKOFF_S) - 2
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError, RejectedMessage) as error:
                log.warning(
                    "EventSub WebSocket of %s failed: %s", self.carrier_id, str(error)[:200]
                )
            except Exception:
                log.exception("EventSub WebSocket of %s failed", self.carrier_id)
            finally:
                self._abort_all()
            await self._forget_records("websocket_disconnected")
            await asyncio.sleep(_BACKOFF_S[min(failures, len(_BACKOFF_S) - 1)])
            failures += 1

    def _abort_all(self) -> None:
        """Drop whatever connection is still open (on any way out of `_run`, cancel included)."""
        for ws in self._open_connections:
            ws.transport.abort()
        self._open_connections.clear()

    async def _open(self, url: str) -> _Connection:
        """Connect and read the welcome."""
        ws = await connect(
            url,
            # SEV must send Twitch nothing but pongs (4001): no pings of its own.
            ping_interval=None,
            max_size=MAX_BODY_BYTES,
            open_timeout=_WELCOME_TIMEOUT_S,
            close_timeout=2,
        )
        try:
            async with asyncio.timeout(_WELCOME_TIMEOUT_S):
                raw = await ws.recv()
            message = parse_socket_message(raw)
            if message.message_type is not SocketMessageType.WELCOME:
                raise RejectedMessage(400, f"expected a welcome, got {message.message_type}")
            session_id = message.session.get("id")
            keepalive = message.session.get("keepalive_timeout_seconds")
            if not isinstance(session_id, str) or not session_id:
                raise RejectedMessage(400, "welcome without a session id")
        except BaseException:
            ws.transport.abort()
            raise
        self._open_connections.add(ws)
        return _Connection(ws, session_id, keepalive_timeout(keepalive, self._transport.floor))

    async def _fresh_session(self, connection: _Connection) -> None:
        # A new session (not a reconnect): the old session's subscriptions died with it.
        await self._forget_records(None)
        self._subscribed.clear()
        self._session_id = connection.session_id
        log.info(
            "EventSub WebSocket of %s connected (session %s, keepalive %gs)",
            self.carrier_id,
            connection.session_id,
            connection.keepalive_s,
        )
        await self._sync()

    async def _serve(self, connection: _Connection) -> None:
        """Read messages until the connection ends; follow reconnects on the way."""
        while True:
            try:
                await self._read(connection.ws, connection.keepalive_s)
            except _Reconnect as reconnect:
                connection = await self._move(connection, reconnect.url)

    async def _read(
        self, ws: ClientConnection, keepalive_s: float, moving: _Newest | None = None
    ) -> None:
        """Handle messages until a reconnect (raised; noted in `moving` during a move) or the
        end (ConnectionClosed)."""
        while True:
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
                # cancellation (stop()) that meets a message arriving at that moment.
                async with asyncio.timeout(_deadline(keepalive_s)):
                    raw = await ws.recv()
            except TimeoutError:
                log.warning(
                    "EventSub WebSocket of %s: no message for %gs; connecting anew",
                    self.carrier_id,
                    _deadline(keepalive_s),
                )
                # Not a clean close: Twitch may never answer a dead connection.
                ws.transport.abort()
                raise
            message = self._parse(raw)
            if message is None:
                continue
            if message.message_type is SocketMessageType.RECONNECT:
                url = message.session.get("reconnect_url")
                if not isinstance(url, str) or not url:
                    continue
                if not reconnect_allowed(url, self._transport.url):
                    # Whoever can send this could move SEV to a host of their own, which SEV
                    # would then believe. Twitch closes a connection that does not move (4004).
                    log.warning(
                        "EventSub WebSocket of %s: reconnect URL %r is not Twitch's; not followed",
                        self.carrier_id,
                        url[:200],
                    )
                    continue
                if moving is None:
                    raise _Reconnect(url)
                moving.name(url)
                continue
            await self._handle(message)

    async def _move(self, old: _Connection, url: str) -> _Connection:
        """Connect to the reconnect URL while still reading the old connection, then switch."""
        log.info("EventSub WebSocket of %s moves to a new URL, as Twitch asks", self.carrier_id)
        newest = _Newest(url)
        reading = asyncio.create_task(self._read(old.ws, old.keepalive_s, newest))
        opening: asyncio.Task[_Connection] | None = None
        target: str | None = None
        renamed: asyncio.Task[bool] | None = None
        try:
            while True:
                if opening is not None and opening.done():
                    if not opening.cancelled() and opening.exception() is None:
                        new = opening.result()
                        break
                    # The old connection still delivers: stay on it until Twitch names another
                    # URL or closes it (and then SEV connects anew).
                    log.warning(
                        "EventSub WebSocket of %s could not move: %s; staying on the old one",
                        self.carrier_id,
                        str(opening.exception())[:200] if not opening.cancelled() else "cancelled",
                    )
                    opening = None
                if reading.done():
                    await reading  # raises what ended the old connection
                    raise ConnectionError("the old connection ended")
                if newest.url != target:
                    # A newer URL replaces the one being connected to: Twitch takes only the
                    # newest. The same URL named twice is one move.
                    if opening is not None and opening.cancel():
                        with contextlib.suppress(asyncio.CancelledError):
                            await opening
                        opening = None
                    if opening is None:
                        target = newest.url
                        newest.changed.clear()
                        opening = asyncio.create_task(self._open(target))
                    continue
                renamed = asyncio.create_task(newest.changed.wait())
                waiting: set[asyncio.Future[Any]] = {reading, renamed}
                if opening is not None:
                    waiting.add(opening)
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                renamed.cancel()
        except BaseException:
            for task in (opening, reading, renamed):
                if task is not None:
                    task.cancel()
            raise
        # The new one is live: what was already on its way on the old one is still read (a
        # message id seen twice is dropped by the store), then the old one is closed.
        await asyncio.wait({reading}, timeout=_DRAIN_S)
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reading
        await old.ws.close()
        self._open_connections.discard(old.ws)
        self._session_id = new.session_id
        await self._transport.moved(set(self._subscribed.values()), new.session_id)
        return new

    def _parse(self, raw: str | bytes) -> SocketMessage | None:
        try:
            return parse_socket_message(raw)
        except RejectedMessage as rejected:
            log.warning("EventSub WebSocket of %s: %s; ignored", self.carrier_id, rejected.reason)
            return None

    # -- messages -------------------------------------------------------------------------------

    async def _handle(self, message: SocketMessage) -> None:
        if message.message_type in (SocketMessageType.WELCOME, SocketMessageType.KEEPALIVE):
            return
        genuine = await self._admit(message)
        if genuine is None:
            return
        revocation = genuine.message_type is MessageType.REVOCATION
        if revocation:
            gone = str(genuine.subscription.get("id", ""))
            for key in [k for k, v in self._subscribed.items() if v == gone]:
                del self._subscribed[key]
        if self._held:
            self._hold(genuine)
            return
        try:
            await self._transport.receive(genuine)
        except StoreUnavailable:
            self._hold(genuine)
        if revocation:
            self._transport.wake()

    async def _admit(self, message: SocketMessage) -> Message | None:
        """The message as the webhook path takes it, if it is fresh and for a subscription SEV
        holds on this connection; None (logged) otherwise."""
        try:
            genuine = message.to_message()
            # Checked on arrival, not when a store outage ends: held messages stay valid.
            check_fresh(genuine.sent_at, self._transport.now())
        except RejectedMessage as rejected:
            log.warning(
                "EventSub message %s of %s refused: %s",
                message.message_id,
                self.carrier_id,
                rejected.reason,
            )
            return None
        subscription_id = genuine.subscription.get("id")
        if not isinstance(subscription_id, str) or not await self._holds(subscription_id):
            log.warning(
                "EventSub message %s of %s names subscription %r, not one SEV holds there; dropped",
                message.message_id,
                self.carrier_id,
                str(subscription_id)[:100],
            )
            return None
        return genuine

    async def _holds(self, subscription_id: str) -> bool:
        if subscription_id in self._subscribed.values():
            return True
        if self._sync_lock.locked():
            # A subscription being created can deliver before Twitch's answer naming its id
            # reaches SEV: decide once the creating is done.
            async with self._sync_lock:
                pass
        return subscription_id in self._subscribed.values()

    def _hold(self, message: Message) -> None:
        if len(self._held) >= _MAX_HELD:
            dropped = self._held.popleft()
            log.error("store down too long: EventSub message %s lost", dropped.message_id)
        self._held.append(message)
        if self._retrying is None or self._retrying.done():
            log.warning("store unavailable: holding EventSub messages until it is back")
            self._retrying = asyncio.create_task(self._retry_held())

    async def _retry_held(self) -> None:
        delay = 0.2
        while self._held:
            try:
                await self._transport.receive(self._held[0])
            except StoreUnavailable:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._held.popleft()
            delay = 0.2
        log.info("store back: held EventSub messages stored")

    # -- subscriptions --------------------------------------------------------------------------

    async def _sync(self) -> None:
        """Create what is wanted and missing, delete what is no longer wanted."""
        async with self._sync_lock:
            session_id = self._session_id
            if session_id is None:
                return
            try:
                await self._transport.sync(
                    self.carrier_id, session_id, self._wanted, self._subscribed
                )
            except (TwitchUnavailable, StoreUnavailable) as error:
                log.warning("subscribing on the EventSub WebSocket failed: %s; retrying", error)
                self._schedule_resync()

    def _schedule_resync(self) -> None:
        if self._resync is None or self._resync.done():

            async def later() -> None:
                await asyncio.sleep(TICK_S)
                await self._sync()

            self._resync = asyncio.create_task(later())

    async def _forget_records(self, status: str | None) -> None:
        """The records of this connection's subscriptions: marked with `status` (the page says
        the kind stopped), or deleted (None)."""
        ids = set(self._subscribed.values())
        if status is not None:
            self._session_id = None
        if not ids:
            return
        with contextlib.suppress(StoreUnavailable):
            await self._transport.forget(ids, status)
        if status is None:
            self._subscribed.clear()


def _deadline(keepalive_s: float) -> float:
    # Twitch: no message for keepalive_timeout_seconds means the connection is gone. A little
    # slack for the network and the loop.
    return keepalive_s + max(1.0, keepalive_s * 0.2)
