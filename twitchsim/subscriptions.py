"""EventSub subscriptions: Twitch's creation rules, listing with cursors, cost and revocation."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .catalog import CATALOG, TypeSpec
from .directory import Directory
from .timestamps import rfc3339_nano
from .tokens import AccessToken, SimGrant, TokenStore

ACTIVE_STATUSES = frozenset({"enabled", "webhook_callback_verification_pending"})
# The webhook statuses Twitch documents for a subscription it revoked.
REVOCATION_STATUSES = frozenset(
    {
        "user_removed",
        "authorization_revoked",
        "moderator_removed",
        "version_removed",
        "notification_failures_exceeded",
        "chat_user_banned",
        "beta_maintenance",
    }
)
MAX_TOTAL_COST = 10_000
MAX_SAME_TYPE_AND_CONDITION = 3
# WebSocket limits (Twitch's Managing Subscriptions, "Subscription limits", and Handling
# WebSocket Events): a budget of 10 per client id and user id over enabled subscriptions, 300
# enabled subscriptions per connection, 3 connections with enabled subscriptions per client id
# and user id. Disabled subscriptions count against none of them.
WS_MAX_TOTAL_COST = 10
WS_MAX_PER_CONNECTION = 300
WS_MAX_CONNECTIONS = 3
# user.authorization.grant and .revoke: "webhooks only" (EventSub Subscription Types).
WEBHOOK_ONLY_TYPES = frozenset({"user.authorization.grant", "user.authorization.revoke"})
FILTERS = ("status", "type", "user_id", "subscription_id")
# Twitch's words (the Create EventSub Subscription reference's 409, the 429 Twitch answers).
ALREADY_EXISTS = (
    "A subscription already exists for the specified event type and condition combination"
)
TOO_MANY_SAME = "maximum subscriptions with type and condition exceeded"
# Not documented: Twitch's reference lists no answer for a spent budget. A 429 that says so.
COST_EXCEEDED = "subscription cost exceeds max_total_cost"
# What Twitch answers (not in its reference; the words its API returns, as apps' logs and code
# quote them): a websocket transport with an app token (400), a fourth connection of one user
# (429), a session that is not connected (400).
WRONG_AUTH_FOR_TRANSPORT = "invalid transport and auth combination"
TOO_MANY_WS_CONNECTIONS = "number of websocket transports limit exceeded"
UNKNOWN_SESSION = "websocket transport session does not exist or has already disconnected"
# Guessed, not found in Twitch's docs or twitch-cli (whose mock answers 400 "You may only create
# 100 subscriptions within a single WebSocket connection"): the 300 limit refused as a 429.
TOO_MANY_ON_CONNECTION = "maximum subscriptions per websocket transport exceeded"


class HelixError(Exception):
    """A refused Helix request: the status and message Twitch answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class SimSubscription:
    """One subscription as the simulated Twitch keeps it, webhook or WebSocket."""

    id: str
    seq: int
    client_id: str
    type: str
    version: str
    condition: dict[str, str]
    callback: str
    secret: str = field(repr=False)
    status: str
    created_at: str
    cost: int
    # WebSocket subscriptions (method "websocket"; no callback or secret): the session that
    # carries them, the user whose token made them, and when that connection began and ended.
    method: str = "webhook"
    session_id: str = ""
    token_user_id: str = ""
    connected_at: str = ""
    disconnected_at: str = ""

    @property
    def active(self) -> bool:
        """Enabled or still waiting for its challenge answer."""
        return self.status in ACTIVE_STATUSES

    @property
    def websocket(self) -> bool:
        """Delivered over an EventSub WebSocket session rather than to a callback."""
        return self.method == "websocket"

    def public(self, status: str | None = None) -> dict[str, Any]:
        """The subscription object as Twitch shows it (never the secret)."""
        transport: dict[str, Any] = {"method": "webhook", "callback": self.callback}
        if self.websocket:
            # Get EventSub Subscriptions: session_id, connected_at and, once the connection
            # is lost, disconnected_at ("WebSocket only").
            transport = {
                "method": "websocket",
                "session_id": self.session_id,
                "connected_at": self.connected_at,
            }
            if self.disconnected_at:
                transport["disconnected_at"] = self.disconnected_at
        return {
            "id": self.id,
            "status": status or self.status,
            "type": self.type,
            "version": self.version,
            "condition": dict(self.condition),
            "created_at": self.created_at,
            "transport": transport,
            "cost": self.cost,
        }

    def user_ids(self) -> set[str]:
        """Every user id named in the condition."""
        return {v for k, v in self.condition.items() if v and k not in ("client_id", "reward_id")}

    def same_as(self, other: SimSubscription) -> bool:
        """Same client, type, version and condition: what Twitch's limit of 3 counts."""
        return (self.client_id, self.type, self.version, self.condition) == (
            other.client_id,
            other.type,
            other.version,
            other.condition,
        )


def _cursor(seq: int) -> str:
    raw = json.dumps({"s": seq}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        seq = json.loads(raw)["s"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise HelixError(400, "invalid cursor") from exc
    if not isinstance(seq, int):
        raise HelixError(400, "invalid cursor")
    return seq


def _valid_callback(callback: object) -> bool:
    # Real Twitch wants https on port 443; the simulator runs locally, so http and any port pass.
    if not isinstance(callback, str) or len(callback) > 2048:
        return False
    try:
        parts = urlsplit(callback)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _valid_secret(secret: object) -> bool:
    return (
        isinstance(secret, str)
        and 10 <= len(secret) <= 100
        and all(32 <= ord(ch) < 127 for ch in secret)
    )


class SimSubscriptions(Mapping[str, SimSubscription]):
    """All clients' subscriptions by id, in creation order, with Twitch's rules."""

    def __init__(self, directory: Directory, tokens: TokenStore) -> None:
        self._directory = directory
        self._tokens = tokens
        self._items: dict[str, SimSubscription] = {}
        self._seq = 0
        self.max_total_cost = MAX_TOTAL_COST
        self.ws_max_total_cost = WS_MAX_TOTAL_COST
        self.ws_max_per_connection = WS_MAX_PER_CONNECTION
        self.ws_max_connections = WS_MAX_CONNECTIONS
        # The callback URLs allowed (SimulatorConfig.callbacks; empty: any).
        self.callbacks: tuple[str, ...] = ()
        # Type and version pairs Twitch no longer offers (revoked with version_removed).
        self.removed_versions: set[tuple[str, str]] = set()

    def __getitem__(self, subscription_id: str) -> SimSubscription:
        return self._items[subscription_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def seq(self) -> int:
        """The creation number of the newest subscription (cursors are built on it)."""
        return self._seq

    def restore(
        self,
        items: list[SimSubscription],
        *,
        seq: int,
        max_total_cost: int,
        removed_versions: set[tuple[str, str]],
    ) -> None:
        """Take over a saved state: ids, statuses, secrets, the budget and retired versions."""
        self._items = {s.id: s for s in sorted(items, key=lambda s: s.seq)}
        now = rfc3339_nano()
        for sub in self._items.values():
            # A WebSocket connection does not survive a restart: what it carried is disabled,
            # as when its client goes away.
            if sub.websocket and sub.status == "enabled":
                sub.status = "websocket_disconnected"
                sub.disconnected_at = now
        self._seq = max([seq, *(s.seq for s in items)])
        self.max_total_cost = max_total_cost
        self.removed_versions = set(removed_versions)

    def create(self, client_id: str, body: object) -> SimSubscription:
        """Validate a create request as Twitch does and store the new pending subscription."""
        spec, condition, transport = self._parse(body)
        if transport.get("method") != "webhook":
            raise HelixError(400, "transport.method must be webhook or websocket")
        callback, secret = self._webhook_transport(transport)
        if (spec.type, spec.version) in self.removed_versions:
            raise HelixError(410, "This subscription type is not available.")
        self._check_condition(client_id, spec, condition)
        self._check_authorization(client_id, spec, condition)
        # Every condition field of the type, the unused ones as "", as Twitch answers them.
        full = {key: condition.get(key, "") for key in spec.condition}
        self._seq += 1
        sub = SimSubscription(
            id=str(uuid.uuid4()),
            seq=self._seq,
            client_id=client_id,
            type=spec.type,
            version=spec.version,
            condition=full,
            callback=callback,
            secret=secret,
            status="webhook_callback_verification_pending",
            created_at=rfc3339_nano(),
            cost=self._cost(client_id, spec, condition),
        )
        # Whatever their status: Twitch keeps a failed or revoked subscription (and counts it)
        # until it is deleted.
        same = [s for s in self._items.values() if not s.websocket and s.same_as(sub)]
        if any(s.callback == callback for s in same):
            raise HelixError(409, ALREADY_EXISTS)
        if len(same) >= MAX_SAME_TYPE_AND_CONDITION:
            raise HelixError(429, TOO_MANY_SAME)
        if sub.cost and self.total_cost(client_id) + sub.cost > self.max_total_cost:
            raise HelixError(429, COST_EXCEEDED)
        self._items[sub.id] = sub
        return sub

    def create_websocket(
        self, token: AccessToken, body: object, connected_at: Callable[[str], str | None]
    ) -> SimSubscription:
        """Validate a WebSocket create request (user token) as Twitch does and store the new
        subscription, enabled at once; `connected_at` names an open session's start, or None."""
        spec, condition, transport = self._parse(body)
        if transport.get("method") != "websocket":
            raise HelixError(400, "transport.method must be webhook or websocket")
        client_id, user_id = token.client_id, token.user_id
        if user_id is None:
            raise HelixError(400, WRONG_AUTH_FOR_TRANSPORT)
        if spec.type in WEBHOOK_ONLY_TYPES:
            raise HelixError(400, f"{spec.type} is only available over webhooks")
        session_id = transport.get("session_id")
        started = connected_at(session_id) if isinstance(session_id, str) else None
        if not isinstance(session_id, str) or started is None:
            raise HelixError(400, UNKNOWN_SESSION)
        if (spec.type, spec.version) in self.removed_versions:
            raise HelixError(410, "This subscription type is not available.")
        self._check_condition(client_id, spec, condition)
        self._check_user_authorization(token, spec, condition)
        full = {key: condition.get(key, "") for key in spec.condition}
        sub = SimSubscription(
            id=str(uuid.uuid4()),
            seq=self._seq + 1,
            client_id=client_id,
            type=spec.type,
            version=spec.version,
            condition=full,
            callback="",
            secret="",
            status="enabled",
            created_at=rfc3339_nano(),
            cost=self._cost(client_id, spec, condition),
            method="websocket",
            session_id=session_id,
            token_user_id=user_id,
            connected_at=started,
        )
        self._check_websocket_limits(sub)
        self._seq += 1
        self._items[sub.id] = sub
        return sub

    def _check_websocket_limits(self, sub: SimSubscription) -> None:
        enabled = [s for s in self._items.values() if s.websocket and s.status == "enabled"]
        on_session = [s for s in enabled if s.session_id == sub.session_id]
        if any(s.same_as(sub) for s in on_session):
            raise HelixError(409, ALREADY_EXISTS)
        if len(on_session) >= self.ws_max_per_connection:
            raise HelixError(429, TOO_MANY_ON_CONNECTION)
        mine = [
            s
            for s in enabled
            if s.client_id == sub.client_id and s.token_user_id == sub.token_user_id
        ]
        sessions = {s.session_id for s in mine}
        if sub.session_id not in sessions and len(sessions) >= self.ws_max_connections:
            raise HelixError(429, TOO_MANY_WS_CONNECTIONS)
        if sub.cost and sum(s.cost for s in mine) + sub.cost > self.ws_max_total_cost:
            raise HelixError(429, COST_EXCEEDED)

    def websocket_totals(self, client_id: str, user_id: str) -> dict[str, int]:
        """`total`, `total_cost` and `max_total_cost` of one user's WebSocket subscriptions
        (the cost counts enabled ones only: disabled ones count against no limit)."""
        mine = self._owned(client_id, user_id)
        return {
            "total": len(mine),
            "total_cost": sum(s.cost for s in mine if s.status == "enabled"),
            "max_total_cost": self.ws_max_total_cost,
        }

    def _owned(self, client_id: str, user_id: str | None) -> list[SimSubscription]:
        """The app's webhook subscriptions (user None) or one user's WebSocket ones."""
        if user_id is None:
            return [s for s in self._items.values() if s.client_id == client_id and not s.websocket]
        return [
            s
            for s in self._items.values()
            if s.client_id == client_id and s.websocket and s.token_user_id == user_id
        ]

    def page(
        self,
        client_id: str,
        filters: dict[str, str],
        after: str | None,
        first: int,
        *,
        user_id: str | None = None,
    ) -> tuple[list[SimSubscription], str | None]:
        """One page of the client's subscriptions matching at most one filter: its webhook
        ones (app token), or with `user_id` that user's WebSocket ones (user token)."""
        start = _after(after) if after else 0
        (name, value), *_ = [*filters.items(), ("", "")]
        matching = [
            s
            for s in self._owned(client_id, user_id)
            if s.seq > start
            and (
                not name
                or (name == "status" and s.status == value)
                or (name == "type" and s.type == value)
                or (name == "user_id" and value in s.user_ids())
                or (name == "subscription_id" and s.id == value)
            )
        ]
        page = matching[:first]
        cursor = _cursor(page[-1].seq) if len(matching) > first else None
        return page, cursor

    def delete(
        self, client_id: str, subscription_id: str, *, user_id: str | None = None
    ) -> SimSubscription | None:
        """Remove one of the client's webhook subscriptions (or with `user_id`, one of that
        user's WebSocket ones); None when there is no such subscription."""
        sub = self._items.get(subscription_id)
        if sub is None or sub not in self._owned(client_id, user_id):
            return None
        return self._items.pop(subscription_id)

    def count(self, client_id: str) -> int:
        """How many webhook subscriptions the client has, whatever their status."""
        return len(self._owned(client_id, None))

    def total_cost(self, client_id: str) -> int:
        """ "The sum of all of your subscription costs" (Twitch's words): whatever their status."""
        return sum(s.cost for s in self._owned(client_id, None))

    def matching(
        self,
        *,
        subscription_id: str | None = None,
        type: str | None = None,
        user_id: str | None = None,
    ) -> list[SimSubscription]:
        """Active subscriptions that match every filter given."""
        return [
            s
            for s in self._items.values()
            if s.active
            and (subscription_id is None or s.id == subscription_id)
            and (type is None or s.type == type)
            and (user_id is None or user_id in s.user_ids())
        ]

    def revoke_unauthorized(self, grant: SimGrant) -> list[SimSubscription]:
        """After a grant died: mark scoped subscriptions no grant covers any more as revoked."""
        still = self._tokens.granted_scopes(grant.client_id, grant.user_id)
        authorized = self._tokens.has_authorized(grant.client_id, grant.user_id)
        revoked = []
        for sub in self._items.values():
            spec = CATALOG[sub.type]
            scoped = (
                spec.scope is not None
                and sub.condition.get(spec.scope_user) == grant.user_id
                and not spec.scopes & still
            )
            # Guessed: a WebSocket subscription lives on its creator's user token, so it goes
            # when that user's authorization of the client ends, whatever its type.
            creator_gone = sub.websocket and sub.token_user_id == grant.user_id and not authorized
            if sub.client_id == grant.client_id and sub.active and (scoped or creator_gone):
                sub.status = "authorization_revoked"
                revoked.append(sub)
        return revoked

    def _parse(self, body: object) -> tuple[TypeSpec, dict[str, str], dict[str, Any]]:
        if not isinstance(body, dict):
            raise HelixError(400, "request body must be a JSON object")
        type_, version = body.get("type"), body.get("version")
        condition, transport = body.get("condition"), body.get("transport")
        if not isinstance(type_, str) or not isinstance(version, str):
            raise HelixError(400, "type and version are required strings")
        spec = CATALOG.get(type_)
        if spec is None or spec.version != version:
            raise HelixError(400, f"unsupported subscription type and version: {type_} v{version}")
        if not isinstance(condition, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in condition.items()
        ):
            raise HelixError(400, "condition must be an object of strings")
        if not isinstance(transport, dict) or transport.get("method") not in (
            "webhook",
            "websocket",
        ):
            raise HelixError(400, "transport.method must be webhook or websocket")
        # Empty values count as absent (channel.raid is often sent with the other side empty).
        given = {k: v for k, v in condition.items() if v}
        return spec, given, transport

    def _webhook_transport(self, transport: dict[str, Any]) -> tuple[str, str]:
        callback = transport.get("callback")
        if not _valid_callback(callback) or (self.callbacks and callback not in self.callbacks):
            raise HelixError(400, "The URL in the transport's callback field is not valid.")
        if not _valid_secret(transport.get("secret")):
            raise HelixError(400, "transport.secret must be 10 to 100 ASCII characters")
        return str(callback), str(transport["secret"])

    def _check_condition(self, client_id: str, spec: TypeSpec, condition: dict[str, str]) -> None:
        unknown = set(condition) - set(spec.condition)
        required = [k for k in spec.condition if k not in spec.optional]
        given = [k for k in required if condition.get(k)]
        if unknown:
            raise HelixError(400, f"invalid condition field: {', '.join(sorted(unknown))}")
        if spec.one_of and len(given) != 1:
            raise HelixError(400, f"condition needs exactly one of {', '.join(spec.condition)}")
        if not spec.one_of and len(given) != len(required):
            raise HelixError(400, "The condition object is missing one or more required fields.")
        if spec.app:
            if condition["client_id"] != client_id:
                raise HelixError(400, "condition.client_id must match the access token's client")
            return
        for key in given:
            if self._directory.by_id(condition[key]) is None:
                raise HelixError(400, "The user specified in the condition object does not exist.")

    def _check_authorization(
        self, client_id: str, spec: TypeSpec, condition: dict[str, str]
    ) -> None:
        if spec.scope is None:
            return
        user_id = condition[spec.scope_user]
        # The directory has no moderator lists: a channel's only moderator is its broadcaster.
        if condition.get("moderator_user_id", user_id) != condition.get("broadcaster_user_id"):
            raise HelixError(403, "moderator_user_id is not a moderator of the broadcaster")
        if not spec.scopes & self._tokens.granted_scopes(client_id, user_id):
            raise HelixError(403, "subscription missing proper authorization")

    def _check_user_authorization(
        self, token: AccessToken, spec: TypeSpec, condition: dict[str, str]
    ) -> None:
        """A scoped type over WebSocket: the token is the user the scope belongs to (the
        broadcaster, or the moderator named), and carries the scope."""
        if spec.scope is None:
            return
        user_id = condition[spec.scope_user]
        # As for webhooks: a channel's only moderator is its broadcaster.
        if condition.get("moderator_user_id", user_id) != condition.get("broadcaster_user_id"):
            raise HelixError(403, "moderator_user_id is not a moderator of the broadcaster")
        if token.user_id != user_id or not spec.scopes & set(token.scopes):
            raise HelixError(403, "subscription missing proper authorization")

    def _cost(self, client_id: str, spec: TypeSpec, condition: dict[str, str]) -> int:
        # "There is no cost for subscriptions that require a user to authorize your
        # application", nor for the app's own (the documented user.authorization.revoke shows 0).
        if spec.scope is not None or spec.app:
            return 0
        user_id = next(v for v in condition.values() if v)
        return 0 if self._tokens.has_authorized(client_id, user_id) else 1
