"""One writer at a time per broadcaster across processes: a Redis lock around numbering and
storing a batch (the MongoDB store, with `REDIS_URL`).

The MongoDB store numbers a batch from the newest stored seq, and its unique index on
(broadcaster_id, seq) refuses a seq another process took first: that alone keeps the order
(`sev/store/mongo.py`). But when processes take turns with one broadcaster's webhooks at a high
rate, nearly every batch starts with a collision and the writers chase each other (measured on
FerretDB: two processes at 320 events/s of 8 broadcasters, each taking every other batch,
acknowledged in 1.6 s at the median instead of 2 ms). A lane makes them take turns instead:

- `hold(broadcaster_id)` takes the broadcaster's lane (`SET NX PX`, one round trip that also
  reads where the last holder stopped: the next seq to use), and gives it back with that seq
  once the batch is stored (a compare-and-delete, so a lane that expired and was taken by
  another is not released by mistake). The holder numbers from that seq: no read and, unless a
  process wrote without the lane, no collision.
- A lane held elsewhere is asked again every few milliseconds, for at most `WAIT_S`.
- The lane is a hint, never the guarantee: Redis away, too slow, or a lane not had in time, and
  the batch is written without it (the unique index still orders it; one log line per outage).
  A lane expires by itself `HOLD_MS` after its holder died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger(__name__)

# A batch is stored within the store's operation timeout (3 s); a dead holder's lane frees later.
HOLD_MS = 5_000
# How long a process waits for a lane held elsewhere before it writes without it.
WAIT_S = 3.0
POLL_S = 0.002
# Each Redis command of a lane, at most.
COMMAND_TIMEOUT_S = 0.5
# Where the last holder stopped is trusted this long (MongoStore's _REMEMBER_NEXT_S).
NEXT_MS = 600_000

_TAKE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('GET', KEYS[2])}
end
return {0}
"""
_GIVE_BACK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if ARGV[2] == '' then redis.call('DEL', KEYS[2])
  else redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) end
  return 1
end
return 0
"""


@dataclass
class Lane:
    """A held lane (or none: `held` False): the seq to number from, if the last holder said,
    and the one the holder leaves for the next."""

    held: bool
    next_seq: int | None = None


class RedisLanes:
    """Per-broadcaster lanes in Redis (see the module's docstring)."""

    def __init__(self, url: str, prefix: str = "sev:lane:", wait_s: float = WAIT_S) -> None:
        self._redis: Redis = Redis.from_url(
            url, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )
        self._prefix = prefix
        self.wait_s = wait_s
        self._take: Any = self._redis.register_script(_TAKE)
        self._give_back: Any = self._redis.register_script(_GIVE_BACK)
        self._down = False
        # Batches written with the lane, and without it (Redis away, or not had in time).
        self.held = 0
        self.unheld = 0

    async def close(self) -> None:
        """Close the connections."""
        with contextlib.suppress(Exception):
            await self._redis.aclose()

    @contextlib.asynccontextmanager
    async def hold(self, broadcaster_id: str) -> AsyncIterator[Lane]:
        """The broadcaster's lane for the duration of the block (or, failing that, none)."""
        keys = [f"{self._prefix}{broadcaster_id}", f"{self._prefix}{broadcaster_id}:next"]
        token = uuid.uuid4().hex
        lane = await self._take_lane(keys, token)
        if lane.held:
            self.held += 1
        else:
            self.unheld += 1
        try:
            yield lane
        finally:
            if lane.held:
                left = "" if lane.next_seq is None else str(lane.next_seq)
                try:
                    await asyncio.wait_for(
                        self._give_back(keys=keys, args=[token, left, NEXT_MS]), COMMAND_TIMEOUT_S
                    )
                except Exception as error:  # it expires by itself
                    self._failed(error)

    async def _take_lane(self, keys: list[str], token: str) -> Lane:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while True:
            try:
                answer = await asyncio.wait_for(
                    self._take(keys=keys, args=[token, HOLD_MS]), COMMAND_TIMEOUT_S
                )
            except Exception as error:
                self._failed(error)
                return Lane(held=False)
            if self._down:
                self._down = False
                log.warning("Redis lanes back: batches are numbered one writer at a time again")
            if answer[0]:
                next_seq = int(answer[1]) if len(answer) > 1 and answer[1] is not None else None
                return Lane(held=True, next_seq=next_seq)
            if loop.time() >= deadline:
                return Lane(held=False)
            await asyncio.sleep(POLL_S)

    def _failed(self, error: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "Redis lanes unavailable (%s): batches are written without them, the store's "
                "unique index still keeps each broadcaster's order",
                str(error) or type(error).__name__,
            )
