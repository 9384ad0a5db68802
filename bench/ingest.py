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


def _measure(server: _Process, seconds: float, store_pid: int | None = None) -> dict[str, Any]:
    load(server.url, 1.0)  # warm up: connections, imports, caches
    before = cpu_seconds(pid_of(server))
    store_before = cpu_seconds(store_pid) if store_pid else 0.0
    result = load(server.url, seconds)
    cpu = cpu_seconds(pid_of(server)) - before
    result["server_cpu_percent"] = 100 * cpu / seconds
    # Requests per second of the server's own CPU time: a capacity that holds on a shared machine.
    result["per_cpu_s"] = result["per_s"] * seconds / cpu if cpu > 0 else None
    if store_pid:
        # The MongoDB-wire server's CPU, which the embedded store spends inside SEV's process:
        # counted together, the two stores' capacities compare like for like.
        store_cpu = cpu_seconds(store_pid) - store_before
        result["store_cpu_percent"] = 100 * store_cpu / seconds
        both = cpu + store_cpu
        result["per_cpu_s_with_store"] = result["per_s"] * seconds / both if both > 0 else None
    return result


def run(
    tmp: Path, seconds: float, mongo_uri: str | None, log: Any, mongo_pid: int | None = None
) -> dict[str, Any]:
    """Ceiling, SEV embedded and SEV on MongoDB-wire if available (each: max, half-rate)."""
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
            results["mongo"] = _measure(sev, seconds, mongo_pid)
            log("ingest SEV MongoDB-wire (FerretDB)", results["mongo"])
            half = max(1.0, results["mongo"]["per_s"] / 2)
            results["mongo_half_rate"] = load(sev.url, seconds, rate=half)
            results["mongo_half_rate"]["rate"] = half
            log("ingest SEV MongoDB-wire at half rate", results["mongo_half_rate"])
        finally:
            sev.stop()
    return results


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """The ingest figures of the bench's last line: both stores side by side."""
    embedded, ceiling = results["embedded"], results["ceiling"]
    figures: dict[str, Any] = {
        "ingest_per_s": round(embedded["per_s"], 1),
        "ingest_ceiling_per_s": round(ceiling["per_s"], 1),
        "ingest_ratio": round(embedded["per_s"] / ceiling["per_s"], 3),
        "ack_p99_ms": round(results["embedded_half_rate"]["latency_ms"]["p99"], 1),
        "ack_p99_ms_full": round(embedded["latency_ms"]["p99"], 1),
    }
    if "mongo" in results:
        mongo = results["mongo"]
        figures |= {
            "mongo_ingest_per_s": round(mongo["per_s"], 1),
            # The target: at least 0.8 of the embedded store's rate in the same run.
            "mongo_to_embedded": round(mongo["per_s"] / embedded["per_s"], 3),
            "mongo_ack_p99_ms": round(results["mongo_half_rate"]["latency_ms"]["p99"], 1),
            "mongo_ack_p99_ms_full": round(mongo["latency_ms"]["p99"], 1),
        }
        if mongo.get("per_cpu_s_with_store") and embedded.get("per_cpu_s"):
            # Events per CPU-second, SEV and its store together: the ratio a shared machine
            # moves least.
            figures["mongo_to_embedded_per_cpu_s"] = round(
                mongo["per_cpu_s_with_store"] / embedded["per_cpu_s"], 3
            )
    return figures


def describe(figures: dict[str, Any]) -> str:
    """One line comparing the stores (the headline's figures)."""
    line = (
        f"ingest: embedded {figures['ingest_per_s']:.0f}/s (ack p99 "
        f"{figures['ack_p99_ms_full']} ms at full load, {figures['ack_p99_ms']} ms at half)"
    )
    if "mongo_ingest_per_s" in figures:
        line += (
            f"; MongoDB-wire {figures['mongo_ingest_per_s']:.0f}/s (ack p99 "
            f"{figures['mongo_ack_p99_ms_full']} ms at full load, "
            f"{figures['mongo_ack_p99_ms']} ms at half) = {figures['mongo_to_embedded']:.2f} of "
            "the embedded rate"
        )
        if "mongo_to_embedded_per_cpu_s" in figures:
            line += (
                f" ({figures['mongo_to_embedded_per_cpu_s']:.2f} per CPU-second, the "
                "MongoDB-wire server's CPU counted)"
            )
    return line + f"; verify-only ceiling {figures['ingest_ceiling_per_s']:.0f}/s"
