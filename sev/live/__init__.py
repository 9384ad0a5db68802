"""The live path: the viewer protocol, the Socket.IO server, its room emitter and Redis fan-out.

`viewers.py` is the viewer protocol (`watch`, `fill`, their bounds, what a viewer missed) apart
from any transport; `server.py` serves it on Socket.IO (connect with the session cookie, rooms)
and publishes events; `rooms.py` writes one encoded packet per emit; `fanout.py` carries rooms
across processes through Redis. What relies on the undocumented internals of python-engineio,
python-socketio and uvicorn (each pinned to one minor version in pyproject.toml) is fenced in the
private `_lean/` package, and `Wire`, uvicorn's websocket protocol for SEV
(`--ws sev.live:Wire`), is its one public name.
May import the events, the store, the streamers and config; never the web routes or EventSub.
"""

from sev.live._lean.wire import MAX_MESSAGE_BYTES, Wire
from sev.live.fanout import RedisFanout, RequireRedis
from sev.live.rooms import RoomManager
from sev.live.server import Live, create_server, room_of
from sev.live.viewers import Rooms, Session, Viewers

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Live",
    "RedisFanout",
    "RequireRedis",
    "RoomManager",
    "Rooms",
    "Session",
    "Viewers",
    "Wire",
    "create_server",
    "room_of",
]
