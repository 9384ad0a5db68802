"""A page's socket as SEV's streamer page opens it: python-socketio's client over websocket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import socketio


@dataclass
class PageSocket:
    """One open page: what SEV sent it, and whether SEV disconnected it."""

    client: socketio.AsyncClient
    events: list[dict[str, Any]] = field(default_factory=list)
    session_ended: list[dict[str, Any]] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_disconnected(self, timeout: float = 10) -> None:
        await asyncio.wait_for(self.disconnected.wait(), timeout)


@asynccontextmanager
async def page_socket(url: str, cookie: str) -> AsyncIterator[PageSocket]:
    """A connected socket with `sev_session=cookie`, that does not reconnect by itself."""
    client = socketio.AsyncClient(reconnection=False)
    page = PageSocket(client)

    async def on_event(event: dict[str, Any]) -> None:
        page.events.append(event)

    async def on_session_ended(notice: dict[str, Any]) -> None:
        page.session_ended.append(notice)

    async def on_disconnect(*_: Any) -> None:
        page.disconnected.set()

    client.on("event", on_event)
    client.on("session_ended", on_session_ended)
    client.on("disconnect", on_disconnect)
    await client.connect(
        url,
        headers={"Cookie": f"sev_session={cookie}"},
        transports=["websocket"],
        socketio_path="socket.io",
        wait_timeout=10,
    )
    try:
        yield page
    finally:
        with suppress(Exception):
            await client.disconnect()


async def is_refused(url: str, cookie: str) -> bool:
    """Whether SEV refuses a socket with this session cookie."""
    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(
            url,
            headers={"Cookie": f"sev_session={cookie}"},
            transports=["websocket"],
            wait_timeout=10,
        )
    except socketio.exceptions.ConnectionError:
        return True
    await client.disconnect()
    return False
