"""`python -m bench [--quick | --scale]`: ingest, fan-out and resume, SEV beside its stack's
ceilings.

Servers run pinned to one core, load generators (Node, and this process) to the other. The last
line printed is one JSON object with the headline figures (docs/PERFORMANCE.md); `--out FILE`
also writes every cell as JSON. `--scale` is the scale plan: memory per idle viewer at 1,000
and 10,000 (a fresh server for each, its first paint seeded), then 1,000 x 10, 50 and 80
events/s and 10,000 x 5/s, SEV and bare python-socketio in the same run, then 1,000 x 10 and
10,000 x 5 on bench/floor.py (one write per viewer per event and nothing else: what the machine
allows before any server code).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import fanout, ingest
from bench.servers import (
    BROADCASTER,
    BenchSev,
    Ceiling,
    NodeClients,
    cookie,
    core_share,
    cores,
    ensure_node_modules,
    pid_of,
    raise_fd_limit,
)

FULL: dict[str, Any] = {
    "ingest_s": 8.0,
    "grid_clients": [100, 1000, 3000],
    "grid_rates": [5, 10, 20, 50],
    "cell_s": 15.0,
    "search_s": 8.0,
    "search_tries": 8,
    "bare_rates": [5, 10, 20, 50],
    "bare_search_from": 30,
    "bare_search_tries": 6,
}
QUICK: dict[str, Any] = {
    "ingest_s": 3.0,
    "grid_clients": [1000],
    "grid_rates": [5, 50],
    "cell_s": 6.0,
    "search_s": 3.0,
    "search_tries": 2,
    "bare_rates": [],
    "bare_search_from": 30,
    "bare_search_tries": 5,
}
# Ten thousand viewers on one core. Rates per group of viewers; a fresh server per
# group, so that each group's RSS is measured from the same idle start.
SCALE: dict[str, Any] = {
    "ingest_s": 0.0,
    "grid_clients": [1000, 10000],
    "grid_rates": {1000: [10, 50, 80], 10000: [5]},
    "cell_s": 10.0,
    "search_s": 0.0,
    "search_tries": 0,
    "bare_rates": {1000: [10], 10000: [5]},
    "bare_search_from": 30,
    "bare_search_tries": 0,
    # bench/floor.py: one write per viewer per event and nothing else, on the same stack.
    "floor_rates": {1000: [10], 10000: [5]},
    "fresh_per_group": True,
    "seed_events": 10,
}


def _rates(plan: dict[str, Any], key: str, n: int) -> list[float]:
    rates = plan[key]
    return list(rates.get(n, [])) if isinstance(rates, dict) else list(rates)


def _log(name: str, value: Any) -> None:
    print(f"{name}: {json.dumps(value)}", file=sys.stderr, flush=True)


def _summary(name: str, cell: dict[str, Any]) -> None:
    lat = cell["latency_ms"]
    print(
        f"{name:<5} N={cell['clients']:<5} R={cell['rate']:<4} "
        f"frames/s={cell['frames_per_s']:>8.0f} "
        f"lost={cell['lost']} dup={cell['duplicated']} p50={lat['p50']} p95={lat['p95']} "
        f"p99={lat['p99']} max={lat['max']} cpu={cell['server_cpu_percent']:.0f}% "
        f"frames/cpu-s={cell['frames_per_cpu_s'] or 0:.0f} rss={cell['server_rss_kb']}KB "
        f"clients_cpu={cell['clients_cpu_percent']:.0f}%"
        + (
            " server-side p50={p50} p99={p99} writes={turn_ms_median}ms".format(
                **cell["server_latency_ms"]
            )
            if cell.get("server_latency_ms", {}).get("events")
            else ""
        ),
        flush=True,
    )


def _fanout(
    target: fanout.Target,
    plan: dict[str, Any],
    search_from: float,
    step: float,
    shrink: float | None = None,
    restart: Callable[[], int] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"connect": [], "search": None}
    for index, n in enumerate(plan["grid_clients"]):
        if index and restart is not None and plan.get("fresh_per_group"):
            target.pid = restart()
        if plan.get("seed_events") and target.kind == "sev":
            fanout.seed(target, plan["seed_events"])
        clients, connected = fanout.connect(target, n)
        out["connect"].append(connected)
        _log(f"{target.kind} connected", connected)
        try:
            key = "grid_rates" if target.kind == "sev" else f"{target.kind}_rates"
            for rate in _rates(plan, key, n):
                _summary(target.kind, fanout.run_cell(target, clients, n, rate, plan["cell_s"]))
            tries = (
                plan["search_tries"]
                if target.kind == "sev"
                else plan.get(f"{target.kind}_search_tries", 0)
            )
            if n == 1000 and tries:
                done = [c for c in target.cells if c["clients"] == n and not c.get("search")]
                top = max(done, key=lambda c: c["rate"]) if done else None
                if top is None:  # no grid here (quick): search down
                    start, direction = plan["bare_search_from"], -step
                elif top["ok"]:
                    start, direction = max(search_from, top["rate"] + step), step
                else:
                    start, direction = (
                        (round(top["rate"] * shrink) if shrink else top["rate"] - step),
                        -step,
                    )
                tries = plan["bare_search_tries"] if top is None else plan["search_tries"]
                best = fanout.search(
                    target, clients, n, start, direction, plan["search_s"], tries, shrink
                )
                for cell in target.cells:
                    if cell.get("search"):
                        _summary(target.kind + "*", cell)
                out["search"] = best
        finally:
            clients.close()
    return out


WIRE = "sev.live:Wire"


def _compare(
    kind: str,
    module: str,
    args: argparse.Namespace,
    tmp: Path,
    plan: dict[str, Any],
    skip: bool,
    search_from: float = 0,
    shrink: float | None = None,
) -> tuple[fanout.Target, dict[str, Any]]:
    """The plan's cells on a comparison server (bench/bare.py, bench/floor.py), fresh per
    group of viewers as SEV is: its target (with its cells) and its connections."""
    target = fanout.Target(kind, "", 0)
    if skip:
        return target, {"connect": [], "search": None}
    # The floor pays what SEV's websocket layer pays (Wire), and nothing else.
    server = Ceiling(tmp, module, ws=args.ws or (WIRE if kind == "floor" else None))
    server.start()

    def restart() -> int:
        server.restart()
        return pid_of(server)

    try:
        target = fanout.Target(kind, server.url, pid_of(server))
        return target, _fanout(
            target, plan, search_from=search_from, step=10, shrink=shrink, restart=restart
        )
    finally:
        server.stop()


def _resume(sev: BenchSev, seconds: float) -> dict[str, Any]:
    """200 viewers; while events flow at 20/s, 100 disconnect and come back with `after`."""
    target = fanout.Target("sev", sev.url, pid_of(sev))
    clients = NodeClients(sev.url, 200, cookie(), BROADCASTER.login)
    try:
        clients.read(timeout=60)
        clients.command("reset")
        result: dict[str, Any] = {}
        thread = threading.Thread(
            target=lambda: result.update(asyncio.run(fanout._stream(target, 20, seconds)))
        )
        thread.start()
        time.sleep(seconds / 4)
        clients.command("drop 100")
        time.sleep(seconds / 4)
        rejoined = clients.command("rejoin 100")
        thread.join()
        time.sleep(fanout.DRAIN_S)
        report = clients.command(f"report {result['first']} {result['last']}")
        return {
            "clients": 200,
            "reconnected": rejoined["rejoined"],
            "events": result["last"] - result["first"] + 1,
            "missed": report["lost"],
            "duplicated": report["duplicated"],
        }
    finally:
        clients.close()


def _run_processes(args: argparse.Namespace, tmp: Path, began: float) -> int:
    """The multi-process bench (bench/processes.py): 1 process, then N, same load."""
    from bench import processes

    print(
        f"machine: {os.cpu_count()} cores; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.viewers} viewers of "
        f"{args.broadcasters} streamers, {args.rate:g} webhooks/s for "
        f"{args.cell_s or 10:g} s",
        flush=True,
    )
    load = processes.Load(args.viewers, args.broadcasters, args.rate, args.cell_s or 10.0)
    result = processes.run(tmp, args.processes, load, lambda text: print(text, flush=True))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    alone, many = result["alone"], result["many"]
    headline = {
        "processes": args.processes,
        "frames_per_s_1": round(alone["frames_per_s"]),
        f"frames_per_s_{args.processes}": round(many["frames_per_s"]),
        "p99_ms_1": alone["p99_ms"],
        f"p99_ms_{args.processes}": many["p99_ms"],
        "frames_per_cpu_s_1": round(alone["frames_per_cpu_s"] or 0),
        f"frames_per_cpu_s_{args.processes}": round(many["frames_per_cpu_s"] or 0),
        "redis_decoded_per_process": [row["redis_decoded"] for row in many["per_process"]],
        "events": many["events"],
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(f"took {time.monotonic() - began:.0f} s", flush=True)
    print(json.dumps(headline), flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a run under two minutes")
    parser.add_argument("--out", type=Path, help="write every measured cell here as JSON")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="the scale plan: 1,000 and 10,000 viewers (memory, 1,000 x 10/50/80, 10,000 x 5)",
    )
    parser.add_argument("--skip-mongo", action="store_true", help="no MongoDB-wire ingest run")
    parser.add_argument("--skip-bare", action="store_true", help="no bare python-socketio server")
    parser.add_argument(
        "--skip-floor", action="store_true", help="--scale: no floor server (bench/floor.py)"
    )
    parser.add_argument(
        "--groups", help="viewer counts to run, comma-separated (default: the plan's)"
    )
    parser.add_argument(
        "--cell-s", type=float, help="seconds of events per cell (default: the plan's)"
    )
    parser.add_argument(
        "--ws",
        help="uvicorn's --ws for SEV and the bare server (default: uvicorn's auto, as deployed)",
    )
    parser.add_argument(
        "--ingest-only", action="store_true", help="only the ingest benchmark (both stores)"
    )
    parser.add_argument(
        "--mongodb-uri",
        help="a MongoDB server (and database) for the MongoDB ingest run instead of FerretDB",
    )
    parser.add_argument(
        "--processes",
        type=int,
        help="N SEV processes on FerretDB and Redis beside one alone (only this)",
    )
    parser.add_argument("--viewers", type=int, default=2000, help="--processes: viewers in all")
    parser.add_argument(
        "--broadcasters", type=int, default=8, help="--processes: streamers, viewers split evenly"
    )
    parser.add_argument(
        "--rate", type=float, default=400.0, help="--processes: webhooks per second in all"
    )
    args = parser.parse_args()
    plan = dict(SCALE if args.scale else QUICK if args.quick else FULL)
    if args.cell_s:
        plan["cell_s"] = args.cell_s
    if args.groups:
        plan["grid_clients"] = [int(n) for n in args.groups.split(",")]
    # 10,000 sockets on each side of loopback: this process's soft limit, which the servers and
    # the Node clients inherit (never the machine's).
    fd_limit = raise_fd_limit()
    began = time.monotonic()
    server_cpus, load_cpus = cores()
    # This process posts the events: it belongs with the load generators.
    os.sched_setaffinity(0, load_cpus)
    ensure_node_modules()
    tmp = Path(tempfile.mkdtemp(prefix="sev-bench-"))
    if args.processes:
        return _run_processes(args, tmp, began)
    print(
        f"machine: {os.cpu_count()} cores, SEV on {sorted(server_cpus)}, "
        f"load on {sorted(load_cpus)}; "
        f"Python {platform.python_version()}; {platform.platform()}; open files {fd_limit}; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )

    # What the server core can give right now: the machine may be shared.
    print(
        f"CPU share a busy loop gets on the server core: {core_share(server_cpus):.0%}", flush=True
    )
    mongo = None
    if not args.skip_mongo and not args.mongodb_uri and plan["ingest_s"]:
        try:
            from tests.support.services import MongoServer, ferretdb_path, is_executable

            if is_executable(ferretdb_path()):
                mongo = MongoServer()
                mongo.start()
        except Exception as error:
            print(f"no MongoDB-wire server: {error}", flush=True)
            mongo = None
    ingested: dict[str, Any] | None = None
    try:
        if plan["ingest_s"]:
            ingested = ingest.run(
                tmp,
                plan["ingest_s"],
                args.mongodb_uri or (mongo.uri + "sev_bench" if mongo else None),
                _log,
                mongo_pid=mongo.pid if mongo else None,
            )
    finally:
        if mongo is not None:
            mongo.close()
    ingest_figures = ingest.headline(ingested) if ingested is not None else {}
    if ingest_figures:
        print(ingest.describe(ingest_figures), flush=True)
    if args.ingest_only:
        if args.out:
            args.out.write_text(json.dumps({"headline": ingest_figures, "ingest": ingested}))
        print(json.dumps(ingest_figures), flush=True)
        return 0

    sev = BenchSev(tmp / "fanout", ws=args.ws)
    sev.start()

    def restart_sev() -> int:
        sev.restart()
        return pid_of(sev)

    try:
        sev_target = fanout.Target("sev", sev.url, pid_of(sev))
        sev_fanout = _fanout(sev_target, plan, search_from=60, step=10, restart=restart_sev)
        resumed = _resume(sev, 6.0 if args.quick or args.scale else 12.0)
        _log("resume", resumed)
    finally:
        sev.stop()

    # The bare server's usable rate at 1,000 viewers is a few per second: 40% steps.
    bare_target, bare_fanout = _compare(
        "bare", "bench.bare", args, tmp, plan, skip=args.skip_bare, search_from=20, shrink=0.6
    )
    floor_target, floor_fanout = _compare(
        "floor", "bench.floor", args, tmp, plan, skip=args.skip_floor or "floor_rates" not in plan
    )

    def cell(target: fanout.Target, n: int, rate: float) -> dict[str, Any] | None:
        return next(
            (
                c
                for c in target.cells
                if c["clients"] == n and c["rate"] == rate and not c.get("search")
            ),
            None,
        )

    def best_frames(target: fanout.Target, p99_limit: bool = False) -> float:
        # The target: "the most frames/s delivered to 1,000 clients with nothing lost".
        ok = [
            c["frames_per_s"]
            for c in target.cells
            if c["clients"] == 1000 and c["lost"] == 0 and (c["ok"] or not p99_limit)
        ]
        return round(max(ok), 0) if ok else 0.0

    def per_client(result: dict[str, Any], n: int = 1000) -> float | None:
        rows = [c for c in result["connect"] if c["clients"] == n]
        return round(rows[0]["rss_kb_per_client"], 1) if rows else None

    def figure(target: fanout.Target, n: int, rate: float, what: str) -> float | None:
        found = cell(target, n, rate)
        if found is None:
            return None
        if what == "frames_per_s":
            return float(round(found["frames_per_s"]))
        if what == "frames_per_cpu_s":
            return float(round(found["frames_per_cpu_s"] or 0))
        if what == "lost":
            return float(found["lost"])
        p99 = found["latency_ms"]["p99"]
        return round(float(p99), 1) if p99 is not None else None

    grid = [c for c in sev_target.cells if not c.get("search")]
    # The search's criteria (nothing lost, p99 <= 250 ms): a rate whose backlog only grows is not
    # delivered, even if nothing was lost yet when the cell ended.
    fan, bare_fan = best_frames(sev_target, True), best_frames(bare_target, True)
    x5, x50 = cell(sev_target, 1000, 5), cell(sev_target, 1000, 50)
    headline: dict[str, Any] = {}
    headline |= ingest_figures
    headline |= {
        "fanout_frames_per_s": fan,
        "bare_frames_per_s": bare_fan,
        "fanout_ratio": round(fan / bare_fan, 3) if bare_fan else None,
        "e2e_p99_ms_1000x5": x5["latency_ms"]["p99"] if x5 else None,
        "e2e_p99_ms_1000x50": x50["latency_ms"]["p99"] if x50 else None,
        "rss_kb_per_client": per_client(sev_fanout),
        "bare_rss_kb_per_client": per_client(bare_fanout),
        "lost": sum(c["lost"] for c in grid) + resumed["missed"],
        # Resume: an event published while a returning viewer's history is read arrives both
        # ways by design (the page drops the copy by seq), so only live duplicates count here.
        "duplicated": sum(c["duplicated"] for c in grid),
    }
    if args.scale:
        headline |= {
            "rss_kb_per_client_10000": per_client(sev_fanout, 10000),
            "bare_rss_kb_per_client_10000": per_client(bare_fanout, 10000),
            "e2e_p99_ms_1000x10": figure(sev_target, 1000, 10, "p99"),
            "bare_e2e_p99_ms_1000x10": figure(bare_target, 1000, 10, "p99"),
            "frames_per_s_1000x50": figure(sev_target, 1000, 50, "frames_per_s"),
            "frames_per_s_1000x80": figure(sev_target, 1000, 80, "frames_per_s"),
            "e2e_p99_ms_1000x80": figure(sev_target, 1000, 80, "p99"),
            "frames_per_s_10000x5": figure(sev_target, 10000, 5, "frames_per_s"),
            "frames_per_cpu_s_10000x5": figure(sev_target, 10000, 5, "frames_per_cpu_s"),
            "e2e_p99_ms_10000x5": figure(sev_target, 10000, 5, "p99"),
            "lost_10000x5": figure(sev_target, 10000, 5, "lost"),
            "bare_frames_per_s_10000x5": figure(bare_target, 10000, 5, "frames_per_s"),
            "bare_e2e_p99_ms_10000x5": figure(bare_target, 10000, 5, "p99"),
            "bare_lost_10000x5": figure(bare_target, 10000, 5, "lost"),
            "floor_e2e_p99_ms_1000x10": figure(floor_target, 1000, 10, "p99"),
            "floor_e2e_p99_ms_10000x5": figure(floor_target, 10000, 5, "p99"),
            "floor_frames_per_cpu_s_10000x5": figure(floor_target, 10000, 5, "frames_per_cpu_s"),
            # bench/floor.py's own clock: its p99 without the load generator's reading time.
            "floor_server_p99_ms_10000x5": (
                (cell(floor_target, 10000, 5) or {}).get("server_latency_ms", {}).get("p99")
            ),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "headline": headline,
                    "ingest": ingested,
                    "sev": {"cells": sev_target.cells, **sev_fanout},
                    "bare": {"cells": bare_target.cells, **bare_fanout},
                    "floor": {"cells": floor_target.cells, **floor_fanout},
                    "resume": resumed,
                    "seconds": time.monotonic() - began,
                },
                indent=1,
            )
        )
    print(
        "most frames/s to 1,000 viewers with nothing lost, whatever the p99: "
        f"SEV {best_frames(sev_target):.0f}, bare {best_frames(bare_target):.0f}; "
        f"resume: {json.dumps(resumed)}",
        flush=True,
    )
    print(f"took {time.monotonic() - began:.0f} s", flush=True)
    print(json.dumps(headline), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
