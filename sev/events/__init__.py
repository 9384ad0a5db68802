"""Events: the Event model, the catalogue of EventSub types SEV listens to, and how each type
reads (summary line, family, label, icon, badges). Pure code: nothing here does I/O or reads
the clock, and the package imports only base modules (`sev.clock`, `sev.config` and their
layer), never a client, the store or a route. Inside it, each module imports only those before
it: `model` (shapes), `payload` (reading Twitch's fields), `summaries`, `catalogue` (one entry
per type; its docstring lists every place a new type must appear), `display` (by type, for the
page) and `build` (a notification into an Event). Other modules import from `sev.events`.
"""

from sev.events.build import build_event, summarize
from sev.events.catalogue import (
    AUTHORIZATION_REVOKE,
    CATALOGUE,
    CONNECT_SCOPES,
    CONNECTED_TYPES,
    PUBLIC_TYPES,
    EventType,
    broadcaster_id_of,
    normalize_condition,
    wanted_types,
)
from sev.events.display import (
    BADGE_UNITS,
    CHEERMOTE_PREFIXES,
    DISPLAYS,
    FAMILIES,
    FAMILY_LABELS,
    OTHER,
    badges_of,
    display_of,
    display_table,
    summary_parts,
)
from sev.events.model import (
    TWITCH_LOGIN,
    Badge,
    Event,
    EventDisplay,
    Person,
    is_twitch_login,
)

__all__ = [
    "AUTHORIZATION_REVOKE",
    "BADGE_UNITS",
    "CATALOGUE",
    "CHEERMOTE_PREFIXES",
    "CONNECTED_TYPES",
    "CONNECT_SCOPES",
    "DISPLAYS",
    "FAMILIES",
    "FAMILY_LABELS",
    "OTHER",
    "PUBLIC_TYPES",
    "TWITCH_LOGIN",
    "Badge",
    "Event",
    "EventDisplay",
    "EventType",
    "Person",
    "badges_of",
    "broadcaster_id_of",
    "build_event",
    "display_of",
    "display_table",
    "is_twitch_login",
    "normalize_condition",
    "summarize",
    "summary_parts",
    "wanted_types",
]
