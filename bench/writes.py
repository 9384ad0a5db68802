"""`python -m bench.writes [--sockets N] [--rounds R]`: what one small write per socket costs the
kernel, before any server (docs/PERFORMANCE.md, "The floor").

A uvloop process pinned to the server core accepts N loopback TCP connections from a reader
process on the load core, then writes one 504-byte websocket frame to each in a tight loop,
`--rounds` times, 0.2 s apart, after one round not counted: with uvloop's `transport.write`
(what SEV and bench/floor.py call), then with `os.write` on each socket's file descriptor. The
reader reads every socket with uvloop (as the Node viewers do: asleep in epoll until data
comes). Printed: the median and best time for the N writes and the median per write.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import uvloop

from bench.servers import cores, raise_fd_limit

FRAME = b"\x81\x7e\x01\xf4" + b"x" * 500  # an unmasked 500-byte text frame, as a server sends


class _Sink(asyncio.Protocol):
    def data_received(self, data: bytes) -> None:
        pass


def _reader(port: int, n: int, cpus: set[int]) -> None:
    os.sched_setaffinity(0, cpus)

    async def connect() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(n):
            await loop.create_connection(_Sink, "127.0.0.1", port)
        await asyncio.sleep(3600)

    uvloop.run(connect())


async def _measure(n: int, rounds: int) -> list[str]:
    server_cpus, load_cpus = cores()
    os.sched_setaffinity(0, server_cpus)
    loop = asyncio.get_running_loop()
    # uvloop's transports are not asyncio.Transport subclasses; they have its methods.
    transports: list[Any] = []

    class Accepted(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transports.append(transport)

    server = await loop.create_server(Accepted, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the reader process
        try:
            _reader(port, n, load_cpus)
        finally:
            os._exit(0)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while len(transports) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if len(transports) < n:
            raise RuntimeError(f"only {len(transports)} of {n} connections within 120 s")
        await asyncio.sleep(1.0)
        fds = [t.get_extra_info("socket").fileno() for t in transports]

        def by_transport() -> None:
            for transport in transports:
                transport.write(FRAME)

        def by_fd() -> None:
            for fd in fds:
                os.write(fd, FRAME)

        ways: list[tuple[str, Callable[[], None]]] = [
            ("uvloop transport.write", by_transport),
            ("os.write", by_fd),
        ]
        for label, write_all in ways:
            write_all()  # a first round, not counted: the connections' first data
            await asyncio.sleep(0.2)
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                write_all()
                times.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.2)
            median = statistics.median(times)
            lines.append(
                f"{label}: {n} writes of {len(FRAME)} bytes: median {median:.1f} ms, "
                f"best {min(times):.1f} ms, {1000 * median / n:.2f} us per write"
            )
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        server.close()
    return lines


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    raise_fd_limit()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for line in uvloop.run(_measure(args.sockets, args.rounds)):
        print(line, flush=True)


if __name__ == "__main__":
    main()
