"""Benchmark 2, fan-out: N viewers of one streamer, events at R per second, SEV beside bare
python-socketio.

Viewers: bench/clients.mjs (Node, `ws`, minimal Engine.IO/Socket.IO clients) on the load core.
Events: signed webhooks posted by this process at a fixed rate to SEV (or, for the bare server,
the same event JSON to its /emit). Each event carries its POST time (`data.bench_sent_ms`); the
clients subtract it from their receipt time (same machine, same clock).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.servers import BROADCASTER, SECRET, NodeClients, cookie, cpu_seconds, rss_kb
from sev.events import build_event
from tests.support.factories import notification_body, signed_request

DRAIN_S = 1.5
# Like Twitch: a webhook not acknowledged (timeout, 5xx) is sent again, the same message id.
WEBHOOK_ATTEMPTS = 4
P99_LIMIT_MS = 250.0


@dataclass
class Target:
    """Where events go and how viewers connect: SEV or the bare server."""

    kind: str  # "sev", "bare" or "floor" (the last two take `POST /emit`)
    url: str
    pid: int
    seq: int = 0  # bare: the last seq assigned here; SEV: read from its API
    retries: int = 0  # webhooks SEV did not acknowledge in time, sent again
    cells: list[dict[str, Any]] = field(default_factory=list)

    async def latest_seq(self, client: httpx.AsyncClient) -> int:
        """The newest stored seq (SEV) or the last one sent (bare, floor)."""
        if self.kind != "sev":
            return self.seq
        response = await client.get(
            f"{self.url}/api/streamers/{BROADCASTER.login}/events",
            params={"limit": 1},
            cookies={"sev_session": cookie()},
        )
        response.raise_for_status()
        events = response.json()["events"]
        return int(events[0]["seq"]) if events else 0

    async def post(self, client: httpx.AsyncClient) -> int:
        """Send one event now; the HTTP status (SEV: retried as Twitch does until acknowledged)."""
        sent_ms = time.time() * 1000
        if self.kind == "sev":
            body = notification_body(broadcaster_id=BROADCASTER.id, bench_sent_ms=sent_ms)
            headers, raw = signed_request(body, secret=SECRET)
            status = 0
            for attempt in range(WEBHOOK_ATTEMPTS):
                if attempt:
                    self.retries += 1
                    await asyncio.sleep(1.0)
                try:
                    response = await client.post(
                        f"{self.url}/webhooks/eventsub", headers=headers, content=raw
                    )
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                if status == 204:
                    break
            return status
        self.seq += 1
        event = _bare_event(self.seq, sent_ms)
        response = await client.post(f"{self.url}/emit", content=event)
        return response.status_code


def _bare_event(seq: int, sent_ms: float) -> bytes:
    body = notification_body(broadcaster_id=BROADCASTER.id, bench_sent_ms=sent_ms)
    event = build_event(
        message_id=f"bare-{seq}",
        event_type="channel.follow",
        version="2",
        broadcaster_id=BROADCASTER.id,
        data=body["event"],
        message_timestamp="2026-11-28T10:11:12.123456789Z",
        received_at="2026-11-28T10:11:12.200Z",
    )
    document = event.model_dump(mode="json")
    document["seq"] = seq
    return json.dumps(document).encode()


async def _stream(target: Target, rate: float, seconds: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:
        first = await target.latest_seq(client) + 1
        loop = asyncio.get_running_loop()
        start = loop.time()
        count = int(rate * seconds)
        statuses: dict[int, int] = {}
        pending: set[asyncio.Task[int]] = set()
        for i in range(count):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(target.post(client))
            pending.add(task)
            task.add_done_callback(pending.discard)
            task.add_done_callback(
                lambda t: (
                    statuses.__setitem__(t.result(), statuses.get(t.result(), 0) + 1)
                    if not t.cancelled() and t.exception() is None
                    else None
                )
            )
        if pending:
            await asyncio.wait(pending, timeout=90)
        last = await target.latest_seq(client)
        return {"first": first, "last": last, "posted": count, "statuses": statuses}


def run_cell(
    target: Target, clients: NodeClients, n: int, rate: float, seconds: float
) -> dict[str, Any]:
    """One (N, R) cell: reset, stream, drain, report."""
    clients.command("reset")
    if target.kind == "floor":
        httpx.get(f"{target.url}/turns")  # forget the events before this cell
    retries_before = target.retries
    cpu_before = cpu_seconds(target.pid)
    rss_peak = rss_kb(target.pid)
    started = time.monotonic()
    stream = asyncio.run(_stream(target, rate, seconds))
    wall = time.monotonic() - started
    rss_peak = max(rss_peak, rss_kb(target.pid))
    cpu = cpu_seconds(target.pid) - cpu_before
    time.sleep(DRAIN_S)
    report = clients.command(f"report {stream['first']} {stream['last']}")
    expected = stream["last"] - stream["first"] + 1
    cell = {
        "server": target.kind,
        "clients": n,
        "rate": rate,
        "seconds": seconds,
        "events": expected,
        "posted": stream["posted"],
        "statuses": stream["statuses"],
        "webhook_retries": target.retries - retries_before,
        "frames": report["frames"],
        "frames_per_s": report["frames"] / wall,
        "lost": report["lost"] + n * max(0, stream["posted"] - expected),
        "duplicated": report["duplicated"],
        "latency_ms": report["latency_ms"],
        "server_cpu_percent": 100 * cpu / wall,
        # Frames per second of SEV's own CPU time: a capacity that holds on a shared machine.
        "frames_per_cpu_s": report["frames"] / cpu if cpu > 0 else None,
        "server_rss_kb": rss_peak,
        "clients_cpu_percent": report["cpu_percent"],
    }
    if target.kind == "floor":
        cell["server_latency_ms"] = server_latency(httpx.get(f"{target.url}/turns").json())
    cell["ok"] = cell["lost"] == 0 and (cell["latency_ms"]["p99"] or 0) <= P99_LIMIT_MS
    target.cells.append(cell)
    return cell


def server_latency(turns: list[list[float]]) -> dict[str, Any]:
    """The viewers' latency as the server saw it, from bench/floor.py's [began, ended] writing
    each event (ms after its POST): an event's writes are taken as evenly spread over that
    time, so the k-th of n viewers' frame left at began + (ended - began) * k / n. What the
    viewers measured beyond this is the load generator's own time to read it."""
    steps = 100
    spread = sorted(
        began + (ended - began) * (k + 1) / steps for began, ended in turns for k in range(steps)
    )

    def at(p: float) -> float | None:
        return round(spread[min(len(spread) - 1, int(len(spread) * p))], 1) if spread else None

    return {
        "events": len(turns),
        "p50": at(0.5),
        "p99": at(0.99),
        "turn_ms_median": (
            round(sorted(ended - began for began, ended in turns)[len(turns) // 2], 1)
            if turns
            else None
        ),
    }


def seed(target: Target, events: int) -> None:
    """Store `events` events before viewers connect, so each `watch` ack is a first paint."""
    asyncio.run(_stream(target, max(1.0, events), 1.0))
    time.sleep(0.5)


def connect(target: Target, n: int) -> tuple[NodeClients, dict[str, Any]]:
    """Start N viewers; RSS before and after they connect."""
    idle = rss_kb(target.pid)
    clients = NodeClients(
        target.url, n, cookie() if target.kind == "sev" else None, BROADCASTER.login
    )
    ready = clients.read(timeout=max(180.0, n / 25))
    time.sleep(1.0)
    connected = rss_kb(target.pid)
    # Warm up (first events after a thousand connections), then measure from a steady state.
    asyncio.run(_stream(target, 5, 1.0))
    time.sleep(0.5)
    return clients, {
        "clients": n,
        "ready": ready["ready"],
        "refused": ready["refused"],
        "rss_idle_kb": idle,
        "rss_connected_kb": connected,
        "rss_kb_per_client": (connected - idle) / max(1, ready["ready"]),
    }


def search(
    target: Target,
    clients: NodeClients,
    n: int,
    start: float,
    step: float,
    seconds: float,
    tries: int,
    shrink: float | None = None,
) -> dict[str, Any] | None:
    """The highest rate with nothing lost and p99 <= 250 ms: upwards from `start` by `step`
    until a cell fails (step > 0), or downwards (by -step, or to `shrink` times the rate) until
    one passes (step < 0)."""
    best = None
    rate = start
    for _ in range(tries):
        if rate <= 0:
            break
        cell = run_cell(target, clients, n, rate, seconds)
        cell["search"] = True
        if step > 0 and not cell["ok"]:
            break
        if cell["ok"]:
            best = cell
            if step < 0:
                break
        rate = rate * shrink if step < 0 and shrink else rate + step
        rate = round(rate)
    return best
