"""Background duties (reconcile subscriptions, validate tokens, ...), safe with many processes.

Each duty runs on its interval in whichever process holds its lease in the store: with several
SEV processes sharing one store, one of them does the work and another takes over within one
lease period if it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sev.eventsub import now_utc
from sev.store import Store, StoreUnavailable

log = logging.getLogger(__name__)
# After a failure (Twitch or the store down), try again sooner than the full interval.
_RETRY_AFTER_S = 5.0


@dataclass
class _Duty:
    name: str
    interval_s: float
    run: Callable[[], Awaitable[None]]


class Duties:
    """Runs periodic duties under store leases."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._duties: list[_Duty] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def add(self, name: str, interval_s: float, run: Callable[[], Awaitable[None]]) -> None:
        """Register a duty to run now and then every `interval_s` seconds."""
        self._duties.append(_Duty(name, interval_s, run))

    async def start(self) -> None:
        """Start one task per duty."""
        self._tasks = [asyncio.create_task(self._loop(d), name=f"sev-duty-{d.name}")
                       for d in self._duties]

    async def stop(self) -> None:
        """Cancel the duties and wait for them."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _loop(self, duty: _Duty) -> None:
        # A lease a little longer than the interval: the holder renews it on every run.
        lease_s = duty.interval_s * 2 + 30
        while True:
            delay = duty.interval_s
            try:
                if await self._store.try_lease(duty.name, self.holder, lease_s, now_utc()):
                    await duty.run()
            except asyncio.CancelledError:
                raise
            except StoreUnavailable:
                log.warning("duty %s: store unavailable; retrying", duty.name)
                delay = min(delay, _RETRY_AFTER_S)
            except Exception:
                log.exception("duty %s failed; retrying", duty.name)
                delay = min(delay, _RETRY_AFTER_S)
            await asyncio.sleep(delay)
