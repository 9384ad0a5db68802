"""A streamer as viewers see it: who they are, what they share with SEV, their latest events.

Shared by the socket's `watch` ack and `GET /api/streamers/{login}/events`, which return the same
shape.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from sev.events import CATALOGUE, TWITCH_LOGIN, Event
from sev.store import MAX_CATCH_UP, Broadcaster, Store, SubscriptionRecord
from sev.store.records import RefusalReason
from sev.twitch import TwitchUser

LOGIN = TWITCH_LOGIN
PAGE_SIZE = 10
# Adds the actors' pictures to events as SEV serves them (sev/profiles.py: Profiles.with_faces).
Faces = Callable[[list[Event]], Awaitable[list[Event]]]

# Why a kind of event is not coming, in words a viewer reads on the streamer page.
HELD_BACK: dict[RefusalReason, str] = {
    RefusalReason.COST: (
        "Twitch's limit on subscriptions is reached: SEV has used the whole subscription "
        "budget Twitch gives it. These events start as soon as room frees up."
    ),
    RefusalReason.LIMIT: (
        "Twitch's limit on subscriptions is reached: three subscriptions to these events "
        "already exist for this channel. SEV asks again within the hour."
    ),
    RefusalReason.FORBIDDEN: (
        "Twitch did not allow SEV these events for this channel (the streamer's permission is "
        "missing). SEV asks again within the hour."
    ),
    RefusalReason.VERSION_REMOVED: (
        "Twitch retired the version of these events that SEV asks for; SEV needs an update to "
        "show them again."
    ),
    RefusalReason.BETA_MAINTENANCE: (
        "Twitch paused these events for maintenance; SEV asks again within the hour."
    ),
    RefusalReason.MODERATOR_REMOVED: (
        "Twitch withdrew the moderator access these events need; SEV asks again within the hour."
    ),
    # The WebSocket transport's own (sev/eventsub/websocket/): its limits are per viewer's login.
    RefusalReason.SOCKET_NO_LOGIN: (
        "SEV hears this channel through Twitch's WebSocket with the login of a viewer who "
        "favours it, and nobody who favours it is logged in right now. Events start when one "
        "logs in (or when the streamer logs in to SEV)."
    ),
    RefusalReason.SOCKET_COST: (
        "Twitch's WebSocket limit is reached: a viewer's login may watch only a few event types "
        "of channels that have not authorized SEV (a total cost of 10). These events start when "
        "the streamer logs in to SEV; SEV asks again within minutes."
    ),
    RefusalReason.SOCKET_LIMIT: (
        "Twitch's WebSocket limits are reached (3 connections per login, 300 subscriptions per "
        "connection). SEV asks again within minutes."
    ),
}
# Why Twitch stopped sending a kind (a revocation's status), in the words the page's notice
# ends with ("Twitch stopped sending … : <these words>.").
REVOKED = {
    "authorization_revoked": "the streamer withdrew SEV's access",
    "user_removed": "the Twitch account no longer exists",
    "notification_failures_exceeded": "SEV missed too many deliveries; it will subscribe again",
    "version_removed": "Twitch retired this event version",
    "moderator_removed": "SEV lost the moderator access this needs; it asks again within the hour",
    "beta_maintenance": (
        "Twitch paused these events for maintenance; SEV asks again within the hour"
    ),
    "chat_user_banned": "the account these events need was banned from the chat",
}
REMOVED = "Twitch says this account no longer exists (deleted or suspended), so no events can come."
# The state of each kind in the "what this streamer shares" panel, and how the page says it.
KIND_STATES = {
    "on": "On",
    "pending": "Starting",
    "off": "Needs connect",
    "stopped": "Stopped",
    "held": "Held back",
}
# The stream's own state in the page header (from the newest stored stream.online/offline), and
# the connection's, which is a different thing: whether this page receives events live.
STREAM_STATES = {
    "live": "Live now",
    "offline": "Offline",
    "unknown": "Live status not known yet",
}
CONNECTION_STATES = {
    "connecting": "Connecting…",
    "live": "Updates on",
    "reconnecting": "Reconnecting…",
    "offline": "Updates off",
}
_STATUS_TYPES = ("stream.online", "stream.offline")
_INFO_TYPES = ("channel.update",)
# A subscription Twitch has not confirmed yet (or none yet): the kind is starting.
_PENDING = (None, "webhook_callback_verification_pending")


def normalize_login(raw: str) -> str | None:
    """A Twitch login from user input (trimmed, lower-cased), or None when it cannot be one."""
    login = raw.strip().lower()
    return login if LOGIN.match(login) else None


# What people paste into the favourite box: a login, "@login", or the channel's address with or
# without scheme, "www." or "m.", and anything after the login (a path, a query, a fragment).
_PASTED = re.compile(
    r"^(?:@|(?:https?://)?(?:(?:www|m)\.)?twitch\.tv/)?([^/?#@\s]+)(?:[/?#].*)?$", re.IGNORECASE
)


def login_from_input(raw: str) -> str | None:
    """The login in what a viewer typed or pasted (`@name`, `twitch.tv/name`, the channel's
    https URL, surrounding spaces), lower-cased; None when there is none."""
    match = _PASTED.match(raw.strip())
    return normalize_login(match.group(1)) if match else None


def kind_state(*, available: bool, held: str | None, status: str | None) -> str:
    """One kind's state (a key of KIND_STATES): needs connect, held back, on, starting, stopped."""
    if not available:
        return "off"
    if held:
        return "held"
    if status == "enabled":
        return "on"
    return "pending" if status in _PENDING else "stopped"


def broadcaster_from(user: TwitchUser, existing: Broadcaster | None, **changes: Any) -> Broadcaster:
    """A broadcaster as Helix knows them now, keeping what SEV knows of them (what they granted,
    Twitch's refusals, the grace period); a removal Twitch reported is over, since Helix knows
    the account again. `changes` override any of it."""
    kept = (
        existing.model_dump(include={"granted_scopes", "refusals", "unwanted_since"})
        if existing
        else {}
    )
    return Broadcaster(
        id=user.id,
        login=user.login,
        display_name=user.display_name,
        profile_image_url=user.profile_image_url or "",
        **{**kept, **changes},
    )


def describe(broadcaster: Broadcaster, subscriptions: list[SubscriptionRecord]) -> dict[str, Any]:
    """The streamer object of the ack and the API: identity, which event kinds are live (each
    with its `state`, a key of KIND_STATES), and in words why any kind is not coming."""
    granted = set(broadcaster.granted_scopes)
    kinds: list[dict[str, Any]] = []
    for entry in CATALOGUE:
        status = next(
            (s.status for s in subscriptions if entry.matches(s.type, s.condition, broadcaster.id)),
            None,
        )
        refusal = broadcaster.refusal(entry.key)
        held = HELD_BACK.get(refusal.reason) if refusal and status != "enabled" else None
        held = REMOVED if broadcaster.removed_at else held
        available = entry.allowed_by(granted)
        kinds.append(
            {
                "type": entry.type,
                "label": entry.label,
                "connected_only": entry.scope is not None,
                "available": available,
                "status": status,
                "held": held,
                "state": kind_state(available=available, held=held, status=status),
            }
        )
    notices = [REMOVED] if broadcaster.removed_at else []
    notices += sorted({str(k["held"]) for k in kinds if k["held"] and k["held"] not in notices})
    return {
        "id": broadcaster.id,
        "login": broadcaster.login,
        "name": broadcaster.display_name,
        "profile_image_url": broadcaster.profile_image_url,
        "connected": any(entry.allowed_by(granted) for entry in CATALOGUE if entry.scope),
        "kinds": kinds,
        "notices": notices,
    }


async def read_events(
    store: Store,
    broadcaster: Broadcaster,
    *,
    after: int | None = None,
    before: int | None = None,
    limit: int = PAGE_SIZE,
    faces: Faces | None = None,
) -> dict[str, Any]:
    """`{"streamer", "events"[, "gap"]}`: the newest `limit`, every event after `after`, or
    the `limit` newest below `before` (older history, newest first)."""
    subscriptions = await store.list_subscriptions(broadcaster.id)
    body: dict[str, Any] = {"streamer": describe(broadcaster, subscriptions)}
    events: list[Event]
    if before is not None:
        events = await store.events_before(broadcaster.id, before, limit)
    elif after is None:
        events = await store.latest_events(broadcaster.id, limit)
    else:
        missed = await store.events_after(broadcaster.id, after, MAX_CATCH_UP + 1)
        if len(missed) > MAX_CATCH_UP:
            events = await store.latest_events(broadcaster.id, limit)
            body["gap"] = True
        else:
            events = missed[::-1]
    if faces is not None:
        events = await faces(events)
    body["events"] = [event.model_dump(mode="json") for event in events]
    return body


async def read_stream(store: Store, broadcaster: Broadcaster) -> dict[str, Any]:
    """What SEV knows of the stream itself, from the newest stored events (no Helix call):
    live or offline (a key of STREAM_STATES), since when, title and category, and the seqs
    they come from, so that the page applies only newer events."""
    status = await store.latest_event_of(broadcaster.id, _STATUS_TYPES)
    info = await store.latest_event_of(broadcaster.id, _INFO_TYPES)
    state = "unknown"
    if status is not None:
        state = "live" if status.type == "stream.online" else "offline"
    return {
        "status": state,
        "status_seq": status.seq if status else 0,
        "since": status.occurred_at if status else None,
        "title": _text_field(info.data, "title") if info else "",
        "category": _text_field(info.data, "category_name") if info else "",
        "info_seq": info.seq if info else 0,
    }


def _text_field(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""
