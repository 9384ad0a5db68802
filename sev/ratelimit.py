"""Per-user rate limits for actions that spend something shared (Twitch's EventSub budget, the
store reads behind a viewer socket's calls)."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable


class RateLimiter:
    """At most `limit` actions per key in any `window_s` seconds, counted in this process.

    With several processes each keeps its own count, so a user gets up to `limit` per process:
    the bound stays finite, which is what protects the shared budget.
    """

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._recent: defaultdict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str) -> bool:
        """Count one action for `key`, unless it is over the limit (then False, not counted)."""
        now = self._clock()
        recent = self._recent[key]
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        if len(recent) >= self.limit:
            return False
        recent.append(now)
        if len(self._recent) > 100_000:
            # Keys whose actions all aged out: forget them.
            for stale in [k for k, v in self._recent.items() if not v]:
                del self._recent[stale]
        return True
