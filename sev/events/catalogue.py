"""The Event model and the catalogue of EventSub types SEV listens to.

Pure code: nothing here does I/O or reads the clock. `build_event` turns one verified EventSub
notification into SEV's Event JSON (ARCHITECTURE.md). Each type SEV subscribes to is one
catalogue entry (`EventType`: version, condition, scope) carrying its `EventDisplay` (family,
label, icon, badges, summary, actor, time); adding a type is adding that entry. A type SEV does
not know still becomes an Event, with a generic summary and display.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from sev.clock import normalize_timestamp


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


@dataclass(frozen=True)
class EventType:
    """One subscription SEV makes for a broadcaster: type, version, condition and scope."""

    type: str
    version: str
    condition_key: str = "broadcaster_user_id"
    scope: str | None = None  # None: visible with the app token alone, for any channel
    with_moderator: bool = False  # condition also names the broadcaster as moderator
    label: str = ""
    # Scopes Twitch accepts instead of `scope` (e.g. channel:manage:polls for polls). SEV asks
    # only for `scope`, but a grant that carries one of these allows the type as well.
    also_scopes: tuple[str, ...] = ()
    # How the page shows its events (None: not shown, e.g. user.authorization.revoke).
    display: EventDisplay | None = None

    @property
    def key(self) -> str:
        """Identifies this entry among the catalogue (raid appears twice, to and from)."""
        return f"{self.type}:{self.condition_key}"

    def condition(self, broadcaster_id: str) -> dict[str, str]:
        """The EventSub condition for this broadcaster."""
        condition = {self.condition_key: broadcaster_id}
        if self.with_moderator:
            condition["moderator_user_id"] = broadcaster_id
        return condition

    def allowed_by(self, granted_scopes: set[str] | frozenset[str]) -> bool:
        """Whether a broadcaster who granted these scopes lets SEV subscribe to this type."""
        return self.scope is None or bool({self.scope, *self.also_scopes} & granted_scopes)

    def matches(self, type: str, condition: Mapping[str, Any], broadcaster_id: str) -> bool:
        """Whether a subscription (as Twitch or the store has it) is this entry's."""
        return type == self.type and normalize_condition(condition) == self.condition(
            broadcaster_id
        )


def normalize_condition(condition: Mapping[str, Any]) -> dict[str, str]:
    """A condition with its unused fields dropped: Twitch answers them as "" (or null), and a
    request leaves them out, so empty and missing are the same."""
    return {key: str(value) for key, value in condition.items() if value not in (None, "")}


# -- building an Event -------------------------------------------------------------------------


def _person(data: Mapping[str, Any], prefix: str) -> Person | None:
    user_id = data.get(f"{prefix}_id")
    if not isinstance(user_id, str) or not user_id:
        return None
    login = data.get(f"{prefix}_login") or ""
    name = data.get(f"{prefix}_name") or login
    return Person(id=user_id, login=str(login), name=str(name))


def _text(value: Any, limit: int = 200) -> str:
    text = " ".join(str(value).split()) if value is not None else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _who(person: Person | None, anonymous: str = "Someone") -> str:
    return person.name if person else anonymous


def _tier(data: Mapping[str, Any]) -> str:
    tier = str(data.get("tier") or "1000")
    return {"1000": "Tier 1", "2000": "Tier 2", "3000": "Tier 3", "prime": "Prime"}.get(tier, tier)


def _nested(data: Mapping[str, Any], *path: str) -> Any:
    value: Any = data
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


_Summary = Callable[[Mapping[str, Any], Person, Person | None], str]


def _raid(data: Mapping[str, Any], broadcaster: Person, actor: Person | None) -> str:
    viewers = data.get("viewers", 0)
    if data.get("to_broadcaster_user_id") == broadcaster.id:
        return f"{_who(actor)} raided with {viewers} viewers"
    return f"{broadcaster.name} raided {_who(actor)} with {viewers} viewers"


def _stream_online(data: Mapping[str, Any], broadcaster: Person, _: Person | None) -> str:
    kind = data.get("type", "live")
    return (
        f"{broadcaster.name} went live"
        if kind == "live"
        else f"{broadcaster.name} started a {kind}"
    )


def _channel_update(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    title, category = _text(data.get("title")), _text(data.get("category_name"))
    return f"Title: {title}" + (f" · {category}" if category else "")


def _gift(data: Mapping[str, Any], _: Person, actor: Person | None) -> str:
    total = data.get("total", 1)
    subs = "sub" if total == 1 else "subs"
    return f"{_who(actor, 'An anonymous gifter')} gifted {total} {_tier(data)} {subs}"


def _resub(data: Mapping[str, Any], _: Person, actor: Person | None) -> str:
    months = data.get("cumulative_months") or data.get("duration_months") or 1
    message = _text(_nested(data, "message", "text"))
    line = f"{_who(actor)} resubscribed for {months} months ({_tier(data)})"
    return f"{line}: {message}" if message else line


def _cheer(data: Mapping[str, Any], _: Person, actor: Person | None) -> str:
    message = _text(data.get("message"))
    line = f"{_who(actor, 'Anonymous')} cheered {data.get('bits', 0)} bits"
    return f"{line}: {message}" if message else line


# ISO 4217 currencies use at most 4 minor digits; Twitch's charity amounts use 2.
_MAX_DECIMAL_PLACES = 8


def _charity(data: Mapping[str, Any], _: Person, actor: Person | None) -> str:
    raw = data.get("amount")
    amount: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    try:
        places = int(amount.get("decimal_places", 0))
        if not 0 <= places <= _MAX_DECIMAL_PLACES:
            # 10 ** a signed-but-absurd exponent would hold the event loop for seconds.
            raise ValueError(f"decimal_places {places}")
        value = int(amount.get("value", 0)) / 10**places
        money = f"{value:,.2f} {_text(amount.get('currency'), 8)}".strip()
    except (TypeError, ValueError, OverflowError):
        money = "a donation"
    return f"{_who(actor)} donated {money} to {_text(data.get('charity_name')) or 'charity'}"


def _redemption(data: Mapping[str, Any], _: Person, actor: Person | None) -> str:
    title, cost = _text(_nested(data, "reward", "title")), _nested(data, "reward", "cost")
    return f"{_who(actor)} redeemed {title}" + (f" ({cost} points)" if cost is not None else "")


def _prediction_end(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    title = _text(data.get("title"))
    winner = next(
        (
            _text(o.get("title"))
            for o in data.get("outcomes") or []
            if isinstance(o, Mapping) and o.get("id") == data.get("winning_outcome_id")
        ),
        "",
    )
    return f"Prediction ended: {title}" + (f" — “{winner}” won" if winner else "")


def _poll_end(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    choices = [c for c in data.get("choices") or [] if isinstance(c, Mapping)]
    best = max(choices, key=lambda c: int(c.get("votes") or 0), default=None)
    line = f"Poll ended: {_text(data.get('title'))}"
    return f"{line} — “{_text(best.get('title'))}” won" if best else line


# What a creator goal counts, by its documented `type`.
_GOAL_KINDS = {
    "follower": "Follower goal",
    "subscription": "Sub goal",
    "subscription_count": "Sub count goal",
    "new_subscription": "New sub goal",
    "new_subscription_count": "New sub count goal",
    "new_bit": "Bits goal",
    "new_cheerer": "New cheerer goal",
}


def _goal(data: Mapping[str, Any]) -> tuple[str, str]:
    """A goal's kind with its description, and its "current / target" (or "")."""
    kind = _GOAL_KINDS.get(str(data.get("type")), "Goal")
    description = _text(data.get("description"), 60)
    current, target = _count(data.get("current_amount")), _count(data.get("target_amount"))
    amounts = f"{current:,} / {target:,}" if current is not None and target is not None else ""
    return (f"{kind} “{description}”" if description else kind), amounts


def _goal_begin(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    goal, amounts = _goal(data)
    return f"{goal} started" + (f" at {amounts}" if amounts else "")


def _goal_progress(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    goal, amounts = _goal(data)
    return f"{goal}: {amounts}" if amounts else f"{goal} made progress"


def _goal_end(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    goal, amounts = _goal(data)
    outcome = "achieved" if data.get("is_achieved") is True else "ended"
    return f"{goal} {outcome}" + (f" at {amounts}" if amounts else "")


def _shoutout_create(data: Mapping[str, Any], broadcaster: Person, actor: Person | None) -> str:
    viewers = _count(data.get("viewer_count"))
    line = f"{broadcaster.name} shouted out {_who(actor)}"
    return line + (f" to {viewers:,} viewers" if viewers is not None else "")


def _campaign(data: Mapping[str, Any], stage: str) -> str:
    raised, target = _money(data.get("current_amount")), _money(data.get("target_amount"))
    line = f"Charity campaign for {_text(data.get('charity_name'), 80) or 'charity'}"
    if stage == "start":
        return f"{line} started" + (f", aiming for {target}" if target else "")
    line += " ended" if stage == "stop" else ""
    if raised:
        return f"{line}: {raised} raised" + (f" of {target}" if target else "")
    return line if stage == "stop" else f"{line} made progress"


# What each automatic channel points reward does, by its documented `reward.type`.
_AUTOMATIC_REWARDS = {
    "single_message_bypass_sub_mode": "a message in sub-only mode",
    "send_highlighted_message": "a highlighted message",
    "random_sub_emote_unlock": "a random sub emote",
    "chosen_sub_emote_unlock": "a sub emote of their choice",
    "chosen_modified_sub_emote_unlock": "a modified sub emote",
}


def _automatic_redemption(data: Mapping[str, Any], _: Person, actor: Person | None) -> str:
    reward = _AUTOMATIC_REWARDS.get(str(_nested(data, "reward", "type")), "an automatic reward")
    emote = _text(_nested(data, "reward", "emote", "name"), 40)
    message = _text(_nested(data, "message", "text"))
    line = f"{_who(actor)} redeemed {reward}" + (f" ({emote})" if emote else "")
    return f"{line}: {message}" if message else line


def _hype_train_progress(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    level, progress, goal = (_count(data.get(key)) for key in ("level", "progress", "goal"))
    line = f"Hype train at level {level:,}" if level is not None else "Hype train rolling"
    return line + (f": {progress:,} / {goal:,}" if progress is not None and goal else "")


# What each Power-up is, by its documented `power_up.type`.
_POWER_UPS = {
    "message_effect": "a message effect",
    "celebration": "an on-screen celebration",
    "gigantify_an_emote": "a gigantified emote",
}


def _bits_use(data: Mapping[str, Any], _: Person, actor: Person | None) -> str:
    kind = data.get("type")
    if kind == "power_up":
        power_up = _POWER_UPS.get(str(_nested(data, "power_up", "type")), "a Power-up")
        line = f"{_who(actor)} used bits on {power_up}"
    elif kind == "combo":
        line = f"{_who(actor)} sent a combo"
    else:
        line = f"{_who(actor)} used bits"
    message = _text(_nested(data, "message", "text"))
    return f"{line}: {message}" if message else line


# A Twitch login (lower-case letters, digits, underscores): only such a name is put in a link
# to twitch.tv. static/feed.js TWITCH_LOGIN is the same pattern.
TWITCH_LOGIN = re.compile(r"^[a-z0-9_]{1,25}$")


def is_twitch_login(value: Any) -> bool:
    """Whether `value` can be a Twitch login, and so safe in a twitch.tv link."""
    return isinstance(value, str) and TWITCH_LOGIN.fullmatch(value) is not None


# -- amounts, shown as badges -------------------------------------------------------------------

# Numbers a badge shows: whole, not negative, and exact in JavaScript too (static/feed.js
# formats the same badges for events that arrive live).
_MAX_AMOUNT = 2**53 - 1
_TIERS = {"1000": "Tier 1", "2000": "Tier 2", "3000": "Tier 3", "prime": "Prime"}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
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


@dataclass(frozen=True)
class Badge:
    """One amount of an event, shown as a badge: where it is in the event's data (a dotted
    path) and what it counts (the unit decides the words, here and in static/feed.js)."""

    path: str
    unit: str  # a key of BADGE_UNITS

    def to_json(self) -> dict[str, str]:
        """What the page needs to find and word it."""
        return {"path": self.path, "unit": self.unit}


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_AMOUNT:
        return None
    return value


def _plural(one: str, many: str) -> Callable[[Any], str | None]:
    def word(value: Any) -> str | None:
        n = _count(value)
        return None if n is None else f"{n:,} {one if n == 1 else many}"

    return word


def _money(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return None
    amount, places = _count(value.get("value")), _count(value.get("decimal_places"))
    currency = value.get("currency")
    if amount is None or places is None or places > _MAX_DECIMAL_PLACES:
        return None
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        return None
    whole, fraction = divmod(amount, 10**places)
    number = f"{whole:,}" + (f".{fraction:0{places}d}" if places else "")
    return f"{number} {currency}"


def _level(value: Any) -> str | None:
    n = _count(value)
    return None if n is None else f"Level {n:,}"


def _seconds(value: Any) -> str | None:
    n = _count(value)
    return None if n is None else f"{n:,} s"


# How each unit reads; static/feed.js BADGE_WORDS words them the same way.
BADGE_UNITS: dict[str, Callable[[Any], str | None]] = {
    "bits": _plural("bit", "bits"),
    "tier": lambda value: _TIERS.get(value) if isinstance(value, str) else None,
    "months": _plural("month", "months"),
    "gifts": _plural("gift", "gifts"),
    "viewers": _plural("viewer", "viewers"),
    "points": _plural("point", "points"),
    "money": _money,
    "seconds": _seconds,
    "level": _level,
}


def badges_of(event_type: str, data: Mapping[str, Any]) -> list[dict[str, str]]:
    """The badges of an event, in its display's order: `{"unit", "text"}` each; an amount that
    is missing or not the documented shape has none."""
    found: list[dict[str, str]] = []
    for badge in display_of(event_type).badges:
        text = BADGE_UNITS[badge.unit](_nested(data, *badge.path.split(".")))
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


@dataclass(frozen=True)
class EventDisplay:
    """How the page shows one event type: its family (icon and colour), label, amounts, summary.

    Each catalogue entry carries one (`EventType.display`): the streamer page and
    static/streamer.js read them from there (`display_table`), and static/sev.css colours each
    family.
    """

    family: str
    label: str
    summary: _Summary | None = None
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

# -- the catalogue ------------------------------------------------------------------------------

_RAID = EventDisplay("raid", "Raid", _raid, (Badge("viewers", "viewers"),))

# Every type SEV subscribes to, with how the page shows it: adding a type is adding its entry
# here (the simulated Twitch must know the type too: twitchsim/catalog.py and generator.py).
PUBLIC_TYPES: tuple[EventType, ...] = (
    EventType(
        "stream.online",
        "1",
        label="Going live",
        display=EventDisplay("live", "Live", _stream_online, actor=()),
    ),
    EventType(
        "stream.offline",
        "1",
        label="Going offline",
        display=EventDisplay(
            "offline", "Offline", lambda d, b, a: f"{b.name} went offline", actor=()
        ),
    ),
    EventType(
        "channel.update",
        "2",
        label="Title and category changes",
        display=EventDisplay("update", "Stream info", _channel_update, actor=()),
    ),
    EventType("channel.raid", "1", "to_broadcaster_user_id", label="Incoming raids", display=_RAID),
    EventType(
        "channel.raid", "1", "from_broadcaster_user_id", label="Outgoing raids", display=_RAID
    ),
    EventType(
        "user.update",
        "1",
        "user_id",
        label="Profile changes",
        display=EventDisplay(
            "update", "Profile", lambda d, b, a: f"{_who(a or b)} updated their profile"
        ),
    ),
)

CONNECTED_TYPES: tuple[EventType, ...] = (
    EventType(
        "channel.follow",
        "2",
        scope="moderator:read:followers",
        with_moderator=True,
        label="Follows",
        display=EventDisplay("follow", "Follow", lambda d, b, a: f"{_who(a)} followed"),
    ),
    EventType(
        "channel.subscribe",
        "1",
        scope="channel:read:subscriptions",
        label="Subscriptions",
        display=EventDisplay(
            "sub",
            "Sub",
            lambda d, b, a: (
                f"{_who(a)} received a gifted {_tier(d)} sub"
                if d.get("is_gift")
                else f"{_who(a)} subscribed ({_tier(d)})"
            ),
            (Badge("tier", "tier"),),
        ),
    ),
    EventType(
        "channel.subscription.gift",
        "1",
        scope="channel:read:subscriptions",
        label="Gift subscriptions",
        display=EventDisplay(
            "gift", "Gift subs", _gift, (Badge("total", "gifts"), Badge("tier", "tier"))
        ),
    ),
    EventType(
        "channel.subscription.message",
        "1",
        scope="channel:read:subscriptions",
        label="Resubscriptions",
        display=EventDisplay(
            "sub", "Resub", _resub, (Badge("tier", "tier"), Badge("cumulative_months", "months"))
        ),
    ),
    EventType(
        "channel.cheer",
        "1",
        scope="bits:read",
        label="Cheers",
        display=EventDisplay("cheer", "Cheer", _cheer, (Badge("bits", "bits"),), cheermotes=True),
    ),
    # Power-ups and combos; its cheers are channel.cheer's, so those are not stored twice.
    EventType(
        "channel.bits.use",
        "1",
        scope="bits:read",
        label="Power-ups and combos",
        display=EventDisplay(
            "cheer",
            "Bits",
            _bits_use,
            (Badge("bits", "bits"),),
            kept=lambda data: data.get("type") != "cheer",
            time_fields=(),
        ),
    ),
    EventType(
        "channel.hype_train.begin",
        "2",
        scope="channel:read:hype_train",
        label="Hype trains",
        display=EventDisplay(
            "hype",
            "Hype train",
            lambda d, b, a: f"Hype train started (level {d.get('level', 1)})",
            (Badge("level", "level"),),
            actor=(),
        ),
    ),
    EventType(
        "channel.hype_train.end",
        "2",
        scope="channel:read:hype_train",
        label="Hype train results",
        display=EventDisplay(
            "hype",
            "Hype train",
            lambda d, b, a: f"Hype train ended at level {d.get('level', 1)}",
            (Badge("level", "level"),),
            actor=(),
        ),
    ),
    # Progress comes with each contribution; its level badge shows the level-ups.
    EventType(
        "channel.hype_train.progress",
        "2",
        scope="channel:read:hype_train",
        label="Hype train progress",
        display=EventDisplay(
            "hype",
            "Hype train",
            _hype_train_progress,
            (Badge("level", "level"),),
            actor=(),
            time_fields=(),
        ),
    ),
    EventType(
        "channel.poll.begin",
        "1",
        scope="channel:read:polls",
        label="Polls",
        also_scopes=("channel:manage:polls",),
        display=EventDisplay(
            "poll", "Poll", lambda d, b, a: f"Poll started: {_text(d.get('title'))}", actor=()
        ),
    ),
    EventType(
        "channel.poll.end",
        "1",
        scope="channel:read:polls",
        label="Poll results",
        also_scopes=("channel:manage:polls",),
        display=EventDisplay("poll", "Poll", _poll_end, actor=()),
    ),
    EventType(
        "channel.prediction.begin",
        "1",
        scope="channel:read:predictions",
        label="Predictions",
        also_scopes=("channel:manage:predictions",),
        display=EventDisplay(
            "prediction",
            "Prediction",
            lambda d, b, a: f"Prediction started: {_text(d.get('title'))}",
            actor=(),
        ),
    ),
    EventType(
        "channel.prediction.end",
        "1",
        scope="channel:read:predictions",
        label="Prediction results",
        also_scopes=("channel:manage:predictions",),
        display=EventDisplay("prediction", "Prediction", _prediction_end, actor=()),
    ),
    EventType(
        "channel.channel_points_custom_reward_redemption.add",
        "1",
        scope="channel:read:redemptions",
        label="Channel point redemptions",
        also_scopes=("channel:manage:redemptions",),
        display=EventDisplay(
            "points", "Redemption", _redemption, (Badge("reward.cost", "points"),)
        ),
    ),
    EventType(
        "channel.channel_points_automatic_reward_redemption.add",
        "2",
        scope="channel:read:redemptions",
        label="Automatic reward redemptions",
        also_scopes=("channel:manage:redemptions",),
        display=EventDisplay(
            "points",
            "Redemption",
            _automatic_redemption,
            (Badge("reward.channel_points", "points"),),
        ),
    ),
    EventType(
        "channel.shoutout.receive",
        "1",
        scope="moderator:read:shoutouts",
        with_moderator=True,
        label="Shoutouts received",
        also_scopes=("moderator:manage:shoutouts",),
        display=EventDisplay(
            "shoutout",
            "Shoutout",
            lambda d, b, a: f"{_who(a)} shouted out {b.name} to {d.get('viewer_count', 0)} viewers",
            (Badge("viewer_count", "viewers"),),
            actor=("from_broadcaster_user",),
        ),
    ),
    EventType(
        "channel.shoutout.create",
        "1",
        scope="moderator:read:shoutouts",
        with_moderator=True,
        label="Shoutouts given",
        also_scopes=("moderator:manage:shoutouts",),
        display=EventDisplay(
            "shoutout",
            "Shoutout",
            _shoutout_create,
            (Badge("viewer_count", "viewers"),),
            actor=("to_broadcaster_user",),
        ),
    ),
    EventType(
        "channel.charity_campaign.donate",
        "1",
        scope="channel:read:charity",
        label="Charity donations",
        display=EventDisplay("charity", "Charity", _charity, (Badge("amount", "money"),)),
    ),
    EventType(
        "channel.charity_campaign.start",
        "1",
        scope="channel:read:charity",
        label="Charity campaigns",
        display=EventDisplay(
            "charity",
            "Charity",
            lambda d, b, a: _campaign(d, "start"),
            (Badge("target_amount", "money"),),
            actor=(),
        ),
    ),
    EventType(
        "channel.charity_campaign.progress",
        "1",
        scope="channel:read:charity",
        label="Charity campaign progress",
        display=EventDisplay(
            "charity",
            "Charity",
            lambda d, b, a: _campaign(d, "progress"),
            (Badge("current_amount", "money"),),
            actor=(),
        ),
    ),
    EventType(
        "channel.charity_campaign.stop",
        "1",
        scope="channel:read:charity",
        label="Charity campaign results",
        display=EventDisplay(
            "charity",
            "Charity",
            lambda d, b, a: _campaign(d, "stop"),
            (Badge("current_amount", "money"),),
            actor=(),
            time_fields=("stopped_at",),
        ),
    ),
    EventType(
        "channel.ad_break.begin",
        "1",
        scope="channel:read:ads",
        label="Ad breaks",
        display=EventDisplay(
            "ad",
            "Ad break",
            lambda d, b, a: f"{d.get('duration_seconds', 0)}s ad break started",
            (Badge("duration_seconds", "seconds"),),
            actor=("requester_user",),
        ),
    ),
    EventType(
        "channel.goal.begin",
        "1",
        scope="channel:read:goals",
        label="Goals",
        display=EventDisplay("update", "Goal", _goal_begin, actor=(), time_fields=("started_at",)),
    ),
    # A goal's progress carries the goal's start, not the moment of progress: the message's
    # timestamp is when it happened.
    EventType(
        "channel.goal.progress",
        "1",
        scope="channel:read:goals",
        label="Goal progress",
        display=EventDisplay("update", "Goal", _goal_progress, actor=(), time_fields=()),
    ),
    EventType(
        "channel.goal.end",
        "1",
        scope="channel:read:goals",
        label="Goal results",
        display=EventDisplay("update", "Goal", _goal_end, actor=(), time_fields=("ended_at",)),
    ),
)

CATALOGUE: tuple[EventType, ...] = PUBLIC_TYPES + CONNECTED_TYPES
# One subscription per app, not per broadcaster: a user who disconnects SEV on Twitch's
# Connections page. Its condition names SEV's client id (EventType.condition(client_id)).
AUTHORIZATION_REVOKE = EventType("user.authorization.revoke", "1", "client_id", label="Logins")
CONNECT_SCOPES: tuple[str, ...] = tuple(
    sorted({entry.scope for entry in CONNECTED_TYPES if entry.scope})
)
_CONDITION_KEYS = (
    "broadcaster_user_id",
    "to_broadcaster_user_id",
    "from_broadcaster_user_id",
    "user_id",
)


def wanted_types(granted_scopes: set[str] | frozenset[str]) -> list[EventType]:
    """The subscriptions SEV wants for a broadcaster who granted these scopes."""
    return [entry for entry in CATALOGUE if entry.allowed_by(granted_scopes)]


def broadcaster_id_of(condition: Mapping[str, Any]) -> str | None:
    """Whose events a subscription carries: the channel its condition names."""
    for key in _CONDITION_KEYS:
        value = condition.get(key)
        if isinstance(value, str) and value:
            return value
    return None


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
        return _text(summary(data, broadcaster, actor), 300)
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
