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

from sev.clock import now_utc
from sev.store import Store, StoreUnavailable
from sev.twitch import TwitchError

log = logging.getLogger(__name__)
# After a failure (Twitch or the store down), try again sooner than the full interval.
_RETRY_AFTER_S = 5.0
_LEASE_S = 60.0
# stop() lets a duty finish the store or Twitch call it is in for this long before cancelling it:
# a PyMongo operation cancelled halfway leaks its socket and may swallow the cancellation.
_STOP_GRACE_S = 2.0


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
        self._stopping = asyncio.Event()
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def add(self, name: str, interval_s: float, run: Callable[[], Awaitable[None]]) -> None:
        """Register a duty to run now and then every `interval_s` seconds."""
        self._duties.append(_Duty(name, interval_s, run))

    async def start(self) -> None:
        """Start one task per duty."""
        self._stopping.clear()
        self._tasks = [
            asyncio.create_task(self._loop(d), name=f"sev-duty-{d.name}") for d in self._duties
        ]

    async def stop(self) -> None:
        """Stop the duties (cancelling any still busy after a grace), hand their leases back."""
        self._stopping.set()
        pending: set[asyncio.Task[None]] = set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=_STOP_GRACE_S)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for duty in self._duties:
            with contextlib.suppress(StoreUnavailable, TimeoutError):
                # A lease that ends now: a successor process need not wait for it to expire.
                # Bounded: with the store down, shutting down matters more.
                await asyncio.wait_for(
                    self._store.try_lease(duty.name, self.holder, 0, now_utc()), timeout=1.0
                )

    async def _loop(self, duty: _Duty) -> None:
        # The holder renews its lease every tick; if it dies, another process takes over within
        # one lease period. The duty itself runs every interval while the lease is held.
        tick = min(duty.interval_s, _LEASE_S / 3)
        next_run = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            held = False
            try:
                held = await self._store.try_lease(duty.name, self.holder, _LEASE_S, now_utc())
                if held and loop.time() >= next_run:
                    next_run = loop.time() + duty.interval_s
                    await duty.run()
                elif not held:
                    next_run = 0.0  # run at once if the lease comes to us
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as error:
                log.warning("duty %s: store unavailable (%s); retrying", duty.name, error)
                next_run = min(next_run, loop.time() + _RETRY_AFTER_S)
            except TwitchError as error:
                log.warning("duty %s: Twitch failed (%s); retrying", duty.name, error)
                next_run = min(next_run, loop.time() + _RETRY_AFTER_S)
            except Exception:
                log.exception("duty %s failed; retrying", duty.name)
                next_run = min(next_run, loop.time() + _RETRY_AFTER_S)
            wait = min(tick, max(0.05, next_run - loop.time())) if held else tick
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # stop() cancelled us but a library swallowed it mid-operation (seen with
                # PyMongo's async client on 3.11): stop now rather than sleep through stop().
                raise asyncio.CancelledError
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)
