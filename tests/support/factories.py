"""Builders for test data: events as SEV stores them, and signed EventSub requests."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sev.events import Event, Person
from sev.eventsub.protocol import sign
from tests.support.settings import EVENTSUB_SECRET

SECRET = EVENTSUB_SECRET
# The CSRF token of sessions made by session_cookie(..., csrf=CSRF).
CSRF = "t0ken"


def make_event(
    broadcaster_id: str = "1337",
    message_id: str | None = None,
    event_type: str = "channel.follow",
    **data: Any,
) -> Event:
    """An Event ready for the store (seq 0: the store numbers it)."""
    return Event(
        id=message_id or str(uuid.uuid4()),
        seq=0,
        type=event_type,
        version="2",
        broadcaster=Person(
            id=broadcaster_id, login=f"b{broadcaster_id}", name=f"B{broadcaster_id}"
        ),
        actor=Person(id="42", login="cool_user", name="Cool_User"),
        occurred_at="2026-11-28T10:11:12.123Z",
        received_at="2026-11-28T10:11:12.200Z",
        summary="Cool_User followed",
        data={"user_id": "42", **data},
    )


def twitch_timestamp(moment: datetime | None = None) -> str:
    """A timestamp as Twitch writes it: nanoseconds and Z."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def notification_body(
    event_type: str = "channel.follow",
    version: str = "2",
    broadcaster_id: str = "1337",
    **event: Any,
) -> dict[str, Any]:
    """A notification envelope with a documented-looking event."""
    condition = {"broadcaster_user_id": broadcaster_id}
    payload = {
        "user_id": "1234",
        "user_login": "cool_user",
        "user_name": "Cool_User",
        "broadcaster_user_id": broadcaster_id,
        "broadcaster_user_login": "cooler_user",
        "broadcaster_user_name": "Cooler_User",
        "followed_at": "2026-11-28T10:11:12.123456789Z",
        **event,
    }
    return {
        "subscription": {
            "id": str(uuid.uuid4()),
            "type": event_type,
            "version": version,
            "status": "enabled",
            "cost": 0,
            "condition": condition,
            "transport": {"method": "webhook", "callback": "http://x/webhooks/eventsub"},
            "created_at": "2026-11-28T10:00:00.0Z",
        },
        "event": payload,
    }


def signed_request(
    body: dict[str, Any] | bytes,
    *,
    message_type: str = "notification",
    secret: str = SECRET,
    message_id: str | None = None,
    timestamp: str | None = None,
    age: timedelta | None = None,
) -> tuple[dict[str, str], bytes]:
    """Headers and raw body of an EventSub request signed as Twitch signs it."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    message_id = message_id or str(uuid.uuid4())
    timestamp = timestamp or twitch_timestamp(datetime.now(UTC) - (age or timedelta()))
    headers = {
        "Twitch-Eventsub-Message-Id": message_id,
        "Twitch-Eventsub-Message-Retry": "0",
        "Twitch-Eventsub-Message-Type": message_type,
        "Twitch-Eventsub-Message-Signature": sign(secret, message_id, timestamp, raw),
        "Twitch-Eventsub-Message-Timestamp": timestamp,
        "Twitch-Eventsub-Subscription-Type": "channel.follow",
        "Twitch-Eventsub-Subscription-Version": "2",
        "Content-Type": "application/json",
    }
    return headers, raw


def session_cookie(secret: str, **session: Any) -> str:
    """A `sev_session` cookie value exactly as Starlette's SessionMiddleware signs it."""
    from base64 import b64encode

    import itsdangerous

    data = b64encode(json.dumps(session).encode())
    return itsdangerous.TimestampSigner(secret).sign(data).decode()
