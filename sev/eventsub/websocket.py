"""EventSub over WebSocket: SEV connects out to Twitch, so it needs no public URL.

Twitch's rules (docs/TWITCH.md, "WebSocket transport"), and what SEV does about each:
- Subscriptions over a WebSocket need a *user* access token, and the connection belongs to that
  user: SEV opens one connection per user whose token carries subscriptions (a *carrier*).
  A streamer who logged in to SEV or connected their channel carries their own channel (every
  type their grant allows, at no cost). A channel whose streamer never authorized SEV is
  carried by one logged-in viewer who favours it, for the public types only; those cost 1
  each against that viewer's `max_total_cost` of 10, and a viewer favours one channel at a
  time, so one viewer's six public types always fit.
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

With several SEV processes, each carrier's connection is held by one process at a time through a
store lease (`eventsub-socket:{user id}`), renewed every tick and taken over by another process
within one lease period if the holder dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from sev.clock import now_utc
from sev.config import Settings
from sev.events import EventType, wanted_types
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
from sev.store import Broadcaster, Refusal, Store, StoreUnavailable, SubscriptionRecord, User
from sev.tokens import TokenKind
from sev.twitch import (
    SubscriptionConflict,
    SubscriptionRefused,
    TwitchAuthError,
    TwitchClient,
    TwitchError,
    TwitchForbidden,
    TwitchUnavailable,
)

log = logging.getLogger(__name__)

# Twitch's close codes (EventSub WebSocket reference, "Close message"): what each means, and
# whether connecting again at once can help (False: only once something changes).
CLOSES: dict[int, tuple[str, bool]] = {
    4000: ("Twitch had an internal server error", True),
    4001: ("SEV sent Twitch a message (only pongs are allowed): a bug in SEV", True),
    4002: ("SEV did not answer Twitch's ping in time", True),
    4003: ("no subscription was created within the welcome's window", False),
    4004: ("SEV did not move to the reconnect URL within the grace time", True),
    4005: ("network timeout", True),
    4006: ("network error", True),
    4007: ("the reconnect URL was invalid", True),
}
# How often each process plans, renews its leases and retries a failed subscribe (at most).
TICK_S = 5.0
_WELCOME_TIMEOUT_S = 10.0
_DRAIN_S = 1.0
_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_MAX_HELD = 10_000
# Refusal reasons of this transport, worded for the page in sev/streamers.py (HELD_BACK).
NO_CARRIER = "socket_no_login"
SOCKET_COST = "socket_cost"
SOCKET_LIMIT = "socket_limit"
_SOCKET_RETRY = timedelta(minutes=10)
# Twitch's EventSub WebSocket host: a reconnect URL elsewhere is not Twitch's.
TWITCH_EVENTSUB_HOST = "eventsub.wss.twitch.tv"
# keepalive_timeout_seconds: "whole integers between 10 and 600", 10 when not asked for.
KEEPALIVE_DEFAULT_S = 10.0
KEEPALIVE_MAX_S = 600.0

# sev/eventsub/receiver.py's Receiver.receive: the webhook's path for a genuine message.
Receive = Callable[[Message, datetime], Awaitable[None]]


# -- who carries what ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """One subscription a carrier should hold: a channel's catalogue entry."""

    broadcaster_id: str
    entry: EventType

    @property
    def key(self) -> tuple[str, str]:
        return (self.broadcaster_id, self.entry.key)


@dataclass
class Plan:
    """Which user's connection carries which subscriptions, and what nobody can carry."""

    carriers: dict[str, list[Wanted]] = field(default_factory=dict)
    # broadcaster id -> catalogue keys nobody can carry (no logged-in favourer): NO_CARRIER.
    uncarried: dict[str, list[str]] = field(default_factory=dict)


def token_of(user: User | None) -> str | None:
    """The token a carrier subscribes with: the channel grant's (it has the scopes of the
    connected types, and works for the public ones too), else the login token."""
    if user is None:
        return None
    return user.channel_access_token or user.access_token


def _held(refusal: Refusal | None, entry: EventType, now: datetime) -> bool:
    if refusal is None or refusal.reason == NO_CARRIER:
        return False
    if refusal.reason == "version_removed":
        return refusal.version == entry.version
    return refusal.retry_at is None or now < refusal.retry_at


def plan(
    broadcasters: Sequence[Broadcaster],
    users: Sequence[User],
    now: datetime,
    grace: timedelta,
) -> Plan:
    """Assign every wanted channel to one carrier (a pure function of the store's state)."""
    by_id = {user.id: user for user in users}
    favourers: dict[str, list[User]] = {}
    for user in sorted(users, key=lambda u: u.id):
        if user.favorite_id and user.access_token:
            favourers.setdefault(user.favorite_id, []).append(user)
    result = Plan()
    for broadcaster in sorted(broadcasters, key=lambda b: b.id):
        if broadcaster.removed_at is not None:
            continue
        own = by_id.get(broadcaster.id)
        fans = favourers.get(broadcaster.id, [])
        if broadcaster.unwanted_since is not None and (
            not fans and (token_of(own) is None or now - broadcaster.unwanted_since >= grace)
        ):
            continue
        if token_of(own) is not None and own is not None:
            # Their own channel grant allows the connected types; a login token the public ones.
            scopes = set(broadcaster.granted_scopes) if own.channel_access_token else set()
            carrier, entries = own.id, wanted_types(scopes)
        elif fans:
            carrier, entries = fans[0].id, wanted_types(set())
        else:
            result.uncarried[broadcaster.id] = [e.key for e in wanted_types(set())]
            continue
        chosen = [
            Wanted(broadcaster.id, e)
            for e in entries
            if not _held(broadcaster.refusal(e.key), e, now)
        ]
        result.carriers.setdefault(carrier, []).extend(chosen)
    return result


def refusal(entry: EventType, reason: str, now: datetime) -> Refusal:
    """A refusal of this transport (retried after a while, or as soon as the plan changes)."""
    retry = None if reason == NO_CARRIER else now + _SOCKET_RETRY
    return Refusal(key=entry.key, version=entry.version, reason=reason, at=now, retry_at=retry)


# -- what a connection may say ------------------------------------------------------------------


def _endpoint(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a ws:// or wss:// URL; None for anything else or anything odd."""
    # Userinfo, backslashes, spaces and non-ASCII are where URL parsers disagree about the host.
    if not url.isascii() or not url.isprintable() or " " in url or "\\" in url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("ws", "wss") or not parts.hostname or "@" in parts.netloc:
        return None
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "wss" else 80)


def reconnect_allowed(url: str, configured: str) -> bool:
    """Whether a `session_reconnect` URL is Twitch's: `wss://` on Twitch's EventSub host, or the
    scheme, host and port of the configured URL (a simulated Twitch)."""
    target = _endpoint(url)
    return target is not None and target in (
        ("wss", TWITCH_EVENTSUB_HOST, 443),
        _endpoint(configured),
    )


def keepalive_floor(configured: str) -> float:
    """The least keepalive SEV believes: Twitch's 10 s, or less when the configured URL itself
    asks for less (only a simulated Twitch grants that, and tests need short silences)."""
    asked = parse_qs(urlsplit(configured).query).get("keepalive_timeout_seconds", [])
    try:
        seconds = float(asked[-1])
    except (IndexError, ValueError):
        return KEEPALIVE_DEFAULT_S
    if not math.isfinite(seconds):
        return KEEPALIVE_DEFAULT_S
    return max(1.0, min(KEEPALIVE_DEFAULT_S, seconds))


def keepalive_timeout(value: object, floor: float) -> float:
    """A welcome's `keepalive_timeout_seconds` as SEV believes it.

    Below `floor` it is raised to it (a shorter silence would only churn connections). Above
    Twitch's 600, not a positive finite number, or absent, it is Twitch's default 10: Twitch
    never says more than 600, and the shortest documented wait costs at worst one needless
    reconnect, where believing 1e308 keeps SEV on a silent connection for good.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return KEEPALIVE_DEFAULT_S
    if not 0 < value <= KEEPALIVE_MAX_S:
        return KEEPALIVE_DEFAULT_S
    return max(floor, float(value))


# -- one carrier's connection --------------------------------------------------------------------


@dataclass
class _Connection:
    ws: ClientConnection
    session_id: str
    keepalive_s: float


class _TokenRenewed(Exception):
    """Twitch refused a carrier's token, which was then renewed: subscribe again with it."""


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

    def __init__(self, carrier_id: str, transport: SocketTransport) -> None:
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


# -- all carriers ----------------------------------------------------------------------------------


class SocketTransport:
    """Keeps one EventSub WebSocket per carrier this process holds the lease of."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        twitch: TwitchClient,
        *,
        receive: Receive,
        note_refusals: Callable[[str, dict[str, Refusal | None]], Awaitable[None]],
        check_token: Callable[[str, TokenKind], Awaitable[None]],
        holder: str,
        clock: Callable[[], datetime] = now_utc,
        wake: asyncio.Event | None = None,
    ) -> None:
        self.url = settings.twitch_eventsub_ws_url
        self.floor = keepalive_floor(self.url)
        self._lease_s = settings.sev_eventsub_lease_s
        self._tick_s = min(TICK_S, self._lease_s / 3)
        self._settings = settings
        self._store = store
        self._twitch = twitch
        self._receive = receive
        self._note_refusals = note_refusals
        # TokenKeeper.check: validate one of a user's tokens, refreshing (or dropping) it.
        self._check_token = check_token
        self._holder = holder
        self._clock = clock
        self._sockets: dict[str, CarrierSocket] = {}
        # Set (by `wake`, or by whoever shares the event) when something changed: plan again now.
        self._wake = wake if wake is not None else asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="sev-eventsub-sockets")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for carrier_id in list(self._sockets):
            await self._drop(carrier_id)

    def wake(self) -> None:
        """Something changed (a favourite, a login, a grant): plan again now."""
        self._wake.set()

    def now(self) -> datetime:
        return self._clock()

    async def receive(self, message: Message) -> None:
        """An admitted notification or revocation from any connection: the webhook's path."""
        await self._receive(message, self._clock())

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as error:
                log.warning("EventSub WebSocket planning: store unavailable (%s)", error)
            except Exception:
                log.exception("EventSub WebSocket planning failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._tick_s)
            self._wake.clear()

    async def tick(self) -> None:
        """Plan, take or renew the carriers' leases, and (dis)connect accordingly."""
        now = self._clock()
        grace = timedelta(seconds=self._settings.sev_release_grace_s)
        broadcasters = await self._store.list_broadcasters()
        current = plan(broadcasters, await self._store.users_with_tokens(), now, grace)
        await self._note_uncarried(broadcasters, current, now)
        for carrier_id, wanted in current.carriers.items():
            if not wanted:
                continue
            held = await self._store.try_lease(_lease(carrier_id), self._holder, self._lease_s, now)
            if not held:
                if carrier_id in self._sockets:
                    log.info("another process took over the EventSub WebSocket of %s", carrier_id)
                    await self._drop(carrier_id, release=False)
                continue
            socket = self._sockets.get(carrier_id)
            if socket is None:
                socket = self._sockets[carrier_id] = CarrierSocket(carrier_id, self)
                await socket.assign(wanted)
                socket.start()
            else:
                await socket.assign(wanted)
        for carrier_id in set(self._sockets) - {c for c, w in current.carriers.items() if w}:
            await self._drop(carrier_id)

    async def _drop(self, carrier_id: str, *, release: bool = True) -> None:
        socket = self._sockets.pop(carrier_id, None)
        if socket is not None:
            with contextlib.suppress(Exception):
                await socket.assign([])
            await socket.stop()
        if release:
            with contextlib.suppress(StoreUnavailable, TimeoutError):
                await asyncio.wait_for(
                    self._store.try_lease(_lease(carrier_id), self._holder, 0, self._clock()), 1.0
                )

    async def _note_uncarried(
        self, broadcasters: Sequence[Broadcaster], current: Plan, now: datetime
    ) -> None:
        """Say on each channel's page which public types nobody can carry, and stop saying it
        once someone can."""
        for broadcaster in broadcasters:
            keys = set(current.uncarried.get(broadcaster.id, []))
            stale = {r.key for r in broadcaster.refusals if r.reason == NO_CARRIER} - keys
            fresh = keys - {r.key for r in broadcaster.refusals if r.reason == NO_CARRIER}
            if not stale and not fresh:
                continue
            decided: dict[str, Refusal | None] = dict.fromkeys(stale)
            for entry in wanted_types(set()):
                if entry.key in fresh:
                    decided[entry.key] = refusal(entry, NO_CARRIER, now)
            await self._note_refusals(broadcaster.id, decided)

    # -- what a connection asks of the transport -----------------------------------------------

    async def sync(
        self,
        user_id: str,
        session_id: str,
        wanted: dict[tuple[str, str], Wanted],
        subscribed: dict[tuple[str, str], str],
    ) -> None:
        """Bring one session's subscriptions in line with `wanted` (mutates `subscribed`)."""
        try:
            await self._sync(user_id, session_id, wanted, subscribed, renew=True)
        except _TokenRenewed:
            # Within the welcome's window: at once, with the renewed token.
            await self._sync(user_id, session_id, wanted, subscribed, renew=False)

    async def _sync(
        self,
        user_id: str,
        session_id: str,
        wanted: dict[tuple[str, str], Wanted],
        subscribed: dict[tuple[str, str], str],
        *,
        renew: bool,
    ) -> None:
        user = await self._store.get_user(user_id)
        token = token_of(user)
        if token is None:
            return
        now = self._clock()
        decided: dict[str, dict[str, Refusal | None]] = {}
        for key in [k for k in subscribed if k not in wanted]:
            subscription_id = subscribed.pop(key)
            with contextlib.suppress(TwitchAuthError):
                await self._twitch.delete_socket_subscription(subscription_id, token)
            await self._store.delete_subscription(subscription_id)
        for key, item in wanted.items():
            if key in subscribed:
                continue
            entry = item.entry
            try:
                created, _ = await self._twitch.create_socket_subscription(
                    entry.type,
                    entry.version,
                    entry.condition(item.broadcaster_id),
                    session_id,
                    token,
                )
            except SubscriptionRefused as refused:
                reason = SOCKET_COST if refused.reason == "cost" else SOCKET_LIMIT
                if refused.reason == "version_removed":
                    reason = "version_removed"
                log.warning("Twitch refused %s over WebSocket: %s", entry.type, refused)
                decided.setdefault(item.broadcaster_id, {})[entry.key] = refusal(entry, reason, now)
                continue
            except TwitchForbidden as forbidden:
                log.warning("Twitch refused %s over WebSocket: %s", entry.type, forbidden)
                decided.setdefault(item.broadcaster_id, {})[entry.key] = refusal(
                    entry, "forbidden", now
                )
                continue
            except SubscriptionConflict:
                # Already on this session (a retry after a lost answer): Twitch holds it.
                continue
            except TwitchAuthError as error:
                # Expired (or revoked): refresh it now rather than at the next hourly check,
                # then try again (a refused one ends the grant and the plan moves on).
                log.info("Twitch refused the token of %s (%s); renewing it", user_id, error)
                if not renew:
                    raise TwitchUnavailable("Twitch refused a renewed token too") from error
                kind: TokenKind = "channel" if user and user.channel_access_token else "login"
                with contextlib.suppress(TwitchError):
                    await self._check_token(user_id, kind)
                raise _TokenRenewed from error
            except TwitchUnavailable:
                raise
            except TwitchError as error:
                log.warning("subscribing to %s over WebSocket failed: %s", entry.type, error)
                continue
            subscribed[key] = created.id
            decided.setdefault(item.broadcaster_id, {})[entry.key] = None
            await self._store.save_subscription(
                SubscriptionRecord(
                    id=created.id,
                    broadcaster_id=item.broadcaster_id,
                    type=created.type,
                    version=created.version,
                    condition=dict(created.condition),
                    status=created.status,
                    created_at=created.created_at,
                    carrier_id=user_id,
                    session_id=session_id,
                )
            )
        for broadcaster_id, changes in decided.items():
            await self._note_refusals(broadcaster_id, changes)

    async def moved(self, ids: set[str], session_id: str) -> None:
        """The subscriptions carried over to a new session after a reconnect."""
        for subscription_id in ids:
            record = await self._store.get_subscription(subscription_id)
            if record is not None:
                await self._store.save_subscription(
                    record.model_copy(update={"session_id": session_id})
                )

    async def forget(self, ids: set[str], status: str | None) -> None:
        """Mark (or delete) the records of subscriptions whose connection ended."""
        for subscription_id in ids:
            record = await self._store.get_subscription(subscription_id)
            if record is None:
                continue
            if status is None:
                await self._store.delete_subscription(subscription_id)
            elif record.status == "enabled":
                await self._store.save_subscription(record.model_copy(update={"status": status}))


def _lease(carrier_id: str) -> str:
    return f"eventsub-socket:{carrier_id}"
