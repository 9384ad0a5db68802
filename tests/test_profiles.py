"""Helix users as pages see them (sev/profiles.py): the shareable page of a channel SEV does not
follow yet, and what it costs Twitch; against real processes (SEV and a standalone simulated
Twitch), in Chromium where a person clicks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser

from sev.profiles import TtlCache
from tests.support.browser import open_page, wait_live
from tests.support.login import log_in
from tests.support.polling import eventually
from tests.support.processes import SevProcess, SimulatorProcess

pytestmark = pytest.mark.browser

VIEWER = "viewer_vic"
UNFOLLOWED = "cozycrumpet"  # a demo streamer no viewer of these tests favours
UNFOLLOWED_TOO = "speedrunsally"
UNFOLLOWED_THIRD = "bytebard"


class Pair:
    """A standalone simulated Twitch and SEV pointing at it."""

    def __init__(self, tmp: Path) -> None:
        self.simulator = SimulatorProcess(tmp)
        self.sev = SevProcess.against(self.simulator, tmp)

    def helix_queries(self, path: str = "/helix/users") -> list[str]:
        """The query strings of the Helix requests to `path` the simulated Twitch received."""
        response = httpx.get(f"{self.simulator.url}/control/requests", timeout=10)
        response.raise_for_status()
        requests: list[dict[str, Any]] = response.json()["data"]
        return [str(r["query"]) for r in requests if r["path"] == path]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """The processes, shared by the module."""
    started = Pair(tmp_path_factory.mktemp("profiles"))
    started.simulator.start()
    try:
        started.sev.start()
        try:
            yield started
        finally:
            started.sev.stop()
    finally:
        started.simulator.stop()


async def _viewer_cookie(sev: SevProcess, login: str = VIEWER) -> str:
    async with httpx.AsyncClient(timeout=20) as client:
        await log_in(client, sev.url, login)
        return str(client.cookies["sev_session"])


async def test_unfollowed_channel_page_offers_to_set_it_as_favourite(
    pair: Pair, browser: Browser
) -> None:
    watched = await open_page(browser)
    page = watched.page
    await page.context.add_cookies(
        [{"name": "sev_session", "value": await _viewer_cookie(pair.sev), "url": pair.sev.url}]
    )
    response = await page.goto(f"{pair.sev.url}/streamers/{UNFOLLOWED}")
    assert response is not None and response.status == 200
    assert await page.locator("h1").inner_text() == "CozyCrumpet"
    assert (
        "Cozy games and a cup of tea." in await page.locator(".streamer-description").inner_text()
    )
    assert await page.locator("#embed").get_attribute("data-channel") == UNFOLLOWED
    assert await page.locator("#events li").count() == 0  # no events before anyone follows
    button = page.get_by_role("button", name="Set as favourite")
    await button.click()
    await page.wait_for_url(f"{pair.sev.url}/streamers/{UNFOLLOWED}")
    await wait_live(page)  # now the streamer page proper, receiving events
    assert await page.locator("#events-empty").is_visible()
    assert watched.errors == []


async def test_unfollowed_channel_page_asks_a_visitor_to_log_in_first(pair: Pair) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{pair.sev.url}/streamers/{UNFOLLOWED_TOO}")
    assert response.status_code == 200
    assert "SpeedrunSally" in response.text
    assert "Set as favourite" not in response.text  # no form for a visitor
    assert f'href="/login?next=/streamers/{UNFOLLOWED_TOO}"' in response.text
    assert "Log in with Twitch to follow" in response.text


async def test_unfollowed_channel_page_login_link_comes_back_to_it(pair: Pair) -> None:
    async with httpx.AsyncClient(timeout=20) as client:
        await log_in(client, pair.sev.url, VIEWER, next_url=f"/streamers/{UNFOLLOWED_TOO}")
        response = await client.get(f"{pair.sev.url}/streamers/{UNFOLLOWED_TOO}")
    assert response.status_code == 200
    assert "Set as favourite" in response.text


async def test_streamer_page_for_a_login_twitch_does_not_know_is_a_404_page(pair: Pair) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{pair.sev.url}/streamers/nobody_at_all")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Twitch has no channel called nobody_at_all." in response.text
    assert 'class="card problem"' in response.text


@pytest.mark.parametrize(
    ("login", "stem"),
    [
        ("Not-A-Login", "not-a-login"),
        ("a" * 26, "a" * 26),  # one letter too long
        ("dot.dot", "dot.dot"),
        ("%3Cscript%3E", "script"),
    ],
)
async def test_streamer_page_for_a_malformed_login_asks_twitch_nothing(
    pair: Pair, login: str, stem: str
) -> None:
    fence = f"fence_{len(login)}"
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{pair.sev.url}/streamers/{login}")
        # A well-formed unknown login after it: once Helix has seen that one, it would have
        # seen the malformed one before (one request after the other).
        assert (await client.get(f"{pair.sev.url}/streamers/{fence}")).status_code == 404
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "is not a Twitch login" in response.text
    assert "<script>" not in response.text
    await eventually(
        lambda: any(f"login={fence}" in q for q in pair.helix_queries()), what="the fence's lookup"
    )
    assert not [q for q in pair.helix_queries() if stem in q.lower()]


async def test_repeated_views_of_an_unfollowed_or_unknown_channel_ask_helix_once(
    pair: Pair,
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(4):
            known = await client.get(f"{pair.sev.url}/streamers/{UNFOLLOWED_THIRD}")
            unknown = await client.get(f"{pair.sev.url}/streamers/still_nobody")
            assert (known.status_code, unknown.status_code) == (200, 404)
    queries = pair.helix_queries()
    assert len([q for q in queries if f"login={UNFOLLOWED_THIRD}" in q]) == 1
    assert len([q for q in queries if "login=still_nobody" in q]) == 1


def test_cache_forgets_the_least_recently_used_beyond_its_size_and_expires() -> None:
    now = [0.0]
    cache: TtlCache[str | None] = TtlCache(2, 10.0, lambda: now[0])
    cache.put("a", "A")
    cache.put("b", None)  # "no such user" is an answer too
    assert cache.get("a") == (True, "A")  # a is now the most recently used
    cache.put("c", "C")
    assert len(cache) == 2
    assert cache.get("b") == (False, None)
    assert cache.get("a") == (True, "A")
    now[0] = 10.0
    assert cache.get("a") == (False, None)
    assert cache.get("c") == (False, None)
