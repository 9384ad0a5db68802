"""Serve ASGI apps on free loopback ports, and a recording webhook receiver (test support)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

ChallengeAnswer = Literal["echo", "wrong", "json", "html", "error"]


@asynccontextmanager
async def serve_all(
    *apps: ASGIApp,
    lifespan: Literal["on", "off"] = "on",
    ws: str = "none",
    per_message_deflate: bool = True,
) -> AsyncIterator[list[str]]:
    """Run each app with uvicorn on 127.0.0.1 and a free port; yields their base URLs (with
    `ws` a uvicorn websocket protocol, e.g. "websockets-sansio" or "sev.live:Wire", they
    take WebSocket connections too).

    The servers start and stop together (each takes a tick of 0.1 s to notice it should stop).
    """
    servers: list[tuple[uvicorn.Server, asyncio.Task[None], socket.socket]] = []
    try:
        for app in apps:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            config = uvicorn.Config(
                app,
                lifespan=lifespan,
                log_config=None,
                log_level="warning",
                ws=ws,
                ws_per_message_deflate=per_message_deflate,
                timeout_graceful_shutdown=2,
            )
            server = uvicorn.Server(config)
            servers.append((server, asyncio.create_task(server.serve(sockets=[sock])), sock))
        async with asyncio.timeout(10):
            for server, task, _ in servers:
                while not server.started:
                    if task.done():
                        await task
                        raise RuntimeError("uvicorn stopped before it started")
                    await asyncio.sleep(0.01)
        yield [f"http://127.0.0.1:{sock.getsockname()[1]}" for _, _, sock in servers]
    finally:
        for server, _, _ in servers:
            server.should_exit = True
        async with asyncio.timeout(10):
            await asyncio.gather(*(task for _, task, _ in servers))
        for _, _, sock in servers:
            sock.close()


@asynccontextmanager
async def serve(app: ASGIApp, *, lifespan: Literal["on", "off"] = "on") -> AsyncIterator[str]:
    """Run `app` with uvicorn on 127.0.0.1 and a free port; yields its base URL."""
    async with serve_all(app, lifespan=lifespan) as (base,):
        yield base


class Swappable:
    """An ASGI front whose app can change while the server keeps running (serve it without a
    lifespan: the host starts and stops what it puts behind, as when the simulator is mounted)."""

    def __init__(self, app: ASGIApp | None = None) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            response = PlainTextResponse("nothing here yet", status_code=503)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


@dataclass
class Delivery:
    """One request the receiver got: lower-cased headers and the raw body."""

    headers: dict[str, str]
    body: bytes
    received_at: float

    @property
    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def message_id(self) -> str:
        """`Twitch-Eventsub-Message-Id`."""
        return self.headers["twitch-eventsub-message-id"]

    @property
    def message_type(self) -> str:
        """`Twitch-Eventsub-Message-Type`."""
        return self.headers["twitch-eventsub-message-type"]

    @property
    def retry(self) -> int:
        """`Twitch-Eventsub-Message-Retry` as a number."""
        return int(self.headers["twitch-eventsub-message-retry"])


@dataclass
class Receiver:
    """A webhook callback at `/webhook` that records every request and answers as told."""

    challenge: ChallengeAnswer = "echo"
    notification_status: int = 204
    fail_next: int = 0
    delay_s: float = 0.0
    deliveries: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = Starlette(routes=[Route("/webhook", self._handle, methods=["POST"])])

    def of_type(self, message_type: str) -> list[Delivery]:
        """Deliveries of one message type, in arrival order."""
        return [d for d in self.deliveries if d.message_type == message_type]

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        delivery = Delivery(
            {k.lower(): v for k, v in request.headers.items()}, body, time.monotonic()
        )
        self.deliveries.append(delivery)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if delivery.message_type == "webhook_callback_verification":
            challenge = str(delivery.json["challenge"])
            answers: dict[ChallengeAnswer, Response] = {
                "echo": PlainTextResponse(challenge),
                "wrong": PlainTextResponse(challenge + "x"),
                "json": JSONResponse(challenge),
                "html": Response(challenge, media_type="text/html"),
                "error": PlainTextResponse(challenge, status_code=500),
            }
            return answers[self.challenge]
        if self.fail_next > 0:
            self.fail_next -= 1
            return Response(status_code=500)
        return Response(status_code=self.notification_status)
