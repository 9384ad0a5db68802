"""The event catalogue and the summary line of every type SEV listens to."""

from __future__ import annotations

import re
from typing import Any

import pytest

from sev.events import (
    BADGE_UNITS,
    CATALOGUE,
    CHEERMOTE_PREFIXES,
    CONNECT_SCOPES,
    DISPLAYS,
    FAMILIES,
    FAMILY_LABELS,
    OTHER,
    badges_of,
    broadcaster_id_of,
    build_event,
    display_of,
    display_table,
    is_twitch_login,
    summary_parts,
    wanted_types,
)
from sev.web.templating import STATIC_DIR, TEMPLATES_DIR
from twitchsim.catalog import CATALOG as SIM_CATALOG

B = {
    "broadcaster_user_id": "1",
    "broadcaster_user_login": "streamer",
    "broadcaster_user_name": "Streamer",
}
U = {"user_id": "2", "user_login": "viewer", "user_name": "Viewer"}

CASES: list[tuple[str, dict[str, Any], str, str | None]] = [
    (
        "stream.online",
        {**B, "type": "live", "started_at": "2026-11-28T10:00:00Z"},
        "Streamer went live",
        None,
    ),
    ("stream.offline", B, "Streamer went offline", None),
    (
        "channel.update",
        {**B, "title": "Speedrun", "category_name": "Celeste"},
        "Title: Speedrun · Celeste",
        None,
    ),
    (
        "channel.raid",
        {
            "from_broadcaster_user_id": "9",
            "from_broadcaster_user_login": "raider",
            "from_broadcaster_user_name": "Raider",
            "to_broadcaster_user_id": "1",
            "to_broadcaster_user_login": "streamer",
            "to_broadcaster_user_name": "Streamer",
            "viewers": 42,
        },
        "Raider raided with 42 viewers",
        "Raider",
    ),
    (
        "user.update",
        {**U, "user_id": "1", "user_name": "Streamer"},
        "Streamer updated their profile",
        "Streamer",
    ),
    ("channel.follow", {**B, **U}, "Viewer followed", "Viewer"),
    (
        "channel.subscribe",
        {**B, **U, "tier": "2000", "is_gift": False},
        "Viewer subscribed (Tier 2)",
        "Viewer",
    ),
    (
        "channel.subscription.gift",
        {
            **B,
            "user_id": None,
            "user_login": None,
            "user_name": None,
            "total": 5,
            "tier": "1000",
            "is_anonymous": True,
        },
        "An anonymous gifter gifted 5 Tier 1 subs",
        None,
    ),
    (
        "channel.subscription.message",
        {**B, **U, "tier": "1000", "cumulative_months": 12, "message": {"text": "hi"}},
        "Viewer resubscribed for 12 months (Tier 1): hi",
        "Viewer",
    ),
    (
        "channel.cheer",
        {**B, **U, "is_anonymous": False, "bits": 100, "message": "cheer100 gg"},
        "Viewer cheered 100 bits: cheer100 gg",
        "Viewer",
    ),
    (
        "channel.hype_train.begin",
        {**B, "level": 2, "total": 700},
        "Hype train started (level 2)",
        None,
    ),
    (
        "channel.hype_train.end",
        {**B, "level": 4, "total": 2800},
        "Hype train ended at level 4",
        None,
    ),
    ("channel.poll.begin", {**B, "title": "Best?"}, "Poll started: Best?", None),
    (
        "channel.poll.end",
        {
            **B,
            "title": "Best?",
            "choices": [{"title": "A", "votes": 1}, {"title": "B", "votes": 5}],
        },
        "Poll ended: Best? — “B” won",
        None,
    ),
    ("channel.prediction.begin", {**B, "title": "Win?"}, "Prediction started: Win?", None),
    (
        "channel.prediction.end",
        {
            **B,
            "title": "Win?",
            "winning_outcome_id": "o2",
            "outcomes": [{"id": "o1", "title": "Yes"}, {"id": "o2", "title": "No"}],
        },
        "Prediction ended: Win? — “No” won",
        None,
    ),
    (
        "channel.channel_points_custom_reward_redemption.add",
        {**B, **U, "reward": {"title": "Hydrate", "cost": 500}},
        "Viewer redeemed Hydrate (500 points)",
        "Viewer",
    ),
    (
        "channel.shoutout.receive",
        {
            **B,
            "from_broadcaster_user_id": "9",
            "from_broadcaster_user_login": "pal",
            "from_broadcaster_user_name": "Pal",
            "viewer_count": 10,
        },
        "Pal shouted out Streamer to 10 viewers",
        "Pal",
    ),
    (
        "channel.charity_campaign.donate",
        {
            **B,
            **U,
            "charity_name": "Good Cause",
            "amount": {"value": 1050, "decimal_places": 2, "currency": "USD"},
        },
        "Viewer donated 10.50 USD to Good Cause",
        "Viewer",
    ),
    (
        "channel.ad_break.begin",
        {
            **B,
            "duration_seconds": 60,
            "requester_user_id": "1",
            "requester_user_login": "streamer",
            "requester_user_name": "Streamer",
        },
        "60s ad break started",
        "Streamer",
    ),
    ("channel.brand_new_thing", {**B, **U}, "channel.brand_new_thing event by Viewer", "Viewer"),
]


@pytest.mark.parametrize(
    ("event_type", "data", "summary", "actor"), CASES, ids=[case[0] for case in CASES]
)
def test_build_event_summarizes(
    event_type: str, data: dict[str, Any], summary: str, actor: str | None
) -> None:
    event = build_event(
        message_id="m",
        event_type=event_type,
        version="1",
        broadcaster_id="1",
        data=data,
        message_timestamp="2026-11-28T10:11:12.123456789Z",
        received_at="2026-11-28T10:11:12.200Z",
    )
    assert event.summary == summary
    assert (event.actor.name if event.actor else None) == actor
    assert event.broadcaster.id == "1"


def test_catalogue_entries_match_the_simulated_twitch_s_types() -> None:
    for entry in CATALOGUE:
        spec = SIM_CATALOG[entry.type]
        assert (entry.version, entry.scope) == (spec.version, spec.scope), entry.type
        assert set(entry.also_scopes) == set(spec.also_scopes), entry.type
        assert set(entry.condition("7")) <= set(spec.condition), entry.type
    assert sum(1 for e in CATALOGUE if e.type == "channel.raid") == 2
    assert set(CONNECT_SCOPES) == {e.scope for e in CATALOGUE if e.scope}
    assert {"moderator:read:followers", "channel:read:goals"} <= set(CONNECT_SCOPES)


def test_wanted_types_adds_connected_types_by_scope() -> None:
    public = wanted_types(set())
    assert {e.type for e in public} == {
        "stream.online",
        "stream.offline",
        "channel.update",
        "channel.raid",
        "user.update",
    }
    with_bits = wanted_types({"bits:read"})
    assert {e.type for e in with_bits} - {e.type for e in public} == {
        "channel.cheer",
        "channel.bits.use",
    }


def test_follow_condition_names_the_broadcaster_as_moderator() -> None:
    follow = next(e for e in CATALOGUE if e.type == "channel.follow")
    assert follow.condition("7") == {"broadcaster_user_id": "7", "moderator_user_id": "7"}


def test_broadcaster_id_of_reads_each_condition_shape() -> None:
    assert broadcaster_id_of({"to_broadcaster_user_id": "5"}) == "5"
    assert broadcaster_id_of({"user_id": "6"}) == "6"
    assert broadcaster_id_of({}) is None


def test_unexpected_payload_shape_still_makes_an_event() -> None:
    event = build_event(
        message_id="m",
        event_type="channel.charity_campaign.donate",
        version="1",
        broadcaster_id="1",
        data={**B, "amount": "lots"},
        message_timestamp="2026-11-28T10:11:12Z",
        received_at="x",
    )
    assert "donated" in event.summary


# --- how the page shows each type ------------------------------------------------------------


def test_every_type_sev_listens_to_has_one_display() -> None:
    assert {entry.type for entry in CATALOGUE} == set(DISPLAYS)
    assert all(display.summary is not None for display in DISPLAYS.values())
    assert len(FAMILIES) == len(set(FAMILIES))
    assert {display.family for display in DISPLAYS.values()} | {OTHER.family} == set(FAMILIES)
    assert list(FAMILY_LABELS) == list(FAMILIES)


def test_unknown_type_shows_with_the_generic_family_and_label() -> None:
    display = display_of("channel.brand_new_thing")
    assert display is OTHER
    assert (display.family, display.label, display.icon) == ("other", "Event", "icon-other")
    assert display_table()["other"] == {
        "family": "other",
        "label": "Event",
        "icon": "icon-other",
        "badges": [],
        "cheermotes": False,
    }


def test_display_table_is_what_the_page_reads() -> None:
    table = display_table()
    assert set(table["types"]) == set(DISPLAYS)
    assert table["types"]["channel.raid"] == {
        "family": "raid",
        "label": "Raid",
        "icon": "icon-raid",
        "badges": [{"path": "viewers", "unit": "viewers"}],
        "cheermotes": False,
    }
    assert table["types"]["channel.cheer"]["badges"] == [{"path": "bits", "unit": "bits"}]
    assert table["types"]["channel.cheer"]["cheermotes"] is True
    assert table["cheermotes"] == list(CHEERMOTE_PREFIXES)


@pytest.mark.parametrize(
    ("event_type", "data"),
    [(case[0], case[1]) for case in CASES if case[0] in DISPLAYS],
    ids=[case[0] for case in CASES if case[0] in DISPLAYS],
)
def test_every_badge_finds_its_amount_in_the_type_s_example(
    event_type: str, data: dict[str, Any]
) -> None:
    display = DISPLAYS[event_type]
    assert all(badge.unit in BADGE_UNITS for badge in display.badges)
    assert [b["unit"] for b in badges_of(event_type, data)] == [b.unit for b in display.badges]


REDEEM = "channel.channel_points_custom_reward_redemption.add"
CHARITY = "channel.charity_campaign.donate"


def _money(value: int, places: int, currency: str) -> dict[str, Any]:
    return {"amount": {"value": value, "decimal_places": places, "currency": currency}}


@pytest.mark.parametrize(
    ("event_type", "data", "texts"),
    [
        ("channel.cheer", {"bits": 1}, ["1 bit"]),
        ("channel.cheer", {"bits": 1500}, ["1,500 bits"]),
        ("channel.subscription.gift", {"total": 5, "tier": "2000"}, ["5 gifts", "Tier 2"]),
        (
            "channel.subscription.message",
            {"tier": "prime", "cumulative_months": 1},
            ["Prime", "1 month"],
        ),
        ("channel.raid", {"viewers": 1234567}, ["1,234,567 viewers"]),
        (REDEEM, {"reward": {"cost": 500}}, ["500 points"]),
        (CHARITY, _money(123456, 2, "USD"), ["1,234.56 USD"]),
        (CHARITY, _money(500, 0, "JPY"), ["500 JPY"]),
        ("channel.ad_break.begin", {"duration_seconds": 90}, ["90 s"]),
        ("channel.hype_train.begin", {"level": 3}, ["Level 3"]),
        # Not the documented shape: no badge, never an error.
        ("channel.cheer", {"bits": True}, []),
        ("channel.cheer", {"bits": -5}, []),
        ("channel.cheer", {"bits": "100"}, []),
        ("channel.cheer", {"bits": 2**53}, []),
        ("channel.subscribe", {"tier": "4000"}, []),
        (REDEEM, {"reward": "x"}, []),
        (CHARITY, _money(5, 99, "USD"), []),
        (CHARITY, _money(5, 2, "<b>"), []),
        ("channel.follow", {"bits": 100}, []),
        ("channel.brand_new_thing", {"bits": 100}, []),
    ],
)
def test_badges_word_each_amount(event_type: str, data: dict[str, Any], texts: list[str]) -> None:
    assert [badge["text"] for badge in badges_of(event_type, data)] == texts


def test_cheermotes_in_a_cheer_become_bits_badges_and_nothing_else_does() -> None:
    summary = "Ann cheered 1100 bits: Cheer1000 great <b>run</b> kappa100 Cheer0 abc100 Cheer100!"
    assert summary_parts("channel.cheer", summary) == [
        {"text": "Ann cheered 1100 bits: "},
        {"unit": "bits", "text": "1,000 bits", "word": "Cheer1000"},
        {"text": " great <b>run</b> "},
        {"unit": "bits", "text": "100 bits", "word": "kappa100"},
        {"text": " Cheer0 abc100 Cheer100!"},
    ]
    assert summary_parts("channel.follow", "Cheer100 followed") == [{"text": "Cheer100 followed"}]


def test_every_family_has_one_colour_rule_and_an_icon() -> None:
    css = (STATIC_DIR / "sev.css").read_text()
    rules = re.findall(r'^\.event\[data-family="(\w+)"\] \{([^}]*)\}', css, re.MULTILINE)
    # "other" takes the .event defaults.
    assert sorted(family for family, _ in rules) == sorted(set(FAMILIES) - {"other"})
    assert all("--c-light:" in body and "--c-dark:" in body for _, body in rules)
    assert css.count("data-family") == len(rules)  # no second list (dark mode, say)
    page = (TEMPLATES_DIR / "streamer.html").read_text()
    icons = set(re.findall(r'<symbol id="(icon-[\w-]+)"', page))
    assert {display.icon for display in (*DISPLAYS.values(), OTHER)} == icons


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("cool_user_42", True),
        ("", False),
        ("Cool_User", False),
        ("a b", False),
        ("a/b", False),
        ("x" * 26, False),
        ("ok\n", False),
        ("<b>", False),
        (None, False),
        (5, False),
    ],
)
def test_only_a_twitch_login_is_put_in_a_link(value: Any, ok: bool) -> None:
    assert is_twitch_login(value) is ok
