"""SEV processes sharing Socket.IO rooms through Redis (sev/live/fanout.py), and the Procfile.

Real services only: a redis-server and the MongoDB-wire server (fixtures), two SEV processes
(`uvicorn sev.app:app`) configured as for real Twitch with Twitch at a loopback port where nothing
listens, and python-socketio's own client over websocket with a session cookie.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from redis.asyncio import Redis
from socketio.async_pubsub_manager import AsyncPubSubManager

from sev.crypto import TokenCipher
from sev.live.fanout import PUBLISH_TIMEOUT_S, RedisFanout, redacted
from sev.live.rooms import RoomManager
from sev.live.server import room_of
from sev.store import Broadcaster, User
from sev.store.mongo import MongoStore
from sev.web.auth import LOGGED_OUT_ELSEWHERE
from tests.support.factories import notification_body, session_cookie, signed_request
from tests.support.polling import eventually
from tests.support.processes import ROOT, SevProcess, _clean_env
from tests.support.services import MongoServer, RedisServer, free_port
from tests.support.settings import SESSION_SECRET, TOKEN_KEY, real_twitch_env
from tests.support.sockets import is_refused, page_socket

BROADCASTER = Broadcaster(id="1337", login="cooler_user", display_name="Cooler_User")
VIEWER = User(id="4242", login="viewer", display_name="Viewer", favorite_id=BROADCASTER.id)
OUTAGE_LOST = "Redis fan-out lost"
OUTAGE_BACK = "Redis fan-out back"


def _sev_env(mongodb_uri: str, redis_url: str) -> dict[str, str]:
    """As for real Twitch, with Twitch at a loopback port where nothing listens."""
    return {**real_twitch_env(), "MONGODB_URI": mongodb_uri, "REDIS_URL": redis_url}


@dataclass
class Cluster:
    first: SevProcess
    second: SevProcess
    mongodb_uri: str
    redis: RedisServer

    @asynccontextmanager
    async def store(self) -> AsyncIterator[MongoStore]:
        store = MongoStore(self.mongodb_uri, TokenCipher(TOKEN_KEY))
        await store.open()
        try:
            yield store
        finally:
            await store.close()


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, mongo_server: MongoServer, redis_server: RedisServer
) -> Iterator[Cluster]:
    """Two SEV processes sharing one store and one Redis; the broadcaster and a viewer seeded."""
    tmp = tmp_path_factory.mktemp("fanout")
    uri = f"{mongo_server.uri.rstrip('/')}/sev_fanout_{uuid.uuid4().hex[:12]}"
    processes = [SevProcess(tmp, _sev_env(uri, redis_server.url)) for _ in range(2)]
    cluster = Cluster(processes[0], processes[1], uri, redis_server)

    async def seed() -> None:
        async with cluster.store() as store:
            await store.save_broadcaster(BROADCASTER)
            await store.save_user(VIEWER)

    asyncio.run(seed())
    try:
        for process in processes:
            process.start()
        yield cluster
    finally:
        for process in processes:
            process.stop()


@dataclass
class Viewer:
    """A browser's socket: python-socketio's client, websocket only, with a session cookie."""

    client: socketio.AsyncClient
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, message_ids: set[str], timeout: float) -> set[str]:
        """Wait until every id has arrived (or the timeout); return the ids still missing."""
        deadline = time.monotonic() + timeout
        while missing := message_ids - self.events.keys():
            left = deadline - time.monotonic()
            if left <= 0:
                return missing
            self.arrived.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)
        return set()


@asynccontextmanager
async def viewer_of(
    process: SevProcess, broadcaster: Broadcaster = BROADCASTER
) -> AsyncIterator[Viewer]:
    """A connected socket watching `broadcaster` on `process`."""
    client = socketio.AsyncClient(reconnection=False)
    viewer = Viewer(client)

    async def on_event(event: dict[str, Any]) -> None:
        viewer.events[event["id"]] = event
        viewer.arrived.set()

    client.on("event", on_event)
    cookie = session_cookie(SESSION_SECRET, user_id=VIEWER.id)
    await client.connect(
        process.url,
        headers={"Cookie": f"sev_session={cookie}"},
        transports=["websocket"],
        socketio_path="socket.io",
        wait_timeout=10,
    )
    try:
        ack = await client.call("watch", {"streamer": broadcaster.login, "after": None}, timeout=10)
        assert ack["streamer"]["id"] == broadcaster.id, ack
        yield viewer
    finally:
        await client.disconnect()


async def post_follow(
    http: httpx.AsyncClient, process: SevProcess, broadcaster: Broadcaster = BROADCASTER
) -> tuple[str, int, float]:
    """POST one signed channel.follow to `process`: (message id, status, seconds taken)."""
    message_id = str(uuid.uuid4())
    headers, body = signed_request(
        notification_body(broadcaster_id=broadcaster.id), message_id=message_id
    )
    started = time.monotonic()
    response = await http.post(f"{process.url}/webhooks/eventsub", headers=headers, content=body)
    return message_id, response.status_code, time.monotonic() - started


async def test_webhook_reaches_a_viewer_on_another_process(cluster: Cluster) -> None:
    async with (
        viewer_of(cluster.first) as local,
        viewer_of(cluster.second) as remote,
        httpx.AsyncClient(timeout=10) as http,
    ):
        message_id, status, _ = await post_follow(http, cluster.first)
        assert status == 204
        assert await remote.wait_for({message_id}, timeout=10) == set()
        assert await local.wait_for({message_id}, timeout=10) == set()
        event = remote.events[message_id]
        assert event["broadcaster"]["id"] == BROADCASTER.id
        assert event["type"] == "channel.follow"


async def test_only_a_process_with_viewers_of_a_broadcaster_subscribes_to_its_events(
    cluster: Cluster,
) -> None:
    # A broadcaster of this test alone: no other test's viewers linger in its room.
    quiet = Broadcaster(id="7001", login="quiet_one", display_name="Quiet_One")
    async with cluster.store() as store:
        await store.save_broadcaster(quiet)
    channel = f"socketio:{room_of(quiet.id)}"
    async with (
        Redis.from_url(cluster.redis.url) as redis,
        httpx.AsyncClient(timeout=10) as http,
    ):
        assert await numsub(redis, channel) == 0
        async with viewer_of(cluster.second, quiet) as remote:
            # The second process alone; the first publishes there without receiving it back.
            assert await numsub(redis, channel) == 1
            message_id, status, _ = await post_follow(http, cluster.first, quiet)
            assert status == 204
            assert await remote.wait_for({message_id}, timeout=10) == set()


async def test_logout_on_one_process_disconnects_the_users_pages_on_every_process(
    cluster: Cluster,
) -> None:
    # A user of this test alone: logging out moves their session epoch for good.
    leaver = User(id=str(uuid.uuid4().int % 10**9), login="leaver", display_name="Leaver")
    async with cluster.store() as store:
        await store.save_user(leaver)
    cookie = session_cookie(SESSION_SECRET, user_id=leaver.id, csrf="form-token")
    async with (
        page_socket(cluster.first.url, cookie) as here,
        page_socket(cluster.second.url, cookie) as there,
        viewer_of(cluster.second) as bystander,
        httpx.AsyncClient(timeout=10) as http,
    ):
        response = await http.post(
            f"{cluster.first.url}/logout",
            data={"csrf_token": "form-token"},
            headers={"Cookie": f"sev_session={cookie}"},
        )
        assert response.status_code == 303
        for page in (here, there):
            await page.wait_disconnected()
            assert page.session_ended == [{"reason": LOGGED_OUT_ELSEWHERE}]
        # Everyone else stays connected and keeps getting events.
        message_id, status, _ = await post_follow(http, cluster.first)
        assert status == 204
        assert await bystander.wait_for({message_id}, timeout=10) == set()
        assert bystander.client.connected
    for process in (cluster.first, cluster.second):
        assert await is_refused(process.url, cookie)


async def test_webhooks_are_stored_and_fan_out_resumes_when_redis_stops_and_comes_back(
    cluster: Cluster,
) -> None:
    logs_before = [len(p.logs()) for p in (cluster.first, cluster.second)]
    async with (
        viewer_of(cluster.first) as local,
        viewer_of(cluster.second) as remote,
        httpx.AsyncClient(timeout=10) as http,
    ):
        cluster.redis.stop()
        try:
            during = [await post_follow(http, cluster.first) for _ in range(5)]
            # Stored and acknowledged, and the dead Redis does not hold the webhook path up.
            assert [status for _, status, _ in during] == [204] * 5
            assert max(seconds for _, _, seconds in during) < 2.0
            outage_ids = {message_id for message_id, _, _ in during}
            async with cluster.store() as store:
                stored = await store.latest_events(BROADCASTER.id, 50)
            assert outage_ids <= {event.id for event in stored}
            # Viewers on the receiving process are not affected by Redis at all.
            assert await local.wait_for(outage_ids, timeout=10) == set()
            # Nothing carries them to the other process while Redis is down.
            assert await remote.wait_for(outage_ids, timeout=1.0) == outage_ids
        finally:
            cluster.redis.start()

        # Without a restart: what Redis could not carry is re-sent from the store...
        assert await remote.wait_for(outage_ids, timeout=20) == set()
        # ...and new events flow across processes again.
        deadline = time.monotonic() + 20
        while True:
            message_id, status, _ = await post_follow(http, cluster.first)
            assert status == 204
            if not await remote.wait_for({message_id}, timeout=1.5):
                break
            assert time.monotonic() < deadline, "fan-out did not resume within 20 s"

    for process, offset in zip((cluster.first, cluster.second), logs_before, strict=True):
        log = process.logs()[offset:]
        # One line when the outage starts and one when it ends, not one per event.
        assert log.count(OUTAGE_LOST) == 1, log
        assert log.count(OUTAGE_BACK) == 1, log
        assert "Traceback" not in log, log


async def test_events_a_process_missed_while_resubscribing_reach_its_viewers(
    cluster: Cluster,
) -> None:
    """Redis stays up but drops the subscriptions: what was published before a process
    subscribed again never reaches it through Redis, so it re-sends it from the store."""
    async with (
        viewer_of(cluster.second) as remote,
        httpx.AsyncClient(timeout=10) as http,
        Redis.from_url(cluster.redis.url) as redis,
    ):
        killed = await redis.client_kill_filter(_type="pubsub")
        assert killed >= 2
        # The processes subscribe again after half a second; these are published before that.
        posted = [await post_follow(http, cluster.first) for _ in range(3)]
        assert [status for _, status, _ in posted] == [204] * 3
        missed = {message_id for message_id, _, _ in posted}
        assert await remote.wait_for(missed, timeout=10) == set()


def test_sev_exits_with_one_line_when_redis_is_down_at_start(tmp_path: Path) -> None:
    redis_url = f"redis://:hunter2-password@127.0.0.1:{free_port()}/0"
    sev = SevProcess(tmp_path, {**_sev_env("", redis_url), "MONGODB_URI": ""})
    started = time.monotonic()
    result = subprocess.run(
        sev.command(),
        cwd=ROOT,
        env=sev.environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert time.monotonic() - started < 30
    lines = [line for line in output.splitlines() if "REDIS_URL" in line]
    assert len(lines) == 1, output
    assert "hunter2-password" not in output
    assert "Traceback" not in output, output


async def test_publish_to_an_unresponsive_redis_gives_up_quickly() -> None:
    # A server that accepts connections and never answers: a network partition, not a refusal.
    with closing(socket.create_server(("127.0.0.1", 0))) as silent:
        port = silent.getsockname()[1]
        fanout = RedisFanout(f"redis://127.0.0.1:{port}/0")
        try:
            started = time.monotonic()
            await fanout.emit("event", {"seq": 1}, namespace="/", room="broadcaster:1")
            first = time.monotonic() - started
            started = time.monotonic()
            for seq in range(2, 102):
                await fanout.emit("event", {"seq": seq}, namespace="/", room="broadcaster:1")
            next_hundred = time.monotonic() - started
        finally:
            await fanout.stop()
    assert first < PUBLISH_TIMEOUT_S + 1.0
    # Known to be down: no more waiting until the next probe.
    assert next_hundred < 0.2


async def test_messages_redis_did_not_take_are_published_in_order_when_it_is_back(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    fanout = RedisFanout(redis_server.url)
    try:
        await fanout.emit("event", {"seq": 0}, namespace="/", room="broadcaster:1")
        redis_server.stop()
        try:
            for seq in (1, 2, 3):
                await fanout.emit("event", {"seq": seq}, namespace="/", room="broadcaster:1")
        finally:
            redis_server.start()
        async with Redis.from_url(redis_server.url) as redis, redis.pubsub() as pubsub:
            await pubsub.subscribe(fanout.channel_of("broadcaster:1"))
            # No new event is needed: the kept messages go out on their own, oldest first.
            seqs: list[int] = []
            deadline = time.monotonic() + 10
            while len(seqs) < 3 and time.monotonic() < deadline:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if message is not None:
                    seqs.append(json.loads(message["data"])["data"][0]["seq"])
            await fanout.emit("event", {"seq": 4}, namespace="/", room="broadcaster:1")
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            assert message is not None
            seqs.append(json.loads(message["data"])["data"][0]["seq"])
    finally:
        await fanout.stop()
    assert seqs == [1, 2, 3, 4]
    logged = [record.getMessage() for record in caplog.records if record.name == "sev.live.fanout"]
    assert sum(OUTAGE_LOST in line for line in logged) == 1, logged
    assert any("published 3 messages kept" in line for line in logged), logged


@dataclass
class Node:
    """One process's fan-out, in this process: a RedisFanout under python-socketio's server,
    whose observer records the emits delivered to it (no socket needed to see them)."""

    fanout: RedisFanout
    delivered: list[tuple[str, Any]] = field(default_factory=list)

    async def enter(self, eio_sid: str) -> str:
        """A socket of this process, connected to the namespace (python-socketio's manager)."""
        return str(await self.fanout.connect(eio_sid, "/"))


@asynccontextmanager
async def node(redis_url: str, *, unsubscribe_after_s: float = 0.3) -> AsyncIterator[Node]:
    fanout = RedisFanout(redis_url, unsubscribe_after_s=unsubscribe_after_s)
    socketio.AsyncServer(async_mode="asgi", client_manager=fanout)
    result = Node(fanout)
    fanout.on_emit = lambda name, data, room: result.delivered.append((str(room), data))
    await fanout.start()
    try:
        yield result
    finally:
        await fanout.stop()


async def numsub(redis: Redis, channel: str) -> int:
    """How many connections Redis has subscribed to `channel`."""
    return int(dict(await redis.pubsub_numsub(channel))[channel.encode()])


async def test_a_process_receives_only_the_rooms_its_own_sockets_are_in(
    redis_server: RedisServer,
) -> None:
    async with (
        node(redis_server.url) as watching,
        node(redis_server.url) as publishing,
        Redis.from_url(redis_server.url) as redis,
    ):
        sid = await watching.enter("eio-1")
        await watching.fanout.enter_room(sid, "/", "broadcaster:77")
        room_channel = watching.fanout.channel_of("broadcaster:77")
        assert room_channel == "socketio:broadcaster:77"
        assert await numsub(redis, room_channel) == 1
        # Nobody subscribes the room of a broadcaster no socket watches.
        assert await numsub(redis, publishing.fanout.channel_of("broadcaster:78")) == 0
        for seq in (1, 2, 3):
            await publishing.fanout.emit(
                "event", {"seq": seq}, namespace="/", room="broadcaster:78"
            )
            await publishing.fanout.emit(
                "event", {"seq": seq}, namespace="/", room="broadcaster:77"
            )
        # A user's room (a session ended) still reaches every process.
        await publishing.fanout.emit("session_ended", {"reason": "x"}, namespace="/", room="user:5")

        async def arrived() -> bool:
            return len(watching.delivered) == 4

        await eventually(arrived, what="the four emits")
        assert watching.delivered == [
            ("broadcaster:77", {"seq": 1}),
            ("broadcaster:77", {"seq": 2}),
            ("broadcaster:77", {"seq": 3}),
            ("user:5", {"reason": "x"}),
        ]
        # Nothing of broadcaster 78 was even received; the publisher got nothing back.
        assert watching.fanout.received == 4
        assert publishing.fanout.received == 1  # its own session_ended, dropped undecoded
        assert publishing.fanout.received_own == 1


async def test_a_room_channel_is_dropped_after_its_last_socket_left_unless_one_came_back(
    redis_server: RedisServer,
) -> None:
    async with (
        node(redis_server.url, unsubscribe_after_s=0.3) as process,
        Redis.from_url(redis_server.url) as redis,
    ):
        channel = process.fanout.channel_of("broadcaster:90")
        first = await process.enter("eio-1")
        second = await process.enter("eio-2")
        await process.fanout.enter_room(first, "/", "broadcaster:90")
        await process.fanout.enter_room(second, "/", "broadcaster:90")
        await process.fanout.leave_room(first, "/", "broadcaster:90")
        await asyncio.sleep(0.5)
        assert await numsub(redis, channel) == 1  # one socket is still in it

        # A reload: the last socket leaves and another enters before the delay is up.
        await process.fanout.disconnect(second, "/", ignore_queue=True)
        await asyncio.sleep(0.1)
        third = await process.enter("eio-3")
        await process.fanout.enter_room(third, "/", "broadcaster:90")
        await asyncio.sleep(0.5)
        assert await numsub(redis, channel) == 1

        await process.fanout.leave_room(third, "/", "broadcaster:90")
        await asyncio.sleep(0.1)
        assert await numsub(redis, channel) == 1  # not at once

        async def dropped() -> bool:
            return await numsub(redis, channel) == 0

        await eventually(dropped, what="the unsubscribe")
        # And taken again when somebody comes: enter_room returns subscribed.
        fourth = await process.enter("eio-4")
        await process.fanout.enter_room(fourth, "/", "broadcaster:90")
        assert await numsub(redis, channel) == 1


async def test_entering_a_room_returns_only_once_redis_confirmed_its_channel(
    redis_server: RedisServer,
) -> None:
    """`watch` reads the store after `enter_room`: were the subscription not in place by then,
    an event stored and published in between would reach the viewer by neither path."""
    async with (
        node(redis_server.url) as process,
        Redis.from_url(redis_server.url) as redis,
    ):
        sid = await process.enter("eio-1")
        # Redis holds every client's commands for 400 ms, the SUBSCRIBE included.
        await redis.client_pause(400, all=True)
        started = time.monotonic()
        await process.fanout.enter_room(sid, "/", "broadcaster:91")
        waited = time.monotonic() - started
        assert await numsub(redis, process.fanout.channel_of("broadcaster:91")) == 1
    assert 0.3 < waited < 1.5, waited


async def test_a_watch_during_a_redis_outage_does_not_wait_and_is_subscribed_when_it_is_back(
    redis_server: RedisServer,
) -> None:
    async with node(redis_server.url) as process:
        lost = asyncio.Event()
        process.fanout.on_lost = lost.set
        redis_server.stop()
        try:
            async with asyncio.timeout(10):
                await lost.wait()
            sid = await process.enter("eio-1")
            started = time.monotonic()
            await process.fanout.enter_room(sid, "/", "broadcaster:92")
            assert time.monotonic() - started < 0.2
        finally:
            redis_server.start()
        async with Redis.from_url(redis_server.url) as redis:
            channel = process.fanout.channel_of("broadcaster:92")

            async def subscribed() -> bool:
                return await numsub(redis, channel) == 1

            await eventually(subscribed, what="the subscription after the outage")


def test_redis_fanout_delivers_to_its_own_viewers_through_the_room_manager() -> None:
    # AsyncPubSubManager hands local delivery to `super().emit`: the class order must make that
    # RoomManager's one-packet-per-room emit, not AsyncManager's task per viewer.
    fanout = RedisFanout("redis://127.0.0.1:1/0")
    assert super(AsyncPubSubManager, fanout).emit.__func__ is RoomManager.emit
    assert fanout.max_queued == RoomManager().max_queued


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:secret@cache.example:6380/0", "redis://:***@cache.example:6380/0"),
        ("rediss://user:secret@cache.example/1", "rediss://user:***@cache.example/1"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_redis_url_password_is_not_shown(url: str, shown: str) -> None:
    assert redacted(url) == shown


def test_procfile_command_serves_https_urls_behind_a_proxy(tmp_path: Path) -> None:
    """The Procfile's own command, behind a TLS-terminating router (X-Forwarded-Proto: https)."""
    line = (ROOT / "Procfile").read_text().strip()
    kind, command = line.split(":", 1)
    assert kind == "web"
    port = free_port()
    argv = [arg.replace("$PORT", str(port)) for arg in shlex.split(command)]
    argv[argv.index("--host") + 1] = "127.0.0.1"  # loopback only in tests
    assert argv[:2] == ["uvicorn", "sev.app:app"]
    env = _clean_env({"SEV_DATA_DIR": str(tmp_path / "var"), "SEV_DEMO_EVENTS_PER_MINUTE": "0"})
    log = (tmp_path / "procfile.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", *argv],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "procfile.log").read_text()
            try:
                behind_proxy = httpx.get(
                    url,
                    headers={"X-Forwarded-Proto": "https", "Host": "sev.example.com"},
                    timeout=2,
                )
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, (tmp_path / "procfile.log").read_text()
                time.sleep(0.1)
        direct = httpx.get(url, headers={"Host": "sev.example.com"}, timeout=5)
    finally:
        process.terminate()
        process.wait(15)
        log.close()
    assert behind_proxy.status_code == 200
    # Asset URLs come from the request: https behind the router, or browsers block them.
    assert 'href="https://sev.example.com/static/' in behind_proxy.text
    assert 'href="http://sev.example.com/static/' in direct.text
