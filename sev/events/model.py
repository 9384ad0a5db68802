"""The shapes of events: the Event JSON the page and the API receive, and how a type is shown."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict


class Person(BaseModel):
    """A Twitch user as events show them."""

    model_config = ConfigDict(frozen=True)

    id: str
    login: str
    name: str
    # The actor's Helix picture, added as SEV serves and publishes the event (sev/profiles.py),
    # only ever an address on Twitch's image CDN (or, in demo mode, SEV's own); never stored.
    profile_image_url: str | None = None


class Event(BaseModel):
    """One stored EventSub notification, as the page and the API receive it."""

    id: str
    seq: int
    type: str
    version: str
    broadcaster: Person
    actor: Person | None
    occurred_at: str
    received_at: str
    summary: str
    data: dict[str, Any]


# A Twitch login (lower-case letters, digits, underscores): only such a name is put in a link
# to twitch.tv. static/feed.js TWITCH_LOGIN is the same pattern.
TWITCH_LOGIN = re.compile(r"^[a-z0-9_]{1,25}$")


def is_twitch_login(value: Any) -> bool:
    """Whether `value` can be a Twitch login, and so safe in a twitch.tv link."""
    return isinstance(value, str) and TWITCH_LOGIN.fullmatch(value) is not None


# One type's summary line, from the event's data, its broadcaster and its actor.
Summary = Callable[[Mapping[str, Any], Person, Person | None], str]


@dataclass(frozen=True)
class Badge:
    """One amount of an event, shown as a badge: where it is in the event's data (a dotted
    path) and what it counts (the unit decides the words, here and in static/feed.js)."""

    path: str
    unit: str  # a key of BADGE_UNITS

    def to_json(self) -> dict[str, str]:
        """What the page needs to find and word it."""
        return {"path": self.path, "unit": self.unit}


@dataclass(frozen=True)
class EventDisplay:
    """How the page shows one event type: its family (icon and colour), label, amounts, summary.

    Each catalogue entry carries one (`EventType.display`): the streamer page and
    static/streamer.js read them from there (`display_table`), and static/sev.css colours each
    family.
    """

    family: str
    label: str
    summary: Summary | None = None
    # The event's amounts (bits, tier, viewers ...), one badge each, in this order.
    badges: tuple[Badge, ...] = ()
    # Whether the summary may hold cheermotes ("Cheer100"), shown as bits badges.
    cheermotes: bool = False
    # Where the event names the person who did it (the first prefix present wins); () for
    # events nobody in particular did (going live, a poll). Raids pick their side themselves.
    actor: tuple[str, ...] = ("user",)
    # Where the event carries its own time (the first present wins); else the message's.
    time_fields: tuple[str, ...] = ("followed_at", "redeemed_at", "ended_at", "started_at")
    # Which of its events SEV stores; None: all. An event another subscribed type already
    # carries is left out (channel.bits.use repeats every cheer channel.cheer brings).
    kept: Callable[[Mapping[str, Any]], bool] | None = None

    def keeps(self, data: Mapping[str, Any]) -> bool:
        """Whether SEV stores and shows this event."""
        return self.kept is None or self.kept(data)

    @property
    def icon(self) -> str:
        """The id of the family's symbol in the page's icon sprite."""
        return f"icon-{self.family}"

    def to_json(self) -> dict[str, Any]:
        """What the page needs of it (the summary is made here, not in the browser)."""
        return {
            "family": self.family,
            "label": self.label,
            "icon": self.icon,
            "badges": [badge.to_json() for badge in self.badges],
            "cheermotes": self.cheermotes,
        }
