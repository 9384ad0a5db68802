"""Socket.IO fan-out across processes through Redis (`REDIS_URL`).

python-socketio's `AsyncRedisManager` carries the rooms: an emit in one process is published on
Redis and every other process emits it to its own members of the room. This subclass keeps that
wire format inside an envelope and changes three things.

**A channel per broadcaster's room.** python-socketio publishes every emit on one channel, so
every process receives and decodes every event of every broadcaster: past a few processes, adding
one adds no fan-out capacity. Here an emit to a room named `room_prefix...` (a broadcaster's
viewers) is published on that room's own channel (`socketio:broadcaster:<id>`), and a process is
subscribed to the channel of a room only while one of its own sockets is in it: it receives the
events its viewers watch, and only those. Everything else (a user's room, disconnects, callbacks)
stays on the common channel, which every process subscribes to.

- The first local socket to enter a room subscribes its channel, and `enter_room` returns only
  once Redis has confirmed the subscription (at most `SUBSCRIBE_TIMEOUT_S`). `watch` joins the
  room before it reads the store, so an event is either in what it reads or published after the
  subscription: never in neither.
- The last local socket to leave a room unsubscribes its channel `UNSUBSCRIBE_AFTER_S` later,
  unless somebody entered again meanwhile: a page reload does not cost two round trips.
- Redis answers SUBSCRIBE and UNSUBSCRIBE in order on the one connection, so each channel's
  commands not yet confirmed are kept in order and a channel counts as subscribed only when the
  last of them, a SUBSCRIBE, is confirmed.
- When the subscription connection is lost, the listener connects again and subscribes the
  common channel and every wanted room's channel in one go; `on_back` runs once all are
  confirmed. A `watch` during the outage does not wait for Redis: `on_lost` has already noted
  where this process's viewers were, and `on_back` re-sends from the store what they missed.

Redis 7's sharded pub/sub (SSUBSCRIBE) would spread these channels over a Redis Cluster's
shards; on one Redis it behaves as this does, so plain PUBLISH/SUBSCRIBE keeps Redis 6 working.

**Only SEV's own messages are acted on.** Anyone who can PUBLISH to the Redis could otherwise
show every viewer made-up events or end anyone's session. With a `secret` (SEV passes its
session secret, from which a key of its own is derived) each message is sealed, `sev1 <ms>
<hmac> <json>`, with an HMAC-SHA256 of the time it was published and the JSON: a message without
a valid seal, or sealed more than `SEAL_WINDOW_S` away from this process's clock (a recorded one
replayed later), is dropped. Without a secret, messages are plain python-socketio JSON, as an
external `AsyncRedisManager(url, write_only=True)` publishes. Either way, what is acted on is
only what SEV emits across processes (`read_message`): an `emit` to the `/` namespace, of an
`event` (with a secret a whole Event, without one a `seq` at least, of the room's broadcaster)
or a `notice` to a broadcaster's room, or of a `session_ended` (`{"reason": text}`) to a user's
room, with no callback, within `MAX_MESSAGE_BYTES`.
Other methods python-socketio would act on are not acted on either: a `disconnect`,
`enter_room` or `leave_room` is what python-socketio publishes when it is asked to act on a
socket that is not in this process, which with SEV only happens once that socket has gone (a
page that closed while its `watch` ran), so it is of no use to any other process: ignored
quietly (`ignored`). Callbacks and `close_room` SEV never sends. What is dropped is counted and
logged (at most one line per `DROPPED_LOG_S`); the listener carries on.

**Outages**, because the ingest worker awaits every publish:

- a publish is bounded (`PUBLISH_TIMEOUT_S`, no client-side retries) and, once Redis is known to
  be down, skipped without a network round trip until the next probe: a lost Redis costs the
  webhook path almost nothing, and events stay stored (viewers catch up with `after`);
- an outage is logged once when it starts and once when it ends, not once per event;
- what Redis did not take is kept (up to `UNSENT_LIMIT` messages) and published, in order, when it
  is back, so viewers on the other processes get it late rather than never;
- the listener reconnects every few seconds (not python-socketio's back-off up to a minute), and
  `on_lost`/`on_back` let SEV re-send from the store what its own viewers missed meanwhile.

Relies on python-socketio 5.x's pub/sub hooks (`_publish`, `_listen`, `enter_room`,
`basic_leave_room`, the `room` of an emit message) and on
`AsyncPubSubManager._handle_emit` delivering to local viewers through `super().emit`, which the
class order makes `RoomManager.emit` (whose `on_emit` then sees it); pyproject pins
python-socketio to one minor version and tests/live/test_library_contract.py checks them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import itertools
import json
import logging
import re
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit, urlunsplit

import socketio
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sev.events import Event
from sev.live.rooms import RoomManager
from sev.store.base import MAX_SEQ

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 0.5
# While Redis is down, one publish in this many seconds tries it again; the others are skipped.
PROBE_INTERVAL_S = 2.0
LISTEN_RETRY_MIN_S = 0.5
LISTEN_RETRY_MAX_S = 3.0
CHECK_TIMEOUT_S = 3.0
# Messages kept while Redis is down (~1 KB each), and how many are re-published per round trip.
UNSENT_LIMIT = 10_000
REPLAY_BATCH = 500
# How long `enter_room` waits for Redis to confirm a room's subscription.
SUBSCRIBE_TIMEOUT_S = 1.0
# A room's channel stays subscribed this long after its last local socket left.
UNSUBSCRIBE_AFTER_S = 10.0
# Channels per SUBSCRIBE when the listener subscribes everything anew.
SUBSCRIBE_BATCH = 1000
# A message read from Redis larger than this is not SEV's: an Event carries one EventSub
# notification (a webhook body of at most 1 MiB, sev.eventsub.protocol.MAX_BODY_BYTES) and a
# little of SEV's own.
MAX_MESSAGE_BYTES = 2**20 + 64 * 1024
# A sealed message is accepted this long either side of this process's clock: Redis delivers at
# once, what was kept during an outage is sealed when it is sent, and hosts' clocks differ a bit.
SEAL_WINDOW_S = 60.0
# At most one warning per this many seconds about messages dropped.
DROPPED_LOG_S = 60.0
# A session_ended's reason is one of SEV's sentences (sev/web/auth.py, sev/tokens.py), all shorter.
_MAX_REASON_CHARS = 500
_SEAL_TAG = b"sev1"
# Twitch's user ids are digits; SEV's user ids (the rooms of a user's sockets) are Twitch's or
# the simulated Twitch's, digits as well, but any short token is harmless as a room name.
_BROADCASTER_ID = re.compile(r"[0-9]{1,32}")
_USER_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
_USER_PREFIX = "user:"
_ABOUT_GONE_SOCKETS = frozenset({"disconnect", "enter_room", "leave_room"})
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class FanoutUnavailable(Exception):
    """Redis did not answer at start-up; the message names REDIS_URL."""


def redacted(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def exposure_warning(url: str) -> str | None:
    """A warning when REDIS_URL leads off this machine without a password or without TLS
    (whoever reaches that Redis can read SEV's events and disrupt its fan-out); else None.

    Never names the password. Pure: nothing is resolved or connected."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return None
        hosts = _hosts(parts.netloc)
        query = parse_qs(parts.query)
    except ValueError:
        return None  # Redis.from_url refuses it with its own message
    remote = [host for host in hosts if not _is_loopback(host)]
    if not remote:
        return None
    missing = []
    if not (parts.password or query.get("password")):
        missing.append("without a password")
    if parts.scheme != "rediss":
        missing.append("without TLS (rediss://)")
    if not missing:
        return None
    return (
        f"REDIS_URL leads off this machine (to {', '.join(remote)}) {' and '.join(missing)}: "
        "whoever can reach that Redis can read every event SEV fans out and publish "
        "messages to it. Use a Redis that requires a password (an ACL user) and TLS, "
        "reachable only from SEV's hosts (docs/DEPLOYMENT.md)"
    )


def _hosts(netloc: str) -> list[str]:
    """The host names of a URL's netloc, without credentials or ports (a Sentinel URL lists
    several, separated by commas). No host: redis-py's default, localhost."""
    where = netloc.rpartition("@")[2]
    hosts = []
    for address in where.split(","):
        if address.startswith("["):
            host = address[1:].partition("]")[0]
        else:
            host = address.rpartition(":")[0] if address.count(":") == 1 else address
        hosts.append(host.lower() or "localhost")
    return hosts


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fanout_key(secret: str) -> bytes:
    """The key that seals fan-out messages, derived from SEV's session secret (which itself
    signs cookies: one key per purpose)."""
    return hmac.digest(secret.encode(), b"sev redis fan-out", "sha256")


def seal(key: bytes, body: bytes, now: float) -> bytes:
    """`body` in its envelope: `sev1 <ms> <hmac> <body>`, sealed at `now` (seconds)."""
    stamp = str(int(now * 1000)).encode()
    mac = hmac.digest(key, stamp + b" " + body, "sha256").hex().encode()
    return b" ".join((_SEAL_TAG, stamp, mac, body))


class Dropped(Exception):
    """A message read from Redis that SEV does not act on; the message says why (never
    anything taken from the message itself: whoever sent it chose that)."""


class Ignored(Dropped):
    """A message about a socket of another process that has gone (module's docstring): not
    acted on, and no sign that anything but SEV publishes."""


def unseal(key: bytes, payload: bytes, now: float) -> bytes:
    """The body of a sealed message; raise Dropped unless it was sealed with `key`, within
    `SEAL_WINDOW_S` of `now`."""
    parts = payload.split(b" ", 3)
    if len(parts) != 4 or parts[0] != _SEAL_TAG:
        raise Dropped("not sealed")
    _, stamp, mac, body = parts
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 15):
        raise Dropped("not sealed")
    expected = hmac.digest(key, stamp + b" " + body, "sha256").hex().encode()
    if not hmac.compare_digest(mac, expected):
        raise Dropped("bad seal")
    if abs(int(stamp) / 1000 - now) > SEAL_WINDOW_S:
        raise Dropped("sealed too long ago (or ahead of this clock)")
    return body


def read_message(body: bytes, *, room_prefix: str, whole_events: bool) -> dict[str, Any]:
    """The python-socketio pub/sub message in `body` if it is an emit SEV makes across
    processes (see the module's docstring); raise Dropped otherwise.

    `whole_events`: an `event` must be a whole Event of the room's broadcaster (what SEV
    emits); otherwise a `seq` suffices (and a `broadcaster`, if there is one, must be the
    room's)."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise Dropped("too large")
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        raise Dropped("not JSON") from None
    if not isinstance(message, dict):
        raise Dropped("not an emit")
    if message.get("method") in _ABOUT_GONE_SOCKETS:
        raise Ignored(str(message.get("method")))
    if message.get("method") != "emit":
        raise Dropped("not an emit")
    if message.get("namespace") != "/" or not isinstance(message.get("host_id"), str):
        raise Dropped("not an emit of SEV's")
    if message.get("callback") is not None or message.get("skip_sid") is not None:
        raise Dropped("an emit with a callback or a skipped socket")
    if message.get("binary", False) is not False:
        raise Dropped("binary")
    data = message.get("data")
    if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], dict):
        raise Dropped("data is not one object")
    event, room, payload = message.get("event"), message.get("room"), data[0]
    if not isinstance(room, str):
        raise Dropped("no room")
    if room.startswith(room_prefix):
        broadcaster_id = room.removeprefix(room_prefix)
        if not _BROADCASTER_ID.fullmatch(broadcaster_id):
            raise Dropped("not a broadcaster's room")
        if event == "event":
            _check_event(payload, broadcaster_id, whole=whole_events)
        elif event != "notice":
            raise Dropped("not an event SEV sends to a broadcaster's room")
    elif room.startswith(_USER_PREFIX):
        if not _USER_ID.fullmatch(room.removeprefix(_USER_PREFIX)):
            raise Dropped("not a user's room")
        if event != "session_ended":
            raise Dropped("not an event SEV sends to a user's room")
        reason = payload.get("reason")
        if payload.keys() != {"reason"} or not isinstance(reason, str):
            raise Dropped("session_ended is not {reason: text}")
        if len(reason) > _MAX_REASON_CHARS:
            raise Dropped("session_ended reason too long")
    else:
        raise Dropped("not a room of SEV's")
    return message


def _check_event(payload: dict[str, Any], broadcaster_id: str, *, whole: bool) -> None:
    seq = payload.get("seq")
    # bool is an int in Python.
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= MAX_SEQ:
        raise Dropped("event without a valid seq")
    broadcaster: Any
    if whole:
        try:
            broadcaster = Event.model_validate(payload).broadcaster.id
        except ValidationError:
            raise Dropped("event is not an Event") from None
    elif "broadcaster" in payload:
        person = payload["broadcaster"]
        broadcaster = person.get("id") if isinstance(person, dict) else None
    else:
        return
    if broadcaster != broadcaster_id:
        raise Dropped("event of another broadcaster than the room's")


class _Drops:
    """Counts the messages dropped; logs at most one line per DROPPED_LOG_S."""

    def __init__(self) -> None:
        self.count = 0
        self._unlogged = 0
        self._next_log = 0.0

    def note(self, channel: str, reason: str) -> None:
        self.count += 1
        self._unlogged += 1
        now = time.monotonic()
        if now >= self._next_log:
            log.warning(
                "dropped %d message(s) read from Redis that SEV did not send "
                "(the last on %s: %s); is something else publishing to this Redis?",
                self._unlogged,
                channel,
                reason,
            )
            self._unlogged = 0
            self._next_log = now + DROPPED_LOG_S


def _redis_options(url: str) -> dict[str, Any]:
    # No client-side retries (redis-py 6+ retries 3 times with up to 10 s back-off by default):
    # this class decides when to try again. No socket read timeout either, or an idle
    # subscription would time out; TCP keepalive finds a peer that vanished instead.
    options: dict[str, Any] = {"socket_connect_timeout": 1.0, "retry": Retry(NoBackoff(), 0)}
    if urlsplit(url).scheme in ("redis", "rediss") and hasattr(socket, "TCP_KEEPIDLE"):
        options["socket_keepalive"] = True
        options["socket_keepalive_options"] = {
            socket.TCP_KEEPIDLE: 10,
            socket.TCP_KEEPINTVL: 5,
            socket.TCP_KEEPCNT: 3,
        }
    return options


async def _ping(client: Redis) -> None:
    await cast("Awaitable[bool]", client.ping())


async def check_redis(url: str, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """One real PING; raise FanoutUnavailable with one line naming REDIS_URL if it fails."""
    client: Redis = Redis.from_url(
        url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
    )
    try:
        await asyncio.wait_for(_ping(client), timeout_s)
    except Exception as error:
        reason = str(error) or type(error).__name__
        raise FanoutUnavailable(
            f"REDIS_URL: Redis at {redacted(url)} did not answer PING ({reason}); start Redis "
            "or unset REDIS_URL to run one process without it"
        ) from None
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()


class RequireRedis:
    """ASGI middleware: start-up fails with one line naming REDIS_URL when Redis is down.

    The check runs on the lifespan's start-up, before the app's own lifespan: an exception there
    would reach uvicorn as a traceback, while a `lifespan.startup.failed` message is logged as it
    is, and uvicorn then exits non-zero without serving.
    """

    def __init__(self, app: ASGIApp, url: str) -> None:
        self.app = app
        self.url = url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        first = await receive()
        if first["type"] == "lifespan.startup":
            try:
                await check_redis(self.url)
            except FanoutUnavailable as error:
                await send(
                    {"type": "lifespan.startup.failed", "message": f"SEV cannot start: {error}"}
                )
                return
        pending = [first]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


class _Outage:
    """Logs the start and the end of a Redis outage, once each."""

    def __init__(self, url: str) -> None:
        self._url = redacted(url)
        self._since: float | None = None

    def begin(self, what: str, error: BaseException) -> None:
        if self._since is None:
            self._since = asyncio.get_running_loop().time()
            log.warning(
                "Redis fan-out lost (%s at %s: %s); webhooks are still stored and "
                "acknowledged, viewers on other processes get the events when it is back",
                what,
                self._url,
                str(error) or type(error).__name__,
            )

    def end(self) -> bool:
        """Mark Redis as back; True if it was down."""
        if self._since is None:
            return False
        log.warning(
            "Redis fan-out back after %.1f s", asyncio.get_running_loop().time() - self._since
        )
        self._since = None
        return True


class RedisFanout(socketio.AsyncRedisManager, RoomManager):  # type: ignore[misc]
    """`AsyncRedisManager` that survives a Redis outage without holding up the webhook path.

    Emits to this process's own viewers go through `RoomManager` (rooms.py: one encoded
    packet per room emit, viewers that stop reading disconnected), as without Redis.
    """

    redis: Redis | None  # the publishing client (the base class's attribute)

    def __init__(
        self,
        url: str,
        *,
        room_prefix: str = "broadcaster:",
        unsent_limit: int = UNSENT_LIMIT,
        unsubscribe_after_s: float = UNSUBSCRIBE_AFTER_S,
        secret: str | None = None,
    ) -> None:
        socketio.AsyncRedisManager.__init__(
            self, url, redis_options=_redis_options(url), logger=log
        )
        warning = exposure_warning(url)
        if warning is not None:
            log.warning("%s", warning)
        # Seals what this process publishes and opens what it receives (module's docstring).
        self._key = fanout_key(secret) if secret is not None else None
        self._drops = _Drops()
        # Rooms with this prefix have a channel of their own (see the module's docstring).
        self.room_prefix = room_prefix
        self.unsubscribe_after_s = unsubscribe_after_s
        # Set by the Socket.IO side (server.py), besides RoomManager's `on_emit`: the
        # subscription was lost (called at once, so it can note what its viewers had been sent);
        # the subscription is back (re-send what they missed).
        self.on_lost: Callable[[], None] | None = None
        self.on_back: Callable[[], Awaitable[None]] | None = None
        self._outage = _Outage(url)
        self._unsent: deque[tuple[str, bytes]] = deque(maxlen=unsent_limit)
        self._dropped = 0
        self._next_probe = 0.0
        self._publishing = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._retrying: asyncio.Task[None] | None = None
        # Its own client: resetting the publisher's connections must not cut the subscription.
        self._listener: Redis | None = None
        self._pubsub: Any = None
        # Rooms' channels: wanted (a local socket is in the room, or left it less than
        # `unsubscribe_after_s` ago); confirmed subscribed on the current connection; the
        # commands sent on it and not yet confirmed, in order (True: SUBSCRIBE); `enter_room`s
        # waiting for a confirmation; the timers of channels whose room emptied.
        self._wanted: set[str] = set()
        self._live: set[str] = set()
        self._pending: dict[str, deque[bool]] = {}
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._lingering: dict[str, asyncio.TimerHandle] = {}
        # Channels of the current connection's first SUBSCRIBE not yet confirmed, and whether
        # the listener is down (`on_lost` was called and `on_back` has not run yet).
        self._connecting: set[str] = set()
        self._down = False
        # Messages received from Redis, how many of them this process had published itself,
        # and how many were about sockets of other processes that had gone.
        self.received = 0
        self.received_own = 0
        self.ignored = 0

    async def start(self) -> None:
        """Subscribe now rather than on the first socket connection (RequireRedis checked it)."""
        if not self.server.manager_initialized:
            self.server.manager_initialized = True
            self.initialize()

    async def stop(self) -> None:
        """Stop listening and close the connections."""
        for timer in self._lingering.values():
            timer.cancel()
        self._lingering.clear()
        log.info(
            "Redis fan-out: received %d messages (%d of them published here, %d dropped), "
            "%d room channels subscribed at stop",
            self.received,
            self.received_own,
            self._drops.count,
            len(self._live - {self.channel}),
        )
        for task in [getattr(self, "thread", None), *self._tasks]:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._close_pubsub()
        for client in (self.redis, self._listener):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self.redis = self._listener = None

    def _client(self) -> Redis:
        return Redis.from_url(self.redis_url, **self.redis_options)

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("%s failed", name)

        task = asyncio.create_task(run(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- publishing -------------------------------------------------------------------------

    def channel_of(self, room: Any) -> str:
        """The channel an emit to `room` is published on."""
        if isinstance(room, str) and room.startswith(self.room_prefix):
            return f"{self.channel}:{room}"
        return str(self.channel)

    async def _publish(self, data: Any) -> None:
        channel = self.channel_of(data.get("room")) if data.get("method") == "emit" else None
        message = (channel or self.channel, self.json.dumps(data).encode())
        async with self._publishing:
            if self._unsent:
                # Behind earlier messages Redis did not take: keep the order.
                self._keep(message)
                await self._replay(only_when_due=True)
                return
            try:
                await self._send([message])
            except Exception as error:
                self._keep(message)
                await self._failed(error)

    def _keep(self, message: tuple[str, bytes]) -> None:
        if len(self._unsent) == self._unsent.maxlen:
            self._dropped += 1
        self._unsent.append(message)

    async def _send(self, messages: list[tuple[str, bytes]]) -> None:
        if self.redis is None:
            self.redis = self._client()
        if self._key is not None:
            # Sealed when sent, not when kept: what waited out an outage is not stale.
            now = time.time()
            messages = [(channel, seal(self._key, body, now)) for channel, body in messages]
        if len(messages) == 1:
            channel, payload = messages[0]
            await asyncio.wait_for(self.redis.publish(channel, payload), PUBLISH_TIMEOUT_S)
            return
        pipeline = self.redis.pipeline(transaction=False)
        for channel, payload in messages:
            pipeline.publish(channel, payload)
        await asyncio.wait_for(pipeline.execute(), PUBLISH_TIMEOUT_S * 4)

    async def _failed(self, error: Exception) -> None:
        self._next_probe = asyncio.get_running_loop().time() + PROBE_INTERVAL_S
        self._outage.begin("publishing", error)
        if self._retrying is None or self._retrying.done():
            # Publish the kept messages when Redis is back, even if no new event comes.
            self._start_retry()
        # A publish cut short by the timeout may leave a half-read reply on its connection.
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.redis.connection_pool.disconnect(), 0.5)

    async def _replay(self, *, only_when_due: bool) -> None:
        """Publish the kept messages, oldest first (the caller holds `_publishing`)."""
        if only_when_due and asyncio.get_running_loop().time() < self._next_probe:
            return
        replayed = 0
        while self._unsent:
            batch = list(itertools.islice(self._unsent, REPLAY_BATCH))
            try:
                await self._send(batch)
            except Exception as error:
                await self._failed(error)
                return
            for _ in batch:
                self._unsent.popleft()
            replayed += len(batch)
        self._outage.end()
        if replayed:
            dropped, self._dropped = self._dropped, 0
            log.warning(
                "published %d messages kept while Redis was unreachable%s",
                replayed,
                f" ({dropped} older ones dropped: their viewers catch up when they reconnect)"
                if dropped
                else "",
            )

    def _start_retry(self) -> None:
        self._retrying = asyncio.create_task(self._retry(), name="sev-fanout-retry")
        self._tasks.add(self._retrying)
        self._retrying.add_done_callback(self._tasks.discard)

    async def _retry(self) -> None:
        while self._unsent:
            await asyncio.sleep(max(0.0, self._next_probe - asyncio.get_running_loop().time()))
            async with self._publishing:
                await self._replay(only_when_due=True)

    # -- rooms' channels ----------------------------------------------------------------------

    async def enter_room(
        self, sid: str, namespace: str, room: str, eio_sid: str | None = None
    ) -> None:
        """Enter the room; the first local socket in a broadcaster's room returns only once
        this process is subscribed to the room's channel (or Redis is known to be down)."""
        await super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        channel = self.channel_of(room)
        local = self.is_connected(sid, namespace) or self.is_pre_connected(sid, namespace)
        if channel != self.channel and local:
            await self._follow(channel)

    def basic_leave_room(self, sid: str, namespace: str, room: str) -> None:
        """Leave the room; the last local socket to leave it unsubscribes its channel later."""
        super().basic_leave_room(sid, namespace, room)
        channel = self.channel_of(room)
        if (
            channel != self.channel
            and channel in self._wanted
            and channel not in self._lingering
            and not self._occupied(room)
        ):
            self._lingering[channel] = asyncio.get_running_loop().call_later(
                self.unsubscribe_after_s, self._unfollow, channel, room
            )

    def _occupied(self, room: str) -> bool:
        return any(room in rooms for rooms in self.rooms.values())

    async def _follow(self, channel: str) -> None:
        timer = self._lingering.pop(channel, None)
        if timer is not None:
            timer.cancel()
        if channel not in self._wanted:
            self._wanted.add(channel)
            if self._pubsub is not None:
                await self._subscription(channel, subscribe=True)
        if self._down or (channel in self._live and channel not in self._pending):
            return
        waiter = self._waiters.get(channel)
        if waiter is None:
            waiter = self._waiters[channel] = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:
            log.warning(
                "Redis did not confirm the subscription to %s within %.1f s",
                channel,
                SUBSCRIBE_TIMEOUT_S,
            )

    def _unfollow(self, channel: str, room: str) -> None:
        self._lingering.pop(channel, None)
        if self._occupied(room) or channel not in self._wanted:
            return
        self._wanted.discard(channel)
        if self._pubsub is not None:
            self._spawn(self._subscription(channel, subscribe=False), "sev-fanout-unsubscribe")

    async def _subscription(self, channel: str, *, subscribe: bool) -> None:
        """Send SUBSCRIBE or UNSUBSCRIBE on the listener's connection; `_listen` sees Redis
        confirm it."""
        pubsub = self._pubsub
        self._pending.setdefault(channel, deque()).append(subscribe)
        with contextlib.suppress(Exception):
            # A connection that broke is the listener's to notice: it subscribes anew.
            await (pubsub.subscribe(channel) if subscribe else pubsub.unsubscribe(channel))

    def _confirmed(self, channel: str, *, subscribed: bool) -> None:
        """Redis confirmed a SUBSCRIBE or UNSUBSCRIBE of `channel` (they come in order)."""
        if subscribed and channel in self._connecting:
            self._connecting.discard(channel)
            if not self._connecting and self._down:
                self._back()
        queue = self._pending.get(channel)
        if queue:
            queue.popleft()
            if queue:
                return  # the channel's state is that of its last command, still unconfirmed
            del self._pending[channel]
        if not subscribed:
            self._live.discard(channel)
            return
        self._live.add(channel)
        waiter = self._waiters.pop(channel, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _release_waiters(self) -> None:
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_result(None)

    # -- listening --------------------------------------------------------------------------

    async def _listen(self) -> AsyncIterator[dict[str, Any]]:
        # What this process published itself comes back on the channels it is subscribed to;
        # python-socketio would decode it to drop it. json.dumps puts an emit's `host_id` last
        # (any other encoding just takes the library's path).
        own = f'"host_id": "{self.host_id}"}}'.encode()
        retry_s = LISTEN_RETRY_MIN_S
        while True:
            try:
                if self._listener is None:
                    self._listener = self._client()
                await self._close_pubsub()
                self._live.clear()
                self._pending.clear()
                self._pubsub = self._listener.pubsub()
                channels = [self.channel, *sorted(self._wanted)]
                self._connecting = set(channels)
                for start in range(0, len(channels), SUBSCRIBE_BATCH):
                    batch = channels[start : start + SUBSCRIBE_BATCH]
                    for channel in batch:
                        self._pending.setdefault(channel, deque()).append(True)
                    await self._pubsub.subscribe(*batch)
                retry_s = LISTEN_RETRY_MIN_S
                async for message in self._pubsub.listen():
                    kind = message.get("type")
                    if kind == "message":
                        self.received += 1
                        data = message["data"]
                        if isinstance(data, bytes) and data.endswith(own):
                            self.received_own += 1
                            continue
                        accepted = self._accept(message.get("channel"), data)
                        if accepted is not None:
                            yield accepted
                    elif kind in ("subscribe", "unsubscribe"):
                        channel = message["channel"]
                        if isinstance(channel, bytes):
                            channel = channel.decode()
                        self._confirmed(channel, subscribed=kind == "subscribe")
                raise ConnectionError("subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._lost(error)
            await asyncio.sleep(retry_s)
            retry_s = min(retry_s * 2, LISTEN_RETRY_MAX_S)

    def _accept(self, channel: Any, data: Any) -> dict[str, Any] | None:
        """The message to act on, decoded (python-socketio takes a dict as it is), or None
        when it is dropped."""
        name = channel.decode(errors="replace") if isinstance(channel, bytes) else str(channel)
        try:
            if not isinstance(data, bytes):
                raise Dropped("not bytes")
            if len(data) > MAX_MESSAGE_BYTES + 100:
                raise Dropped("too large")  # before the HMAC is computed over all of it
            body = data if self._key is None else unseal(self._key, data, time.time())
            return read_message(
                body, room_prefix=self.room_prefix, whole_events=self._key is not None
            )
        except Ignored:
            self.ignored += 1
        except Dropped as drop:
            self._drops.note(name, str(drop))
        except Exception:
            # A check that failed is a message dropped, never the listener stopped.
            log.exception("could not check a message read from Redis")
            self._drops.note(name, "check failed")
        return None

    def _lost(self, error: Exception) -> None:
        if not self._down:
            self._down = True
            self._outage.begin("listening", error)
            if self.on_lost is not None:
                self.on_lost()
        self._live.clear()
        self._pending.clear()
        self._connecting = set()
        # Nobody waits for Redis during an outage: `on_back` re-sends what they miss.
        self._release_waiters()

    def _back(self) -> None:
        self._down = False
        self._outage.end()
        self._next_probe = 0.0  # publish what was kept at once
        if self._unsent:
            if self._retrying is not None:
                self._retrying.cancel()
            self._start_retry()
        if self.on_back is not None:
            self._spawn(self.on_back(), "sev-fanout-catch-up")

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), 0.5)
