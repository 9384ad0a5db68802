"""Restarting `sev demo` logs nobody out: the simulated Twitch keeps its tokens,
grants, subscriptions and undelivered messages in SEV_DATA_DIR, as real Twitch never forgets them.

One real `sev demo` process, Chromium for the people: a streamer connects their channel, a viewer
watches their page; the demo restarts on the same port and data dir while events are sent before,
during (one held in the simulated Twitch's queue when it stops) and after. SEV validates its stored
tokens after the restart (every second here): against a simulator that forgot them, that would
end the viewer's session and withdraw the streamer's grant.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from tests.support.browser import (
    appears,
    checked_account,
    ids_on_page,
    log_in_through_twitch,
    open_page,
    seqs_on_page,
    wait_live,
)
from tests.support.polling import eventually
from tests.support.processes import DemoProcess

pytestmark = pytest.mark.browser

STREAMER = "cozycrumpet"  # not the first demo account: the consent page must pick them itself
VIEWER = "viewer_vic"
# Events SEV receives only from a connected channel, and one anyone may see.
CONNECTED = ("channel.follow", "channel.cheer", "channel.subscribe")
WANTED = {*CONNECTED, "stream.online"}
# SEV's own calls to the mounted simulator, in the access log of the demo process.
_VALIDATION = re.compile(r'"GET /_twitch/oauth2/validate HTTP/1\.1" (\d{3})')
SETUP_TIMEOUT_S = 20.0


async def _validates(demo: DemoProcess, token: str | None) -> httpx.Response:
    assert token
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(
            f"{demo.twitch.url}/oauth2/validate", headers={"Authorization": f"OAuth {token}"}
        )


async def test_restarting_the_demo_keeps_viewers_logged_in_and_channels_connected(
    browser: Browser, tmp_path: Path
) -> None:
    demo = DemoProcess(tmp_path, {"SEV_TOKEN_VALIDATE_INTERVAL_S": "1"})
    await asyncio.to_thread(demo.start)
    try:
        twitch = demo.twitch
        # The streamer logs in and connects their channel: the consent page opens on them.
        streamer = (await open_page(browser)).page
        await log_in_through_twitch(streamer, demo, STREAMER)
        await streamer.get_by_role("button", name="Connect your channel").click()
        await streamer.wait_for_selector("#accounts")
        assert await checked_account(streamer) == STREAMER
        await streamer.get_by_role("button", name="Authorize").click()
        await streamer.wait_for_url(f"{demo.url}/streamers/{STREAMER}")

        # The viewer favours them and watches their page, live, every kind on.
        watched = await open_page(browser)
        page = watched.page
        await log_in_through_twitch(page, demo, VIEWER)
        await page.fill("#streamer", STREAMER)
        await page.get_by_role("button", name="Set favourite").click()
        await page.wait_for_url(f"{demo.url}/streamers/{STREAMER}")
        streamer_id = await asyncio.to_thread(twitch.account_id, STREAMER)
        await eventually(
            lambda: twitch.enabled_types(streamer_id) >= WANTED,
            timeout=SETUP_TIMEOUT_S,
            what="enabled subscriptions",
        )
        await page.reload()
        await wait_live(page)
        for kind in CONNECTED:
            assert await page.get_attribute(f'.kind[data-type="{kind}"]', "data-state") == "on"
        [before] = twitch.trigger("channel.follow", STREAMER)
        await appears(page, before)

        # One event still in the simulated Twitch's queue when the demo stops.
        twitch.set_faults(delay_s=30)
        [held] = twitch.trigger("channel.cheer", STREAMER)
        sockets = len(watched.websockets)
        await asyncio.to_thread(demo.stop)
        logged = len(demo.logs())
        await asyncio.to_thread(demo.start)
        [after] = twitch.trigger("channel.subscribe", STREAMER)

        # The page comes back by itself, and the held event arrives after the restart.
        await appears(page, held, 30_000)
        await appears(page, after, 10_000)
        await wait_live(page)
        assert len(watched.websockets) > sockets

        def validations() -> list[str]:
            return _VALIDATION.findall(demo.logs()[logged:])

        # SEV has checked its stored tokens since: the viewer's login, the streamer's login and
        # channel tokens. Twitch (simulated) still knows each of them.
        await eventually(
            lambda: validations().count("200") >= 3,
            timeout=SETUP_TIMEOUT_S,
            what="SEV's token checks after the restart",
        )
        assert set(validations()) == {"200"}

        ids, seqs = await ids_on_page(page), await seqs_on_page(page)
        assert {before, held, after} <= set(ids)
        assert len(ids) == len(set(ids))
        assert len(seqs) == len(set(seqs))
        assert seqs == sorted(seqs, reverse=True)
        assert await page.locator(".notice-session").count() == 0
        assert await page.get_attribute("#connection", "data-state") == "live"
        assert await page.locator(".who").inner_text() == "Viewer_Vic"
        assert await page.get_by_role("button", name="Log out").is_visible()
        for kind in CONNECTED:
            assert await page.get_attribute(f'.kind[data-type="{kind}"]', "data-state") == "on"

        # A reload is served the page, not the home page: the session still counts.
        await page.reload()
        await wait_live(page)
        assert page.url == f"{demo.url}/streamers/{STREAMER}"
        for kind in CONNECTED:
            assert await page.get_attribute(f'.kind[data-type="{kind}"]', "data-state") == "on"
        ids = await ids_on_page(page)
        assert {before, held, after} <= set(ids)
        assert len(ids) == len(set(ids))

        # The streamer is still logged in, their channel connected, its token valid at Twitch.
        await streamer.reload()
        assert "Channel connected" in await streamer.locator(".streamer-login .badge").inner_text()
        await streamer.get_by_role("button", name="Disconnect your channel").wait_for()
        async with demo.store() as store:
            user = await store.get_user(streamer_id)
        assert user is not None
        channel = await _validates(demo, user.channel_access_token)
        assert channel.status_code == 200
        assert channel.json()["login"] == STREAMER
        assert {"bits:read", "moderator:read:followers"} <= set(channel.json()["scopes"])
        assert (await _validates(demo, user.access_token)).status_code == 200
        # The simulated Twitch's state holds tokens: private, like the demo's secrets.
        assert (demo.data_dir / "twitchsim-state.json").stat().st_mode & 0o777 == 0o600
        assert watched.errors == []
        await page.context.close()
        await streamer.context.close()
    finally:
        await asyncio.to_thread(demo.stop)
