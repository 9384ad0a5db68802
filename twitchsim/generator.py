"""Realistic EventSub event objects, with Twitch's documented field names, for every type."""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable
from typing import Any

from .directory import Account, Directory
from .timestamps import rfc3339_nano, rfc3339_offset

# An EventSub event object (the `event` of a notification), as the simulator builds it.
SimEvent = dict[str, Any]

_TITLES = (
    "Any% glitchless, WR pace or bust",
    "Cozy Sunday: tea, cats and farming",
    "Building a compiler from scratch (day 12)",
    "!drops enabled | chill vibes only",
    "Community game night — join the lobby!",
)
_CATEGORIES = (
    ("509658", "Just Chatting"),
    ("1469308723", "Software and Game Development"),
    ("26936", "Music"),
    ("27471", "Minecraft"),
    ("509670", "Science & Technology"),
)
_MESSAGES = ("Love the stream!", "Hype!!", "GG, that was close", "Hello from Lisbon", "LUL")
_REWARDS = (
    ("Hydrate!", 100, "Make the streamer drink water"),
    ("Song request", 500, "Name a song"),
    ("Pick the next game", 5000, "Choose wisely"),
)
_CHARITY_LOGO = (
    "data:image/svg+xml;base64,"
    + base64.b64encode(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><rect width="100" '
        b'height="100" rx="20" fill="#00a86b"/><text x="50" y="62" font-size="40" '
        b'text-anchor="middle" fill="#fff">&#9829;</text></svg>'
    ).decode()
)


def _tier(rng: random.Random) -> str:
    return rng.choice(("1000", "1000", "1000", "2000", "3000"))


def _actor(rng: random.Random, directory: Directory, broadcaster: Account) -> Account:
    return directory.someone_else(rng, broadcaster)


def _nulls(prefix: str = "user") -> dict[str, None]:
    return {f"{prefix}_id": None, f"{prefix}_login": None, f"{prefix}_name": None}


def _stream_online(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    return {
        "id": str(rng.randrange(10**10, 10**11)),
        **b.user_fields("broadcaster_user"),
        "type": "live",
        "started_at": rfc3339_nano(),
    }


def _stream_offline(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    return b.user_fields("broadcaster_user")


def _channel_update(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    category_id, category_name = rng.choice(_CATEGORIES)
    return {
        **b.user_fields("broadcaster_user"),
        "title": rng.choice(_TITLES),
        "language": "en",
        "category_id": category_id,
        "category_name": category_name,
        "content_classification_labels": rng.choice(([], [], ["ProfanityVulgarity"])),
    }


def _user_update(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    # No `email`: Twitch includes it only when the user granted user:read:email.
    return {**b.user_fields("user"), "email_verified": True, "description": b.description}


def _follow(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    actor = _actor(rng, d, b)
    return {
        **actor.user_fields(),
        **b.user_fields("broadcaster_user"),
        "followed_at": rfc3339_nano(),
    }


def _subscribe(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    actor = _actor(rng, d, b)
    return {
        **actor.user_fields(),
        **b.user_fields("broadcaster_user"),
        "tier": _tier(rng),
        "is_gift": rng.random() < 0.25,
    }


def _gift(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    anonymous = rng.random() < 0.2
    total = rng.choice((1, 1, 5, 10, 20))
    return {
        **(_nulls() if anonymous else _actor(rng, d, b).user_fields()),
        **b.user_fields("broadcaster_user"),
        "total": total,
        "tier": _tier(rng),
        "cumulative_total": None if anonymous else total + rng.randrange(0, 200),
        "is_anonymous": anonymous,
    }


def _resub(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    text = rng.choice(_MESSAGES) + " Kappa"
    months = rng.randrange(2, 60)
    return {
        **_actor(rng, d, b).user_fields(),
        **b.user_fields("broadcaster_user"),
        "tier": _tier(rng),
        "message": {
            "text": text,
            "emotes": [{"begin": len(text) - 5, "end": len(text) - 1, "id": "25"}],
        },
        "cumulative_months": months,
        "streak_months": rng.choice((None, months)),
        "duration_months": 1,
    }


def _cheer(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    anonymous = rng.random() < 0.15
    bits = rng.choice((1, 100, 100, 500, 1000, 10000))
    return {
        "is_anonymous": anonymous,
        **(_nulls() if anonymous else _actor(rng, d, b).user_fields()),
        **b.user_fields("broadcaster_user"),
        "message": f"Cheer{bits} {rng.choice(_MESSAGES)}",
        "bits": bits,
    }


_POWER_UPS = (("message_effect", 30), ("celebration", 100), ("gigantify_an_emote", 50))


def _bits_use(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    # Power-ups and combos: the bits channel.cheer does not carry (its cheers the simulator
    # sends as channel.cheer).
    power_up_type, bits = rng.choice(_POWER_UPS)
    combo = rng.random() < 0.3
    text = rng.choice(_MESSAGES)
    emote = {"id": "25", "name": "Kappa"} if power_up_type == "gigantify_an_emote" else None
    return {
        **_actor(rng, d, b).user_fields(),
        **b.user_fields("broadcaster_user"),
        "bits": 5 if combo else bits,
        "type": "combo" if combo else "power_up",
        "power_up": None if combo else {
            "type": power_up_type,
            "emote": emote,
            "message_effect_id": "cosmic-abyss" if power_up_type == "message_effect" else None,
        },
        "message": {"text": text, "fragments": [{"type": "text", "text": text, "cheermote": None,
                                                 "emote": None}]},
    }  # fmt: skip


def _contributions(b: Account, d: Directory, rng: random.Random) -> list[dict[str, Any]]:
    people = rng.sample([a for a in d if a != b], 2)
    return [
        {**p.user_fields(), "type": rng.choice(("bits", "subscription", "other")),
         "total": rng.randrange(100, 5000)}
        for p in people
    ]  # fmt: skip


def _hype_train_common(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    return {
        "id": str(uuid.UUID(int=rng.getrandbits(128))),
        **b.user_fields("broadcaster_user"),
        "level": rng.randrange(1, 6),
        "total": rng.randrange(500, 20000),
        "top_contributions": _contributions(b, d, rng),
        "shared_train_participants": None,
        "type": rng.choice(("regular", "regular", "golden_kappa", "treasure")),
        "is_shared_train": False,
    }


def _hype_train_begin(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    event = _hype_train_common(b, d, rng)
    level, total = event["level"], event["total"]
    return {
        **event,
        "progress": total % 1000,
        "goal": 1000 + 500 * level,
        "all_time_high_level": level + rng.randrange(0, 3),
        "all_time_high_total": total + rng.randrange(0, 5000),
        "started_at": rfc3339_nano(),
        "expires_at": rfc3339_offset(300),
    }


def _hype_train_progress(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    event = _hype_train_common(b, d, rng)
    level, total = event["level"], event["total"]
    return {
        **event,
        "progress": total % 1000,
        "goal": 1000 + 500 * level,
        "started_at": rfc3339_offset(-120),
        "expires_at": rfc3339_offset(180),
    }


def _hype_train_end(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    return {
        **_hype_train_common(b, d, rng),
        "started_at": rfc3339_offset(-300),
        "ended_at": rfc3339_nano(),
        "cooldown_ends_at": rfc3339_offset(3600),
    }


def _new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))


def _poll(b: Account, d: Directory, rng: random.Random, *, ended: bool) -> SimEvent:
    choices: list[dict[str, Any]] = [
        {"id": _new_id(rng), "title": t} for t in ("Yes", "No", "Maybe")
    ]
    if ended:
        for choice in choices:
            votes = rng.randrange(0, 300)
            choice.update(bits_votes=0, channel_points_votes=votes // 3, votes=votes)
    return {
        "id": _new_id(rng),
        **b.user_fields("broadcaster_user"),
        "title": "Which boss next?",
        "choices": choices,
        "bits_voting": {"is_enabled": False, "amount_per_vote": 0},
        "channel_points_voting": {"is_enabled": True, "amount_per_vote": 10},
        **(
            {"status": "completed", "started_at": rfc3339_offset(-120), "ended_at": rfc3339_nano()}
            if ended
            else {"started_at": rfc3339_nano(), "ends_at": rfc3339_offset(120)}
        ),
    }


def _prediction(b: Account, d: Directory, rng: random.Random, *, ended: bool) -> SimEvent:
    outcomes: list[dict[str, Any]] = [
        {"id": _new_id(rng), "title": "We win", "color": "blue"},
        {"id": _new_id(rng), "title": "We lose", "color": "pink"},
    ]
    event: SimEvent = {"id": _new_id(rng), **b.user_fields("broadcaster_user"),
                       "title": "Will we beat the boss?", "outcomes": outcomes}  # fmt: skip
    if not ended:
        return {**event, "started_at": rfc3339_nano(), "locks_at": rfc3339_offset(120)}
    for index, outcome in enumerate(outcomes):
        predictor = _actor(rng, d, b)
        used = rng.randrange(100, 5000)
        outcome.update(
            users=rng.randrange(1, 100),
            channel_points=used * 10,
            top_predictors=[
                {**predictor.user_fields(), "channel_points_won": used * 2 if index == 0 else None,
                 "channel_points_used": used}
            ],
        )  # fmt: skip
    return {
        **event,
        "winning_outcome_id": outcomes[0]["id"],
        "status": "resolved",
        "started_at": rfc3339_offset(-180),
        "ended_at": rfc3339_nano(),
    }


def _redemption(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    title, cost, prompt = rng.choice(_REWARDS)
    return {
        "id": _new_id(rng),
        **b.user_fields("broadcaster_user"),
        **_actor(rng, d, b).user_fields(),
        "user_input": "",
        "status": "unfulfilled",
        "reward": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, b.id + title)), "title": title,
                   "cost": cost, "prompt": prompt},
        "redeemed_at": rfc3339_nano(),
    }  # fmt: skip


_AUTOMATIC_REWARDS = (
    ("send_highlighted_message", 150),
    ("single_message_bypass_sub_mode", 100),
    ("random_sub_emote_unlock", 240),
    ("chosen_sub_emote_unlock", 2400),
)


def _automatic_redemption(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    kind, points = rng.choice(_AUTOMATIC_REWARDS)
    emote = {"id": "emotesv2_" + _new_id(rng).replace("-", "")[:20], "name": "pixelHype"}
    text = rng.choice(_MESSAGES)
    return {
        **b.user_fields("broadcaster_user"),
        **_actor(rng, d, b).user_fields(),
        "id": _new_id(rng),
        "reward": {"type": kind, "channel_points": points,
                   "emote": emote if kind.endswith("emote_unlock") else None},
        "message": {"text": text, "fragments": [{"type": "text", "text": text, "emote": None}]},
        "redeemed_at": rfc3339_nano(),
    }  # fmt: skip


def _shoutout(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    other = d.someone_else(rng, b, streamer=True)
    return {
        **b.user_fields("broadcaster_user"),
        **other.user_fields("from_broadcaster_user"),
        "viewer_count": rng.randrange(5, 3000),
        "started_at": rfc3339_nano(),
    }


def _shoutout_create(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    # The broadcaster shouts out another channel; the broadcaster is the moderator who did it.
    other = d.someone_else(rng, b, streamer=True)
    return {
        **b.user_fields("broadcaster_user"),
        **other.user_fields("to_broadcaster_user"),
        **b.user_fields("moderator_user"),
        "viewer_count": rng.randrange(5, 3000),
        "started_at": rfc3339_nano(),
        "cooldown_ends_at": rfc3339_offset(120),
        "target_cooldown_ends_at": rfc3339_offset(3600),
    }


_GOALS = (
    ("follower", "Road to the next follower milestone", 1000),
    ("subscription", "Sub points for the emote slot", 200),
    ("new_subscription", "New subs this stream", 25),
)


def _goal(b: Account, d: Directory, rng: random.Random, *, stage: str) -> SimEvent:
    # One goal per channel at a time: its id is the channel's, so begin, progress and end agree.
    kind, description, target = _GOALS[sum(map(ord, b.id)) % len(_GOALS)]
    if stage == "begin":
        current = rng.randrange(0, target // 4)
    elif stage == "progress":
        current = rng.randrange(target // 4, target)
    else:
        current = rng.choice((target, rng.randrange(target // 2, target)))
    event: SimEvent = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "goal-" + b.id)),
        **b.user_fields("broadcaster_user"),
        "type": kind,
        "description": description,
        "current_amount": current,
        "target_amount": target,
        "started_at": rfc3339_offset(-60) if stage == "begin" else rfc3339_offset(-3600),
    }
    if stage == "end":
        event |= {"is_achieved": current >= target, "ended_at": rfc3339_nano()}
    return event


def _charity(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    return {
        "id": _new_id(rng),
        "campaign_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "charity-" + b.id)),
        **b.user_fields("broadcaster_user"),
        **_actor(rng, d, b).user_fields(),
        "charity_name": "Example Cats Rescue",
        "charity_description": "Finding homes for cats since 2009.",
        "charity_logo": _CHARITY_LOGO,
        "charity_website": "https://www.example.org",
        "amount": {"value": rng.choice((500, 1000, 2500)), "decimal_places": 2, "currency": "USD"},
    }


_CHARITY_TARGET = 1_500_000  # cents


def _campaign(b: Account, d: Directory, rng: random.Random, *, stage: str) -> SimEvent:
    # Campaign events name the channel broadcaster_id/_login/_name, unlike the donations.
    raised = {"start": 0, "progress": rng.randrange(10_000, _CHARITY_TARGET),
              "stop": rng.randrange(_CHARITY_TARGET // 2, _CHARITY_TARGET * 2)}[stage]  # fmt: skip
    event: SimEvent = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "charity-" + b.id)),
        "broadcaster_id": b.id,
        "broadcaster_name": b.display_name,
        "broadcaster_login": b.login,
        "charity_name": "Example Cats Rescue",
        "charity_description": "Finding homes for cats since 2009.",
        "charity_logo": _CHARITY_LOGO,
        "charity_website": "https://www.example.org",
        "current_amount": {"value": raised, "decimal_places": 2, "currency": "USD"},
        "target_amount": {"value": _CHARITY_TARGET, "decimal_places": 2, "currency": "USD"},
    }
    if stage == "start":
        event["started_at"] = rfc3339_nano()
    elif stage == "stop":
        event["stopped_at"] = rfc3339_nano()
    return event


def _ad_break(b: Account, d: Directory, rng: random.Random) -> SimEvent:
    return {
        "duration_seconds": rng.choice((30, 60, 90, 180)),
        "started_at": rfc3339_nano(),
        "is_automatic": rng.random() < 0.5,
        **b.user_fields("broadcaster_user"),
        **b.user_fields("requester_user"),
    }


Builder = Callable[[Account, Directory, random.Random], SimEvent]

BUILDERS: dict[str, Builder] = {
    "stream.online": _stream_online,
    "stream.offline": _stream_offline,
    "channel.update": _channel_update,
    "user.update": _user_update,
    "channel.follow": _follow,
    "channel.subscribe": _subscribe,
    "channel.subscription.gift": _gift,
    "channel.subscription.message": _resub,
    "channel.cheer": _cheer,
    "channel.bits.use": _bits_use,
    "channel.hype_train.begin": _hype_train_begin,
    "channel.hype_train.progress": _hype_train_progress,
    "channel.hype_train.end": _hype_train_end,
    "channel.poll.begin": lambda b, d, rng: _poll(b, d, rng, ended=False),
    "channel.poll.end": lambda b, d, rng: _poll(b, d, rng, ended=True),
    "channel.prediction.begin": lambda b, d, rng: _prediction(b, d, rng, ended=False),
    "channel.prediction.end": lambda b, d, rng: _prediction(b, d, rng, ended=True),
    "channel.channel_points_custom_reward_redemption.add": _redemption,
    "channel.channel_points_automatic_reward_redemption.add": _automatic_redemption,
    "channel.shoutout.receive": _shoutout,
    "channel.shoutout.create": _shoutout_create,
    "channel.charity_campaign.donate": _charity,
    "channel.charity_campaign.start": lambda b, d, rng: _campaign(b, d, rng, stage="start"),
    "channel.charity_campaign.progress": lambda b, d, rng: _campaign(b, d, rng, stage="progress"),
    "channel.charity_campaign.stop": lambda b, d, rng: _campaign(b, d, rng, stage="stop"),
    "channel.goal.begin": lambda b, d, rng: _goal(b, d, rng, stage="begin"),
    "channel.goal.progress": lambda b, d, rng: _goal(b, d, rng, stage="progress"),
    "channel.goal.end": lambda b, d, rng: _goal(b, d, rng, stage="end"),
    "channel.ad_break.begin": _ad_break,
}


def gift_recipients(
    gift: SimEvent, broadcaster: Account, directory: Directory, rng: random.Random
) -> list[SimEvent]:
    """The channel.subscribe events (`is_gift: true`, the gift's tier) of a community gift's
    `total` recipients, as Twitch sends one per recipient beside the channel.subscription.gift:
    never the gifter or the broadcaster, all different while the demo directory has enough."""
    total = gift.get("total")
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        return []
    pool = [a for a in directory.accounts if a != broadcaster and a.id != gift.get("user_id")]
    if not pool:
        return []
    chosen = rng.sample(pool, min(total, len(pool)))
    chosen += [rng.choice(pool) for _ in range(total - len(chosen))]
    return [
        {
            **recipient.user_fields(),
            **broadcaster.user_fields("broadcaster_user"),
            "tier": gift.get("tier"),
            "is_gift": True,
        }
        for recipient in chosen
    ]


def generate_event(
    type_: str,
    broadcaster: Account,
    directory: Directory,
    rng: random.Random,
    *,
    raided: bool = True,
) -> SimEvent:
    """A fresh event of this type in the broadcaster's channel (for a raid: into it, or out)."""
    if type_ == "channel.raid":
        other = directory.someone_else(rng, broadcaster, streamer=True)
        source, target = (other, broadcaster) if raided else (broadcaster, other)
        return {
            **source.user_fields("from_broadcaster_user"),
            **target.user_fields("to_broadcaster_user"),
            "viewers": rng.randrange(5, 5000),
        }
    return BUILDERS[type_](broadcaster, directory, rng)
