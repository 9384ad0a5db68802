"""What SEV reads back from Redis when somebody else writes there (sev/live/fanout.py,
sev/store/lanes.py): forged or garbage messages on the channels SEV listens to, and garbage where a
lane's holder leaves the next seq.

Real services only: a redis-server and the MongoDB-wire server (fixtures), two SEV processes
(`uvicorn sev.app:app`) sharing them, python-socketio's own client as the page, and a raw Redis
client as whoever else can PUBLISH and SET on that Redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest
from redis.asyncio import Redis

from sev.crypto import TokenCipher
from sev.store import Broadcaster, User
from sev.store.mongo import MongoStore
from tests.support.factories import make_event, notification_body, session_cookie, signed_request
from tests.support.processes import SevProcess
from tests.support.services import MongoServer, RedisServer
from tests.support.settings import SESSION_SECRET, TOKEN_KEY, real_twitch_env
from tests.support.sockets import PageSocket, page_socket

COMMON_CHANNEL = "socketio"
DROPPED = "dropped"
EXPOSED = "REDIS_URL leads off this machine"


@dataclass
class Pair:
    """Two SEV processes on one store and one Redis: webhooks go to `first`, pages watch on
    `second`, so what they receive crossed Redis."""

    first: SevProcess
    second: SevProcess
    mongodb_uri: str
    redis_url: str

    @asynccontextmanager
    async def store(self) -> AsyncIterator[MongoStore]:
        store = MongoStore(self.mongodb_uri, TokenCipher(TOKEN_KEY))
        await store.open()
        try:
            yield store
        finally:
            await store.close()

    async def broadcaster(self) -> Broadcaster:
        """A broadcaster of the calling test alone (nothing else numbers or watches it)."""
        number = uuid.uuid4().int % 10**9
        broadcaster = Broadcaster(id=str(number), login=f"b{number}", display_name=f"B{number}")
        async with self.store() as store:
            await store.save_broadcaster(broadcaster)
        return broadcaster

    async def user(self) -> User:
        user = User(id=str(uuid.uuid4().int % 10**9), login="u", display_name="U")
        async with self.store() as store:
            await store.save_user(user)
        return user


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, mongo_server: MongoServer, redis_server: RedisServer
) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("hostile")
    uri = f"{mongo_server.uri.rstrip('/')}/sev_hostile_{uuid.uuid4().hex[:12]}"
    env = {**real_twitch_env(), "MONGODB_URI": uri, "REDIS_URL": redis_server.url}
    first, second = SevProcess(tmp, env), SevProcess(tmp, env)
    try:
        first.start()
        second.start()
        yield Pair(first, second, uri, redis_server.url)
    finally:
        first.stop()
        second.stop()


@asynccontextmanager
async def watching(pair: Pair, broadcaster: Broadcaster) -> AsyncIterator[PageSocket]:
    """A page of a fresh user on the second process, watching `broadcaster`."""
    cookie = session_cookie(SESSION_SECRET, user_id=(await pair.user()).id)
    async with page_socket(pair.second.url, cookie) as page:
        ack = await page.client.call("watch", {"streamer": broadcaster.login}, timeout=10)
        assert ack["streamer"]["id"] == broadcaster.id, ack
        yield page


async def post_follow(process: SevProcess, broadcaster: Broadcaster) -> tuple[str, int, float]:
    """POST one signed channel.follow: (message id, status, seconds taken)."""
    message_id = str(uuid.uuid4())
    headers, body = signed_request(
        notification_body(broadcaster_id=broadcaster.id), message_id=message_id
    )
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.post(
            f"{process.url}/webhooks/eventsub", headers=headers, content=body
        )
    return message_id, response.status_code, time.monotonic() - started


async def genuine_event_arrives(pair: Pair, broadcaster: Broadcaster, page: PageSocket) -> None:
    """A webhook to the first process reaches the page on the second, through Redis."""
    message_id, status, _ = await post_follow(pair.first, broadcaster)
    assert status == 204
    deadline = time.monotonic() + 10
    while message_id not in {event["id"] for event in page.events}:
        assert time.monotonic() < deadline, "the genuine event did not arrive"
        await asyncio.sleep(0.02)


def emit(event: str, data: Any, room: str | None, **fields: Any) -> dict[str, Any]:
    """A pub/sub message exactly as python-socketio's AsyncPubSubManager publishes an emit."""
    return {
        "method": "emit",
        "event": event,
        "data": [data],
        "binary": False,
        "namespace": "/",
        "room": room,
        "skip_sid": None,
        "callback": None,
        "host_id": uuid.uuid4().hex,
        **fields,
    }


def forged_event(broadcaster: Broadcaster, seq: int = 999_999) -> dict[str, Any]:
    """A whole, well-formed Event of `broadcaster` that no webhook ever brought."""
    event = make_event(broadcaster_id=broadcaster.id, message_id=f"forged-{uuid.uuid4()}")
    return event.model_copy(update={"seq": seq}).model_dump(mode="json")


def room_channel(broadcaster: Broadcaster) -> str:
    return f"{COMMON_CHANNEL}:broadcaster:{broadcaster.id}"


async def test_an_event_published_by_someone_else_does_not_reach_viewers(pair: Pair) -> None:
    broadcaster = await pair.broadcaster()
    room = f"broadcaster:{broadcaster.id}"
    fake = forged_event(broadcaster)
    async with watching(pair, broadcaster) as page, Redis.from_url(pair.redis_url) as redis:
        # On the room's own channel and on the common one, as python-socketio would publish it.
        for channel in (room_channel(broadcaster), COMMON_CHANNEL):
            assert await redis.publish(channel, json.dumps(emit("event", fake, room))) >= 1
        await genuine_event_arrives(pair, broadcaster, page)
        assert fake["id"] not in {event["id"] for event in page.events}
    assert DROPPED in pair.second.logs()


async def test_a_session_ended_published_by_someone_else_does_not_log_anyone_out(
    pair: Pair,
) -> None:
    broadcaster, user = await pair.broadcaster(), await pair.user()
    cookie = session_cookie(SESSION_SECRET, user_id=user.id)
    async with (
        page_socket(pair.second.url, cookie) as target,
        Redis.from_url(pair.redis_url) as redis,
    ):
        ack = await target.client.call("watch", {"streamer": broadcaster.login}, timeout=10)
        assert ack["streamer"]["id"] == broadcaster.id, ack
        notice = emit("session_ended", {"reason": "You were logged out."}, f"user:{user.id}")
        assert await redis.publish(COMMON_CHANNEL, json.dumps(notice)) >= 2
        await genuine_event_arrives(pair, broadcaster, target)
        assert target.session_ended == []
        assert not target.disconnected.is_set()
        assert target.client.connected


async def test_garbage_on_the_channels_is_dropped_and_genuine_events_still_flow(
    pair: Pair,
) -> None:
    broadcaster = await pair.broadcaster()
    room = f"broadcaster:{broadcaster.id}"
    logs_before = len(pair.second.logs())
    async with watching(pair, broadcaster) as page, Redis.from_url(pair.redis_url) as redis:
        sid = page.client.get_sid()
        garbage: list[bytes | str] = [
            b"\xff\xfe\x00 not even text",
            b"{",
            b"[]",
            b"null",
            "[" * 100_000 + "]" * 100_000,  # nesting deep enough to exhaust the decoder
            '{"method": "emit", "seq": ' + "9" * 5000 + "}",  # past int()'s digit limit
            b"x" * (3 * 1024 * 1024),
            # python-socketio would disconnect the page, or empty its room.
            json.dumps({"method": "disconnect", "sid": sid, "namespace": "/", "host_id": "x"}),
            json.dumps({"method": "close_room", "room": room, "namespace": "/", "host_id": "x"}),
            json.dumps({"method": "leave_room", "sid": sid, "room": room, "namespace": "/"}),
            # Emits SEV never makes: another event name, data that is no Event, a callback.
            json.dumps(emit("session_ended", {"reason": "gone"}, room)),
            json.dumps(emit("event", {"seq": "one"}, room)),
            json.dumps(emit("event", forged_event(broadcaster), room, callback=[room, "/", 1])),
            json.dumps(emit("event", forged_event(broadcaster) | {"seq": 2**70}, room)),
            json.dumps(emit("event", forged_event(broadcaster), room, namespace="/admin")),
        ]
        for payload in garbage:
            await redis.publish(room_channel(broadcaster), payload)
            await redis.publish(COMMON_CHANNEL, payload)
        for _ in range(3):
            await genuine_event_arrives(pair, broadcaster, page)
        assert page.client.connected
        assert not page.disconnected.is_set()
        assert page.session_ended == []
        assert all(not event["id"].startswith("forged-") for event in page.events)
    log = pair.second.logs()[logs_before:]
    # Rate-limited: at most one line for all of them (none if an earlier test's was recent),
    # and the listener never stopped.
    assert log.count(DROPPED) <= 1, log
    assert "Traceback" not in log, log


def not_sev_s(broadcaster: Broadcaster, sid: str) -> dict[str, bytes]:
    """Well-formed JSON that SEV never publishes (python-socketio would act on most of it)."""
    room = f"broadcaster:{broadcaster.id}"
    user_room = "user:4242"
    event = forged_event(broadcaster)
    messages: dict[str, Any] = {
        "disconnect the page": {"method": "disconnect", "sid": sid, "namespace": "/"},
        "empty the room": {"method": "close_room", "room": room, "namespace": "/"},
        "take the page out": {"method": "leave_room", "sid": sid, "room": room, "namespace": "/"},
        "a callback": {"method": "callback", "sid": sid, "namespace": "/", "id": 1, "args": []},
        "no method": {"event": "event", "data": [event], "room": room},
        "session_ended to a room": emit("session_ended", {"reason": "gone"}, room),
        "event to a user": emit("event", event, user_room),
        "another event name": emit("message", event, room),
        "another namespace": emit("event", event, room, namespace="/admin"),
        "not SEV's room": emit("event", event, "lobby"),
        "odd room": emit("event", event, "broadcaster:1/../2"),
        "every socket": emit("event", event, None),
        "with a callback": emit("event", event, room, callback=[room, "/", 1]),
        "skipping a socket": emit("event", event, room, skip_sid=sid),
        "binary": emit("event", event, room, binary=True),
        "two arguments": emit("event", event, room) | {"data": [event, event]},
        "seq not a number": emit("event", event | {"seq": "one"}, room),
        "seq a bool": emit("event", event | {"seq": True}, room),
        "seq past int64": emit("event", event | {"seq": 2**70}, room),
        "not an Event": emit("event", {"seq": 5}, room),
        "reason not text": emit("session_ended", {"reason": ["x"]}, user_room),
        "reason and more": emit("session_ended", {"reason": "x", "html": "<b>"}, user_room),
        "reason too long": emit("session_ended", {"reason": "x" * 10_000}, user_room),
    }
    return {name: json.dumps(message).encode() for name, message in messages.items()}


@pytest.mark.parametrize(
    "name", list(not_sev_s(Broadcaster(id="7", login="x", display_name="X"), "s"))
)
def test_a_message_sev_never_publishes_is_not_read(name: str) -> None:
    from sev.live.fanout import Dropped, read_message

    body = not_sev_s(Broadcaster(id="7", login="x", display_name="X"), "sid")[name]
    with pytest.raises(Dropped):
        read_message(body, room_prefix="broadcaster:", whole_events=True)


def test_what_sev_publishes_is_read() -> None:
    from sev.live.fanout import read_message

    broadcaster = Broadcaster(id="7", login="x", display_name="X")
    for message in (
        emit("event", forged_event(broadcaster, seq=3), "broadcaster:7"),
        emit("notice", {"kind": "revocation", "type": "channel.follow"}, "broadcaster:7"),
        emit("session_ended", {"reason": "You logged out."}, "user:4242"),
    ):
        read = read_message(
            json.dumps(message).encode(), room_prefix="broadcaster:", whole_events=True
        )
        assert read == message


async def test_sealed_messages_sev_never_publishes_are_dropped_too(pair: Pair) -> None:
    from sev.live.fanout import fanout_key, seal

    broadcaster = await pair.broadcaster()
    key = fanout_key(SESSION_SECRET)
    async with watching(pair, broadcaster) as page, Redis.from_url(pair.redis_url) as redis:
        for body in not_sev_s(broadcaster, page.client.get_sid()).values():
            for channel in (room_channel(broadcaster), COMMON_CHANNEL):
                await redis.publish(channel, seal(key, body, time.time()))
        for _ in range(3):
            await genuine_event_arrives(pair, broadcaster, page)
        assert page.client.connected
        assert page.session_ended == []
        assert all(not event["id"].startswith("forged-") for event in page.events)
    assert "Traceback" not in pair.second.logs()


async def test_only_messages_sealed_by_sev_with_its_secret_and_lately_are_delivered(
    pair: Pair,
) -> None:
    from sev.live.fanout import fanout_key, seal

    broadcaster = await pair.broadcaster()
    room = f"broadcaster:{broadcaster.id}"
    key, now = fanout_key(SESSION_SECRET), time.time()

    def body(seq: int, **changes: Any) -> bytes:
        return json.dumps(emit("event", forged_event(broadcaster, seq) | changes, room)).encode()

    stranger = {"id": "1", "login": "stranger", "name": "Stranger"}
    refused = [
        seal(fanout_key("not SEV's secret"), body(100), now),
        seal(key, body(101), now - 3600),  # recorded an hour ago, replayed
        seal(key, body(102), now).replace(b'"seq": 102', b'"seq": 202'),
        seal(key, body(103, broadcaster=stranger), now),  # not the room's broadcaster
    ]
    async with watching(pair, broadcaster) as page, Redis.from_url(pair.redis_url) as redis:
        for payload in [*refused, seal(key, body(104), now)]:
            await redis.publish(room_channel(broadcaster), payload)
        await genuine_event_arrives(pair, broadcaster, page)
        seqs = {event["seq"] for event in page.events}
    # Only the one sealed as SEV seals, besides the webhook's event.
    assert 104 in seqs
    assert not {100, 101, 102, 202, 103} & seqs, seqs


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("banana", id="not-a-number"),
        pytest.param("-5", id="negative"),
        pytest.param("0", id="zero"),
        pytest.param("9" * 30, id="past-int64"),
        pytest.param(str(2**63 - 3), id="near-the-last-seq"),
        pytest.param("1000", id="plausible-but-not-sev-s"),
        pytest.param(["1", "2"], id="a-list-not-a-string"),
    ],
)
async def test_a_lane_next_seq_written_by_someone_else_leaves_numbering_whole(
    pair: Pair, value: str | list[str]
) -> None:
    broadcaster = await pair.broadcaster()
    next_key = f"sev:lane:{broadcaster.id}:next"
    async with Redis.from_url(pair.redis_url) as redis:
        for _ in range(3):
            await redis.delete(next_key)
            if isinstance(value, list):
                await cast("Awaitable[int]", redis.rpush(next_key, *value))
            else:
                await redis.set(next_key, value)
            _, status, seconds = await post_follow(pair.first, broadcaster)
            assert status == 204
            # No lane left held by a script that failed half-way (it would be waited for).
            assert seconds < 2.0
    async with pair.store() as store:
        stored = await store.events_after(broadcaster.id, 0, 10)
    assert [event.seq for event in stored] == [1, 2, 3]
    assert "Traceback" not in pair.first.logs()


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://localhost:6379",
        "redis://localhost",
        "redis://[::1]:6379/0",
        "redis://127.0.0.2",
        "unix:///run/redis/redis.sock",
        "redis://",
        "rediss://sev:p4ss@redis.internal.example:6380/0",
        "rediss://redis.internal.example:6380/0?password=p4ss",
    ],
)
def test_a_redis_on_this_machine_or_with_password_and_tls_is_not_warned_about(url: str) -> None:
    from sev.live.fanout import exposure_warning

    assert exposure_warning(url) is None


@pytest.mark.parametrize(
    ("url", "missing"),
    [
        ("redis://redis.internal.example:6379/0", ["a password", "TLS"]),
        ("redis://10.0.0.7", ["a password", "TLS"]),
        ("redis://:s3cret-pw@10.0.0.7:6379/0", ["TLS"]),
        ("redis://sev:s3cret-pw@redis.internal.example", ["TLS"]),
        ("rediss://redis.internal.example:6380", ["a password"]),
        ("redis://[2001:db8::1]:6379", ["a password", "TLS"]),
        ("redis://127.0.0.1:26379,redis.internal.example:26379/0", ["a password", "TLS"]),
    ],
)
def test_a_redis_off_this_machine_without_password_or_tls_is_warned_about(
    url: str, missing: list[str]
) -> None:
    from sev.live.fanout import exposure_warning

    warning = exposure_warning(url)
    assert warning is not None
    assert warning.startswith(EXPOSED)
    for what in ("a password", "TLS"):
        assert (f"without {what}" in warning) == (what in missing), warning
    assert "s3cret" not in warning


def test_a_process_warns_once_at_start_only_when_redis_is_off_this_machine(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    from sev.live.fanout import RedisFanout

    caplog.set_level(logging.WARNING, logger="sev.live.fanout")
    # Built, not started: nothing connects to that address.
    RedisFanout("redis://:s3cret-pw@redis.internal.example:6379/0")
    [record] = [r for r in caplog.records if EXPOSED in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "s3cret" not in record.getMessage()
    # The processes of this module use a loopback Redis: not a word.
    for process in (pair.first, pair.second):
        assert EXPOSED not in process.logs()
