"""Log a test client in to SEV through the simulated Twitch, without a browser.

The real flow, over HTTP: SEV's `/login` → the simulated Twitch's `/oauth2/authorize`, approved
as a demo account with the simulator's browserless decision (`login=...&decision=authorize`) →
SEV's `/auth/callback`. The session cookie ends up in the client's jar.

    async with httpx.AsyncClient(timeout=20) as client:
        await log_in(client, sev.url, "cooler_user")
        page = await client.get(f"{sev.url}/")
"""

from __future__ import annotations

import re
from typing import Literal

import httpx

Decision = Literal["authorize", "cancel"]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class LoginFailed(AssertionError):
    """A step of the login flow did not answer as SEV and the simulated Twitch should."""


def _location(response: httpx.Response, step: str) -> str:
    if response.status_code not in (302, 303) or "location" not in response.headers:
        raise LoginFailed(
            f"{step}: expected a redirect, got {response.status_code}: {response.text[:500]}"
        )
    return str(response.headers["location"])


async def start_login(client: httpx.AsyncClient, sev_url: str, next_url: str | None = None) -> str:
    """GET SEV's /login; returns the Twitch authorize URL it redirects to."""
    params = {"next": next_url} if next_url else {}
    response = await client.get(f"{sev_url}/login", params=params, follow_redirects=False)
    return _location(response, "GET /login")


async def start_connect(client: httpx.AsyncClient, sev_url: str) -> str:
    """POST SEV's /connect (a logged-in client); returns the Twitch authorize URL."""
    token = await csrf_token(client, sev_url)
    response = await client.post(
        f"{sev_url}/connect", data={"csrf_token": token}, follow_redirects=False
    )
    return _location(response, "POST /connect")


async def decide(
    client: httpx.AsyncClient, authorize_url: str, login: str, decision: Decision = "authorize"
) -> str:
    """Answer the simulated Twitch's consent page as demo account `login`; returns the
    callback URL (with `code`, or `error=access_denied`) it sends the browser back to."""
    url = httpx.URL(authorize_url).copy_merge_params({"login": login, "decision": decision})
    response = await client.get(url, follow_redirects=False)
    return _location(response, f"authorize as {login}")


async def finish(client: httpx.AsyncClient, callback_url: str) -> httpx.Response:
    """GET SEV's callback; returns its answer (a 303 on success, a page otherwise)."""
    return await client.get(callback_url, follow_redirects=False)


async def log_in(
    client: httpx.AsyncClient, sev_url: str, login: str, next_url: str | None = None
) -> None:
    """Log `client` in to SEV as demo account `login`; the session cookie stays in its jar."""
    callback = await decide(client, await start_login(client, sev_url, next_url), login)
    response = await finish(client, callback)
    _location(response, "GET /auth/callback")
    if "sev_session" not in client.cookies:
        raise LoginFailed("the callback set no session cookie")


async def connect_channel(client: httpx.AsyncClient, sev_url: str, login: str) -> httpx.Response:
    """Connect the logged-in streamer's channel, approving as `login`; returns the callback's
    answer (a 303 to `/streamers/{login}` on success)."""
    callback = await decide(client, await start_connect(client, sev_url), login)
    return await finish(client, callback)


async def csrf_token(client: httpx.AsyncClient, sev_url: str) -> str:
    """The session's CSRF token, as SEV's home page puts it in its forms."""
    response = await client.get(f"{sev_url}/", follow_redirects=False)
    found = _CSRF.search(response.text)
    if found is None:
        raise LoginFailed(f"no csrf_token on the home page ({response.status_code})")
    return found.group(1)


async def log_out(client: httpx.AsyncClient, sev_url: str) -> httpx.Response:
    """POST SEV's /logout with the session's CSRF token; returns the answer (303 to /)."""
    token = await csrf_token(client, sev_url)
    return await client.post(
        f"{sev_url}/logout", data={"csrf_token": token}, follow_redirects=False
    )


async def set_favourite(client: httpx.AsyncClient, sev_url: str, streamer: str) -> httpx.Response:
    """POST SEV's favourite form with the session's CSRF token; returns the answer."""
    token = await csrf_token(client, sev_url)
    return await client.post(
        f"{sev_url}/favorite", data={"streamer": streamer, "csrf_token": token}
    )
