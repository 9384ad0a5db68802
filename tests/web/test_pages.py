"""The pages, in Debian's Chromium (Playwright) and over HTTP, against real processes.

SEV (`uvicorn sev.app:app`) runs against a standalone simulated Twitch (`python -m twitchsim`),
so Twitch outlives SEV when a test restarts it and its retried deliveries reach the new process.
The browser logs in by clicking through the simulated Twitch's consent page; set-up that is not
under test (the streamer connecting their channel, another viewer who favours the streamer
first) goes through tests/support/login.py over HTTP. Twitch's embed script cannot load here (no
network): the page must show its placeholder instead.

Screenshots go to test-artifacts/ (kept by CI, ignored by git).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from markupsafe import escape
from playwright.async_api import Browser, Page

from sev.config import SIMULATOR_MOUNT
from sev.events import CATALOGUE, display_table
from sev.store import MAX_CATCH_UP
from sev.streamers import CONNECTION_STATES, KIND_STATES, PAGE_SIZE, REVOKED, STREAM_STATES

# The page helpers are shared with other browser tests; this module keeps its short names.
from tests.support.browser import ColorScheme, checked_account
from tests.support.browser import appears as _appears
from tests.support.browser import ids_on_page as _ids_on_page
from tests.support.browser import log_in_through_twitch as _log_in_through_twitch
from tests.support.browser import open_page as _open
from tests.support.browser import seqs_on_page as _seqs_on_page
from tests.support.browser import wait_live as _wait_live
from tests.support.login import connect_channel, csrf_token, log_in, set_favourite
from tests.support.polling import eventually
from tests.support.processes import ROOT, SevProcess, SimulatorProcess, TwitchControl
from tests.support.services import require

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts"
STREAMER = "pixelpaladin"  # a demo account of the simulated Twitch; connects their channel
VIEWER = "viewer_vic"  # logs in through the browser
OTHER_VIEWER = "lurker_lou"  # favours the streamer first, so events are stored before the page
LEAVER = "chat_champ"  # logs out in one tab while another is open
CONNECTING = "speedrunsally"  # connects their channel in the browser
XSS = "<img src=x onerror=alert(1)>"
STORED_TYPES = ("stream.online", "channel.follow", "channel.subscribe")
RAIDER: dict[str, Any] = {
    "from_broadcaster_user_id": "41000005",
    "from_broadcaster_user_login": "captain_chaos",
    "from_broadcaster_user_name": "Captain_Chaos",
}
LIVE_TYPES = (
    "channel.follow",
    "channel.cheer",
    "channel.raid",
    "channel.update",
    "channel.subscription.gift",
    "channel.channel_points_custom_reward_redemption.add",
)
SETUP_TIMEOUT_S = 20.0


# --- processes ------------------------------------------------------------------------------


@dataclass
class Stage:
    """A simulated Twitch and SEV, the streamer's channel connected, some events stored."""

    simulator: SimulatorProcess
    sev: SevProcess
    stored: list[str] = field(default_factory=list)


def _start_pair(tmp: Path) -> tuple[SimulatorProcess, SevProcess]:
    simulator = SimulatorProcess(tmp)
    simulator.start()
    sev = SevProcess.against(simulator, tmp, env={"SEV_RECONCILE_INTERVAL_S": "2"})
    try:
        sev.start()
    except BaseException:
        simulator.stop()
        raise
    return simulator, sev


# (simulator, broadcaster id) and (simulator, login), shared through the simulator's remote.
_enabled_types = TwitchControl.enabled_types
_account_id = TwitchControl.account_id


async def _prepare(sev: SevProcess, *, connect: bool) -> None:
    """The streamer connects their channel (optional); another viewer favours them."""
    async with httpx.AsyncClient(timeout=20) as streamer, httpx.AsyncClient(timeout=20) as other:
        if connect:
            await log_in(streamer, sev.url, STREAMER)
            response = await connect_channel(streamer, sev.url, STREAMER)
            assert response.status_code == 303, response.text[:500]
        await log_in(other, sev.url, OTHER_VIEWER)
        token = await csrf_token(other, sev.url)
        response = await other.post(
            f"{sev.url}/favorite", data={"streamer": STREAMER, "csrf_token": token}
        )
        assert response.status_code == 303, response.text[:500]


def _stored_ids(sev: SevProcess, cookies: httpx.Cookies) -> list[str]:
    response = httpx.get(
        f"{sev.url}/api/streamers/{STREAMER}/events", params={"limit": 100}, cookies=cookies
    )
    response.raise_for_status()
    return [event["id"] for event in response.json()["events"]]


async def _session_cookies(sev: SevProcess, login: str) -> httpx.Cookies:
    async with httpx.AsyncClient(timeout=20) as client:
        await log_in(client, sev.url, login)
        return client.cookies


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    """The shared processes; the streamer's channel is connected and three events are stored."""
    simulator, sev = _start_pair(tmp_path_factory.mktemp("pages"))
    try:
        asyncio.run(_prepare(sev, connect=True))
        streamer_id = _account_id(simulator, STREAMER)
        wanted = {"stream.online", "channel.follow", "channel.subscribe", "channel.cheer"}
        asyncio.run(
            eventually(
                lambda: wanted <= _enabled_types(simulator, streamer_id),
                timeout=SETUP_TIMEOUT_S,
                what="enabled subscriptions",
            )
        )
        stored = [i for t in STORED_TYPES for i in simulator.trigger(t, STREAMER)]
        assert len(stored) == len(STORED_TYPES)
        cookies = asyncio.run(_session_cookies(sev, OTHER_VIEWER))
        asyncio.run(
            eventually(
                lambda: set(stored) <= set(_stored_ids(sev, cookies)),
                timeout=SETUP_TIMEOUT_S,
                what="stored events",
            )
        )
        yield Stage(simulator, sev, stored)
    finally:
        sev.stop()
        simulator.stop()


@dataclass
class Demo:
    """SEV in demo mode (its banner shown), the streamer's channel connected."""

    sev: SevProcess
    twitch: TwitchControl


# Ten events of the kinds a streamer sees most, with amounts, as the demo sends them.
DEMO_MIX = (
    "channel.follow",
    "channel.cheer",
    "channel.subscribe",
    "channel.subscription.message",
    "channel.subscription.gift",
    "channel.raid",
    "channel.channel_points_custom_reward_redemption.add",
    "channel.charity_campaign.donate",
    "channel.update",
    "channel.follow",
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """SEV in demo mode with its own simulated Twitch; the streamer's channel is connected."""
    sev = SevProcess(tmp_path_factory.mktemp("demo"))
    sev.start()
    try:
        twitch = TwitchControl(sev.url + SIMULATOR_MOUNT)
        asyncio.run(_prepare(sev, connect=True))

        def enabled() -> set[str]:
            return {s["type"] for s in twitch.subscriptions() if s["status"] == "enabled"}

        wanted = {"stream.online", "channel.follow", "channel.cheer", "channel.raid"}
        asyncio.run(
            eventually(lambda: wanted <= enabled(), timeout=SETUP_TIMEOUT_S, what="subscriptions")
        )
        twitch.trigger("stream.online", STREAMER)  # the header says "Live now"
        yield Demo(sev, twitch)
    finally:
        sev.stop()


async def _demo_events(demo: Demo) -> list[str]:
    """The ten events of DEMO_MIX, stored; their message ids, oldest first."""
    sent = [
        demo.twitch.trigger(t, STREAMER, **(RAIDER if t == "channel.raid" else {}))[0]
        for t in DEMO_MIX
    ]
    cookies = await _session_cookies(demo.sev, OTHER_VIEWER)
    await eventually(
        lambda: set(sent) <= set(_stored_ids(demo.sev, cookies)), what="the demo events stored"
    )
    return sent


# --- the browser ----------------------------------------------------------------------------


async def _as_viewer(page: Page, sev: SevProcess, login: str = OTHER_VIEWER) -> None:
    """Give the page a session of `login` (logged in over HTTP: the login is not under test)."""
    cookies = await _session_cookies(sev, login)
    await page.context.add_cookies(
        [{"name": "sev_session", "value": cookies["sev_session"], "url": sev.url}]
    )


async def _item_ids(page: Page) -> list[str]:
    """The message ids of the live list's items, top to bottom: a burst's lead, not its rest."""
    ids: list[str] = await page.eval_on_selector_all(
        "#events > li:not(.event-member)", "items => items.map(i => i.dataset.id)"
    )
    return ids


async def _boxes(page: Page, selector: str) -> list[dict[str, float]]:
    """The bounding boxes (top, bottom, left, right) of every match, in viewport pixels."""
    boxes: list[dict[str, float]] = await page.eval_on_selector_all(
        selector,
        """items => items.map(i => {
          const r = i.getBoundingClientRect();
          return {top: r.top, bottom: r.bottom, left: r.left, right: r.right};
        })""",
    )
    return boxes


def _to_sev(urls: list[str], sev: SevProcess) -> list[str]:
    origins = (sev.url, sev.url.replace("127.0.0.1", "localhost"))
    return [url for url in urls if url.startswith(origins)]


async def _screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    await page.screenshot(path=path, animations="disabled")
    full = path.with_name(path.stem + "-full.png")
    await page.screenshot(path=full, full_page=True, animations="disabled")
    return path


# --- HTTP: what the server renders ----------------------------------------------------------


async def test_home_offers_a_visitor_twitch_login(stage: Stage) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{stage.sev.url}/")
    assert response.status_code == 200
    assert 'href="/login"' in response.text
    assert "Log in with Twitch" in response.text
    assert 'action="/favorite"' not in response.text


@pytest.mark.parametrize(
    ("streamer", "status", "message"),
    [
        (XSS, 422, "1 to 25 letters"),
        ("nobody_by_this_name", 404, "There is no Twitch channel called nobody_by_this_name"),
    ],
)
async def test_favourite_form_shows_its_error_in_place_and_keeps_the_value(
    stage: Stage, streamer: str, status: int, message: str
) -> None:
    async with httpx.AsyncClient(timeout=20) as client:
        await log_in(client, stage.sev.url, VIEWER)
        response = await set_favourite(client, stage.sev.url, streamer)
    assert response.status_code == status
    assert message in response.text
    assert 'id="streamer-error"' in response.text
    assert 'aria-invalid="true"' in response.text
    # The value comes back, escaped.
    assert XSS not in response.text
    assert f'value="{escape(streamer)}"' in response.text


@pytest.mark.parametrize(
    ("streamer", "status", "message"),
    [
        ("", 422, "Enter a login"),
        ("   ", 422, "Enter a login"),
        ("https://evil.example/pixelpaladin", 422, "twitch.tv address"),
    ],
)
async def test_favourite_form_asks_for_a_login_it_can_read(
    stage: Stage, streamer: str, status: int, message: str
) -> None:
    async with httpx.AsyncClient(timeout=20) as client:
        await log_in(client, stage.sev.url, VIEWER)
        response = await set_favourite(client, stage.sev.url, streamer)
    assert response.status_code == status
    assert message in response.text
    assert 'id="streamer-error"' in response.text
    assert "home.js" in response.text


@pytest.mark.parametrize(
    "pasted",
    [f"  @{STREAMER.upper()} ", f"twitch.tv/{STREAMER}", f"https://www.twitch.tv/{STREAMER}/"],
)
async def test_favourite_form_takes_a_pasted_name_or_channel_address(
    stage: Stage, pasted: str
) -> None:
    async with httpx.AsyncClient(timeout=20) as client:
        await log_in(client, stage.sev.url, OTHER_VIEWER)
        response = await set_favourite(client, stage.sev.url, pasted)
    assert response.status_code == 303
    assert response.headers["location"] == f"/streamers/{STREAMER}"


@pytest.mark.parametrize(
    ("method", "path", "status", "html", "text"),
    [
        ("GET", "/no/such/page", 404, True, "There is no page at this address"),
        ("GET", "/streamers/nobody_here", 404, True, "Twitch has no channel called nobody_here"),
        ("POST", "/favorite", 403, True, "The form expired"),
        ("DELETE", "/", 405, True, "Method Not Allowed"),
        ("GET", "/api/no/such", 404, False, '"error"'),
        ("GET", f"/api/streamers/{STREAMER}/events?after=-1", 422, False, '"error"'),
    ],
)
async def test_errors_are_sevs_pages_for_people_and_json_for_the_api(
    stage: Stage, method: str, path: str, status: int, html: bool, text: str
) -> None:
    cookies = await _session_cookies(stage.sev, OTHER_VIEWER)
    async with httpx.AsyncClient(timeout=10, cookies=cookies) as client:
        response = await client.request(method, stage.sev.url + path)
    assert response.status_code == status
    assert text in response.text
    kind = response.headers["content-type"]
    if html:
        assert kind.startswith("text/html")
        assert 'class="card problem"' in response.text
        assert 'href="/"' in response.text  # a way on
    else:
        assert kind.startswith("application/json")


async def test_typing_the_favourite_address_leads_to_the_form(stage: Stage) -> None:
    cookies = await _session_cookies(stage.sev, OTHER_VIEWER)
    async with httpx.AsyncClient(timeout=10, cookies=cookies) as client:
        response = await client.get(f"{stage.sev.url}/favorite")
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_a_rejected_favourite_is_not_sent_again_by_a_reload(
    stage: Stage, browser: Browser
) -> None:
    watched = await _open(browser)
    page = watched.page
    await _as_viewer(page, stage.sev, VIEWER)
    await page.goto(f"{stage.sev.url}/")
    await page.fill("#streamer", "nobody_by_this_name")
    async with page.expect_response(f"{stage.sev.url}/favorite") as answer:
        await page.get_by_role("button", name="Set favourite").click()
    assert (await answer.value).status == 404
    assert "There is no Twitch channel" in await page.locator("#streamer-error").inner_text()
    await page.wait_for_url(f"{stage.sev.url}/")
    methods: list[str] = []
    page.on("request", lambda request: methods.append(f"{request.method} {request.url}"))
    await page.reload()
    assert f"GET {stage.sev.url}/" in methods
    assert not any(m.startswith("POST") for m in methods)
    assert await page.locator("#streamer-error").count() == 0
    assert watched.dialogs == [] and watched.errors == []
    await page.context.close()


async def test_streamer_page_without_javascript_shows_the_stored_events(
    stage: Stage, browser: Browser
) -> None:
    context = await browser.new_context(java_script_enabled=False)
    cookies = await _session_cookies(stage.sev, OTHER_VIEWER)
    await context.add_cookies(
        [{"name": "sev_session", "value": cookies["sev_session"], "url": stage.sev.url}]
    )
    page = await context.new_page()
    await page.goto(f"{stage.sev.url}/streamers/{STREAMER}")
    ids = await _ids_on_page(page)
    assert set(stage.stored) <= set(ids)
    assert await page.locator("#connection").inner_text() == "Updates need JavaScript"
    assert await page.locator(".embed-placeholder").is_visible()
    seqs = await _seqs_on_page(page)
    assert seqs == sorted(seqs, reverse=True)
    await context.close()


@pytest.mark.parametrize(
    ("streamer", "connected", "button", "action"),
    [
        ("cozycrumpet", False, "Connect your channel", "/connect"),
        (STREAMER, True, "Disconnect your channel", "/disconnect"),
    ],
)
async def test_streamer_page_offers_its_own_streamer_connect_or_disconnect(
    stage: Stage, streamer: str, connected: bool, button: str, action: str
) -> None:
    async with httpx.AsyncClient(timeout=20) as client:
        await log_in(client, stage.sev.url, streamer)
        token = await csrf_token(client, stage.sev.url)
        response = await set_favourite(client, stage.sev.url, streamer)
        assert response.status_code == 303
        own = await client.get(f"{stage.sev.url}/streamers/{streamer}")
        # Someone else's page offers nothing of the kind.
        other = (
            None
            if streamer == STREAMER
            else await client.get(f"{stage.sev.url}/streamers/{STREAMER}")
        )
    assert own.status_code == 200
    assert button in own.text
    assert f'action="{action}"' in own.text
    assert f'name="csrf_token" value="{token}"' in own.text
    assert ("Channel connected" in own.text) is connected
    if other is not None:
        assert other.status_code == 200
        assert "your channel" not in other.text.lower()


async def test_streamer_page_carries_its_display_table_and_settings_as_data_only(
    stage: Stage,
) -> None:
    cookies = await _session_cookies(stage.sev, OTHER_VIEWER)
    async with httpx.AsyncClient(timeout=10, cookies=cookies) as client:
        response = await client.get(f"{stage.sev.url}/streamers/{STREAMER}")
        module = await client.get(f"{stage.sev.url}/static/feed.js")
    assert response.status_code == 200
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.text, re.DOTALL)
    data = {
        re.findall(r'id="([^"]+)"', attributes)[0]: json.loads(body)
        for attributes, body in scripts
        if 'type="application/json"' in attributes
    }
    # What the page and streamer.js show comes from the server, not from copies of their own.
    assert data["event-kinds"] == display_table()
    assert data["page-settings"] == {
        "kind_states": KIND_STATES,
        "stream_states": STREAM_STATES,
        "connection_states": CONNECTION_STATES,
        "revoked": REVOKED,
        "catch_up_limit": MAX_CATCH_UP,
        "page_size": PAGE_SIZE,
    }
    kinds = data["initial-state"]["streamer"]["kinds"]
    states = re.findall(r'<li class="kind" [^>]*data-state="(\w+)"', response.text)
    assert states == [k["state"] for k in kinds if not k["connected_only"]] + [
        k["state"] for k in kinds if k["connected_only"]
    ]
    # The Content-Security-Policy runs no inline script: every other script has a src.
    executable = [(a, body) for a, body in scripts if 'type="application/json"' not in a]
    assert len(executable) == 2
    assert all(" src=" in attributes and not body.strip() for attributes, body in executable)
    assert any('type="module"' in a and "streamer.js" in a for a, _ in scripts)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert module.status_code == 200
    assert "javascript" in module.headers["content-type"]


# --- the browser: the whole flow ------------------------------------------------------------


async def test_viewer_logs_in_sets_a_favourite_and_sees_events_live(
    stage: Stage, browser: Browser
) -> None:
    sev, simulator = stage.sev, stage.simulator
    watched = await _open(browser)
    page = watched.page
    await _log_in_through_twitch(page, sev, VIEWER)
    await page.fill("#streamer", STREAMER)
    await page.get_by_role("button", name="Set favourite").click()
    await page.wait_for_url(f"{sev.url}/streamers/{STREAMER}")
    await page.wait_for_load_state("load")
    # Stored events are there on the first paint.
    assert set(stage.stored) <= set(await _ids_on_page(page))
    await _wait_live(page)
    after_load = len(watched.requests)

    triggered: list[str] = []
    for event_type in LIVE_TYPES:
        # A raid reaches the raider's channel too: let it come from a channel SEV does not
        # follow here, or its outgoing-raid subscription would get a copy of its own.
        raider: dict[str, Any] = RAIDER if event_type == "channel.raid" else {}
        # A community gift comes with its recipients' gifted subs, shown inside its item.
        message_id, *recipients = simulator.trigger(event_type, STREAMER, **raider)
        await _appears(page, message_id)
        for recipient in recipients:  # all of it placed before the next event is sent
            await page.wait_for_selector(f'#events li[data-id="{recipient}"]', state="attached")
        triggered.append(message_id)

    ids = await _item_ids(page)
    assert ids[: len(triggered)] == triggered[::-1]  # newest first
    assert len(ids) == len(set(ids)) <= 10
    seqs = await _seqs_on_page(page)
    assert seqs == sorted(seqs, reverse=True)
    # Every event has an icon, a kind, a summary and a relative time.
    first = page.locator("#events > li:not(.event-member)").first
    assert await first.get_attribute("data-family") == "points"
    assert await first.locator(".event-kind").inner_text() == "Redemption"
    assert (await first.locator(".event-summary").inner_text()).strip()
    assert re.fullmatch(r"just now|\d+ seconds? ago", await first.locator("time").inner_text())
    assert "New event" in await page.locator("#announcer").inner_text()
    await page.wait_for_selector('.embed[data-state="failed"]')

    # Nothing but the websocket talked to SEV after the page loaded: no polling, no fetch.
    assert _to_sev(watched.requests[after_load:], sev) == []
    assert any("transport=websocket" in url for url in watched.websockets)
    assert not any("transport=polling" in url for url in watched.requests)
    assert watched.errors == []

    await _screenshot(page, "streamer-1280.png")
    await page.set_viewport_size({"width": 375, "height": 812})
    await page.wait_for_timeout(300)
    await _screenshot(page, "streamer-375.png")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    await page.context.close()


async def test_logging_out_in_one_tab_ends_the_live_feed_in_the_others_at_once(
    stage: Stage, browser: Browser
) -> None:
    sev, simulator = stage.sev, stage.simulator
    watched = await _open(browser)
    first = watched.page
    await _log_in_through_twitch(first, sev, LEAVER)
    await first.goto(f"{sev.url}/streamers/{STREAMER}")
    second = await first.context.new_page()
    second_errors: list[str] = []
    second_sockets: list[str] = []
    second.on("pageerror", lambda error: second_errors.append(str(error)))
    second.on("websocket", lambda socket: second_sockets.append(socket.url))
    await second.route("https://embed.twitch.tv/**", lambda route: route.abort())
    await second.goto(f"{sev.url}/streamers/{STREAMER}")
    await _wait_live(first)
    await _wait_live(second)

    await first.get_by_role("button", name="Log out").click()
    await first.wait_for_url(f"{sev.url}/")

    # The other tab hears it from SEV over its socket: no reload, no poll.
    notice = second.locator(".notice-session")
    await notice.wait_for(timeout=5_000)
    assert "logged out" in await notice.inner_text()
    link = notice.get_by_role("link", name="Log in again")
    assert await link.get_attribute("href") == f"/login?next=%2Fstreamers%2F{STREAMER}"
    assert await second.get_attribute("#connection", "data-state") == "offline"
    # And it stays out: a new event does not reach it, and it does not try to reconnect.
    assert len(second_sockets) == 1
    cookies = await _session_cookies(sev, OTHER_VIEWER)
    [message_id] = simulator.trigger("channel.follow", STREAMER)
    await eventually(lambda: message_id in _stored_ids(sev, cookies), what="the follow stored")
    await second.wait_for_timeout(1_000)
    assert message_id not in await _ids_on_page(second)
    assert len(second_sockets) == 1
    assert second_errors == [] and watched.errors == []
    await first.context.close()


async def test_page_says_why_twitch_stopped_a_kind_live_and_after_a_reload(
    stage: Stage, browser: Browser
) -> None:
    sev, simulator = stage.sev, stage.simulator
    bard = _account_id(simulator, "bytebard")
    async with httpx.AsyncClient(timeout=20) as client:
        await log_in(client, sev.url, "chat_champ")
        token = await csrf_token(client, sev.url)
        response = await client.post(
            f"{sev.url}/favorite", data={"streamer": "bytebard", "csrf_token": token}
        )
        assert response.status_code == 303
    await eventually(
        lambda: "user.update" in _enabled_types(simulator, bard), what="enabled subscriptions"
    )
    watched = await _open(browser)
    page = watched.page
    await _log_in_through_twitch(page, sev, "chat_champ")
    await page.goto(f"{sev.url}/streamers/bytebard")
    await _wait_live(page)
    profile = page.locator('.kind[data-type="user.update"]')
    assert await profile.get_attribute("data-state") == "on"

    revoked = httpx.post(
        f"{simulator.url}/control/revoke",
        json={"status": "beta_maintenance", "type": "user.update", "login": "bytebard"},
        timeout=10,
    )
    assert len(revoked.json()["revoked"]) == 1
    # Live, through the socket: the kind stops, and a notice says why.
    await page.wait_for_selector(
        '.kind[data-type="user.update"][data-state="stopped"]', state="attached"
    )
    notice = page.locator("#notices .notice").first
    assert "Twitch paused these events for maintenance" in await notice.inner_text()
    # The folded panel's one line counts it.
    assert "1 stopped or held back" in await page.locator("#shares-title").inner_text()
    # After a reload, from the store: held back, in the server's words.
    await page.reload()
    await _wait_live(page)
    assert await profile.get_attribute("data-state") == "held"
    assert "1 stopped or held back" in await page.locator("#shares-title").inner_text()
    await page.locator("#shares-title").click()
    assert await profile.locator(".kind-state").inner_text() == "Held back"
    held = page.locator("#notices .notice-held")
    assert await held.count() == 1
    assert "SEV asks again within the hour" in await held.inner_text()
    assert watched.errors == []
    await page.context.close()


async def test_connect_your_channel_opens_twitch_on_the_streamer_logged_in(
    stage: Stage, browser: Browser
) -> None:
    sev = stage.sev
    watched = await _open(browser)
    page = watched.page
    await _log_in_through_twitch(page, sev, CONNECTING)
    await page.get_by_role("button", name="Connect your channel").click()
    await page.wait_for_selector("#accounts")
    # The simulated Twitch remembers this browser's account, as a Twitch session would.
    assert await checked_account(page) == CONNECTING
    assert (
        "last used on this browser"
        in await page.locator(f'label[data-login="{CONNECTING}"]').inner_text()
    )
    await page.get_by_role("button", name="Authorize").click()
    await page.wait_for_url(f"{sev.url}/streamers/{CONNECTING}")
    assert "Channel connected" in await page.locator(".streamer-login .badge").inner_text()

    # Another browser has no Twitch session: the list as ever, the first account checked.
    other = (await _open(browser)).page
    await other.goto(sev.url + "/")
    await other.get_by_role("link", name="Log in with Twitch").click()
    await other.wait_for_selector("#accounts")
    first = await other.locator('#accounts input[name="login"]').first.get_attribute("value")
    assert await checked_account(other) == first != CONNECTING
    assert watched.errors == []
    await page.context.close()
    await other.context.close()


async def test_event_text_with_html_shows_as_text_and_runs_nothing(
    stage: Stage, browser: Browser
) -> None:
    sev, simulator = stage.sev, stage.simulator
    watched = await _open(browser)
    page = watched.page
    await _log_in_through_twitch(page, sev, OTHER_VIEWER)
    await page.goto(f"{sev.url}/streamers/{STREAMER}")
    await _wait_live(page)
    [title] = simulator.trigger("channel.update", STREAMER, title=XSS)
    # The raider is a viewer account: no subscription of its own could also receive the raid.
    [raid] = simulator.trigger(
        "channel.raid",
        STREAMER,
        from_broadcaster_user_id="42000004",
        from_broadcaster_user_login="emote_emma",
        from_broadcaster_user_name=XSS,
    )
    [follow] = simulator.trigger("channel.follow", STREAMER, user_name=XSS)
    for message_id in (title, raid, follow):
        await _appears(page, message_id, 2000)

    async def check() -> None:
        item = page.locator(f'#events li[data-id="{title}"]')
        assert XSS in await item.locator(".event-summary").inner_text()
        for message_id in (raid, follow):
            item = page.locator(f'#events li[data-id="{message_id}"]')
            assert await item.locator(".event-actor").inner_text() == XSS
            assert (await item.locator(".event-summary").inner_text()).startswith(XSS)
        assert await page.locator("#events img").count() == 0

    await check()
    # The server-rendered list (after a reload) escapes it too.
    await page.reload()
    await _wait_live(page)
    await check()
    await page.wait_for_timeout(300)
    assert watched.dialogs == []
    assert watched.errors == []
    await page.context.close()


# A stand-in for the Socket.IO client, served instead of static/socket.io.min.js, so that a test
# decides what the page receives and in which order (out of order, twice, after a gap).
FAKE_SOCKET_IO = """
window.__sio = {opts: null, handlers: {}, emitted: [], acks: [], socket: null};
window.__sio.fire = function (name) {
  var args = Array.prototype.slice.call(arguments, 1);
  (window.__sio.handlers[name] || []).forEach(function (f) { f.apply(null, args); });
};
window.io = function (opts) {
  var s = {
    connected: false, active: true,
    on: function (name, f) {
      (window.__sio.handlers[name] = window.__sio.handlers[name] || []).push(f); return s;
    },
    timeout: function () { return s; },
    emit: function (name, payload, ack) {
      window.__sio.emitted.push({name: name, payload: payload}); window.__sio.acks.push(ack);
    },
    connect: function () {},
  };
  window.__sio.opts = opts; window.__sio.socket = s;
  return s;
};
"""


def _fake_event(
    broadcaster_id: str, seq: int, summary: str, minutes_ago: float = 0
) -> dict[str, Any]:
    moment = time.time() - minutes_ago * 60
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + ".000Z"
    return {
        "id": f"fake-{seq}",
        "seq": seq,
        "type": "channel.follow",
        "version": "2",
        "broadcaster": {"id": broadcaster_id, "login": STREAMER, "name": "PixelPaladin"},
        "actor": {"id": "1", "login": "someone", "name": "Someone"},
        "occurred_at": stamp,
        "received_at": stamp,
        "summary": summary,
        "data": {},
    }


async def test_events_are_placed_by_seq_deduplicated_capped_and_caught_up_after_a_reconnect(
    stage: Stage, browser: Browser
) -> None:
    watched = await _open(browser)
    page = watched.page
    await page.route(
        "**/static/socket.io.min.js",
        lambda route: route.fulfill(body=FAKE_SOCKET_IO, content_type="text/javascript"),
    )
    cookies = await _session_cookies(stage.sev, OTHER_VIEWER)
    await page.context.add_cookies(
        [{"name": "sev_session", "value": cookies["sev_session"], "url": stage.sev.url}]
    )
    await page.goto(f"{stage.sev.url}/streamers/{STREAMER}")
    broadcaster_id = await page.get_attribute("#streamer", "data-id")
    assert broadcaster_id
    top = max(await _seqs_on_page(page))

    def event(seq: int, summary: str | None = None, minutes_ago: float = 0) -> dict[str, Any]:
        return _fake_event(broadcaster_id, seq, summary or f"event {seq}", minutes_ago)

    async def fire(name: str, *args: Any) -> None:
        await page.evaluate("([name, args]) => window.__sio.fire(name, ...args)", [name, args])

    async def connect() -> None:
        # The page opens its socket once its list is complete (a burst may need a top-up).
        deadline = time.monotonic() + 5
        while not await page.evaluate("window.__sio.socket !== null"):
            assert time.monotonic() < deadline, "the page never opened its socket"
            await asyncio.sleep(0.05)
        await page.evaluate("window.__sio.socket.connected = true")
        await fire("connect")

    async def last_watch(count: int) -> Any:
        # Polled from the test: wait_for_function evaluates strings in the page, which the
        # page's Content-Security-Policy (no 'unsafe-eval') rightly refuses.
        deadline = time.monotonic() + 5
        while await page.evaluate("window.__sio.emitted.length") < count:
            assert time.monotonic() < deadline, f"watch #{count} never emitted"
            await asyncio.sleep(0.05)
        return await page.evaluate(f"window.__sio.emitted[{count - 1}]")

    async def ack(index: int, answer: dict[str, Any]) -> None:
        await page.evaluate("([i, a]) => window.__sio.acks[i](null, a)", [index, answer])

    async def state() -> str | None:
        return await page.get_attribute("#connection", "data-state")

    opts = await page.evaluate("window.__sio.opts")
    assert opts["transports"] == ["websocket"]

    # First connect: watch after the newest server-rendered seq; a `retry` answer is retried.
    await connect()
    assert await last_watch(1) == {
        "name": "watch",
        "payload": {"streamer": STREAMER, "after": top},
    }
    await ack(0, {"error": "SEV's database is unavailable; retrying", "retry": True})
    assert await state() == "reconnecting"
    assert (await last_watch(2))["payload"]["after"] == top
    await ack(1, {"events": [event(top + 2), event(top + 1)]})
    assert await state() == "live"

    # Live events out of order, one twice, one of another streamer: placed by seq, once.
    for seq in (top + 5, top + 3, top + 5, top + 4, top + 3):
        await fire("event", event(seq))
    await fire("event", {**event(top + 6), "broadcaster": {"id": "elsewhere"}})
    seqs = await _seqs_on_page(page)
    assert seqs[:5] == [top + 5, top + 4, top + 3, top + 2, top + 1]
    assert len(seqs) == len(set(seqs)) and len(await _item_ids(page)) <= 10
    assert await page.locator("#announcer").inner_text() == "New event: event " + str(top + 4)

    # More than ten: the list keeps the ten newest; an older event does not come back.
    for seq in range(top + 6, top + 18):
        await fire("event", event(seq, minutes_ago=5 if seq == top + 17 else 0))
    assert await _seqs_on_page(page) == list(range(top + 17, top + 7, -1))
    await fire("event", event(top + 7))
    assert await _seqs_on_page(page) == list(range(top + 17, top + 7, -1))
    newest_time = page.locator(f'#events li[data-seq="{top + 17}"] time')
    assert await newest_time.inner_text() == "5 minutes ago"

    # A hole (top+18 still in flight) when the connection drops: the watch asks from below it.
    await fire("event", event(top + 19, XSS))
    await fire("disconnect", "transport close")
    assert await state() == "reconnecting"
    await connect()
    assert (await last_watch(3))["payload"]["after"] == top + 17
    await ack(2, {"events": [event(top + 19, XSS), event(top + 18)], "gap": True})
    assert await _seqs_on_page(page) == list(range(top + 19, top + 9, -1))
    assert "More than 100 events" in await page.locator("#events-note").inner_text()
    assert await page.locator("#events-note").is_visible()
    first = page.locator("#events li").first
    assert await first.locator(".event-summary").inner_text() == XSS
    assert await page.locator("#events img").count() == 0

    # A new event slides in, unless the reader asked for less motion.
    animation = "i => getComputedStyle(i).animationName"
    await fire("event", event(top + 20))
    assert "slide-in" in await page.eval_on_selector("#events li[data-seq]", animation)
    await page.emulate_media(reduced_motion="reduce")
    await fire("event", event(top + 21))
    assert await page.eval_on_selector("#events li[data-seq]", animation) == "none"

    # A hole that stays open is filled from the store, never skipped: after a second the page
    # asks for what lies between the mark and the event above it, and the answer closes it.
    await fire("event", event(top + 23))
    assert await last_watch(4) == {
        "name": "fill",
        "payload": {"streamer": STREAMER, "after": top + 21, "before": top + 23},
    }
    await ack(3, {"events": [event(top + 22)]})
    assert (await _seqs_on_page(page))[:3] == [top + 23, top + 22, top + 21]
    # The mark moved past the filled hole: a reconnect asks from the newest.
    await fire("disconnect", "transport close")
    await connect()
    assert (await last_watch(5))["payload"] == {"streamer": STREAMER, "after": top + 23}
    await ack(4, {"events": []})

    # A revoked subscription is said, and its kind marked stopped.
    notice = {"kind": "revocation", "type": "channel.follow", "status": "authorization_revoked"}
    await fire("notice", notice)
    said = f"Twitch stopped sending Follows: {REVOKED['authorization_revoked']}."
    assert said in await page.locator("#notices").inner_text()
    follows = page.locator('.kind[data-type="channel.follow"]')
    assert await follows.get_attribute("data-state") == "stopped"
    assert watched.dialogs == []
    assert watched.errors == []
    await page.context.close()


async def test_demo_mode_shows_a_placeholder_and_never_asks_twitch_for_its_player(
    browser: Browser, tmp_path: Path
) -> None:
    sev = SevProcess(tmp_path)  # no Twitch credentials: demo mode, simulated Twitch inside
    await asyncio.to_thread(sev.start)
    try:
        watched = await _open(browser)
        page = watched.page
        await _log_in_through_twitch(page, sev, VIEWER)
        assert "Demo mode" in await page.locator(".demo-banner").inner_text()
        await page.fill("#streamer", STREAMER)
        await page.get_by_role("button", name="Set favourite").click()
        await page.wait_for_url(f"{sev.url}/streamers/{STREAMER}")
        await _wait_live(page)
        await page.wait_for_timeout(500)
        assert "simulated channel" in await page.locator("#embed-status").inner_text()
        assert await page.locator(".embed-placeholder").is_visible()
        assert not any("twitch.tv" in url for url in watched.requests)
        assert watched.errors == []
        await page.context.close()
    finally:
        await asyncio.to_thread(sev.stop)


async def test_page_reconnects_after_sev_restarts_and_shows_missed_events_once_in_order(
    browser: Browser, tmp_path: Path
) -> None:
    simulator, sev = _start_pair(tmp_path)
    try:
        await _prepare(sev, connect=False)
        streamer_id = _account_id(simulator, STREAMER)
        public = {"stream.online", "channel.update", "channel.raid", "user.update"}
        await eventually(
            lambda: public <= _enabled_types(simulator, streamer_id),
            timeout=SETUP_TIMEOUT_S,
            what="subscriptions",
        )
        watched = await _open(browser)
        page = watched.page
        await _log_in_through_twitch(page, sev, VIEWER)
        await page.goto(f"{sev.url}/streamers/{STREAMER}")
        await _wait_live(page)
        [before] = simulator.trigger("stream.online", STREAMER)
        await _appears(page, before)

        await asyncio.to_thread(sev.stop)
        await page.wait_for_selector(
            '#connection[data-state="reconnecting"], #connection[data-state="offline"]'
        )
        missed = [
            i for t in ("channel.update", "channel.raid", "user.update", "channel.update")
            for i in simulator.trigger(t, STREAMER)
        ]  # fmt: skip
        assert len(missed) == 4
        await asyncio.sleep(1.0)  # let the simulated Twitch fail its first delivery attempts
        await asyncio.to_thread(sev.start)

        # Delivery retries (1 s, 2 s, 4 s ...) and the page's reconnection both bring them in.
        for message_id in missed:
            await _appears(page, message_id, 30_000)
        await _wait_live(page)
        [after] = simulator.trigger("channel.update", STREAMER)
        await _appears(page, after)

        ids = await _ids_on_page(page)
        assert len(ids) == len(set(ids))
        assert {before, after, *missed} <= set(ids)
        seqs = await _seqs_on_page(page)
        assert seqs == sorted(seqs, reverse=True)
        assert len(set(seqs)) == len(seqs)
        assert ids[0] == after
        assert watched.errors == []
        assert not any("transport=polling" in url for url in watched.requests)
        await page.context.close()
    finally:
        await asyncio.to_thread(sev.stop)
        await asyncio.to_thread(simulator.stop)


# --- the feed, as streamers' own activity feeds show it -----------------------------------------


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
async def test_streamer_page_shows_events_first_on_a_phone_and_all_ten_on_a_laptop(
    demo: Demo, browser: Browser, color_scheme: ColorScheme
) -> None:
    await _demo_events(demo)
    watched = await _open(browser, 1280, 800, color_scheme)
    page = watched.page
    await _as_viewer(page, demo.sev)
    await page.goto(f"{demo.sev.url}/streamers/{STREAMER}")
    await _wait_live(page)
    assert await page.locator(".demo-banner").is_visible()
    await page.locator('#stream[data-status="live"]').wait_for()

    # A laptop: all ten events in the window, without scrolling.
    events = await _boxes(page, "#events > li:not(.event-member)")  # a burst is one item
    assert len(events) == 10
    assert await page.evaluate("window.scrollY") == 0
    assert events[-1]["bottom"] <= 800, events[-1]
    # ... beside the stream, not below it.
    [stage] = await _boxes(page, ".stage")
    assert events[0]["left"] >= stage["right"]
    # What the streamer shares: one line until opened.
    shares = page.locator("#shares-details")
    assert await shares.get_attribute("open") is None
    summary = await page.locator("#shares-title").inner_text()
    assert re.search(rf"\d+ of {len(CATALOGUE)} kinds of event on", summary), summary
    [line] = await _boxes(page, "#shares-title")
    assert line["bottom"] - line["top"] < 60
    assert not await page.locator('.kind[data-type="channel.follow"]').is_visible()
    await page.locator("#shares-title").click()
    await page.locator('.kind[data-type="channel.follow"]').wait_for()
    await page.locator("#shares-title").click()
    await _screenshot(page, f"streamer-1280-{color_scheme}.png")

    # A phone: the first event starts in the top half of the screen, above the stream.
    await page.set_viewport_size({"width": 375, "height": 812})
    await eventually(
        lambda: page.evaluate("document.documentElement.clientWidth == 375"), what="resize"
    )
    events = await _boxes(page, "#events > li:not(.event-member)")
    [stage] = await _boxes(page, ".stage")
    assert events[0]["top"] < 400, events[0]
    assert stage["top"] > events[-1]["bottom"]
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    await _screenshot(page, f"streamer-375-{color_scheme}.png")
    assert watched.errors == []
    await page.context.close()


async def test_header_shows_the_streams_state_apart_from_the_pages_connection(
    stage: Stage, browser: Browser
) -> None:
    sev, simulator = stage.sev, stage.simulator
    watched = await _open(browser)
    page = watched.page
    await _as_viewer(page, sev)
    [online] = simulator.trigger("stream.online", STREAMER)
    cookies = await _session_cookies(sev, OTHER_VIEWER)
    await eventually(lambda: online in _stored_ids(sev, cookies), what="stream.online stored")
    await page.goto(f"{sev.url}/streamers/{STREAMER}")
    stream = page.locator("#stream")
    # Rendered by the server from the stored events, before any socket.
    assert await stream.get_attribute("data-status") == "live"
    assert await stream.locator(".stream-status").inner_text() == "LIVE NOW"
    await _wait_live(page)
    # The connection says "updates", never "live": that word is the stream's.
    connection = await page.locator("#connection").inner_text()
    assert connection == CONNECTION_STATES["live"] == "Updates on"
    assert all("live" not in words.lower() for words in CONNECTION_STATES.values())

    # Kept current by the events that arrive over the socket.
    title, category = "Any% speedrun <b>world record</b>", "Celeste"
    simulator.trigger("channel.update", STREAMER, title=title, category_name=category)
    await page.locator("#stream .stream-title", has_text=title).wait_for()
    assert await stream.locator(".stream-category").inner_text() == category
    simulator.trigger("stream.offline", STREAMER)
    await page.locator('#stream[data-status="offline"]').wait_for()
    assert await stream.locator(".stream-status").inner_text() == "Offline"
    assert await stream.locator("b").count() == 0

    # And after a reload, from the store.
    await page.reload()
    assert await stream.get_attribute("data-status") == "offline"
    assert await stream.locator(".stream-title").inner_text() == title
    assert await stream.locator(".stream-category").inner_text() == category
    assert watched.errors == []
    await page.context.close()


AMOUNTS: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "channel.cheer",
        {"bits": 1100, "message": "Cheer1000 Cheer100 what a run <b>x</b>"},
        ["1,100 bits"],
    ),
    ("channel.subscription.gift", {"total": 5, "tier": "2000"}, ["5 gifts", "Tier 2"]),
    (
        "channel.subscription.message",
        {"tier": "3000", "cumulative_months": 14},
        ["Tier 3", "14 months"],
    ),
    ("channel.raid", {**RAIDER, "viewers": 1234}, ["1,234 viewers"]),
    (
        "channel.channel_points_custom_reward_redemption.add",
        {"reward": {"id": "r1", "title": "Hydrate", "cost": 300, "prompt": ""}},
        ["300 points"],
    ),
    (
        "channel.charity_campaign.donate",
        {"amount": {"value": 2500, "decimal_places": 2, "currency": "EUR"}},
        ["25.00 EUR"],
    ),
]


async def test_amounts_show_as_badges_live_and_after_a_reload_alike(
    stage: Stage, browser: Browser
) -> None:
    sev, simulator = stage.sev, stage.simulator
    watched = await _open(browser)
    page = watched.page
    await _as_viewer(page, sev)
    await page.goto(f"{sev.url}/streamers/{STREAMER}")
    await _wait_live(page)
    sent = [simulator.trigger(t, STREAMER, **fields)[0] for t, fields, _ in AMOUNTS]
    for message_id in sent:
        await _appears(page, message_id, 2000)

    async def badges(message_id: str, where: str) -> list[str]:
        item = page.locator(f'#events li[data-id="{message_id}"]')
        texts: list[str] = await item.locator(f"{where} .amount").all_inner_texts()
        return texts

    async def check() -> None:
        for message_id, (_, _, texts) in zip(sent, AMOUNTS, strict=True):
            assert await badges(message_id, ".event-meta") == texts
        # The cheermotes in the cheer's message are bits badges, not raw text; the rest of the
        # message (HTML included) stays text.
        cheer = page.locator(f'#events li[data-id="{sent[0]}"] .event-summary')
        assert await badges(sent[0], ".event-summary") == ["1,000 bits", "100 bits"]
        assert "Cheer1000" not in await cheer.inner_text()
        assert "what a run <b>x</b>" in await cheer.inner_text()
        assert await page.locator("#events b").count() == 0

    await check()  # as streamer.js built them
    await page.reload()
    await _wait_live(page)
    await check()  # as the server rendered them
    assert watched.errors == []
    await _screenshot(page, "streamer-amounts.png")
    await page.context.close()


async def test_actor_names_link_to_their_twitch_page_by_keyboard_too(
    stage: Stage, browser: Browser
) -> None:
    sev, simulator = stage.sev, stage.simulator
    watched = await _open(browser)
    page = watched.page
    await _as_viewer(page, sev)
    await page.goto(f"{sev.url}/streamers/{STREAMER}")
    await _wait_live(page)
    [linked] = simulator.trigger(
        "channel.follow", STREAMER, user_login="speedrun_sally", user_name="SpeedrunSally"
    )
    # A login Twitch could not have: the name shows, but links nowhere.
    [odd] = simulator.trigger(
        "channel.follow", STREAMER, user_login="javascript:alert(1)", user_name="Odd"
    )
    for message_id in (linked, odd):
        await _appears(page, message_id, 2000)

    async def check() -> None:
        link = page.locator(f'#events li[data-id="{linked}"] a.event-actor')
        assert await link.get_attribute("href") == "https://www.twitch.tv/speedrun_sally"
        assert await link.get_attribute("rel") == "noopener noreferrer"
        assert await link.inner_text() == "SpeedrunSally"
        item = page.locator(f'#events li[data-id="{odd}"]')
        assert await item.locator("a").count() == 0
        assert await item.locator(".event-actor").inner_text() == "Odd"
        # Reached with the Tab key alone.
        await page.locator("body").focus()
        for _ in range(40):
            await page.keyboard.press("Tab")
            focused = await page.evaluate("document.activeElement.getAttribute('href')")
            if focused == "https://www.twitch.tv/speedrun_sally":
                break
        else:
            raise AssertionError("the actor's link was never reached with Tab")

    await check()  # built by streamer.js
    await page.reload()
    await _wait_live(page)
    await check()  # rendered by the server
    assert watched.errors == []
    await page.context.close()


# axe-core (tests/a11y/package.json, installed by scripts/setup.sh --dev), run inside the page.
AXE = ROOT / "tests" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    // Serious and critical, and content outside every landmark (moderate, but it hides the
    // demo banner from landmark navigation).
    .filter(v => v.impact === "serious" || v.impact === "critical" || v.id === "region")
    .map(v => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " :: " + n.failureSummary),
    }));
}"""


async def _axe_violations(page: Page) -> list[dict[str, Any]]:
    """The serious and critical axe-core violations of the page as it is now (and `region`)."""
    require("axe-core", AXE.is_file(), "scripts/setup.sh --dev (npm ci in tests/a11y)")
    # Evaluated over the DevTools protocol, which the page's CSP does not govern: the page
    # itself still runs no inline script.
    await page.evaluate(AXE.read_text())
    violations: list[dict[str, Any]] = await page.evaluate(RUN_AXE)
    return violations


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
async def test_pages_have_no_serious_accessibility_violations(
    demo: Demo, browser: Browser, color_scheme: ColorScheme
) -> None:
    await _demo_events(demo)
    watched = await _open(browser, 1280, 800, color_scheme)
    page = watched.page
    # New events' highlight fades over 2.5 s; axe judges the colours at rest.
    await page.emulate_media(reduced_motion="reduce")
    found: dict[str, list[dict[str, Any]]] = {}
    await page.goto(f"{demo.sev.url}/")
    found["home, logged out"] = await _axe_violations(page)
    await _as_viewer(page, demo.sev)
    await page.goto(f"{demo.sev.url}/")
    found["home, logged in"] = await _axe_violations(page)
    await page.goto(f"{demo.sev.url}/streamers/{STREAMER}")
    await _wait_live(page)
    assert await page.locator("#events li .amount").count() > 0
    found["streamer page"] = await _axe_violations(page)
    await page.locator("#shares-title").click()
    found["streamer page, shares open"] = await _axe_violations(page)
    await page.goto(f"{demo.sev.url}/no/such/page")
    found["not found"] = await _axe_violations(page)
    await page.goto(f"{demo.sev.url}/")
    await page.fill("#streamer", "nobody_by_this_name")
    await page.get_by_role("button", name="Set favourite").click()
    await page.locator("#streamer-error").wait_for()
    found["favourite refused"] = await _axe_violations(page)
    failing = {name: violations for name, violations in found.items() if violations}
    assert failing == {}, json.dumps(failing, indent=1)
    assert watched.errors == []
    await page.context.close()


async def test_show_older_pages_back_through_history_and_the_live_list_goes_on(
    demo: Demo, browser: Browser
) -> None:
    for _ in range(3):
        await _demo_events(demo)
    watched = await _open(browser)
    page = watched.page
    await _as_viewer(page, demo.sev)
    await page.goto(f"{demo.sev.url}/streamers/{STREAMER}")
    await _wait_live(page)
    button = page.get_by_role("button", name="Show older events")

    async def older_seqs() -> list[int]:
        seqs: list[int] = await page.eval_on_selector_all(
            "#older li[data-seq]", "items => items.map(i => Number(i.dataset.seq))"
        )
        return seqs

    async def show_older() -> None:
        shown = len(await older_seqs())
        await button.click()

        async def answered() -> bool:
            return len(await older_seqs()) > shown or not await button.is_visible()

        await eventually(answered, what="older events")

    live = await _seqs_on_page(page)
    # Ten items; a burst (a community gift and its gifted subs) is one item of several events.
    assert len(await _item_ids(page)) == 10
    await show_older()
    assert await older_seqs() == list(range(min(live) - 1, min(live) - 11, -1))
    await show_older()
    assert await older_seqs() == list(range(min(live) - 1, min(live) - 21, -1))

    # A live event: the live list keeps ten items, and what falls off moves to the history.
    [message_id] = demo.twitch.trigger("channel.follow", STREAMER)
    await _appears(page, message_id, 2000)
    now_live = await _seqs_on_page(page)
    assert len(await _item_ids(page)) <= 10 and now_live[0] > live[0]
    history = await older_seqs()
    fallen = set(live) - set(now_live)
    assert fallen and fallen <= set(history)
    everything = now_live + history
    assert everything == list(range(everything[0], everything[0] - len(everything), -1))

    # Page on to the first event SEV stored: then the button goes, and says why.
    for _ in range(20):
        if not await button.is_visible():
            break
        await show_older()
    assert (await older_seqs())[-1] == 1
    assert "every event" in await page.locator("#older-note").inner_text()
    assert watched.errors == []
    await page.context.close()


async def test_viewer_hides_kinds_of_event_and_the_choice_survives_a_reload(
    stage: Stage, browser: Browser
) -> None:
    sev, simulator = stage.sev, stage.simulator
    watched = await _open(browser)
    page = watched.page
    await _as_viewer(page, sev)
    await page.goto(f"{sev.url}/streamers/{STREAMER}")
    await _wait_live(page)
    [follow] = simulator.trigger("channel.follow", STREAMER)
    [raid] = simulator.trigger("channel.raid", STREAMER, **RAIDER)
    for message_id in (follow, raid):
        await _appears(page, message_id, 2000)

    def item(message_id: str) -> Any:
        return page.locator(f'#events li[data-id="{message_id}"]')

    await page.locator("#filters summary").click()
    await page.get_by_label("Follows", exact=True).uncheck()
    assert not await item(follow).is_visible()
    assert await item(raid).is_visible()
    assert "1 hidden" in await page.locator("#filters summary").inner_text()
    # A follow that arrives now is placed, but not shown.
    [later] = simulator.trigger("channel.follow", STREAMER)
    await page.wait_for_selector(f'#events li[data-id="{later}"]', state="attached")
    assert not await item(later).is_visible()

    await page.reload()
    await _wait_live(page)
    assert not await item(follow).is_visible()
    assert await item(raid).is_visible()
    await page.locator("#filters summary").click()
    assert not await page.get_by_label("Follows", exact=True).is_checked()
    await page.get_by_label("Follows", exact=True).check()
    assert await item(follow).is_visible()
    assert await page.evaluate("localStorage.getItem('sev.hidden-families')") == "[]"
    assert watched.errors == []
    await page.context.close()


async def test_a_community_gift_is_one_item_listing_its_recipients_live_and_after_a_reload(
    stage: Stage, browser: Browser
) -> None:
    sev, simulator = stage.sev, stage.simulator
    streamer_id = simulator.account_id(STREAMER)
    await eventually(
        lambda: "channel.subscription.gift" in simulator.enabled_types(streamer_id),
        what="the gift subscription",
    )
    watched = await _open(browser)
    page = watched.page
    await _as_viewer(page, sev)
    await page.goto(f"{sev.url}/streamers/{STREAMER}")
    await _wait_live(page)
    follows = [simulator.trigger("channel.follow", STREAMER)[0] for _ in range(10)]
    for message_id in follows:
        await _appears(page, message_id)
    assert await _item_ids(page) == follows[::-1]

    # The simulated Twitch sends the gift and, as Twitch does, each recipient's gifted sub.
    gift, *recipients = simulator.trigger(
        "channel.subscription.gift", STREAMER, total=5, tier="1000", is_anonymous=False
    )
    assert len(recipients) == 5
    for message_id in (gift, *recipients):
        await page.wait_for_selector(f'#events li[data-id="{message_id}"]', state="attached")
    item = page.locator(f'#events li[data-id="{gift}"]')

    async def names_of_recipients() -> list[str]:
        names = [
            await page.locator(f'#events li[data-id="{r}"] .event-actor').text_content() or ""
            for r in recipients
        ]
        return sorted(names)

    async def check(expected: list[str]) -> None:
        # One item for the burst, the others as they were; the recipients fold into it.
        assert await _item_ids(page) == expected
        for message_id in recipients:
            assert not await page.locator(f'#events li[data-id="{message_id}"]').is_visible()
        summary = item.locator(".event-group > summary")
        assert await summary.inner_text() == "5 recipients"
        listed = item.locator(".event-recipients li")
        assert not await listed.first.is_visible()
        await summary.focus()
        await page.keyboard.press("Enter")  # by keyboard, as a viewer without a mouse
        assert await item.locator(".event-group").get_attribute("open") is not None
        assert sorted(await listed.all_inner_texts()) == await names_of_recipients()
        assert await listed.count() == 5

    # Live: the burst is one of the ten, so nine of the follows before it stay.
    await check([gift, *follows[::-1][:9]])
    # Reloaded: the server renders ten events (the burst and four follows); the page groups
    # them and tops the list up from the events before, to ten items again.
    await page.reload()
    await _wait_live(page)
    await check([gift, *follows[::-1][:9]])
    # Five events later the server's ten are those and the recipients, not their gift: the
    # page looks back for it rather than show five lone gifted subs.
    later = [simulator.trigger("channel.follow", STREAMER)[0] for _ in range(5)]
    for message_id in later:
        await _appears(page, message_id)
    await page.reload()
    await _wait_live(page)
    await check([*later[::-1], gift, *follows[::-1][:4]])
    assert watched.errors == []
    await page.context.close()


async def test_viewer_sets_minimum_amounts_and_they_survive_a_reload(
    stage: Stage, browser: Browser
) -> None:
    sev, simulator = stage.sev, stage.simulator
    watched = await _open(browser)
    page = watched.page
    await _as_viewer(page, sev)
    await page.goto(f"{sev.url}/streamers/{STREAMER}")
    await _wait_live(page)

    def item(message_id: str) -> Any:
        return page.locator(f'#events li[data-id="{message_id}"]')

    [earlier] = simulator.trigger("channel.cheer", STREAMER, bits=10, is_anonymous=False)
    await _appears(page, earlier)
    await page.locator("#filters summary").click()
    bits = page.get_by_label("Bits")
    await bits.fill("500")
    await bits.press("Enter")
    # Applied to what is shown already ...
    assert not await item(earlier).is_visible()
    assert "1 hidden" in await page.locator("#filters summary").inner_text()
    # ... and to what arrives live: below the minimum is placed but hidden, above it shows.
    [small] = simulator.trigger("channel.cheer", STREAMER, bits=100, is_anonymous=False)
    [large] = simulator.trigger("channel.cheer", STREAMER, bits=1000, is_anonymous=False)
    await _appears(page, large)
    await page.wait_for_selector(f'#events li[data-id="{small}"]', state="attached")
    assert not await item(small).is_visible()

    # After a reload, as the server rendered them.
    await page.reload()
    await _wait_live(page)
    assert await item(large).is_visible()
    for message_id in (earlier, small):
        assert await item(message_id).count() == 1
        assert not await item(message_id).is_visible()
    await page.locator("#filters summary").click()
    assert await page.get_by_label("Bits").input_value() == "500"
    await page.get_by_label("Bits").fill("0")
    await page.get_by_label("Bits").press("Enter")
    assert await item(small).is_visible()
    stored = await page.evaluate("localStorage.getItem('sev.minimums')")
    assert json.loads(stored) == {"bits": 0, "viewers": 0, "tier": 0}
    assert watched.errors == []
    await page.context.close()


# Counts the tones the page starts, on the browser's own AudioContext (not our code).
TONE_SPY = """
window.__tones = 0;
if (window.AudioContext) {
  const create = AudioContext.prototype.createOscillator;
  AudioContext.prototype.createOscillator = function () {
    const tone = create.call(this);
    const start = tone.start;
    tone.start = function (...args) {
      window.__tones += 1;
      return start.apply(this, args);
    };
    return tone;
  };
}
"""


async def test_sound_per_kind_is_off_until_asked_mute_stops_it_and_replay_highlights(
    stage: Stage, browser: Browser
) -> None:
    sev, simulator = stage.sev, stage.simulator
    watched = await _open(browser)
    page = watched.page
    await page.add_init_script(TONE_SPY)
    await _as_viewer(page, sev)
    await page.goto(f"{sev.url}/streamers/{STREAMER}")
    await _wait_live(page)

    async def tones() -> int:
        count: int = await page.evaluate("window.__tones")
        return count

    async def follow() -> str:
        [message_id] = simulator.trigger("channel.follow", STREAMER)
        await _appears(page, message_id)
        return message_id

    # Off by default: a follow arrives, nothing sounds.
    await follow()
    assert await tones() == 0

    # Sound for follows, turned on by keyboard: the next follow sounds.
    await page.locator("#alerts summary").click()
    sound = page.get_by_label("Sound for Follows", exact=True)
    await sound.focus()
    await page.keyboard.press("Space")
    assert await sound.is_checked()
    await follow()
    assert await tones() > 0
    heard = await tones()
    # Another kind still sounds nothing.
    [raid] = simulator.trigger("channel.raid", STREAMER, **RAIDER)
    await _appears(page, raid)
    assert await tones() == heard

    # Muted: nothing, and the mute is kept across a reload.
    mute = page.get_by_role("button", name="Mute alerts")
    await mute.click()
    assert await mute.get_attribute("aria-pressed") == "true"
    latest = await follow()
    assert await tones() == heard
    await page.reload()
    await _wait_live(page)
    assert await mute.get_attribute("aria-pressed") == "true"
    await page.locator("#alerts summary").click()
    assert await page.get_by_label("Sound for Follows", exact=True).is_checked()

    # Replay: the event's highlight again, by keyboard.
    item = page.locator(f'#events li[data-id="{latest}"]')
    assert "event-new" not in (await item.get_attribute("class") or "")
    await item.get_by_role("button", name="Replay").focus()
    await page.keyboard.press("Enter")
    assert "event-new" in (await item.get_attribute("class") or "")
    assert watched.errors == []
    await page.context.close()


# Records the desktop notifications the page creates, on the browser's own Notification.
NOTIFICATION_SPY = """
window.__notified = [];
if (window.Notification) {
  const Real = window.Notification;
  window.Notification = class extends Real {
    constructor(title, options) {
      window.__notified.push({title: title, body: options && options.body});
      super(title, options);
    }
  };
}
"""


async def test_desktop_notification_per_kind_only_after_the_viewer_turns_it_on(
    stage: Stage, browser: Browser
) -> None:
    sev, simulator = stage.sev, stage.simulator
    watched = await _open(browser)
    page = watched.page
    await page.context.grant_permissions(["notifications"], origin=sev.url)
    await page.add_init_script(NOTIFICATION_SPY)
    await _as_viewer(page, sev)
    await page.goto(f"{sev.url}/streamers/{STREAMER}")
    await _wait_live(page)

    async def notified() -> list[dict[str, str]]:
        found: list[dict[str, str]] = await page.evaluate("window.__notified")
        return found

    async def raid() -> str:
        [message_id] = simulator.trigger("channel.raid", STREAMER, **RAIDER)
        await _appears(page, message_id)
        summary = page.locator(f'#events li[data-id="{message_id}"] .event-summary')
        return await summary.inner_text()

    await raid()
    assert await notified() == []  # off by default
    await page.locator("#alerts summary").click()
    box = page.get_by_label("Notification for Raids", exact=True)
    await box.check()  # the permission is asked from this click (granted here)
    summary = await raid()
    assert await notified() == [{"title": "Raid", "body": summary}]
    [follow] = simulator.trigger("channel.follow", STREAMER)
    await _appears(page, follow)
    assert len(await notified()) == 1  # another kind: nothing
    assert watched.errors == []
    await page.context.close()
