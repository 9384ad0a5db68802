"""What one connected viewer costs: the Socket.IO and Engine.IO servers, made lean per socket.

The library keeps things alive per connected socket that serve nothing once it is connected;
SEV keeps none of them (their cost per idle viewer: docs/PERFORMANCE.md):

- **The last packet engine.io's writer sent.** Its writer task keeps the packet of its last
  `ws.send` in a loop variable until it sends the next one. For most viewers that packet is the
  `watch` ack, which carries the first paint (ten events, ~9 KB encoded, held twice: the
  Socket.IO text and engine.io's encoded copy). `EngineServer.send_packet`, the public method
  python-socketio sends every packet of one socket through (connect, ack, a single-socket emit),
  hands it to `RoomManager.send_now` instead: written straight to an idle viewer's transport at
  the end of the loop's turn, as room emits are, and so never retained. Anything else (a writer
  busy, another websocket implementation) takes the library's queue, so a viewer's frames never
  overtake each other.
- **The request's WSGI-style environ.** python-socketio keeps the environ engine.io built from
  the websocket request for as long as the socket lives (every header decoded again as
  `HTTP_*`, the ASGI callables, a payload reader), and engine.io's request handler holds the
  same dict in its frames. SEV reads only the cookie, in its connect handler; `shrink_environ`
  then empties that dict in place (the only way to free it while those frames hold it) and
  keeps what anything still reads: the cookie, should the client connect to the namespace again
  on the same socket, and the ASGI `send`, `receive` and scope (the scope is uvicorn's own,
  kept by it anyway; rooms.py finds the transport through `send`).

- **An empty `asyncio.Queue` per socket** (three deques and an Event with a fourth, ~3 KB):
  `EngineServer.create_queue`, the public factory engine.io makes each socket's queue with,
  returns a `SendQueue` (sendqueue.py), which holds nothing while empty.

- **A task per socket sleeping until its next ping.** engine.io starts `AsyncSocket._send_ping`
  as a background task after each pong, which sleeps `ping_interval` (25 s) and queues a PING.
  `EngineServer.start_background_task` (the public hook engine.io starts it through) puts the
  socket in one FIFO of due pings instead (every wait is as long, so deadlines come in order),
  served by one timer for the whole server, which queues the PING for the writer as the task did.
- **engine.io's websocket handler**: its writer task and its reader's `wait_for` task per read.
  `EngineServer` gives engine.io's ASGI driver SEV's websocket factory (transport.py), which
  serves a connected socket's websocket without them.

One thing is not about bytes: **an Engine.IO socket in no Socket.IO namespace** (never
connected, refused, or left) serves nobody, yet engine.io keeps it open as long as its client
answers pings. `SocketServer` closes it `NAMESPACE_TIMEOUT_S` after it opened, was refused or
left, through python-socketio's handlers of those moments (`_handle_eio_connect`,
`_handle_connect`, `_handle_disconnect`, and its public `disconnect`); like the pings, one FIFO
and one timer serve every socket.

Relies on python-socketio 5.x's `AsyncServer._engineio_server_class` (the one-line factory of its
Engine.IO server), `_handle_eio_connect(eio_sid, environ)`, `_handle_connect(eio_sid,
namespace, data)` and `_handle_disconnect(eio_sid, namespace, reason)`, and python-engineio
4.x's `AsyncServer.send_packet`, `create_queue`, `start_background_task(AsyncSocket._send_ping)`,
`sockets` and its async driver's `_async["websocket"]`; tests/live/test_library_contract.py
fails if any of them changes.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import engineio
import socketio
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket

from sev.live._lean.sendqueue import SendQueue
from sev.live._lean.transport import WebSocketFactory
from sev.live.rooms import RoomManager

# What stays in a connected socket's environ (see the module's docstring).
KEPT_ENVIRON = ("HTTP_COOKIE", "asgi.receive", "asgi.send", "asgi.scope")

# A timer may run this much before its time (the loop's clock resolution).
_CLOCK_SLACK = 0.001

# How long an Engine.IO socket may stay in no Socket.IO namespace: the page connects to "/" in
# the same turn as the socket opens, so this is only ever reached by a client that will not.
NAMESPACE_TIMEOUT_S = 5.0

# (eio_sid, engine.io packet) -> True if it was written (or will be at the end of this turn).
DirectSend = Callable[[str, Any], bool]


def shrink_environ(environ: dict[str, Any]) -> None:
    """Keep only KEPT_ENVIRON in a socket's environ, in place (a dict's table never shrinks
    when keys are deleted: `clear` frees it)."""
    kept = {key: environ[key] for key in KEPT_ENVIRON if key in environ}
    environ.clear()
    environ.update(kept)


class EngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """engine.io's server whose one-socket sends can skip the per-socket queue."""

    _async: dict[str, Any]  # engine.io's async driver: its queue, event and websocket factories

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.send_now: DirectSend | None = None
        # (loop time, socket): the sockets waiting for their next ping, soonest first.
        self._pings: deque[tuple[float, Any]] = deque()
        self._ping_timer: asyncio.TimerHandle | None = None
        driver: dict[str, Any] = self._async
        if driver.get("websocket") is not None:
            # A connected socket's websocket served without a task per socket (transport.py);
            # the dict is the async driver's module-level one: copy it, never change it.
            self._async = {**driver, "websocket": WebSocketFactory(driver["websocket"])}

    def create_queue(self, *args: Any, **kwargs: Any) -> Any:
        """Each socket's send queue: a SendQueue (the library's asyncio.Queue if it ever asks
        for a bounded one)."""
        if args or kwargs:
            return super().create_queue(*args, **kwargs)
        return SendQueue()

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        """engine.io's background tasks, except a socket's wait for its next ping: an entry in
        one queue of due pings."""
        if getattr(target, "__func__", None) is AsyncSocket._send_ping and not (args or kwargs):
            # Every wait is ping_interval long, so the deadlines come in the order they are
            # set: one FIFO and one timer (for its head) serve every socket.
            loop = asyncio.get_running_loop()
            self._pings.append((loop.time() + self.ping_interval, target.__self__))
            if self._ping_timer is None:
                self._ping_timer = loop.call_at(self._pings[0][0], self._pings_due)
            return None
        return super().start_background_task(target, *args, **kwargs)

    def _pings_due(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + _CLOCK_SLACK
        pings = self._pings
        while pings and pings[0][0] <= due:
            self._ping(pings.popleft()[1])
        self._ping_timer = loop.call_at(pings[0][0], self._pings_due) if pings else None

    def _ping(self, socket: Any) -> None:
        # AsyncSocket._send_ping after its sleep, without the task.
        if socket.closing or socket.closed:
            return
        socket.last_ping = time.time()
        # Always through the queue: the writer gives up (and closes the websocket) when its
        # queue stays empty for ping_interval + ping_timeout, and pings are what prevent that.
        socket.queue.put_nowait(eio_packet.Packet(eio_packet.PING))

    async def send_packet(self, sid: str, pkt: Any) -> None:
        """Send a raw packet to one socket: directly when its writer is idle, else queued."""
        if self.send_now is not None and self.send_now(sid, pkt):
            return
        await super().send_packet(sid, pkt)


class SocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's `AsyncServer` over `EngineServer`, whose direct sends go through its
    `RoomManager` (so that they and room emits share one write per viewer per turn)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(self.manager, RoomManager):
            self.eio.send_now = self.manager.send_now
        # (loop time, eio_sid): sockets to close then unless they are in a namespace by then.
        self._unjoined: deque[tuple[float, str]] = deque()
        self._unjoined_timer: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def _engineio_server_class(self) -> type[EngineServer]:
        return EngineServer

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> None:
        await super()._handle_eio_connect(eio_sid, environ)
        self._expect_namespace(eio_sid)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        await super()._handle_connect(eio_sid, namespace, data)
        self._expect_namespace(eio_sid)  # refused: closed unless a later attempt succeeds

    async def _handle_disconnect(
        self, eio_sid: str, namespace: str | None, reason: Any = None
    ) -> None:
        await super()._handle_disconnect(eio_sid, namespace, reason)
        self._expect_namespace(eio_sid)

    async def disconnect(
        self, sid: str, namespace: str | None = None, ignore_queue: bool = False
    ) -> None:
        """python-socketio's disconnect from a namespace; the Engine.IO socket it leaves behind
        closes NAMESPACE_TIMEOUT_S later unless the client closes it or connects again."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace or "/")
        await super().disconnect(sid, namespace=namespace, ignore_queue=ignore_queue)
        if eio_sid is not None:
            self._expect_namespace(eio_sid)

    def _in_namespace(self, eio_sid: str) -> bool:
        """Whether the socket is in a namespace, or connecting to one (its handler running)."""
        manager = self.manager
        return any(
            manager.sid_from_eio_sid(eio_sid, namespace) is not None
            for namespace in list(manager.get_namespaces())
        )

    def _open_socket(self, eio_sid: str) -> Any:
        socket = self.eio.sockets.get(eio_sid)
        return None if socket is None or socket.closing or socket.closed else socket

    def _expect_namespace(self, eio_sid: str) -> None:
        """Close the socket NAMESPACE_TIMEOUT_S from now if it is in no namespace then."""
        if self._open_socket(eio_sid) is None or self._in_namespace(eio_sid):
            return
        loop = asyncio.get_running_loop()
        # Every wait is as long, so deadlines come in the order they are set (as pings do).
        self._unjoined.append((loop.time() + NAMESPACE_TIMEOUT_S, eio_sid))
        if self._unjoined_timer is None:
            self._unjoined_timer = loop.call_at(self._unjoined[0][0], self._unjoined_due)

    def _unjoined_due(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + _CLOCK_SLACK
        unjoined = self._unjoined
        while unjoined and unjoined[0][0] <= due:
            eio_sid = unjoined.popleft()[1]
            socket = self._open_socket(eio_sid)
            if socket is None or self._in_namespace(eio_sid):
                continue
            # Not waiting for its queue to drain: a client that does not read cannot hold it.
            task = asyncio.ensure_future(
                socket.close(wait=False, reason=self.eio.reason.SERVER_DISCONNECT)
            )
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self._unjoined_timer = (
            loop.call_at(unjoined[0][0], self._unjoined_due) if unjoined else None
        )
