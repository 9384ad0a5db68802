"""`python -m bench --processes N`: N SEV processes on one MongoDB-wire store and one Redis,
beside one process alone, in the same run.

Each configuration (1 process, then N) gets a fresh database and the same load:
- `broadcasters` streamers; viewer groups of `viewers / broadcasters` Node clients
  (bench/clients.mjs) each watch one streamer on the process `streamer index mod N`, as a load
  balancer that routes a streamer's viewers together would place them;
- signed webhooks at `rate` per second in total from bench/ingest.mjs (Node), each to the next
  streamer, and each streamer's in turn to every process (any process may receive any
  streamer's events, as from Twitch).

Per process: frames/s to its viewers, webhook-to-viewer p99 (the worst of its groups), its CPU,
frames per CPU-second, and the Redis messages it received, of which it published itself (dropped
undecoded) and decoded (those of its own viewers' streamers, published elsewhere): read from
the line each process logs when it stops. The machine has two cores: one process is pinned to
the server core with the load on the other, as in the rest of the bench; N processes take one
core each in turn and the load generators run wherever the scheduler puts them, so frames per
CPU-second is the figure that holds across configurations.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.servers import (
    BENCH,
    SECRET,
    VIEWER,
    NodeClients,
    _pinned,
    cookie,
    cores,
    cpu_seconds,
    pid_of,
    prepare_store,
    sev_env,
)
from sev.store import Broadcaster
from tests.support.processes import SevProcess
from tests.support.services import MongoServer, RedisServer, free_port

DRAIN_S = 2.0
_RECEIVED = re.compile(r"received (\d+) messages \((\d+) of them published here\)")


def streamers(count: int) -> list[Broadcaster]:
    return [
        Broadcaster(id=str(9100 + i), login=f"bench_streamer_{i}", display_name=f"Streamer_{i}")
        for i in range(count)
    ]


class ClusterSev(SevProcess):
    """One SEV of the cluster, pinned to one core, logging at INFO (the fan-out's stop line)."""

    def __init__(self, tmp: Path, env: dict[str, str], port: int, cpus: set[int]) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        super().__init__(tmp, env, port=port)
        self.cpus = cpus

    def command(self) -> list[str]:
        # INFO for the fan-out's line at stop, without a line per webhook.
        return _pinned([*super().command(), "--no-access-log"], self.cpus)


async def _latest(http: httpx.AsyncClient, url: str, login: str) -> int:
    response = await http.get(
        f"{url}/api/streamers/{login}/events",
        params={"limit": 1},
        cookies={"sev_session": cookie()},
    )
    response.raise_for_status()
    events = response.json()["events"]
    return int(events[0]["seq"]) if events else 0


async def _latests(url: str, broadcasters: list[Broadcaster]) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=30.0) as http:
        return {b.id: await _latest(http, url, b.login) for b in broadcasters}


def _stream(
    urls: list[str], broadcasters: list[Broadcaster], rate: float, seconds: float, cpus: set[int]
) -> dict[str, Any]:
    """Signed webhooks at `rate` per second from bench/ingest.mjs (Node: the load generator
    must not be the limit), each streamer's in turn to every process."""
    first = {key: seq + 1 for key, seq in asyncio.run(_latests(urls[0], broadcasters)).items()}
    config = {
        "urls": urls,
        "broadcasters": [b.id for b in broadcasters],
        "secret": SECRET,
        "concurrency": 64,
        "seconds": seconds,
        "rate": rate,
    }
    done = subprocess.run(
        _pinned(["node", str(BENCH / "ingest.mjs"), json.dumps(config)], cpus),
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=seconds + 180,
        check=True,
    )
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    last = asyncio.run(_latests(urls[0], broadcasters))
    return {
        "first": first,
        "last": last,
        "posted": summary["sent"],
        "statuses": summary["statuses"],
        "ack_ms": summary["latency_ms"],
        "poster_cpu_percent": summary["cpu_percent"],
    }


@dataclass(frozen=True)
class Load:
    """What every configuration gets: viewers split over streamers, webhooks per second."""

    viewers: int
    broadcasters: int
    rate: float
    seconds: float


def run_configuration(
    tmp: Path,
    mongo: MongoServer,
    redis: RedisServer,
    n: int,
    load: Load,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Start n processes, connect the viewers, stream, report per process and in total."""
    viewers, broadcasters, rate, seconds = load.viewers, load.broadcasters, load.rate, load.seconds
    server_cpus, load_cpus = cores()
    all_cpus = server_cpus | load_cpus
    ordered = sorted(server_cpus) + sorted(load_cpus - server_cpus)
    people = streamers(broadcasters)
    database = f"{mongo.uri.rstrip('/')}/sev_bench_p{n}_{int(time.time())}"
    processes: list[ClusterSev] = []
    for i in range(n):
        port = free_port()
        env = {
            **sev_env(tmp / f"p{n}-{i}", port, database),
            "REDIS_URL": redis.url,
            "SEV_LOG_LEVEL": "INFO",
        }
        cpus = {ordered[i % len(ordered)]} if n > 1 else server_cpus
        processes.append(ClusterSev(tmp / f"p{n}-{i}", env, port, cpus))
    asyncio.run(prepare_store(processes[0].env, people))
    groups: list[tuple[int, Broadcaster, NodeClients]] = []
    try:
        for process in processes:
            process.start()
        per_group = viewers // broadcasters
        for index, broadcaster in enumerate(people):
            owner = index % n
            clients = NodeClients(
                processes[owner].url,
                per_group,
                cookie(),
                broadcaster.login,
                cpus=load_cpus if n == 1 else all_cpus,  # as the poster below
            )
            clients.read(timeout=180)
            groups.append((owner, broadcaster, clients))
        urls = [process.url for process in processes]
        posting = load_cpus if n == 1 else all_cpus
        _stream(urls, people, 5 * broadcasters, 1.0, posting)  # warm up
        time.sleep(1.0)
        for _, _, clients in groups:
            clients.command("reset")
        pids = [pid_of(process) for process in processes]
        cpu_before = [cpu_seconds(pid) for pid in pids]
        service_pids = [mongo.pid or 0, redis.pid or 0]
        services_before = [cpu_seconds(pid) for pid in service_pids]
        started = time.monotonic()
        stream = _stream(urls, people, rate, seconds, posting)
        wall = time.monotonic() - started
        cpu = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
        services = [
            100 * (cpu_seconds(pid) - before) / wall
            for pid, before in zip(service_pids, services_before, strict=True)
        ]
        time.sleep(DRAIN_S)
        reports = [
            (owner, b, c.command(f"report {stream['first'][b.id]} {stream['last'][b.id]}"))
            for owner, b, c in groups
        ]
    finally:
        for _, _, clients in groups:
            clients.close()
        for process in processes:
            process.stop()
    events = sum(stream["last"][b.id] - stream["first"][b.id] + 1 for b in people)
    rows = []
    for i, process in enumerate(processes):
        mine = [report for owner, _, report in reports if owner == i]
        frames = sum(report["frames"] for report in mine)
        received = [(int(a), int(b)) for a, b in _RECEIVED.findall(process.logs())]
        total_received, own = received[-1] if received else (0, 0)
        rows.append(
            {
                "process": i,
                "rooms": len(mine),
                "frames_per_s": frames / wall,
                "p99_ms": max((r["latency_ms"]["p99"] or 0) for r in mine) if mine else None,
                "lost": sum(r["lost"] for r in mine),
                "cpu_percent": 100 * cpu[i] / wall,
                "frames_per_cpu_s": frames / cpu[i] if cpu[i] > 0 else None,
                "redis_received": total_received,
                "redis_own": own,
                "redis_decoded": total_received - own,
            }
        )
    total_frames = sum(report["frames"] for _, _, report in reports)
    result = {
        "processes": n,
        "viewers": viewers,
        "broadcasters": broadcasters,
        "rate": rate,
        "seconds": seconds,
        "events": events,
        "posted": stream["posted"],
        "statuses": stream["statuses"],
        "ack_ms": stream["ack_ms"],
        "frames_per_s": total_frames / wall,
        "p99_ms": max(row["p99_ms"] or 0 for row in rows),
        "lost": sum(row["lost"] for row in rows),
        "server_cpu_percent": sum(row["cpu_percent"] for row in rows),
        "frames_per_cpu_s": total_frames / sum(cpu) if sum(cpu) > 0 else None,
        "ferretdb_cpu_percent": services[0],
        "redis_cpu_percent": services[1],
        "per_process": rows,
    }
    log(describe(result))
    return result


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def describe(result: dict[str, Any]) -> str:
    lines = [
        f"{result['processes']} process(es): {result['frames_per_s']:,.0f} frames/s, "
        f"p99 {result['p99_ms']:.0f} ms, lost {result['lost']}, "
        f"{result['events']} events stored of {result['posted']} posted "
        f"{result['statuses']} (ack p50/p99 {_ms(result['ack_ms']['p50'])}/"
        f"{_ms(result['ack_ms']['p99'])} ms), SEV CPU {result['server_cpu_percent']:.0f}%, "
        f"{(result['frames_per_cpu_s'] or 0):,.0f} frames per SEV CPU-second; "
        f"FerretDB CPU {result['ferretdb_cpu_percent']:.0f}%, "
        f"Redis CPU {result['redis_cpu_percent']:.0f}%"
    ]
    for row in result["per_process"]:
        lines.append(
            f"  process {row['process']}: {row['rooms']} rooms, "
            f"{row['frames_per_s']:,.0f} frames/s, p99 {(row['p99_ms'] or 0):.0f} ms, "
            f"CPU {row['cpu_percent']:.0f}%, "
            f"{(row['frames_per_cpu_s'] or 0):,.0f} frames/CPU-s, Redis: received "
            f"{row['redis_received']} ({row['redis_own']} its own, dropped undecoded; "
            f"{row['redis_decoded']} decoded)"
        )
    return "\n".join(lines)


def run(tmp: Path, n: int, load: Load, log: Callable[[str], None]) -> dict[str, Any]:
    """One process alone, then n, on one FerretDB and one Redis started here."""
    mongo, redis = MongoServer(), RedisServer()
    mongo.start()
    redis.start()
    try:
        results = [run_configuration(tmp, mongo, redis, count, load, log) for count in (1, n)]
    finally:
        redis.close()
        mongo.close()
    alone, many = results
    return {
        "alone": alone,
        "many": many,
        "speedup": many["frames_per_s"] / alone["frames_per_s"] if alone["frames_per_s"] else None,
        "viewer": VIEWER.id,
    }
