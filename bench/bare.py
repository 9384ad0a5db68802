"""The ceiling for fan-out: a bare python-socketio server with its default manager and GC.

Clients connect (no session check), `watch` joins the one room and is acknowledged with no
events; `POST /emit` emits the posted event JSON to the room, as SEV's publish does. Run under
the same uvicorn settings as SEV (`--ws-per-message-deflate false`).
"""

from __future__ import annotations

import json
from typing import Any

import socketio

from bench.asgi import lifespan, read_body

ROOM = "broadcaster:1337"
sio = socketio.AsyncServer(async_mode="asgi", transports=["websocket"], logger=False)


@sio.on("watch")  # type: ignore[untyped-decorator]
async def watch(sid: str, data: Any) -> dict[str, Any]:
    """Join the room; no history."""
    await sio.enter_room(sid, ROOM)
    return {"streamer": {}, "events": []}


async def _http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    body = await read_body(receive)
    status = 200
    if scope["path"] == "/emit":
        await sio.emit("event", json.loads(body), room=ROOM)
        status = 204
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})


app = socketio.ASGIApp(sio, other_asgi_app=_http)
