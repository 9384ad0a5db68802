"""A streamer as viewers see it: who they are, what they share with SEV, their latest events.

Shared by the socket's `watch` ack and `GET /api/streamers/{login}/events`, which return the same
shape.
"""

from __future__ import annotations

import re
from typing import Any

from sev.events import CATALOGUE, Event
from sev.store import MAX_CATCH_UP, Broadcaster, Store, SubscriptionRecord

LOGIN = re.compile(r"^[a-z0-9_]{1,25}$")
PAGE_SIZE = 10


def normalize_login(raw: str) -> str | None:
    """A Twitch login from user input (trimmed, lower-cased), or None when it cannot be one."""
    login = raw.strip().lower()
    return login if LOGIN.match(login) else None


def describe(broadcaster: Broadcaster, subscriptions: list[SubscriptionRecord]) -> dict[str, Any]:
    """The streamer object of the ack and the API: identity plus which event kinds are live."""
    status = {(s.type, tuple(sorted(s.condition))): s.status for s in subscriptions}
    granted = set(broadcaster.granted_scopes)
    kinds = []
    for entry in CATALOGUE:
        key = (entry.type, tuple(sorted(entry.condition(broadcaster.id))))
        kinds.append(
            {
                "type": entry.type,
                "label": entry.label,
                "connected_only": entry.scope is not None,
                "available": entry.scope is None or entry.scope in granted,
                "status": status.get(key),
            }
        )
    return {
        "id": broadcaster.id,
        "login": broadcaster.login,
        "name": broadcaster.display_name,
        "profile_image_url": broadcaster.profile_image_url,
        "connected": any(entry.scope in granted for entry in CATALOGUE if entry.scope),
        "kinds": kinds,
    }


async def read_events(
    store: Store, broadcaster: Broadcaster, *, after: int | None = None, limit: int = PAGE_SIZE
) -> dict[str, Any]:
    """`{"streamer", "events"[, "gap"]}`: the newest `limit`, or every event after `after`."""
    subscriptions = await store.list_subscriptions(broadcaster.id)
    body: dict[str, Any] = {"streamer": describe(broadcaster, subscriptions)}
    events: list[Event]
    if after is None:
        events = await store.latest_events(broadcaster.id, limit)
    else:
        missed = await store.events_after(broadcaster.id, after, MAX_CATCH_UP + 1)
        if len(missed) > MAX_CATCH_UP:
            events = await store.latest_events(broadcaster.id, limit)
            body["gap"] = True
        else:
            events = missed[::-1]
    body["events"] = [event.model_dump(mode="json") for event in events]
    return body
