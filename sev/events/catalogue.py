"""The catalogue: every EventSub type SEV subscribes to, one `EventType` entry each.

An entry says how SEV subscribes (version, condition, scope) and how the page shows the type's
events (`EventDisplay`: family, label, summary, badges, actor, time). A type SEV does not know
still becomes an Event, with a generic summary and display (`display.OTHER`).

Adding a type is adding its entry here, and then the type in each of these places
(tests/events/test_catalogue_checklist.py checks every one of them, and names the places it misses):

- sev/events/summaries.py: its summary function, named by the entry's display.
- sev/events/display.py: `FAMILY_LABELS` has the display's family and `BADGE_UNITS` each of its
  badges' units (a new family or unit is rare; the existing ones usually fit).
- static/feed.js `BADGE_WORDS`: each badge unit, worded as `BADGE_UNITS` words it.
- static/sev.css: a `.event[data-family="..."]` colour rule for the display's family.
- templates/streamer.html: a `<symbol id="icon-...">` for the display's icon.
- twitchsim/catalog.py `CATALOG`: the type's version, condition and scopes, as Twitch has them.
- twitchsim/generator.py `BUILDERS`: a payload with the documented fields.
- twitchsim/streams.py: its place in the demo's streams (`MIX`, `ENDS` or `PROGRESS`).
- twitchsim/triggers.py `ALIASES`: twitch-cli's trigger name for it, if twitch-cli has one
  (else the checklist test's `WITHOUT_TWITCH_CLI_ALIAS`).
- tests/twitchsim/test_simulator.py `EVENT_FIELDS`: the documented fields of its payload.
- tests/events/test_events.py `CASES` or tests/test_twitch_documented.py `DOCUMENTED_EVENTS`: an
  example and the summary it makes.
- docs/TWITCH.md "Types SEV uses": its row (version, condition, scope).

The rest follows from the entry: the subscriptions SEV makes (`wanted_types`), the scopes it
asks for (`CONNECT_SCOPES`), the page's display table, tests/eventsub/test_webhook_types.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sev.events import summaries
from sev.events.model import Badge, EventDisplay


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


_RAID = EventDisplay("raid", "Raid", summaries.raid, (Badge("viewers", "viewers"),))

# Every type SEV subscribes to, with how the page shows it; the module's docstring lists the
# places a new type must appear besides.
PUBLIC_TYPES: tuple[EventType, ...] = (
    EventType(
        "stream.online",
        "1",
        label="Going live",
        display=EventDisplay("live", "Live", summaries.stream_online, actor=()),
    ),
    EventType(
        "stream.offline",
        "1",
        label="Going offline",
        display=EventDisplay("offline", "Offline", summaries.stream_offline, actor=()),
    ),
    EventType(
        "channel.update",
        "2",
        label="Title and category changes",
        display=EventDisplay("update", "Stream info", summaries.channel_update, actor=()),
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
        display=EventDisplay("update", "Profile", summaries.user_update),
    ),
)

CONNECTED_TYPES: tuple[EventType, ...] = (
    EventType(
        "channel.follow",
        "2",
        scope="moderator:read:followers",
        with_moderator=True,
        label="Follows",
        display=EventDisplay("follow", "Follow", summaries.follow),
    ),
    EventType(
        "channel.subscribe",
        "1",
        scope="channel:read:subscriptions",
        label="Subscriptions",
        display=EventDisplay(
            "sub",
            "Sub",
            summaries.subscribe,
            (Badge("tier", "tier"),),
        ),
    ),
    EventType(
        "channel.subscription.gift",
        "1",
        scope="channel:read:subscriptions",
        label="Gift subscriptions",
        display=EventDisplay(
            "gift", "Gift subs", summaries.gift, (Badge("total", "gifts"), Badge("tier", "tier"))
        ),
    ),
    EventType(
        "channel.subscription.message",
        "1",
        scope="channel:read:subscriptions",
        label="Resubscriptions",
        display=EventDisplay(
            "sub",
            "Resub",
            summaries.resub,
            (Badge("tier", "tier"), Badge("cumulative_months", "months")),
        ),
    ),
    EventType(
        "channel.cheer",
        "1",
        scope="bits:read",
        label="Cheers",
        display=EventDisplay(
            "cheer", "Cheer", summaries.cheer, (Badge("bits", "bits"),), cheermotes=True
        ),
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
            summaries.bits_use,
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
            summaries.hype_train_begin,
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
            summaries.hype_train_end,
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
            summaries.hype_train_progress,
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
        display=EventDisplay("poll", "Poll", summaries.poll_begin, actor=()),
    ),
    EventType(
        "channel.poll.end",
        "1",
        scope="channel:read:polls",
        label="Poll results",
        also_scopes=("channel:manage:polls",),
        display=EventDisplay("poll", "Poll", summaries.poll_end, actor=()),
    ),
    EventType(
        "channel.prediction.begin",
        "1",
        scope="channel:read:predictions",
        label="Predictions",
        also_scopes=("channel:manage:predictions",),
        display=EventDisplay("prediction", "Prediction", summaries.prediction_begin, actor=()),
    ),
    EventType(
        "channel.prediction.end",
        "1",
        scope="channel:read:predictions",
        label="Prediction results",
        also_scopes=("channel:manage:predictions",),
        display=EventDisplay("prediction", "Prediction", summaries.prediction_end, actor=()),
    ),
    EventType(
        "channel.channel_points_custom_reward_redemption.add",
        "1",
        scope="channel:read:redemptions",
        label="Channel point redemptions",
        also_scopes=("channel:manage:redemptions",),
        display=EventDisplay(
            "points", "Redemption", summaries.redemption, (Badge("reward.cost", "points"),)
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
            summaries.automatic_redemption,
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
            summaries.shoutout_receive,
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
            summaries.shoutout_create,
            (Badge("viewer_count", "viewers"),),
            actor=("to_broadcaster_user",),
        ),
    ),
    EventType(
        "channel.charity_campaign.donate",
        "1",
        scope="channel:read:charity",
        label="Charity donations",
        display=EventDisplay(
            "charity", "Charity", summaries.charity_donate, (Badge("amount", "money"),)
        ),
    ),
    EventType(
        "channel.charity_campaign.start",
        "1",
        scope="channel:read:charity",
        label="Charity campaigns",
        display=EventDisplay(
            "charity",
            "Charity",
            summaries.charity_campaign_start,
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
            summaries.charity_campaign_progress,
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
            summaries.charity_campaign_stop,
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
            summaries.ad_break_begin,
            (Badge("duration_seconds", "seconds"),),
            actor=("requester_user",),
        ),
    ),
    EventType(
        "channel.goal.begin",
        "1",
        scope="channel:read:goals",
        label="Goals",
        display=EventDisplay(
            "update", "Goal", summaries.goal_begin, actor=(), time_fields=("started_at",)
        ),
    ),
    # A goal's progress carries the goal's start, not the moment of progress: the message's
    # timestamp is when it happened.
    EventType(
        "channel.goal.progress",
        "1",
        scope="channel:read:goals",
        label="Goal progress",
        display=EventDisplay("update", "Goal", summaries.goal_progress, actor=(), time_fields=()),
    ),
    EventType(
        "channel.goal.end",
        "1",
        scope="channel:read:goals",
        label="Goal results",
        display=EventDisplay(
            "update", "Goal", summaries.goal_end, actor=(), time_fields=("ended_at",)
        ),
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
