"""Every type in the catalogue appears in each place a new EventSub type must appear, as the
catalogue's docstring lists them (sev/events/catalogue.py): a type added without, say, its
simulated payload fails here, naming each place it is missing from."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from sev.events import (
    BADGE_UNITS,
    CATALOGUE,
    FAMILIES,
    FAMILY_LABELS,
    EventType,
    catalogue,
    display_of,
    summaries,
)
from tests.events.test_events import CASES
from tests.test_twitch_documented import DOCUMENTED_EVENTS
from tests.twitchsim.test_simulator import EVENT_FIELDS
from twitchsim.catalog import CATALOG as SIM_CATALOG
from twitchsim.directory import Directory
from twitchsim.generator import generate_event
from twitchsim.streams import stream_plan
from twitchsim.triggers import ALIASES

ROOT = Path(__file__).resolve().parents[2]  # tests/events/ is two levels down

# Types twitch-cli has no trigger name for (docs/TWITCH.md says so for each): the simulator
# triggers them by their EventSub name alone.
WITHOUT_TWITCH_CLI_ALIAS = frozenset(
    {
        "channel.bits.use",
        "channel.channel_points_automatic_reward_redemption.add",
        "channel.charity_campaign.start",
        "channel.charity_campaign.progress",
        "channel.charity_campaign.stop",
    }
)


def _read_all(folder: str, pattern: str) -> str:
    return "\n".join(path.read_text() for path in sorted((ROOT / folder).rglob(pattern)))


def _badge_words() -> set[str]:
    """The units the page's script words (static/feed.js BADGE_WORDS), wherever it lives."""
    block = re.search(r"BADGE_WORDS = \{\n(.*?)\n\};", _read_all("static", "*.js"), re.DOTALL)
    return set(re.findall(r"^  (\w+)\s*[:,]", block.group(1), re.MULTILINE)) if block else set()


def _coloured_families() -> set[str]:
    return set(re.findall(r'\.event\[data-family="(\w+)"\]', _read_all("static", "*.css")))


def _icons() -> set[str]:
    return set(re.findall(r'<symbol id="(icon-[\w-]+)"', _read_all("templates", "*.html")))


def _documented_types() -> set[tuple[str, str]]:
    """(type, version) of each row of docs/TWITCH.md "Types SEV uses"; a row may shorten a
    type after the first to its last part (`channel.poll.begin` / `.end`)."""
    text = (ROOT / "docs" / "TWITCH.md").read_text()
    section = text.split("\n## Types SEV uses\n", 1)[-1].split("\n## ", 1)[0]
    found: set[tuple[str, str]] = set()
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) < 2:
            continue
        previous = ""
        for name in re.findall(r"`([\w.]+)`", cells[0]):
            if name.startswith("."):
                name = previous.rsplit(".", 1)[0] + name
            found.add((name, cells[1]))
            previous = name
    return found


def _played_types() -> set[str]:
    """The types the demo's streams play, over a plan long enough for the rarest of them."""
    plan = stream_plan(random.Random("checklist"), start=0.0, mean_gap_s=60.0)
    return {planned.type for planned in itertools.islice(plan, 100_000)}


_DIRECTORY = Directory()
_BROADCASTER = next(account for account in _DIRECTORY if account.streamer)


def _simulated_payload(entry: EventType) -> bool:
    try:
        generate_event(entry.type, _BROADCASTER, _DIRECTORY, random.Random(0))
    except KeyError:
        return False
    return True


BADGE_WORDS = _badge_words()
COLOURED = _coloured_families()
ICONS = _icons()
DOCUMENTED = _documented_types()
PLAYED = _played_types()
ALIASED = {alias.type for alias in ALIASES} | WITHOUT_TWITCH_CLI_ALIAS
SUMMARY_TESTED = {case[0] for case in CASES} | set(DOCUMENTED_EVENTS)

# Each place a type must appear: where (its file first) and whether the type is there.
PLACES: tuple[tuple[str, Callable[[EventType], bool]], ...] = (
    (
        "sev/events/summaries.py: the display's summary function",
        lambda e: getattr(display_of(e.type).summary, "__module__", "") == summaries.__name__,
    ),
    (
        "sev/events/display.py FAMILIES and FAMILY_LABELS: the display's family",
        lambda e: display_of(e.type).family in set(FAMILIES) & set(FAMILY_LABELS),
    ),
    (
        "sev/events/display.py BADGE_UNITS: each badge's unit",
        lambda e: all(badge.unit in BADGE_UNITS for badge in display_of(e.type).badges),
    ),
    (
        "static/feed.js BADGE_WORDS: each badge's unit",
        lambda e: all(badge.unit in BADGE_WORDS for badge in display_of(e.type).badges),
    ),
    (
        'static/sev.css: an .event[data-family="..."] rule for the display\'s family',
        lambda e: display_of(e.type).family in COLOURED,
    ),
    (
        'templates/streamer.html: a <symbol id="..."> for the display\'s icon',
        lambda e: display_of(e.type).icon in ICONS,
    ),
    ("twitchsim/catalog.py CATALOG: the type's spec", lambda e: e.type in SIM_CATALOG),
    ("twitchsim/generator.py BUILDERS: a payload", _simulated_payload),
    ("twitchsim/streams.py MIX, ENDS or PROGRESS: the demo plays it", lambda e: e.type in PLAYED),
    (
        "twitchsim/triggers.py ALIASES: twitch-cli's trigger name (or WITHOUT_TWITCH_CLI_ALIAS "
        "in tests/events/test_catalogue_checklist.py)",
        lambda e: e.type in ALIASED,
    ),
    (
        "tests/twitchsim/test_simulator.py EVENT_FIELDS: the payload's documented fields",
        lambda e: e.type in EVENT_FIELDS,
    ),
    (
        "tests/events/test_events.py CASES or tests/test_twitch_documented.py DOCUMENTED_EVENTS: "
        "an example and its summary",
        lambda e: e.type in SUMMARY_TESTED,
    ),
    (
        'docs/TWITCH.md "Types SEV uses": a row with the type and its version',
        lambda e: (e.type, e.version) in DOCUMENTED,
    ),
)


@pytest.mark.parametrize("entry", CATALOGUE, ids=[entry.key for entry in CATALOGUE])
def test_catalogue_type_appears_in_every_place(entry: EventType) -> None:
    missing = [where for where, present in PLACES if not present(entry)]
    assert not missing, f"{entry.type} is missing from:\n" + "\n".join(
        f"  - {where}" for where in missing
    )


def test_catalogue_docstring_lists_every_place() -> None:
    listed = catalogue.__doc__ or ""
    for where, _ in PLACES:
        for path in re.findall(r"[\w/]+\.(?:py|js|css|html|md)", where):
            assert path in listed, f"sev/events/catalogue.py's checklist does not name {path}"


def test_types_without_a_twitch_cli_alias_are_catalogue_types_with_none() -> None:
    catalogued = {entry.type for entry in CATALOGUE}
    assert catalogued >= WITHOUT_TWITCH_CLI_ALIAS
    assert not WITHOUT_TWITCH_CLI_ALIAS & {alias.type for alias in ALIASES}
