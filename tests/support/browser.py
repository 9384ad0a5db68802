"""Pages in Debian's Chromium (Playwright), as the browser tests drive them: a page that records
what it did, the login through the simulated Twitch's consent page, and what the streamer page
shows. The `browser` fixture itself is in tests/conftest.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from playwright.async_api import Browser, Dialog, Page, Request

from tests.support.processes import SevProcess

# How soon a live event must be on the page after Twitch sent it.
APPEAR_WITHIN_MS = 1000


@dataclass
class Watched:
    """What a page did: dialogs it opened, errors it threw, HTTP requests it made."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)


ColorScheme = Literal["light", "dark"]


async def open_page(
    browser: Browser, width: int = 1280, height: int = 900, color_scheme: ColorScheme = "light"
) -> Watched:
    """A page in a context of its own (its own cookies: another browser, as far as sites see),
    in the light or dark colour scheme."""
    context = await browser.new_context(
        viewport={"width": width, "height": height}, color_scheme=color_scheme
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    watched = Watched(page)

    async def on_dialog(dialog: Dialog) -> None:
        watched.dialogs.append(dialog.message)
        await dialog.dismiss()

    def on_request(request: Request) -> None:
        watched.requests.append(request.url)

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    page.on("request", on_request)
    page.on("websocket", lambda socket: watched.websockets.append(socket.url))
    # No network here; fail Twitch's script at once rather than wait for DNS.
    await page.route("https://embed.twitch.tv/**", lambda route: route.abort())
    return watched


async def log_in_through_twitch(page: Page, sev: SevProcess, login: str) -> None:
    """Click "Log in with Twitch", pick the demo account on the consent page, Authorize."""
    await page.goto(sev.url + "/")
    await page.get_by_role("link", name="Log in with Twitch").click()
    await page.wait_for_selector("#accounts")
    await page.check(f'input[name="login"][value="{login}"]')
    await page.get_by_role("button", name="Authorize").click()
    await page.wait_for_url(f"{sev.url}/**")
    await page.get_by_role("button", name="Log out").wait_for()


async def checked_account(page: Page) -> str | None:
    """The demo account checked on the simulated Twitch's consent page."""
    return await page.locator('#accounts input[name="login"]:checked').get_attribute("value")


async def wait_live(page: Page, timeout_ms: int = 10_000) -> None:
    """Until the streamer page's connection indicator says live."""
    await page.wait_for_selector('#connection[data-state="live"]', timeout=timeout_ms)


async def ids_on_page(page: Page) -> list[str]:
    """The message ids of the events the streamer page shows, top to bottom."""
    ids: list[str] = await page.eval_on_selector_all(
        "#events li[data-id]", "items => items.map(i => i.dataset.id)"
    )
    return ids


async def seqs_on_page(page: Page) -> list[int]:
    """The `seq` of the events the streamer page shows, top to bottom."""
    seqs: list[int] = await page.eval_on_selector_all(
        "#events li[data-seq]", "items => items.map(i => Number(i.dataset.seq))"
    )
    return seqs


async def appears(page: Page, message_id: str, timeout_ms: int = APPEAR_WITHIN_MS) -> None:
    """Until the event with this message id is on the streamer page."""
    await page.wait_for_selector(f'#events li[data-id="{message_id}"]', timeout=timeout_ms)
