"""The EventSub subscription types the simulator accepts, with Twitch's conditions and scopes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TypeSpec:
    """One subscription type: its version, condition fields and the scope it needs.

    `condition` lists every field the type documents: Helix answers each of them, the unused
    ones as "" (a raid subscription on `to_broadcaster_user_id` comes back with
    `"from_broadcaster_user_id": ""`).
    """

    type: str
    version: str
    condition: tuple[str, ...]
    scope: str | None = None
    # The condition field naming the user who must have granted `scope`.
    scope_user: str = "broadcaster_user_id"
    # True when exactly one of `condition` is given (channel.raid: to or from).
    one_of: bool = False
    # Documented as optional (a redemption subscription's `reward_id`).
    optional: tuple[str, ...] = ()
    # Scopes Twitch accepts instead of `scope` ("channel:read:polls or channel:manage:polls").
    also_scopes: tuple[str, ...] = ()

    @property
    def app(self) -> bool:
        """The condition names the app itself (`client_id`), not a user."""
        return self.condition == ("client_id",)

    @property
    def scopes(self) -> frozenset[str]:
        """Every scope that authorizes this type."""
        return frozenset(s for s in (self.scope, *self.also_scopes) if s)


def _spec(type_: str, version: str, scope: str | None = None, *also: str) -> TypeSpec:
    return TypeSpec(type_, version, ("broadcaster_user_id",), scope, also_scopes=also)


CATALOG: dict[str, TypeSpec] = {
    spec.type: spec
    for spec in (
        _spec("stream.online", "1"),
        _spec("stream.offline", "1"),
        _spec("channel.update", "2"),
        TypeSpec(
            "channel.raid",
            "1",
            ("from_broadcaster_user_id", "to_broadcaster_user_id"),
            one_of=True,
        ),
        TypeSpec("user.update", "1", ("user_id",)),
        TypeSpec(
            "channel.follow",
            "2",
            ("broadcaster_user_id", "moderator_user_id"),
            "moderator:read:followers",
            scope_user="moderator_user_id",
        ),
        _spec("channel.subscribe", "1", "channel:read:subscriptions"),
        _spec("channel.subscription.gift", "1", "channel:read:subscriptions"),
        _spec("channel.subscription.message", "1", "channel:read:subscriptions"),
        _spec("channel.cheer", "1", "bits:read"),
        _spec("channel.bits.use", "1", "bits:read"),
        _spec("channel.hype_train.begin", "2", "channel:read:hype_train"),
        _spec("channel.hype_train.progress", "2", "channel:read:hype_train"),
        _spec("channel.hype_train.end", "2", "channel:read:hype_train"),
        _spec("channel.poll.begin", "1", "channel:read:polls", "channel:manage:polls"),
        _spec("channel.poll.end", "1", "channel:read:polls", "channel:manage:polls"),
        _spec(
            "channel.prediction.begin",
            "1",
            "channel:read:predictions",
            "channel:manage:predictions",
        ),
        _spec(
            "channel.prediction.end", "1", "channel:read:predictions", "channel:manage:predictions"
        ),
        TypeSpec(
            "channel.channel_points_custom_reward_redemption.add",
            "1",
            ("broadcaster_user_id", "reward_id"),
            "channel:read:redemptions",
            optional=("reward_id",),
            also_scopes=("channel:manage:redemptions",),
        ),
        _spec(
            "channel.channel_points_automatic_reward_redemption.add",
            "2",
            "channel:read:redemptions",
            "channel:manage:redemptions",
        ),
        TypeSpec(
            "channel.shoutout.receive",
            "1",
            ("broadcaster_user_id", "moderator_user_id"),
            "moderator:read:shoutouts",
            scope_user="moderator_user_id",
            also_scopes=("moderator:manage:shoutouts",),
        ),
        TypeSpec(
            "channel.shoutout.create",
            "1",
            ("broadcaster_user_id", "moderator_user_id"),
            "moderator:read:shoutouts",
            scope_user="moderator_user_id",
            also_scopes=("moderator:manage:shoutouts",),
        ),
        _spec("channel.charity_campaign.donate", "1", "channel:read:charity"),
        _spec("channel.charity_campaign.start", "1", "channel:read:charity"),
        _spec("channel.charity_campaign.progress", "1", "channel:read:charity"),
        _spec("channel.charity_campaign.stop", "1", "channel:read:charity"),
        _spec("channel.goal.begin", "1", "channel:read:goals"),
        _spec("channel.goal.progress", "1", "channel:read:goals"),
        _spec("channel.goal.end", "1", "channel:read:goals"),
        _spec("channel.ad_break.begin", "1", "channel:read:ads"),
        # Condition: the app's own client id (it must match the app access token's).
        TypeSpec("user.authorization.revoke", "1", ("client_id",)),
    )
}

# Scopes the authorize page accepts: Twitch's names (a typo is refused with invalid_scope, as
# Twitch refuses it).
KNOWN_SCOPES = frozenset(
    {scope for spec in CATALOG.values() for scope in spec.scopes}
    | {
        "analytics:read:extensions",
        "analytics:read:games",
        "bits:read",
        "channel:bot",
        "channel:manage:broadcast",
        "channel:manage:polls",
        "channel:manage:predictions",
        "channel:manage:redemptions",
        "channel:moderate",
        "channel:read:editors",
        "channel:read:goals",
        "channel:read:guest_star",
        "channel:read:stream_key",
        "channel:read:vips",
        "chat:edit",
        "chat:read",
        "moderation:read",
        "moderator:read:chatters",
        "moderator:read:followers",
        "openid",
        "user:bot",
        "user:read:broadcast",
        "user:read:chat",
        "user:read:email",
        "user:read:follows",
        "user:read:subscriptions",
        "whispers:read",
    }
)
