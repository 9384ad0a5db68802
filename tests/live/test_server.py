"""The socket protocol (sev/live/server.py) over a real SEV process, with python-socketio's client.

One SEV process (`uvicorn sev.app:app`, embedded SQLite) configured as for real Twitch, with
Twitch at a loopback port where nothing listens: these tests need no Twitch. Broadcasters and
their events are written straight into the process's store file; live events come in through
the signed webhook, as Twitch would send them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from sev.crypto import TokenCipher
from sev.events import Event
from sev.store import Broadcaster, SubscriptionRecord, User
from sev.store.sqlite import SqliteStore
from sev.streamers import KIND_STATES
from tests.support.factories import make_event, notification_body, session_cookie, signed_request
from tests.support.polling import eventually
from tests.support.processes import SevProcess
from tests.support.settings import SESSION_SECRET, TOKEN_KEY, real_twitch_env

FEW = Broadcaster(id="7001", login="few_events", display_name="Few_Events")
MANY = Broadcaster(id="7002", login="many_events", display_name="Many_Events")
QUIET = Broadcaster(id="7003", login="quiet_one", display_name="Quiet_One")
LIVE = Broadcaster(id="7004", login="live_one", display_name="Live_One")  # gets webhooks
FEW_COUNT = 15
MANY_COUNT = 120
EVENT_KEYS = set(Event.model_fields)
KIND_KEYS = {"type", "label", "connected_only", "available", "status", "held", "state"}


@pytest.fixture(scope="module")
def seeded_sev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SevProcess]:
    """SEV with four broadcasters: 15 events, 120 events, none, and one for live events."""
    tmp = tmp_path_factory.mktemp("live")
    process = SevProcess(tmp, real_twitch_env())
    process.start()
    try:
        asyncio.run(_seed(process.data_dir / "sev.sqlite3"))
        yield process
    finally:
        process.stop()


async def _seed(path: Path) -> None:
    store = SqliteStore(path, TokenCipher(TOKEN_KEY))
    await store.open()
    try:
        await store.save_user(User(id="4242", login="viewer", display_name="Viewer"))
        await store.save_user(
            User(id="4343", login="gone", display_name="Gone", session_ended_reason="logged out")
        )
        for broadcaster, count in ((FEW, FEW_COUNT), (MANY, MANY_COUNT), (QUIET, 0), (LIVE, 0)):
            await store.save_broadcaster(broadcaster)
            if count:
                await store.insert_events(
                    [make_event(broadcaster.id, summary=f"n{n}") for n in range(count)]
                )
    finally:
        await store.close()


def _cookie(user_id: str = "4242", secret: str = SESSION_SECRET) -> dict[str, str]:
    return {"Cookie": f"sev_session={session_cookie(secret, user_id=user_id)}"}


@asynccontextmanager
async def _connected(
    sev: SevProcess, headers: dict[str, str] | None = None
) -> AsyncIterator[socketio.AsyncClient]:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        sev.url,
        headers=_cookie() if headers is None else headers,
        transports=["websocket"],
        socketio_path="socket.io",
        wait_timeout=10,
    )
    try:
        yield client
    finally:
        await client.disconnect()


async def _watch(client: socketio.AsyncClient, streamer: str, after: int | None) -> Any:
    return await client.call("watch", {"streamer": streamer, "after": after}, timeout=10)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _cookie(secret="not-the-session-secret-0123456789"),
        {"Cookie": "sev_session=garbage"},
        _cookie(user_id="4343"),
        _cookie(user_id="9999"),
    ],
    ids=["no cookie", "forged cookie", "garbage cookie", "logged out", "unknown user"],
)
async def test_connect_without_a_valid_session_is_refused(
    seeded_sev: SevProcess, headers: dict[str, str]
) -> None:
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            seeded_sev.url,
            headers=headers,
            transports=["websocket"],
            socketio_path="socket.io",
            wait_timeout=10,
        )
    assert not client.connected
    await client.disconnect()


async def test_watch_acks_the_streamer_and_the_ten_newest_events(seeded_sev: SevProcess) -> None:
    async with _connected(seeded_sev) as client:
        ack = await _watch(client, "Few_Events", None)
    assert set(ack) == {"streamer", "events"}
    streamer = ack["streamer"]
    assert {k: streamer[k] for k in ("id", "login", "name")} == {
        "id": FEW.id,
        "login": FEW.login,
        "name": FEW.display_name,
    }
    assert {"profile_image_url", "connected", "kinds", "notices"} <= set(streamer)
    assert streamer["notices"] == []
    assert streamer["connected"] is False
    assert streamer["kinds"]
    assert all(set(kind) == KIND_KEYS for kind in streamer["kinds"])
    assert all(kind["state"] in KIND_STATES for kind in streamer["kinds"])
    # Not connected: every kind only the streamer can share needs them to connect.
    assert all(kind["state"] == "off" for kind in streamer["kinds"] if kind["connected_only"])
    events = ack["events"]
    assert [event["seq"] for event in events] == list(range(FEW_COUNT, FEW_COUNT - 10, -1))
    assert all(set(event) == EVENT_KEYS for event in events)
    assert all(event["broadcaster"]["id"] == FEW.id for event in events)


async def test_watch_of_a_streamer_without_events_acks_an_empty_list(
    seeded_sev: SevProcess,
) -> None:
    async with _connected(seeded_sev) as client:
        ack = await _watch(client, QUIET.login, None)
    assert ack["streamer"]["id"] == QUIET.id
    assert ack["events"] == []
    assert "gap" not in ack


@pytest.mark.parametrize(
    ("after", "seqs"),
    [(12, [15, 14, 13]), (FEW_COUNT, []), (0, list(range(FEW_COUNT, 0, -1)))],
)
async def test_watch_after_a_seq_returns_only_newer_events(
    seeded_sev: SevProcess, after: int, seqs: list[int]
) -> None:
    async with _connected(seeded_sev) as client:
        ack = await _watch(client, FEW.login, after)
    assert [event["seq"] for event in ack["events"]] == seqs
    assert "gap" not in ack


async def test_watch_after_more_than_100_missed_says_gap_with_the_newest_ten(
    seeded_sev: SevProcess,
) -> None:
    async with _connected(seeded_sev) as client:
        gap = await _watch(client, MANY.login, MANY_COUNT - 101)
        exactly_100 = await _watch(client, MANY.login, MANY_COUNT - 100)
    assert gap["gap"] is True
    assert [event["seq"] for event in gap["events"]] == list(range(MANY_COUNT, MANY_COUNT - 10, -1))
    assert "gap" not in exactly_100
    assert [event["seq"] for event in exactly_100["events"]] == list(
        range(MANY_COUNT, MANY_COUNT - 100, -1)
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"streamer": "nobody_here", "after": None},
        {"streamer": "not a login!", "after": None},
        {"streamer": FEW.login, "after": -1},
        {"streamer": FEW.login, "after": "3"},
        {"streamer": FEW.login, "after": 2**63},
        {"streamer": FEW.login, "after": True},
        {"after": None},
        "few_events",
    ],
    ids=[
        "unknown streamer",
        "invalid login",
        "negative after",
        "string after",
        "after past 2**63",
        "boolean after",
        "no streamer",
        "not an object",
    ],
)
async def test_watch_with_bad_input_answers_an_error_without_retry(
    seeded_sev: SevProcess, payload: Any
) -> None:
    async with _connected(seeded_sev) as client:
        ack = await client.call("watch", payload, timeout=10)
        assert isinstance(ack["error"], str) and ack["error"]
        assert not ack.get("retry")
        # The connection stays usable.
        assert (await _watch(client, FEW.login, FEW_COUNT))["events"] == []


@pytest.mark.parametrize(
    ("after", "before", "seqs"),
    [(3, 7, [6, 5, 4]), (14, 15, []), (0, 2, [1]), (9, FEW_COUNT + 5, [15, 14, 13, 12, 11, 10])],
)
async def test_fill_answers_the_stored_events_between_two_seqs(
    seeded_sev: SevProcess, after: int, before: int, seqs: list[int]
) -> None:
    async with _connected(seeded_sev) as client:
        await _watch(client, FEW.login, None)
        ack = await client.call(
            "fill", {"streamer": FEW.login, "after": after, "before": before}, timeout=10
        )
    assert set(ack) == {"events"}
    assert [event["seq"] for event in ack["events"]] == seqs
    assert all(set(event) == EVENT_KEYS for event in ack["events"])


@pytest.mark.parametrize(
    "payload",
    [
        {"streamer": FEW.login, "after": 5, "before": 5},
        {"streamer": FEW.login, "after": 7, "before": 3},
        {"streamer": FEW.login, "after": 0, "before": 200},
        {"streamer": FEW.login, "after": True, "before": 3},
        {"streamer": FEW.login, "after": -1, "before": 3},
        {"streamer": FEW.login, "after": 1},
        {"streamer": "not a login!", "after": 1, "before": 3},
        # Another streamer's events: fill answers only for the one this socket watches.
        {"streamer": MANY.login, "after": 1, "before": 3},
        [1, 2],
    ],
)
async def test_fill_refuses_what_is_not_a_hole_of_the_watched_streamer(
    seeded_sev: SevProcess, payload: Any
) -> None:
    async with _connected(seeded_sev) as client:
        await _watch(client, FEW.login, FEW_COUNT)
        ack = await client.call("fill", payload, timeout=10)
        assert isinstance(ack["error"], str) and ack["error"] and "events" not in ack
        assert not ack.get("retry")
        # The connection stays usable.
        assert (await _watch(client, FEW.login, FEW_COUNT))["events"] == []


async def test_live_event_reaches_the_watchers_of_its_streamer_only(seeded_sev: SevProcess) -> None:
    received: dict[str, list[dict[str, Any]]] = {"live": [], "few": []}
    arrived = asyncio.Event()
    async with _connected(seeded_sev) as live, _connected(seeded_sev) as few:

        async def on_live(event: dict[str, Any]) -> None:
            received["live"].append(event)
            arrived.set()

        async def on_few(event: dict[str, Any]) -> None:
            received["few"].append(event)

        live.on("event", on_live)
        few.on("event", on_few)
        before = (await _watch(live, LIVE.login, None))["events"]
        await _watch(few, FEW.login, None)
        message_id = str(uuid.uuid4())
        headers, body = signed_request(
            notification_body(broadcaster_id=LIVE.id, user_name="<b>Bold</b>"),
            message_id=message_id,
        )
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                f"{seeded_sev.url}/webhooks/eventsub", headers=headers, content=body
            )
        assert response.status_code == 204
        await asyncio.wait_for(arrived.wait(), timeout=5)
        await asyncio.sleep(0.3)  # time for a wrong delivery to the other room to show up
    [event] = received["live"]
    assert set(event) == EVENT_KEYS
    assert event["id"] == message_id
    assert event["seq"] == (before[0]["seq"] if before else 0) + 1
    assert event["summary"] == "<b>Bold</b> followed"  # text, as sent: the page escapes it
    assert received["few"] == []


async def test_watching_another_streamer_leaves_the_first_room(seeded_sev: SevProcess) -> None:
    received: list[dict[str, Any]] = []
    async with _connected(seeded_sev) as client:

        async def on_event(event: dict[str, Any]) -> None:
            received.append(event)

        client.on("event", on_event)
        await _watch(client, LIVE.login, None)
        await _watch(client, FEW.login, FEW_COUNT)
        headers, body = signed_request(notification_body(broadcaster_id=LIVE.id))
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                f"{seeded_sev.url}/webhooks/eventsub", headers=headers, content=body
            )
        assert response.status_code == 204
        await asyncio.sleep(0.5)
    assert received == []


@pytest.mark.parametrize("with_cookie", [False, True])
async def test_http_long_polling_is_refused(seeded_sev: SevProcess, with_cookie: bool) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(
            f"{seeded_sev.url}/socket.io/",
            params={"EIO": "4", "transport": "polling"},
            headers=_cookie() if with_cookie else {},
        )
    assert response.status_code == 400


async def test_a_revocation_sent_three_times_tells_viewers_once(seeded_sev: SevProcess) -> None:
    subscription = {
        "id": "revoked-three-times",
        "status": "authorization_revoked",
        "type": "channel.cheer",
        "version": "1",
        "cost": 0,
        "condition": {"broadcaster_user_id": QUIET.id},
        "transport": {"method": "webhook", "callback": f"{seeded_sev.url}/webhooks/eventsub"},
        "created_at": "2026-11-28T10:00:00.123456789Z",
    }
    async with seeded_sev.store() as store:
        await store.save_broadcaster(QUIET.model_copy(update={"granted_scopes": ["bits:read"]}))
        await store.save_subscription(
            SubscriptionRecord(
                id=subscription["id"], broadcaster_id=QUIET.id, type="channel.cheer",
                version="1", condition=subscription["condition"], status="enabled",
            )
        )  # fmt: skip
    notices: list[Any] = []
    async with _connected(seeded_sev) as client:
        client.on("notice", notices.append)
        await _watch(client, QUIET.login, None)
        # Twitch resends a message it thinks was not received: same id, same body.
        headers, body = signed_request({"subscription": subscription}, message_type="revocation")
        async with httpx.AsyncClient(base_url=seeded_sev.url, timeout=10) as twitch:
            for _ in range(3):
                response = await twitch.post("/webhooks/eventsub", headers=headers, content=body)
                assert response.status_code == 204
        await eventually(lambda: notices, what="the notice")
        await asyncio.sleep(0.5)  # room for the copies, had they been sent
    assert notices == [
        {"kind": "revocation", "type": "channel.cheer", "status": "authorization_revoked"}
    ]
    async with seeded_sev.store() as store:
        broadcaster = await store.get_broadcaster(QUIET.id)
    assert broadcaster is not None and broadcaster.granted_scopes == []
