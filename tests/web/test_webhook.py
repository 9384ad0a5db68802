"""POST /webhooks/eventsub through the real ASGI app, on both stores: genuine messages are stored
once and acknowledged; hostile ones are refused with the right status and leave no trace."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from sev.store import Store
from tests.support.apps import AppHandle, running_app
from tests.support.factories import notification_body, signed_request

URL = "/webhooks/eventsub"


@pytest.fixture(params=["sqlite", "mongo"])
async def app(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[AppHandle]:
    mongo_uri = None
    if request.param == "mongo":
        server = request.getfixturevalue("mongo_server")
        mongo_uri = f"{server.uri.rstrip('/')}/sev_{uuid.uuid4().hex[:10]}"
    async with running_app(tmp_path, mongodb_uri=mongo_uri) as handle:
        yield handle


async def _count(store: Store, broadcaster: str = "1337") -> int:
    return len(await store.events_after(broadcaster, 0, 10_000))


async def test_webhook_stores_a_genuine_notification(app: AppHandle) -> None:
    headers, body = signed_request(notification_body())
    response = await app.client.post(URL, headers=headers, content=body)
    assert response.status_code == 204
    [event] = await app.store.latest_events("1337", 10)
    assert event.id == headers["Twitch-Eventsub-Message-Id"]
    assert event.summary == "Cool_User followed"
    assert event.seq == 1
    assert event.broadcaster.login == "cooler_user"
    assert event.occurred_at == "2026-11-28T10:11:12.123Z"


async def test_webhook_answers_the_challenge_raw_in_text_plain(app: AppHandle) -> None:
    body = {"challenge": "pogchamp-kappa-360noscope-vohiyo", "subscription": {"id": "s"}}
    headers, raw = signed_request(body, message_type="webhook_callback_verification")
    response = await app.client.post(URL, headers=headers, content=raw)
    assert response.status_code == 200
    assert response.text == "pogchamp-kappa-360noscope-vohiyo"
    assert response.headers["content-type"].startswith("text/plain")
    assert await _count(app.store) == 0


async def test_webhook_stores_a_redelivery_once(app: AppHandle) -> None:
    headers, body = signed_request(notification_body())
    first = await app.client.post(URL, headers=headers, content=body)
    again = await app.client.post(URL, headers=headers, content=body)
    assert (first.status_code, again.status_code) == (204, 204)
    assert await _count(app.store) == 1


async def test_webhook_stores_one_event_for_100_concurrent_duplicates(app: AppHandle) -> None:
    headers, body = signed_request(notification_body())
    responses = await asyncio.gather(
        *(app.client.post(URL, headers=headers, content=body) for _ in range(100))
    )
    assert {r.status_code for r in responses} == {204}
    assert await _count(app.store) == 1


async def test_webhook_stores_an_unknown_type_with_a_generic_summary(app: AppHandle) -> None:
    headers, body = signed_request(notification_body("channel.brand_new", "1"))
    assert (await app.client.post(URL, headers=headers, content=body)).status_code == 204
    [event] = await app.store.latest_events("1337", 10)
    assert event.summary == "channel.brand_new event by Cool_User"


def _hostile(case: str) -> tuple[dict[str, str], bytes]:
    if case == "bad-json":
        return signed_request(b"{not json")
    if case == "infinity":
        # Python's json would read it; JSON (and a browser) would not.
        raw = json.dumps(notification_body(viewers=float("inf"))).encode()
        assert b"Infinity" in raw
        return signed_request(raw)
    if case == "nested-5000-deep":
        return signed_request(b'{"subscription": {}, "event": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    if case == "year-1":
        return signed_request(notification_body(), timestamp="0001-01-01T00:00:00.000+01:00")
    if case == "stale":
        return signed_request(notification_body(), age=timedelta(minutes=11))
    if case == "future":
        return signed_request(notification_body(), age=timedelta(minutes=-2))
    if case == "wrong-secret":
        return signed_request(notification_body(), secret="not-our-secret-at-all")
    headers, body = signed_request(notification_body())
    if case.startswith("missing-"):
        del headers[case.removeprefix("missing-")]
    elif case == "bad-signature":
        headers["Twitch-Eventsub-Message-Signature"] = "sha256=" + "ab" * 32
    elif case == "tampered-body":
        body = body.replace(b"Cool_User", b"Evil_User")
    return headers, body


HOSTILE = [
    ("missing-Twitch-Eventsub-Message-Id", 403),
    ("missing-Twitch-Eventsub-Message-Signature", 403),
    ("missing-Twitch-Eventsub-Message-Timestamp", 403),
    ("missing-Twitch-Eventsub-Message-Type", 403),
    ("bad-signature", 403),
    ("wrong-secret", 403),
    ("tampered-body", 403),
    ("stale", 403),
    ("future", 403),
    ("bad-json", 400),
    ("infinity", 400),
    ("nested-5000-deep", 400),
    ("year-1", 403),
]


# Signed but absurd input is refused with its 4xx, never a 500 (which Twitch retries).
@pytest.mark.parametrize(("case", "status"), HOSTILE, ids=[c for c, _ in HOSTILE])
async def test_webhook_refuses_hostile_requests(app: AppHandle, case: str, status: int) -> None:
    headers, body = _hostile(case)
    response = await app.client.post(URL, headers=headers, content=body)
    assert response.status_code == status
    assert await _count(app.store) == 0


async def test_webhook_refuses_a_huge_body_with_413(app: AppHandle) -> None:
    body = notification_body(padding="x" * (1024 * 1024))
    headers, raw = signed_request(body)
    response = await app.client.post(URL, headers=headers, content=raw)
    assert response.status_code == 413
    assert await _count(app.store) == 0


async def test_webhook_refuses_a_huge_streamed_body_without_length(app: AppHandle) -> None:
    headers, raw = signed_request(notification_body(padding="x" * (1024 * 1024)))

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 65536):
            yield raw[start : start + 65536]

    response = await app.client.post(URL, headers=headers, content=chunks())
    assert response.status_code == 413
    assert await _count(app.store) == 0


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_webhook_refuses_other_methods(app: AppHandle, method: str) -> None:
    response = await app.client.request(method, URL)
    assert response.status_code == 405


async def test_webhook_records_a_revocation(app: AppHandle) -> None:
    from sev.store import SubscriptionRecord

    await app.store.save_subscription(
        SubscriptionRecord(
            id="sub-1",
            broadcaster_id="1337",
            type="stream.online",
            version="1",
            condition={"broadcaster_user_id": "1337"},
            status="enabled",
        )
    )
    body = {
        "subscription": {
            "id": "sub-1",
            "type": "stream.online",
            "version": "1",
            "status": "user_removed",
            "condition": {"broadcaster_user_id": "1337"},
        }
    }
    headers, raw = signed_request(body, message_type="revocation")
    response = await app.client.post(URL, headers=headers, content=raw)
    assert response.status_code == 204
    record = await app.store.get_subscription("sub-1")
    assert record is not None and record.status == "user_removed"


def _odd(case: str) -> tuple[dict[str, str], bytes, str]:
    """A signed request with an odd shape: (headers, body, message type)."""
    revocation = {
        "subscription": {
            "id": "sub-odd",
            "type": "stream.online",
            "version": "1",
            "status": "authorization_revoked",
            "condition": ["broadcaster_user_id", "1337"],
        }
    }
    bodies: dict[str, tuple[Any, str]] = {
        "revocation-condition-list": (revocation, "revocation"),
        "revocation-subscription-list": ({"subscription": ["sub-odd"]}, "revocation"),
        "revocation-without-subscription": ({}, "revocation"),
        "event-a-list": ({**notification_body(), "event": [1, 2]}, "notification"),
        "event-a-string": ({**notification_body(), "event": "follow"}, "notification"),
        "condition-a-string": (
            {
                **notification_body(),
                "subscription": {**notification_body()["subscription"], "condition": "1337"},
            },
            "notification",
        ),
        "type-a-number": (
            {
                **notification_body(),
                "subscription": {**notification_body()["subscription"], "type": 7},
            },
            "notification",
        ),
        "number-of-5000-digits": (b"", "notification"),
        "year-9999": (notification_body(), "notification"),
    }
    body, message_type = bodies[case]
    if case == "number-of-5000-digits":
        raw = json.dumps(notification_body()).replace('"1234"', "1" * 5000, 1).encode()
        return (*signed_request(raw), message_type)
    if case == "year-9999":
        headers, raw = signed_request(body, timestamp="9999-12-31T23:59:59.999999999Z")
        return headers, raw, message_type
    return (*signed_request(body, message_type=message_type), message_type)


# (case, events stored): a notification whose event still names its broadcaster (the condition
# is odd) is a genuine event, and kept.
ODD = [
    ("revocation-condition-list", 0),
    ("revocation-subscription-list", 0),
    ("revocation-without-subscription", 0),
    ("event-a-list", 0),
    ("event-a-string", 0),
    ("condition-a-string", 1),
    ("type-a-number", 0),
    ("number-of-5000-digits", 0),
    ("year-9999", 0),
]


# Signed but oddly shaped: a clear 4xx or an acknowledgement, never a 500 (which Twitch retries
# until it revokes the subscription), nothing stored, and the next event is stored as usual.
@pytest.mark.parametrize(("case", "stored"), ODD, ids=[c for c, _ in ODD])
async def test_webhook_answers_odd_shapes_without_a_500_and_stores_the_next(
    app: AppHandle, case: str, stored: int
) -> None:
    from sev.store import SubscriptionRecord

    held = SubscriptionRecord(
        id="sub-odd",
        broadcaster_id="1337",
        type="stream.online",
        version="1",
        condition={"broadcaster_user_id": "1337"},
        status="enabled",
    )
    await app.store.save_subscription(held)
    headers, raw, _ = _odd(case)
    response = await app.client.post(URL, headers=headers, content=raw)
    assert response.status_code in (204, 400, 403), (response.status_code, response.text)
    assert await _count(app.store) == stored
    if stored:
        [event] = await app.store.latest_events("1337", 10)
        assert (event.type, event.broadcaster.id) == ("channel.follow", "1337")
    headers, raw = signed_request(notification_body())
    assert (await app.client.post(URL, headers=headers, content=raw)).status_code == 204
    assert await _count(app.store) == stored + 1


async def test_webhook_stores_odd_unicode_as_it_came(app: AppHandle) -> None:
    name = "\u202eevil\u200b\u0000 \U0001f600 \ud800"  # RTL override, zero width, NUL, emoji
    headers, raw = signed_request(
        json.dumps(notification_body(user_name=name, user_login="odd")).encode()
    )
    assert (await app.client.post(URL, headers=headers, content=raw)).status_code == 204
    [event] = await app.store.latest_events("1337", 10)
    assert event.actor is not None
    # A lone surrogate cannot be stored as UTF-8: it reads as U+FFFD; the rest is kept.
    assert event.actor.name == "\u202eevil\u200b\u0000 \U0001f600 \ufffd"


async def test_webhook_events_are_numbered_in_arrival_order(app: AppHandle) -> None:
    requests = [signed_request(notification_body(user_name=f"U{i}")) for i in range(20)]
    results = await asyncio.gather(
        *(app.client.post(URL, headers=h, content=b) for h, b in requests)
    )
    assert {r.status_code for r in results} == {204}
    events = await app.store.events_after("1337", 0, 100)
    assert [e.seq for e in events] == list(range(1, 21))


async def test_webhook_answers_503_and_stores_nothing_when_the_store_is_down(
    tmp_path: Any, mongo_server: Any
) -> None:
    uri = f"{mongo_server.uri.rstrip('/')}/sev_{uuid.uuid4().hex[:10]}"
    async with running_app(tmp_path, mongodb_uri=uri) as handle:
        mongo_server.stop()
        try:
            headers, body = signed_request(notification_body())
            response = await handle.client.post(URL, headers=headers, content=body)
            assert response.status_code == 503
            health = await handle.client.get("/healthz")
            assert health.status_code == 503
        finally:
            mongo_server.start()
        # Twitch retries the same message: now it is stored, once.
        response = await handle.client.post(URL, headers=headers, content=body)
        assert response.status_code == 204
        assert await _count(handle.store) == 1
        assert (await handle.client.get("/healthz")).status_code == 200


def test_hostile_table_covers_every_required_header() -> None:
    missing = {case.removeprefix("missing-") for case, _ in HOSTILE if case.startswith("missing-")}
    assert missing == {
        "Twitch-Eventsub-Message-Id",
        "Twitch-Eventsub-Message-Signature",
        "Twitch-Eventsub-Message-Timestamp",
        "Twitch-Eventsub-Message-Type",
    }


async def test_webhook_accepts_header_names_in_any_case(app: AppHandle) -> None:
    headers, body = signed_request(notification_body())
    lowered = {k.lower(): v for k, v in headers.items()}
    response = await app.client.post(URL, headers=lowered, content=body)
    assert response.status_code == 204
    assert await _count(app.store) == 1


async def test_webhook_stores_an_absurd_charity_amount_without_stalling(app: AppHandle) -> None:
    body = notification_body(
        "channel.charity_campaign.donate",
        "1",
        amount={"value": 5, "decimal_places": 3_000_000, "currency": "USD"},
        charity_name="Good Cause",
    )
    headers, raw = signed_request(body)
    started = asyncio.get_running_loop().time()
    assert (await app.client.post(URL, headers=headers, content=raw)).status_code == 204
    # 10 ** 3,000,000 would have held the event loop for seconds.
    assert asyncio.get_running_loop().time() - started < 2
    [event] = await app.store.latest_events("1337", 10)
    assert event.summary == "Cool_User donated a donation to Good Cause"


async def test_a_lone_surrogate_in_one_of_40_webhooks_fails_none_of_them(app: AppHandle) -> None:
    requests = [signed_request(notification_body(user_name=f"Viewer{n}")) for n in range(39)]
    # json.dumps escapes it as "\ud800": valid JSON, but no UTF-8 text can hold it.
    requests.append(signed_request(notification_body(user_name="Odd\ud800One")))
    responses = await asyncio.gather(
        *(app.client.post(URL, headers=headers, content=body) for headers, body in requests)
    )
    assert [r.status_code for r in responses] == [204] * 40
    events = await app.store.latest_events("1337", 100)
    assert len(events) == 40
    odd = next(e for e in events if e.id == requests[-1][0]["Twitch-Eventsub-Message-Id"])
    assert odd.summary == "Odd\ufffdOne followed"
