"""The EventSub WebSocket transport's pure parts: Twitch's documented messages read as Twitch
wrote them, who carries which channel, and what a connection may say: where a reconnect may
go, how long a keepalive may be, how old a message (sev/eventsub/websocket/)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sev.events import wanted_types
from sev.eventsub.protocol import (
    MessageType,
    RejectedMessage,
    SocketMessageType,
    check_fresh,
    parse_socket_message,
)
from sev.eventsub.websocket import (
    NO_CARRIER,
    keepalive_floor,
    keepalive_timeout,
    plan,
    reconnect_allowed,
    refusal,
)
from sev.store import Broadcaster, Refusal, User

# Twitch's documented examples (dev.twitch.tv/docs/eventsub/websocket-reference and
# handling-websocket-events), word for word apart from layout.
WELCOME = """{
  "metadata": {
    "message_id": "96a3f3b5-5dec-4eed-908e-e11ee657416c",
    "message_type": "session_welcome",
    "message_timestamp": "2023-07-19T14:56:51.634234626Z"
  },
  "payload": {
    "session": {
      "id": "AQoQILE98gtqShGmLD7AM6yJThAB",
      "status": "connected",
      "connected_at": "2023-07-19T14:56:51.616329898Z",
      "keepalive_timeout_seconds": 10,
      "reconnect_url": null
    }
  }
}"""
KEEPALIVE = """{
  "metadata": {
    "message_id": "84c1e79a-2a4b-4c13-ba0b-4312293e9308",
    "message_type": "session_keepalive",
    "message_timestamp": "2023-07-19T10:11:12.634234626Z"
  },
  "payload": {}
}"""
NOTIFICATION = """{
  "metadata": {
    "message_id": "befa7b53-d79d-478f-86b9-120f112b044e",
    "message_type": "notification",
    "message_timestamp": "2022-11-16T10:11:12.464757833Z",
    "subscription_type": "channel.follow",
    "subscription_version": "1"
  },
  "payload": {
    "subscription": {
      "id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4",
      "status": "enabled",
      "type": "channel.follow",
      "version": "1",
      "cost": 1,
      "condition": {"broadcaster_user_id": "12826"},
      "transport": {"method": "websocket", "session_id": "AQoQexAWVYKSTIu4ec_2VAxyuhAB"},
      "created_at": "2022-11-16T10:11:12.464757833Z"
    },
    "event": {
      "user_id": "1337",
      "user_login": "awesome_user",
      "user_name": "Awesome_User",
      "broadcaster_user_id": "12826",
      "broadcaster_user_login": "twitch",
      "broadcaster_user_name": "Twitch",
      "followed_at": "2023-07-15T18:16:11.17106713Z"
    }
  }
}"""
RECONNECT = """{
  "metadata": {
    "message_id": "84c1e79a-2a4b-4c13-ba0b-4312293e9308",
    "message_type": "session_reconnect",
    "message_timestamp": "2022-11-18T09:10:11.634234626Z"
  },
  "payload": {
    "session": {
      "id": "AQoQexAWVYKSTIu4ec_2VAxyuhAB",
      "status": "reconnecting",
      "keepalive_timeout_seconds": null,
      "reconnect_url": "wss://eventsub.wss.twitch.tv?...",
      "connected_at": "2022-11-16T10:11:12.634234626Z"
    }
  }
}"""
REVOCATION = """{
  "metadata": {
    "message_id": "84c1e79a-2a4b-4c13-ba0b-4312293e9308",
    "message_type": "revocation",
    "message_timestamp": "2022-11-16T10:11:12.464757833Z",
    "subscription_type": "channel.follow",
    "subscription_version": "1"
  },
  "payload": {
    "subscription": {
      "id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4",
      "status": "authorization_revoked",
      "type": "channel.follow",
      "version": "1",
      "cost": 1,
      "condition": {"broadcaster_user_id": "12826"},
      "transport": {"method": "websocket", "session_id": "AQoQexAWVYKSTIu4ec_2VAxyuhAB"},
      "created_at": "2022-11-16T10:11:12.464757833Z"
    }
  }
}"""


def test_the_documented_welcome_gives_the_session_and_its_keepalive() -> None:
    message = parse_socket_message(WELCOME)
    assert message.message_type is SocketMessageType.WELCOME
    assert message.session["id"] == "AQoQILE98gtqShGmLD7AM6yJThAB"
    assert message.session["keepalive_timeout_seconds"] == 10


def test_the_documented_keepalive_and_reconnect_read_as_such() -> None:
    assert parse_socket_message(KEEPALIVE).message_type is SocketMessageType.KEEPALIVE
    reconnect = parse_socket_message(RECONNECT)
    assert reconnect.message_type is SocketMessageType.RECONNECT
    assert reconnect.session["reconnect_url"] == "wss://eventsub.wss.twitch.tv?..."
    assert reconnect.session["keepalive_timeout_seconds"] is None


def test_the_documented_notification_becomes_the_webhooks_message() -> None:
    message = parse_socket_message(NOTIFICATION.encode()).to_message()
    assert message.message_type is MessageType.NOTIFICATION
    assert message.message_id == "befa7b53-d79d-478f-86b9-120f112b044e"
    assert message.subscription_type == "channel.follow"
    assert message.condition == {"broadcaster_user_id": "12826"}
    assert message.event is not None and message.event["user_login"] == "awesome_user"
    assert message.sent_at == datetime(2022, 11, 16, 10, 11, 12, 464757, tzinfo=UTC)


def test_the_documented_revocation_becomes_the_webhooks_revocation() -> None:
    message = parse_socket_message(REVOCATION).to_message()
    assert message.message_type is MessageType.REVOCATION
    assert message.subscription["status"] == "authorization_revoked"
    assert message.event is None


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[]",
        '{"payload": {}}',
        '{"metadata": {"message_type": "notification"}}',
        '{"metadata": {"message_id": "m", "message_timestamp": "t", "message_type": "hello"}}',
        '{"metadata": {"message_id": "m", "message_timestamp": "t", "message_type": '
        '"notification"}, "payload": {"value": NaN}}',
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_a_frame_that_is_no_message_is_refused_with_a_reason(frame: str) -> None:
    with pytest.raises(RejectedMessage):
        parse_socket_message(frame)


def test_a_notification_without_an_event_or_type_is_refused_like_a_webhooks() -> None:
    document = json.loads(NOTIFICATION)
    del document["payload"]["event"]
    with pytest.raises(RejectedMessage):
        parse_socket_message(json.dumps(document)).to_message()
    document = json.loads(NOTIFICATION)
    document["payload"]["subscription"]["type"] = 7
    with pytest.raises(RejectedMessage):
        parse_socket_message(json.dumps(document)).to_message()


def test_a_lone_surrogate_in_a_socket_message_becomes_a_replacement_character() -> None:
    document = json.loads(NOTIFICATION)
    document["payload"]["event"]["user_name"] = "A\ud800B"
    message = parse_socket_message(json.dumps(document)).to_message()
    assert message.event is not None and message.event["user_name"] == "A\ufffdB"


# -- who carries what ----------------------------------------------------------------------------

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
GRACE = timedelta(hours=1)
PUBLIC = [e.key for e in wanted_types(set())]


def _user(
    user_id: str, *, login: bool = True, channel: bool = False, fav: str | None = None
) -> User:
    return User(
        id=user_id,
        login=f"u{user_id}",
        display_name=f"U{user_id}",
        access_token=f"login-{user_id}" if login else None,
        channel_access_token=f"channel-{user_id}" if channel else None,
        favorite_id=fav,
    )


def _streamer(broadcaster_id: str, **fields: object) -> Broadcaster:
    return Broadcaster(id=broadcaster_id, login=f"s{broadcaster_id}", display_name="S", **fields)


def test_a_channel_is_carried_by_a_logged_in_viewer_who_favours_it_public_types_only() -> None:
    result = plan([_streamer("1")], [_user("9", fav="1"), _user("8", fav="1")], NOW, GRACE)
    assert set(result.carriers) == {"8"}  # one carrier, chosen the same way every time
    assert [w.entry.key for w in result.carriers["8"]] == PUBLIC
    assert len(PUBLIC) <= 10  # one viewer's max_total_cost of 10 always holds them


def test_a_streamer_with_a_channel_grant_carries_their_own_channel_at_no_cost() -> None:
    scopes = ["moderator:read:followers", "bits:read"]
    streamer = _streamer("1", granted_scopes=scopes)
    result = plan([streamer], [_user("1", channel=True), _user("9", fav="1")], NOW, GRACE)
    assert set(result.carriers) == {"1"}
    keys = {w.entry.key for w in result.carriers["1"]}
    assert keys == {e.key for e in wanted_types(set(scopes))} and keys > set(PUBLIC)


def test_a_streamer_logged_in_without_a_grant_carries_the_public_types() -> None:
    result = plan([_streamer("1", granted_scopes=["bits:read"])], [_user("1")], NOW, GRACE)
    assert [w.entry.key for w in result.carriers["1"]] == PUBLIC


def test_a_channel_nobody_logged_in_favours_is_uncarried_and_says_so() -> None:
    result = plan([_streamer("1")], [_user("9", login=False, fav="1")], NOW, GRACE)
    assert result.carriers == {} and result.uncarried == {"1": PUBLIC}
    assert refusal(wanted_types(set())[0], NO_CARRIER, NOW).retry_at is None


def test_unwanted_channels_are_released_after_the_grace_and_removed_ones_at_once() -> None:
    gone = _streamer("1", removed_at=NOW)
    lapsed = _streamer("2", unwanted_since=NOW - GRACE)
    recent = _streamer("3", unwanted_since=NOW - GRACE / 2)
    users = [_user("1"), _user("2"), _user("3")]
    assert set(plan([gone, lapsed, recent], users, NOW, GRACE).carriers) == {"3"}


def test_held_back_types_are_not_asked_for_until_due() -> None:
    entry = wanted_types(set())[0]
    held = Refusal(
        key=entry.key,
        version=entry.version,
        reason="socket_cost",
        at=NOW,
        retry_at=NOW + timedelta(minutes=5),
    )
    retired = Refusal(
        key=PUBLIC[1], version=wanted_types(set())[1].version, reason="version_removed", at=NOW
    )
    streamer = _streamer("1", refusals=[held, retired])
    keys = [w.entry.key for w in plan([streamer], [_user("1")], NOW, GRACE).carriers["1"]]
    assert entry.key not in keys and PUBLIC[1] not in keys and keys == PUBLIC[2:]
    later = plan([streamer], [_user("1")], NOW + timedelta(minutes=6), GRACE).carriers["1"]
    assert entry.key in [w.entry.key for w in later]


# -- what a connection may say ------------------------------------------------------------------

TWITCH_WS = "wss://eventsub.wss.twitch.tv/ws"
LOCAL_WS = "ws://127.0.0.1:8765/ws?keepalive_timeout_seconds=2"


@pytest.mark.parametrize(
    ("url", "configured", "allowed"),
    [
        ("wss://eventsub.wss.twitch.tv/ws?reconnect_id=abc", TWITCH_WS, True),
        ("wss://EventSub.WSS.twitch.tv:443/ws", TWITCH_WS, True),
        # Twitch's host is followed whatever SEV is configured with.
        ("wss://eventsub.wss.twitch.tv/ws", LOCAL_WS, True),
        ("ws://127.0.0.1:8765/ws?reconnect_id=abc", LOCAL_WS, True),
        ("ws://eventsub.wss.twitch.tv/ws", TWITCH_WS, False),
        ("wss://eventsub.wss.twitch.tv:8443/ws", TWITCH_WS, False),
        ("wss://eventsub.wss.twitch.tv.evil.example/ws", TWITCH_WS, False),
        ("wss://evil.example/ws", TWITCH_WS, False),
        ("wss://eventsub.wss.twitch.tv@evil.example/ws", TWITCH_WS, False),
        ("wss://evil.example\\@eventsub.wss.twitch.tv/ws", TWITCH_WS, False),
        ("wss://user@eventsub.wss.twitch.tv/ws", TWITCH_WS, False),
        ("wss://eventsub.wss.twitch.tv /ws", TWITCH_WS, False),
        ("wss://eventsub.wss.twitch.tv:99999/ws", TWITCH_WS, False),
        ("https://eventsub.wss.twitch.tv/ws", TWITCH_WS, False),
        ("ws://127.0.0.1:8766/ws", LOCAL_WS, False),
        ("wss://127.0.0.1:8765/ws", LOCAL_WS, False),
        ("ws://localhost:8765/ws", LOCAL_WS, False),
        ("ws://127.0.0.1/ws", LOCAL_WS, False),
        ("//eventsub.wss.twitch.tv/ws", TWITCH_WS, False),
        ("", TWITCH_WS, False),
    ],
)
def test_a_reconnect_url_is_followed_only_to_twitch_or_the_configured_host(
    url: str, configured: str, allowed: bool
) -> None:
    assert reconnect_allowed(url, configured) is allowed


@pytest.mark.parametrize(
    ("configured", "floor"),
    [
        (TWITCH_WS, 10),
        (LOCAL_WS, 2),
        ("wss://eventsub.wss.twitch.tv/ws?keepalive_timeout_seconds=30", 10),
        ("ws://127.0.0.1:1/ws?keepalive_timeout_seconds=0", 1),
        ("ws://127.0.0.1:1/ws?keepalive_timeout_seconds=nan", 10),
        ("ws://127.0.0.1:1/ws?keepalive_timeout_seconds=soon", 10),
    ],
)
def test_the_keepalive_floor_is_twitchs_unless_the_configured_url_asks_for_less(
    configured: str, floor: float
) -> None:
    assert keepalive_floor(configured) == floor


@pytest.mark.parametrize(
    ("value", "floor", "believed"),
    [
        (10, 10, 10),
        (600, 10, 600),
        (30.5, 10, 30.5),
        (2, 10, 10),
        (2, 2, 2),
        (1, 2, 2),
        (601, 10, 10),
        (1.7e308, 10, 10),
        (10**400, 10, 10),
        (float("inf"), 10, 10),
        (float("nan"), 10, 10),
        (0, 10, 10),
        (-5, 2, 10),
        (True, 2, 10),
        ("30", 10, 10),
        (None, 10, 10),
    ],
)
def test_a_welcomes_keepalive_is_believed_only_within_twitchs_range(
    value: object, floor: float, believed: float
) -> None:
    assert keepalive_timeout(value, floor) == believed


NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sent_at", "fresh"),
    [
        (NOW, True),
        (NOW - timedelta(minutes=9, seconds=59), True),
        (NOW + timedelta(seconds=59), True),
        (NOW - timedelta(minutes=10, seconds=1), False),
        (NOW + timedelta(minutes=2), False),
        (datetime(2001, 9, 9, tzinfo=UTC), False),
        (datetime(2099, 1, 1, tzinfo=UTC), False),
    ],
)
def test_a_socket_message_is_held_to_the_webhooks_ten_minutes(
    sent_at: datetime, fresh: bool
) -> None:
    if fresh:
        check_fresh(sent_at, NOW)
    else:
        with pytest.raises(RejectedMessage):
            check_fresh(sent_at, NOW)
