"""EventSub webhook protocol: signature check, timestamp window, message parsing.

Pure functions of their inputs (the current time is passed in), following Twitch's
"Handling webhook events" rules as summarised in docs/TWITCH.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sev.clock import parse_timestamp

MAX_BODY_BYTES = 1024 * 1024
MAX_AGE = timedelta(minutes=10)
MAX_CLOCK_SKEW = timedelta(minutes=1)

HEADER_ID = "twitch-eventsub-message-id"
HEADER_RETRY = "twitch-eventsub-message-retry"
HEADER_TYPE = "twitch-eventsub-message-type"
HEADER_SIGNATURE = "twitch-eventsub-message-signature"
HEADER_TIMESTAMP = "twitch-eventsub-message-timestamp"
HEADER_SUBSCRIPTION_TYPE = "twitch-eventsub-subscription-type"
HEADER_SUBSCRIPTION_VERSION = "twitch-eventsub-subscription-version"
REQUIRED_HEADERS = (HEADER_ID, HEADER_TYPE, HEADER_SIGNATURE, HEADER_TIMESTAMP)


class MessageType(StrEnum):
    NOTIFICATION = "notification"
    VERIFICATION = "webhook_callback_verification"
    REVOCATION = "revocation"


class RejectedMessage(Exception):
    """A request that is not a genuine, fresh EventSub message; `status` is the answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Message:
    """A verified EventSub message."""

    message_id: str
    message_type: MessageType
    timestamp: str  # the raw header value, as signed
    sent_at: datetime
    subscription: dict[str, Any]
    event: dict[str, Any] | None
    challenge: str | None

    @property
    def subscription_type(self) -> str:
        return str(self.subscription.get("type", ""))

    @property
    def subscription_version(self) -> str:
        return str(self.subscription.get("version", ""))

    @property
    def condition(self) -> dict[str, Any]:
        condition = self.subscription.get("condition")
        return condition if isinstance(condition, dict) else {}


def sign(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """The `Twitch-Eventsub-Message-Signature` value for a message."""
    digest = hmac.new(
        secret.encode(), message_id.encode() + timestamp.encode() + body, hashlib.sha256
    )
    return "sha256=" + digest.hexdigest()


def verify(headers: Mapping[str, str], body: bytes, secret: str, now: datetime) -> Message:
    """Check signature and freshness, then parse; raise RejectedMessage with the status to send.

    `headers` must be case-insensitive (Starlette's Headers) or lower-cased.
    """
    values = {name: headers.get(name) for name in REQUIRED_HEADERS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise RejectedMessage(403, f"missing header {missing[0]}")
    message_id, timestamp = str(values[HEADER_ID]), str(values[HEADER_TIMESTAMP])
    expected = sign(secret, message_id, timestamp, body)
    if not hmac.compare_digest(expected.encode(), str(values[HEADER_SIGNATURE]).encode()):
        raise RejectedMessage(403, "signature does not match")
    try:
        sent_at = parse_timestamp(timestamp)
    except ValueError:
        raise RejectedMessage(403, "malformed timestamp") from None
    check_fresh(sent_at, now)
    try:
        message_type = MessageType(str(values[HEADER_TYPE]))
    except ValueError:
        raise RejectedMessage(400, "unknown message type") from None
    return _parse(message_id, message_type, timestamp, sent_at, body)


def check_fresh(sent_at: datetime, now: datetime) -> None:
    """Refuse a message sent more than 10 minutes ago, or dated later than the clocks' skew
    allows: a replay, whichever transport brought it (RejectedMessage(403))."""
    if now - sent_at > MAX_AGE:
        raise RejectedMessage(403, "timestamp older than 10 minutes")
    if sent_at - now > MAX_CLOCK_SKEW:
        raise RejectedMessage(403, "timestamp in the future")


def _without_lone_surrogates(value: Any) -> Any:
    """The value with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode(body: bytes) -> Any:
    """Strict JSON with lone surrogates replaced; RejectedMessage(400) when it is not JSON."""
    try:
        # Strict JSON (RFC 8259): Infinity and NaN are Python's extensions, and a browser's
        # JSON.parse would refuse the event they ended up in.
        payload = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: nesting deeper than the parser's stack, a signed but absurd body.
        raise RejectedMessage(400, "body is not JSON") from None
    if b"\\ud" in body.lower():
        # A JSON escape of a UTF-16 surrogate: lone ones cannot be stored or sent as UTF-8.
        try:
            payload = _without_lone_surrogates(payload)
        except RecursionError:
            raise RejectedMessage(400, "body is not JSON") from None
    return payload


def _parse(
    message_id: str, message_type: MessageType, timestamp: str, sent_at: datetime, body: bytes
) -> Message:
    payload = _decode(body)
    return _message(message_id, message_type, timestamp, sent_at, payload)


def _message(
    message_id: str, message_type: MessageType, timestamp: str, sent_at: datetime, payload: Any
) -> Message:
    if not isinstance(payload, dict) or not isinstance(payload.get("subscription"), dict):
        raise RejectedMessage(400, "body has no subscription object")
    event = payload.get("event")
    challenge = payload.get("challenge")
    if message_type is MessageType.NOTIFICATION and not isinstance(event, dict):
        raise RejectedMessage(400, "notification without an event object")
    subscription_type = payload["subscription"].get("type")
    if message_type is MessageType.NOTIFICATION and not (
        isinstance(subscription_type, str) and subscription_type
    ):
        # The type decides how the event is read and shown: a number or nothing is no type.
        raise RejectedMessage(400, "notification without a subscription type")
    if message_type is MessageType.VERIFICATION and not isinstance(challenge, str):
        raise RejectedMessage(400, "verification without a challenge")
    return Message(
        message_id=message_id,
        message_type=message_type,
        timestamp=timestamp,
        sent_at=sent_at,
        subscription=payload["subscription"],
        event=event if isinstance(event, dict) else None,
        challenge=challenge if isinstance(challenge, str) else None,
    )


# -- the WebSocket transport ---------------------------------------------------------------------


class SocketMessageType(StrEnum):
    """`metadata.message_type` of EventSub WebSocket messages (Twitch's WebSocket reference)."""

    WELCOME = "session_welcome"
    KEEPALIVE = "session_keepalive"
    NOTIFICATION = "notification"
    RECONNECT = "session_reconnect"
    REVOCATION = "revocation"


@dataclass(frozen=True)
class SocketMessage:
    """One message of an EventSub WebSocket, its JSON checked as strictly as a webhook's."""

    message_id: str
    message_type: SocketMessageType
    timestamp: str
    payload: dict[str, Any]

    @property
    def session(self) -> dict[str, Any]:
        """`payload.session` of a welcome or reconnect message ({} when absent)."""
        session = self.payload.get("session")
        return session if isinstance(session, dict) else {}

    def to_message(self) -> Message:
        """A notification or revocation as the webhook path has it (RejectedMessage if odd)."""
        kind = (
            MessageType.NOTIFICATION
            if self.message_type is SocketMessageType.NOTIFICATION
            else MessageType.REVOCATION
        )
        try:
            sent_at = parse_timestamp(self.timestamp)
        except ValueError:
            raise RejectedMessage(400, "malformed timestamp") from None
        # Twitch wants no challenge over a WebSocket, so a payload's own is ignored.
        payload = {k: v for k, v in self.payload.items() if k != "challenge"}
        return _message(self.message_id, kind, self.timestamp, sent_at, payload)


def parse_socket_message(text: str | bytes) -> SocketMessage:
    """Parse one WebSocket frame; RejectedMessage(400) for anything that is not a message."""
    body = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if len(body) > MAX_BODY_BYTES:
        raise RejectedMessage(413, "message larger than 1 MiB")
    document = _decode(body)
    metadata = document.get("metadata") if isinstance(document, dict) else None
    if not isinstance(metadata, dict):
        raise RejectedMessage(400, "message without metadata")
    message_id = metadata.get("message_id")
    timestamp = metadata.get("message_timestamp")
    if not isinstance(message_id, str) or not message_id or not isinstance(timestamp, str):
        raise RejectedMessage(400, "message without an id or timestamp")
    try:
        message_type = SocketMessageType(str(metadata.get("message_type")))
    except ValueError:
        raise RejectedMessage(400, "unknown message type") from None
    payload = document.get("payload")
    return SocketMessage(
        message_id=message_id,
        message_type=message_type,
        timestamp=timestamp,
        payload=payload if isinstance(payload, dict) else {},
    )
