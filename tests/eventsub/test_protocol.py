"""EventSub protocol: signatures, the timestamp window and message parsing (pure functions)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from sev.clock import normalize_timestamp, parse_timestamp
from sev.eventsub.protocol import MessageType, RejectedMessage, sign, verify
from tests.support.factories import SECRET, notification_body, signed_request

NOW = datetime(2026, 11, 28, 10, 11, 12, tzinfo=UTC)


def _headers_at(moment: datetime, body: bytes, **changes: str) -> dict[str, str]:
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "789Z"
    headers, _ = signed_request(body, timestamp=stamp)
    return {k.lower(): v for k, v in {**headers, **changes}.items()}


def test_sign_matches_twitchs_recipe() -> None:
    expected = hmac.new(
        b"s3cr3t-value", b"id1" + b"2026-01-01T00:00:00Z" + b"{}", hashlib.sha256
    ).hexdigest()
    assert sign("s3cr3t-value", "id1", "2026-01-01T00:00:00Z", b"{}") == f"sha256={expected}"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-28T10:11:12.123456789Z", "2026-11-28T10:11:12.123Z"),
        ("2026-11-28T10:11:12Z", "2026-11-28T10:11:12.000Z"),
        ("2026-11-28T11:11:12.5+01:00", "2026-11-28T10:11:12.500Z"),
        ("not a time", "not a time"),
    ],
)
def test_normalize_timestamp_trims_nanoseconds(raw: str, expected: str) -> None:
    assert normalize_timestamp(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "yesterday",
        "2026-11-28 10:11:12Z",  # ISO 8601 allows a space; RFC 3339's T is what Twitch sends
        "20261128T101112Z",  # ISO 8601's basic form
        "2026-11-28T10:11:12",  # no time zone
        "2026-11-28T10:11:12,5Z",  # a comma before the fraction
    ],
)
def test_parse_timestamp_refuses_what_is_not_rfc_3339(raw: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_timestamp(raw)


def test_verify_accepts_a_genuine_notification() -> None:
    body = json.dumps(notification_body()).encode()
    message = verify(_headers_at(NOW, body), body, SECRET, NOW)
    assert message.message_type is MessageType.NOTIFICATION
    assert message.subscription_type == "channel.follow"
    assert message.event is not None and message.event["user_login"] == "cool_user"


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("missing-id", 403),
        ("missing-signature", 403),
        ("missing-timestamp", 403),
        ("missing-type", 403),
        ("bad-signature", 403),
        ("wrong-secret", 403),
        ("stale", 403),
        ("future", 403),
        ("garbage-timestamp", 403),
        ("unknown-type", 400),
    ],
)
def test_verify_refuses(case: str, status: int) -> None:
    body = json.dumps(notification_body()).encode()
    moment = {
        "stale": NOW - timedelta(minutes=10, seconds=1),
        "future": NOW + timedelta(minutes=2),
    }.get(case, NOW)
    headers = _headers_at(moment, body)
    if case.startswith("missing-"):
        del headers[f"twitch-eventsub-message-{case.removeprefix('missing-')}"]
    elif case == "bad-signature":
        headers["twitch-eventsub-message-signature"] = "sha256=" + "0" * 64
    elif case == "wrong-secret":
        headers["twitch-eventsub-message-signature"] = sign(
            "another-secret-123",
            headers["twitch-eventsub-message-id"],
            headers["twitch-eventsub-message-timestamp"],
            body,
        )
    elif case == "garbage-timestamp":
        headers["twitch-eventsub-message-timestamp"] = "soon"
        headers["twitch-eventsub-message-signature"] = sign(
            SECRET, headers["twitch-eventsub-message-id"], "soon", body
        )
    elif case == "unknown-type":
        headers["twitch-eventsub-message-type"] = "surprise"
    with pytest.raises(RejectedMessage) as refused:
        verify(headers, body, SECRET, NOW)
    assert refused.value.status == status


def test_verify_signs_over_the_raw_body_not_reparsed_json() -> None:
    body = b'{"subscription": {"type": "x"},   "event": {}}'
    headers = _headers_at(NOW, body)
    assert verify(headers, body, SECRET, NOW).subscription_type == "x"
    with pytest.raises(RejectedMessage):
        verify(headers, json.dumps(json.loads(body)).encode(), SECRET, NOW)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"event": {}}', b'{"subscription": {}, "event": "x"}', b"\xff\xfe"],
)
def test_verify_answers_400_to_malformed_bodies(body: bytes) -> None:
    with pytest.raises(RejectedMessage) as refused:
        verify(_headers_at(NOW, body), body, SECRET, NOW)
    assert refused.value.status == 400


def test_verify_reads_a_challenge() -> None:
    body = json.dumps({"challenge": "pogchamp-kappa-360noscope", "subscription": {}}).encode()
    headers = _headers_at(
        NOW, body, **{"twitch-eventsub-message-type": "webhook_callback_verification"}
    )
    headers["twitch-eventsub-message-signature"] = sign(
        SECRET,
        headers["twitch-eventsub-message-id"],
        headers["twitch-eventsub-message-timestamp"],
        body,
    )
    message = verify(headers, body, SECRET, NOW)
    assert message.challenge == "pogchamp-kappa-360noscope"
