"""The Store protocol: everything SEV persists, behind one interface with two backends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sev.events import Event
from sev.store.records import Broadcaster, EventSubState, SubscriptionRecord, User

# A reconnecting client that missed more than this gets the newest page and `gap: true`.
MAX_CATCH_UP = 100
# The largest seq a client may name as `after`: what both stores hold in a 64-bit integer.
MAX_SEQ = 2**63 - 1
# How long a message id that is not an event (a revocation, say) is remembered: Twitch refuses
# to send a message older than 10 minutes, so a copy can only come within that window.
MESSAGE_MEMORY_S = 3600.0


class StoreUnavailable(Exception):
    """The database cannot be reached or failed; callers answer 503."""


@dataclass(frozen=True)
class Inserted:
    """The outcome of storing one event: the stored copy, and whether it was new."""

    event: Event
    created: bool


class Store(Protocol):
    """Persistence for users, broadcasters, subscriptions, events and leases.

    Events are unique on their Twitch message id; each new event gets the next `seq` of its
    broadcaster, and an event is never visible before every lower `seq` of that broadcaster.
    Every method raises StoreUnavailable when the database is down.
    """

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...

    async def save_user(self, user: User) -> None: ...
    async def get_user(self, user_id: str) -> User | None: ...
    async def set_favourite(self, user_id: str, broadcaster_id: str | None) -> None:
        """Change only the favourite (a concurrent token refresh must not be overwritten)."""
        ...

    async def users_with_tokens(self) -> list[User]: ...
    async def favourite_count(self, broadcaster_id: str) -> int: ...

    async def save_broadcaster(self, broadcaster: Broadcaster) -> None: ...
    async def get_broadcaster(self, broadcaster_id: str) -> Broadcaster | None: ...
    async def get_broadcaster_by_login(self, login: str) -> Broadcaster | None: ...
    async def list_broadcasters(self) -> list[Broadcaster]: ...

    async def save_subscription(self, subscription: SubscriptionRecord) -> None: ...
    async def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None: ...
    async def delete_subscription(self, subscription_id: str) -> None: ...
    async def list_subscriptions(
        self, broadcaster_id: str | None = None
    ) -> list[SubscriptionRecord]: ...

    async def get_eventsub_state(self) -> EventSubState:
        """The app-wide EventSub state (empty before the first save)."""
        ...

    async def save_eventsub_state(self, state: EventSubState) -> None: ...

    async def insert_events(self, events: Sequence[Event]) -> list[Inserted]:
        """Store events in order (one write for the batch); duplicates come back created=False."""
        ...

    async def prune_events(self, received_before: datetime, limit: int) -> int:
        """Delete at most `limit` events received before the moment; return how many went.

        Numbering continues above deleted seqs, even when every event of a broadcaster went.
        """
        ...

    async def latest_events(self, broadcaster_id: str, limit: int) -> list[Event]:
        """The `limit` newest events of a broadcaster, newest first."""
        ...

    async def events_after(self, broadcaster_id: str, after: int, limit: int) -> list[Event]:
        """Events with seq > after, oldest first, at most `limit`."""
        ...

    async def events_before(self, broadcaster_id: str, before: int, limit: int) -> list[Event]:
        """Events with seq < before, newest first, at most `limit` (paging back in history)."""
        ...

    async def latest_event_of(self, broadcaster_id: str, types: Sequence[str]) -> Event | None:
        """The newest event of a broadcaster whose type is one of `types` (an indexed read)."""
        ...

    async def seen_message(self, message_id: str) -> bool:
        """Whether a message id that is not an event was noted (within MESSAGE_MEMORY_S)."""
        ...

    async def note_message(self, message_id: str, now: datetime) -> None:
        """Remember a handled message id that is not an event (events are unique by id
        already), forgetting those older than MESSAGE_MEMORY_S."""
        ...

    async def try_lease(self, name: str, holder: str, seconds: float, now: datetime) -> bool:
        """Take or renew a named lease: True when `holder` holds it until now + seconds."""
        ...
