"""Hostile load against a real SEV process (uvicorn, loopback): forged floods, duplicate storms,
a viewer that never reads, the store going away, SIGKILL, unauthenticated socket floods.

Bounded in count and time; figures for speed live in the benchmarks (bench/, docs/PERFORMANCE.md).
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bench.servers import (
    BROADCASTER,
    SECRET,
    TOKEN_KEY,
    VIEWER,
    cookie,
    prepare_store,
    rss_kb,
    sev_env,
)
from bench.servers import (
    SESSION_SECRET as BENCH_SESSION_SECRET,
)
from bench.sioclient import Refused, SioClient
from sev.crypto import TokenCipher
from sev.events import Event
from sev.store.sqlite import SqliteStore
from tests.support.factories import notification_body, session_cookie, signed_request
from tests.support.polling import eventually
from tests.support.processes import SevProcess, SimulatorProcess
from tests.support.services import MongoServer, free_port

FORGED_SECRET = "not-the-eventsub-secret-0123456789"


def _start(tmp: Path, port: int | None = None) -> SevProcess:
    port = port or free_port()
    sev = SevProcess(tmp, sev_env(tmp, port, None), port=port)
    asyncio.run(prepare_store(sev.env))
    sev.start()
    return sev


@pytest.fixture
def loaded_sev(tmp_path: Path) -> Iterator[SevProcess]:
    """SEV as the benchmark runs it, its store holding a streamer and a viewer."""
    process = _start(tmp_path)
    yield process
    process.stop()


def _pid(sev: SevProcess) -> int:
    assert sev.process is not None
    return sev.process.pid


async def _stored(sev: SevProcess) -> list[Event]:
    store = SqliteStore(sev.data_dir / "sev.sqlite3", TokenCipher(TOKEN_KEY))
    await store.open()
    try:
        return await store.events_after(BROADCASTER.id, 0, 100_000)
    finally:
        await store.close()


async def _post_all(
    url: str, requests: list[tuple[dict[str, str], bytes]], concurrency: int = 32
) -> list[int]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def post(headers: dict[str, str], body: bytes) -> int:
            async with semaphore:
                response = await client.post("/webhooks/eventsub", headers=headers, content=body)
                return response.status_code

        return list(await asyncio.gather(*(post(h, b) for h, b in requests)))


def _forged(i: int) -> tuple[dict[str, str], bytes]:
    body = notification_body(broadcaster_id=BROADCASTER.id)
    kind = i % 4
    if kind == 0:
        return signed_request(body, secret=FORGED_SECRET)
    headers, raw = signed_request(body, secret=SECRET)
    if kind == 1:  # a valid signature over another body
        return headers, raw.replace(b"cool_user", b"evil_user")
    if kind == 2:  # a signature of the right shape, made up
        headers["Twitch-Eventsub-Message-Signature"] = "sha256=" + "0" * 64
        return headers, raw
    del headers["Twitch-Eventsub-Message-Signature"]
    return headers, raw


async def _watcher(sev: SevProcess, after: int | None = None) -> SioClient:
    client = await SioClient.open(sev.url, cookie())
    ack = await client.watch(BROADCASTER.login, after=after)
    assert "error" not in ack, ack
    client.events.extend(reversed(ack["events"]))
    return client


async def test_forged_signatures_are_refused_and_every_valid_one_stored_once(
    loaded_sev: SevProcess,
) -> None:
    valid: list[str] = []
    requests: list[tuple[dict[str, str], bytes]] = []
    for i in range(2500):
        if i % 5 == 0:
            headers, raw = signed_request(
                notification_body(broadcaster_id=BROADCASTER.id), secret=SECRET
            )
            valid.append(headers["Twitch-Eventsub-Message-Id"])
            requests.append((headers, raw))
        else:
            requests.append(_forged(i))
    assert len(valid) == 500

    statuses = await _post_all(loaded_sev.url, requests, concurrency=8)

    for i, status in enumerate(statuses):
        assert status == (204 if i % 5 == 0 else 403), (i, status)
    stored = await _stored(loaded_sev)
    assert sorted(e.id for e in stored) == sorted(valid)
    assert [e.seq for e in stored] == list(range(1, 501))
    assert httpx.get(f"{loaded_sev.url}/healthz", timeout=5).status_code == 200


async def test_one_message_id_delivered_500_times_at_once_is_one_event_one_publish(
    loaded_sev: SevProcess,
) -> None:
    viewer = await _watcher(loaded_sev)
    try:
        request = signed_request(notification_body(broadcaster_id=BROADCASTER.id), secret=SECRET)
        statuses = await _post_all(loaded_sev.url, [request] * 500, concurrency=50)
        assert set(statuses) == {204}
        await asyncio.sleep(1.0)
        assert [e["id"] for e in viewer.events] == [request[0]["Twitch-Eventsub-Message-Id"]]
        assert len(await _stored(loaded_sev)) == 1
    finally:
        await viewer.close()


async def _stuck_viewer(sev: SevProcess) -> SioClient:
    # A tiny receive window, and nobody reading once it watches: SEV's writes back up.
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", sev.port))
    raw.setblocking(False)
    client = await SioClient.open(sev.url, cookie(), sock=raw, max_queue=1, close_timeout=1)
    await client.watch(BROADCASTER.login)
    assert client._reader is not None
    client._reader.cancel()
    return client


def _latencies_ms(viewer: SioClient) -> list[float]:
    return sorted(
        1000 * received - event["data"]["sent"]
        for event, received in zip(viewer.events, viewer.received_at, strict=True)
    )


async def test_viewer_that_never_reads_is_disconnected_without_delaying_the_others(
    loaded_sev: SevProcess,
) -> None:
    readers = [await _watcher(loaded_sev) for _ in range(20)]
    stuck = await _stuck_viewer(loaded_sev)
    rss_before = rss_kb(_pid(loaded_sev))
    pad = "x" * 65536
    try:
        async with httpx.AsyncClient(base_url=loaded_sev.url, timeout=30) as client:
            posted = 0
            started = time.monotonic()
            # 50 events/s of 64 KiB until SEV gives up on the stuck viewer (bounded: 40 s).
            while (
                "disconnecting viewer" not in loaded_sev.logs() and time.monotonic() - started < 40
            ):
                body = notification_body(
                    broadcaster_id=BROADCASTER.id, sent=time.time() * 1000, pad=pad
                )
                headers, raw = signed_request(body, secret=SECRET)
                response = await client.post("/webhooks/eventsub", headers=headers, content=raw)
                assert response.status_code == 204
                posted += 1
                await asyncio.sleep(max(0.0, started + posted / 50 - time.monotonic()))
        assert "disconnecting viewer" in loaded_sev.logs(), (
            "the stuck viewer was never disconnected"
        )
        await eventually(
            lambda: all(len(r.events) == posted for r in readers),
            timeout=20,
            what="the readers' events",
        )
        for reader in readers:
            assert [e["seq"] for e in reader.events] == list(range(1, posted + 1))
        everyone = sorted(ms for reader in readers for ms in _latencies_ms(reader))
        p99 = everyone[int(0.99 * (len(everyone) - 1))]
        # The latency target is 100 ms at 1,000 viewers x 50/s on an idle core (PERFORMANCE.md);
        # the suite shares the machine, so this bound is looser.
        assert p99 < 500, f"p99 {p99:.0f} ms for the viewers that read"
        # Memory stayed bounded: the stuck viewer's queue was dropped with it.
        assert rss_kb(_pid(loaded_sev)) - rss_before < 64 * 1024
    finally:
        for reader in [*readers, stuck]:
            await reader.close()


async def test_unauthenticated_socket_flood_is_refused_and_memory_returns_to_idle(
    loaded_sev: SevProcess,
) -> None:
    forged_cookie = session_cookie("not-the-session-secret-0123456789-abcdef", user_id="1")

    async def attempt(i: int) -> bool:
        try:
            client = await SioClient.open(loaded_sev.url, forged_cookie if i % 2 else None)
        except Refused:
            return True
        await client.close()
        return False

    for i in range(50):  # warm the code paths before measuring
        assert await attempt(i)
    await asyncio.sleep(0.5)
    idle = rss_kb(_pid(loaded_sev))
    refused = []
    for batch in range(10):
        refused += await asyncio.gather(*(attempt(batch * 100 + i) for i in range(100)))
    assert refused == [True] * 1000
    await asyncio.sleep(1.0)
    # Nothing is kept per refused connection but engine.io's ping timer, which holds its socket
    # for one ping interval (25 s, ~17 KiB each); the allocator keeps the high-water mark.
    grown = rss_kb(_pid(loaded_sev)) - idle
    assert grown < 40 * 1024, f"RSS grew {grown} KiB after 1,000 refused connections"
    viewer = await _watcher(loaded_sev)  # still serving
    await viewer.close()


async def test_sigkill_mid_stream_loses_no_acknowledged_event_and_viewers_resume(
    tmp_path: Path,
) -> None:
    sev = await asyncio.to_thread(_start, tmp_path)
    acknowledged: list[str] = []
    viewer = await _watcher(sev)
    resumed: SioClient | None = None
    try:
        async with httpx.AsyncClient(base_url=sev.url, timeout=5) as client:

            async def deliver(headers: dict[str, str], raw: bytes) -> None:
                # As Twitch does: the same message again until it is acknowledged.
                for _ in range(200):
                    try:
                        response = await client.post(
                            "/webhooks/eventsub", headers=headers, content=raw
                        )
                        if response.status_code == 204:
                            return
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
                raise AssertionError("a delivery was never acknowledged")

            async def stream(count: int) -> None:
                for _ in range(count):
                    body = notification_body(broadcaster_id=BROADCASTER.id)
                    headers, raw = signed_request(body, secret=SECRET)
                    await deliver(headers, raw)
                    acknowledged.append(headers["Twitch-Eventsub-Message-Id"])
                    await asyncio.sleep(0.01)

            streaming = asyncio.create_task(stream(250))
            await eventually(
                lambda: len(acknowledged) >= 100, timeout=30, what="100 acknowledged events"
            )
            sev.kill()
            await viewer.closed.wait()
            await asyncio.to_thread(sev.start)
            # The page reconnects at once with the last seq it saw.
            seen = max((e["seq"] for e in viewer.events), default=0)
            resumed = await _watcher(sev, after=seen)
            await asyncio.wait_for(streaming, 60)
        stored = await _stored(sev)
        assert sorted(e.id for e in stored) == sorted(acknowledged)
        assert [e.seq for e in stored] == list(range(1, 251))
        await eventually(
            lambda: (
                resumed is not None and len(resumed.events) > 0 and resumed.events[-1]["seq"] >= 250
            ),
            timeout=10,
            what="the resumed viewer's events",
        )
        seqs = {e["seq"] for e in viewer.events} | {e["seq"] for e in resumed.events}
        assert seqs == set(range(1, 251)), "the viewer has a gap"
    finally:
        for socket_client in (viewer, resumed):
            if socket_client is not None:
                await socket_client.close()
        await asyncio.to_thread(sev.stop)


# -- the store going away, with the simulated Twitch delivering -----------------------------


@pytest.fixture
async def mongo_sev(
    tmp_path: Path, simulator: SimulatorProcess, mongo_server: MongoServer
) -> AsyncIterator[tuple[SevProcess, str]]:
    uri = f"{mongo_server.uri}sev_hostile_{uuid.uuid4().hex[:12]}"
    sev = SevProcess.against(simulator, tmp_path, env={"MONGODB_URI": uri})
    accounts = httpx.get(f"{simulator.url}/control/accounts", timeout=10).json()["data"]
    streamer = str(accounts[0]["login"])
    await prepare_store(sev.env)
    await asyncio.to_thread(sev.start)
    try:
        yield sev, streamer
    finally:
        sev.stop()


async def test_store_down_for_10_s_answers_503_then_stores_every_event_exactly_once(
    mongo_sev: tuple[SevProcess, str], simulator: SimulatorProcess, mongo_server: MongoServer
) -> None:
    sev, streamer = mongo_sev
    user_cookie = session_cookie(sev.env["SEV_SESSION_SECRET"], user_id=VIEWER.id, csrf="t0ken")
    async with httpx.AsyncClient(
        base_url=sev.url, cookies={"sev_session": user_cookie}, timeout=20
    ) as client:
        response = await client.post(
            "/favorite", data={"streamer": streamer, "csrf_token": "t0ken"}
        )
        assert response.status_code == 303, response.text[:300]

        def online() -> bool:
            return any(
                s["type"] == "stream.online" and s["status"] == "enabled"
                for s in simulator.subscriptions()
            )

        await eventually(online, timeout=20, what="stream.online enabled at the simulated Twitch")
        viewer = await SioClient.open(sev.url, user_cookie)
        ack = await viewer.watch(streamer)
        assert "error" not in ack, ack
        sent: list[str] = []
        try:
            for i in range(60):  # 15 s at 4 events/s; the store is away from 3 s to 13 s
                if i == 12:
                    await asyncio.to_thread(mongo_server.stop)
                    down_at = time.monotonic()
                if i == 52:
                    assert time.monotonic() - down_at >= 9.5
                    await asyncio.to_thread(mongo_server.start)
                sent += await asyncio.to_thread(simulator.trigger, "stream.online", streamer)
                await asyncio.sleep(0.25)

            async def stored_ids() -> list[str]:
                response = await client.get(
                    f"/api/streamers/{streamer}/events", params={"limit": 100}
                )
                return [e["id"] for e in response.json()["events"]] if response.is_success else []

            deadline = time.monotonic() + 60
            ids: list[str] = []
            while time.monotonic() < deadline:
                ids = await stored_ids()
                if set(sent) <= set(ids):
                    break
                await asyncio.sleep(0.5)
            assert sorted(ids) == sorted(sent), "not every event was stored exactly once"
            await eventually(
                lambda: len(viewer.events) >= len(sent), timeout=10, what="live events"
            )
            assert sorted(e["id"] for e in viewer.events) == sorted(sent)
            attempts = httpx.get(f"{simulator.url}/control/deliveries", timeout=10).json()["data"]
            assert any(a["status_code"] == 503 for a in attempts), "no webhook was answered 503"
        finally:
            await viewer.close()
            if not mongo_server.running:
                mongo_server.start()


# -- what a stranger sees of the process ----------------------------------------------------


async def test_strangers_get_sevs_pages_not_the_frameworks(loaded_sev: SevProcess) -> None:
    async with httpx.AsyncClient(base_url=loaded_sev.url, timeout=10) as stranger:
        # No generated API description.
        openapi = await stranger.get("/openapi.json")
        assert openapi.status_code == 404
        assert openapi.headers["content-type"].startswith("text/html")
        # Unknown routes: SEV's own page, not a framework's JSON.
        unknown = await stranger.get("/wp-admin/setup.php")
        assert unknown.status_code == 404
        assert "There is no page at this address" in unknown.text
        assert "detail" not in unknown.text
        api = await stranger.get("/api/nothing-here")
        assert (api.status_code, api.json()) == (404, {"error": "Not Found"})
        # A form field past its limit: SEV's page with a way back, not a validation dump.
        stranger.cookies.set(
            "sev_session", session_cookie(BENCH_SESSION_SECRET, user_id=VIEWER.id, csrf="c")
        )
        too_long = await stranger.post("/favorite", data={"streamer": "x" * 300, "csrf_token": "c"})
        assert too_long.status_code == 422
        assert "That request was not valid" in too_long.text
        assert "string_too_long" not in too_long.text
        health = (await stranger.get("/healthz")).json()
        assert set(health) == {"status", "store", "demo", "eventsub"}
    # The embedded store is readable by SEV's user only.
    assert (loaded_sev.data_dir / "sev.sqlite3").stat().st_mode & 0o777 == 0o600


# -- the demo's simulated Twitch, as a stranger reaches it ------------------------------------


@pytest.fixture
def demo_sev(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SevProcess]:
    """SEV in demo mode (no Twitch credentials) on loopback; `SEV_DEMO=1` when parametrized."""
    env = {"SEV_DEMO": "1"} if getattr(request, "param", False) else {}
    process = SevProcess(tmp_path, env)
    process.start()
    yield process
    process.stop()


async def test_the_demos_simulator_obeys_only_this_machine_and_posts_only_to_sev(
    demo_sev: SevProcess,
) -> None:
    twitch = f"{demo_sev.url}/_twitch"
    async with httpx.AsyncClient(timeout=10) as stranger:
        relayed = await stranger.post(
            f"{twitch}/control/trigger",
            json={"type": "stream.online", "broadcaster": "pixelpaladin"},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        assert relayed.status_code == 403
        # Anyone may get the demo app's token (its secret is in the README): it still cannot
        # make the simulator POST anywhere but SEV's own webhook.
        token = (
            await stranger.post(
                f"{twitch}/oauth2/token",
                data={
                    "client_id": "sevdemo0simulated0client000001",
                    "client_secret": "sevdemo0secret0only0valid0here",
                    "grant_type": "client_credentials",
                },
            )
        ).json()["access_token"]
        scan = await stranger.post(
            f"{twitch}/helix/eventsub/subscriptions",
            headers={
                "Authorization": f"Bearer {token}",
                "Client-Id": "sevdemo0simulated0client000001",
            },
            json={
                "type": "stream.online",
                "version": "1",
                "condition": {"broadcaster_user_id": "41000001"},
                "transport": {
                    "method": "webhook",
                    "callback": f"http://127.0.0.1:{free_port()}/anything",
                    "secret": "s3cret-s3cret",
                },
            },
        )
        assert scan.status_code == 400
        # From this machine, the remote still works (sev trigger uses it).
        local = await stranger.get(f"{twitch}/control/accounts")
        assert local.status_code == 200


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("rebound.example", 403),
        ("rebound.example:8000", 403),
        ("127.0.0.1.nip.example", 403),
        ("", 403),
        ("localhost", 200),
        ("[::1]:8000", 200),
        ("demo.localhost", 200),
    ],
)
async def test_the_demos_control_answers_only_its_own_names(
    demo_sev: SevProcess, host: str, status: int
) -> None:
    """DNS rebinding: a stranger's page whose name resolves to 127.0.0.1 reaches a local demo
    from the viewer's own browser, under the stranger's name in the Host header."""
    async with httpx.AsyncClient(base_url=f"{demo_sev.url}/_twitch", timeout=10) as browser:
        read = await browser.get("/control/subscriptions", headers={"Host": host})
        assert read.status_code == status
        trigger = await browser.post(
            "/control/trigger",
            json={"type": "stream.online", "broadcaster": "pixelpaladin"},
            headers={"Host": host},
        )
        assert trigger.status_code == status


@pytest.mark.parametrize("demo_sev", [True], indirect=True)
async def test_a_public_demo_has_no_remote_control(demo_sev: SevProcess) -> None:
    async with httpx.AsyncClient(base_url=f"{demo_sev.url}/_twitch", timeout=10) as anyone:
        assert (await anyone.get("/control/accounts")).status_code == 403
        faults = await anyone.post("/control/faults", json={"bad_signature": True})
        assert faults.status_code == 403
