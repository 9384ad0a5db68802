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

from sev.events import display_table
from sev.store import MAX_CATCH_UP
from sev.streamers import KIND_STATES, PAGE_SIZE

# The page helpers are shared with other browser tests; this module keeps its short names.
from tests.support.browser import appears as _appears
from tests.support.browser import checked_account
from tests.support.browser import ids_on_page as _ids_on_page
from tests.support.browser import log_in_through_twitch as _log_in_through_twitch
from tests.support.browser import open_page as _open
from tests.support.browser import seqs_on_page as _seqs_on_page
from tests.support.browser import wait_live as _wait_live
from tests.support.login import connect_channel, csrf_token, log_in
from tests.support.polling import eventually
from tests.support.processes import ROOT, SevProcess, SimulatorProcess, TwitchControl

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts"
STREAMER = "pixelpaladin"  # a demo account of the simulated Twitch; connects their channel
VIEWER = "viewer_vic"  # logs in through the browser
OTHER_VIEWER = "lurker_lou"  # favours the streamer first, so events are stored before the page
LEAVER = "chat_champ"  # logs out in one tab while another is open
CONNECTING = "speedrunsally"  # connects their channel in the browser
XSS = "<img src=x onerror=alert(1)>"
STORED_TYPES = ("stream.online", "channel.follow", "channel.subscribe")
RAIDER = {
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


async def _prepare(simulator: SimulatorProcess, sev: SevProcess, *, connect: bool) -> None:
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
        asyncio.run(_prepare(simulator, sev, connect=True))
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


# --- the browser ----------------------------------------------------------------------------


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
        token = await csrf_token(client, stage.sev.url)
        response = await client.post(
            f"{stage.sev.url}/favorite", data={"streamer": streamer, "csrf_token": token}
        )
    assert response.status_code == status
    assert message in response.text
    assert 'id="streamer-error"' in response.text
    assert 'aria-invalid="true"' in response.text
    # The value comes back, escaped.
    assert XSS not in response.text
    assert f'value="{escape(streamer)}"' in response.text


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
    assert await page.locator("#connection").inner_text() == "Live updates need JavaScript"
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
        response = await client.post(
            f"{stage.sev.url}/favorite", data={"streamer": streamer, "csrf_token": token}
        )
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
        [message_id] = simulator.trigger(event_type, STREAMER, **raider)
        await _appears(page, message_id)
        triggered.append(message_id)

    ids = await _ids_on_page(page)
    assert ids[: len(triggered)] == triggered[::-1]  # newest first
    assert len(ids) == len(set(ids)) <= 10
    seqs = await _seqs_on_page(page)
    assert seqs == sorted(seqs, reverse=True)
    # Every event has an icon, a kind, a summary and a relative time.
    first = page.locator("#events li").first
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
    await page.wait_for_selector('.kind[data-type="user.update"][data-state="stopped"]')
    notice = page.locator("#notices .notice").first
    assert "Twitch paused these events for maintenance" in await notice.inner_text()
    # After a reload, from the store: held back, in the server's words.
    await page.reload()
    await _wait_live(page)
    assert await profile.get_attribute("data-state") == "held"
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
    assert len(seqs) == len(set(seqs)) <= 10
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

    # A revoked subscription is said, and its kind marked stopped.
    notice = {"kind": "revocation", "type": "channel.follow", "status": "authorization_revoked"}
    await fire("notice", notice)
    assert "Twitch stopped sending Follows" in await page.locator("#notices").inner_text()
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
        await _prepare(simulator, sev, connect=False)
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
