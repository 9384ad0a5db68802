"""How the page shows events, by type: families, badges (amounts), cheermotes and the display
table the page reads (`display_table`); static/feed.js does the same for events that arrive
live."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from sev.events.catalogue import CATALOGUE
from sev.events.model import EventDisplay
from sev.events.payload import count, money, nested

# -- amounts, shown as badges -------------------------------------------------------------------

_TIERS = {"1000": "Tier 1", "2000": "Tier 2", "3000": "Tier 3", "prime": "Prime"}


def _plural(one: str, many: str) -> Callable[[Any], str | None]:
    def word(value: Any) -> str | None:
        n = count(value)
        return None if n is None else f"{n:,} {one if n == 1 else many}"

    return word


def _level(value: Any) -> str | None:
    n = count(value)
    return None if n is None else f"Level {n:,}"


def _seconds(value: Any) -> str | None:
    n = count(value)
    return None if n is None else f"{n:,} s"


# How each unit reads; static/feed.js BADGE_WORDS words them the same way.
BADGE_UNITS: dict[str, Callable[[Any], str | None]] = {
    "bits": _plural("bit", "bits"),
    "tier": lambda value: _TIERS.get(value) if isinstance(value, str) else None,
    "months": _plural("month", "months"),
    "gifts": _plural("gift", "gifts"),
    "viewers": _plural("viewer", "viewers"),
    "points": _plural("point", "points"),
    "money": money,
    "seconds": _seconds,
    "level": _level,
}

# Twitch's global cheermote prefixes: a word of one of these and a number, in a cheer's message,
# is that many bits ("Cheer100"), and the page shows it as a bits badge.
CHEERMOTE_PREFIXES: tuple[str, ...] = (
    "Cheer", "DoodleCheer", "BibleThump", "cheerwhal", "Corgo", "Scoops", "uni", "ShowLove",
    "Party", "SeemsGood", "Pride", "Kappa", "FrankerZ", "HeyGuys", "DansGame", "EleGiggle",
    "TriHard", "Kreygasm", "4Head", "SwiftRage", "NotLikeThis", "FailFish", "VoHiYo", "PJSalt",
    "MrDestructoid", "bday", "RIPCheer", "Shamrock", "BitBoss", "Streamlabs", "Muxy",
    "HolidayCheer", "Goal", "Anon", "Charity",
)  # fmt: skip
_CHEERMOTE = re.compile(
    r"^(?:" + "|".join(re.escape(p) for p in CHEERMOTE_PREFIXES) + r")([1-9][0-9]{0,6})$",
    re.IGNORECASE,
)

# -- families ------------------------------------------------------------------------------------

# Icon and colour groups; static/sev.css has one colour rule per family, the page one icon each.
FAMILIES: tuple[str, ...] = (
    "live",
    "offline",
    "update",
    "raid",
    "follow",
    "sub",
    "gift",
    "cheer",
    "hype",
    "poll",
    "prediction",
    "points",
    "shoutout",
    "charity",
    "ad",
    "other",
)

# What the page's filter calls each family (one checkbox each).
FAMILY_LABELS: dict[str, str] = {
    "live": "Going live",
    "offline": "Going offline",
    "update": "Titles, profiles and goals",
    "raid": "Raids",
    "follow": "Follows",
    "sub": "Subs and resubs",
    "gift": "Gift subs",
    "cheer": "Cheers",
    "hype": "Hype trains",
    "poll": "Polls",
    "prediction": "Predictions",
    "points": "Redemptions",
    "shoutout": "Shoutouts",
    "charity": "Charity",
    "ad": "Ad breaks",
    "other": "Other events",
}

# -- by type -------------------------------------------------------------------------------------

DISPLAYS: dict[str, EventDisplay] = {
    entry.type: entry.display for entry in CATALOGUE if entry.display is not None
}
# A type SEV does not know (Twitch added one, or the catalogue dropped it): shown generically.
OTHER = EventDisplay("other", "Event")


def display_of(event_type: str) -> EventDisplay:
    """How the page shows an event of this type; generic for types SEV does not know."""
    return DISPLAYS.get(event_type, OTHER)


def display_table() -> dict[str, Any]:
    """`{"types": {type: display}, "other": display, "cheermotes": [prefix]}`: the page's copy
    of the displays."""
    return {
        "types": {type_: display.to_json() for type_, display in DISPLAYS.items()},
        "other": OTHER.to_json(),
        "cheermotes": list(CHEERMOTE_PREFIXES),
    }


def badges_of(event_type: str, data: Mapping[str, Any]) -> list[dict[str, str]]:
    """The badges of an event, in its display's order: `{"unit", "text"}` each; an amount that
    is missing or not the documented shape has none."""
    found: list[dict[str, str]] = []
    for badge in display_of(event_type).badges:
        text = BADGE_UNITS[badge.unit](nested(data, *badge.path.split(".")))
        if text is not None:
            found.append({"unit": badge.unit, "text": text})
    return found


def summary_parts(event_type: str, summary: str) -> list[dict[str, str]]:
    """A summary cut into text and, for types whose messages carry cheermotes, the cheermotes
    as bits badges: `{"text"}` or `{"unit": "bits", "text", "word"}` parts."""
    if not display_of(event_type).cheermotes:
        return [{"text": summary}]
    parts: list[dict[str, str]] = []
    for piece in re.split(r"(\s+)", summary):
        match = _CHEERMOTE.match(piece)
        if match:
            bits = BADGE_UNITS["bits"](int(match.group(1)))
            parts.append({"unit": "bits", "text": str(bits), "word": piece})
        elif parts and "unit" not in parts[-1]:
            parts[-1] = {"text": parts[-1]["text"] + piece}
        elif piece:
            parts.append({"text": piece})
    return parts
