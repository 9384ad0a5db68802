"""Benchmark 1, ingest: signed notifications per second through SEV's whole webhook path.

SEV (embedded store, then the MongoDB-wire server) and the verify-only ceiling each get the same
closed-loop load from bench/ingest.mjs (Node, keep-alive, on the load core), then SEV gets an
open-loop load at half of its maximum rate for the acknowledgement latency.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from bench.servers import (
    BENCH,
    BROADCASTER,
    SECRET,
    BenchSev,
    Ceiling,
    _pinned,
    cores,
    cpu_seconds,
    pid_of,
)
from tests.support.processes import _Process

CONCURRENCY = 64


def load(
    url: str, seconds: float, rate: float = 0, concurrency: int = CONCURRENCY
) -> dict[str, Any]:
    """Run bench/ingest.mjs against `url`; its JSON summary."""
    config = {
        "url": url,
        "secret": SECRET,
        "concurrency": concurrency,
        "seconds": seconds,
        "rate": rate,
        "broadcaster": BROADCASTER.id,
    }
    done = subprocess.run(
        _pinned(["node", str(BENCH / "ingest.mjs"), json.dumps(config)], cores()[1]),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _measure(server: _Process, seconds: float) -> dict[str, Any]:
    load(server.url, 1.0)  # warm up: connections, imports, caches
    before = cpu_seconds(pid_of(server))
    result = load(server.url, seconds)
    cpu = cpu_seconds(pid_of(server)) - before
    result["server_cpu_percent"] = 100 * cpu / seconds
    # Requests per second of the server's own CPU time: a capacity that holds on a shared machine.
    result["per_cpu_s"] = result["per_s"] * seconds / cpu if cpu > 0 else None
    return result


def run(
    tmp: Path, seconds: float, mongo_uri: str | None, log: Any, mongo_half_rate: bool = True
) -> dict[str, Any]:
    """Ceiling, SEV embedded (max + half-rate latency), SEV on MongoDB-wire if available."""
    results: dict[str, Any] = {}
    ceiling = Ceiling(tmp, "bench.ceiling")
    ceiling.start()
    try:
        results["ceiling"] = _measure(ceiling, seconds)
    finally:
        ceiling.stop()
    log("ingest ceiling (verify only)", results["ceiling"])

    sev = BenchSev(tmp / "embedded")
    sev.start()
    try:
        results["embedded"] = _measure(sev, seconds)
        log("ingest SEV embedded store", results["embedded"])
        half = max(1.0, results["embedded"]["per_s"] / 2)
        results["embedded_half_rate"] = load(sev.url, seconds, rate=half)
        results["embedded_half_rate"]["rate"] = half
        log("ingest SEV embedded at half rate", results["embedded_half_rate"])
    finally:
        sev.stop()

    if mongo_uri:
        sev = BenchSev(tmp / "mongo", mongodb_uri=mongo_uri)
        sev.start()
        try:
            results["mongo"] = _measure(sev, seconds)
            log("ingest SEV MongoDB-wire (FerretDB)", results["mongo"])
            if not mongo_half_rate:
                return results
            half = max(1.0, results["mongo"]["per_s"] / 2)
            results["mongo_half_rate"] = load(sev.url, seconds, rate=half)
            results["mongo_half_rate"]["rate"] = half
            log("ingest SEV MongoDB-wire at half rate", results["mongo_half_rate"])
        finally:
            sev.stop()
    return results
