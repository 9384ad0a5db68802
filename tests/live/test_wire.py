"""Wire (sev/live/_lean/wire.py), uvicorn's websockets-sansio protocol made lean, against the
uvicorn it is pinned to; and SEV is launched with it everywhere it is launched."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from uvicorn.config import WS_PROTOCOLS
from uvicorn.importer import import_from_string
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from bench.servers import rss_kb, sev_env
from bench.sioclient import SioClient
from sev.live._lean.engine import SocketServer
from sev.live._lean.sendqueue import SendQueue
from sev.live._lean.wire import MAX_MESSAGE_BYTES, Flag, Wire
from tests.live.test_engine import ROOM, _ack, serve
from tests.support.polling import eventually
from tests.support.processes import ROOT, SevProcess
from tests.support.services import free_port

WIRE = "sev.live:Wire"


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
    procfile = (ROOT / "Procfile").read_text()
    assert f"--ws {WIRE}" in procfile
    assert f"--ws-max-size {MAX_MESSAGE_BYTES}" in procfile
    command = SevProcess(Path("/tmp")).command()  # noqa: S108
    assert command[-2:] == ["--ws", WIRE]
    assert command[command.index("--ws-max-size") + 1] == str(MAX_MESSAGE_BYTES)
    cli = (ROOT / "sev" / "cli.py").read_text()
    assert f'ws="{WIRE}"' in cli and "ws_max_size=MAX_MESSAGE_BYTES" in cli


async def _send_oversized(url: str, size: int | None) -> int | None:
    """Open an anonymous Engine.IO websocket and send one message of `size` bytes (None: send
    nothing); the close code the server chose (None: it kept the connection)."""
    async with websockets.connect(url, max_size=None, open_timeout=10) as ws:
        await ws.recv()  # Engine.IO's OPEN packet
        if size is None:
            return None
        try:
            await ws.send("4" + "x" * (size - 1))
            await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed:
            pass
        return ws.close_code


class _WithoutMaxSize(SevProcess):
    """`uvicorn sev.app:app --ws sev.live:Wire` with uvicorn's default --ws-max-size."""

    def command(self) -> list[str]:
        command = super().command()
        at = command.index("--ws-max-size")
        return command[:at] + command[at + 2 :]


@pytest.mark.parametrize("launch", ["uvicorn as deployed", "uvicorn without --ws-max-size"])
async def test_an_oversized_message_is_refused_from_its_header_not_buffered(
    tmp_path: Path, launch: str
) -> None:
    """16 MiB messages from anonymous clients: each refused with 1009 as its frame header
    arrives, and the process does not grow by what they sent (uvicorn's own default limit
    buffers each whole message first: ten of them grew SEV by hundreds of MB)."""
    port = free_port()
    # Without the flag, Wire applies the limit all the same.
    kind = SevProcess if launch == "uvicorn as deployed" else _WithoutMaxSize
    sev = kind(tmp_path, sev_env(tmp_path, port, None), port=port)
    sev.start()
    try:
        assert sev.process is not None
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        await _send_oversized(url, None)  # warm the code paths before measuring
        idle = rss_kb(sev.process.pid)
        codes = await asyncio.gather(*(_send_oversized(url, 16 * 2**20) for _ in range(10)))
        grown = rss_kb(sev.process.pid) - idle
        assert grown < 48 * 1024, f"RSS grew {grown} KiB for ten refused 16 MiB messages"
        assert codes == [1009] * 10
        assert httpx.get(f"{sev.url}/healthz", timeout=5).status_code == 200
    finally:
        sev.stop()
