"""What a trigger may name: every channel type by its EventSub name, and twitch-cli's aliases."""

from __future__ import annotations

import pytest

from twitchsim.catalog import CATALOG
from twitchsim.triggers import ALIASES, CHANNEL_TYPES, resolve


def test_trigger_aliases_are_unique_and_name_types_a_trigger_sends() -> None:
    assert len({alias.name for alias in ALIASES}) == len(ALIASES)
    assert {alias.type for alias in ALIASES} <= set(CHANNEL_TYPES)


@pytest.mark.parametrize(
    ("name", "sent"),
    [
        ("channel.cheer", ("channel.cheer", {})),
        ("cheer", ("channel.cheer", {})),
        ("streamup", ("stream.online", {})),
        ("stream-change", ("channel.update", {})),
        ("gift", ("channel.subscribe", {"is_gift": True})),
        ("channel-gift", ("channel.subscription.gift", {})),
        ("add-redemption", ("channel.channel_points_custom_reward_redemption.add", {})),
        ("goal-begin", ("channel.goal.begin", {})),
        ("hype-train-progress", ("channel.hype_train.progress", {})),
        ("goal-progress", ("channel.goal.progress", {})),
        ("goal-end", ("channel.goal.end", {})),
        ("shoutout-create", ("channel.shoutout.create", {})),
    ],
)
def test_trigger_name_resolves_to_its_type_and_fixed_fields(
    name: str, sent: tuple[str, dict[str, object]]
) -> None:
    assert resolve(name) == sent


@pytest.mark.parametrize("name", ["channel.nonsense", "Cheer", "user.authorization.revoke", ""])
def test_trigger_name_unknown_or_not_in_a_channel_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        resolve(name)


def test_trigger_sends_every_type_of_a_channel_and_only_those() -> None:
    assert set(CHANNEL_TYPES) == {t for t, spec in CATALOG.items() if not spec.app}
    assert "user.authorization.revoke" not in CHANNEL_TYPES
