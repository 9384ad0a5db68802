"""`python -m bench.memory`: where a connected, idle viewer's bytes go (tracemalloc).

The server (SEV, or the bare python-socketio server) runs in this process under tracemalloc,
with uvicorn's own event loop (uvloop) and the flags SEV is deployed with; N Node viewers
(bench/clients.mjs) connect, `watch` and go idle. Two snapshots, before and after they connect,
are compared and every allocation still alive is charged to an owner: the library whose code
made it, or, for allocations made inside the standard library (asyncio's queues, tasks and
timers, the json module), the first library frame above it ("asyncio via engineio").
SEV is seeded with events first, so each `watch` ack carries a first paint as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from bench.servers import (
    BROADCASTER,
    SECRET,
    NodeClients,
    cookie,
    ensure_node_modules,
    prepare_store,
    raise_fd_limit,
    rss_kb,
    sev_env,
)
from tests.support.factories import notification_body, signed_request
from tests.support.services import free_port

FRAMES = 12
# Packages an allocation can be charged to, in the order they are looked for in a path.
_OWNERS = (
    ("sev", "/sev/"),
    ("bench", "/bench/"),
    ("uvicorn", "/uvicorn/"),
    ("websockets", "/websockets/"),
    ("wsproto", "/wsproto/"),
    ("h11", "/h11/"),
    ("engineio", "/engineio/"),
    ("socketio", "/socketio/"),
    ("starlette", "/starlette/"),
    ("fastapi", "/fastapi/"),
    ("uvloop", "/uvloop/"),
    ("httptools", "/httptools/"),
    ("bidict", "/bidict/"),
)


def _owner_of(filename: str) -> str | None:
    for name, marker in _OWNERS:
        if marker in filename:
            return name
    return None


def _charge(trace: tracemalloc.Trace) -> str:
    """The owner of one allocation: its own package, or 'stdlib via the first package up'."""
    frames = list(reversed(trace.traceback))  # most recent call first
    first = _owner_of(frames[0].filename)
    if first is not None:
        return first
    module = Path(frames[0].filename).parent.name
    stdlib = "asyncio" if module == "asyncio" else Path(frames[0].filename).stem
    for frame in frames[1:]:
        owner = _owner_of(frame.filename)
        if owner is not None:
            return f"{stdlib} via {owner}"
    return stdlib


# The parts of a viewer the breakdown in docs/PERFORMANCE.md names, by the allocating frame.
PARTS = (
    "packets kept (the watch ack)",
    "environ (engine.io's request dict)",
    "uvicorn's protocol, its task, scope and receive queue",
    "uvloop's transport",
    "websockets (sans-I/O parser, handshake)",
    "engine.io socket, send queue, writer/reader tasks, ping",
    "python-socketio session and rooms",
    "SEV",
    "other",
)


def _part(trace: tracemalloc.Trace) -> str:
    frames = list(reversed(trace.traceback))  # most recent call first
    top = frames[0].filename
    owner = _charge(trace)
    if top.endswith(("engineio/packet.py", "socketio/packet.py")):
        return PARTS[0]
    if top.endswith("engineio/async_drivers/asgi.py") and 100 <= frames[0].lineno <= 230:
        return PARTS[1]
    if owner.startswith("asyncio") and top.endswith("asyncio/runners.py"):
        return PARTS[3]
    if owner.endswith("uvicorn"):
        return PARTS[2]
    if owner.endswith(("websockets", "wsproto", "h11")):
        return PARTS[4]
    if owner.endswith("engineio"):
        return PARTS[5]
    if owner.endswith(("socketio", "bidict")):
        return PARTS[6]
    if owner.endswith("sev"):
        return PARTS[7]
    return PARTS[8]


def breakdown(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, viewers: int, top: int
) -> dict[str, Any]:
    """Bytes per viewer by owner and by line (the allocating line, and its first library
    caller when that line is in the standard library)."""
    by_owner: dict[str, int] = defaultdict(int)
    by_part: dict[str, int] = defaultdict(int)
    by_line: dict[str, int] = defaultdict(int)
    # Compare by traceback multiset: what `after` holds beyond `before`.
    old: dict[Any, int] = defaultdict(int)
    for trace in before.traces:
        old[trace.traceback] += trace.size
    new: dict[Any, int] = defaultdict(int)
    traces: dict[Any, tracemalloc.Trace] = {}
    for trace in after.traces:
        new[trace.traceback] += trace.size
        traces[trace.traceback] = trace
    for traceback, size in new.items():
        grown = size - old.get(traceback, 0)
        if grown <= 0:
            continue
        trace = traces[traceback]
        by_owner[_charge(trace)] += grown
        by_part[_part(trace)] += grown
        frames = list(reversed(traceback))  # most recent call first
        frame = frames[0]
        where = f"{_short(frame.filename)}:{frame.lineno}"
        if _owner_of(frame.filename) is None:
            caller = next((f for f in frames if _owner_of(f.filename)), None)
            if caller is not None:
                where += f" <- {_short(caller.filename)}:{caller.lineno}"
        by_line[where] += grown
    total = sum(by_owner.values())
    return {
        "viewers": viewers,
        "traced_bytes_per_viewer": round(total / viewers),
        "by_part": {part: round(by_part.get(part, 0) / viewers) for part in PARTS},
        "by_owner": {
            k: round(v / viewers) for k, v in sorted(by_owner.items(), key=lambda kv: -kv[1])
        },
        "by_line": {
            k: round(v / viewers) for k, v in sorted(by_line.items(), key=lambda kv: -kv[1])[:top]
        },
    }


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3", "/work/"):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python3" else tail
    return filename


def _seed(url: str, events: int) -> None:
    with httpx.Client(timeout=10.0) as client:
        for _ in range(events):
            body = notification_body(broadcaster_id=BROADCASTER.id)
            headers, raw = signed_request(body, secret=SECRET)
            client.post(f"{url}/webhooks/eventsub", headers=headers, content=raw).raise_for_status()


def _wait_ready(url: str, path: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + path, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url}{path} did not answer within {timeout}s")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--app", choices=["sev", "bare"], default="sev")
    parser.add_argument(
        "--ws", help="uvicorn's --ws (default: as deployed: SEV's Wire, bare: uvicorn's auto)"
    )
    parser.add_argument("--seed-events", type=int, default=10, help="events stored before")
    parser.add_argument("--top", type=int, default=30, help="lines to list")
    parser.add_argument("--out", type=Path, help="write the breakdown here as JSON")
    parser.add_argument(
        "--rss-only", action="store_true", help="no tracemalloc: RSS per viewer only"
    )
    args = parser.parse_args()
    if args.ws is None:
        args.ws = "sev.live:Wire" if args.app == "sev" else "auto"
    raise_fd_limit()
    ensure_node_modules()
    import uvicorn

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if args.app == "sev":
        tmp = Path(tempfile.mkdtemp(prefix="sev-memory-"))
        env = sev_env(tmp, port, None)
        asyncio.run(prepare_store(env))
        os.environ.update(env)
        target, ready_path = "sev.app:app", "/healthz"
    else:
        os.environ["TWITCH_EVENTSUB_SECRET"] = SECRET
        target, ready_path = "bench.bare:app", "/"
    config = uvicorn.Config(
        target,
        host="127.0.0.1",
        port=port,
        ws=args.ws,
        ws_per_message_deflate=False,
        ws_max_size=2**20,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    result: dict[str, Any] = {}

    def drive() -> None:
        try:
            _wait_ready(url, ready_path)
            if args.app == "sev":
                _seed(url, args.seed_events)
            time.sleep(1.0)
            gc.collect()
            rss_before = rss_kb(os.getpid())
            before = None if args.rss_only else tracemalloc.take_snapshot()
            clients = NodeClients(
                url, args.viewers, cookie() if args.app == "sev" else None, BROADCASTER.login
            )
            try:
                ready = clients.read(timeout=300)
                time.sleep(2.0)
                gc.collect()
                rss_after = rss_kb(os.getpid())
                after = None if args.rss_only else tracemalloc.take_snapshot()
            finally:
                clients.close()
            viewers = max(1, ready["ready"])
            result["viewers"] = viewers
            if before is not None and after is not None:
                result.update(breakdown(before, after, viewers, args.top))
            result["ready"] = ready
            # Inflated by tracemalloc's own records unless --rss-only.
            result["rss_kb_per_viewer"] = round((rss_after - rss_before) / viewers, 1)
        except BaseException as error:
            result["error"] = repr(error)
        finally:
            server.should_exit = True

    if not args.rss_only:
        tracemalloc.start(FRAMES)
    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    server.run()
    driver.join(30)
    tracemalloc.stop()
    if "error" in result:
        print(result["error"], file=sys.stderr)
        return 1
    result.update({"app": args.app, "ws": args.ws})
    print(f"{args.app} ws={args.ws}: {result['viewers']} viewers, ready {result['ready']}")
    print(f"RSS per viewer: {result['rss_kb_per_viewer']} KiB")
    if not args.rss_only:
        print(f"traced bytes per viewer: {result['traced_bytes_per_viewer']}")
        for part, size in result["by_part"].items():
            print(f"  {size:>7}  {part}")
        print("by owner:")
        for owner, size in result["by_owner"].items():
            print(f"  {size:>7}  {owner}")
        print("by line:")
        for where, size in result["by_line"].items():
            print(f"  {size:>7}  {where}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
