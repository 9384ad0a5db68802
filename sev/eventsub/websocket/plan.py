"""Who carries what: which user's EventSub WebSocket carries which channel's subscriptions, and
the refusals of this transport (pure functions of the store's state and the time).

Subscriptions over a WebSocket need a *user* access token, and the connection belongs to that
user: SEV opens one connection per user whose token carries subscriptions (a *carrier*). A
streamer who logged in to SEV or connected their channel carries their own channel (every type
their grant allows, at no cost). A channel whose streamer never authorized SEV is carried by one
logged-in viewer who favours it, for the public types only; those cost 1 each against that
viewer's `max_total_cost` of 10, and a viewer favours one channel at a time, so one viewer's six
public types always fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sev.events import EventType, wanted_types
from sev.store import Broadcaster, Refusal, User
from sev.store.records import RefusalReason

# Nobody logged in favours the channel: it waits for a carrier, not for a timer.
NO_CARRIER = RefusalReason.SOCKET_NO_LOGIN
_SOCKET_RETRY = timedelta(minutes=10)


@dataclass(frozen=True)
class Wanted:
    """One subscription a carrier should hold: a channel's catalogue entry."""

    broadcaster_id: str
    entry: EventType

    @property
    def key(self) -> tuple[str, str]:
        return (self.broadcaster_id, self.entry.key)


@dataclass
class Plan:
    """Which user's connection carries which subscriptions, and what nobody can carry."""

    carriers: dict[str, list[Wanted]] = field(default_factory=dict)
    # broadcaster id -> catalogue keys nobody can carry (no logged-in favourer): NO_CARRIER.
    uncarried: dict[str, list[str]] = field(default_factory=dict)


def token_of(user: User | None) -> str | None:
    """The token a carrier subscribes with: the channel grant's (it has the scopes of the
    connected types, and works for the public ones too), else the login token."""
    if user is None:
        return None
    return user.channel_access_token or user.access_token


def _held(refusal: Refusal | None, entry: EventType, now: datetime) -> bool:
    if refusal is None or refusal.reason == NO_CARRIER:
        return False
    if refusal.reason == RefusalReason.VERSION_REMOVED:
        return refusal.version == entry.version
    return refusal.retry_at is None or now < refusal.retry_at


def plan(
    broadcasters: Sequence[Broadcaster],
    users: Sequence[User],
    now: datetime,
    grace: timedelta,
) -> Plan:
    """Assign every wanted channel to one carrier (a pure function of the store's state)."""
    by_id = {user.id: user for user in users}
    favourers: dict[str, list[User]] = {}
    for user in sorted(users, key=lambda u: u.id):
        if user.favorite_id and user.access_token:
            favourers.setdefault(user.favorite_id, []).append(user)
    result = Plan()
    for broadcaster in sorted(broadcasters, key=lambda b: b.id):
        if broadcaster.removed_at is not None:
            continue
        own = by_id.get(broadcaster.id)
        fans = favourers.get(broadcaster.id, [])
        if broadcaster.unwanted_since is not None and (
            not fans and (token_of(own) is None or now - broadcaster.unwanted_since >= grace)
        ):
            continue
        if token_of(own) is not None and own is not None:
            # Their own channel grant allows the connected types; a login token the public ones.
            scopes = set(broadcaster.granted_scopes) if own.channel_access_token else set()
            carrier, entries = own.id, wanted_types(scopes)
        elif fans:
            carrier, entries = fans[0].id, wanted_types(set())
        else:
            result.uncarried[broadcaster.id] = [e.key for e in wanted_types(set())]
            continue
        chosen = [
            Wanted(broadcaster.id, e)
            for e in entries
            if not _held(broadcaster.refusal(e.key), e, now)
        ]
        result.carriers.setdefault(carrier, []).extend(chosen)
    return result


def refusal(entry: EventType, reason: RefusalReason, now: datetime) -> Refusal:
    """A refusal of this transport (retried after a while, or as soon as the plan changes)."""
    retry = None if reason == NO_CARRIER else now + _SOCKET_RETRY
    return Refusal(key=entry.key, version=entry.version, reason=reason, at=now, retry_at=retry)
