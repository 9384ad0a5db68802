"""The live path: the Socket.IO server, its room emitter and Redis fan-out.

Everything that relies on python-socketio's, python-engineio's and uvicorn's internals lives
here (both libraries are pinned to one minor version in pyproject.toml); the test that guards
those internals is tests/live/test_rooms.py.
"""

from sev.live.fanout import RedisFanout, RequireRedis
from sev.live.rooms import RoomManager
from sev.live.server import Live, room_of

__all__ = ["Live", "RedisFanout", "RequireRedis", "RoomManager", "room_of"]
