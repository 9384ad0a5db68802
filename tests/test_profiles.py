"""Helix users as pages see them (sev/profiles.py): the shareable page of a channel SEV does not
follow yet, and what it costs Twitch; against real processes (SEV and a standalone simulated
Twitch), in Chromium where a person clicks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from playwright.async_api import Browser

from sev.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SIMULATOR_MOUNT
from sev.profiles import (
    TWITCH_IMAGES,
    LookupsExhausted,
    Profiles,
    TtlCache,
    face_src,
    safe_image_url,
)
from sev.twitch import TwitchClient
from sev.web.security import policy
from tests.support.browser import open_page, wait_live
from tests.support.login import connect_channel, csrf_token, log_in
from tests.support.polling import eventually
from tests.support.processes import SevProcess, SimulatorProcess, TwitchControl

pytestmark = pytest.mark.browser

VIEWER = "viewer_vic"
UNFOLLOWED = "cozycrumpet"  # a demo streamer no viewer of these tests favours
UNFOLLOWED_TOO = "speedrunsally"
UNFOLLOWED_THIRD = "bytebard"
STREAMER = "lofi_llama"  # connects their channel in the demo, so follows and cheers come
FOLLOWER: dict[str, Any] = {
    "user_id": "42000003",
    "user_login": "chat_champ",
    "user_name": "Chat_Champ",
}


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


async def test_lookups_of_logins_not_cached_are_bounded_per_minute(pair: Pair) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        twitch = TwitchClient(
            http,
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            api_url=f"{pair.simulator.url}/helix",
            auth_url=f"{pair.simulator.url}/oauth2",
        )
        profiles = Profiles(twitch, login_lookups_per_minute=2)
        assert (await profiles.by_login("pixelpaladin")) is not None
        assert (await profiles.by_login("made_up_one")) is None
        with pytest.raises(LookupsExhausted):
            await profiles.by_login("made_up_two")
        # What is cached still answers, without asking.
        assert (await profiles.by_login("made_up_one")) is None
        assert (await profiles.by_login("pixelpaladin")) is not None
    assert not [q for q in pair.helix_queries() if "made_up_two" in q]


async def test_each_client_spends_its_own_share_of_the_lookups_then_the_process_cap_holds(
    pair: Pair,
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        twitch = TwitchClient(
            http,
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            api_url=f"{pair.simulator.url}/helix",
            auth_url=f"{pair.simulator.url}/oauth2",
        )
        profiles = Profiles(twitch, login_lookups_per_minute=3, client_lookups_per_minute=1)
        assert (await profiles.by_login("share_one", "ip:203.0.113.1")) is None
        with pytest.raises(LookupsExhausted):
            await profiles.by_login("share_two", "ip:203.0.113.1")
        # Another address, and a logged-in user, each have a share of their own.
        assert (await profiles.by_login(UNFOLLOWED_TOO, "ip:198.51.100.1")) is not None
        assert (await profiles.by_login("share_three", "user:501")) is None
        # Three lookups in all: the process's cap, whoever asks next.
        with pytest.raises(LookupsExhausted):
            await profiles.by_login("share_four", "ip:198.51.100.2")
        assert (await profiles.by_login("share_one", "ip:198.51.100.2")) is None  # cached
    assert not [q for q in pair.helix_queries() if "share_two" in q or "share_four" in q]


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


# --- faces: the actors' pictures ---------------------------------------------------------------


class Demo:
    """SEV in demo mode (the simulated Twitch mounted at /_twitch, its pictures on SEV's origin),
    the streamer's channel connected and favoured by a viewer."""

    def __init__(self, tmp: Path) -> None:
        self.sev = SevProcess(tmp)  # no Twitch credentials: demo mode
        self.twitch = TwitchControl(self.sev.url + SIMULATOR_MOUNT)
        self.cookie = ""  # the viewer's session


async def _favour_connected_streamer(demo: Demo) -> str:
    """The streamer connects their channel and the viewer favours it; the viewer's cookie."""
    async with httpx.AsyncClient(timeout=20) as streamer, httpx.AsyncClient(timeout=20) as viewer:
        await log_in(streamer, demo.sev.url, STREAMER)
        assert (await connect_channel(streamer, demo.sev.url, STREAMER)).status_code == 303
        await log_in(viewer, demo.sev.url, VIEWER)
        token = await csrf_token(viewer, demo.sev.url)
        response = await viewer.post(
            f"{demo.sev.url}/favorite", data={"streamer": STREAMER, "csrf_token": token}
        )
        assert response.status_code == 303
        streamer_id = demo.twitch.account_id(STREAMER)
        await eventually(
            lambda: {"channel.follow", "channel.cheer"} <= demo.twitch.enabled_types(streamer_id),
            timeout=20,
            what="the follow and cheer subscriptions",
        )
        return str(viewer.cookies["sev_session"])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo process, shared by the module."""
    started = Demo(tmp_path_factory.mktemp("faces"))
    started.sev.start()
    try:
        started.cookie = asyncio.run(_favour_connected_streamer(started))
        yield started
    finally:
        started.sev.stop()


async def test_events_show_their_actors_picture_live_and_after_a_reload(
    demo: Demo, browser: Browser
) -> None:
    cookie = demo.cookie
    follower_picture = f"{SIMULATOR_MOUNT}/profile-images/{FOLLOWER['user_id']}.svg"
    watched = await open_page(browser)
    page = watched.page
    await page.context.add_cookies([{"name": "sev_session", "value": cookie, "url": demo.sev.url}])
    await page.goto(f"{demo.sev.url}/streamers/{STREAMER}")
    await wait_live(page)

    [follow] = demo.twitch.trigger("channel.follow", STREAMER, **FOLLOWER)
    # Anonymous: whatever its user fields say, the cheerer stays unnamed and faceless.
    [cheer] = demo.twitch.trigger("channel.cheer", STREAMER, is_anonymous=True, **FOLLOWER)
    [online] = demo.twitch.trigger("stream.online", STREAMER)  # no actor at all
    for attempt in ("live", "reload"):
        for message_id in (follow, cheer, online):
            await page.wait_for_selector(f'#events li[data-id="{message_id}"]')
        face = page.locator(f'#events li[data-id="{follow}"] img.event-face')
        assert await face.count() == 1, attempt
        for name, value in {
            "src": follower_picture,
            "alt": "",
            "width": "16",
            "height": "16",
            "loading": "lazy",
            "referrerpolicy": "no-referrer",
        }.items():
            assert await face.get_attribute(name) == value, (attempt, name)
        # The picture really loaded (same origin, allowed by the page policy).
        await page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=await face.element_handle()
        )
        for faceless in (cheer, online):
            assert await page.locator(f'#events li[data-id="{faceless}"] img').count() == 0
        if attempt == "live":
            await page.reload()
            await wait_live(page)
    assert watched.errors == []

    async with httpx.AsyncClient(timeout=10, cookies={"sev_session": cookie}) as client:
        body = (await client.get(f"{demo.sev.url}/api/streamers/{STREAMER}/events")).json()
    actors = {e["id"]: e["actor"] for e in body["events"]}
    assert actors[follow]["profile_image_url"] == follower_picture
    assert actors[cheer] is None and actors[online] is None


async def test_pictures_are_looked_up_in_one_batch_and_then_cached(demo: Demo) -> None:
    followers = [a for a in _demo_accounts(demo) if a["login"] != STREAMER][:6]
    sent = [
        demo.twitch.trigger(
            "channel.follow",
            STREAMER,
            user_id=a["id"],
            user_login=a["login"],
            user_name=a["display_name"],
        )[0]
        for a in followers
    ]
    pictures = {f"{SIMULATOR_MOUNT}/profile-images/{a['id']}.svg" for a in followers}
    ids = {a["id"] for a in followers}
    async with httpx.AsyncClient(timeout=10, cookies={"sev_session": demo.cookie}) as client:

        async def faces() -> set[str]:
            response = await client.get(
                f"{demo.sev.url}/api/streamers/{STREAMER}/events", params={"limit": 100}
            )
            events = [e for e in response.json()["events"] if e["id"] in sent]
            if len(events) < len(sent):
                return set()
            return {e["actor"]["profile_image_url"] for e in events}

        async def all_there() -> bool:
            return await faces() == pictures

        await eventually(all_there, what="the follows, with pictures")
        # A fresh process knows no picture: the first read asks Helix once for all six.
        demo.sev.restart()
        for _ in range(3):
            assert await faces() == pictures
            page = await client.get(f"{demo.sev.url}/streamers/{STREAMER}")
            assert page.status_code == 200
            for picture in pictures:
                assert f'src="{picture}"' in page.text
    asked = [q for q in _helix_users_by_id(demo) if ids & set(_ids_in(q))]
    assert len(asked) == 1, asked
    assert set(_ids_in(asked[0])) >= ids


def _ids_in(query: str) -> list[str]:
    return [value for key, value in parse_qsl(query) if key == "id"]


def _demo_accounts(demo: Demo) -> list[dict[str, Any]]:
    response = httpx.get(f"{demo.twitch.url}/control/accounts", timeout=10)
    response.raise_for_status()
    return list(response.json()["data"])


def _helix_users_by_id(demo: Demo) -> list[str]:
    """The queries of the Helix Get Users requests by id (the pictures') so far."""
    response = httpx.get(f"{demo.twitch.url}/control/requests", timeout=10)
    response.raise_for_status()
    return [
        str(r["query"])
        for r in response.json()["data"]
        if r["path"].endswith("/helix/users") and "id=" in str(r["query"])
    ]


HOSTILE_PICTURES = [
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)",
    "data:image/svg+xml;base64,PHN2Zz4=",
    "https://evil.example/x.png",
    "https://static-cdn.jtvnw.net.evil.example/x.png",
    "https://static-cdn.jtvnw.net@evil.example/x.png",
    "http://static-cdn.jtvnw.net/x.png",
    "//static-cdn.jtvnw.net/x.png",
    'https://static-cdn.jtvnw.net/x.png" onerror="alert(1)',
    "https://static-cdn.jtvnw.net/x\n.png",
    "http://127.0.0.1:8000/_twitch/profile-images/1.svg",  # not SEV's demo address
    "/_twitch/profile-images/../../logout",
    # Browsers resolve percent-encoded dot segments too: these would reach /_twitch/control.
    "/_twitch/profile-images/%2e%2e/control/subscriptions",
    "http://localhost:8000/_twitch/profile-images/%2E%2e/control/accounts",
    "/_twitch/profile-images/.%2e/control/accounts",
    "https://static-cdn.jtvnw.net/%2e%2e/x.png",
    "",
]


@pytest.mark.parametrize("url", HOSTILE_PICTURES)
def test_a_hostile_picture_address_is_never_used(url: str) -> None:
    demo_images = "http://localhost:8000/_twitch/profile-images"
    assert safe_image_url(url, demo_images) is None
    assert safe_image_url(url) is None
    assert face_src(url) is None


def test_pictures_on_twitchs_cdn_or_the_demos_own_address_are_used() -> None:
    cdn = f"{TWITCH_IMAGES}/jtv_user_pictures/8a6381c7-profile_image-300x300.png"
    assert safe_image_url(cdn) == cdn
    assert face_src(cdn) == cdn
    demo_images = "http://localhost:8000/_twitch/profile-images"
    assert safe_image_url(f"{demo_images}/41000001.svg", demo_images) == (
        "/_twitch/profile-images/41000001.svg"
    )
    assert safe_image_url(f"{demo_images}/41000001.svg") is None  # not in demo mode


def test_page_policy_changed_only_its_pictures_to_sevs_own_and_twitchs_cdn() -> None:
    before = (
        "default-src 'self'; "
        "script-src 'self' https://embed.twitch.tv https://player.twitch.tv; "
        "frame-src https://embed.twitch.tv https://player.twitch.tv https://www.twitch.tv; "
        "img-src 'self' data: https:; "
        "style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self' https://id.twitch.tv; frame-ancestors 'none'"
    )
    now = policy("https://id.twitch.tv/oauth2")
    assert now == before.replace("img-src 'self' data: https:", f"img-src 'self' {TWITCH_IMAGES}")
