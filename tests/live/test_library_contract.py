"""Every undocumented library internal SEV relies on, in one place: sev/live/_lean/ (engine,
transport, wire, send queues), sev/live/rooms.py's direct writes and sev/live/fanout.py's pub/sub
hooks. pyproject.toml pins each of these libraries to one minor version; when an upgrade moves an
internal, a test here names it before anything else fails.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import tomllib
from importlib.metadata import version

import engineio
import pytest
import socketio
from engineio import exceptions
from engineio.async_drivers import asgi as eio_asgi
from engineio.async_socket import AsyncSocket
from socketio.async_pubsub_manager import AsyncPubSubManager
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol

from sev.live._lean.engine import EngineServer, SocketServer
from sev.live._lean.sendqueue import SendQueue
from sev.live._lean.transport import WebSocketFactory
from sev.live.fanout import RedisFanout
from sev.live.rooms import RoomManager
from tests.support.processes import ROOT

# The libraries whose internals SEV uses, as pyproject.toml names them.
PINNED = ("uvicorn", "python-socketio", "python-engineio", "websockets")


def _declared() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = {}
    for requirement in project["dependencies"]:
        name = re.split(r"[\[<>=]", requirement, maxsplit=1)[0]
        found[name] = requirement
    return found


@pytest.mark.parametrize("name", PINNED)
def test_each_library_is_pinned_to_the_one_minor_version_installed(name: str) -> None:
    requirement = _declared()[name]
    floor, ceiling = re.findall(r"[<>]=?([0-9.]+)", requirement)
    major, minor = (int(part) for part in floor.split(".")[:2])
    assert ceiling == f"{major}.{minor + 1}", f"{requirement}: one minor version, please"
    installed = tuple(int(part) for part in version(name).split(".")[:2])
    assert installed == (major, minor), f"{name} {version(name)} installed, {requirement} declared"


def test_the_room_managers_internals_exist() -> None:
    """The internals RoomManager uses (pyproject pins python-socketio<5.19)."""
    socketio_version = tuple(int(part) for part in version("python-socketio").split(".")[:2])
    assert (5, 11) <= socketio_version < (5, 19)
    assert version("python-engineio").startswith("4.")
    assert issubclass(RoomManager, socketio.AsyncManager)
    assert hasattr(socketio.AsyncManager, "get_participants")
    assert hasattr(engineio.async_socket.AsyncSocket, "close")
    assert hasattr(engineio.async_socket.AsyncSocket, "poll")


def test_the_engine_servers_hooks_exist() -> None:
    """The two hooks engine.py relies on (pyproject pins python-socketio<5.19)."""
    assert socketio.AsyncServer._engineio_server_class(None) is engineio.AsyncServer
    assert asyncio.iscoroutinefunction(engineio.AsyncServer.send_packet)
    assert isinstance(engineio.AsyncServer().create_queue(), asyncio.Queue)
    sio = SocketServer(async_mode="asgi", client_manager=RoomManager())
    assert isinstance(sio.eio, EngineServer)
    assert sio.eio.send_now == sio.manager.send_now
    assert isinstance(sio.eio.create_queue(), SendQueue)
    assert asyncio.iscoroutinefunction(AsyncSocket._send_ping)
    assert "start_background_task(self._send_ping)" in inspect.getsource(AsyncSocket.schedule_ping)


def test_the_transports_engineio_internals_exist() -> None:
    """What transport.py relies on in python-engineio 4.x (see its docstring)."""
    assert eio_asgi._async["websocket"] is eio_asgi.WebSocket
    upgrade = inspect.getsource(AsyncSocket._upgrade_websocket)
    assert "self.server._async['websocket'](" in upgrade
    assert "self._websocket_handler, self.server)" in upgrade
    assert "return await ws(environ)" in upgrade
    connect_source = inspect.getsource(engineio.AsyncServer._handle_connect)
    assert "self.service_task_handle = self.start_background_task(" in connect_source
    assert connect_source.index("service_task_handle") < connect_source.index(
        "s.handle_get_request(environ)"
    )
    assert "await s.check_ping_timeout()" in inspect.getsource(engineio.AsyncServer._service_task)
    # Its OPEN packet: a local of _handle_connect, sent once and never read again.
    uses = re.findall(r"\bpkt\b.*", connect_source)
    assert uses == ["pkt = packet.Packet(packet.OPEN, {", "pkt)"]
    assert "await s.send(pkt)" in connect_source
    for name in ("receive", "close", "check_ping_timeout"):
        assert inspect.iscoroutinefunction(getattr(AsyncSocket, name))
    assert "self.close(wait=False, abort=False" in inspect.getsource(AsyncSocket.check_ping_timeout)
    assert "await self.send(packet.Packet(packet.CLOSE))" in inspect.getsource(AsyncSocket.close)
    assert issubclass(exceptions.UnknownPacketError, Exception)
    assert issubclass(exceptions.SocketIsClosedError, Exception)
    server = engineio.AsyncServer(async_mode="asgi")
    assert server.service_task_handle is None
    assert server.reason.TRANSPORT_CLOSE
    assert server.max_http_buffer_size > 0
    # SocketServer's engine.io server takes SEV's factory, on a copy of the driver's dict.
    sio = SocketServer(async_mode="asgi", client_manager=RoomManager())
    factory = sio.eio._async["websocket"]
    assert isinstance(factory, WebSocketFactory)
    assert factory.library is eio_asgi.WebSocket
    assert eio_asgi._async["websocket"] is eio_asgi.WebSocket


def test_the_namespace_hooks_exist() -> None:
    """SocketServer closes Engine.IO sockets in no namespace through these handlers."""
    for name, parameters in (
        ("_handle_eio_connect", ["self", "eio_sid", "environ"]),
        ("_handle_connect", ["self", "eio_sid", "namespace", "data"]),
        ("_handle_disconnect", ["self", "eio_sid", "namespace", "reason"]),
    ):
        handler = getattr(socketio.AsyncServer, name)
        assert asyncio.iscoroutinefunction(handler), name
        assert list(inspect.signature(handler).parameters)[: len(parameters)] == parameters
    assert "eio_sid_from_sid" in dir(socketio.AsyncManager)
    assert "sid_from_eio_sid" in dir(socketio.AsyncManager)
    assert issubclass(SocketServer, socketio.AsyncServer)


def test_the_pubsub_hooks_exist() -> None:
    """RedisFanout replaces python-socketio's publish and listen, and relies on its emit
    handling delivering through the class order's `emit` (RoomManager's)."""
    for name in ("_publish", "_listen", "_handle_emit", "enter_room", "basic_leave_room"):
        assert hasattr(socketio.AsyncRedisManager, name), name
    assert asyncio.iscoroutinefunction(socketio.AsyncRedisManager._publish)
    assert inspect.isasyncgenfunction(socketio.AsyncRedisManager._listen)
    handle_emit = inspect.getsource(AsyncPubSubManager._handle_emit)
    assert "await super().emit(message['event'], data," in handle_emit
    order = RedisFanout.__mro__
    assert order.index(socketio.AsyncRedisManager) < order.index(RoomManager)


def test_wires_uvicorn_and_websockets_internals_exist() -> None:
    """What Wire changes in uvicorn's websockets-sansio protocol, and the parser limit it
    lowers (see sev/live/_lean/wire.py)."""
    source = inspect.getsource(WebSocketsSansIOProtocol)
    for name in ("self.queue", "self.writable", "self.conn", "self.request", "self.response"):
        assert name in source, name
    assert "def start_keepalive" in source and "self.ping_timer" in source
    assert "max_size=self.config.ws_max_size" in source
    assert "self.max_message_size" in inspect.getsource(Protocol.__init__)
    assert "self.max_message_size" in inspect.getsource(Protocol.parse)
