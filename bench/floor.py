"""The floor for fan-out: the least a server on SEV's stack can do per viewer per event.

One `transport.write` of a frame built once, to every viewer, in one loop, as soon as the event
is posted: no store, no queue, no check, no ping. Whatever latency this server shows at N viewers
is what the machine's kernel and event loop cost before any server code (docs/PERFORMANCE.md,
"The floor"). It runs under the same uvicorn settings as SEV (`websockets-sansio`, no
per-message deflate), so it pays the same handshake and framing, and it speaks just enough
Engine.IO v4 / Socket.IO v5 for bench/clients.mjs: the OPEN packet, "40" connect, a `watch`
with an ack id (acknowledged with no events) and `POST /emit` of an event's JSON, as
bench/bare.py takes it.

It also times itself, to tell its latency from the load generator's: for each event, when it
began and when it ended writing the event's frames, in ms from the POST's `bench_sent_ms`
(what the viewers count from). `GET /turns` answers those pairs and forgets them.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

from bench.asgi import lifespan, read_body
from sev.live.rooms import websocket_frame

# Viewers' uvicorn protocols (their transports take the frames), in the order they watched.
viewers: dict[Any, None] = {}
_ACK = re.compile(r"42(\d+)")
# Per event: [began, ended] writing its frames, in ms from its `bench_sent_ms` (GET /turns).
turns: list[tuple[float, float]] = []
_OPEN = {"upgrades": [], "pingInterval": 25000, "pingTimeout": 60000, "maxPayload": 1000000}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The websocket viewers, `POST /emit`, and uvicorn's lifespan."""
    if scope["type"] == "websocket":
        await _viewer(receive, send)
    elif scope["type"] == "http":
        await _http(scope, receive, send)
    else:
        await lifespan(receive, send)


async def _viewer(receive: Any, send: Any) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    opening = {"sid": secrets.token_hex(8), **_OPEN}
    await send({"type": "websocket.send", "text": "0" + json.dumps(opening)})
    protocol = getattr(send, "__self__", None)
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text") or ""
            if text.startswith("40"):
                await send(
                    {"type": "websocket.send", "text": '40{"sid":"' + secrets.token_hex(8) + '"}'}
                )
            elif (ack := _ACK.match(text)) is not None:
                reply = json.dumps([{"streamer": {}, "events": []}])
                await send({"type": "websocket.send", "text": f"43{ack.group(1)}{reply}"})
                viewers[protocol] = None
    finally:
        viewers.pop(protocol, None)


async def _http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = await read_body(receive)
    status, answer = 200, b""
    if scope["path"] == "/emit":
        began = time.time() * 1000
        frame = websocket_frame('42["event",' + body.decode() + "]")
        for protocol in viewers:
            transport = protocol.transport
            if not transport.is_closing():
                transport.write(frame)
        ended = time.time() * 1000
        sent_ms = json.loads(body).get("data", {}).get("bench_sent_ms")
        if sent_ms:
            turns.append((began - sent_ms, ended - sent_ms))
        status = 204
    elif scope["path"] == "/turns":
        answer = json.dumps(turns).encode()
        turns.clear()
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": answer})
