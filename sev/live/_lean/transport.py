"""A connected viewer's Engine.IO websocket, served by SEV without a task per socket.

engine.io 4.x serves each websocket with `AsyncSocket._websocket_handler`: a writer task that
loops on `poll()` (`asyncio.wait_for(queue.get(), ...)`, itself a task per wait) and a reader
that wraps every `ws.wait()` in a task under `asyncio.wait_for`. An idle viewer keeps all of
that alive: two tasks, their timeout handles and a dozen coroutine frames, ~9 KB
(docs/PERFORMANCE.md). Here, under uvicorn's websockets-sansio protocol (or SEV's
`Wire`), a socket is served by one coroutine, the ASGI request's own:

- **Writing**: the socket's `SendQueue` tells a `Writer` of each `put`; the writer drains the
  queue at the end of the loop's turn straight to the transport, as websocket frames (rooms.py
  writes room emits the same way, and its flush is scheduled the same way, so the two never
  overtake each other). Only while the transport is paused (the viewer not reading) does a task
  wait for it to be writable again; packets meanwhile stay queued, where rooms.py counts them
  and evicts the viewer past its bound. A `None` on the queue (the end) or engine.io's CLOSE
  packet closes the websocket, as engine.io's writer does when it ends.
- **Reading**: the coroutine awaits uvicorn's `receive` directly and hands each packet to
  `AsyncSocket.receive` (pongs, messages, the client's CLOSE), with the library's size limit.
- **Timeouts**: engine.io's writer and reader each give up after `ping_interval +
  ping_timeout` without traffic; here a client that stops answering pings is closed by engine.io's
  own service task (`check_ping_timeout`, which sends CLOSE and runs the disconnect handlers),
  so the lean path is only taken when that task runs (`monitor_clients`, the default).

Anything else takes the library's handler unchanged: another websocket implementation (no
transport to write to), an upgrade from polling (the socket is already connected: the
2probe/3probe exchange stays engine.io's), a queue that is not a `SendQueue`.

Relies on python-engineio 4.x: the ASGI driver's `_async["websocket"]` factory, called as
`factory(socket._websocket_handler, server)(environ)` by `AsyncSocket._upgrade_websocket`;
`AsyncSocket.receive`, `.close`, `.connected`/`.upgraded`/`.closed`; `server.service_task_handle`,
`max_http_buffer_size`, `reason`; `engineio.exceptions`.
tests/live/test_library_contract.py fails if any of them changes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from engineio import exceptions
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket

from sev.live._lean.sendqueue import SendQueue
from sev.live.rooms import sansio_protocol, websocket_frame

log = logging.getLogger(__name__)

_SANSIO: Any = sansio_protocol()


class WebSocketFactory:
    """engine.io's `_async["websocket"]` for SEV: `serve` where it applies, else `library`
    (engine.io's own ASGI driver class)."""

    __slots__ = ("library",)

    def __init__(self, library: Any) -> None:
        self.library = library

    def __call__(self, handler: Any, server: Any) -> Any:
        """As engine.io's driver class: `factory(socket._websocket_handler, server)`, whose
        result AsyncSocket._upgrade_websocket awaits called with the environ."""
        return functools.partial(serve, handler)


async def serve(handler: Any, environ: dict[str, Any]) -> str:
    """Accept a socket's websocket and read its packets until it ends (its writes go through a
    `Writer`); engine.io's handler where SEV's cannot apply."""
    socket: Any = getattr(handler, "__self__", None)
    server: Any = getattr(socket, "server", None)
    wire: Any = getattr(environ.get("asgi.send"), "__self__", None)
    if (
        _SANSIO is None
        or not isinstance(wire, _SANSIO)
        or not isinstance(socket, AsyncSocket)
        or socket.connected  # an upgrade from polling: engine.io's probe exchange
        or not isinstance(socket.queue, SendQueue)
        or getattr(server, "service_task_handle", None) is None  # nothing times sockets out
    ):
        library = server._async["websocket"].library if server is not None else None
        if not callable(library):
            raise RuntimeError("serve runs only as engine.io's websocket driver")
        result: str = await library(handler, server)(environ)
        return result
    # This frame lives as long as the socket: it keeps only what it uses.
    del handler, environ
    await wire.send({"type": "websocket.accept"})
    socket.__class__ = LeanSocket
    socket.connected = True
    socket.upgraded = True
    writer = Writer(socket, wire)
    socket.queue.writer = writer
    if socket.queue.qsize():
        writer.wake()  # the OPEN packet, queued before the websocket was accepted
    max_size = server.max_http_buffer_size
    receive = wire.receive
    while True:
        try:
            message = await receive()
        except asyncio.CancelledError:
            # As engine.io's handler: a cancelled read ends the socket, it does not propagate.
            break
        if message["type"] != "websocket.receive":
            break  # the connection closed
        data = message.get("bytes")
        if data is None:
            data = message.get("text")
        if data is None or len(data) > max_size:
            break
        try:
            await socket.receive(eio_packet.Packet(encoded_packet=data))
        except exceptions.UnknownPacketError:
            pass
        except exceptions.SocketIsClosedError:
            break
        except Exception:
            log.exception("engine.io socket %s: error receiving a packet", socket.sid)
        if socket.closed:
            break  # the client's CLOSE packet
    await writer.finish()
    await socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)
    return ""  # as engine.io's driver: the response was the websocket itself


class LeanSocket(AsyncSocket):  # type: ignore[misc]
    """engine.io's socket, once `serve` serves it: its end also ends its `Writer`.

    engine.io's writer task ends by itself when nothing was queued for `ping_interval +
    ping_timeout`; that is how a websocket closed by a ping timeout (which queues no CLOSE
    packet: `send` declines once the ping is overdue) gets closed. SEV's writer has no timer:
    the socket's `close` tells it instead, with the `None` engine.io's own handler queues to end
    its writer. engine.io creates `AsyncSocket` itself (no factory), so `serve` sets this class
    on the instance; it adds no state."""

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        """engine.io's close, then the websocket's (after what is queued is written)."""
        await super().close(wait=wait, abort=abort, reason=reason)
        if self.closed and self.queue.writer is not None:
            self.queue.put_nowait(None)


class Writer:
    """Writes a socket's queued packets to its websocket with no task while it can."""

    __slots__ = ("ended", "idle", "scheduled", "socket", "task", "wire")

    def __init__(self, socket: Any, wire: Any) -> None:
        self.socket = socket
        self.wire = wire
        # Read by rooms.py: nothing in flight, so a frame may go straight to the transport.
        self.idle = True
        self.ended = False
        self.scheduled = False
        # The one task a socket may have: waiting for its transport, or closing it.
        self.task: asyncio.Future[None] | None = None

    def wake(self) -> None:
        """Something was queued: drain at the end of this turn (after rooms.py's flush of
        frames written before it)."""
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.drain)

    def drain(self) -> None:
        """Write what is queued, unless the transport is paused (then a task waits for it)."""
        self.scheduled = False
        if self.task is not None and not self.ended:
            return  # the waiting task drains once the transport is writable
        queue = self.socket.queue
        if not queue._queue:
            return
        wire = self.wire
        gone = self.ended or wire.close_sent or wire.disconnected or wire.transport.is_closing()
        if not gone and not wire.writable.is_set():
            self.idle = False
            self.task = asyncio.ensure_future(self._when_writable())
            return
        frames: list[bytes] = []
        end = False
        while queue._queue:
            pkt = queue.get_nowait()
            queue.task_done()
            if self.ended or end:
                continue  # nothing more goes out; task_done keeps `close(wait=True)` from hanging
            if pkt is None:
                end = True
                continue
            frames.append(websocket_frame(pkt.encode()))
            if pkt.packet_type == eio_packet.OPEN:
                # engine.io's `_handle_connect` keeps its OPEN packet in a local for as long as
                # the socket lives, and never reads it again once sent: drop what it holds.
                pkt.data = pkt.encode_cache = None
            if pkt.packet_type == eio_packet.CLOSE:
                end = True
        if frames and not gone:
            wire.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
        if end:
            self._end()

    async def finish(self) -> None:
        """Write what is left, close the websocket and wait until it is closed."""
        self.socket.queue.put_nowait(None)
        if self.task is None:
            self.drain()
        while (task := self.task) is not None:
            await task
            if self.task is task:
                break

    def _end(self) -> None:
        self.ended = True
        self.idle = False
        self.task = asyncio.ensure_future(self._close())

    async def _when_writable(self) -> None:
        await self.wire.writable.wait()
        self.task = None
        self.idle = not self.ended
        self.drain()

    async def _close(self) -> None:
        # As engine.io's writer when it ends (`ws.close()`): a websocket close frame; uvicorn
        # then tells the reader the connection closed.
        try:
            await self.wire.send({"type": "websocket.close"})
        except Exception:  # already closed: nothing to tell
            log.debug("engine.io socket %s: websocket already closed", self.socket.sid)
