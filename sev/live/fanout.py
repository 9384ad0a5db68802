"""Socket.IO fan-out across processes through Redis (`REDIS_URL`).

python-socketio's `AsyncRedisManager` carries the rooms: an emit in one process is published on
Redis and every other process emits it to its own members of the room. This subclass keeps that
wire format (an external `AsyncRedisManager(url, write_only=True)` still interoperates) and
changes only how it behaves when Redis fails, because the ingest worker awaits every publish:

- a publish is bounded (`PUBLISH_TIMEOUT_S`, no client-side retries) and, once Redis is known to
  be down, skipped without a network round trip until the next probe: a lost Redis costs the
  webhook path almost nothing, and events stay stored (viewers catch up with `after`);
- an outage is logged once when it starts and once when it ends, not once per event;
- what Redis did not take is kept (up to `UNSENT_LIMIT` messages) and published, in order, when it
  is back, so viewers on the other processes get it late rather than never;
- the listener reconnects every few seconds (not python-socketio's back-off up to a minute), and
  `on_lost`/`on_back` let SEV re-send from the store what its own viewers missed meanwhile.

Relies on python-socketio 5.x's pub/sub hooks (`_publish`, `_listen`) and on
`AsyncPubSubManager._handle_emit` delivering to local viewers through `super().emit`, which the
class order makes `RoomManager.emit` (whose `on_emit` then sees it); pyproject pins
`python-socketio<5.19` and tests/live/test_fanout.py covers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import socketio
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sev.live.rooms import RoomManager

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

    def __init__(self, url: str, *, unsent_limit: int = UNSENT_LIMIT) -> None:
        socketio.AsyncRedisManager.__init__(
            self, url, redis_options=_redis_options(url), logger=log
        )
        # Set by the Socket.IO side (server.py), besides RoomManager's `on_emit`: the
        # subscription was lost (called at once, so it can note what its viewers had been sent);
        # the subscription is back (re-send what they missed).
        self.on_lost: Callable[[], None] | None = None
        self.on_back: Callable[[], Awaitable[None]] | None = None
        self._outage = _Outage(url)
        self._unsent: deque[bytes] = deque(maxlen=unsent_limit)
        self._dropped = 0
        self._next_probe = 0.0
        self._publishing = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._retrying: asyncio.Task[None] | None = None
        # Its own client: resetting the publisher's connections must not cut the subscription.
        self._listener: Redis | None = None
        self._pubsub: Any = None

    async def start(self) -> None:
        """Subscribe now rather than on the first socket connection (RequireRedis checked it)."""
        if not self.server.manager_initialized:
            self.server.manager_initialized = True
            self.initialize()

    async def stop(self) -> None:
        """Stop listening and close the connections."""
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

    async def _publish(self, data: Any) -> None:
        payload = self.json.dumps(data).encode()
        async with self._publishing:
            if self._unsent:
                # Behind earlier messages Redis did not take: keep the order.
                self._keep(payload)
                await self._replay(only_when_due=True)
                return
            try:
                await self._send([payload])
            except Exception as error:
                self._keep(payload)
                await self._failed(error)

    def _keep(self, payload: bytes) -> None:
        if len(self._unsent) == self._unsent.maxlen:
            self._dropped += 1
        self._unsent.append(payload)

    async def _send(self, payloads: list[bytes]) -> None:
        if self.redis is None:
            self.redis = self._client()
        if len(payloads) == 1:
            await asyncio.wait_for(self.redis.publish(self.channel, payloads[0]), PUBLISH_TIMEOUT_S)
            return
        pipeline = self.redis.pipeline(transaction=False)
        for payload in payloads:
            pipeline.publish(self.channel, payload)
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

    # -- listening --------------------------------------------------------------------------

    async def _listen(self) -> AsyncIterator[bytes]:
        channel = self.channel.encode()
        retry_s = LISTEN_RETRY_MIN_S
        failed = False
        while True:
            try:
                if self._listener is None:
                    self._listener = self._client()
                await self._close_pubsub()
                self._pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
                await self._pubsub.subscribe(self.channel)
                retry_s = LISTEN_RETRY_MIN_S
                if failed:
                    failed = False
                    self._back()
                async for message in self._pubsub.listen():
                    if message.get("type") == "message" and message.get("channel") == channel:
                        yield message["data"]
                raise ConnectionError("subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not failed:
                    failed = True
                    self._outage.begin("listening", error)
                    if self.on_lost is not None:
                        self.on_lost()
            await asyncio.sleep(retry_s)
            retry_s = min(retry_s * 2, LISTEN_RETRY_MAX_S)

    def _back(self) -> None:
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
