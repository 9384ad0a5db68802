"""The in-process Socket.IO manager: one encoded packet per room emit, bounded per viewer.

python-socketio's `AsyncManager.emit` starts one asyncio task per recipient per event; with a
thousand viewers that is about half of the CPU at saturation (docs/PERFORMANCE.md). Here a room
emit encodes the packet once and puts the same Engine.IO packet straight on each viewer's send
queue, in one loop, with no task per recipient. Each viewer's writer task (engine.io's) then
sends it. As a side effect, every viewer gets the events in emit order.

A viewer that does not read its socket (its TCP buffers full, its writer blocked) would let its
queue grow without bound. Past `max_queued` packets (or about `max_queued_bytes`) it is
disconnected instead: its queue is dropped and its connection aborted, and the page reconnects
with `after` and misses nothing.

Relies on python-socketio 5.x / python-engineio 4.x internals, pinned in pyproject
(`python-socketio<5.19`) and checked by tests/test_fanout_manager.py: `AsyncManager.rooms` /
`get_participants`, `server.packet_class`, `server.eio.sockets[eio_sid].queue` (an
`asyncio.Queue` of `engineio.packet.Packet` drained by the websocket writer), `AsyncSocket.close`
and `server.environ[eio_sid]["asgi.send"]`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

log = logging.getLogger(__name__)

# Packets waiting for one viewer before it counts as not reading: at 50 events/s, 10 s behind;
# fewer when the packets are large (the bytes bound assumes the queued ones are of this size).
MAX_QUEUED = 500
MAX_QUEUED_BYTES = 4 * 1024 * 1024


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
            # Binary attachments: several packets per recipient; rare, so the library's path.
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, to=to)
            return
        pkt = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        pkt.encode()  # fills the packet's cache: every writer reuses the same string
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        sockets = self.server.eio.sockets
        limit = max(1, min(self.max_queued, self.max_queued_bytes // max(1, len(encoded))))
        stale_before = time.time() - self.server.eio.ping_timeout
        laggards: list[str] = []
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed or socket.closing:
                continue
            queue = socket.queue
            last_ping = socket.last_ping
            if queue.qsize() >= limit or (last_ping and last_ping < stale_before):
                laggards.append(eio_sid)
                continue
            queue.put_nowait(pkt)
        for eio_sid in laggards:
            await self.evict(eio_sid)

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


def _abort_transport(asgi_send: Any) -> None:
    # The writer is blocked until the peer reads. uvicorn's websocket protocols expose their
    # transport on the `send` callable's instance: aborting it fails that send at once and ends
    # the connection. With another server, its keepalive (or the peer) ends the connection later.
    transport = getattr(getattr(asgi_send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if callable(abort):
        abort()
