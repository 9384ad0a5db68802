"""RoomManager (sev/live/rooms.py) against the python-socketio / python-engineio it is pinned to:
a real AsyncServer under uvicorn on a loopback port, real websocket clients."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import socketio
from engineio import packet as eio_packet

from bench.sioclient import SioClient
from sev.live.rooms import RoomManager
from tests.support.polling import eventually
from tests.support.servers import serve_all

ROOM = "broadcaster:1337"


@dataclass
class Served:
    sio: socketio.AsyncServer
    manager: RoomManager
    url: str


@asynccontextmanager
async def serve(max_queued: int = 500) -> AsyncIterator[Served]:
    """An AsyncServer with RoomManager; every client joins ROOM unless its auth says no."""
    manager = RoomManager(max_queued=max_queued)
    sio = socketio.AsyncServer(
        async_mode="asgi", transports=["websocket"], client_manager=manager, logger=False
    )

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if "outsider" not in environ.get("QUERY_STRING", ""):
            await sio.enter_room(sid, ROOM)

    sio.on("connect", connect)
    async with serve_all(
        socketio.ASGIApp(sio), lifespan="off", ws="auto", per_message_deflate=False
    ) as (url,):
        yield Served(sio, manager, url)


def _eio_sid(served: Served, client_count: int) -> list[str]:
    return list(served.sio.eio.sockets)[:client_count]


async def test_room_emit_writes_to_idle_viewers_and_queues_one_shared_packet_for_busy_ones() -> (
    None
):
    async with serve() as served:
        members = [await SioClient.open(served.url, None) for _ in range(4)]
        try:
            sockets = list(served.sio.eio.sockets.values())
            before = len(asyncio.all_tasks())
            await served.sio.emit("event", {"seq": 1}, room=ROOM)
            # No await yielded inside emit: any new task would have been created by it.
            assert len(asyncio.all_tasks()) == before
            assert (served.manager.direct, served.manager.queued) == (4, 0)
            # Two viewers with something already queued: the event goes behind it, as one packet.
            for busy in sockets[:2]:
                busy.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))
            await served.sio.emit("event", {"seq": 2}, room=ROOM)
            assert (served.manager.direct, served.manager.queued) == (6, 2)
            queued = [s.queue._queue[-1] for s in sockets[:2]]
            assert queued[0] is queued[1]
            assert queued[0].encode() == '42["event",{"seq":2}]'
            await eventually(lambda: all(len(m.events) == 2 for m in members))
            assert [m.events for m in members] == [[{"seq": 1}, {"seq": 2}]] * 4
        finally:
            for m in members:
                await m.close()


async def test_events_emitted_in_one_turn_reach_each_viewer_in_one_write() -> None:
    async with serve() as served:
        members = [await SioClient.open(served.url, None) for _ in range(3)]
        try:
            for seq in (1, 2, 3):
                await served.sio.emit("event", {"seq": seq}, room=ROOM)
            # Not written yet: one batch of three frames per viewer, flushed by the loop.
            batches = list(served.manager._unwritten.values())
            assert [len(frames) for frames in batches] == [3, 3, 3]
            await eventually(lambda: all(m.seqs() == [1, 2, 3] for m in members))
            assert served.manager._unwritten == {}
        finally:
            for m in members:
                await m.close()


_FRAME_OVERHEAD = len('42["event",{"text":""}]')


@pytest.mark.parametrize("frame_size", [24, 125, 126, 127, 65535, 65536, 200_000])
async def test_frames_written_directly_reach_clients_intact(frame_size: int) -> None:
    """Payload lengths either side of the websocket header's 7-, 16- and 64-bit forms."""
    async with serve() as served:
        client = await SioClient.open(served.url, None, max_size=None)
        try:
            text = "x" * (frame_size - _FRAME_OVERHEAD)
            await served.sio.emit("event", {"text": text}, room=ROOM)
            await served.sio.emit("event", {"text": "é✓"}, room=ROOM)
            assert served.manager.direct == 2
            await eventually(lambda: client.events == [{"text": text}, {"text": "é✓"}])
        finally:
            await client.close()


async def test_room_emit_delivers_each_event_once_in_order_to_members_only() -> None:
    async with serve() as served:
        members = [await SioClient.open(served.url, None) for _ in range(5)]
        outsider = await SioClient.open(served.url, None, query="&outsider=1")
        skipped = members[0]
        skip_sid = served.sio.manager.sid_from_eio_sid(_eio_sid(served, 1)[0], "/")
        try:
            for seq in range(1, 201):
                await served.sio.emit("event", {"seq": seq}, room=ROOM, skip_sid=skip_sid)
            await eventually(lambda: all(len(m.events) == 200 for m in members[1:]))
            for member in members[1:]:
                assert member.seqs() == list(range(1, 201))
            await asyncio.sleep(0.2)
            assert skipped.events == []
            assert outsider.events == []
            # Everyone (no room): the library's semantics, through the same path.
            await served.sio.emit("event", {"seq": 0})
            await eventually(lambda: len(outsider.events) == 1 and len(skipped.events) == 1)
        finally:
            for client in [*members, outsider]:
                await client.close()


async def test_emit_with_callback_keeps_the_library_path() -> None:
    async with serve() as served:
        client = await SioClient.open(served.url, None)
        try:
            sid = served.sio.manager.sid_from_eio_sid(_eio_sid(served, 1)[0], "/")
            await served.sio.emit("event", {"seq": 7}, to=sid, callback=lambda *a: None)
            await eventually(lambda: client.events == [{"seq": 7}])
        finally:
            await client.close()


async def test_viewer_that_does_not_read_is_disconnected_and_others_still_served() -> None:
    async with serve(max_queued=20) as served:
        readers = [await SioClient.open(served.url, None) for _ in range(3)]
        # A viewer with a tiny receive buffer that stops reading once connected.
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", int(served.url.rsplit(":", 1)[1])))
        raw.setblocking(False)
        stuck = await SioClient.open(served.url, None, sock=raw, max_queue=1, close_timeout=1)
        assert stuck._reader is not None
        stuck._reader.cancel()
        try:
            payload = "x" * 65536
            for seq in range(1, 301):
                await served.sio.emit("event", {"seq": seq, "pad": payload}, room=ROOM)
                if seq % 20 == 0:
                    await asyncio.sleep(0.01)  # let the writers and the transports run
            await eventually(lambda: all(len(r.events) == 300 for r in readers), timeout=20)
            for reader in readers:
                assert reader.seqs() == list(range(1, 301))
            assert served.manager.evicted == 1
            # Out of the room, and its engine.io socket is gone (connection aborted).
            assert len(served.sio.manager.rooms["/"][ROOM]) == 3
            await eventually(lambda: len(served.sio.eio.sockets) == 3)
        finally:
            for client in [*readers, stuck]:
                await client.close()


@pytest.mark.parametrize("data", [None, ("a", 1)])
async def test_emit_argument_shapes_match_the_library(data: Any) -> None:
    async with serve() as served:
        client = await SioClient.open(served.url, None)
        try:
            await served.sio.emit("notice", data, room=ROOM)
            expected = [] if data is None else list(data)
            await eventually(lambda: client.notices == [expected])
        finally:
            await client.close()
