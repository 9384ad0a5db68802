"""From one verified EventSub notification to SEV's Event JSON (docs/ARCHITECTURE.md): who the
broadcaster and the actor are, when it happened, and its summary line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sev.clock import normalize_timestamp
from sev.events.display import display_of
from sev.events.model import Event, Person
from sev.events.payload import text


def _person(data: Mapping[str, Any], prefix: str) -> Person | None:
    user_id = data.get(f"{prefix}_id")
    if not isinstance(user_id, str) or not user_id:
        return None
    login = data.get(f"{prefix}_login") or ""
    name = data.get(f"{prefix}_name") or login
    return Person(id=user_id, login=str(login), name=str(name))


def _actor(event_type: str, data: Mapping[str, Any], broadcaster_id: str) -> Person | None:
    if data.get("is_anonymous") is True:
        # Anonymous cheers and gifts: whatever the user fields say, the giver stays unnamed.
        return None
    if event_type == "channel.raid":
        side = "from" if data.get("to_broadcaster_user_id") == broadcaster_id else "to"
        return _person(data, f"{side}_broadcaster_user")
    for prefix in display_of(event_type).actor:
        person = _person(data, prefix)
        if person:
            return person
    return None


def _broadcaster(data: Mapping[str, Any], broadcaster_id: str, known: Person | None) -> Person:
    # Charity campaigns name the channel `broadcaster_id` (no `_user`), the rest
    # `broadcaster_user_id`.
    prefixes = ("broadcaster_user", "broadcaster", "to_broadcaster_user", "from_broadcaster_user")
    for prefix in (*prefixes, "user"):
        person = _person(data, prefix)
        if person and person.id == broadcaster_id:
            return person
    return known or Person(id=broadcaster_id, login="", name=broadcaster_id)


def summarize(
    event_type: str, data: Mapping[str, Any], broadcaster: Person, actor: Person | None
) -> str:
    """The one line the page shows for an event; generic for types SEV does not know."""
    summary = display_of(event_type).summary
    if summary is None:
        return f"{event_type} event" + (f" by {actor.name}" if actor else "")
    try:
        return text(summary(data, broadcaster, actor), 300)
    except (TypeError, ValueError, AttributeError, OverflowError):
        # Twitch's payload was not the documented shape: show the event rather than lose it.
        return f"{event_type} event"


def build_event(
    *,
    message_id: str,
    event_type: str,
    version: str,
    broadcaster_id: str,
    data: Mapping[str, Any],
    message_timestamp: str,
    received_at: str,
    known_broadcaster: Person | None = None,
) -> Event:
    """Turn a verified notification into an Event (seq 0 until the store numbers it)."""
    broadcaster = _broadcaster(data, broadcaster_id, known_broadcaster)
    actor = _actor(event_type, data, broadcaster_id)
    occurred_at = next(
        (str(data[f]) for f in display_of(event_type).time_fields if isinstance(data.get(f), str)),
        message_timestamp,
    )
    occurred_at = normalize_timestamp(occurred_at)
    return Event(
        id=message_id,
        seq=0,
        type=event_type,
        version=version,
        broadcaster=broadcaster,
        actor=actor,
        occurred_at=occurred_at,
        received_at=received_at,
        summary=summarize(event_type, data, broadcaster, actor),
        data=dict(data),
    )
