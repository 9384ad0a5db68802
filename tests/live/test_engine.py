"""SocketServer / EngineServer (sev/live/_lean/engine.py): an idle viewer keeps nothing it was sent,
checked against the python-socketio / python-engineio they are pinned to."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import socketio
from engineio import packet as eio_packet
from websockets.asyncio.client import connect

from bench.sioclient import SioClient
from sev.live._lean.engine import KEPT_ENVIRON, SocketServer, shrink_environ
from sev.live._lean.sendqueue import SendQueue
from sev.live.rooms import RoomManager
from tests.support.polling import eventually
from tests.support.servers import serve_all

ROOM = "broadcaster:1337"
# A first paint's worth of events, each carrying a marker no other object holds.
MARKER = "first-paint-marker-"


def _ack() -> dict[str, Any]:
    return {"events": [{"seq": seq, "summary": MARKER + "x" * 800} for seq in range(10)]}


@asynccontextmanager
async def serve(
    server_class: type[socketio.AsyncServer], ws: Any = "auto", **options: Any
) -> AsyncIterator[socketio.AsyncServer]:
    """An AsyncServer of `server_class` with a RoomManager under uvicorn's `ws` protocol;
    `watch` joins ROOM and acks _ack()."""
    sio = server_class(
        async_mode="asgi",
        transports=["websocket"],
        client_manager=RoomManager(),
        logger=False,
        **options,
    )

    async def watch(sid: str, data: Any) -> dict[str, Any]:
        await sio.enter_room(sid, ROOM)
        # Events published while the ack is prepared (as in SEV: join, then read): every
        # frame arrives once, in order, whichever path it takes.
        for seq in (10, 11, 12):
            await sio.emit("event", {"seq": seq}, room=ROOM)
        return _ack()

    sio.on("watch", watch)
    async with serve_all(
        socketio.ASGIApp(sio), lifespan="off", ws=ws, per_message_deflate=False
    ) as (url,):
        sio.test_url = url
        yield sio


def _packets_holding_the_ack() -> int:
    gc.collect()
    return sum(
        1
        for o in gc.get_objects()
        if isinstance(o, eio_packet.Packet)
        and MARKER in f"{o.data if isinstance(o.data, str) else ''}{o.encode_cache or ''}"
    )


async def test_ack_is_not_retained_after_delivery() -> None:
    async with serve(SocketServer) as sio:
        clients = [await SioClient.open(sio.test_url, None) for _ in range(3)]
        try:
            for client in clients:
                ack = await client.watch("anyone")
                assert ack == _ack()
            await eventually(lambda: all(c.seqs()[-3:] == [10, 11, 12] for c in clients))
            assert _packets_holding_the_ack() == 0
            assert sio.manager.queued == 0
        finally:
            for client in clients:
                await client.close()


async def test_library_server_keeps_the_last_ack_per_idle_viewer() -> None:
    """Why engine.py exists: engine.io's writer keeps its last packet. If this fails, the
    library no longer does, and EngineServer.send_packet can go."""
    async with serve(socketio.AsyncServer) as sio:
        clients = [await SioClient.open(sio.test_url, None) for _ in range(3)]
        try:
            for client in clients:
                await client.watch("anyone")
            await eventually(lambda: all(c.seqs()[-3:] == [10, 11, 12] for c in clients))
            assert _packets_holding_the_ack() == 3
        finally:
            for client in clients:
                await client.close()


async def test_a_busy_writer_keeps_the_library_path_and_the_order() -> None:
    async with serve(SocketServer) as sio:
        client = await SioClient.open(sio.test_url, None)
        try:
            socket = next(iter(sio.eio.sockets.values()))
            assert isinstance(socket.queue, SendQueue)
            # Something already queued for this viewer: the ack and the events go behind it.
            socket.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))
            ack = await client.watch("anyone")
            assert ack == _ack()
            await eventually(lambda: client.seqs() == [10, 11, 12])
        finally:
            await client.close()


def test_shrink_environ_keeps_the_cookie_and_the_asgi_callables_in_the_same_dict() -> None:
    send, receive, scope = object(), object(), {"type": "websocket"}
    environ: dict[str, Any] = {
        "HTTP_COOKIE": "sev_session=abc",
        "HTTP_USER_AGENT": "x" * 500,
        "wsgi.input": object(),
        "asgi.send": send,
        "asgi.receive": receive,
        "asgi.scope": scope,
        "QUERY_STRING": "EIO=4&transport=websocket",
    }
    same = environ
    shrink_environ(environ)
    assert environ is same
    assert environ == {
        "HTTP_COOKIE": "sev_session=abc",
        "asgi.send": send,
        "asgi.receive": receive,
        "asgi.scope": scope,
    }
    assert set(KEPT_ENVIRON) == set(environ)


async def test_a_shrunk_environ_still_lets_room_emits_write_directly() -> None:
    async with serve(SocketServer) as sio:
        environs: list[dict[str, Any]] = []

        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            shrink_environ(environ)
            environs.append(environ)

        sio.on("connect", connect)
        client = await SioClient.open(sio.test_url, None)
        try:
            await client.watch("anyone")
            assert [sorted(e) for e in environs] == [sorted(KEPT_ENVIRON[1:])]
            (eio_sid,) = sio.eio.sockets
            assert sio.environ[eio_sid] is environs[0]
            direct = sio.manager.direct
            await sio.emit("event", {"seq": 13}, room=ROOM)
            assert sio.manager.direct == direct + 1
            await eventually(lambda: client.seqs()[-1:] == [13])
        finally:
            await client.close()


async def test_pings_wait_in_one_queue_and_a_client_that_stops_answering_is_closed() -> None:
    async with serve(SocketServer, ping_interval=0.2, ping_timeout=0.4) as sio:
        client = await SioClient.open(sio.test_url, None)
        url = sio.test_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        async with connect(url, compression=None, proxy=None) as silent:
            opened = await silent.recv()  # open; then it never answers a ping
            assert isinstance(opened, str) and opened.startswith("0")
            await silent.send("40")
            try:
                await client.watch("anyone")
                (answering, quiet) = list(sio.eio.sockets.values())
                pongs: list[float] = []
                schedule = answering.schedule_ping

                def pong() -> None:  # engine.io reschedules the ping on each pong
                    pongs.append(time.monotonic())
                    schedule()

                answering.schedule_ping = pong
                for _ in range(8):
                    await asyncio.sleep(0.15)
                    coroutines = [t.get_coro() for t in asyncio.all_tasks()]
                    assert not any(
                        "_send_ping" in getattr(c, "__qualname__", "") for c in coroutines
                    )
                    # One queue of due pings for the server, at most an entry per socket.
                    assert len(sio.eio._pings) <= 2
                # The answering client got pings all along and is still connected (its writer,
                # which ends after ping_interval + ping_timeout without a packet, got the pings);
                # the quiet one was closed by engine.io's ping timeout, as before.
                assert len(pongs) >= 3
                assert not answering.closed and answering.sid in sio.eio.sockets
                await eventually(lambda: quiet.closed)
            finally:
                await client.close()
