"""uvicorn's websocket protocol for SEV's viewers: `uvicorn sev.app:app --ws sev.live:Wire`.

uvicorn takes a protocol class for `--ws` as an import string (as for its own implementations);
`Wire` is its `websockets-sansio` protocol (the one rooms.py writes frames to directly) with less
kept per connection once the websocket is open (docs/PERFORMANCE.md):

- the handshake's request and response (each with its headers, as `websockets` objects) are
  dropped once the response is sent, and the request's headers emptied (websockets' parser
  keeps the request itself): uvicorn reads neither again, and the ASGI scope keeps the
  request's headers, as bytes, for the app;
- no websocket ping of uvicorn's own (`start_keepalive` does nothing): Engine.IO pings;
- the receive queue is a `SendQueue` and the "writable" flag a `Flag`, which hold nothing while
  idle, instead of an `asyncio.Queue` (three deques and an Event) and an `asyncio.Event` (a
  deque): ~4.5 KB per connection.

It also refuses a message larger than `MAX_MESSAGE_BYTES` as soon as its frame header says so
(close 1009), whatever `--ws-max-size` says: uvicorn's default (16 MiB) buffers a whole message
before Engine.IO's own limit sees it, so a few anonymous clients could hold gigabytes. Every
launch command passes `--ws-max-size` with the same figure too (the Procfile, `sev serve`).

Without the flag SEV still runs on uvicorn's own protocol, only heavier per viewer. Relies on
uvicorn 0.5x's `WebSocketsSansIOProtocol` (`queue`, `writable`, `request`, `response`,
`handshake_complete`, `start_keepalive`, `ping_timer`) and websockets' parser limit
(`max_message_size`); tests/live/test_library_contract.py fails if they change.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from sev.live._lean.sendqueue import SendQueue

# The largest websocket message SEV reads. A viewer sends small Socket.IO calls (`watch`,
# `fill`: well under 1 KiB); Engine.IO's own limit (`max_http_buffer_size`, 1,000,000 bytes)
# stays the finer check behind it.
MAX_MESSAGE_BYTES = 2**20


class Flag:
    """`asyncio.Event`'s interface (set, clear, is_set, wait) with no deque while nobody waits."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        """True once set, until cleared."""
        return self._set

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        """Unset the flag."""
        self._set = False

    async def wait(self) -> bool:
        """Return once the flag is set."""
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


class Wire(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, lean per open connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = self.conn.max_message_size
        self.conn.max_message_size = min(limit or MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES)
        self.queue: Any = SendQueue()
        self.writable: Any = Flag()
        self.writable.set()

    def start_keepalive(self) -> None:
        """No websocket pings of uvicorn's: the only websocket SEV serves is Engine.IO's, whose
        own ping (every 25 s, answered within 20 s, or engine.io closes the socket) already
        finds dead viewers and keeps proxies from closing an idle connection. uvicorn's (every
        `--ws-ping-interval`, 20 s by default) would double that traffic, 500 frames/s each way
        at 10,000 viewers, and keep a timer per viewer (docs/PERFORMANCE.md)."""

    async def send(self, message: Any) -> None:
        """uvicorn's send; once the handshake's response is out, forget the handshake."""
        await super().send(message)
        if self.handshake_complete and hasattr(self, "response"):
            # websockets' parser generator keeps the request in a local for the connection's
            # life: empty its headers in place (the scope has its own copy, as bytes).
            self.request.headers.clear()
            del self.request, self.response
