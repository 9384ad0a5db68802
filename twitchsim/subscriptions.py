"""EventSub subscriptions: Twitch's creation rules, listing with cursors, cost and revocation."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .catalog import CATALOG, TypeSpec
from .directory import Directory
from .timestamps import rfc3339_nano
from .tokens import SimGrant, TokenStore

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
FILTERS = ("status", "type", "user_id", "subscription_id")
# Twitch's words (the Create EventSub Subscription reference's 409, the 429 Twitch answers).
ALREADY_EXISTS = (
    "A subscription already exists for the specified event type and condition combination"
)
TOO_MANY_SAME = "maximum subscriptions with type and condition exceeded"
# Not documented: Twitch's reference lists no answer for a spent budget. A 429 that says so.
COST_EXCEEDED = "subscription cost exceeds max_total_cost"


class HelixError(Exception):
    """A refused Helix request: the status and message Twitch answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class SimSubscription:
    """One webhook subscription as the simulated Twitch keeps it."""

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

    @property
    def active(self) -> bool:
        """Enabled or still waiting for its challenge answer."""
        return self.status in ACTIVE_STATUSES

    def public(self, status: str | None = None) -> dict[str, Any]:
        """The subscription object as Twitch shows it (never the secret)."""
        return {
            "id": self.id,
            "status": status or self.status,
            "type": self.type,
            "version": self.version,
            "condition": dict(self.condition),
            "created_at": self.created_at,
            "transport": {"method": "webhook", "callback": self.callback},
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
        self._seq = max([seq, *(s.seq for s in items)])
        self.max_total_cost = max_total_cost
        self.removed_versions = set(removed_versions)

    def create(self, client_id: str, body: object) -> SimSubscription:
        """Validate a create request as Twitch does and store the new pending subscription."""
        spec, condition, callback, secret = self._parse(body)
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
        same = [s for s in self._items.values() if s.same_as(sub)]
        if any(s.callback == callback for s in same):
            raise HelixError(409, ALREADY_EXISTS)
        if len(same) >= MAX_SAME_TYPE_AND_CONDITION:
            raise HelixError(429, TOO_MANY_SAME)
        if sub.cost and self.total_cost(client_id) + sub.cost > self.max_total_cost:
            raise HelixError(429, COST_EXCEEDED)
        self._items[sub.id] = sub
        return sub

    def page(
        self, client_id: str, filters: dict[str, str], after: str | None, first: int
    ) -> tuple[list[SimSubscription], str | None]:
        """One page of the client's subscriptions matching at most one filter."""
        start = _after(after) if after else 0
        (name, value), *_ = [*filters.items(), ("", "")]
        matching = [
            s
            for s in self._items.values()
            if s.client_id == client_id
            and s.seq > start
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

    def delete(self, client_id: str, subscription_id: str) -> SimSubscription | None:
        """Remove one of the client's subscriptions; None when it has no such subscription."""
        sub = self._items.get(subscription_id)
        if sub is None or sub.client_id != client_id:
            return None
        return self._items.pop(subscription_id)

    def count(self, client_id: str) -> int:
        """How many subscriptions the client has, whatever their status."""
        return sum(1 for s in self._items.values() if s.client_id == client_id)

    def total_cost(self, client_id: str) -> int:
        """ "The sum of all of your subscription costs" (Twitch's words): whatever their status."""
        return sum(s.cost for s in self._items.values() if s.client_id == client_id)

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
        revoked = []
        for sub in self._items.values():
            spec = CATALOG[sub.type]
            if (
                sub.client_id == grant.client_id
                and sub.active
                and spec.scope is not None
                and sub.condition.get(spec.scope_user) == grant.user_id
                and not spec.scopes & still
            ):
                sub.status = "authorization_revoked"
                revoked.append(sub)
        return revoked

    def _parse(self, body: object) -> tuple[TypeSpec, dict[str, str], str, str]:
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
        if not isinstance(transport, dict) or transport.get("method") != "webhook":
            raise HelixError(400, "transport.method must be webhook on the simulated Twitch")
        callback = transport.get("callback")
        if not _valid_callback(callback) or (self.callbacks and callback not in self.callbacks):
            raise HelixError(400, "The URL in the transport's callback field is not valid.")
        if not _valid_secret(transport.get("secret")):
            raise HelixError(400, "transport.secret must be 10 to 100 ASCII characters")
        # Empty values count as absent (channel.raid is often sent with the other side empty).
        given = {k: v for k, v in condition.items() if v}
        return spec, given, transport["callback"], transport["secret"]

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

    def _cost(self, client_id: str, spec: TypeSpec, condition: dict[str, str]) -> int:
        # "There is no cost for subscriptions that require a user to authorize your
        # application", nor for the app's own (the documented user.authorization.revoke shows 0).
        if spec.scope is not None or spec.app:
            return 0
        user_id = next(v for v in condition.values() if v)
        return 0 if self._tokens.has_authorized(client_id, user_id) else 1
