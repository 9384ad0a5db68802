"""The simulated Twitch's EventSub WebSocket transport (twitchsim/websocket.py) and the Helix
rules of WebSocket subscriptions, over real loopback sockets.

Shapes are checked against the examples of Twitch's "Handling WebSocket Events" and "WebSocket
Messages" pages; close codes and reasons against twitch-cli's close_messages.go.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.polling import eventually
from tests.support.simworld import (
    FAST,
    STREAMER,
    STREAMER_ID,
    VIEWER,
    VIEWER_ID,
    Servers,
    World,
    condition_for,
    make_world,
    restart,
)
from twitchsim import Simulator
from twitchsim.catalog import CATALOG

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Keepalives of a second or two, a grace of a second and a half: a test waits seconds, not tens.
WS = dataclasses.replace(FAST, ws_min_keepalive_s=1, ws_reconnect_grace_s=1.5)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
# The documented examples' keys (WebSocket Messages; Handling WebSocket Events).
WELCOME_METADATA = {"message_id", "message_type", "message_timestamp"}
WELCOME_SESSION = {
    "id",
    "status",
    "keepalive_timeout_seconds",
    "reconnect_url",
    "connected_at",
    "recovery_url",
}
NOTIFICATION_METADATA = WELCOME_METADATA | {"subscription_type", "subscription_version"}
SUBSCRIPTION_KEYS = {
    "id",
    "status",
    "type",
    "version",
    "condition",
    "created_at",
    "transport",
    "cost",
}
CLOSES = {
    1000: ("client disconnected", "websocket_disconnected"),
    4000: ("internal server error", "websocket_internal_error"),
    4001: ("sent inbound traffic", "websocket_received_inbound_traffic"),
    4002: ("failed ping pong", "websocket_failed_ping_pong"),
    4003: ("connection unused", "websocket_connection_unused"),
    4004: ("client reconnect grace time expired", "websocket_failed_to_reconnect"),
    4005: ("network timeout", "websocket_network_timeout"),
    4006: ("network error", "websocket_network_error"),
    4007: ("invalid reconnect attempt", "websocket_failed_to_reconnect"),
}


@pytest_asyncio.fixture(loop_scope="module")
async def world(servers: Servers, http: httpx.AsyncClient) -> AsyncIterator[World]:
    async with make_world(servers, http, WS) as running:
        yield running


def ws_url(world: World, **query: Any) -> str:
    base = "ws" + world.base.removeprefix("http") + "/ws"
    return f"{base}?{urlencode(query)}" if query else base


class EventSocket:
    """One client connection, reading messages as an app would."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.received: list[dict[str, Any]] = []
        self.welcome: dict[str, Any] = {}

    @property
    def session_id(self) -> str:
        return str(self.welcome["payload"]["session"]["id"])

    async def next(self, timeout: float = 3.0) -> dict[str, Any]:
        # asyncio.timeout, not wait_for: inside another timeout (read_for), Python 3.11's
        # wait_for can swallow the outer cancellation when a message arrives at that moment,
        # and a stream of notifications then keeps the read going for ever.
        async with asyncio.timeout(timeout):
            text = await self.connection.recv()
        message: dict[str, Any] = json.loads(text)
        self.received.append(message)
        return message

    async def next_of(self, message_type: str, timeout: float = 3.0) -> dict[str, Any]:
        """The next message of this type; keepalives on the way are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            message = await self.next(max(deadline - time.monotonic(), 0.01))
            kind = message["metadata"]["message_type"]
            if kind == message_type:
                return message
            assert kind == "session_keepalive", f"{kind} while waiting for {message_type}"

    async def closed(self, timeout: float = 5.0) -> tuple[int, str]:
        """Read until the server closes; its close code and reason."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.next(timeout)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, "closed without a close frame"
            return closed.rcvd.code, closed.rcvd.reason

    def notifications(self) -> list[dict[str, Any]]:
        return [m for m in self.received if m["metadata"]["message_type"] == "notification"]


@asynccontextmanager
async def open_socket(
    world: World, *, url: str | None = None, **query: Any
) -> AsyncIterator[EventSocket]:
    """A connection to /ws (or `url`), its welcome read."""
    async with connect(url or ws_url(world, **query), proxy=None, ping_interval=None) as conn:
        socket = EventSocket(conn)
        socket.welcome = await socket.next()
        assert socket.welcome["metadata"]["message_type"] == "session_welcome"
        yield socket


def ws_body(
    session_id: str, type_: str = "stream.online", condition: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "type": type_,
        "version": CATALOG[type_].version,
        "condition": condition or condition_for(type_),
        "transport": {"method": "websocket", "session_id": session_id},
    }


async def user_token(world: World, login: str = VIEWER, scopes: list[str] | None = None) -> str:
    return str((await world.user_tokens(login, scopes))["access_token"])


async def subscribe(
    world: World,
    token: str,
    session_id: str,
    type_: str = "stream.online",
    condition: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = await world.create(ws_body(session_id, type_, condition), token)
    assert response.status_code == 202, response.text
    return dict(response.json()["data"][0])


async def listing(world: World, token: str, **query: str) -> dict[str, Any]:
    response = await world.http.get(
        f"{world.base}/helix/eventsub/subscriptions", params=query, headers=world.headers(token)
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def control(world: World, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await world.http.post(f"{world.base}/control/{path}", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def trigger(world: World, type_: str = "stream.online", count: int = 1) -> dict[str, Any]:
    return await control(world, "trigger", {"type": type_, "broadcaster": STREAMER, "count": count})


async def read_for(socket: EventSocket, seconds: float) -> None:
    """Read whatever comes for a while."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                await socket.next(seconds)


def status_of(world: World, subscription_id: str) -> str:
    return world.sim.subscriptions[subscription_id].status


# --- Connecting: welcome, keepalive timeout, keepalives ----------------------------------------


async def test_welcome_is_the_first_message_shaped_as_documented(world: World) -> None:
    async with open_socket(world, keepalive_timeout_seconds=2) as socket:
        welcome = socket.welcome
        assert set(welcome) == {"metadata", "payload"}
        assert set(welcome["metadata"]) == WELCOME_METADATA
        assert welcome["metadata"]["message_type"] == "session_welcome"
        assert TIMESTAMP.match(welcome["metadata"]["message_timestamp"])
        session = welcome["payload"]["session"]
        assert set(session) == WELCOME_SESSION
        assert session["status"] == "connected"
        assert session["keepalive_timeout_seconds"] == 2
        assert session["reconnect_url"] is None
        assert session["recovery_url"] is None
        assert TIMESTAMP.match(session["connected_at"])
        assert isinstance(session["id"], str) and session["id"]
        listed = (await world.http.get(f"{world.base}/control/websocket")).json()["data"]
        assert [s["id"] for s in listed] == [session["id"]]


@pytest.mark.parametrize(
    ("asked", "floor", "answered"),
    [(None, 1, 10), ("5", 1, 5), ("0", 1, 1), ("9999", 1, 600), ("3", 10, 10), ("30", 10, 30)],
)
async def test_keepalive_timeout_is_the_nearest_acceptable_value(
    servers: Servers, http: httpx.AsyncClient, asked: str | None, floor: int, answered: int
) -> None:
    config = dataclasses.replace(FAST, ws_min_keepalive_s=floor)
    async with make_world(servers, http, config) as world:
        query = {} if asked is None else {"keepalive_timeout_seconds": asked}
        async with open_socket(world, **query) as socket:
            session = socket.welcome["payload"]["session"]
            assert session["keepalive_timeout_seconds"] == answered


async def test_keepalives_come_before_the_timeout_runs_out(world: World) -> None:
    token = await user_token(world)
    async with open_socket(world, keepalive_timeout_seconds=1) as socket:
        await subscribe(world, token, socket.session_id)
        last = time.monotonic()
        for _ in range(3):
            keepalive = await socket.next(timeout=1.0)
            now = time.monotonic()
            assert now - last < 1.0
            last = now
            assert keepalive["metadata"]["message_type"] == "session_keepalive"
            assert set(keepalive["metadata"]) == WELCOME_METADATA
            assert keepalive["payload"] == {}


async def test_a_connection_without_a_subscription_in_time_is_closed_unused(world: World) -> None:
    async with open_socket(world, keepalive_timeout_seconds=1) as socket:
        started = time.monotonic()
        assert await socket.closed() == (4003, "connection unused")
        assert 0.8 < time.monotonic() - started < 3


async def test_a_message_from_the_client_closes_the_connection(world: World) -> None:
    token = await user_token(world)
    async with open_socket(world) as socket:
        sub = await subscribe(world, token, socket.session_id)
        await socket.connection.send("hello")
        assert await socket.closed() == (4001, "sent inbound traffic")
    assert status_of(world, sub["id"]) == "websocket_received_inbound_traffic"


# --- Notifications ------------------------------------------------------------------------------


async def test_notification_is_shaped_as_documented(world: World) -> None:
    token = await user_token(world)
    async with open_socket(world) as socket:
        created = await subscribe(world, token, socket.session_id)
        sent = (await trigger(world))["sent"]
        message = await socket.next_of("notification")
        metadata = message["metadata"]
        assert set(metadata) == NOTIFICATION_METADATA
        assert metadata["message_id"] == sent[0]
        assert metadata["subscription_type"] == "stream.online"
        assert metadata["subscription_version"] == "1"
        assert TIMESTAMP.match(metadata["message_timestamp"])
        assert set(message["payload"]) == {"subscription", "event"}
        subscription = message["payload"]["subscription"]
        assert set(subscription) == SUBSCRIPTION_KEYS
        assert subscription["id"] == created["id"]
        assert subscription["status"] == "enabled"
        assert subscription["condition"] == {"broadcaster_user_id": STREAMER_ID}
        assert subscription["transport"] == {
            "method": "websocket",
            "session_id": socket.session_id,
            "connected_at": socket.welcome["payload"]["session"]["connected_at"],
        }
        event = message["payload"]["event"]
        assert event["broadcaster_user_id"] == STREAMER_ID
        assert event["type"] == "live"


async def test_events_reach_only_matching_enabled_websocket_subscriptions(world: World) -> None:
    token = await user_token(world)
    async with open_socket(world) as first, open_socket(world) as second:
        online = await subscribe(world, token, first.session_id)
        await subscribe(world, token, second.session_id, "stream.offline")
        answer = await trigger(world, count=3)
        assert len(answer["sent"]) == 3
        for message_id in answer["sent"]:
            message = await first.next_of("notification")
            assert message["metadata"]["message_id"] == message_id
            assert message["payload"]["subscription"]["id"] == online["id"]
        with pytest.raises(TimeoutError):
            await second.next_of("notification", timeout=0.5)


async def test_websocket_and_webhook_subscriptions_both_get_an_event(world: World) -> None:
    token = await user_token(world)
    await world.subscribe("stream.online")
    async with open_socket(world) as socket:
        await subscribe(world, token, socket.session_id)
        sent = (await trigger(world))["sent"]
        assert len(sent) == 2
        message = await socket.next_of("notification")
        webhook = await world.notifications(1)
        assert {message["metadata"]["message_id"], webhook[0].message_id} == set(sent)


# --- Helix with a user token --------------------------------------------------------------------


async def test_create_with_a_user_token_is_enabled_at_once_with_the_users_totals(
    world: World,
) -> None:
    token = await user_token(world)
    async with open_socket(world) as socket:
        response = await world.create(ws_body(socket.session_id), token)
        assert response.status_code == 202, response.text
        body = response.json()
        assert set(body) == {"data", "total", "total_cost", "max_total_cost"}
        sub = body["data"][0]
        assert set(sub) == SUBSCRIPTION_KEYS
        assert sub["status"] == "enabled"
        assert sub["transport"]["method"] == "websocket"
        assert sub["transport"]["session_id"] == socket.session_id
        # The streamer has not authorized the client: it costs 1 of the user's 10.
        assert (sub["cost"], body["total"], body["total_cost"], body["max_total_cost"]) == (
            1,
            1,
            1,
            10,
        )


async def test_list_with_a_user_token_shows_that_users_websocket_subscriptions(
    world: World,
) -> None:
    viewer = await user_token(world)
    await world.subscribe("stream.offline")
    async with open_socket(world) as socket:
        # Before the streamer authorizes the client: it costs 1.
        mine = await subscribe(world, viewer, socket.session_id)
        streamer = await user_token(world, STREAMER)
        theirs = await subscribe(world, streamer, socket.session_id, "stream.offline")
        listed = await listing(world, viewer)
        assert [s["id"] for s in listed["data"]] == [mine["id"]]
        assert (listed["total"], listed["total_cost"], listed["max_total_cost"]) == (1, 1, 10)
        assert [s["id"] for s in (await listing(world, streamer))["data"]] == [theirs["id"]]
        # The app token sees its webhook subscriptions only.
        app = await listing(world, await world.app_token())
        assert [s["transport"]["method"] for s in app["data"]] == ["webhook"]
        assert app["total"] == 1


async def test_list_with_a_user_token_filters_and_pages(world: World) -> None:
    viewer = await user_token(world)
    async with open_socket(world) as socket:
        types = ["stream.online", "stream.offline", "channel.update"]
        created = [await subscribe(world, viewer, socket.session_id, t) for t in types]
        first = await listing(world, viewer, first="2")
        assert [s["id"] for s in first["data"]] == [c["id"] for c in created[:2]]
        rest = await listing(world, viewer, first="2", after=first["pagination"]["cursor"])
        assert [s["id"] for s in rest["data"]] == [created[2]["id"]]
        assert rest["pagination"] == {}
        by_type = await listing(world, viewer, type="stream.offline")
        assert [s["id"] for s in by_type["data"]] == [created[1]["id"]]
    # Closed: listed as disabled, with the time the connection was lost.
    await eventually(lambda: status_of(world, created[0]["id"]) == "websocket_disconnected")
    disabled = await listing(world, viewer, status="websocket_disconnected")
    assert len(disabled["data"]) == 3
    assert all("disconnected_at" in s["transport"] for s in disabled["data"])
    assert (await listing(world, viewer, status="enabled"))["data"] == []
    assert disabled["total_cost"] == 0


async def test_delete_with_a_user_token_deletes_only_the_users_own(world: World) -> None:
    viewer = await user_token(world)
    streamer = await user_token(world, STREAMER)
    async with open_socket(world) as socket:
        sub = await subscribe(world, viewer, socket.session_id)
        url = f"{world.base}/helix/eventsub/subscriptions"
        for token in (streamer, await world.app_token()):
            response = await world.http.delete(
                url, params={"id": sub["id"]}, headers=world.headers(token)
            )
            assert response.status_code == 404
        response = await world.http.delete(
            url, params={"id": sub["id"]}, headers=world.headers(viewer)
        )
        assert response.status_code == 204
        assert (await listing(world, viewer))["data"] == []
        assert (await trigger(world))["sent"] == []


async def test_helix_refuses_what_twitch_refuses_over_websocket(world: World) -> None:
    viewer = await user_token(world)
    app = await world.app_token()
    async with open_socket(world) as socket:
        cases: list[tuple[str, dict[str, Any], int, str]] = [
            ("app token", ws_body(socket.session_id), 400, "invalid transport and auth"),
            (
                "unknown session",
                ws_body("no-such-session"),
                400,
                "websocket transport session does not exist or has already disconnected",
            ),
            (
                "webhook-only type",
                ws_body(
                    socket.session_id,
                    "user.authorization.revoke",
                    {"client_id": world.sim.config.client_id},
                ),
                400,
                "webhook",
            ),
        ]
        for what, body, status, words in cases:
            response = await world.create(body, app if what == "app token" else viewer)
            assert response.status_code == status, (what, response.text)
            assert words in response.json()["message"], what
        assert (await listing(world, viewer))["data"] == []


async def test_a_closed_session_takes_no_subscription(world: World) -> None:
    viewer = await user_token(world)
    async with open_socket(world) as socket:
        session_id = socket.session_id
    await eventually(lambda: not world.sim.sockets.sessions())
    response = await world.create(ws_body(session_id), viewer)
    assert response.status_code == 400


async def test_scoped_types_need_the_scope_owners_own_token(world: World) -> None:
    viewer = await user_token(world, VIEWER, ["bits:read"])
    unscoped = await user_token(world, STREAMER)
    async with open_socket(world) as socket:
        for token in (viewer, unscoped):
            response = await world.create(ws_body(socket.session_id, "channel.cheer"), token)
            assert response.status_code == 403, response.text
        scoped = await user_token(world, STREAMER, ["bits:read"])
        sub = await subscribe(world, scoped, socket.session_id, "channel.cheer")
        assert sub["cost"] == 0


async def test_the_same_subscription_twice_on_one_session_is_a_conflict(world: World) -> None:
    viewer = await user_token(world)
    async with open_socket(world) as first, open_socket(world) as second:
        await subscribe(world, viewer, first.session_id)
        again = await world.create(ws_body(first.session_id), viewer)
        assert again.status_code == 409
        assert "already exists" in again.json()["message"]
        # On another connection it is another subscription.
        await subscribe(world, viewer, second.session_id)


async def test_the_cost_budget_counts_enabled_subscriptions_of_the_user(world: World) -> None:
    await control(world, "limits", {"ws_max_total_cost": 2})
    viewer = await user_token(world)
    streamer = await user_token(world, STREAMER)
    async with open_socket(world) as socket:
        # Another streamer's channel, who has not authorized the client: cost 1 each.
        costly = {"user_id": "41000002"}
        for type_ in ("stream.online", "stream.offline"):
            condition = {"broadcaster_user_id": "41000002"}
            await subscribe(world, viewer, socket.session_id, type_, condition)
        refused = await world.create(ws_body(socket.session_id, "user.update", costly), viewer)
        assert refused.status_code == 429
        assert "cost" in refused.json()["message"]
        # Free ones still go; and another user has a budget of their own.
        await subscribe(world, viewer, socket.session_id, "user.update", {"user_id": VIEWER_ID})
        await subscribe(world, streamer, socket.session_id, "user.update", costly)
    # Disabled subscriptions count against nothing.
    await eventually(lambda: not world.sim.sockets.sessions())
    async with open_socket(world) as socket:
        await subscribe(world, viewer, socket.session_id, "user.update", costly)


async def test_a_connection_takes_so_many_enabled_subscriptions(world: World) -> None:
    await control(world, "limits", {"ws_max_per_connection": 2})
    viewer = await user_token(world)
    async with open_socket(world) as socket:
        await subscribe(world, viewer, socket.session_id, "stream.online")
        await subscribe(world, viewer, socket.session_id, "stream.offline")
        refused = await world.create(ws_body(socket.session_id, "channel.update"), viewer)
        assert refused.status_code == 429


async def test_a_user_has_so_many_connections_with_enabled_subscriptions(world: World) -> None:
    await control(world, "limits", {"ws_max_connections": 2})
    viewer = await user_token(world)
    streamer = await user_token(world, STREAMER)
    async with open_socket(world) as one, open_socket(world) as two:
        await subscribe(world, viewer, one.session_id, "stream.online")
        await subscribe(world, viewer, two.session_id, "stream.online")
        async with open_socket(world) as three:
            refused = await world.create(ws_body(three.session_id, "stream.offline"), viewer)
            assert refused.status_code == 429
            assert refused.json()["message"] == "number of websocket transports limit exceeded"
            # Per user: another user may use the third connection.
            await subscribe(world, streamer, three.session_id, "stream.offline")
            # A connection closed frees its place.
            await control(world, "websocket/close", {"session_id": one.session_id, "code": 4000})
            await subscribe(world, viewer, three.session_id, "channel.update")


# --- Closing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(CLOSES))
async def test_each_close_code_disables_the_subscriptions_with_its_status(
    world: World, code: int
) -> None:
    reason, status = CLOSES[code]
    viewer = await user_token(world)
    async with open_socket(world) as socket, open_socket(world) as bystander:
        sub = await subscribe(world, viewer, socket.session_id)
        kept = await subscribe(world, viewer, bystander.session_id)
        closed = await control(
            world, "websocket/close", {"session_id": socket.session_id, "code": code}
        )
        assert closed["closed"] == [socket.session_id]
        assert await socket.closed() == (code, reason)
        assert status_of(world, sub["id"]) == status
        assert world.sim.subscriptions[sub["id"]].disconnected_at
        assert status_of(world, kept["id"]) == "enabled"
        sent = (await trigger(world))["sent"]
        assert len(sent) == 1
        message = await bystander.next_of("notification")
        assert message["payload"]["subscription"]["id"] == kept["id"]


async def test_the_client_closing_disables_its_subscriptions(world: World) -> None:
    viewer = await user_token(world)
    async with open_socket(world) as socket:
        sub = await subscribe(world, viewer, socket.session_id)
    await eventually(lambda: status_of(world, sub["id"]) == "websocket_disconnected")
    answer = await trigger(world)
    assert answer["sent"] == []
    assert answer["reason"] == "subscription_not_enabled"
    assert answer["statuses"] == ["websocket_disconnected"]
    assert answer["channel_subscribed"] is False


async def test_a_trigger_says_nothing_is_subscribed_when_only_another_type_is(
    world: World,
) -> None:
    viewer = await user_token(world)
    async with open_socket(world) as socket:
        await subscribe(world, viewer, socket.session_id, "stream.offline")
        answer = await trigger(world)
        assert answer["sent"] == []
        assert answer["reason"] == "no_subscription"
        assert answer["channel_subscribed"] is True


# --- Revocation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "status"),
    [
        ("revoke", "authorization_revoked"),
        ("revoke", "version_removed"),
        ("remove-user", "user_removed"),
        ("disconnect", "authorization_revoked"),
    ],
)
async def test_revocation_comes_over_the_socket_and_ends_delivery(
    world: World, how: str, status: str
) -> None:
    streamer = await user_token(world, STREAMER, ["bits:read"])
    async with open_socket(world) as socket:
        sub = await subscribe(world, streamer, socket.session_id, "channel.cheer")
        if how == "revoke":
            await control(world, "revoke", {"status": status, "subscription_id": sub["id"]})
        else:
            await control(world, how, {"login": STREAMER})
        message = await socket.next_of("revocation")
        assert set(message["metadata"]) == NOTIFICATION_METADATA
        assert message["metadata"]["subscription_type"] == "channel.cheer"
        assert message["metadata"]["subscription_version"] == "1"
        assert set(message["payload"]) == {"subscription"}
        revoked = message["payload"]["subscription"]
        assert (revoked["id"], revoked["status"]) == (sub["id"], status)
        assert revoked["transport"]["session_id"] == socket.session_id
        assert status_of(world, sub["id"]) == status
        if how != "remove-user":
            assert (await trigger(world, "channel.cheer"))["sent"] == []
        with pytest.raises(TimeoutError):
            await socket.next_of("notification", timeout=0.5)
    # No webhook revocation was posted for it.
    assert world.receiver.deliveries == []


# --- Reconnect ----------------------------------------------------------------------------------


async def test_reconnect_hands_over_without_losing_or_repeating_a_notification(
    world: World,
) -> None:
    viewer = await user_token(world)
    sent: list[str] = []
    stop = asyncio.Event()

    async def fire() -> None:
        # Bounded, whatever happens to the test: at most 500 events, one every 10 ms.
        for _ in range(500):
            if stop.is_set():
                return
            sent.extend((await trigger(world))["sent"])
            await asyncio.sleep(0.01)

    async with open_socket(world, keepalive_timeout_seconds=2) as old:
        sub = await subscribe(world, viewer, old.session_id)
        firing = asyncio.create_task(fire())
        try:
            await read_for(old, 0.4)
            assert len(old.notifications()) >= 3
            answer = await control(world, "websocket/reconnect", {})
            [(session_id, url)] = [(d["session_id"], d["reconnect_url"]) for d in answer["data"]]
            assert session_id == old.session_id
            async with asyncio.timeout(5):
                message = await old.next()
                while message["metadata"]["message_type"] != "session_reconnect":
                    message = await old.next()
            assert set(message["metadata"]) == WELCOME_METADATA
            session = message["payload"]["session"]
            assert session["id"] == old.session_id
            assert session["status"] == "reconnecting"
            assert session["keepalive_timeout_seconds"] is None
            assert session["reconnect_url"] == url
            assert url.startswith(ws_url(world) + "?")
            # Until the client connects to the new URL, the old connection still delivers.
            before = len(old.notifications())
            await read_for(old, 0.4)
            assert len(old.notifications()) > before
            async with open_socket(world, url=url) as new:
                assert new.session_id != old.session_id
                assert new.welcome["payload"]["session"]["keepalive_timeout_seconds"] == 2
                moved = world.sim.subscriptions[sub["id"]]
                assert (moved.session_id, moved.status) == (new.session_id, "enabled")
                # What the old connection was given before the hand-over, read to its end.
                await read_for(old, 0.3)
                await old.connection.close()
                await read_for(new, 0.4)
                assert len(new.notifications()) >= 3
                stop.set()
                await firing
                async with asyncio.timeout(5):
                    while len(old.notifications()) + len(new.notifications()) < len(sent):
                        await new.next_of("notification")
                await read_for(new, 0.2)
                assert status_of(world, sub["id"]) == "enabled"
                transport = new.notifications()[-1]["payload"]["subscription"]["transport"]
                assert transport["session_id"] == new.session_id
        finally:
            stop.set()
            await asyncio.gather(firing, return_exceptions=True)
    received = [m["metadata"]["message_id"] for m in old.notifications() + new.notifications()]
    assert len(received) == len(set(received)), "a notification came twice"
    assert received == sent, "a notification was lost or reordered"


async def test_reconnect_not_taken_up_in_time_closes_4004(world: World) -> None:
    viewer = await user_token(world)
    async with open_socket(world) as socket:
        sub = await subscribe(world, viewer, socket.session_id)
        started = time.monotonic()
        await control(world, "websocket/reconnect", {"session_id": socket.session_id})
        assert await socket.closed() == (4004, "client reconnect grace time expired")
        assert 1.3 < time.monotonic() - started < 4
    assert status_of(world, sub["id"]) == "websocket_failed_to_reconnect"


async def test_an_unknown_or_used_reconnect_url_is_refused_4007(world: World) -> None:
    viewer = await user_token(world)
    async with connect(ws_url(world, reconnect_id="made-up"), proxy=None) as connection:
        bogus = EventSocket(connection)
        assert await bogus.closed() == (4007, "invalid reconnect attempt")
    assert bogus.received == []
    async with open_socket(world) as old:
        await subscribe(world, viewer, old.session_id)
        url = (await control(world, "websocket/reconnect", {}))["data"][0]["reconnect_url"]
        async with open_socket(world, url=url), connect(url, proxy=None) as connection:
            again = EventSocket(connection)
            assert await again.closed() == (4007, "invalid reconnect attempt")


async def test_closing_the_old_connection_after_the_hand_over_keeps_the_subscriptions(
    world: World,
) -> None:
    viewer = await user_token(world)
    async with open_socket(world) as old:
        sub = await subscribe(world, viewer, old.session_id)
        url = (await control(world, "websocket/reconnect", {}))["data"][0]["reconnect_url"]
        async with open_socket(world, url=url) as new:
            await old.connection.close()
            await asyncio.sleep(0.2)
            assert status_of(world, sub["id"]) == "enabled"
            listed = (await listing(world, viewer))["data"]
            assert listed[0]["transport"]["session_id"] == new.session_id
            # Past the grace, nothing closes the new connection, and it still delivers.
            await asyncio.sleep(1.6)
            sent = (await trigger(world))["sent"]
            message = await new.next_of("notification")
            assert message["metadata"]["message_id"] == sent[0]


# --- Silence and the control endpoints ----------------------------------------------------------


async def test_a_silenced_connection_sends_nothing_and_loses_what_falls_due(world: World) -> None:
    viewer = await user_token(world)
    async with open_socket(world, keepalive_timeout_seconds=1) as socket:
        await subscribe(world, viewer, socket.session_id)
        await control(world, "websocket/silence", {"session_id": socket.session_id, "seconds": 2})
        lost = (await trigger(world))["sent"]
        assert len(lost) == 1
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await socket.next(timeout=1.8)
        first = await socket.next(timeout=1.5)
        assert 1.8 < time.monotonic() - started < 3.3
        assert first["metadata"]["message_type"] == "session_keepalive"
        sent = (await trigger(world))["sent"]
        message = await socket.next_of("notification")
        assert message["metadata"]["message_id"] == sent[0] != lost[0]


async def test_control_lists_open_sessions_with_their_users_and_subscriptions(
    world: World,
) -> None:
    viewer = await user_token(world)
    async with open_socket(world, keepalive_timeout_seconds=7) as socket:
        sub = await subscribe(world, viewer, socket.session_id)
        data = (await world.http.get(f"{world.base}/control/websocket")).json()["data"]
        assert data == [
            {
                "id": socket.session_id,
                "status": "connected",
                "connected_at": socket.welcome["payload"]["session"]["connected_at"],
                "keepalive_timeout_seconds": 7,
                "user_ids": [VIEWER_ID],
                "subscriptions": [sub["id"]],
                "url": ws_url(world),
            }
        ]
    bad = await world.http.post(
        f"{world.base}/control/websocket/close", json={"session_id": "nope", "code": 4000}
    )
    assert bad.status_code == 404
    bad = await world.http.post(f"{world.base}/control/websocket/close", json={"code": 4999})
    assert bad.status_code == 400


# --- Stop and restart ---------------------------------------------------------------------------


async def test_a_restart_closes_connections_and_brings_subscriptions_back_disabled(
    servers: Servers, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    config = dataclasses.replace(WS, data_dir=tmp_path)
    async with make_world(servers, http, config) as world:
        viewer = await user_token(world)
        async with open_socket(world) as socket:
            sub = await subscribe(world, viewer, socket.session_id)
            await restart(servers, world, config)
            code, _ = await socket.closed()
            assert code == 1001
        restored = world.sim.subscriptions[sub["id"]]
        assert restored.status == "websocket_disconnected"
        assert restored.disconnected_at
        listed = (await listing(world, viewer))["data"]
        assert [(s["id"], s["status"]) for s in listed] == [(sub["id"], "websocket_disconnected")]
        assert (await trigger(world))["sent"] == []


async def test_a_crash_leaves_saved_websocket_subscriptions_disabled_after_restart(
    servers: Servers, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    config = dataclasses.replace(WS, data_dir=tmp_path)
    async with make_world(servers, http, config) as world:
        viewer = await user_token(world)
        async with open_socket(world) as socket:
            sub = await subscribe(world, viewer, socket.session_id)
            assert world.sim._state is not None
            await world.sim._state.save()
            # Started again from what was saved while it was enabled, as after a crash.
            fresh = Simulator(config)
            assert fresh.subscriptions[sub["id"]].status == "websocket_disconnected"
            assert fresh.subscriptions[sub["id"]].disconnected_at
