"""What a trigger may name, and why one reached nobody.

A trigger names an EventSub type (`channel.cheer`) or the alias Twitch's own CLI gives it
(`twitch event trigger cheer`): the aliases below are twitch-cli's, as its docs/event.md and
each type's `triggerMapping` (internal/events/types/) have them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .catalog import CATALOG
from .directory import Account
from .subscriptions import SimSubscription


@dataclass(frozen=True)
class Alias:
    """One twitch-cli trigger name: the type it sends, and the fields it fixes."""

    name: str
    type: str
    fields: Mapping[str, Any] = field(default_factory=dict)


ALIASES: tuple[Alias, ...] = (
    Alias("streamup", "stream.online"),
    Alias("streamdown", "stream.offline"),
    Alias("stream-change", "channel.update"),
    Alias("raid", "channel.raid"),
    Alias("user-update", "user.update"),
    Alias("follow", "channel.follow"),
    # twitch-cli's `gift` is a channel.subscribe received as a gift; `channel-gift` is the
    # gifter's channel.subscription.gift.
    Alias("subscribe", "channel.subscribe", {"is_gift": False}),
    Alias("gift", "channel.subscribe", {"is_gift": True}),
    Alias("channel-gift", "channel.subscription.gift"),
    Alias("subscribe-message", "channel.subscription.message"),
    Alias("cheer", "channel.cheer"),
    Alias("hype-train-begin", "channel.hype_train.begin"),
    Alias("hype-train-progress", "channel.hype_train.progress"),
    Alias("hype-train-end", "channel.hype_train.end"),
    Alias("poll-begin", "channel.poll.begin"),
    Alias("poll-end", "channel.poll.end"),
    Alias("prediction-begin", "channel.prediction.begin"),
    Alias("prediction-end", "channel.prediction.end"),
    Alias("add-redemption", "channel.channel_points_custom_reward_redemption.add"),
    Alias("shoutout-received", "channel.shoutout.receive"),
    Alias("shoutout-create", "channel.shoutout.create"),
    Alias("goal-begin", "channel.goal.begin"),
    Alias("goal-progress", "channel.goal.progress"),
    Alias("goal-end", "channel.goal.end"),
    Alias("charity-donate", "channel.charity_campaign.donate"),
    Alias("ad-begin", "channel.ad_break.begin"),
)
_BY_NAME = {alias.name: alias for alias in ALIASES}
# The types a trigger can send: those whose events happen in a channel.
CHANNEL_TYPES: tuple[str, ...] = tuple(t for t, spec in CATALOG.items() if not spec.app)


def resolve(name: str) -> tuple[str, dict[str, Any]]:
    """The EventSub type a trigger name sends and the fields it fixes; ValueError if none."""
    if name in CHANNEL_TYPES:
        return name, {}
    alias = _BY_NAME.get(name)
    if alias is None:
        raise ValueError(f"unknown event type {name!r}")
    return alias.type, dict(alias.fields)


def why_nothing_sent(
    type_: str,
    account: Account,
    subscriptions: Iterable[SimSubscription],
    granted_scopes: set[str],
) -> dict[str, Any]:
    """Why no subscription took an event of `type_` in this channel, as JSON for the control
    API: `reason` is `subscription_not_enabled` (with their `statuses`) or `no_subscription`;
    `channel_subscribed` says whether anything of the channel is subscribed at all, `scope`
    what the type needs the broadcaster to grant (null: nothing) and `scope_granted` whether
    they have."""
    spec = CATALOG[type_]
    mine = [s for s in subscriptions if account.id in s.user_ids()]
    of_type = [s for s in mine if s.type == type_]
    answer: dict[str, Any] = {
        "type": type_,
        "broadcaster": account.login,
        "channel_subscribed": any(s.active for s in mine),
        "scope": spec.scope,
        "scope_granted": spec.scope is None or bool(spec.scopes & granted_scopes),
    }
    if of_type:
        statuses = sorted({s.status for s in of_type})
        return {"reason": "subscription_not_enabled", "statuses": statuses, **answer}
    return {"reason": "no_subscription", **answer}
