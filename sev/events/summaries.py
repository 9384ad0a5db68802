"""The summary line of each event type: one function per type (or kind of type), each a
`Summary` of the event's data, its broadcaster and its actor.

The catalogue names each type's function (`EventDisplay.summary`); `summarize` calls it and
falls back to a generic line when Twitch's payload is not the documented shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sev.events.model import Person
from sev.events.payload import MAX_DECIMAL_PLACES, count, money, nested, text


def _who(person: Person | None, anonymous: str = "Someone") -> str:
    return person.name if person else anonymous


def _tier(data: Mapping[str, Any]) -> str:
    tier = str(data.get("tier") or "1000")
    return {"1000": "Tier 1", "2000": "Tier 2", "3000": "Tier 3", "prime": "Prime"}.get(tier, tier)


# -- the channel -------------------------------------------------------------------------------


def stream_online(data: Mapping[str, Any], broadcaster: Person, _: Person | None) -> str:
    """stream.online: live, or the kind of stream it started."""
    kind = data.get("type", "live")
    return (
        f"{broadcaster.name} went live"
        if kind == "live"
        else f"{broadcaster.name} started a {kind}"
    )


def stream_offline(_: Mapping[str, Any], broadcaster: Person, __: Person | None) -> str:
    """stream.offline."""
    return f"{broadcaster.name} went offline"


def channel_update(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    """channel.update: the title and the category."""
    title, category = text(data.get("title")), text(data.get("category_name"))
    return f"Title: {title}" + (f" · {category}" if category else "")


def user_update(_: Mapping[str, Any], broadcaster: Person, actor: Person | None) -> str:
    """user.update."""
    return f"{_who(actor or broadcaster)} updated their profile"


def raid(data: Mapping[str, Any], broadcaster: Person, actor: Person | None) -> str:
    """channel.raid, into the channel or out of it."""
    viewers = data.get("viewers", 0)
    if data.get("to_broadcaster_user_id") == broadcaster.id:
        return f"{_who(actor)} raided with {viewers} viewers"
    return f"{broadcaster.name} raided {_who(actor)} with {viewers} viewers"


def ad_break_begin(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    """channel.ad_break.begin."""
    return f"{data.get('duration_seconds', 0)}s ad break started"


# -- viewers -----------------------------------------------------------------------------------


def follow(_: Mapping[str, Any], __: Person, actor: Person | None) -> str:
    """channel.follow."""
    return f"{_who(actor)} followed"


def subscribe(data: Mapping[str, Any], _: Person, actor: Person | None) -> str:
    """channel.subscribe, bought or received as a gift."""
    if data.get("is_gift"):
        return f"{_who(actor)} received a gifted {_tier(data)} sub"
    return f"{_who(actor)} subscribed ({_tier(data)})"


def gift(data: Mapping[str, Any], _: Person, actor: Person | None) -> str:
    """channel.subscription.gift."""
    total = data.get("total", 1)
    subs = "sub" if total == 1 else "subs"
    return f"{_who(actor, 'An anonymous gifter')} gifted {total} {_tier(data)} {subs}"


def resub(data: Mapping[str, Any], _: Person, actor: Person | None) -> str:
    """channel.subscription.message, with its message."""
    months = data.get("cumulative_months") or data.get("duration_months") or 1
    message = text(nested(data, "message", "text"))
    line = f"{_who(actor)} resubscribed for {months} months ({_tier(data)})"
    return f"{line}: {message}" if message else line


def cheer(data: Mapping[str, Any], _: Person, actor: Person | None) -> str:
    """channel.cheer, with its message."""
    message = text(data.get("message"))
    line = f"{_who(actor, 'Anonymous')} cheered {data.get('bits', 0)} bits"
    return f"{line}: {message}" if message else line


# What each Power-up is, by its documented `power_up.type`.
_POWER_UPS = {
    "message_effect": "a message effect",
    "celebration": "an on-screen celebration",
    "gigantify_an_emote": "a gigantified emote",
}


def bits_use(data: Mapping[str, Any], _: Person, actor: Person | None) -> str:
    """channel.bits.use: a Power-up or a combo, with its message."""
    kind = data.get("type")
    if kind == "power_up":
        power_up = _POWER_UPS.get(str(nested(data, "power_up", "type")), "a Power-up")
        line = f"{_who(actor)} used bits on {power_up}"
    elif kind == "combo":
        line = f"{_who(actor)} sent a combo"
    else:
        line = f"{_who(actor)} used bits"
    message = text(nested(data, "message", "text"))
    return f"{line}: {message}" if message else line


def redemption(data: Mapping[str, Any], _: Person, actor: Person | None) -> str:
    """channel.channel_points_custom_reward_redemption.add."""
    title, cost = text(nested(data, "reward", "title")), nested(data, "reward", "cost")
    return f"{_who(actor)} redeemed {title}" + (f" ({cost} points)" if cost is not None else "")


# What each automatic channel points reward does, by its documented `reward.type`.
_AUTOMATIC_REWARDS = {
    "single_message_bypass_sub_mode": "a message in sub-only mode",
    "send_highlighted_message": "a highlighted message",
    "random_sub_emote_unlock": "a random sub emote",
    "chosen_sub_emote_unlock": "a sub emote of their choice",
    "chosen_modified_sub_emote_unlock": "a modified sub emote",
}


def automatic_redemption(data: Mapping[str, Any], _: Person, actor: Person | None) -> str:
    """channel.channel_points_automatic_reward_redemption.add, with its message."""
    reward = _AUTOMATIC_REWARDS.get(str(nested(data, "reward", "type")), "an automatic reward")
    emote = text(nested(data, "reward", "emote", "name"), 40)
    message = text(nested(data, "message", "text"))
    line = f"{_who(actor)} redeemed {reward}" + (f" ({emote})" if emote else "")
    return f"{line}: {message}" if message else line


def shoutout_receive(data: Mapping[str, Any], broadcaster: Person, actor: Person | None) -> str:
    """channel.shoutout.receive."""
    return f"{_who(actor)} shouted out {broadcaster.name} to {data.get('viewer_count', 0)} viewers"


def shoutout_create(data: Mapping[str, Any], broadcaster: Person, actor: Person | None) -> str:
    """channel.shoutout.create."""
    viewers = count(data.get("viewer_count"))
    line = f"{broadcaster.name} shouted out {_who(actor)}"
    return line + (f" to {viewers:,} viewers" if viewers is not None else "")


def charity_donate(data: Mapping[str, Any], _: Person, actor: Person | None) -> str:
    """channel.charity_campaign.donate."""
    raw = data.get("amount")
    amount: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    try:
        places = int(amount.get("decimal_places", 0))
        if not 0 <= places <= MAX_DECIMAL_PLACES:
            # 10 ** a signed-but-absurd exponent would hold the event loop for seconds.
            raise ValueError(f"decimal_places {places}")
        value = int(amount.get("value", 0)) / 10**places
        donated = f"{value:,.2f} {text(amount.get('currency'), 8)}".strip()
    except (TypeError, ValueError, OverflowError):
        donated = "a donation"
    return f"{_who(actor)} donated {donated} to {text(data.get('charity_name')) or 'charity'}"


# -- the channel's polls, predictions, hype trains, goals and campaigns -----------------------


def hype_train_begin(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    """channel.hype_train.begin."""
    return f"Hype train started (level {data.get('level', 1)})"


def hype_train_progress(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    """channel.hype_train.progress: the level and the progress towards the next."""
    level, progress, goal = (count(data.get(key)) for key in ("level", "progress", "goal"))
    line = f"Hype train at level {level:,}" if level is not None else "Hype train rolling"
    return line + (f": {progress:,} / {goal:,}" if progress is not None and goal else "")


def hype_train_end(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    """channel.hype_train.end."""
    return f"Hype train ended at level {data.get('level', 1)}"


def poll_begin(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    """channel.poll.begin."""
    return f"Poll started: {text(data.get('title'))}"


def poll_end(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    """channel.poll.end, with the choice that won."""
    choices = [c for c in data.get("choices") or [] if isinstance(c, Mapping)]
    best = max(choices, key=lambda c: int(c.get("votes") or 0), default=None)
    line = f"Poll ended: {text(data.get('title'))}"
    return f"{line} — “{text(best.get('title'))}” won" if best else line


def prediction_begin(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    """channel.prediction.begin."""
    return f"Prediction started: {text(data.get('title'))}"


def prediction_end(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    """channel.prediction.end, with the outcome that won."""
    title = text(data.get("title"))
    winner = next(
        (
            text(o.get("title"))
            for o in data.get("outcomes") or []
            if isinstance(o, Mapping) and o.get("id") == data.get("winning_outcome_id")
        ),
        "",
    )
    return f"Prediction ended: {title}" + (f" — “{winner}” won" if winner else "")


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
    description = text(data.get("description"), 60)
    current, target = count(data.get("current_amount")), count(data.get("target_amount"))
    amounts = f"{current:,} / {target:,}" if current is not None and target is not None else ""
    return (f"{kind} “{description}”" if description else kind), amounts


def goal_begin(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    """channel.goal.begin."""
    goal, amounts = _goal(data)
    return f"{goal} started" + (f" at {amounts}" if amounts else "")


def goal_progress(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    """channel.goal.progress."""
    goal, amounts = _goal(data)
    return f"{goal}: {amounts}" if amounts else f"{goal} made progress"


def goal_end(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    """channel.goal.end: achieved or not."""
    goal, amounts = _goal(data)
    outcome = "achieved" if data.get("is_achieved") is True else "ended"
    return f"{goal} {outcome}" + (f" at {amounts}" if amounts else "")


def _campaign(data: Mapping[str, Any], stage: str) -> str:
    raised, target = money(data.get("current_amount")), money(data.get("target_amount"))
    line = f"Charity campaign for {text(data.get('charity_name'), 80) or 'charity'}"
    if stage == "start":
        return f"{line} started" + (f", aiming for {target}" if target else "")
    line += " ended" if stage == "stop" else ""
    if raised:
        return f"{line}: {raised} raised" + (f" of {target}" if target else "")
    return line if stage == "stop" else f"{line} made progress"


def charity_campaign_start(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    """channel.charity_campaign.start."""
    return _campaign(data, "start")


def charity_campaign_progress(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    """channel.charity_campaign.progress."""
    return _campaign(data, "progress")


def charity_campaign_stop(data: Mapping[str, Any], _: Person, __: Person | None) -> str:
    """channel.charity_campaign.stop."""
    return _campaign(data, "stop")
