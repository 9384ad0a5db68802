"""Process tuning applied once SEV has started: the cyclic garbage collector.

The collector's pauses set SEV's latency tail: with a thousand viewers every generation-0
collection walks the young objects that fan-out creates by the thousand, and each full one walks
everything imported at start-up (docs/PERFORMANCE.md: p99 at 1,000 viewers x 10 events/s went
from ~200 ms to ~45 ms). So, after start-up, everything alive is moved out of the collector's
sight (`gc.freeze`, as CPython's docs advise for long-lived servers) and generation 0 is
collected less often. Reference counting still frees almost everything at once; only cycles wait
for a collection.
"""

from __future__ import annotations

import gc

# Allocations (minus deallocations) between generation-0 collections; CPython's default is 700.
GEN0_THRESHOLD = 50_000


def tune_gc(gen0_threshold: int = GEN0_THRESHOLD) -> tuple[int, int, int]:
    """Freeze what start-up created and raise the generation-0 threshold; returns the old one."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0_threshold, previous[1], previous[2])
    return previous


def restore_gc(previous: tuple[int, int, int]) -> None:
    """Undo `tune_gc` (at shutdown: tests build many apps in one process)."""
    gc.set_threshold(*previous)
    gc.unfreeze()
