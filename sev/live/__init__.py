"""The live path: the Socket.IO server, its room emitter and Redis fan-out.

`server.py` answers viewers (connect, `watch`, `fill`) and publishes events; `rooms.py` writes
one encoded packet per emit; `fanout.py` carries rooms across processes through Redis. What
relies on the undocumented internals of python-engineio, python-socketio and uvicorn (each
pinned to one minor version in pyproject.toml) is fenced in the private `_lean/` package, and
`Wire`, uvicorn's websocket protocol for SEV (`--ws sev.live:Wire`), is its one public name.
May import the events, the store, the streamers and config; never the web routes or EventSub.
"""

from sev.live._lean.wire import MAX_MESSAGE_BYTES, Wire
from sev.live.fanout import RedisFanout, RequireRedis
from sev.live.rooms import RoomManager
from sev.live.server import Live, create_server, room_of

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Live",
    "RedisFanout",
    "RequireRedis",
    "RoomManager",
    "Wire",
    "create_server",
    "room_of",
]
