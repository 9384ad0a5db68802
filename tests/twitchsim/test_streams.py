"""The demo streams' shape, played for days in no time with seeded random sources: one session
live at a time (no online/offline flapping), hours long, a realistic mix at a low rate, and only
payloads with the documented fields."""

from __future__ import annotations

import random
from collections import Counter
from itertools import pairwise, takewhile
from typing import Any

import pytest

from tests.twitchsim.test_simulator import EVENT_FIELDS
from twitchsim.directory import Directory
from twitchsim.generator import generate_event
from twitchsim.streams import (
    ENDS,
    HOUR,
    MINUTE,
    OFFLINE_S,
    SESSION_S,
    Planned,
    StreamShow,
    stream_plan,
)

MEAN_GAP_S = 20.0  # the demo's default: 3 events a minute
SEEDS = range(5)


def _days(seed: int, days: float = 3, mean_gap_s: float = MEAN_GAP_S) -> list[Planned]:
    plan = stream_plan(random.Random(seed), start=0.0, mean_gap_s=mean_gap_s)
    return list(takewhile(lambda p: p.at < days * 24 * HOUR, plan))


def _sessions(events: list[Planned]) -> list[list[Planned]]:
    """The events from each stream.online to its stream.offline (both included)."""
    sessions: list[list[Planned]] = []
    for event in events:
        if event.type == "stream.online":
            sessions.append([])
        sessions[-1].append(event)
    return sessions


@pytest.mark.parametrize("seed", SEEDS)
def test_stream_goes_live_once_per_session_and_offline_only_hours_later(seed: int) -> None:
    events = _days(seed)
    switches = [e for e in events if e.type in ("stream.online", "stream.offline")]
    assert events[0].type == "stream.online"
    assert events[0].at <= 2 * MEAN_GAP_S + 60  # live soon after the first subscriber
    # Online and offline alternate: never twice the same, never a flap.
    assert all(a.type != b.type for a, b in pairwise(switches))
    sessions = _sessions(events)
    assert len(sessions) >= 8  # three days of 2-5 h sessions with 1-3 h breaks
    for session in sessions[:-1]:  # the last one may still be live at the end of the days
        assert session[-1].type == "stream.offline"
        assert [e.type for e in session].count("stream.online") == 1
        length = session[-1].at - session[0].at
        assert SESSION_S[0] <= length <= SESSION_S[1] + 15 * MINUTE
    for before, after in pairwise(sessions):
        assert after[0].at - before[-1].at >= OFFLINE_S[0]  # nothing happens while offline


@pytest.mark.parametrize("seed", SEEDS)
def test_stream_events_come_every_10_to_40_seconds_not_in_bursts(seed: int) -> None:
    events = _days(seed)
    for session in _sessions(events):
        gaps = [b.at - a.at for a, b in pairwise(session)]
        assert min(gaps) >= MEAN_GAP_S / 2
        live_s = session[-1].at - session[0].at
        assert 10 <= live_s / len(session) <= 40


@pytest.mark.parametrize("seed", SEEDS)
def test_stream_title_changes_at_most_every_ten_minutes(seed: int) -> None:
    for session in _sessions(_days(seed))[:-1]:
        updates = [e.at for e in session if e.type == "channel.update"]
        assert updates, "a session of hours changes its title now and then"
        assert all(b - a >= 10 * MINUTE for a, b in pairwise(updates))


def test_stream_mix_is_mostly_follows_with_rare_polls_predictions_and_hype_trains() -> None:
    counts = Counter(e.type for seed in SEEDS for e in _days(seed))
    total = sum(counts.values())
    viewer_events = [
        "channel.channel_points_custom_reward_redemption.add",
        "channel.subscribe",
        "channel.subscription.message",
        "channel.cheer",
        "channel.subscription.gift",
    ]
    assert counts.most_common(1)[0][0] == "channel.follow"
    assert 0.3 < counts["channel.follow"] / total < 0.5
    for type_ in viewer_events:
        assert counts["channel.raid"] < counts[type_] < counts["channel.follow"], type_
    for begin in ENDS:
        assert 0 < counts[begin] / total < 0.01, begin
    assert counts["channel.raid"] / total < 0.04


@pytest.mark.parametrize("seed", SEEDS)
def test_stream_ends_what_it_begins_one_at_a_time_before_going_offline(seed: int) -> None:
    for session in _sessions(_days(seed))[:-1]:
        for begin, (end, (shortest, _)) in ENDS.items():
            marks = [e for e in session if e.type in (begin, end)]
            # begin, end, begin, end...: each ended, never two at once.
            assert [e.type for e in marks] == [begin, end] * (len(marks) // 2)
            assert all(
                b.at - a.at >= shortest for a, b in zip(marks[::2], marks[1::2], strict=True)
            )


def test_stream_raids_out_only_as_its_last_act() -> None:
    outgoing = 0
    for seed in SEEDS:
        for session in _sessions(_days(seed))[:-1]:
            raids_out = [
                i for i, e in enumerate(session) if e == Planned(e.at, "channel.raid", False)
            ]
            assert raids_out in ([], [len(session) - 2])
            outgoing += len(raids_out)
    assert outgoing > 0


def test_stream_plan_is_the_same_under_the_same_seed() -> None:
    assert _days(7, days=1) == _days(7, days=1)
    assert _days(7, days=1) != _days(8, days=1)


def _play(show: StreamShow, until: float, step: float) -> list[tuple[Planned, dict[str, Any]]]:
    directory = Directory()
    streamer = directory.streamers[0]
    played = []
    now = 0.0
    while now < until:
        # Both players stop at `until`, whatever their step, so they have played the same span.
        now = min(now + step, until)
        for planned in show.due(now):
            event = generate_event(
                planned.type, streamer, directory, show.rng, raided=planned.raided
            )
            played.append((planned, event))
    return played


def test_stream_show_plays_the_same_events_however_its_wake_ups_fall() -> None:
    often = _play(StreamShow(random.Random(3), start=0.0, mean_gap_s=MEAN_GAP_S), HOUR, 1)
    seldom = _play(StreamShow(random.Random(3), start=0.0, mean_gap_s=MEAN_GAP_S), HOUR, 7)
    assert len(often) > 100
    assert [p for p, _ in often] == [p for p, _ in seldom]
    assert [e.get("user_id") for _, e in often] == [e.get("user_id") for _, e in seldom]


def test_stream_show_drops_a_stall_but_not_going_offline() -> None:
    show = StreamShow(random.Random(3), start=0.0, mean_gap_s=MEAN_GAP_S)
    assert [e.type for e in show.due(show.next_at)] == ["stream.online"]
    # Asleep for six hours: the session ended meanwhile; its offline comes, the rest does not.
    later = show.due(6 * HOUR)
    assert "stream.offline" in [e.type for e in later]
    assert len(later) < 10
    assert show.next_at > 6 * HOUR


@pytest.mark.parametrize("seed", SEEDS)
def test_stream_events_carry_the_documented_fields(seed: int) -> None:
    directory = Directory()
    streamer = directory.streamers[seed % len(directory.streamers)]
    rng = random.Random(seed)
    for planned in _days(seed, days=1):
        event = generate_event(planned.type, streamer, directory, rng, raided=planned.raided)
        assert EVENT_FIELDS[planned.type] <= set(event), planned.type
        if planned.type == "channel.raid":
            side = "to" if planned.raided else "from"
            assert event[f"{side}_broadcaster_user_id"] == streamer.id
        else:
            owner = "user_id" if planned.type == "user.update" else "broadcaster_user_id"
            # Charity campaigns name the channel broadcaster_id (Twitch's reference).
            assert event.get(owner, event.get("broadcaster_id")) == streamer.id
