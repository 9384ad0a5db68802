"""Conformance of the simulated Twitch to Twitch's wire contract (docs/TWITCH.md).

Everything goes over real HTTP: the simulator and a recording webhook receiver run under uvicorn
on free loopback ports; signatures are recomputed here with hmac, independently of the simulator.
"""

from __future__ import annotations

import asyncio
import copy
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio

from tests.support.polling import eventually
from tests.support.simworld import (
    FAST,
    REDIRECT,
    SECRET,
    STREAMER,
    STREAMER_ID,
    VIEWER,
    VIEWER_ID,
    Servers,
    World,
    expected_signature,
    make_world,
)
from twitchsim import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SimulatorConfig
from twitchsim.catalog import CATALOG

OTHER_STREAMER_ID = "41000002"
ALL_SCOPES = sorted({spec.scope for spec in CATALOG.values() if spec.scope})
# Types whose events happen in a channel (user.authorization.revoke is the app's own).
CHANNEL_TYPES = sorted(t for t, spec in CATALOG.items() if not spec.app)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
HEADERS = (
    "twitch-eventsub-message-id",
    "twitch-eventsub-message-retry",
    "twitch-eventsub-message-type",
    "twitch-eventsub-message-signature",
    "twitch-eventsub-message-timestamp",
    "twitch-eventsub-subscription-type",
    "twitch-eventsub-subscription-version",
)


def parse_timestamp(value: str) -> datetime:
    """Trim nanoseconds to microseconds, as SEV must, then parse."""
    head, _, fraction = value.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction or '0')[:6]}+00:00")


# One pair of servers per module (tests/twitchsim/conftest.py); each test gets its own
# simulator and receiver behind them (`make_world`).
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def world(servers: Servers, http: httpx.AsyncClient) -> AsyncIterator[World]:
    async with make_world(servers, http) as running:
        yield running


# --- Deliveries: challenge, signature, headers ------------------------------------------------


async def test_challenge_answered_right_enables_the_subscription(world: World) -> None:
    response = await world.create(world.body())
    assert response.status_code == 202
    created = response.json()["data"][0]
    assert created["status"] == "webhook_callback_verification_pending"
    assert created["transport"] == {"method": "webhook", "callback": world.callback}
    await eventually(lambda: world.receiver.deliveries)
    challenge = world.receiver.deliveries[0]
    assert tuple(h for h in HEADERS if h in challenge.headers) == HEADERS
    assert challenge.message_type == "webhook_callback_verification"
    assert challenge.retry == 0
    assert challenge.headers["twitch-eventsub-message-signature"] == expected_signature(
        SECRET, challenge
    )
    assert set(challenge.json) == {"challenge", "subscription"}
    assert challenge.json["subscription"]["status"] == "webhook_callback_verification_pending"
    assert "secret" not in challenge.json["subscription"]["transport"]
    await eventually(lambda: world.sim.subscriptions[created["id"]].status == "enabled")


@pytest.mark.parametrize("answer", ["wrong", "json", "html", "error"])
async def test_challenge_answered_wrong_fails_verification(world: World, answer: Any) -> None:
    world.receiver.challenge = answer
    response = await world.create(world.body())
    sub_id = response.json()["data"][0]["id"]
    await eventually(
        lambda: world.sim.subscriptions[sub_id].status != response.json()["data"][0]["status"]
    )
    assert world.sim.subscriptions[sub_id].status == "webhook_callback_verification_failed"
    assert await world.sim.trigger("stream.online", STREAMER) == []


async def test_notification_is_signed_and_carries_every_header(world: World) -> None:
    sub = await world.subscribe()
    sent = await world.sim.trigger("stream.online", STREAMER)
    (delivery,) = await world.notifications(1)
    assert delivery.message_id == sent[0]
    assert delivery.headers["twitch-eventsub-message-type"] == "notification"
    assert delivery.headers["twitch-eventsub-message-retry"] == "0"
    assert delivery.headers["twitch-eventsub-subscription-type"] == "stream.online"
    assert delivery.headers["twitch-eventsub-subscription-version"] == "1"
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["twitch-eventsub-message-signature"] == expected_signature(
        SECRET, delivery
    )
    stamp = delivery.headers["twitch-eventsub-message-timestamp"]
    assert TIMESTAMP.match(stamp), stamp
    assert abs(datetime.now(UTC) - parse_timestamp(stamp)) < timedelta(seconds=10)
    assert delivery.json["subscription"] == {**sub, "status": "enabled"}
    assert delivery.json["event"]["broadcaster_user_id"] == STREAMER_ID


async def test_notifications_keep_order_per_subscription(world: World) -> None:
    await world.subscribe()
    sent = await world.sim.trigger("stream.online", STREAMER, count=10)
    received = await world.notifications(10)
    assert [d.message_id for d in received] == sent


async def test_overrides_reach_the_event_and_html_is_escaped_like_go(world: World) -> None:
    await world.subscribe("channel.raid")
    evil = "<img src=x onerror=alert(1)>"
    await world.sim.trigger("channel.raid", STREAMER, from_broadcaster_user_name=evil)
    (delivery,) = await world.notifications(1)
    assert b"\\u003cimg" in delivery.body
    assert b"<img" not in delivery.body
    assert delivery.json["event"]["from_broadcaster_user_name"] == evil
    assert delivery.headers["twitch-eventsub-message-signature"] == expected_signature(
        SECRET, delivery
    )


# --- Retries and failures ---------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["status", "timeout"])
async def test_retries_keep_the_message_id_and_count_up(world: World, failure: str) -> None:
    await world.subscribe()
    if failure == "status":
        world.receiver.fail_next = 2
    else:
        world.receiver.delay_s = 0.8  # longer than the simulator's 0.5 s delivery timeout
    sent = await world.sim.trigger("stream.online", STREAMER)
    if failure == "timeout":
        await eventually(lambda: len(world.receiver.of_type("notification")) >= 2)
        world.receiver.delay_s = 0
    received = await world.notifications(3)
    assert [d.message_id for d in received] == sent * 3
    assert [d.retry for d in received] == [0, 1, 2]
    for delivery in received:
        signature = delivery.headers["twitch-eventsub-message-signature"]
        assert signature == expected_signature(SECRET, delivery)
    await asyncio.sleep(0.2)
    assert next(iter(world.sim.subscriptions.values())).status == "enabled"


async def test_repeated_failure_exceeds_and_revokes(world: World) -> None:
    sub = await world.subscribe()
    world.receiver.notification_status = 503
    await world.sim.trigger("stream.online", STREAMER)
    await eventually(lambda: world.receiver.of_type("revocation"))
    attempts = world.receiver.of_type("notification")
    assert [d.retry for d in attempts] == [0, 1, 2]  # 1 + len(retry_delays_s)
    (revocation,) = world.receiver.of_type("revocation")
    assert revocation.json == {"subscription": {**sub, "status": "notification_failures_exceeded"}}
    assert revocation.headers["twitch-eventsub-message-signature"] == expected_signature(
        SECRET, revocation
    )
    assert world.sim.subscriptions[sub["id"]].status == "notification_failures_exceeded"
    assert await world.sim.trigger("stream.online", STREAMER) == []


async def test_deliveries_do_not_block_requests(world: World) -> None:
    world.receiver.delay_s = 2
    started = time.monotonic()
    response = await world.create(world.body())
    assert response.status_code == 202
    assert time.monotonic() - started < 1


async def test_deleted_subscription_gets_no_queued_notification(world: World) -> None:
    sub = await world.subscribe()
    world.sim.faults.delay_s = 0.3
    await world.sim.trigger("stream.online", STREAMER)
    response = await world.http.delete(
        f"{world.base}/helix/eventsub/subscriptions",
        params={"id": sub["id"]},
        headers=world.headers(await world.app_token()),
    )
    assert response.status_code == 204
    await asyncio.sleep(0.5)
    assert world.receiver.of_type("notification") == []


# --- Faults -----------------------------------------------------------------------------------


async def test_fault_duplicate_delivers_each_notification_twice(world: World) -> None:
    await world.subscribe()
    world.sim.faults.duplicate = True
    sent = await world.sim.trigger("stream.online", STREAMER, count=2)
    received = await world.notifications(4)
    assert sorted(d.message_id for d in received) == sorted(sent * 2)


async def test_fault_out_of_order_scrambles_a_batch(world: World) -> None:
    await world.subscribe()
    world.sim.faults.out_of_order = True
    sent = await world.sim.trigger("stream.online", STREAMER, count=5)
    received = [d.message_id for d in await world.notifications(5)]
    assert sorted(received) == sorted(sent)
    assert received != sent


async def test_fault_bad_signature_breaks_the_hmac(world: World) -> None:
    await world.subscribe()
    world.sim.faults.bad_signature = True
    await world.sim.trigger("stream.online", STREAMER)
    (delivery,) = await world.notifications(1)
    assert delivery.headers["twitch-eventsub-message-signature"] != expected_signature(
        SECRET, delivery
    )


async def test_fault_delay_holds_deliveries(world: World) -> None:
    await world.subscribe()
    world.sim.faults.delay_s = 0.3
    started = time.monotonic()
    await world.sim.trigger("stream.online", STREAMER)
    (delivery,) = await world.notifications(1)
    assert delivery.received_at - started >= 0.3


# --- Every event type SEV uses ----------------------------------------------------------------

B = {"broadcaster_user_id", "broadcaster_user_login", "broadcaster_user_name"}
U = {"user_id", "user_login", "user_name"}
# Charity campaigns name the channel broadcaster_id/_login/_name.
CAMPAIGN = {"id", "broadcaster_id", "broadcaster_login", "broadcaster_name", "charity_name",
            "charity_description", "charity_logo", "charity_website", "current_amount",
            "target_amount"}  # fmt: skip
EVENT_FIELDS: dict[str, set[str]] = {
    "stream.online": {"id", *B, "type", "started_at"},
    "stream.offline": B,
    "channel.update": {*B, "title", "language", "category_id", "category_name",
                       "content_classification_labels"},
    "channel.raid": {"from_broadcaster_user_id", "from_broadcaster_user_login",
                     "from_broadcaster_user_name", "to_broadcaster_user_id",
                     "to_broadcaster_user_login", "to_broadcaster_user_name", "viewers"},
    "user.update": {*U, "email_verified", "description"},
    "channel.follow": {*U, *B, "followed_at"},
    "channel.subscribe": {*U, *B, "tier", "is_gift"},
    "channel.subscription.gift": {*U, *B, "total", "tier", "cumulative_total", "is_anonymous"},
    "channel.subscription.message": {*U, *B, "tier", "message", "cumulative_months",
                                     "streak_months", "duration_months"},
    "channel.cheer": {"is_anonymous", *U, *B, "message", "bits"},
    "channel.bits.use": {*U, *B, "bits", "type", "power_up", "message"},
    "channel.hype_train.begin": {"id", *B, "total", "progress", "goal", "top_contributions",
                                 "level", "all_time_high_level", "all_time_high_total",
                                 "shared_train_participants", "started_at", "expires_at", "type",
                                 "is_shared_train"},
    "channel.hype_train.progress": {"id", *B, "total", "progress", "goal", "top_contributions",
                                    "level", "shared_train_participants", "started_at",
                                    "expires_at", "type", "is_shared_train"},
    "channel.hype_train.end": {"id", *B, "level", "total", "top_contributions",
                               "shared_train_participants", "started_at", "ended_at",
                               "cooldown_ends_at", "type", "is_shared_train"},
    "channel.poll.begin": {"id", *B, "title", "choices", "bits_voting", "channel_points_voting",
                           "started_at", "ends_at"},
    "channel.poll.end": {"id", *B, "title", "choices", "bits_voting", "channel_points_voting",
                         "status", "started_at", "ended_at"},
    "channel.prediction.begin": {"id", *B, "title", "outcomes", "started_at", "locks_at"},
    "channel.prediction.end": {"id", *B, "title", "winning_outcome_id", "outcomes", "status",
                               "started_at", "ended_at"},
    "channel.channel_points_custom_reward_redemption.add": {"id", *B, *U, "user_input", "status",
                                                            "reward", "redeemed_at"},
    "channel.channel_points_automatic_reward_redemption.add": {*B, *U, "id", "reward", "message",
                                                               "redeemed_at"},
    "channel.shoutout.receive": {*B, "from_broadcaster_user_id", "from_broadcaster_user_login",
                                 "from_broadcaster_user_name", "viewer_count", "started_at"},
    "channel.shoutout.create": {*B, "to_broadcaster_user_id", "to_broadcaster_user_login",
                                "to_broadcaster_user_name", "moderator_user_id",
                                "moderator_user_login", "moderator_user_name", "viewer_count",
                                "started_at", "cooldown_ends_at", "target_cooldown_ends_at"},
    "channel.goal.begin": {"id", *B, "type", "description", "current_amount", "target_amount",
                           "started_at"},
    "channel.goal.progress": {"id", *B, "type", "description", "current_amount",
                              "target_amount", "started_at"},
    "channel.goal.end": {"id", *B, "type", "description", "is_achieved", "current_amount",
                         "target_amount", "started_at", "ended_at"},
    "channel.charity_campaign.donate": {"id", "campaign_id", *B, *U, "charity_name",
                                        "charity_description", "charity_logo", "charity_website",
                                        "amount"},
    "channel.charity_campaign.start": {*CAMPAIGN, "started_at"},
    "channel.charity_campaign.progress": CAMPAIGN,
    "channel.charity_campaign.stop": {*CAMPAIGN, "stopped_at"},
    "channel.ad_break.begin": {"duration_seconds", "started_at", "is_automatic", *B,
                               "requester_user_id", "requester_user_login",
                               "requester_user_name"},
}  # fmt: skip


async def test_every_catalogued_type_has_a_payload_check() -> None:
    assert set(EVENT_FIELDS) == set(CHANNEL_TYPES)


@pytest.mark.parametrize("type_", CHANNEL_TYPES)
async def test_trigger_sends_documented_fields(world: World, type_: str) -> None:
    await world.user_tokens(STREAMER, ALL_SCOPES)
    sub = await world.subscribe(type_)
    assert sub["cost"] == 0  # scoped, or the streamer authorized the client
    response = await world.http.post(
        f"{world.base}/control/trigger",
        json={"type": type_, "broadcaster": STREAMER, "count": 1},
    )
    assert response.status_code == 200
    (delivery,) = await world.notifications(1)
    assert delivery.message_id == response.json()["sent"][0]
    assert delivery.headers["twitch-eventsub-subscription-version"] == CATALOG[type_].version
    event = delivery.json["event"]
    assert EVENT_FIELDS[type_] <= set(event), EVENT_FIELDS[type_] - set(event)
    channel = "to_broadcaster_user_id" if type_ == "channel.raid" else "broadcaster_user_id"
    if type_.startswith("channel.charity_campaign.") and type_ != "channel.charity_campaign.donate":
        channel = "broadcaster_id"
    owner = "user_id" if type_ == "user.update" else channel
    assert event[owner] == STREAMER_ID


async def test_trigger_takes_twitch_cli_aliases(world: World) -> None:
    await world.user_tokens(STREAMER, ALL_SCOPES)
    await world.subscribe("channel.subscribe")
    await world.subscribe("channel.cheer")
    for alias, count in (("gift", 2), ("subscribe", 1), ("cheer", 1)):
        response = await world.http.post(
            f"{world.base}/control/trigger",
            json={"type": alias, "broadcaster": STREAMER, "count": count},
        )
        assert response.status_code == 200
        assert len(response.json()["sent"]) == count
    deliveries = await world.notifications(4)
    # twitch-cli's `gift` is a sub received as a gift; its `subscribe` is not one.
    assert [
        (d.json["subscription"]["type"], d.json["event"].get("is_gift")) for d in deliveries
    ] == [
        ("channel.subscribe", True),
        ("channel.subscribe", True),
        ("channel.subscribe", False),
        ("channel.cheer", None),
    ]


async def test_trigger_that_reaches_nobody_says_why(world: World) -> None:
    async def trigger(name: str) -> dict[str, Any]:
        response = await world.http.post(
            f"{world.base}/control/trigger", json={"type": name, "broadcaster": STREAMER}
        )
        assert response.status_code == 200
        assert response.json()["sent"] == []
        return dict(response.json())

    # Another channel's subscriptions are not this one's.
    await world.subscribe("stream.online", broadcaster_user_id=OTHER_STREAMER_ID)
    assert await trigger("cheer") == {
        "sent": [],
        "reason": "no_subscription",
        "type": "channel.cheer",
        "broadcaster": STREAMER,
        "channel_subscribed": False,
        "scope": "bits:read",
        "scope_granted": False,
    }
    await world.subscribe("stream.online")
    public_only = await trigger("channel.cheer")
    assert (public_only["channel_subscribed"], public_only["scope_granted"]) == (True, False)
    await world.user_tokens(STREAMER, ["bits:read"])
    granted = await trigger("cheer")
    assert (granted["reason"], granted["scope_granted"]) == ("no_subscription", True)
    sub = await world.subscribe("channel.cheer")
    response = await world.http.post(
        f"{world.base}/control/revoke",
        json={"status": "authorization_revoked", "subscription_id": sub["id"]},
    )
    assert response.json()["revoked"] == [sub["id"]]
    revoked = await trigger("cheer")
    assert revoked["reason"] == "subscription_not_enabled"
    assert revoked["statuses"] == ["authorization_revoked"]


async def test_raid_reaches_to_and_from_subscriptions(world: World) -> None:
    await world.subscribe("channel.raid", to_broadcaster_user_id=STREAMER_ID)
    await world.subscribe("channel.raid", from_broadcaster_user_id=STREAMER_ID)
    await world.sim.trigger("channel.raid", STREAMER)
    (delivery,) = await world.notifications(1)
    assert delivery.json["event"]["to_broadcaster_user_id"] == STREAMER_ID
    world.receiver.deliveries.clear()
    # With only an outgoing subscription, the streamer is the raider.
    to_sub = next(
        s for s in world.sim.subscriptions.values() if "to_broadcaster_user_id" in s.condition
    )
    to_sub.status = "authorization_revoked"
    await world.sim.trigger("channel.raid", STREAMER)
    (delivery,) = await world.notifications(1)
    assert delivery.json["event"]["from_broadcaster_user_id"] == STREAMER_ID


async def test_demo_stream_goes_live_once_then_brings_viewer_events(
    servers: Servers, http: httpx.AsyncClient
) -> None:
    # A moment every 50 ms on average: a session of hours, seen through its first second.
    config = SimulatorConfig(events_per_minute=1200, seed=3)
    async with make_world(servers, http, config) as world:
        await world.user_tokens(STREAMER, ALL_SCOPES)
        for type_ in ("stream.online", "stream.offline", "channel.follow"):
            await world.subscribe(type_)
        deliveries = await world.notifications(10)
        types = [d.json["subscription"]["type"] for d in deliveries]
        assert types[0] == "stream.online"
        assert types.count("stream.online") == 1
        assert set(types) == {"stream.online", "channel.follow"}
        assert all(d.json["event"]["broadcaster_user_id"] == STREAMER_ID for d in deliveries)


# --- EventSub subscription API: error codes, cost, listing ------------------------------------


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], Any]:
    def change(body: dict[str, Any]) -> dict[str, Any]:
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return body

    return change


@pytest.mark.parametrize(
    ("change", "status"),
    [
        pytest.param(_set(("transport", "secret"), "x" * 9), 400, id="secret-too-short"),
        pytest.param(_set(("transport", "secret"), "x" * 101), 400, id="secret-too-long"),
        pytest.param(_set(("transport", "secret"), "sécret-sécret"), 400, id="secret-not-ascii"),
        pytest.param(_set(("transport", "secret"), "x" * 10), 202, id="secret-10-ok"),
        pytest.param(_set(("transport", "secret"), "x" * 100), 202, id="secret-100-ok"),
        pytest.param(_set(("type",), "channel.nope"), 400, id="unknown-type"),
        pytest.param(_set(("version",), "2"), 400, id="unknown-version"),
        pytest.param(_set(("condition",), {}), 400, id="missing-condition"),
        pytest.param(_set(("condition", "color"), "red"), 400, id="unknown-condition-field"),
        pytest.param(_set(("condition", "broadcaster_user_id"), "999"), 400, id="unknown-user"),
        pytest.param(_set(("transport", "callback"), "ftp://x/cb"), 400, id="callback-ftp"),
        pytest.param(_set(("transport", "callback"), "not a url"), 400, id="callback-garbage"),
        pytest.param(_set(("transport",), {"method": "websocket", "session_id": "x"}), 400,
                     id="websocket-unsupported"),
        pytest.param(lambda body: [body], 400, id="not-an-object"),
    ],
)  # fmt: skip
async def test_create_validates_the_request(
    world: World, change: Callable[[dict[str, Any]], Any], status: int
) -> None:
    response = await world.create(change(copy.deepcopy(world.body())))
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.json()["status"] == status
        assert set(response.json()) == {"error", "status", "message"}


async def test_raid_condition_needs_exactly_one_side(world: World) -> None:
    both = {"to_broadcaster_user_id": STREAMER_ID, "from_broadcaster_user_id": OTHER_STREAMER_ID}
    response = await world.create(world.body("channel.raid", **both))
    assert response.status_code == 400


@pytest.mark.parametrize(
    "case", ["no-header", "bad-token", "other-client", "no-client-id", "user-token"]
)
async def test_create_needs_an_app_token_of_this_client(world: World, case: str) -> None:
    token = await world.app_token()
    headers = world.headers(token)
    if case == "no-header":
        del headers["Authorization"]
    elif case == "bad-token":
        headers["Authorization"] = "Bearer nope"
    elif case == "other-client":
        headers["Client-Id"] = "someoneelse"
    elif case == "no-client-id":
        del headers["Client-Id"]
    else:
        user = await world.user_tokens(STREAMER)
        headers = world.headers(user["access_token"])
    response = await world.http.post(
        f"{world.base}/helix/eventsub/subscriptions", json=world.body(), headers=headers
    )
    assert response.status_code == 401
    assert response.json()["error"] == "Unauthorized"


async def test_scoped_type_needs_the_broadcasters_grant(world: World) -> None:
    body = world.body("channel.cheer")
    assert (await world.create(body)).status_code == 403
    await world.user_tokens(STREAMER, ["channel:read:subscriptions"])  # not bits:read
    assert (await world.create(body)).status_code == 403
    await world.user_tokens(STREAMER, ["bits:read"])
    assert (await world.create(body)).status_code == 202


async def test_moderator_condition_must_be_the_broadcaster(world: World) -> None:
    await world.user_tokens(VIEWER, ["moderator:read:followers"])
    body = world.body(
        "channel.follow", broadcaster_user_id=STREAMER_ID, moderator_user_id=VIEWER_ID
    )
    assert (await world.create(body)).status_code == 403


async def test_duplicate_is_a_conflict_and_a_fourth_copy_too_many(world: World) -> None:
    assert (await world.create(world.body())).status_code == 202
    duplicate = await world.create(world.body())
    assert duplicate.status_code == 409
    assert duplicate.json()["status"] == 409
    for n in (2, 3):
        body = world.body()
        body["transport"]["callback"] = f"{world.callback}?copy={n}"
        assert (await world.create(body)).status_code == 202
    body = world.body()
    body["transport"]["callback"] = f"{world.callback}?copy=4"
    assert (await world.create(body)).status_code == 429


async def test_failed_subscription_blocks_a_new_one_until_deleted(world: World) -> None:
    # Twitch's 409 counts an existing subscription whatever its status: a failed one stays
    # (and counts against the limit of 3) until it is deleted.
    world.receiver.challenge = "wrong"
    first = (await world.create(world.body())).json()["data"][0]
    await eventually(lambda: world.sim.subscriptions[first["id"]].status != first["status"])
    assert world.sim.subscriptions[first["id"]].status == "webhook_callback_verification_failed"
    world.receiver.challenge = "echo"
    conflict = await world.create(world.body())
    assert conflict.status_code == 409
    assert conflict.json() == {
        "error": "Conflict",
        "status": 409,
        "message": "A subscription already exists for the specified event type and condition "
        "combination",
    }
    token = await world.app_token()
    deleted = await world.http.delete(
        f"{world.base}/helix/eventsub/subscriptions",
        params={"id": first["id"]},
        headers=world.headers(token),
    )
    assert deleted.status_code == 204
    assert (await world.create(world.body())).status_code == 202


async def test_cost_is_one_only_for_unauthorized_users(world: World) -> None:
    first = await world.create(world.body("stream.online"))
    assert first.json()["data"][0]["cost"] == 1
    assert first.json()["total_cost"] == 1
    assert first.json()["max_total_cost"] == 10000
    await world.user_tokens(VIEWER)  # any grant, even without scopes, makes it free
    second = await world.create(world.body("user.update", user_id=VIEWER_ID))
    assert second.json()["data"][0]["cost"] == 0
    assert second.json()["total"] == 2
    assert second.json()["total_cost"] == 1


async def test_list_paginates_with_first_and_cursor(world: World) -> None:
    token = await world.app_token()
    created = []
    for account in world.sim.directory.streamers[:5]:
        response = await world.create(world.body(broadcaster_user_id=account.id), token)
        created.append(response.json()["data"][0]["id"])
    seen: list[str] = []
    params: dict[str, str] = {"first": "2"}
    pages = 0
    while True:
        response = await world.http.get(
            f"{world.base}/helix/eventsub/subscriptions",
            params=params,
            headers=world.headers(token),
        )
        assert response.status_code == 200
        body = response.json()
        assert body["total"] == 5
        assert body["max_total_cost"] == 10000
        seen += [s["id"] for s in body["data"]]
        pages += 1
        if not body["pagination"]:
            break
        params["after"] = body["pagination"]["cursor"]
    assert seen == created
    assert pages == 3


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"type": "stream.online", "status": "enabled"}, 400),
        ({"first": "0"}, 400),
        ({"first": "101"}, 400),
        ({"after": "garbage!"}, 400),
    ],
)
async def test_list_refuses_bad_parameters(
    world: World, params: dict[str, str], status: int
) -> None:
    response = await world.http.get(
        f"{world.base}/helix/eventsub/subscriptions",
        params=params,
        headers=world.headers(await world.app_token()),
    )
    assert response.status_code == status


async def test_list_filters(world: World) -> None:
    online = await world.subscribe("stream.online")
    offline = await world.subscribe("stream.offline", broadcaster_user_id=OTHER_STREAMER_ID)
    token = await world.app_token()

    async def ids(**params: str) -> list[str]:
        response = await world.http.get(
            f"{world.base}/helix/eventsub/subscriptions",
            params=params,
            headers=world.headers(token),
        )
        return [s["id"] for s in response.json()["data"]]

    assert await ids(type="stream.offline") == [offline["id"]]
    assert await ids(user_id=STREAMER_ID) == [online["id"]]
    assert await ids(status="enabled") == [online["id"], offline["id"]]
    assert await ids(status="authorization_revoked") == []
    assert await ids(subscription_id=online["id"]) == [online["id"]]


async def test_delete(world: World) -> None:
    token = await world.app_token()
    sub_id = (await world.create(world.body(), token)).json()["data"][0]["id"]
    url = f"{world.base}/helix/eventsub/subscriptions"
    headers = world.headers(token)
    assert (await world.http.delete(url, params={"id": sub_id}, headers=headers)).status_code == 204
    assert (await world.http.delete(url, params={"id": sub_id}, headers=headers)).status_code == 404
    assert (await world.http.delete(url, headers=headers)).status_code == 400


# --- Helix users and the rate limit -----------------------------------------------------------


async def test_users_by_login_and_id_leave_unknown_out(world: World) -> None:
    params = httpx.QueryParams(
        [("login", "PixelPaladin"), ("id", VIEWER_ID), ("login", "nobody_here"), ("id", "1")]
    )
    response = await world.http.get(
        f"{world.base}/helix/users", params=params, headers=world.headers(await world.app_token())
    )
    assert response.status_code == 200
    users = {u["login"]: u for u in response.json()["data"]}
    assert set(users) == {STREAMER, VIEWER}
    streamer = users[STREAMER]
    assert streamer["id"] == STREAMER_ID
    assert streamer["broadcaster_type"] == "partner"
    assert streamer["profile_image_url"].startswith("data:image/svg+xml")
    assert "email" not in streamer
    for field in ("display_name", "type", "description", "offline_image_url", "created_at"):
        assert field in streamer


async def test_users_limits_and_auth(world: World) -> None:
    token = await world.app_token()
    url = f"{world.base}/helix/users"
    too_many = httpx.QueryParams([("login", f"user{n}") for n in range(101)])
    response = await world.http.get(url, params=too_many, headers=world.headers(token))
    assert response.status_code == 400
    assert (await world.http.get(url, params={"login": STREAMER})).status_code == 401
    mismatch = world.headers(token, client_id="another")
    assert (
        await world.http.get(url, params={"login": STREAMER}, headers=mismatch)
    ).status_code == 401
    assert (await world.http.get(url, headers=world.headers(token))).status_code == 400


async def test_users_with_a_user_token_is_the_user_and_email_needs_the_scope(world: World) -> None:
    url = f"{world.base}/helix/users"
    plain = await world.user_tokens(VIEWER)
    (me,) = (await world.http.get(url, headers=world.headers(plain["access_token"]))).json()["data"]
    assert me["id"] == VIEWER_ID
    assert "email" not in me
    scoped = await world.user_tokens(VIEWER, ["user:read:email"])
    (me,) = (await world.http.get(url, headers=world.headers(scoped["access_token"]))).json()[
        "data"
    ]
    assert me["email"] == "viewer_vic@example.com"


async def test_rate_limit_headers_and_429(servers: Servers, http: httpx.AsyncClient) -> None:
    config = SimulatorConfig(rate_limit_points=3, rate_limit_window_s=60)
    async with make_world(servers, http, config) as world:
        headers = world.headers(await world.app_token())
        url = f"{world.base}/helix/users"
        remaining = []
        for _ in range(3):
            response = await world.http.get(url, params={"login": STREAMER}, headers=headers)
            assert response.status_code == 200
            assert response.headers["ratelimit-limit"] == "3"
            remaining.append(int(response.headers["ratelimit-remaining"]))
        assert remaining == [2, 1, 0]
        refused = await world.http.get(url, params={"login": STREAMER}, headers=headers)
        assert refused.status_code == 429
        assert refused.json()["status"] == 429
        reset = int(refused.headers["ratelimit-reset"])
        assert time.time() < reset <= time.time() + 61


async def test_every_authenticated_helix_answer_carries_rate_limit_headers(world: World) -> None:
    headers = world.headers(await world.app_token())
    for response in (
        await world.http.get(f"{world.base}/helix/users", headers=headers),
        await world.http.get(f"{world.base}/helix/eventsub/subscriptions", headers=headers),
    ):
        assert response.status_code in (200, 400)
        assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(
            response.headers
        )


# --- OAuth ------------------------------------------------------------------------------------


def _authorize_params(**extra: str) -> dict[str, str]:
    return {
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "bits:read channel:read:polls",
        "state": "<script>alert(1)</script>",
        **extra,
    }


async def test_authorize_page_lists_the_demo_accounts(world: World) -> None:
    response = await world.http.get(f"{world.base}/oauth2/authorize", params=_authorize_params())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    page = response.text
    for account in world.sim.directory:
        assert f'value="{account.login}"' in page
        assert account.display_name in page
    assert 'value="authorize"' in page
    assert 'value="cancel"' in page
    assert "bits:read" in page
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def _checked(page: str) -> list[str]:
    return re.findall(r'name="login" value="(\w+)" checked', page)


async def test_authorize_page_checks_the_account_this_browser_last_authorized_as(
    world: World,
) -> None:
    url = f"{world.base}/oauth2/authorize"
    first = next(iter(world.sim.directory)).login
    fresh = await world.http.get(url, params=_authorize_params())
    assert _checked(fresh.text) == [first]
    assert "last used" not in fresh.text

    # Authorizing as an account is what a Twitch session would remember: the simulator's cookie.
    approved = await world.authorize("cozycrumpet", [])
    assert approved.status_code == 302
    cookie = approved.headers["set-cookie"]
    assert cookie.startswith("twitchsim_last_login=cozycrumpet;")
    assert "Path=/oauth2" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    again = await world.http.get(url, params=_authorize_params())
    assert _checked(again.text) == ["cozycrumpet"]
    assert "last used on this browser" in again.text

    # Another browser, or a cookie naming no account, gets the list as before.
    async with httpx.AsyncClient(trust_env=False, timeout=5) as other:
        assert _checked((await other.get(url, params=_authorize_params())).text) == [first]
        unknown = await other.get(
            url,
            params=_authorize_params(),
            headers={"Cookie": "twitchsim_last_login=nobody_here"},
        )
    assert _checked(unknown.text) == [first]
    assert "last used" not in unknown.text


async def test_authorize_cancel_gives_access_denied(world: World) -> None:
    form = {**_authorize_params(state="xyz"), "login": STREAMER, "decision": "cancel"}
    response = await world.http.post(f"{world.base}/oauth2/authorize", data=form)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["xyz"]
    assert "error_description" in query
    assert "code" not in query


async def test_authorize_form_post_returns_code_and_state(world: World) -> None:
    form = {**_authorize_params(state="xyz"), "login": VIEWER, "decision": "authorize"}
    response = await world.http.post(f"{world.base}/oauth2/authorize", data=form)
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["xyz"]
    assert len(query["code"][0]) == 30


@pytest.mark.parametrize(
    ("extra", "status", "error"),
    [
        ({"client_id": "unknown"}, 400, None),
        ({"redirect_uri": "https://evil.example/cb"}, 400, None),
        ({"redirect_uri": "http://127.0.0.1:9/cb"}, 302, "access_denied"),
        ({"response_type": "token"}, 302, "unsupported_response_type"),
        ({"scope": "channel:read:subscription"}, 302, "invalid_scope"),
    ],
)
async def test_authorize_refuses_bad_requests(
    world: World, extra: dict[str, str], status: int, error: str | None
) -> None:
    params = {**_authorize_params(**extra), "decision": "cancel"}
    response = await world.http.get(f"{world.base}/oauth2/authorize", params=params)
    assert response.status_code == status
    if error:
        assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == [error]


async def test_token_exchange_returns_scope_as_a_list(world: World) -> None:
    tokens = await world.user_tokens(STREAMER, ["bits:read", "channel:read:polls"])
    assert tokens["scope"] == ["bits:read", "channel:read:polls"]
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == FAST.token_lifetime_s
    assert len(tokens["refresh_token"]) >= 30


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"client_id": ""}, 400, "missing client id"),
        ({"client_id": "unknown"}, 400, "invalid client"),
        ({"client_secret": "wrong"}, 403, "invalid client secret"),
        ({"client_secret": ""}, 403, "invalid client secret"),
        ({"grant_type": "authorization_code", "code": "nope"}, 400, "Invalid authorization code"),
        ({"grant_type": "refresh_token", "refresh_token": "nope"}, 400, "Invalid refresh token"),
        ({"grant_type": "password"}, 400, "unsupported grant type"),
    ],
)
async def test_token_refusals(
    world: World, form: dict[str, str], status: int, message: str
) -> None:
    response = await world.token(**{"grant_type": "client_credentials", **form})
    assert response.status_code == status
    assert response.json()["status"] == status
    assert response.json()["message"] == message


async def test_token_secret_must_be_in_the_form_body(world: World) -> None:
    response = await world.http.post(
        f"{world.base}/oauth2/token",
        data={"client_id": DEMO_CLIENT_ID, "grant_type": "client_credentials"},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
    )
    assert response.status_code == 403


async def test_code_is_single_use_and_bound_to_its_redirect(world: World) -> None:
    response = await world.authorize(VIEWER, [])
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    wrong = await world.token(
        grant_type="authorization_code", code=code, redirect_uri="http://localhost/x"
    )
    assert wrong.status_code == 400
    response = await world.authorize(VIEWER, [])
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    assert (await world.token(grant_type="authorization_code", code=code)).status_code == 200
    assert (await world.token(grant_type="authorization_code", code=code)).status_code == 400


async def test_validate_user_and_app_tokens(world: World) -> None:
    tokens = await world.user_tokens(STREAMER, ["bits:read"])
    url = f"{world.base}/oauth2/validate"
    response = await world.http.get(
        url, headers={"Authorization": f"OAuth {tokens['access_token']}"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["client_id"] == DEMO_CLIENT_ID
    assert (body["login"], body["user_id"], body["scopes"]) == (
        STREAMER,
        STREAMER_ID,
        ["bits:read"],
    )
    assert 0 < body["expires_in"] <= FAST.token_lifetime_s
    app = await world.http.get(url, headers={"Authorization": f"OAuth {await world.app_token()}"})
    assert app.status_code == 200
    assert "user_id" not in app.json()
    # Twitch documents `OAuth`; `Bearer` is accepted as well.
    bearer = await world.http.get(
        url, headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert bearer.status_code == 200
    assert bearer.json()["user_id"] == STREAMER_ID
    for header in ("OAuth nope", "Bearer nope", f"Basic {tokens['access_token']}", ""):
        refused = await world.http.get(url, headers={"Authorization": header} if header else {})
        assert refused.status_code == 401
    refused = await world.http.get(url, headers={"Authorization": "OAuth nope"})
    assert refused.json() == {"status": 401, "message": "invalid access token"}


async def test_expired_tokens_are_refused(servers: Servers, http: httpx.AsyncClient) -> None:
    async with make_world(servers, http, SimulatorConfig(token_lifetime_s=1)) as world:
        tokens = await world.user_tokens(VIEWER)
        app = await world.app_token()
        await asyncio.sleep(1.1)
        validate = await world.http.get(
            f"{world.base}/oauth2/validate",
            headers={"Authorization": f"OAuth {tokens['access_token']}"},
        )
        assert validate.status_code == 401
        users = await world.http.get(
            f"{world.base}/helix/users", params={"login": VIEWER}, headers=world.headers(app)
        )
        assert users.status_code == 401
        assert users.json()["message"] == "Invalid OAuth token"
        refreshed = await world.token(
            grant_type="refresh_token", refresh_token=tokens["refresh_token"]
        )
        assert refreshed.status_code == 200


async def test_refresh_rotates_the_refresh_token(world: World) -> None:
    tokens = await world.user_tokens(STREAMER, ["bits:read"])
    response = await world.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert response.status_code == 200
    renewed = response.json()
    assert renewed["access_token"] != tokens["access_token"]
    assert renewed["refresh_token"] != tokens["refresh_token"]
    assert renewed["scope"] == ["bits:read"]
    again = await world.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert again.status_code == 400
    assert again.json() == {
        "error": "Bad Request",
        "status": 400,
        "message": "Invalid refresh token",
    }


async def test_revoke_sends_authorization_revoked_for_scoped_subscriptions(world: World) -> None:
    tokens = await world.user_tokens(STREAMER, ["channel:read:subscriptions"])
    scoped = await world.subscribe("channel.subscribe")
    public = await world.subscribe("stream.online")
    response = await world.http.post(
        f"{world.base}/oauth2/revoke",
        data={"client_id": DEMO_CLIENT_ID, "token": tokens["access_token"]},
    )
    assert response.status_code == 200
    await eventually(lambda: world.receiver.of_type("revocation"))
    (revocation,) = world.receiver.of_type("revocation")
    assert revocation.json == {"subscription": {**scoped, "status": "authorization_revoked"}}
    assert revocation.headers["twitch-eventsub-subscription-type"] == "channel.subscribe"
    assert revocation.headers["twitch-eventsub-message-signature"] == expected_signature(
        SECRET, revocation
    )
    assert world.sim.subscriptions[scoped["id"]].status == "authorization_revoked"
    assert world.sim.subscriptions[public["id"]].status == "enabled"
    validate = await world.http.get(
        f"{world.base}/oauth2/validate",
        headers={"Authorization": f"OAuth {tokens['access_token']}"},
    )
    assert validate.status_code == 401
    refresh = await world.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refresh.status_code == 400


async def test_revoking_one_of_two_grants_keeps_subscriptions(world: World) -> None:
    login = await world.user_tokens(STREAMER, ["channel:read:subscriptions"])
    await world.user_tokens(STREAMER, ["channel:read:subscriptions"])  # the standing grant
    scoped = await world.subscribe("channel.subscribe")
    await world.http.post(
        f"{world.base}/oauth2/revoke",
        data={"client_id": DEMO_CLIENT_ID, "token": login["access_token"]},
    )
    await asyncio.sleep(0.1)
    assert world.sim.subscriptions[scoped["id"]].status == "enabled"
    assert world.receiver.of_type("revocation") == []


@pytest.mark.parametrize(
    ("client_id", "token", "status"),
    [("", "x", 400), ("unknown", "x", 404), (DEMO_CLIENT_ID, "nope", 400)],
)
async def test_revoke_refusals(world: World, client_id: str, token: str, status: int) -> None:
    response = await world.http.post(
        f"{world.base}/oauth2/revoke", data={"client_id": client_id, "token": token}
    )
    assert response.status_code == status


# --- Control endpoints ------------------------------------------------------------------------


async def test_control_accounts_lists_the_directory(world: World) -> None:
    response = await world.http.get(f"{world.base}/control/accounts")
    data = response.json()["data"]
    assert [set(a) for a in data] == [{"id", "login", "display_name", "streamer"}] * len(data)
    assert sum(a["streamer"] for a in data) == 6
    assert sum(not a["streamer"] for a in data) == 4
    assert len({a["id"] for a in data}) == len({a["login"] for a in data}) == 10


async def test_control_trigger_overrides_even_the_event_type_field(world: World) -> None:
    await world.subscribe()
    response = await world.http.post(
        f"{world.base}/control/trigger",
        json={"type": "stream.online", "broadcaster": STREAMER, "overrides": {"type": "rerun"}},
    )
    assert response.status_code == 200
    (delivery,) = await world.notifications(1)
    assert delivery.json["event"]["type"] == "rerun"
    assert delivery.headers["twitch-eventsub-subscription-type"] == "stream.online"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"type": "stream.online", "broadcaster": "nobody_at_all"}, 404),
        ({"type": "channel.nope", "broadcaster": STREAMER}, 400),
        ({"type": "stream.online", "broadcaster": STREAMER, "count": 0}, 400),
        ({"type": "stream.online", "broadcaster": STREAMER, "count": "3"}, 400),
        ({"broadcaster": STREAMER}, 400),
        ({"type": "stream.online", "broadcaster": STREAMER, "count": 2}, 200),
    ],
)
async def test_control_trigger(world: World, body: dict[str, Any], status: int) -> None:
    response = await world.http.post(f"{world.base}/control/trigger", json=body)
    assert response.status_code == status
    if status == 200:
        # Nothing subscribed: nothing sent, and why.
        assert response.json()["sent"] == []
        assert response.json()["reason"] == "no_subscription"


async def test_control_faults_and_subscriptions(world: World) -> None:
    url = f"{world.base}/control/faults"
    response = await world.http.post(url, json={"duplicate": True, "delay_s": 0.5})
    assert response.json()["faults"] == {
        "duplicate": True,
        "out_of_order": False,
        "delay_s": 0.5,
        "bad_signature": False,
        "revoke_ends_authorization": False,
    }
    assert world.sim.faults.duplicate
    assert (await world.http.post(url, json={"nonsense": True})).status_code == 400
    assert (await world.http.post(url, json={"delay_s": -1})).status_code == 400
    assert (await world.http.get(url)).json()["faults"]["delay_s"] == 0.5
    await world.create(world.body())
    listed = (await world.http.get(f"{world.base}/control/subscriptions")).json()
    assert listed["total"] == 1
    assert listed["data"][0]["client_id"] == DEMO_CLIENT_ID
    assert "secret" not in str(listed)


# --- Running on its own -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_python_m_twitchsim_serves_on_the_given_port(http: httpx.AsyncClient) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "twitchsim", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        async def up() -> bool:
            try:
                response = await http.get(f"http://127.0.0.1:{port}/control/accounts")
            except httpx.TransportError:
                return False
            return response.status_code == 200

        deadline = time.monotonic() + 15
        while not await up():
            assert process.poll() is None, "the simulator exited"
            assert time.monotonic() < deadline, "the simulator did not come up"
            await asyncio.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- Revocations Twitch documents, and limits ---------------------------------------------------


@pytest.mark.parametrize(
    "status",
    sorted(
        {
            "user_removed",
            "authorization_revoked",
            "moderator_removed",
            "version_removed",
            "notification_failures_exceeded",
            "chat_user_banned",
            "beta_maintenance",
        }
    ),
)
async def test_control_revoke_sends_every_documented_status(world: World, status: str) -> None:
    sub = await world.subscribe("stream.online")
    response = await world.http.post(
        f"{world.base}/control/revoke", json={"status": status, "subscription_id": sub["id"]}
    )
    assert response.json() == {"revoked": [sub["id"]]}
    await eventually(lambda: world.receiver.of_type("revocation"))
    (revocation,) = world.receiver.of_type("revocation")
    assert revocation.json == {"subscription": {**sub, "status": status}}
    assert revocation.headers["twitch-eventsub-message-signature"] == expected_signature(
        SECRET, revocation
    )


async def test_control_revoke_refuses_an_undocumented_status(world: World) -> None:
    sub = await world.subscribe("stream.online")
    response = await world.http.post(
        f"{world.base}/control/revoke", json={"status": "revoked", "subscription_id": sub["id"]}
    )
    assert response.status_code == 400
    assert world.sim.subscriptions[sub["id"]].status == "enabled"


async def test_retired_version_answers_410(world: World) -> None:
    sub = await world.subscribe("channel.update")
    await world.http.post(
        f"{world.base}/control/revoke", json={"status": "version_removed", "type": "channel.update"}
    )
    assert world.sim.subscriptions[sub["id"]].status == "version_removed"
    response = await world.create(
        world.body("channel.update", broadcaster_user_id=OTHER_STREAMER_ID)
    )
    assert response.status_code == 410


async def test_removed_user_is_gone_from_helix_and_revoked(world: World) -> None:
    sub = await world.subscribe("stream.online")
    token = await world.app_token()
    response = await world.http.post(f"{world.base}/control/remove-user", json={"login": STREAMER})
    assert response.json() == {"revoked": [sub["id"]]}
    await eventually(lambda: world.receiver.of_type("revocation"))
    assert world.receiver.of_type("revocation")[0].json["subscription"]["status"] == "user_removed"
    users = await world.http.get(
        f"{world.base}/helix/users", params={"login": STREAMER}, headers=world.headers(token)
    )
    assert users.json() == {"data": []}


async def test_disconnect_ends_every_grant_and_notifies_authorization_revoke(world: World) -> None:
    tokens = await world.user_tokens(STREAMER, ["bits:read"])
    cheer = await world.subscribe("channel.cheer")
    own = await world.subscribe("user.authorization.revoke", client_id=DEMO_CLIENT_ID)
    assert own["condition"] == {"client_id": DEMO_CLIENT_ID} and own["cost"] == 0
    response = await world.http.post(f"{world.base}/control/disconnect", json={"login": STREAMER})
    assert len(response.json()["sent"]) == 1
    (notification,) = await world.notifications(1)
    assert notification.json["event"] == {
        "client_id": DEMO_CLIENT_ID,
        "user_id": STREAMER_ID,
        "user_login": STREAMER,
        "user_name": "PixelPaladin",
    }
    await eventually(lambda: world.receiver.of_type("revocation"))
    (revocation,) = world.receiver.of_type("revocation")
    assert revocation.json["subscription"]["id"] == cheer["id"]
    assert revocation.json["subscription"]["status"] == "authorization_revoked"
    validate = await world.http.get(
        f"{world.base}/oauth2/validate",
        headers={"Authorization": f"OAuth {tokens['access_token']}"},
    )
    assert validate.status_code == 401


async def test_app_subscription_must_name_the_tokens_client(world: World) -> None:
    response = await world.create(world.body("user.authorization.revoke", client_id="someone"))
    assert response.status_code == 400


async def test_manage_scopes_authorize_their_read_types(world: World) -> None:
    await world.user_tokens(STREAMER, ["channel:manage:polls"])
    sub = await world.subscribe("channel.poll.begin")
    assert sub["status"] == "webhook_callback_verification_pending"
    refused = await world.create(world.body("channel.prediction.begin"))
    assert refused.status_code == 403


async def test_spent_budget_answers_429_and_limits_report_it(world: World) -> None:
    response = await world.http.post(f"{world.base}/control/limits", json={"max_total_cost": 1})
    assert response.json()["max_total_cost"] == 1
    first = await world.create(world.body("stream.online"))
    assert first.status_code == 202 and first.json()["total_cost"] == 1
    assert first.json()["max_total_cost"] == 1
    second = await world.create(world.body("stream.offline"))
    assert second.status_code == 429
    assert "cost" in second.json()["message"]


# --- Who may use the remote control, and where deliveries may go ------------------------------


async def test_control_answers_only_this_machine_and_only_json(world: World) -> None:
    url = f"{world.base}/control/faults"
    proxied = await world.http.post(
        url, json={"bad_signature": True}, headers={"X-Forwarded-For": "203.0.113.9"}
    )
    assert proxied.status_code == 403
    # What a web page could send to localhost without a CORS preflight.
    form_like = await world.http.post(
        url, content=b'{"bad_signature": true}', headers={"Content-Type": "text/plain"}
    )
    assert form_like.status_code == 415
    assert world.sim.faults.bad_signature is False
    assert (await world.http.post(url, json={"bad_signature": True})).status_code == 200


async def test_a_public_demo_has_no_remote_control(
    servers: Servers, http: httpx.AsyncClient
) -> None:
    async with make_world(servers, http, SimulatorConfig(public=True)) as world:
        for path in ("/control/accounts", "/control/deliveries"):
            assert (await http.get(f"{world.base}{path}")).status_code == 403
        trigger = await http.post(
            f"{world.base}/control/trigger", json={"type": "stream.online", "broadcaster": STREAMER}
        )
        assert trigger.status_code == 403


async def test_callbacks_can_be_limited_to_the_apps_own(
    servers: Servers, http: httpx.AsyncClient
) -> None:
    own = f"{servers.receiver_base}/webhook"
    async with make_world(servers, http, SimulatorConfig(callbacks=(own,))) as world:
        for callback, status in ((f"http://127.0.0.1:{_free_port()}/scan", 400), (own, 202)):
            body = world.body()
            body["transport"]["callback"] = callback
            response = await world.create(body)
            assert response.status_code == status, response.text


async def test_community_gift_brings_each_recipients_gifted_subscribe(world: World) -> None:
    await world.user_tokens(STREAMER, ALL_SCOPES)
    await world.subscribe("channel.subscribe")
    await world.subscribe("channel.subscription.gift")
    response = await world.http.post(
        f"{world.base}/control/trigger",
        json={
            "type": "channel-gift",
            "broadcaster": STREAMER,
            "overrides": {"total": 3, "tier": "2000", "is_anonymous": False},
        },
    )
    assert response.status_code == 200
    assert len(response.json()["sent"]) == 4
    gift, *subs = await world.notifications(4)
    assert gift.json["subscription"]["type"] == "channel.subscription.gift"
    assert [d.json["subscription"]["type"] for d in subs] == ["channel.subscribe"] * 3
    events = [d.json["event"] for d in subs]
    assert all(e["is_gift"] is True and e["tier"] == "2000" for e in events)
    recipients = {e["user_id"] for e in events}
    assert len(recipients) == 3
    assert gift.json["event"]["user_id"] not in recipients
    assert STREAMER_ID not in recipients
