"""Wire (sev/live/wire.py), uvicorn's websockets-sansio protocol made lean, against the uvicorn it
is pinned to; and SEV is launched with it everywhere it is launched."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from uvicorn.config import WS_PROTOCOLS
from uvicorn.importer import import_from_string
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from bench.sioclient import SioClient
from sev.live.engine import SocketServer
from sev.live.sendqueue import SendQueue
from sev.live.wire import Flag, Wire
from tests.live.test_engine import ROOM, _ack, serve
from tests.support.polling import eventually
from tests.support.processes import ROOT, SevProcess

WIRE = "sev.live.wire:Wire"


def test_uvicorn_loads_wire_from_the_ws_option() -> None:
    # uvicorn's Config.load: import_from_string(WS_PROTOCOLS.get(ws, ws)).
    assert import_from_string(WS_PROTOCOLS.get(WIRE, WIRE)) is Wire
    assert issubclass(Wire, WebSocketsSansIOProtocol)


async def test_an_open_connection_keeps_no_handshake_and_idle_queues() -> None:
    async with serve(SocketServer, ws=Wire) as sio:
        client = await SioClient.open(sio.test_url, None)
        try:
            assert await client.watch("anyone") == _ack()
            (environ,) = sio.environ.values()
            wire = environ["asgi.send"].__self__
            assert type(wire) is Wire
            assert not hasattr(wire, "request") and not hasattr(wire, "response")
            # What websockets' parser still holds of the handshake (a local of its generator):
            # no headers.
            parser: Any = wire.conn.parser
            request = parser.gi_frame.f_locals["request"]
            assert type(request) is Request and not request.headers
            assert isinstance(wire.queue, SendQueue) and isinstance(wire.writable, Flag)
            assert wire.writable.is_set()
            direct = sio.manager.direct
            await sio.emit("event", {"seq": 13}, room=ROOM)
            assert sio.manager.direct == direct + 1
            await eventually(lambda: client.seqs()[-1:] == [13])
        finally:
            await client.close()


@pytest.mark.parametrize("ws", [Wire, "websockets-sansio"])
async def test_only_engineio_pings_a_viewer_under_wire(ws: Any) -> None:
    """uvicorn's keepalive (a timer per connection, a ping every 20 s by default) is off under
    Wire, where Engine.IO's ping already runs; uvicorn's own protocol, same settings, keeps it."""
    async with serve(SocketServer, ws=ws) as sio:
        client = await SioClient.open(sio.test_url, None)
        try:
            assert await client.watch("anyone") == _ack()
            (environ,) = sio.environ.values()
            protocol = environ["asgi.send"].__self__
            assert protocol.ping_interval == 20.0  # uvicorn's default, in both runs
            if ws is Wire:
                assert protocol.ping_timer is None
            else:
                assert protocol.ping_timer is not None
        finally:
            await client.close()


async def test_flag_wakes_its_waiters_when_set() -> None:
    flag = Flag()
    waiters = [asyncio.ensure_future(flag.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True]
    flag.clear()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flag.wait(), 0.01)
    assert flag._waiters == []


def test_sev_is_launched_with_wire_everywhere() -> None:
    assert f"--ws {WIRE}" in (ROOT / "Procfile").read_text()
    assert SevProcess(Path("/tmp")).command()[-2:] == ["--ws", WIRE]  # noqa: S108
    assert f'ws="{WIRE}"' in (ROOT / "sev" / "cli.py").read_text()
