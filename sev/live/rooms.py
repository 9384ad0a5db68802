"""The in-process Socket.IO manager: one encoded packet per room emit, bounded per viewer.

python-socketio's `AsyncManager.emit` starts one asyncio task per recipient per event; with a
thousand viewers that is about half of the CPU at saturation (docs/PERFORMANCE.md). Here a room
emit encodes the packet once and puts the same Engine.IO packet straight on each viewer's send
queue, in one loop, with no task per recipient. Each viewer's writer (engine.io's task, or SEV's
own in transport.py) then sends it. As a side effect, every viewer gets the events in emit order.

Further, when SEV runs under uvicorn's websocket protocol (`websockets-sansio`, uvicorn's default
with the `websockets` package) and a viewer's writer is idle with nothing queued (`writer_idle`:
engine.io's task waits in `queue.get()`, or SEV's `Writer` has nothing pending), the frame is
written straight to its transport: a server's websocket frames are not masked, so the frame bytes
are the same for every viewer and are built once per emit. That skips, per viewer, waking its
writer task, the ASGI message, re-encoding the text and framing it. The frames are written at the
end of the event loop's turn, so the events the ingest worker publishes together (one group
commit) reach each viewer in one `write`. Anything else (a viewer whose writer is busy or whose
transport is full, another server) takes the queue, so frames to one viewer never overtake each
other.

A viewer that does not read its socket (its TCP buffers full, its writer blocked) would let its
queue grow without bound. Past `max_queued` packets (or about `max_queued_bytes`) it is
disconnected instead: its queue is dropped and its connection aborted, and the page reconnects
with `after` and misses nothing.

Relies on python-socketio 5.x / python-engineio 4.x internals, pinned in pyproject
(one minor version) and checked by tests/live/test_library_contract.py: `AsyncManager.rooms` /
`get_participants`, `server.packet_class`, `server.eio.sockets[eio_sid].queue` (an
`asyncio.Queue` or a `SendQueue` of `engineio.packet.Packet` drained by the websocket writer, a
`None` ending it), `AsyncSocket.close`
and `server.environ[eio_sid]["asgi.send"]`; for the direct path, uvicorn's
`WebSocketsSansIOProtocol` (`transport`, `conn.state`, `writable`, `close_sent`, `disconnected`).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet
from websockets.protocol import State


def sansio_protocol() -> type | None:
    """uvicorn's websockets-sansio protocol class (rooms.py and transport.py write to its
    transport), or None without uvicorn."""
    try:
        from uvicorn.protocols.websockets import websockets_sansio_impl
    except ImportError:  # no uvicorn (another ASGI server): the queue path only
        return None
    return websockets_sansio_impl.WebSocketsSansIOProtocol


_SANSIO = sansio_protocol()

log = logging.getLogger(__name__)

# Packets waiting for one viewer before it counts as not reading: at 50 events/s, 10 s behind;
# fewer when the packets are large (the bytes bound assumes the queued ones are of this size).
MAX_QUEUED = 500
MAX_QUEUED_BYTES = 4 * 1024 * 1024

# Sees every emit delivered to this process's viewers: (event name, data, room or None).
Observer = Callable[[str, Any, str | None], None]


class RoomManager(socketio.AsyncManager):  # type: ignore[misc]
    """`AsyncManager` whose emits without callback put one shared packet on each queue."""

    def __init__(
        self, max_queued: int = MAX_QUEUED, max_queued_bytes: int = MAX_QUEUED_BYTES
    ) -> None:
        super().__init__()
        self.max_queued = max_queued
        self.max_queued_bytes = max_queued_bytes
        # Viewers disconnected for not reading (for tests and logs).
        self.evicted = 0
        # Frames written straight to a transport, and packets queued for a writer task.
        self.direct = 0
        self.queued = 0
        # eio_sid -> uvicorn's protocol of that websocket (None: not one we can write to).
        self._wires: dict[str, Any] = {}
        # Frames for idle viewers, written at the end of this turn of the event loop: when the
        # ingest worker publishes a batch, each viewer gets all of it in one write.
        self._unwritten: dict[Any, list[bytes]] = {}
        self._flush_scheduled = False
        self.on_emit: Observer | None = None

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        """Deliver to this process's members of the room, then tell the observer."""
        await self._deliver(event, data, namespace, room, skip_sid, callback, to)
        if self.on_emit is not None:
            self.on_emit(event, data, to or room)

    async def _deliver(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
    ) -> None:
        """Emit to a room (or everyone) by queueing one encoded packet per recipient."""
        if callback is not None:
            # Each recipient needs its own ack id: python-socketio's path.
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to
            )
            return
        room = to or room
        if namespace not in self.rooms:
            return
        pkt = self._packet(event, data, namespace)
        if pkt is None:
            # Binary attachments: several packets per recipient; rare, so the library's path.
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, to=to)
            return
        text = pkt.encode()  # fills the packet's cache: every writer reuses the same string
        frame = websocket_frame(text) if _SANSIO is not None else b""
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        sockets = self.server.eio.sockets
        limit = max(1, min(self.max_queued, self.max_queued_bytes // max(1, len(pkt.data))))
        stale_before = time.time() - self.server.eio.ping_timeout
        laggards: list[str] = []
        direct = queued = 0
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed or socket.closing:
                continue
            queue = socket.queue
            last_ping = socket.last_ping
            if last_ping and last_ping < stale_before:
                laggards.append(eio_sid)
                continue
            # An idle writer: nothing of this viewer's is in flight.
            if frame and writer_idle(queue) and self._write_later(eio_sid, frame):
                direct += 1
                continue
            if queue.qsize() >= limit:
                laggards.append(eio_sid)
                continue
            queue.put_nowait(pkt)
            queued += 1
        self.direct += direct
        self.queued += queued
        self._schedule_flush()
        for eio_sid in laggards:
            await self.evict(eio_sid)

    def send_now(self, eio_sid: str, pkt: Any) -> bool:
        """Write one socket's own packet (connect, ack, a single-socket emit) straight to its
        transport if its writer is idle with nothing queued; False: send it the library's way.

        Used by `EngineServer.send_packet` (engine.py): a packet sent through engine.io's
        writer stays referenced by it until the next one, and the `watch` ack is large."""
        if pkt.binary or _SANSIO is None:
            return False
        socket = self.server.eio.sockets.get(eio_sid)
        if socket is None or socket.closed or socket.closing:
            return False
        last_ping = socket.last_ping
        if last_ping and last_ping < time.time() - self.server.eio.ping_timeout:
            return False  # the library's send closes a socket whose client is gone
        queue = socket.queue
        if not writer_idle(queue):
            return False
        if not self._write_later(eio_sid, websocket_frame(pkt.encode())):
            return False
        self.direct += 1
        self._schedule_flush()
        return True

    def _schedule_flush(self) -> None:
        if self._unwritten and not self._flush_scheduled:
            # call_soon keeps the order: a writer woken by a later put runs after this.
            asyncio.get_running_loop().call_soon(self._flush)
            self._flush_scheduled = True

    def _packet(self, event: str, data: Any, namespace: str) -> Any:
        """The Engine.IO packet of one Socket.IO event, encoded once for every recipient; None
        when it has binary attachments."""
        if isinstance(data, tuple):
            args = list(data)
        elif data is not None:
            args = [data]
        else:
            args = []
        encoded = self.server.packet_class(
            sio_packet.EVENT, namespace=namespace, data=[event, *args]
        ).encode()
        if isinstance(encoded, list):
            return None
        return eio_packet.Packet(eio_packet.MESSAGE, encoded)

    def _write_later(self, eio_sid: str, frame: bytes) -> bool:
        """Queue `frame` for this viewer's websocket at the end of the loop's turn, if its
        connection is open and writable; False sends it the library's way instead."""
        wire = self._wires.get(eio_sid, _UNKNOWN)
        if wire is _UNKNOWN:
            wire = self._wire_of(eio_sid)
        if (
            wire is None
            or not wire.writable.is_set()
            or wire.close_sent
            or wire.disconnected
            or wire.conn.state is not State.OPEN
        ):
            return False
        frames = self._unwritten.get(wire)
        if frames is None:
            self._unwritten[wire] = [frame]
        else:
            frames.append(frame)
        return True

    def _flush(self) -> None:
        self._flush_scheduled = False
        unwritten, self._unwritten = self._unwritten, {}
        for wire, frames in unwritten.items():
            if not (wire.close_sent or wire.disconnected or wire.transport.is_closing()):
                wire.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))

    def _wire_of(self, eio_sid: str) -> Any:
        asgi_send = self.server.environ.get(eio_sid, {}).get("asgi.send")
        protocol = getattr(asgi_send, "__self__", None)
        # uvicorn's sansio protocol or SEV's leaner subclass of it (wire.py).
        wire = protocol if _SANSIO is not None and isinstance(protocol, _SANSIO) else None
        self._wires[eio_sid] = wire
        return wire

    async def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """Forget the viewer's transport, then python-socketio's bookkeeping."""
        eio_sid = self.eio_sid_from_sid(sid, namespace)
        if eio_sid is not None:
            self._wires.pop(eio_sid, None)
        await super().disconnect(sid, namespace, **kwargs)

    async def evict(self, eio_sid: str) -> None:
        """Disconnect a viewer that is not reading, dropping what was queued for it."""
        socket = self.server.eio.sockets.get(eio_sid)
        if socket is None or socket.closed or socket.closing:
            return
        self.evicted += 1
        log.warning("disconnecting viewer %s: %d packets unread", eio_sid, socket.queue.qsize())
        asgi_send = self.server.environ.get(eio_sid, {}).get("asgi.send")
        queue = socket.queue
        while not queue.empty():
            queue.get_nowait()
            queue.task_done()
        # Runs the disconnect handlers (the viewer leaves its rooms) without queueing a CLOSE
        # packet behind a writer that cannot write.
        await socket.close(wait=False, abort=True, reason=self.server.reason.SERVER_DISCONNECT)
        queue.put_nowait(None)  # ends the writer once it is unblocked
        _abort_transport(asgi_send)


_UNKNOWN = object()


def writer_idle(queue: Any) -> bool:
    """True when nothing of this viewer's is queued or in flight: engine.io's writer task waits
    in `queue.get()`, or SEV's own writer (transport.py) has nothing pending."""
    if queue._queue:
        return False
    writer = getattr(queue, "writer", None)
    return bool(queue._getters) if writer is None else bool(writer.idle)


def websocket_frame(data: str | bytes) -> bytes:
    """One unmasked, final websocket frame (RFC 6455 5.2), as a server sends it: text for a
    str, binary for bytes."""
    if isinstance(data, str):
        payload, first = data.encode(), 0x81
    else:
        payload, first = data, 0x82
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", first, size)
    elif size < 65536:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + payload


def _abort_transport(asgi_send: Any) -> None:
    # The writer is blocked until the peer reads. uvicorn's websocket protocols expose their
    # transport on the `send` callable's instance: aborting it fails that send at once and ends
    # the connection. With another server, its keepalive (or the peer) ends the connection later.
    transport = getattr(getattr(asgi_send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if callable(abort):
        abort()
