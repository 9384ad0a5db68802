"""Every viewer socket bounded, against a real SEV process (uvicorn, loopback): one call at a time
per socket, a per-user rate of calls, a byte budget per ack, Engine.IO sockets in no namespace
closed, and a cookie let in while the store was away checked on its first `watch`.

Bounded in count and time; the flood measures SEV's RSS and `/healthz` latency while it runs.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.servers import (
    BROADCASTER,
    SESSION_SECRET,
    TOKEN_KEY,
    VIEWER,
    cookie,
    prepare_store,
    rss_kb,
    sev_env,
    store_settings,
)
from bench.sioclient import Refused, SioClient
from sev.crypto import TokenCipher
from sev.live._lean.engine import NAMESPACE_TIMEOUT_S
from sev.live.viewers import (
    BUSY_ERROR,
    CALLS_PER_WINDOW,
    MAX_ACK_EVENT_BYTES,
    RATE_ERROR,
)
from sev.store import MAX_CATCH_UP, Broadcaster, Store, User, create_store
from sev.store.sqlite import SqliteStore
from tests.support.factories import make_event, session_cookie
from tests.support.polling import eventually
from tests.support.processes import SevProcess
from tests.support.services import MongoServer, free_port

# A streamer whose stored events are large: a full catch-up is several times the ack budget.
BIG = Broadcaster(id="8801", login="big_events", display_name="Big_Events")
BIG_EVENT_PAD = 40_000
# The flood's catch-up: MAX_CATCH_UP events of ~2 KB, so every answered watch is ~200 KB.
FLOOD_EVENT_PAD = 2_000


def _start(tmp: Path) -> SevProcess:
    port = free_port()
    sev = SevProcess(tmp, sev_env(tmp, port, None), port=port)
    asyncio.run(_seed(sev))
    sev.start()
    return sev


async def _seed(sev: SevProcess) -> None:
    await prepare_store(sev.env, [BIG])
    store = SqliteStore(sev.data_dir / "sev.sqlite3", TokenCipher(TOKEN_KEY))
    await store.open()
    try:
        await store.insert_events(
            [make_event(BROADCASTER.id, pad="f" * FLOOD_EVENT_PAD) for _ in range(MAX_CATCH_UP)]
        )
        await store.insert_events(
            [make_event(BIG.id, pad="b" * BIG_EVENT_PAD) for _ in range(MAX_CATCH_UP)]
        )
    finally:
        await store.close()


@pytest.fixture
def bounded_sev(tmp_path: Path) -> Iterator[SevProcess]:
    """SEV with the bench's streamer (100 events of ~2 KB), BIG (100 of ~40 KB) and a viewer."""
    process = _start(tmp_path)
    yield process
    process.stop()


def _pid(sev: SevProcess) -> int:
    assert sev.process is not None
    return sev.process.pid


class _Probe:
    """In a thread (so that the test's own event loop does not skew it): `/healthz` latency
    and SEV's RSS, sampled until stopped."""

    def __init__(self, sev: SevProcess) -> None:
        self.sev = sev
        self.latencies: list[float] = []
        self.statuses: set[int] = set()
        self.rss_kb: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.sev.url, timeout=60) as client:
            while not self._stop.is_set():
                self.rss_kb.append(rss_kb(_pid(self.sev)))
                started = time.monotonic()
                response = client.get("/healthz")
                self.latencies.append(time.monotonic() - started)
                self.statuses.add(response.status_code)
                self._stop.wait(0.1)

    def __enter__(self) -> _Probe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(90)


def _event_bytes(events: list[dict[str, Any]]) -> int:
    return sum(len(json.dumps(event)) for event in events)


async def test_pipelined_watch_flood_is_refused_beyond_one_call_per_socket_and_stays_bounded(
    bounded_sev: SevProcess,
) -> None:
    sockets = [await SioClient.open(bounded_sev.url, cookie()) for _ in range(4)]
    try:
        for warm in sockets:  # the code paths warm, each socket's first catch-up paid
            assert "error" not in await warm.watch(BROADCASTER.login, after=0)
        await asyncio.sleep(0.5)
        idle = rss_kb(_pid(bounded_sev))
        calls_per_socket = 500
        started = time.monotonic()
        with _Probe(bounded_sev) as probe:
            # Every call sent before any ack is read: 2,000 `watch` calls in flight at once.
            acks = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        client.watch(BROADCASTER.login, after=0, timeout=60)
                        for client in sockets
                        for _ in range(calls_per_socket)
                    )
                ),
                90,
            )
            elapsed = time.monotonic() - started
            await asyncio.sleep(0.3)  # one more sample after the last ack
        answered = [ack for ack in acks if "events" in ack]
        refused = [ack for ack in acks if "events" not in ack]
        peak = max(probe.rss_kb) - idle
        slowest = max(probe.latencies)
        print(  # noqa: T201 (the figures, for -s)
            f"flood: {len(acks)} calls in {elapsed:.1f} s, {len(answered)} answered, "
            f"RSS +{peak // 1024} MiB, /healthz max {slowest * 1000:.0f} ms"
        )
        assert all(
            ack.get("error") in (BUSY_ERROR, RATE_ERROR) and ack.get("retry") is True
            for ack in refused
        ), {ack.get("error") for ack in refused}
        # Each socket's first call runs; the rest find one running, or the user over the rate.
        assert 4 <= len(answered) <= CALLS_PER_WINDOW, len(answered)
        assert sum(ack.get("error") == BUSY_ERROR for ack in refused) >= len(acks) * 3 // 4
        assert peak < 64 * 1024, f"RSS grew {peak} KiB during the flood"
        assert slowest < 1.0, f"/healthz took {slowest * 1000:.0f} ms during the flood"
        assert probe.statuses == {200}, probe.statuses
        # The sockets still serve their pages.
        for client in sockets:
            assert (await client.watch(BROADCASTER.login, after=MAX_CATCH_UP))["events"] == []
    finally:
        for client in sockets:
            await client.close()


async def _page_watch(client: SioClient, deadline: float) -> dict[str, Any]:
    """`watch` as the page does: again after 1 s, 2 s, 4 s, ... while the ack says retry."""
    delay = 1.0
    while True:
        ack = await client.watch(BROADCASTER.login, after=MAX_CATCH_UP)
        if "error" not in ack or time.monotonic() > deadline:
            return ack
        assert ack["retry"] is True, ack
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10)


async def test_calls_over_the_users_rate_are_refused_and_pages_still_get_through(
    bounded_sev: SevProcess,
) -> None:
    sockets = [await SioClient.open(bounded_sev.url, cookie()) for _ in range(4)]
    try:

        async def one_by_one(client: SioClient) -> list[dict[str, Any]]:
            # An empty catch-up: cheap to answer, and still a store read.
            calls = CALLS_PER_WINDOW // 4 + 25
            return [await client.watch(BROADCASTER.login, after=MAX_CATCH_UP) for _ in range(calls)]

        started = time.monotonic()
        acks = [ack for acks in await asyncio.gather(*map(one_by_one, sockets)) for ack in acks]
        assert time.monotonic() - started < 10, "the calls took longer than one window"
        answered = [ack for ack in acks if "events" in ack]
        refused = [ack for ack in acks if "events" not in ack]
        assert len(answered) == CALLS_PER_WINDOW, len(answered)
        assert all(ack == {"error": RATE_ERROR, "retry": True} for ack in refused), refused[:3]
        # A page retrying with its back-off gets through once the window has moved on.
        ack = await _page_watch(sockets[0], time.monotonic() + 25)
        assert ack.get("events") == [], ack
    finally:
        for client in sockets:
            await client.close()
    # Then ten tabs of the user, each reconnecting three times in a row (as after a restart),
    # all watch at the first try.
    for _ in range(3):
        tabs = await asyncio.gather(*(SioClient.open(bounded_sev.url, cookie()) for _ in range(10)))
        try:
            acks = await asyncio.gather(*(tab.watch(BROADCASTER.login, after=90) for tab in tabs))
        finally:
            for tab in tabs:
                await tab.close()
        assert all("error" not in ack for ack in acks), acks
        assert all(len(ack["events"]) == MAX_CATCH_UP - 90 for ack in acks)


async def test_watch_and_fill_acks_hold_at_most_the_byte_budget_of_the_newest_events(
    bounded_sev: SevProcess,
) -> None:
    client = await SioClient.open(bounded_sev.url, cookie())
    try:
        first_paint = await client.watch(BIG.login)
        assert [e["seq"] for e in first_paint["events"]] == list(range(100, 90, -1))
        assert "gap" not in first_paint

        caught_up = await client.watch(BIG.login, after=0)
        seqs = [e["seq"] for e in caught_up["events"]]
        one = len(json.dumps(caught_up["events"][0]))
        assert caught_up.get("gap") is True
        # The newest, contiguous, and as many as fit.
        assert seqs == list(range(100, 100 - len(seqs), -1))
        assert _event_bytes(caught_up["events"]) <= MAX_ACK_EVENT_BYTES
        assert _event_bytes(caught_up["events"]) + one > MAX_ACK_EVENT_BYTES

        filled = await client.call("fill", {"streamer": BIG.login, "after": 0, "before": 101})
        assert filled.get("gap") is True
        assert [e["seq"] for e in filled["events"]] == seqs
        assert _event_bytes(filled["events"]) <= MAX_ACK_EVENT_BYTES

        # A fill that fits is whole, and says nothing of a gap.
        small = await client.call("fill", {"streamer": BIG.login, "after": 10, "before": 14})
        assert small == {"events": small["events"]}
        assert [e["seq"] for e in small["events"]] == [13, 12, 11]
    finally:
        await client.close()


# -- Engine.IO sockets that serve nobody -----------------------------------------------------


@asynccontextmanager
async def _engine_socket(sev: SevProcess, session: str | None) -> AsyncIterator[ClientConnection]:
    url = sev.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    headers = {"Cookie": f"sev_session={session}"} if session else {}
    ws = await connect(
        url, additional_headers=headers, compression=None, ping_interval=None, proxy=None
    )
    try:
        opened = await asyncio.wait_for(ws.recv(), 10)
        assert isinstance(opened, str) and opened.startswith("0"), opened
        yield ws
    finally:
        await ws.close()


async def _closed_after(ws: ClientConnection, limit: float) -> float | None:
    """Seconds until the server closes `ws` (answering its pings meanwhile), or None."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit):
            while True:
                message = await ws.recv()
                if message == "2":
                    await ws.send("3")
    except ConnectionClosed:
        return time.monotonic() - started
    except TimeoutError:
        return None


async def _namespace_answer(ws: ClientConnection, packet: str) -> str:
    await ws.send(packet)
    answer = await asyncio.wait_for(ws.recv(), 10)
    assert isinstance(answer, str)
    return answer


async def test_engine_io_sockets_in_no_namespace_are_closed_and_viewers_stay(
    bounded_sev: SevProcess,
) -> None:
    forged = session_cookie("not-the-session-secret-0123456789-abcdef", user_id=VIEWER.id)
    unknown = session_cookie(SESSION_SECRET, user_id="nobody-at-all")
    limit = NAMESPACE_TIMEOUT_S + 3

    async def never_connects() -> float | None:
        async with _engine_socket(bounded_sev, cookie()) as ws:
            return await _closed_after(ws, limit)

    async def refused(session: str | None) -> float | None:
        async with _engine_socket(bounded_sev, session) as ws:
            assert (await _namespace_answer(ws, "40")).startswith("44")
            return await _closed_after(ws, limit)

    async def leaves() -> float | None:
        async with _engine_socket(bounded_sev, cookie()) as ws:
            assert (await _namespace_answer(ws, "40")).startswith("40")
            await ws.send("41")
            return await _closed_after(ws, limit)

    async def viewer() -> float | None:
        async with _engine_socket(bounded_sev, cookie()) as ws:
            assert (await _namespace_answer(ws, "40")).startswith("40")
            return await _closed_after(ws, limit)

    cases = {
        "never connects a namespace": never_connects(),
        "refused without a cookie": refused(None),
        "refused with a forged cookie": refused(forged),
        "refused as an unknown user": refused(unknown),
        "left the namespace": leaves(),
        "a connected viewer": viewer(),
    }
    closed = dict(zip(cases, await asyncio.gather(*cases.values()), strict=True))
    assert closed.pop("a connected viewer") is None, "a connected viewer was closed"
    still_open = [case for case, after in closed.items() if after is None]
    assert not still_open, f"still open after {limit} s: {still_open}"
    assert all(after <= limit for after in closed.values() if after is not None), closed


# -- a cookie let in while the store was away ------------------------------------------------


@asynccontextmanager
async def _store_of(env: dict[str, str]) -> AsyncIterator[Store]:
    store = create_store(store_settings(env))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def mongo_sev(tmp_path: Path, mongo_server: MongoServer) -> AsyncIterator[SevProcess]:
    """SEV on FerretDB (which the test stops and starts), Twitch nowhere."""
    port = free_port()
    uri = f"{mongo_server.uri}sev_bounds_{uuid.uuid4().hex[:12]}"
    sev = SevProcess(tmp_path, sev_env(tmp_path, port, uri), port=port)
    await prepare_store(sev.env)
    async with _store_of(sev.env) as store:
        await store.save_user(User(id="still-in", login="still_in", display_name="Still_In"))
    await asyncio.to_thread(sev.start)
    try:
        yield sev
    finally:
        await asyncio.to_thread(sev.stop)
        if not mongo_server.running:
            await asyncio.to_thread(mongo_server.start)


async def _watch_once_the_store_is_back(client: SioClient) -> dict[str, Any]:
    """The page's retries: `watch` again while the answer says the store is away."""
    deadline = time.monotonic() + 30
    while True:
        ack = await client.watch(BROADCASTER.login, timeout=15)
        if not (ack.get("retry") and "unavailable" in str(ack.get("error"))):
            return ack
        assert time.monotonic() < deadline, "the store never came back"
        await asyncio.sleep(0.5)


async def test_a_logged_out_cookie_let_in_during_a_store_outage_gets_no_watch(
    mongo_sev: SevProcess, mongo_server: MongoServer
) -> None:
    secret = mongo_sev.env["SEV_SESSION_SECRET"]
    logged_out = session_cookie(secret, user_id=VIEWER.id, csrf="t0ken")
    current = session_cookie(secret, user_id="still-in")
    async with httpx.AsyncClient(
        base_url=mongo_sev.url, cookies={"sev_session": logged_out}, timeout=20
    ) as browser:
        response = await browser.post("/logout", data={"csrf_token": "t0ken"})
        assert response.status_code == 303, response.text[:300]
    with pytest.raises(Refused):  # with the store up, the old cookie is refused at connect
        await SioClient.open(mongo_sev.url, logged_out)

    await asyncio.to_thread(mongo_server.stop)
    sockets: list[SioClient] = []
    try:
        # The store cannot tell: both are let in (a refusal would end a real page's session).
        stale = await SioClient.open(mongo_sev.url, logged_out, timeout=15)
        sockets.append(stale)
        fine = await SioClient.open(mongo_sev.url, current, timeout=15)
        sockets.append(fine)
        down = await stale.watch(BROADCASTER.login, timeout=15)
        assert down.get("retry") is True and "events" not in down, down
    finally:
        await asyncio.to_thread(mongo_server.start)

    try:
        ack = await _watch_once_the_store_is_back(stale)
        assert "events" not in ack and ack.get("error"), ack
        assert not ack.get("retry"), ack
        # The page's `session_ended` handler: it says why and stops reconnecting.
        await eventually(lambda: stale.notices, timeout=5, what="the session_ended notice")
        assert stale.notices == [[{"reason": ack["error"]}]], stale.notices
        await asyncio.wait_for(stale.closed.wait(), 10)
        # The genuine session, let in the same way, watches as usual once the store is back.
        ack = await _watch_once_the_store_is_back(fine)
        assert ack.get("events") == [], ack
    finally:
        for client in sockets:
            with suppress(Exception):
                await client.close()
