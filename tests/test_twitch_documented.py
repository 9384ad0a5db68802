"""SEV against Twitch's own documented examples, independent of the simulated Twitch.

Each fixture below copies the field names and shapes of an example in Twitch's reference
(Create / Get EventSub Subscriptions, the manage-subscriptions and handling-webhook-events
pages, validate-tokens, the EventSub subscription types) or of a payload in Twitch's CLI
(twitchdev/twitch-cli, internal/events/types). They are facts about Twitch, not about SEV: SEV is
fed them, and where the simulated Twitch answers the same request, its answer must have the
documented shape field for field. Where the docs and the simulator differ, the docs win: the
simulator answers a raid's unused side as "" (what Twitch sends, though its example leaves the
key out), so SEV must read both the same.
"""

from __future__ import annotations

import copy
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sev.events import CATALOGUE, EventType, badges_of, build_event
from sev.store import Broadcaster, SubscriptionRecord, User
from sev.streamers import describe
from sev.twitch import Budget, Subscription, TokenInfo
from tests.support.apps import AppHandle, running_app
from tests.support.factories import signed_request
from tests.support.polling import eventually
from tests.support.servers import Receiver, serve_all
from twitchsim import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Simulator, SimulatorConfig
from twitchsim.directory import Directory
from twitchsim.generator import generate_event

# Create EventSub Subscription, the reference's example response (202).
CREATE_RESPONSE: dict[str, Any] = {
    "data": [
        {
            "id": "26b1c993-bfcf-44d9-b876-379dacafe75a",
            "status": "webhook_callback_verification_pending",
            "type": "user.update",
            "version": "1",
            "condition": {"user_id": "1234"},
            "created_at": "2020-11-10T14:32:18.730260295Z",
            "transport": {"method": "webhook", "callback": "https://this-is-a-callback.com"},
            "cost": 1,
        }
    ],
    "total": 1,
    "total_cost": 1,
    "max_total_cost": 10000,
}

# Managing event subscriptions: the channel.follow v2 example response.
FOLLOW_CREATED: dict[str, Any] = {
    "data": [
        {
            "id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4",
            "status": "webhook_callback_verification_pending",
            "type": "channel.follow",
            "version": "2",
            "cost": 1,
            "condition": {"broadcaster_user_id": "1234", "moderator_user_id": "1234"},
            "transport": {"method": "webhook", "callback": "https://example.com/webhooks/callback"},
            "created_at": "2019-11-16T10:11:12.634234626Z",
        }
    ],
    "total": 1,
    "total_cost": 1,
    "max_total_cost": 10000,
}

# Get EventSub Subscriptions, the reference's example response.
LIST_RESPONSE: dict[str, Any] = {
    "total": 2,
    "data": [
        {
            "id": "26b1c993-bfcf-44d9-b876-379dacafe75a",
            "status": "enabled",
            "type": "stream.online",
            "version": "1",
            "condition": {"broadcaster_user_id": "1234"},
            "created_at": "2020-11-10T20:08:33.12345678Z",
            "transport": {"method": "webhook", "callback": "https://this-is-a-callback.com"},
            "cost": 1,
        },
        {
            "id": "35016908-41ff-33ce-7879-61b8dfc2ee16",
            "status": "webhook_callback_verification_pending",
            "type": "user.update",
            "version": "1",
            "condition": {"user_id": "1234"},
            "created_at": "2020-11-10T14:32:18.730260295Z",
            "transport": {"method": "webhook", "callback": "https://this-is-a-callback.com"},
            "cost": 0,
        },
    ],
    "total_cost": 1,
    "max_total_cost": 10000,
    "pagination": {},
}

# Handling webhook events, "Revoking your subscription": the example revocation body.
REVOCATION: dict[str, Any] = {
    "subscription": {
        "id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4",
        "status": "authorization_revoked",
        "type": "channel.follow",
        "cost": 1,
        "version": "1",
        "condition": {"broadcaster_user_id": "12826"},
        "transport": {"method": "webhook", "callback": "https://example.com/webhooks/callback"},
        "created_at": "2019-11-16T10:11:12.634234626Z",
    }
}

# EventSub subscription types, user.authorization.revoke: the example notification.
AUTHORIZATION_REVOKED: dict[str, Any] = {
    "subscription": {
        "id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4",
        "type": "user.authorization.revoke",
        "version": "1",
        "status": "enabled",
        "cost": 0,
        "condition": {"client_id": "crq72vsaoijkc83xx42hz6i37"},
        "transport": {"method": "webhook", "callback": "https://example.com/webhooks/callback"},
        "created_at": "2019-11-16T10:11:12.634234626Z",
    },
    "event": {
        "client_id": "crq72vsaoijkc83xx42hz6i37",
        "user_id": "1337",
        "user_login": "cool_user",
        "user_name": "Cool_User",
    },
}

# Validating tokens: the example answers.
VALIDATE_OK: dict[str, Any] = {
    "client_id": "wbmytr93xzw8zbg0p1izqyzzc5mbiz",
    "login": "twitchdev",
    "scopes": ["channel:read:subscriptions"],
    "user_id": "141981764",
    "expires_in": 5520838,
}
VALIDATE_REFUSED = {"status": 401, "message": "invalid access token"}

# Conditions as Twitch shows them: the documented raid example names one side only; Helix
# answers the other side as "". The redemption's reward_id is documented as optional.
RAID_TO_DOCUMENTED = {"to_broadcaster_user_id": "1337"}
RAID_TO_AS_ANSWERED = {"from_broadcaster_user_id": "", "to_broadcaster_user_id": "1337"}
RAID_FROM_AS_ANSWERED = {"from_broadcaster_user_id": "1337", "to_broadcaster_user_id": ""}
REDEMPTION_AS_ANSWERED = {"broadcaster_user_id": "1337", "reward_id": ""}

# channel.cheer, anonymous: the documented example (user fields null) and twitch-cli's
# (is_anonymous true, user fields still filled).
ANONYMOUS_CHEER_DOCUMENTED = {
    "is_anonymous": True,
    "user_id": None,
    "user_login": None,
    "user_name": None,
    "broadcaster_user_id": "1337",
    "broadcaster_user_login": "cooler_user",
    "broadcaster_user_name": "Cooler_User",
    "message": "pogchamp",
    "bits": 1000,
}
ANONYMOUS_CHEER_CLI = {
    **ANONYMOUS_CHEER_DOCUMENTED,
    "user_id": "3158445",
    "user_login": "testFromUser",
    "user_name": "testFromUser",
}
ANONYMOUS_GIFT_CLI = {
    "user_id": "3158445",
    "user_login": "testFromUser",
    "user_name": "testFromUser",
    "broadcaster_user_id": "1337",
    "broadcaster_user_login": "cooler_user",
    "broadcaster_user_name": "Cooler_User",
    "total": 2,
    "tier": "1000",
    "cumulative_total": None,
    "is_anonymous": True,
}


# The documented examples of the newer types: (subscription condition, event) as in
# the reference's "Notification example" of each. Sources:
# channel.goal.*: dev.twitch.tv/docs/eventsub/reference/goal (Goal Begin / Progress / End);
#   the same fields in twitch-cli internal/events/types/goal/goal_event.go.
GOAL_BEGIN_DOCUMENTED = {
    "id": "12345-cool-event",
    "broadcaster_user_id": "141981764",
    "broadcaster_user_name": "TwitchDev",
    "broadcaster_user_login": "twitchdev",
    "type": "subscription",
    "description": "Help me get partner!",
    "current_amount": 100,
    "target_amount": 220,
    "started_at": "2021-07-15T17:16:03.17106713Z",
}
GOAL_END_DOCUMENTED = {
    **GOAL_BEGIN_DOCUMENTED,
    "is_achieved": False,
    "ended_at": "2020-07-16T17:16:03.17106713Z",
}
# channel.shoutout.create: dev.twitch.tv/docs/eventsub/reference/shoutout (Shoutout Create);
#   the same fields in twitch-cli internal/events/types/shoutout/shoutout.go.
SHOUTOUT_CREATE_DOCUMENTED = {
    "broadcaster_user_id": "12345",
    "broadcaster_user_name": "SimplySimple",
    "broadcaster_user_login": "simplysimple",
    "moderator_user_id": "98765",
    "moderator_user_name": "ParticularlyParticular123",
    "moderator_user_login": "particularlyparticular123",
    "to_broadcaster_user_id": "626262",
    "to_broadcaster_user_name": "SandySanderman",
    "to_broadcaster_user_login": "sandysanderman",
    "started_at": "2022-07-26T17:00:03.17106713Z",
    "viewer_count": 860,
    "cooldown_ends_at": "2022-07-26T17:02:03.17106713Z",
    "target_cooldown_ends_at": "2022-07-26T18:00:03.17106713Z",
}
# channel.charity_campaign.start / .progress / .stop: dev.twitch.tv/docs/eventsub/reference/charity
#   (Charity Campaign Start / Progress / Stop); the channel is broadcaster_id/_login/_name there.
CHARITY_START_DOCUMENTED = {
    "id": "123-abc-456-def",
    "broadcaster_id": "123456",
    "broadcaster_name": "SunnySideUp",
    "broadcaster_login": "sunnysideup",
    "charity_name": "Example name",
    "charity_description": "Example description",
    "charity_logo": "https://abc.cloudfront.net/ppgf/1000/100.png",
    "charity_website": "https://www.example.com",
    "current_amount": {"value": 0, "decimal_places": 2, "currency": "USD"},
    "target_amount": {"value": 1500000, "decimal_places": 2, "currency": "USD"},
    "started_at": "2022-07-26T17:00:03.17106713Z",
}
CHARITY_PROGRESS_DOCUMENTED = {
    key: value for key, value in CHARITY_START_DOCUMENTED.items() if key != "started_at"
} | {"current_amount": {"value": 260000, "decimal_places": 2, "currency": "USD"}}
CHARITY_STOP_DOCUMENTED = CHARITY_PROGRESS_DOCUMENTED | {
    "current_amount": {"value": 1450000, "decimal_places": 2, "currency": "USD"},
    "stopped_at": "2022-07-26T22:00:03.17106713Z",
}
# channel.hype_train.progress v2: dev.twitch.tv/docs/eventsub/reference/hype-train (Hype Train
#   Progress V2); twitch-cli internal/events/types/hype_train_v2/hype_train_event.go sends the same.
HYPE_TRAIN_PROGRESS_DOCUMENTED = {
    "id": "1b0AsbInCHZW2SQFQkCzqN07Ib2",
    "broadcaster_user_id": "1337",
    "broadcaster_user_login": "cool_user",
    "broadcaster_user_name": "Cool_User",
    "total": 700,
    "progress": 200,
    "goal": 1000,
    "top_contributions": [
        {"user_id": "123", "user_login": "pogchamp", "user_name": "PogChamp", "type": "bits",
         "total": 50},
        {"user_id": "456", "user_login": "kappa", "user_name": "Kappa", "type": "subscription",
         "total": 45},
    ],
    "level": 2,
    "shared_train_participants": None,
    "started_at": "2020-07-15T17:16:03.17106713Z",
    "expires_at": "2020-07-15T17:16:11.17106713Z",
    "type": "regular",
    "is_shared_train": False,
}  # fmt: skip
# channel.channel_points_automatic_reward_redemption.add v2: dev.twitch.tv/docs/eventsub/reference/
#   channel-points (Channel Points Automatic Reward Redemption Add V2): reward.channel_points and
#   message.fragments where v1 had reward.cost, message.emotes and user_input.
AUTOMATIC_REWARD_DOCUMENTED = {
    "broadcaster_user_id": "12826",
    "broadcaster_user_name": "Twitch",
    "broadcaster_user_login": "twitch",
    "user_id": "141981764",
    "user_name": "TwitchDev",
    "user_login": "twitchdev",
    "id": "f024099a-e0fe-4339-9a0a-a706fb59f353",
    "reward": {"type": "send_highlighted_message", "channel_points": 100, "emote": None},
    "message": {
        "text": "Hello world! VoHiYo",
        "fragments": [
            {"type": "text", "text": "Hello world! ", "emote": None},
            {"type": "emote", "text": "VoHiYo", "emote": {"id": "81274"}},
        ],
    },
    "redeemed_at": "2024-08-12T21:14:34.260398045Z",
}
# channel.bits.use v1: dev.twitch.tv/docs/eventsub/reference/bits (Bits Use). Its cheer example
#   (type "cheer", power_up null) is what channel.cheer also brings; the Power-up one carries
#   power_up {type, emote, message_effect_id} as the reference's field table has it.
BITS_USE_CHEER_DOCUMENTED = {
    "user_id": "1234",
    "user_login": "cool_user",
    "user_name": "Cool_User",
    "broadcaster_user_id": "1337",
    "broadcaster_user_login": "cooler_user",
    "broadcaster_user_name": "Cooler_User",
    "bits": 2,
    "type": "cheer",
    "power_up": None,
    "message": {
        "text": "cheer1 hi cheer1",
        "fragments": [
            {"type": "cheermote", "text": "cheer1",
             "cheermote": {"prefix": "cheer", "bits": 1, "tier": 1}, "emote": None},
            {"type": "text", "text": " hi ", "cheermote": None, "emote": None},
            {"type": "cheermote", "text": "cheer1",
             "cheermote": {"prefix": "cheer", "bits": 1, "tier": 1}, "emote": None},
        ],
    },
}  # fmt: skip
BITS_USE_POWER_UP_DOCUMENTED = {
    **BITS_USE_CHEER_DOCUMENTED,
    "bits": 50,
    "type": "power_up",
    "power_up": {"type": "message_effect", "emote": None, "message_effect_id": "cosmic-abyss"},
    "message": {
        "text": "hi",
        "fragments": [{"type": "text", "text": "hi", "cheermote": None, "emote": None}],
    },
}
# type -> (condition, event, the summary SEV shows, its badges, its actor's name)
DOCUMENTED_EVENTS: dict[str, tuple[dict[str, str], dict[str, Any], str, list[str], str | None]] = {
    "channel.goal.begin": (
        {"broadcaster_user_id": "141981764"},
        GOAL_BEGIN_DOCUMENTED,
        "Sub goal “Help me get partner!” started at 100 / 220",
        [],
        None,
    ),
    "channel.goal.progress": (
        {"broadcaster_user_id": "141981764"},
        GOAL_BEGIN_DOCUMENTED,
        "Sub goal “Help me get partner!”: 100 / 220",
        [],
        None,
    ),
    "channel.goal.end": (
        {"broadcaster_user_id": "141981764"},
        GOAL_END_DOCUMENTED,
        "Sub goal “Help me get partner!” ended at 100 / 220",
        [],
        None,
    ),
    "channel.charity_campaign.start": (
        {"broadcaster_user_id": "123456"},
        CHARITY_START_DOCUMENTED,
        "Charity campaign for Example name started, aiming for 15,000.00 USD",
        ["15,000.00 USD"],
        None,
    ),
    "channel.charity_campaign.progress": (
        {"broadcaster_user_id": "123456"},
        CHARITY_PROGRESS_DOCUMENTED,
        "Charity campaign for Example name: 2,600.00 USD raised of 15,000.00 USD",
        ["2,600.00 USD"],
        None,
    ),
    "channel.charity_campaign.stop": (
        {"broadcaster_user_id": "123456"},
        CHARITY_STOP_DOCUMENTED,
        "Charity campaign for Example name ended: 14,500.00 USD raised of 15,000.00 USD",
        ["14,500.00 USD"],
        None,
    ),
    "channel.bits.use": (
        {"broadcaster_user_id": "1337"},
        BITS_USE_POWER_UP_DOCUMENTED,
        "Cool_User used bits on a message effect: hi",
        ["50 bits"],
        "Cool_User",
    ),
    "channel.hype_train.progress": (
        {"broadcaster_user_id": "1337"},
        HYPE_TRAIN_PROGRESS_DOCUMENTED,
        "Hype train at level 2: 200 / 1,000",
        ["Level 2"],
        None,
    ),
    "channel.channel_points_automatic_reward_redemption.add": (
        {"broadcaster_user_id": "12826"},
        AUTOMATIC_REWARD_DOCUMENTED,
        "TwitchDev redeemed a highlighted message: Hello world! VoHiYo",
        ["100 points"],
        "TwitchDev",
    ),
    "channel.shoutout.create": (
        {"broadcaster_user_id": "12345", "moderator_user_id": "98765"},
        SHOUTOUT_CREATE_DOCUMENTED,
        "SimplySimple shouted out SandySanderman to 860 viewers",
        ["860 viewers"],
        "SandySanderman",
    ),
}


def _entry(type_: str, condition_key: str = "broadcaster_user_id") -> EventType:
    return next(e for e in CATALOGUE if e.type == type_ and e.condition_key == condition_key)


def _keys(value: Any) -> Any:
    """The shape of a JSON value: object keys (recursively) and the JSON types of leaves."""
    if isinstance(value, dict):
        return {key: _keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_keys(value[0])] if value else []
    return type(value).__name__


# -- SEV reads Twitch's documented answers --------------------------------------------------


@pytest.mark.parametrize("answer", [CREATE_RESPONSE, FOLLOW_CREATED, LIST_RESPONSE])
def test_documented_subscriptions_and_figures_parse(answer: dict[str, Any]) -> None:
    for item in answer["data"]:
        subscription = Subscription.model_validate(item)
        assert subscription.id == item["id"]
        assert subscription.transport["callback"] == item["transport"]["callback"]
    budget = Budget.of(answer)
    assert budget == Budget(answer["total"], answer["total_cost"], answer["max_total_cost"])
    assert budget is not None and not budget.spent


def test_documented_follow_subscription_is_sevs_follow_entry() -> None:
    (item,) = FOLLOW_CREATED["data"]
    subscription = Subscription.model_validate(item)
    follow = _entry("channel.follow")
    assert (follow.type, follow.version) == (item["type"], item["version"])
    assert follow.matches(subscription.type, subscription.condition, "1234")
    assert not follow.matches(subscription.type, subscription.condition, "4321")


@pytest.mark.parametrize(
    ("condition", "side"),
    [
        (RAID_TO_DOCUMENTED, "to_broadcaster_user_id"),
        (RAID_TO_AS_ANSWERED, "to_broadcaster_user_id"),
        (RAID_FROM_AS_ANSWERED, "from_broadcaster_user_id"),
    ],
)
def test_raid_conditions_match_one_entry_whether_the_other_side_is_absent_or_empty(
    condition: dict[str, str], side: str
) -> None:
    subscription = Subscription.model_validate(
        {**LIST_RESPONSE["data"][0], "type": "channel.raid", "condition": condition}
    )
    matching = [
        e.condition_key
        for e in CATALOGUE
        if e.matches(subscription.type, subscription.condition, "1337")
    ]
    assert matching == [side]


def test_redemption_with_empty_reward_id_is_sevs_redemption_entry() -> None:
    entry = _entry("channel.channel_points_custom_reward_redemption.add")
    assert entry.matches(entry.type, REDEMPTION_AS_ANSWERED, "1337")


def test_the_shares_panel_shows_both_raid_kinds_as_twitch_answers_them() -> None:
    records = [
        SubscriptionRecord(
            id=f"raid-{n}", broadcaster_id="1337", type="channel.raid", version="1",
            condition=condition, status="enabled",
        )
        for n, condition in enumerate([RAID_TO_AS_ANSWERED, RAID_FROM_AS_ANSWERED])
    ]  # fmt: skip
    streamer = describe(
        Broadcaster(id="1337", login="cooler_user", display_name="Cooler_User"), records
    )
    raids = [k["status"] for k in streamer["kinds"] if k["type"] == "channel.raid"]
    assert raids == ["enabled", "enabled"]


def test_documented_validate_answer_parses() -> None:
    info = TokenInfo.model_validate(VALIDATE_OK)
    assert (info.user_id, info.login, info.scopes) == (
        "141981764",
        "twitchdev",
        VALIDATE_OK["scopes"],
    )


@pytest.mark.parametrize(
    ("event_type", "data", "summary"),
    [
        ("channel.cheer", ANONYMOUS_CHEER_DOCUMENTED, "Anonymous cheered 1000 bits: pogchamp"),
        ("channel.cheer", ANONYMOUS_CHEER_CLI, "Anonymous cheered 1000 bits: pogchamp"),
        (
            "channel.subscription.gift",
            ANONYMOUS_GIFT_CLI,
            "An anonymous gifter gifted 2 Tier 1 subs",
        ),
    ],
)
def test_anonymous_cheers_and_gifts_stay_anonymous(
    event_type: str, data: dict[str, Any], summary: str
) -> None:
    event = build_event(
        message_id="m", event_type=event_type, version="1", broadcaster_id="1337", data=data,
        message_timestamp="2026-11-28T10:11:12.123456789Z",
        received_at="2026-11-28T10:11:12.200Z",
    )  # fmt: skip
    assert event.actor is None
    assert event.summary == summary


# -- SEV's webhook on documented messages ------------------------------------------------------


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[AppHandle]:
    # The documented examples name this client id; SEV acts only on its own.
    async with running_app(tmp_path, twitch_client_id="crq72vsaoijkc83xx42hz6i37") as handle:
        yield handle


async def _post(app: AppHandle, body: dict[str, Any], message_type: str) -> httpx.Response:
    headers, raw = signed_request(body, message_type=message_type)
    headers["Twitch-Eventsub-Subscription-Type"] = body["subscription"]["type"]
    headers["Twitch-Eventsub-Subscription-Version"] = body["subscription"]["version"]
    return await app.client.post("/webhooks/eventsub", headers=headers, content=raw)


@pytest.mark.parametrize("event_type", DOCUMENTED_EVENTS)
async def test_documented_example_of_each_added_type_is_stored_and_summarised(
    app: AppHandle, event_type: str
) -> None:
    condition, data, summary, badges, actor = DOCUMENTED_EVENTS[event_type]
    entry = _entry(event_type)
    body = {
        "subscription": {
            "id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4", "type": event_type,
            "version": entry.version, "status": "enabled", "cost": 0, "condition": condition,
            "transport": {"method": "webhook", "callback": "https://example.com/webhooks/callback"},
            "created_at": "2019-11-16T10:11:12.634234626Z",
        },
        "event": data,
    }  # fmt: skip
    response = await _post(app, body, "notification")
    assert response.status_code == 204
    [event] = await app.store.latest_events(condition["broadcaster_user_id"], 10)
    assert (event.type, event.version, event.data) == (event_type, entry.version, data)
    assert event.broadcaster.id == condition["broadcaster_user_id"]
    assert event.broadcaster.name == data.get("broadcaster_user_name", data.get("broadcaster_name"))
    assert event.summary == summary
    assert (event.actor.name if event.actor else None) == actor
    assert [badge["text"] for badge in badges_of(event_type, event.data)] == badges


async def test_documented_bits_use_cheer_is_left_to_channel_cheer(app: AppHandle) -> None:
    body = {
        "subscription": {
            "id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4", "type": "channel.bits.use",
            "version": "1", "status": "enabled", "cost": 0,
            "condition": {"broadcaster_user_id": "1337"},
            "transport": {"method": "webhook", "callback": "https://example.com/webhooks/callback"},
            "created_at": "2019-11-16T10:11:12.634234626Z",
        },
        "event": BITS_USE_CHEER_DOCUMENTED,
    }  # fmt: skip
    response = await _post(app, body, "notification")
    assert response.status_code == 204
    assert await app.store.latest_events("1337", 10) == []
    # The same cheer as channel.cheer brings it is stored.
    cheer = {**body, "subscription": {**body["subscription"], "type": "channel.cheer"},
             "event": {**ANONYMOUS_CHEER_CLI, "is_anonymous": False, "message": "cheer1 hi cheer1",
                       "bits": 2}}  # fmt: skip
    assert (await _post(app, cheer, "notification")).status_code == 204
    [event] = await app.store.latest_events("1337", 10)
    assert event.type == "channel.cheer"


GOAL = "Sub goal “Help me get partner!”"


@pytest.mark.parametrize(
    ("event_type", "data", "summary"),
    [
        ("channel.goal.begin", {**GOAL_BEGIN_DOCUMENTED, "type": "follower", "description": ""},
         "Follower goal started at 100 / 220"),
        ("channel.goal.begin", {**GOAL_BEGIN_DOCUMENTED, "type": "brand_new"},
         "Goal “Help me get partner!” started at 100 / 220"),
        ("channel.goal.progress", {**GOAL_BEGIN_DOCUMENTED, "current_amount": -1},
         f"{GOAL} made progress"),
        ("channel.goal.progress", {**GOAL_BEGIN_DOCUMENTED, "target_amount": 10**30},
         f"{GOAL} made progress"),
        ("channel.goal.progress", {**GOAL_BEGIN_DOCUMENTED, "current_amount": True},
         f"{GOAL} made progress"),
        ("channel.goal.begin", {**GOAL_BEGIN_DOCUMENTED, "description": "x" * 500},
         "Sub goal “" + "x" * 59 + "…” started at 100 / 220"),
        ("channel.goal.end", {**GOAL_END_DOCUMENTED, "is_achieved": True, "current_amount": 220},
         f"{GOAL} achieved at 220 / 220"),
        ("channel.goal.end", {**GOAL_END_DOCUMENTED, "is_achieved": "yes"},
         f"{GOAL} ended at 100 / 220"),
        ("channel.charity_campaign.progress",
         {**CHARITY_PROGRESS_DOCUMENTED, "current_amount": {"value": 5, "decimal_places": 10**9,
                                                            "currency": "USD"}},
         "Charity campaign for Example name made progress"),
        ("channel.charity_campaign.stop",
         {**CHARITY_STOP_DOCUMENTED, "target_amount": "lots", "charity_name": None},
         "Charity campaign for charity ended: 14,500.00 USD raised"),
        ("channel.charity_campaign.start", {**CHARITY_START_DOCUMENTED, "target_amount": None},
         "Charity campaign for Example name started"),
        ("channel.bits.use", {**BITS_USE_POWER_UP_DOCUMENTED, "type": "combo", "power_up": None,
                              "message": None}, "Cool_User sent a combo"),
        ("channel.bits.use", {**BITS_USE_POWER_UP_DOCUMENTED, "power_up": {"type": "new_thing"},
                              "message": "odd"}, "Cool_User used bits on a Power-up"),
        ("channel.hype_train.progress", {**HYPE_TRAIN_PROGRESS_DOCUMENTED, "level": -3},
         "Hype train rolling: 200 / 1,000"),
        ("channel.hype_train.progress", {**HYPE_TRAIN_PROGRESS_DOCUMENTED, "goal": 0},
         "Hype train at level 2"),
        ("channel.channel_points_automatic_reward_redemption.add",
         {**AUTOMATIC_REWARD_DOCUMENTED, "reward": {"type": "chosen_sub_emote_unlock",
          "channel_points": 2400, "emote": {"id": "1", "name": "pixelHype"}}, "message": None},
         "TwitchDev redeemed a sub emote of their choice (pixelHype)"),
        ("channel.channel_points_automatic_reward_redemption.add",
         {**AUTOMATIC_REWARD_DOCUMENTED, "reward": "odd", "message": {"text": 5}},
         "TwitchDev redeemed an automatic reward: 5"),
        ("channel.shoutout.create", {**SHOUTOUT_CREATE_DOCUMENTED, "viewer_count": "lots"},
         "SimplySimple shouted out SandySanderman"),
        ("channel.shoutout.create", {**SHOUTOUT_CREATE_DOCUMENTED, "viewer_count": 12345},
         "SimplySimple shouted out SandySanderman to 12,345 viewers"),
    ],
)  # fmt: skip
def test_added_types_summaries_stay_bounded_on_odd_amounts(
    event_type: str, data: dict[str, Any], summary: str
) -> None:
    event = build_event(
        message_id="m", event_type=event_type, version="1",
        broadcaster_id=str(data.get("broadcaster_user_id", data.get("broadcaster_id"))), data=data,
        message_timestamp="2026-11-28T10:11:12.123456789Z",
        received_at="2026-11-28T10:11:12.200Z",
    )  # fmt: skip
    assert event.summary == summary


@pytest.mark.parametrize("event_type", DOCUMENTED_EVENTS)
def test_simulator_generates_exactly_the_documented_fields_of_each_added_type(
    event_type: str,
) -> None:
    directory = Directory()
    broadcaster = next(account for account in directory if account.streamer)
    documented = DOCUMENTED_EVENTS[event_type][1]
    for seed in range(10):
        generated = generate_event(event_type, broadcaster, directory, random.Random(seed))
        assert _fits(_keys(generated), _keys(documented)), (generated, documented)


def _fits(generated: Any, documented: Any) -> bool:
    """The same keys and JSON types, except for nullable fields: where the example is null (an
    automatic reward's emote) the simulator may send an object, and null where the example
    has a value (a combo's power_up, a celebration's message_effect_id)."""
    if generated == "NoneType" or (documented == "NoneType" and isinstance(generated, dict)):
        return True
    if isinstance(documented, dict) and isinstance(generated, dict):
        return generated.keys() == documented.keys() and all(
            _fits(generated[key], documented[key]) for key in documented
        )
    if isinstance(documented, list) and isinstance(generated, list):
        return len(generated) == len(documented) == 0 or all(
            _fits(g, documented[0]) for g in generated
        )
    return bool(generated == documented)


async def test_documented_revocation_of_a_held_subscription_is_recorded(app: AppHandle) -> None:
    sub = REVOCATION["subscription"]
    await app.store.save_broadcaster(
        Broadcaster(
            id="12826", login="twitchdev", display_name="TwitchDev",
            granted_scopes=["moderator:read:followers"],
        )
    )  # fmt: skip
    await app.store.save_subscription(
        SubscriptionRecord(
            id=sub["id"], broadcaster_id="12826", type=sub["type"], version=sub["version"],
            condition=sub["condition"], status="enabled",
        )
    )  # fmt: skip
    response = await _post(app, REVOCATION, "revocation")
    assert response.status_code == 204
    record = await app.store.get_subscription(sub["id"])
    assert record is not None and record.status == "authorization_revoked"
    broadcaster = await app.store.get_broadcaster("12826")
    assert broadcaster is not None and broadcaster.granted_scopes == []


async def test_documented_revocation_of_an_unknown_subscription_changes_nothing(
    app: AppHandle,
) -> None:
    await app.store.save_broadcaster(
        Broadcaster(
            id="12826", login="twitchdev", display_name="TwitchDev",
            granted_scopes=["moderator:read:followers"],
        )
    )  # fmt: skip
    response = await _post(app, REVOCATION, "revocation")
    assert response.status_code == 204
    assert await app.store.get_subscription(REVOCATION["subscription"]["id"]) is None
    broadcaster = await app.store.get_broadcaster("12826")
    assert broadcaster is not None and broadcaster.granted_scopes == ["moderator:read:followers"]


async def test_documented_authorization_revoke_logs_the_user_out(app: AppHandle) -> None:
    await app.store.save_user(
        User(
            id="1337", login="cool_user", display_name="Cool_User",
            access_token="login-token", refresh_token="refresh",
        )
    )  # fmt: skip
    response = await _post(app, AUTHORIZATION_REVOKED, "notification")
    assert response.status_code == 204
    user = await app.store.get_user("1337")
    assert user is not None and user.access_token is None and user.refresh_token is None
    assert user.session_ended_reason and "disconnected SEV" in user.session_ended_reason
    assert await app.store.latest_events("1337", 10) == []


async def test_authorization_revoke_for_another_client_changes_nothing(app: AppHandle) -> None:
    await app.store.save_user(
        User(id="1337", login="cool_user", display_name="Cool_User", access_token="t")
    )
    other = copy.deepcopy(AUTHORIZATION_REVOKED)
    other["event"]["client_id"] = other["subscription"]["condition"]["client_id"] = "someone"
    assert (await _post(app, other, "notification")).status_code == 204
    user = await app.store.get_user("1337")
    assert user is not None and user.access_token == "t" and user.session_ended_reason is None


# -- the simulated Twitch answers in the documented shapes -------------------------------------


@pytest.fixture
async def twitch() -> AsyncIterator[tuple[Simulator, str, str, httpx.AsyncClient]]:
    """A simulated Twitch and a callback that answers challenges; yields an app token too."""
    sim = Simulator(SimulatorConfig(delivery_timeout_s=0.5, retry_delays_s=(0.05,), seed=3))
    receiver = Receiver()
    async with (
        serve_all(sim.app, receiver.app) as (base, receiver_base),
        httpx.AsyncClient(base_url=base, timeout=10) as http,
    ):
        token = (
            await http.post(
                "/oauth2/token",
                data={
                    "client_id": DEMO_CLIENT_ID,
                    "client_secret": DEMO_CLIENT_SECRET,
                    "grant_type": "client_credentials",
                },
            )
        ).json()["access_token"]
        http.headers.update({"Authorization": f"Bearer {token}", "Client-Id": DEMO_CLIENT_ID})
        yield sim, f"{receiver_base}/webhook", token, http


def _create_body(callback: str, type_: str, version: str, condition: dict[str, str]) -> Any:
    return {
        "type": type_,
        "version": version,
        "condition": condition,
        "transport": {"method": "webhook", "callback": callback, "secret": "s3cre77890ab"},
    }


async def test_simulator_create_and_list_answer_in_the_documented_shape(
    twitch: tuple[Simulator, str, str, httpx.AsyncClient],
) -> None:
    sim, callback, _, http = twitch
    created = await http.post(
        "/helix/eventsub/subscriptions",
        json=_create_body(callback, "user.update", "1", {"user_id": "41000001"}),
    )
    assert created.status_code == 202
    assert _keys(created.json()) == _keys(CREATE_RESPONSE)
    assert created.json()["data"][0]["status"] == "webhook_callback_verification_pending"
    (item,) = created.json()["data"]
    await eventually(lambda: sim.subscriptions[item["id"]].status == "enabled")
    listed = await http.get("/helix/eventsub/subscriptions")
    assert listed.status_code == 200
    assert _keys(listed.json()) == {
        **_keys(LIST_RESPONSE),
        "data": [_keys(LIST_RESPONSE["data"][1])],
    }
    assert listed.json()["pagination"] == {}


async def test_simulator_answers_every_condition_field_unused_ones_empty(
    twitch: tuple[Simulator, str, str, httpx.AsyncClient],
) -> None:
    _, callback, _, http = twitch
    raid = await http.post(
        "/helix/eventsub/subscriptions",
        json=_create_body(callback, "channel.raid", "1", {"to_broadcaster_user_id": "41000001"}),
    )
    assert raid.status_code == 202
    assert raid.json()["data"][0]["condition"] == {
        "from_broadcaster_user_id": "",
        "to_broadcaster_user_id": "41000001",
    }


async def test_simulator_revocation_and_errors_are_documented_ones(
    twitch: tuple[Simulator, str, str, httpx.AsyncClient],
) -> None:
    sim, callback, _, http = twitch
    body = _create_body(callback, "stream.online", "1", {"broadcaster_user_id": "41000002"})
    created = (await http.post("/helix/eventsub/subscriptions", json=body)).json()["data"][0]
    await eventually(lambda: sim.subscriptions[created["id"]].status == "enabled")
    again = await http.post("/helix/eventsub/subscriptions", json=body)
    assert again.status_code == 409
    assert set(again.json()) == {"error", "status", "message"}
    revoked = await http.post(
        "/control/revoke",
        json={"status": "authorization_revoked", "subscription_id": created["id"]},
    )
    assert revoked.json() == {"revoked": [created["id"]]}
    assert sim.subscriptions[created["id"]].status == "authorization_revoked"
    assert _keys(sim.subscriptions[created["id"]].public()) == _keys(REVOCATION["subscription"])
    missing = await http.delete("/helix/eventsub/subscriptions")
    assert missing.status_code == 400
    gone = await http.delete("/helix/eventsub/subscriptions", params={"id": "nope"})
    assert gone.status_code == 404
    deleted = await http.delete("/helix/eventsub/subscriptions", params={"id": created["id"]})
    assert deleted.status_code == 204 and deleted.content == b""


async def test_simulator_validate_answers_in_the_documented_shape(
    twitch: tuple[Simulator, str, str, httpx.AsyncClient],
) -> None:
    _, _, token, http = twitch
    refused = await http.get("/oauth2/validate", headers={"Authorization": "OAuth nope"})
    assert (refused.status_code, refused.json()) == (401, VALIDATE_REFUSED)
    app = await http.get("/oauth2/validate", headers={"Authorization": f"OAuth {token}"})
    # An app token has no user: the documented keys without login and user_id.
    assert set(app.json()) == set(VALIDATE_OK) - {"login", "user_id"}
