"""SEV's Engine.IO websocket for a connected socket (sev/live/_lean/transport.py), checked
against the python-engineio it relies on and for what must still hold: order, eviction, ping
timeouts, disconnects, the library's path elsewhere."""

from __future__ import annotations

import asyncio
import gc
import json
import socket as socket_module
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import socketio
from engineio import packet as eio_packet
from websockets.asyncio.client import connect

from bench.sioclient import SioClient
from sev.live._lean.engine import SocketServer
from sev.live._lean.transport import Writer
from sev.live.rooms import RoomManager
from tests.support.polling import eventually
from tests.support.servers import serve_all

ROOM = "broadcaster:1337"


@asynccontextmanager
async def serve(
    ws: str = "sev.live:Wire",
    max_queued: int = 500,
    max_queued_bytes: int = 4 * 1024 * 1024,
    transports: list[str] | None = None,
    **options: Any,
) -> AsyncIterator[SocketServer]:
    """A SocketServer under uvicorn's `ws` protocol; `watch` joins ROOM; `disconnected` lists
    the reasons of the disconnects its handler saw."""
    sio = SocketServer(
        async_mode="asgi",
        transports=transports or ["websocket"],
        client_manager=RoomManager(max_queued=max_queued, max_queued_bytes=max_queued_bytes),
        logger=False,
        **options,
    )
    disconnected: list[str] = []

    async def watch(sid: str, data: Any) -> dict[str, Any]:
        await sio.enter_room(sid, ROOM)
        return {"ok": True}

    async def disconnect(sid: str, reason: str) -> None:
        disconnected.append(reason)

    sio.on("watch", watch)
    sio.on("disconnect", disconnect)
    sio.disconnected = disconnected
    async with serve_all(
        socketio.ASGIApp(sio), lifespan="off", ws=ws, per_message_deflate=False
    ) as (url,):
        sio.test_url = url
        yield sio


def _writer(sio: socketio.AsyncServer, index: int = 0) -> Any:
    return list(sio.eio.sockets.values())[index].queue.writer


def _engineio_tasks() -> list[asyncio.Task[Any]]:
    """Tasks running engine.io's per-socket code (its writer, its reads under wait_for)."""
    found = []
    for task in asyncio.all_tasks():
        stack = task.get_stack()
        coro = task.get_coro()
        names = [getattr(coro, "__qualname__", "")] + [f.f_code.co_qualname for f in stack]
        if any("AsyncSocket" in n or "_websocket_handler" in n for n in names):
            found.append(task)
    return found


async def test_an_idle_viewer_has_no_task_of_its_own_beyond_uvicorns() -> None:
    async with serve() as sio:
        first = [await SioClient.open(sio.test_url, None) for _ in range(3)]
        try:
            for client in first:
                await client.watch("anyone")
            await asyncio.sleep(0.1)  # the handlers' tasks end
            before = len(asyncio.all_tasks())
            more = [await SioClient.open(sio.test_url, None) for _ in range(4)]
            for client in more:
                await client.watch("anyone")
            await asyncio.sleep(0.1)
            # Per viewer: uvicorn's run_asgi task, which is the socket's reader; plus each
            # client's own reader task (the clients run in this loop).
            assert len(asyncio.all_tasks()) - before == 4 * 2
            assert _engineio_tasks() == []
            assert all(isinstance(s.queue.writer, Writer) for s in sio.eio.sockets.values())
            assert all(s.queue.writer.task is None for s in sio.eio.sockets.values())
            direct = sio.manager.direct
            await sio.emit("event", {"seq": 1}, room=ROOM)
            await eventually(lambda: all(c.seqs() == [1] for c in first + more))
            assert sio.manager.direct == direct + 7
        finally:
            for client in first + more:
                await client.close()


async def test_a_connected_socket_keeps_no_open_packet() -> None:
    async with serve() as sio:
        clients = [await SioClient.open(sio.test_url, None) for _ in range(3)]
        try:
            gc.collect()
            kept = [
                o
                for o in gc.get_objects()
                if isinstance(o, eio_packet.Packet)
                and o.packet_type == eio_packet.OPEN
                and (o.data is not None or o.encode_cache is not None)
            ]
            assert kept == []
        finally:
            for client in clients:
                await client.close()


async def test_the_library_server_has_engineio_tasks_per_idle_viewer() -> None:
    """What the test above measures against: if this fails, engine.io no longer keeps tasks
    per socket and transport.py may go."""
    sio = socketio.AsyncServer(async_mode="asgi", transports=["websocket"], logger=False)
    async with serve_all(
        socketio.ASGIApp(sio), lifespan="off", ws="sev.live:Wire", per_message_deflate=False
    ) as (url,):
        clients = [await SioClient.open(url, None) for _ in range(3)]
        try:
            await asyncio.sleep(0.1)
            assert len(_engineio_tasks()) >= 3 * 2
        finally:
            for client in clients:
                await client.close()


async def test_order_holds_under_a_burst_through_every_path() -> None:
    """Room emits, single-socket emits and a paused transport, interleaved: each viewer gets
    every event once, in emit order."""
    async with serve() as sio:
        clients = [await SioClient.open(sio.test_url, None, max_size=None) for _ in range(3)]
        try:
            for client in clients:
                await client.watch("anyone")
            sids = [sio.manager.sid_from_eio_sid(eio_sid, "/") for eio_sid in sio.eio.sockets]
            sockets = list(sio.eio.sockets.values())
            big = "x" * 200_000
            for seq in range(1, 301):
                if seq % 11 == 0:
                    # Something queued (as a ping would be): what follows goes behind it.
                    for socket in sockets:
                        socket.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))
                if seq % 7 == 0:
                    for sid in sids:
                        await sio.emit("event", {"seq": seq}, to=sid)
                else:
                    await sio.emit("event", {"seq": seq, "pad": big if seq % 50 == 0 else ""})
                if seq % 20 == 0:
                    await asyncio.sleep(0)
            await eventually(
                lambda: all(len(c.events) == 300 for c in clients),
                timeout=20,
                what=f"300 events each (got {[len(c.events) for c in clients]})",
            )
            for client in clients:
                assert client.seqs() == list(range(1, 301))
            assert sio.manager.queued > 0  # some went through the queue behind a busy writer
        finally:
            for client in clients:
                await client.close()


async def test_a_viewer_whose_transport_is_paused_gets_everything_in_order_once_it_reads() -> None:
    async with serve(max_queued_bytes=1 << 30) as sio:
        url = sio.test_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        raw = socket_module.socket(socket_module.AF_INET, socket_module.SOCK_STREAM)
        raw.setsockopt(socket_module.SOL_SOCKET, socket_module.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", int(sio.test_url.rsplit(":", 1)[1])))
        raw.setblocking(False)
        async with connect(
            url, compression=None, proxy=None, sock=raw, max_size=None, max_queue=1
        ) as slow:
            assert str(await slow.recv()).startswith("0")
            await slow.send("40")
            assert str(await slow.recv()).startswith("40")
            await slow.send('420["watch",{}]')
            assert await slow.recv() == '430[{"ok":true}]'
            writer = _writer(sio)
            pad = "y" * 200_000
            # Not reading: the transport pauses, the writer waits for it with the rest queued.
            for seq in range(1, 61):
                await sio.emit("event", {"seq": seq, "pad": pad}, room=ROOM)
                await asyncio.sleep(0)
            await eventually(lambda: writer.task is not None and not writer.idle)
            assert sio.manager.queued > 0
            seqs: list[int] = []
            while len(seqs) < 60:
                message = await asyncio.wait_for(slow.recv(), 10)
                if isinstance(message, str) and message.startswith("42"):
                    seqs.append(json.loads(message[2:])[1]["seq"])
            assert seqs == list(range(1, 61))
            await eventually(lambda: writer.task is None and writer.idle)
            assert sio.manager.evicted == 0


async def test_a_viewer_that_does_not_read_is_evicted_and_leaves_its_rooms() -> None:
    async with serve(max_queued=20) as sio:
        reader = await SioClient.open(sio.test_url, None)
        raw = socket_module.socket(socket_module.AF_INET, socket_module.SOCK_STREAM)
        raw.setsockopt(socket_module.SOL_SOCKET, socket_module.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", int(sio.test_url.rsplit(":", 1)[1])))
        raw.setblocking(False)
        stuck = await SioClient.open(sio.test_url, None, sock=raw, max_queue=1, close_timeout=1)
        try:
            await reader.watch("anyone")
            await stuck.watch("anyone")
            assert stuck._reader is not None
            stuck._reader.cancel()
            payload = "x" * 65536
            for seq in range(1, 201):
                await sio.emit("event", {"seq": seq, "pad": payload}, room=ROOM)
                if seq % 20 == 0:
                    await asyncio.sleep(0.01)
            await eventually(lambda: len(reader.events) == 200, timeout=20)
            assert reader.seqs() == list(range(1, 201))
            assert sio.manager.evicted == 1
            assert len(sio.manager.rooms["/"][ROOM]) == 1
            await eventually(lambda: len(sio.eio.sockets) == 1)
            assert "server disconnect" in sio.disconnected
            assert _engineio_tasks() == []
        finally:
            for client in (reader, stuck):
                await client.close()


async def test_a_client_that_stops_answering_pings_is_closed_and_leaves() -> None:
    async with serve(ping_interval=0.2, ping_timeout=0.4) as sio:
        answering = await SioClient.open(sio.test_url, None)
        url = sio.test_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        async with connect(url, compression=None, proxy=None) as silent:
            try:
                assert str(await silent.recv()).startswith("0")
                await silent.send("40")
                assert str(await silent.recv()).startswith("40")
                await answering.watch("anyone")
                quiet = list(sio.eio.sockets.values())[1]
                # It gets a ping, never answers: engine.io's service task closes it (its
                # disconnect handler runs), and the server closes the websocket.
                received: list[Any] = []
                async with asyncio.timeout(5):
                    async for message in silent:
                        received.append(message)
                assert received == ["2"]
                await eventually(lambda: quiet.closed and quiet.sid not in sio.eio.sockets)
                assert sio.disconnected == ["ping timeout"]
                await asyncio.sleep(1)
                # The answering one stays connected, through several pings.
                assert not answering.closed.is_set()
                await sio.emit("event", {"seq": 1}, room=ROOM)
                await eventually(lambda: answering.seqs() == [1])
            finally:
                await answering.close()


async def test_closing_either_way_runs_the_disconnect_handler() -> None:
    async with serve() as sio:
        by_client = await SioClient.open(sio.test_url, None)
        by_close_packet = await SioClient.open(sio.test_url, None)
        by_server = await SioClient.open(sio.test_url, None)
        await by_client.watch("anyone")
        await by_client.close()
        await eventually(lambda: sio.disconnected == ["transport close"])
        await by_close_packet.ws.send("1")  # engine.io's CLOSE from the client
        await eventually(lambda: len(sio.disconnected) == 2)
        await asyncio.wait_for(by_close_packet.ws.wait_closed(), 5)
        (eio_sid,) = list(sio.eio.sockets)
        await sio.eio.disconnect(eio_sid)  # engine.io's CLOSE from the server
        await asyncio.wait_for(by_server.closed.wait(), 5)
        await asyncio.wait_for(by_server.ws.wait_closed(), 5)
        assert sio.disconnected[1:] == ["client disconnect", "server disconnect"]
        assert sio.eio.sockets == {}
        assert _engineio_tasks() == []


async def test_server_shutdown_closes_connected_viewers() -> None:
    async with serve() as sio:
        client = await SioClient.open(sio.test_url, None)
        await client.watch("anyone")
    await asyncio.wait_for(client.closed.wait(), 5)
    assert sio.disconnected == ["transport close"]
    await client.close()


@pytest.mark.parametrize(
    ("ws", "lean"),
    [
        # uvicorn's own sansio protocol takes the lean path, as SEV's Wire does;
        ("websockets-sansio", True),
        # another websocket implementation keeps the library's path.
        ("wsproto", False),
    ],
)
async def test_which_websocket_implementations_take_the_lean_path(ws: str, lean: bool) -> None:
    async with serve(ws=ws) as sio:
        client = await SioClient.open(sio.test_url, None)
        try:
            await client.watch("anyone")
            (socket,) = sio.eio.sockets.values()
            assert isinstance(socket.queue.writer, Writer) is lean
            assert (_engineio_tasks() == []) is lean
            for seq in range(1, 51):
                await sio.emit("event", {"seq": seq}, room=ROOM)
            await eventually(lambda: client.seqs() == list(range(1, 51)))
        finally:
            await client.close()
        await eventually(lambda: sio.disconnected == ["transport close"])


async def test_an_upgrade_from_polling_keeps_engineios_probe_exchange() -> None:
    async with serve(transports=["polling", "websocket"]) as sio:
        base = sio.test_url + "/socket.io/?EIO=4"
        async with httpx.AsyncClient() as http:
            opened = (await http.get(base + "&transport=polling")).text
            assert opened.startswith("0")
            sid = json.loads(opened[1:])["sid"]
            assert json.loads(opened[1:])["upgrades"] == ["websocket"]
            assert (
                await http.post(base + f"&transport=polling&sid={sid}", content="40")
            ).is_success
            assert (await http.get(base + f"&transport=polling&sid={sid}")).text.startswith("40")
            url = base.replace("http://", "ws://") + f"&transport=websocket&sid={sid}"
            async with connect(url, compression=None, proxy=None) as ws:
                await ws.send("2probe")
                assert await ws.recv() == "3probe"
                await ws.send("5")
                await eventually(lambda: sio.eio.sockets[sid].upgraded)
                # The library's handler serves it: no SEV writer.
                assert sio.eio.sockets[sid].queue.writer is None
                await ws.send('420["watch",{}]')
                replies = [await ws.recv()]
                while replies[-1] != '430[{"ok":true}]':
                    replies.append(await ws.recv())
                await sio.emit("event", {"seq": 1}, room=ROOM)
                assert await ws.recv() == '42["event",{"seq":1}]'
