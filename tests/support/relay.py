"""WebSocket servers that stand between SEV and the simulated Twitch, in a thread of their own.

`Relay` forwards frames both ways between SEV and an upstream (the simulated Twitch's `/ws`),
keeping the reconnect URLs it forwards on itself, and lets a test do what an attacker on the
path could: add frames toward SEV, change them, hold a move, or cut Twitch off. `ForeignHost` is
a host that is not Twitch: it records who connects and greets them with frames of its choosing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.support.services import free_port

T = TypeVar("T")
# What goes toward SEV: each frame from upstream becomes the frames this returns.
Rewrite = Callable[["Link", str], list[str]]


def socket_message(message_type: str, payload: dict[str, Any], sent_at: datetime | None) -> str:
    """An EventSub WebSocket frame as Twitch writes one, dated `sent_at` (now by default)."""
    moment = sent_at or datetime.now(UTC)
    metadata: dict[str, Any] = {
        "message_id": str(uuid.uuid4()),
        "message_type": message_type,
        "message_timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.%f000Z"),
    }
    subscription = payload.get("subscription")
    if isinstance(subscription, dict):
        metadata["subscription_type"] = subscription.get("type")
        metadata["subscription_version"] = subscription.get("version")
    return json.dumps({"metadata": metadata, "payload": payload})


def welcome(keepalive: object = 10) -> str:
    """A `session_welcome` with a new session id and the given keepalive."""
    session = {
        "id": uuid.uuid4().hex,
        "status": "connected",
        "keepalive_timeout_seconds": keepalive,
        "reconnect_url": None,
        "connected_at": datetime.now(UTC).isoformat(),
    }
    return socket_message("session_welcome", {"session": session}, None)


def reconnect(url: str) -> str:
    """A `session_reconnect` naming `url`."""
    session = {
        "id": uuid.uuid4().hex,
        "status": "reconnecting",
        "keepalive_timeout_seconds": None,
        "reconnect_url": url,
        "connected_at": datetime.now(UTC).isoformat(),
    }
    return socket_message("session_reconnect", {"session": session}, None)


def notification(
    subscription_id: str,
    subscription_type: str,
    version: str,
    condition: dict[str, str],
    event: dict[str, Any],
    sent_at: datetime | None = None,
) -> str:
    """A `notification` for a subscription id (one SEV holds, or not)."""
    subscription = {
        "id": subscription_id,
        "status": "enabled",
        "type": subscription_type,
        "version": version,
        "cost": 0,
        "condition": condition,
        "transport": {"method": "websocket", "session_id": uuid.uuid4().hex},
        "created_at": datetime.now(UTC).isoformat(),
    }
    return socket_message("notification", {"subscription": subscription, "event": event}, sent_at)


class _LoopThread:
    """An event loop of its own, so the servers keep forwarding while a test blocks its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@dataclass(eq=False)
class Link:
    """One connection SEV made to the relay, and its counterpart upstream."""

    target: str  # path and query, as SEV asked for them
    client: ServerConnection
    upstream: ClientConnection | None = None
    # Frames from upstream are dropped instead of forwarded (Twitch cut off, SEV not told).
    cut_off: bool = False

    @property
    def reconnect_id(self) -> str | None:
        query = dict(p.split("=", 1) for p in urlsplit(self.target).query.split("&") if "=" in p)
        return query.get("reconnect_id")


class Relay:
    """SEV -> relay -> upstream, frame for frame, with a test's hand on what flows to SEV."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")  # ws://host:port
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self.links: list[Link] = []
        self.rewrite: Rewrite | None = None
        self._moves_released = threading.Event()
        self._moves_released.set()
        self._thread = _LoopThread()
        self._server: Server = self._thread.run(self._start())

    async def _start(self) -> Server:
        return await serve(self._serve, "127.0.0.1", self.port, ping_interval=None)

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            await self._server.wait_closed()

        with contextlib.suppress(Exception):
            self._thread.run(stop())
        self._thread.close()

    def hold_moves(self) -> None:
        """Connections to a reconnect URL wait (SEV gets no welcome) until `release_moves`."""
        self._moves_released.clear()

    def release_moves(self) -> None:
        self._moves_released.set()

    def inject(self, frame: str, link: Link | None = None) -> None:
        """Send a frame toward SEV on a link (the newest open one by default)."""
        chosen = link or self.open_links()[-1]
        self._thread.run(chosen.client.send(frame))

    def open_links(self) -> list[Link]:
        return [link for link in self.links if link.client.state.name == "OPEN"]

    async def _serve(self, client: ServerConnection) -> None:
        target = client.request.path if client.request is not None else "/ws"
        link = Link(target, client)
        self.links.append(link)
        if link.reconnect_id is not None:
            while not self._moves_released.is_set():
                await asyncio.sleep(0.02)
                if client.state.name != "OPEN":
                    return
        try:
            async with connect(self.upstream + target, ping_interval=None) as upstream:
                link.upstream = upstream
                down = asyncio.create_task(self._down(link, upstream))
                up = asyncio.create_task(self._up(link, upstream))
                await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
                for task in (down, up):
                    task.cancel()
        except (OSError, ConnectionClosed):
            pass
        finally:
            await client.close()

    async def _down(self, link: Link, upstream: ClientConnection) -> None:
        """Upstream -> SEV, with the upstream's reconnect URLs pointing at the relay."""
        with contextlib.suppress(ConnectionClosed):
            async for raw in upstream:
                frame = raw if isinstance(raw, str) else raw.decode()
                frame = frame.replace(self.upstream + "/", self.url + "/")
                if link.cut_off:
                    continue
                frames = self.rewrite(link, frame) if self.rewrite is not None else [frame]
                for each in frames:
                    await link.client.send(each)
        # Upstream closed: pass its close code on, as Twitch's would reach SEV.
        if upstream.close_code is not None and upstream.close_code >= 4000:
            await link.client.close(upstream.close_code, upstream.close_reason or "")

    async def _up(self, link: Link, upstream: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in link.client:
                await upstream.send(raw)


class ForeignHost:
    """A WebSocket server that is not Twitch: whoever connects gets `frames()`, then silence."""

    def __init__(self, frames: Callable[[], list[str]]) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self.connections: list[str] = []
        self._frames = frames
        self._thread = _LoopThread()
        self._server: Server = self._thread.run(self._start())

    async def _start(self) -> Server:
        return await serve(self._serve, "127.0.0.1", self.port, ping_interval=None)

    async def _serve(self, client: ServerConnection) -> None:
        self.connections.append(client.request.path if client.request is not None else "")
        with contextlib.suppress(ConnectionClosed):
            for frame in self._frames():
                await client.send(frame)
            await client.wait_closed()

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            await self._server.wait_closed()

        with contextlib.suppress(Exception):
            self._thread.run(stop())
        self._thread.close()
