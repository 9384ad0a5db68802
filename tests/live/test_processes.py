"""Several SEV processes, nothing missed: three processes on one MongoDB-wire server
and one Redis; one broadcaster's webhooks posted round-robin to all three at a high rate; fifty
viewers spread over the processes, a third of them dropping and coming back at random. Each
viewer keeps the page's contract (static/feed.js `ResumePoint`): its resume point is its
contiguous mark, a hole still open after a moment is filled with `fill`, a reconnect watches
from the mark. Afterwards every viewer holds every stored seq once, and the store has no hole.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.servers import BROADCASTER, SECRET, cookie, prepare_store, sev_env
from bench.sioclient import SioClient
from sev.crypto import TokenCipher
from sev.store.mongo import MongoStore
from tests.support.factories import notification_body, signed_request
from tests.support.polling import eventually
from tests.support.processes import SevProcess
from tests.support.services import MongoServer, RedisServer, free_port
from tests.support.settings import TOKEN_KEY

EVENTS = 600
VIEWERS = 50
HOLE_GRACE_S = 0.5


class Viewer:
    """One viewer as the page behaves: events held by seq, the contiguous mark, fill, resume."""

    def __init__(self, urls: list[str], rng: random.Random) -> None:
        self.urls = urls
        self.rng = rng
        self.held: dict[int, str] = {}  # seq -> message id
        self.mark = 0
        self.client: SioClient | None = None
        self.reconnects = 0
        self.conflicts: list[int] = []

    def _hold(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            seq, event_id = int(event["seq"]), str(event["id"])
            if self.held.setdefault(seq, event_id) != event_id:
                self.conflicts.append(seq)
        while self.mark + 1 in self.held:
            self.mark += 1

    async def connect(self) -> None:
        self.client = await SioClient.open(self.rng.choice(self.urls), cookie())
        ack = await self.client.watch(BROADCASTER.login, after=self.mark)
        assert "error" not in ack, ack
        events = ack["events"]
        self._hold(events)
        if not ack.get("gap"):
            # The ack holds every event after the mark: nothing below its newest is missing.
            self.mark = max([self.mark, *(int(e["seq"]) for e in events)])
            self._hold([])

    async def drop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def fill_holes(self) -> None:
        """Take what arrived live, then fill every hole below the highest seq held."""
        client = self.client
        if client is None:
            return
        arrived, client.events = client.events, []
        self._hold(arrived)
        while self.held and self.mark < max(self.held):
            above = min(seq for seq in self.held if seq > self.mark)
            before = min(above, self.mark + 101)
            ack = await client.call(
                "fill", {"streamer": BROADCASTER.login, "after": self.mark, "before": before}
            )
            assert "error" not in ack, ack
            self._hold(ack["events"])
            # Neither store shows seq N+1 before N: the answer is all there is in between.
            self.mark = max(self.mark, before - 1)
            self._hold([])


@pytest.fixture
def three_sevs(
    tmp_path: Path, mongo_server: MongoServer, redis_server: RedisServer
) -> Iterator[list[SevProcess]]:
    uri = f"{mongo_server.uri}sev_lanes_{uuid.uuid4().hex[:12]}"
    processes = []
    for index in range(3):
        port = free_port()
        env = {**sev_env(tmp_path / str(index), port, uri), "REDIS_URL": redis_server.url}
        (tmp_path / str(index)).mkdir()
        processes.append(SevProcess(tmp_path / str(index), env, port=port))
    asyncio.run(prepare_store(processes[0].env))
    try:
        for process in processes:
            process.start()
        yield processes
    finally:
        for process in processes:
            process.stop()


async def _post_round_robin(urls: list[str], count: int) -> list[str]:
    """`count` webhooks, each to the next process, 12 in flight; as Twitch, a delivery is sent
    again until acknowledged. Returns the acknowledged message ids."""
    acknowledged: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)
    async with httpx.AsyncClient(timeout=10) as http:

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                body = notification_body(broadcaster_id=BROADCASTER.id)
                headers, raw = signed_request(body, secret=SECRET)
                for attempt in range(50):
                    url = urls[(index + attempt) % len(urls)]
                    try:
                        response = await http.post(
                            f"{url}/webhooks/eventsub", headers=headers, content=raw
                        )
                    except httpx.TransportError:
                        # A kept-alive connection the server closed, a timeout: Twitch sends
                        # the delivery again, and so does this.
                        await asyncio.sleep(0.05)
                        continue
                    if response.status_code == 204:
                        acknowledged.append(headers["Twitch-Eventsub-Message-Id"])
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("a webhook was never acknowledged")

        await asyncio.gather(*(worker() for _ in range(12)))
    return acknowledged


async def test_three_processes_one_broadcaster_every_viewer_holds_every_seq_once(
    three_sevs: list[SevProcess], mongo_server: MongoServer
) -> None:
    urls = [process.url for process in three_sevs]
    rng = random.Random(16)
    viewers = [Viewer(urls, random.Random(rng.random())) for _ in range(VIEWERS)]
    await asyncio.gather(*(viewer.connect() for viewer in viewers))
    restless = viewers[: VIEWERS // 3]
    posting = asyncio.create_task(_post_round_robin(urls, EVENTS))
    started = time.monotonic()

    async def come_and_go(viewer: Viewer) -> None:
        # Bounded: until the posting is done, and at most 60 s.
        while not posting.done() and time.monotonic() - started < 60:
            await asyncio.sleep(viewer.rng.uniform(0.1, 0.8))
            await viewer.fill_holes()
            await viewer.drop()
            await asyncio.sleep(viewer.rng.uniform(0.05, 0.3))
            await viewer.connect()
            viewer.reconnects += 1

    async def keep_filling(viewer: Viewer) -> None:
        while not posting.done() and time.monotonic() - started < 60:
            await asyncio.sleep(HOLE_GRACE_S)
            await viewer.fill_holes()

    try:
        await asyncio.gather(
            *(come_and_go(v) for v in restless),
            *(keep_filling(v) for v in viewers[len(restless) :]),
        )
        acknowledged = await asyncio.wait_for(posting, 90)
        assert len(acknowledged) == EVENTS

        store = MongoStore(three_sevs[0].env["MONGODB_URI"], TokenCipher(TOKEN_KEY))
        await store.open()
        try:
            stored = await store.events_after(BROADCASTER.id, 0, EVENTS + 10)
        finally:
            await store.close()
        # The store: every acknowledged event once, seqs 1..N with no hole.
        assert sorted(e.id for e in stored) == sorted(acknowledged)
        assert [e.seq for e in stored] == list(range(1, EVENTS + 1))
        by_seq = {e.seq: e.id for e in stored}

        async def everyone_holds_everything() -> bool:
            for viewer in viewers:
                await viewer.fill_holes()
            return all(len(v.held) == EVENTS for v in viewers)

        await eventually(everyone_holds_everything, timeout=30, what="every seq at every viewer")
        for viewer in viewers:
            assert viewer.conflicts == []
            assert viewer.held == by_seq, "a viewer holds another event under some seq"
            assert viewer.mark == EVENTS
        assert sum(v.reconnects for v in restless) >= len(restless)
    finally:
        for viewer in viewers:
            await viewer.drop()
