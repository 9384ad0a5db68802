"""A minimal Socket.IO v5 / Engine.IO v4 websocket client in Python (tests, resume bench).

Just what SEV's page does: open, connect to "/" with the session cookie, `watch` with an ack,
collect `event` frames, answer pings. Much lighter than python-socketio's client, so a test can
hold hundreds of them in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class Refused(Exception):
    """The server refused the Socket.IO connection (no or bad session)."""


class SioClient:
    """One viewer: `await SioClient.open(url, cookie)`, then `watch`, then read `events`."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.received_at: list[float] = []
        self.notices: list[Any] = []
        self.closed = asyncio.Event()
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._next_ack = 0
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        base_url: str,
        cookie: str | None,
        *,
        query: str = "",
        timeout: float = 10.0,
        **options: Any,
    ) -> SioClient:
        """Connect and join namespace "/"; raise Refused if the server says no."""
        url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket" + query
        headers = {"Cookie": f"sev_session={cookie}"} if cookie else {}
        ws = await connect(
            url,
            additional_headers=headers,
            compression=None,
            open_timeout=timeout,
            ping_interval=None,
            proxy=None,
            **options,
        )
        try:
            async with asyncio.timeout(timeout):
                opened = await ws.recv()
                if not isinstance(opened, str) or not opened.startswith("0"):
                    raise Refused(f"unexpected open packet {opened!r}")
                await ws.send("40")
                while True:
                    reply = await ws.recv()
                    if reply == "2":
                        await ws.send("3")
                        continue
                    break
        except ConnectionClosed as error:
            raise Refused(f"closed during connect: {error}") from None
        except BaseException:
            await ws.close()
            raise
        if not isinstance(reply, str) or not reply.startswith("40"):
            await ws.close()
            raise Refused(f"connect refused: {reply!r}")
        client = cls(ws)
        client._reader = asyncio.create_task(client._read())
        return client

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if not isinstance(message, str):
                    continue
                if message == "2":
                    await self.ws.send("3")
                elif message.startswith("42"):
                    # An event, with an ack id before the array when the server wants an ack.
                    name, *args = json.loads(message[2:].lstrip("0123456789"))
                    if name == "event":
                        self.received_at.append(time.time())
                        self.events.append(args[0])
                    else:
                        self.notices.append(args)
                elif message.startswith("43"):
                    digits = len(message) - len(message[2:].lstrip("0123456789")) - 2
                    ack_id = int(message[2 : 2 + digits])
                    future = self._acks.pop(ack_id, None)
                    if future is not None and not future.done():
                        future.set_result(json.loads(message[2 + digits :])[0])
                elif message.startswith(("1", "41")):
                    break
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()
            for future in self._acks.values():
                if not future.done():
                    future.set_exception(ConnectionError("socket closed"))

    async def watch(
        self, streamer: str, after: int | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Send `watch` and return its ack."""
        return await self.call("watch", {"streamer": streamer, "after": after}, timeout)

    async def call(self, name: str, payload: Any, timeout: float = 10.0) -> dict[str, Any]:
        """Emit `name` with an ack id and return the ack (`watch`, `fill`)."""
        ack_id = self._next_ack
        self._next_ack += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        await self.ws.send(f"42{ack_id}" + json.dumps([name, payload]))
        ack: dict[str, Any] = await asyncio.wait_for(future, timeout)
        return ack

    def seqs(self) -> list[int]:
        """The seq of every event received live, in arrival order."""
        return [event["seq"] for event in self.events]

    async def close(self) -> None:
        """Close the websocket and stop reading."""
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
