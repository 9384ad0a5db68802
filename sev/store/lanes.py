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
- Where the last holder stopped is read back from Redis, which anyone who can write to it may
  have changed: a value that is not a seq (not an integer, below 1, past `MAX_SEQ`) counts as no
  value, and the store numbers from its own newest seq (logged, at most once a minute). With a
  `secret` (as SEV runs), the value also carries an HMAC of the broadcaster and the seq, so a
  plausible number that no SEV process wrote (one far ahead would leave a hole in the numbering,
  one near `MAX_SEQ` would stop it) counts as no value too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from sev.store.base import MAX_SEQ

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
# At most one warning per this many seconds about values of `:next` that are not a seq.
INVALID_LOG_S = 60.0
# The longest `:next` value SEV writes: a seq (19 digits), a dot, an HMAC-SHA256 in hex.
_NEXT_MAX_BYTES = 19 + 1 + 64

# Where the last holder stopped is read with pcall and GETRANGE: a value somebody else put there
# (of another type, or huge) must neither fail the script after the SET, leaving the lane held
# until it expires, nor be carried whole to SEV. A missing key reads as "" (no value); one of
# another type as "?" (no seq, so SEV logs it).
_TAKE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local next_seq = redis.pcall('GETRANGE', KEYS[2], 0, ARGV[3])
  if type(next_seq) ~= 'string' then return {1, '?'} end
  if next_seq == '' then return {1} end
  return {1, next_seq}
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


def lane_key(secret: str) -> bytes:
    """The key that signs where a lane's holder stopped, derived from SEV's session secret (the
    secret itself signs cookies: one key per purpose)."""
    return hmac.digest(secret.encode(), b"sev redis lanes", "sha256")


def next_value(seq: int, broadcaster_id: str, key: bytes | None) -> str:
    """What a holder leaves in `:next`: the seq, and with a key its HMAC."""
    if key is None:
        return str(seq)
    return f"{seq}.{_mac(key, broadcaster_id, seq)}"


def read_next(value: object, broadcaster_id: str, key: bytes | None) -> int | None:
    """The seq in a `:next` value read back from Redis, or None if it is not one SEV wrote."""
    if not isinstance(value, bytes) or len(value) > _NEXT_MAX_BYTES:
        return None
    digits, dot, mac = value.partition(b".")
    # isdigit() also refuses a sign, spaces and underscores, which int() would take.
    if not digits.isascii() or not digits.isdigit() or len(digits) > 19:
        return None
    seq = int(digits)
    if not 1 <= seq <= MAX_SEQ:
        return None
    if key is None:
        return None if dot else seq
    expected = _mac(key, broadcaster_id, seq).encode()
    return seq if hmac.compare_digest(mac, expected) else None


def _mac(key: bytes, broadcaster_id: str, seq: int) -> str:
    # The broadcaster is signed too: another broadcaster's value cannot be copied over.
    return hmac.digest(key, f"{broadcaster_id}:{seq}".encode(), "sha256").hex()


class RedisLanes:
    """Per-broadcaster lanes in Redis (see the module's docstring)."""

    def __init__(
        self,
        url: str,
        prefix: str = "sev:lane:",
        wait_s: float = WAIT_S,
        *,
        secret: str | None = None,
    ) -> None:
        self._redis: Redis = Redis.from_url(
            url, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )
        self._prefix = prefix
        self._key = lane_key(secret) if secret is not None else None
        self.wait_s = wait_s
        self._take: Any = self._redis.register_script(_TAKE)
        self._give_back: Any = self._redis.register_script(_GIVE_BACK)
        self._down = False
        # Batches written with the lane, and without it (Redis away, or not had in time).
        self.held = 0
        self.unheld = 0
        # `:next` values read back that were not a seq SEV wrote, and when to log them next.
        self.invalid = 0
        self._unlogged = 0
        self._next_log = 0.0

    async def close(self) -> None:
        """Close the connections."""
        with contextlib.suppress(Exception):
            await self._redis.aclose()

    @contextlib.asynccontextmanager
    async def hold(self, broadcaster_id: str) -> AsyncIterator[Lane]:
        """The broadcaster's lane for the duration of the block (or, failing that, none)."""
        keys = [f"{self._prefix}{broadcaster_id}", f"{self._prefix}{broadcaster_id}:next"]
        token = uuid.uuid4().hex
        lane = await self._take_lane(keys, token, broadcaster_id)
        if lane.held:
            self.held += 1
        else:
            self.unheld += 1
        try:
            yield lane
        finally:
            if lane.held:
                left = (
                    ""
                    if lane.next_seq is None
                    else next_value(lane.next_seq, broadcaster_id, self._key)
                )
                try:
                    await asyncio.wait_for(
                        self._give_back(keys=keys, args=[token, left, NEXT_MS]), COMMAND_TIMEOUT_S
                    )
                except Exception as error:  # it expires by itself
                    self._failed(error)

    async def _take_lane(self, keys: list[str], token: str, broadcaster_id: str) -> Lane:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while True:
            try:
                answer = await asyncio.wait_for(
                    self._take(keys=keys, args=[token, HOLD_MS, _NEXT_MAX_BYTES]), COMMAND_TIMEOUT_S
                )
            except Exception as error:
                self._failed(error)
                return Lane(held=False)
            if self._down:
                self._down = False
                log.warning("Redis lanes back: batches are numbered one writer at a time again")
            if answer[0]:
                stored = answer[1] if len(answer) > 1 else None
                next_seq = None if stored is None else read_next(stored, broadcaster_id, self._key)
                if stored is not None and next_seq is None:
                    self._invalid(keys[1])
                return Lane(held=True, next_seq=next_seq)
            if loop.time() >= deadline:
                return Lane(held=False)
            await asyncio.sleep(POLL_S)

    def _invalid(self, key: str) -> None:
        """A `:next` value that is not a seq SEV wrote: numbered from the store instead."""
        self.invalid += 1
        self._unlogged += 1
        now = time.monotonic()
        if now >= self._next_log:
            # The value itself is not logged: whoever wrote it chose what it says.
            log.warning(
                "ignored %d value(s) of a lane's next seq that SEV did not write (last: %s); "
                "those batches are numbered from the store",
                self._unlogged,
                key,
            )
            self._unlogged = 0
            self._next_log = now + INVALID_LOG_S

    def _failed(self, error: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "Redis lanes unavailable (%s): batches are written without them, the store's "
                "unique index still keeps each broadcaster's order",
                str(error) or type(error).__name__,
            )
