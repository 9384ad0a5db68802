"""Helix's rate limit: token buckets that refill continuously, one per authenticated caller.

As Twitch's API guide describes: an app access token draws on its client id's bucket, a user
access token on a bucket of its client id and user. A request is charged only once its token
is known, so requests that fail authentication (anyone can send a `Client-Id` header) drain
nobody's bucket.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TokenBucket:
    """`points` requests per `window_s`, refilled smoothly; each Helix request takes one."""

    def __init__(
        self, points: int, window_s: float, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.points = points
        self.window_s = window_s
        self.clock = clock
        self._tokens = float(points)
        self._at = clock()

    def _refill(self) -> None:
        now = self.clock()
        rate = self.points / self.window_s
        self._tokens = min(float(self.points), self._tokens + (now - self._at) * rate)
        self._at = now

    def take(self) -> bool:
        """Spend one point if there is one."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def headers(self) -> dict[str, str]:
        """`Ratelimit-Limit`, `-Remaining` and `-Reset` (epoch seconds when the bucket is full)."""
        self._refill()
        missing = self.points - self._tokens
        reset = self._at + missing * self.window_s / self.points
        return {
            "Ratelimit-Limit": str(self.points),
            "Ratelimit-Remaining": str(math.floor(self._tokens)),
            "Ratelimit-Reset": str(math.ceil(reset)),
        }
