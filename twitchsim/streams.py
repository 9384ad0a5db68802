"""The demo's streams: each demo streamer with subscribers broadcasts believable sessions.

A session goes live (stream.online), changes its title or category now and then
(channel.update), brings a steady trickle of viewer events (follows most, then redemptions,
subs, resubs, cheers and gift subs; now and then a raid or a shoutout; rarely a poll, a
prediction or a hype train, each ended a few minutes later, or a follower goal or a charity
campaign, which makes progress for an hour or so and then ends) and, hours later, ends
(stream.offline), often just after raiding another channel. The channel then stays offline
for a while before the next session.

Pure: a seeded random source and times passed in (seconds on the caller's clock), so a test can
play a whole day in no time, and the same seed plays the same day.
"""

from __future__ import annotations

import random
from collections.abc import Generator, Iterator
from dataclasses import dataclass

MINUTE = 60.0
HOUR = 60 * MINUTE
SESSION_S = (2 * HOUR, 5 * HOUR)
OFFLINE_S = (1 * HOUR, 3 * HOUR)
TITLE_CHANGE_EVERY_S = (10 * MINUTE, 40 * MINUTE)
# What one moment of a live stream brings, by weight: out of 100, about one follow in three.
MIX: tuple[tuple[str, float], ...] = (
    ("channel.follow", 40),
    ("channel.channel_points_custom_reward_redemption.add", 14),
    ("channel.channel_points_automatic_reward_redemption.add", 3),
    ("channel.subscribe", 10),
    ("channel.subscription.message", 9),
    ("channel.cheer", 9),
    ("channel.bits.use", 1),
    ("channel.subscription.gift", 5),
    ("channel.raid", 0.6),
    ("channel.ad_break.begin", 1),
    ("channel.shoutout.receive", 0.3),
    ("channel.charity_campaign.donate", 0.3),
    ("channel.poll.begin", 0.5),
    ("channel.prediction.begin", 0.5),
    ("channel.hype_train.begin", 0.5),
    ("channel.goal.begin", 0.3),
    ("channel.charity_campaign.start", 0.1),
    # Only while their goal or campaign runs (PROGRESS).
    ("channel.hype_train.progress", 20),
    ("channel.goal.progress", 3),
    ("channel.charity_campaign.progress", 3),
    ("channel.shoutout.create", 0.3),
    ("user.update", 0.1),
)
# What ends a poll, a prediction or a hype train, and how long after it began.
ENDS: dict[str, tuple[str, tuple[float, float]]] = {
    "channel.poll.begin": ("channel.poll.end", (2 * MINUTE, 3 * MINUTE)),
    "channel.prediction.begin": ("channel.prediction.end", (3 * MINUTE, 6 * MINUTE)),
    "channel.hype_train.begin": ("channel.hype_train.end", (5 * MINUTE, 10 * MINUTE)),
    "channel.goal.begin": ("channel.goal.end", (30 * MINUTE, 90 * MINUTE)),
    "channel.charity_campaign.start": (
        "channel.charity_campaign.stop",
        (45 * MINUTE, 100 * MINUTE),
    ),
}
# What a running hype train, goal or charity campaign brings now and then until it ends.
PROGRESS: dict[str, str] = {
    "channel.hype_train.progress": "channel.hype_train.begin",
    "channel.goal.progress": "channel.goal.begin",
    "channel.charity_campaign.progress": "channel.charity_campaign.start",
}
# How often a session ends with a raid out of the channel.
RAID_OUT_CHANCE = 0.5


@dataclass(frozen=True)
class StreamOrigin:
    """Where a channel's plan began: its seed and its start on the wall clock. The same seed
    from the same start plays the same plan, so a restarted simulator can take the channel's
    stream up where it was (persistence.py) instead of going live again."""

    seed: str
    start: float


@dataclass(frozen=True)
class Planned:
    """One event of a channel's stream: when, which type, and for a raid its direction."""

    at: float
    type: str
    # channel.raid only: into the channel (True) or out of it (False).
    raided: bool = True


def gap(rng: random.Random, mean_s: float) -> float:
    """The time to a stream's next event: never under half the mean, now and then much more."""
    return mean_s / 2 + rng.expovariate(2 / mean_s)


def _pick(rng: random.Random, running: set[str], left_s: float) -> str:
    # One poll, prediction, hype train, goal, campaign at a time, none the stream cannot see
    # end, and progress only on a running goal or campaign.
    choices = [
        (type_, weight)
        for type_, weight in MIX
        if type_ not in running
        and (type_ not in ENDS or ENDS[type_][1][1] < left_s)
        and (type_ not in PROGRESS or PROGRESS[type_] in running)
    ]
    return rng.choices([t for t, _ in choices], weights=[w for _, w in choices])[0]


def _session(
    rng: random.Random, live_at: float, mean_gap_s: float
) -> Generator[Planned, None, float]:
    """One session from going live to going offline; returns when it went offline."""
    yield Planned(live_at, "stream.online")
    ends_at = live_at + rng.uniform(*SESSION_S)
    next_title_change = live_at + rng.uniform(*TITLE_CHANGE_EVERY_S)
    # The begun polls, predictions and hype trains: begin type -> when their end is due.
    running: dict[str, float] = {}
    at = live_at
    while True:
        at += gap(rng, mean_gap_s)
        due = min(running, key=running.__getitem__, default=None)
        # An end takes the next moment once it is due.
        if due is not None and running[due] <= at:
            del running[due]
            yield Planned(at, ENDS[due][0])
        elif at >= ends_at:
            break
        elif at >= next_title_change:
            next_title_change = at + rng.uniform(*TITLE_CHANGE_EVERY_S)
            yield Planned(at, "channel.update")
        else:
            type_ = _pick(rng, set(running), ends_at - at)
            if type_ in ENDS:
                running[type_] = at + rng.uniform(*ENDS[type_][1])
            yield Planned(at, type_)
    if rng.random() < RAID_OUT_CHANCE:
        yield Planned(at, "channel.raid", raided=False)
        at += gap(rng, mean_gap_s)
    yield Planned(at, "stream.offline")
    return at


def stream_plan(rng: random.Random, *, start: float, mean_gap_s: float) -> Iterator[Planned]:
    """A channel's events from `start` on, forever, in time order: the first session goes live
    one gap after `start` (when the channel gained its first subscriber)."""
    at = start + gap(rng, mean_gap_s)
    while True:
        offline_at = yield from _session(rng, at, mean_gap_s)
        at = offline_at + rng.uniform(*OFFLINE_S)


class StreamShow:
    """One channel's plan as it plays: what is due by a given time."""

    def __init__(self, rng: random.Random, *, start: float, mean_gap_s: float) -> None:
        # The events' content draws from its own source: the plan stays the same however the
        # caller's wake-ups group the events.
        self.rng = random.Random(rng.getrandbits(64))  # noqa: S311 - event content, not secrets
        self._mean_gap_s = mean_gap_s
        self._plan = stream_plan(rng, start=start, mean_gap_s=mean_gap_s)
        self._next = next(self._plan)

    @property
    def next_at(self) -> float:
        """When the next event is due."""
        return self._next.at

    def due(self, now: float) -> list[Planned]:
        """The events due by `now`, in order. After a long stall (a suspended machine) the
        missed viewer events are dropped, not sent in a burst; going live or offline never is."""
        played = []
        while self._next.at <= now:
            planned, self._next = self._next, next(self._plan)
            stale = now - planned.at > 2 * self._mean_gap_s
            if not stale or planned.type in ("stream.online", "stream.offline"):
                played.append(planned)
        return played
