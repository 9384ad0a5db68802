"""Log in with Twitch, sessions, the token lifecycle and "connect your channel", over real HTTP.

SEV (`uvicorn sev.app:app`) and the simulated Twitch (`python -m twitchsim`) run as separate
processes on free loopback ports; the test client walks the OAuth flow as a browser would, with
the simulator's browserless consent (tests/support/login.py). One test runs SEV in-process
instead, so that caplog sees every log record it writes.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import itsdangerous
import pytest
import socketio
from asgi_lifespan import LifespanManager

from sev.app import create_app
from sev.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from sev.events import CONNECT_SCOPES, normalize_condition, wanted_types
from sev.store import Store, User
from sev.tokens import DISCONNECTED_ON_TWITCH, LOGIN_ENDED
from sev.web.auth import LOGGED_OUT_ELSEWHERE
from sev.web.deps import services_of
from tests.support.apps import test_settings as app_settings
from tests.support.factories import notification_body, signed_request
from tests.support.login import (
    connect_channel,
    csrf_token,
    decide,
    finish,
    log_in,
    log_out,
    start_connect,
    start_login,
)
from tests.support.polling import eventually
from tests.support.processes import SevProcess, SimulatorProcess
from tests.support.services import free_port
from tests.support.sockets import is_refused, page_socket

STREAMER = "pixelpaladin"
STREAMER_ID = "41000001"
VIEWER = "viewer_vic"
VIEWER_ID = "42000001"
CONNECTED_TYPES = {e.type for e in wanted_types(set(CONNECT_SCOPES)) if e.scope}
AUTOMATIC = "channel.channel_points_automatic_reward_redemption.add"


async def _user(sev: SevProcess, user_id: str) -> User:
    async with sev.store() as store:
        user = await store.get_user(user_id)
    assert user is not None
    return user


async def _validate_at_twitch(simulator: SimulatorProcess, token: str) -> int:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(
            f"{simulator.url}/oauth2/validate", headers={"Authorization": f"OAuth {token}"}
        )
    return response.status_code


async def _is_refused(simulator: SimulatorProcess, token: str) -> bool:
    return await _validate_at_twitch(simulator, token) == 401


async def _revoke_at_twitch(simulator: SimulatorProcess, token: str) -> None:
    """What a user does on Twitch's Connections page: the grant ends."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{simulator.url}/oauth2/revoke", data={"client_id": DEMO_CLIENT_ID, "token": token}
        )
    assert response.status_code == 200


async def _logged_in_as(client: httpx.AsyncClient, sev: SevProcess, display_name: str) -> bool:
    page = (await client.get(f"{sev.url}/")).text
    return f"Hello, {display_name}" in page


def _session_of(client: httpx.AsyncClient, sev: SevProcess) -> dict[str, Any]:
    signed = client.cookies["sev_session"]
    data = itsdangerous.TimestampSigner(sev.env["SEV_SESSION_SECRET"]).unsign(signed)
    session: dict[str, Any] = json.loads(base64.b64decode(data))
    return session


def _connected_subscriptions(simulator: SimulatorProcess, broadcaster_id: str) -> set[str]:
    return {
        s["type"]
        for s in simulator.subscriptions()
        if s["type"] in CONNECTED_TYPES
        and broadcaster_id in s["condition"].values()
        and s["status"] in ("enabled", "webhook_callback_verification_pending")
    }


# -- login and the session cookie ---------------------------------------------------------------


async def test_login_flow_logs_in_with_httponly_lax_cookie(
    sev: SevProcess, simulator: SimulatorProcess, client: httpx.AsyncClient
) -> None:
    authorize = await start_login(client, sev.url)
    assert authorize.startswith(f"{simulator.url}/oauth2/authorize?")
    assert "scope=&" in authorize or authorize.endswith("scope=")
    consent_page = await client.get(authorize)
    assert consent_page.status_code == 200 and STREAMER in consent_page.text

    callback = await decide(client, authorize, STREAMER)
    assert callback.startswith(f"{sev.url}/auth/callback?")
    response = await finish(client, callback)

    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(c for c in response.headers.get_list("set-cookie") if "sev_session=" in c)
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert "httponly" in flags and "samesite=lax" in flags
    assert "secure" not in flags
    assert any(flag.startswith("max-age=") for flag in flags)
    assert await _logged_in_as(client, sev, "PixelPaladin")

    user = await _user(sev, STREAMER_ID)
    assert (user.login, user.display_name) == (STREAMER, "PixelPaladin")
    assert user.profile_image_url.startswith("data:image/")
    assert user.scopes == [] and user.access_token and user.refresh_token
    assert user.token_expires_at is not None and user.session_ended_reason is None
    assert await _validate_at_twitch(simulator, user.access_token) == 200


async def test_login_rotates_csrf_token(sev: SevProcess, client: httpx.AsyncClient) -> None:
    await log_in(client, sev.url, VIEWER)
    first = _session_of(client, sev)["csrf"]
    await log_out(client, sev.url)
    await log_in(client, sev.url, VIEWER)
    session = _session_of(client, sev)
    assert session["csrf"] != first
    assert session["user_id"] == VIEWER_ID
    assert not any(key.startswith("_state_") for key in session)


async def test_login_returns_to_next_only_when_local(
    sev: SevProcess, client: httpx.AsyncClient
) -> None:
    callback = await decide(client, await start_login(client, sev.url, "/streamers/x"), VIEWER)
    assert (await finish(client, callback)).headers["location"] == "/streamers/x"
    client.cookies.clear()
    evil = await start_login(client, sev.url, "//evil.example/")
    response = await finish(client, await decide(client, evil, VIEWER))
    assert response.headers["location"] == "/"


async def test_session_cookie_secure_when_public_url_is_https(
    simulator: SimulatorProcess, make_sev: Callable[..., SevProcess], client: httpx.AsyncClient
) -> None:
    port = free_port()
    sev = make_sev(simulator, port=port, SEV_PUBLIC_URL=f"https://127.0.0.1:{port}")
    response = await client.get(f"{sev.url}/login", follow_redirects=False)
    assert response.status_code == 303
    assert "redirect_uri=https%3A%2F%2F127.0.0.1" in response.headers["location"]
    cookie = next(c for c in response.headers.get_list("set-cookie") if "sev_session=" in c)
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax"} <= flags


async def test_login_in_demo_mode_through_the_mounted_simulator(
    tmp_path: Path, processes: list[Any], client: httpx.AsyncClient
) -> None:
    sev = SevProcess(tmp_path)  # no Twitch credentials: demo mode, simulated Twitch mounted
    sev.start()
    processes.append(sev)
    assert (await start_login(client, sev.url)).startswith(f"{sev.url}/_twitch/oauth2/authorize?")
    await log_in(client, sev.url, STREAMER)
    home = (await client.get(f"{sev.url}/")).text
    assert "Hello, PixelPaladin" in home and "Connect your channel" in home
    assert (await connect_channel(client, sev.url, STREAMER)).status_code == 303
    page = (await client.get(f"{sev.url}/streamers/{STREAMER}")).text
    assert "Disconnect your channel" in page


async def test_session_survives_sev_restart(sev: SevProcess, client: httpx.AsyncClient) -> None:
    await log_in(client, sev.url, STREAMER)
    sev.restart()
    assert await _logged_in_as(client, sev, "PixelPaladin")


# -- logout ---------------------------------------------------------------------------------------


async def test_logout_revokes_token_at_twitch(
    sev: SevProcess, simulator: SimulatorProcess, client: httpx.AsyncClient
) -> None:
    await log_in(client, sev.url, VIEWER)
    token = (await _user(sev, VIEWER_ID)).access_token
    assert token is not None
    other_window = httpx.AsyncClient(timeout=20, cookies=dict(client.cookies))

    response = await log_out(client, sev.url)

    assert response.status_code == 303 and response.headers["location"] == "/"
    assert await _validate_at_twitch(simulator, token) == 401
    home = (await client.get(f"{sev.url}/")).text
    assert "You are logged out." in home and 'href="/login"' in home
    user = await _user(sev, VIEWER_ID)
    assert user.access_token is None and user.refresh_token is None
    async with other_window:
        page = (await other_window.get(f"{sev.url}/")).text
    assert "logged out too" in page and 'href="/login"' in page


async def test_logout_disconnects_every_open_page_of_that_user_and_no_other(
    sev: SevProcess, client: httpx.AsyncClient
) -> None:
    await log_in(client, sev.url, VIEWER)
    cookie = client.cookies["sev_session"]
    async with httpx.AsyncClient(timeout=20) as someone_else:
        await log_in(someone_else, sev.url, STREAMER)
        async with (
            page_socket(sev.url, cookie) as tab,
            page_socket(sev.url, cookie) as other_tab,
            page_socket(sev.url, someone_else.cookies["sev_session"]) as bystander,
        ):
            assert (await log_out(client, sev.url)).status_code == 303
            for page in (tab, other_tab):
                await page.wait_disconnected()
                assert page.session_ended == [{"reason": LOGGED_OUT_ELSEWHERE}]
            await asyncio.sleep(0.5)
            assert bystander.client.connected and bystander.session_ended == []
            ack = await bystander.client.call(
                "watch", {"streamer": STREAMER, "after": None}, timeout=10
            )
            assert isinstance(ack, dict)  # answered: that session is untouched
    # The page may not come back with the same cookie.
    assert await is_refused(sev.url, cookie)


async def test_logging_in_again_does_not_revive_a_logged_out_cookie(
    sev: SevProcess, client: httpx.AsyncClient
) -> None:
    await log_in(client, sev.url, VIEWER)
    stolen = dict(client.cookies)  # a copy of the cookie, as a thief would keep it
    assert (await log_out(client, sev.url)).status_code == 303
    await log_in(client, sev.url, VIEWER)
    assert await _logged_in_as(client, sev, "Viewer_Vic")
    async with httpx.AsyncClient(base_url=sev.url, cookies=stolen, timeout=20) as thief:
        home = (await thief.get("/")).text
        assert 'href="/login"' in home and "Hello, Viewer_Vic" not in home
        api = await thief.get("/api/streamers/pixelpaladin/events")
        assert api.status_code == 401
    # The socket refuses it too (connect checks the same session epoch).
    sio = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(
            sev.url,
            transports=["websocket"],
            headers={"Cookie": f"sev_session={stolen['sev_session']}"},
            wait_timeout=10,
        )
    # The fresh session still works.
    assert await _logged_in_as(client, sev, "Viewer_Vic")


async def test_logout_when_twitch_unreachable_still_ends_session(
    sev: SevProcess, simulator: SimulatorProcess, client: httpx.AsyncClient
) -> None:
    await log_in(client, sev.url, VIEWER)
    token = await csrf_token(client, sev.url)
    simulator.stop()
    response = await client.post(
        f"{sev.url}/logout", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    home = (await client.get(f"{sev.url}/")).text
    assert "You are logged out." in home and 'href="/login"' in home
    assert (await _user(sev, VIEWER_ID)).access_token is None


@pytest.mark.parametrize("path", ["/logout", "/connect", "/disconnect"])
@pytest.mark.parametrize("token", [None, "wrong"])
async def test_state_changing_form_without_csrf_is_refused(
    sev: SevProcess,
    simulator: SimulatorProcess,
    client: httpx.AsyncClient,
    path: str,
    token: str | None,
) -> None:
    await log_in(client, sev.url, STREAMER)
    data = {"csrf_token": token} if token else {}
    response = await client.post(f"{sev.url}{path}", data=data, follow_redirects=False)
    assert response.status_code == 403
    assert await _logged_in_as(client, sev, "PixelPaladin")
    assert (await _user(sev, STREAMER_ID)).access_token is not None


# -- failure paths ------------------------------------------------------------------------------


async def test_login_cancelled_at_twitch_shows_access_denied_page(
    sev: SevProcess, client: httpx.AsyncClient
) -> None:
    callback = await decide(client, await start_login(client, sev.url), VIEWER, "cancel")
    assert "error=access_denied" in callback
    response = await finish(client, callback)
    assert response.status_code == 200
    assert "You cancelled at Twitch" in response.text
    assert 'href="/login"' in response.text and "Try again" in response.text
    assert "user_id" not in _session_of(client, sev)
    # The way forward works.
    await log_in(client, sev.url, VIEWER)
    assert await _logged_in_as(client, sev, "Viewer_Vic")


async def test_login_state_mismatch_shows_friendly_page(
    sev: SevProcess, client: httpx.AsyncClient
) -> None:
    first_tab = await start_login(client, sev.url)
    second_tab = await start_login(client, sev.url)
    stale = await finish(client, await decide(client, first_tab, VIEWER))
    assert stale.status_code == 400
    assert "This login attempt has expired" in stale.text and 'href="/login"' in stale.text
    assert "user_id" not in _session_of(client, sev)
    # A callback whose state was never issued (a forged or replayed link) fails the same way.
    forged = await finish(client, f"{sev.url}/auth/callback?code=abc&state=forged")
    assert forged.status_code == 400 and "has expired" in forged.text
    # The newer tab's attempt is still pending, and it logs in.
    fresh = await finish(client, await decide(client, second_tab, VIEWER))
    assert fresh.status_code == 303
    assert await _logged_in_as(client, sev, "Viewer_Vic")


@pytest.mark.parametrize(
    ("error", "shown"),
    [("server_error", "server_error"), ("Call 555-0100 <b>now</b>", "an error")],
)
async def test_callback_with_twitch_error_shows_only_the_error_code(
    sev: SevProcess, client: httpx.AsyncClient, error: str, shown: str
) -> None:
    authorize = await start_login(client, sev.url)
    state = httpx.URL(authorize).params["state"]
    callback = httpx.URL(f"{sev.url}/auth/callback").copy_merge_params(
        {"error": error, "state": state}
    )
    response = await finish(client, str(callback))
    assert response.status_code == 400
    assert f"Twitch answered “{shown}”" in response.text and 'href="/login"' in response.text
    assert "555-0100" not in response.text
    assert not any(key.startswith("_state_") for key in _session_of(client, sev))


async def test_callback_when_twitch_unreachable_shows_503_page(
    sev: SevProcess, simulator: SimulatorProcess, client: httpx.AsyncClient
) -> None:
    callback = await decide(client, await start_login(client, sev.url), VIEWER)
    simulator.stop()
    response = await finish(client, callback)
    assert response.status_code == 503
    assert "Twitch is not answering" in response.text and 'href="/login"' in response.text
    assert "user_id" not in _session_of(client, sev)


async def test_callback_replayed_code_shows_refusal_page(
    sev: SevProcess, client: httpx.AsyncClient
) -> None:
    callback = await decide(client, await start_login(client, sev.url), VIEWER)
    assert (await finish(client, callback)).status_code == 303
    client.cookies.clear()
    # Same code, fresh attempt: Authlib's state check passes only with a pending state, so
    # start one and splice the used code into its callback.
    authorize = await start_login(client, sev.url)
    state = httpx.URL(authorize).params["state"]
    used = httpx.URL(callback).params["code"]
    response = await finish(client, f"{sev.url}/auth/callback?code={used}&state={state}")
    assert response.status_code == 400 and "Twitch did not log you in" in response.text


# -- the token lifecycle ------------------------------------------------------------------------


async def test_token_expiry_is_refreshed_and_session_kept(
    make_simulator: Callable[..., SimulatorProcess],
    make_sev: Callable[..., SevProcess],
    client: httpx.AsyncClient,
) -> None:
    simulator = make_simulator(token_lifetime=3)
    sev = make_sev(simulator, SEV_TOKEN_VALIDATE_INTERVAL_S="1")
    await log_in(client, sev.url, VIEWER)
    seen = [await _user(sev, VIEWER_ID)]
    assert seen[0].access_token and seen[0].refresh_token

    async def refreshed() -> bool:
        user = await _user(sev, VIEWER_ID)
        if user.access_token in (None, seen[-1].access_token):
            return False
        seen.append(user)
        return True

    for _ in range(2):  # and again: each refresh leaves a refresh token that works
        await eventually(refreshed, timeout=10, what="a refreshed token")
        old, new = seen[-2], seen[-1]
        assert new.access_token and await _validate_at_twitch(simulator, new.access_token) == 200
        # Refreshed at (or, with Twitch's whole-second expires_in, just before) its expiry.
        await eventually(
            functools.partial(_is_refused, simulator, old.access_token or ""),
            timeout=2,
            what="the old token to expire",
        )
        # The simulated Twitch rotates refresh tokens, as Twitch may: the new one is stored.
        assert new.refresh_token and new.refresh_token != old.refresh_token
        assert new.session_ended_reason is None
    assert await _logged_in_as(client, sev, "Viewer_Vic")


async def test_revoked_token_logs_out_within_one_validation_cycle(
    simulator: SimulatorProcess, make_sev: Callable[..., SevProcess], client: httpx.AsyncClient
) -> None:
    sev = make_sev(simulator, SEV_TOKEN_VALIDATE_INTERVAL_S="1")
    await log_in(client, sev.url, VIEWER)
    token = (await _user(sev, VIEWER_ID)).access_token
    assert token is not None
    async with page_socket(sev.url, client.cookies["sev_session"]) as page:
        await _revoke_at_twitch(simulator, token)
        revoked_at = time.monotonic()

        async def ended() -> bool:
            return (await _user(sev, VIEWER_ID)).session_ended_reason is not None

        await eventually(ended, timeout=10, what="the session to end")
        # One cycle (1 s) plus the duty's own pace and the round trips to Twitch.
        assert time.monotonic() - revoked_at < 5
        # The open page is told and disconnected, not left to fail at its next reconnect.
        await page.wait_disconnected()
        assert page.session_ended == [{"reason": LOGIN_ENDED}]
    home = (await client.get(f"{sev.url}/")).text
    assert LOGIN_ENDED in home and 'href="/login"' in home
    user = await _user(sev, VIEWER_ID)
    assert user.access_token is None and user.refresh_token is None
    # Logging in again clears the reason.
    await log_in(client, sev.url, VIEWER)
    assert await _logged_in_as(client, sev, "Viewer_Vic")
    assert (await _user(sev, VIEWER_ID)).session_ended_reason is None


# -- connect your channel -----------------------------------------------------------------------


async def test_connect_channel_records_scopes_and_subscribes_then_disconnect_removes(
    sev: SevProcess, simulator: SimulatorProcess, client: httpx.AsyncClient
) -> None:
    await log_in(client, sev.url, STREAMER)
    authorize = await start_connect(client, sev.url)
    query = httpx.URL(authorize).params
    assert set(query["scope"].split()) == set(CONNECT_SCOPES)
    assert query["force_verify"] == "true"
    response = await finish(client, await decide(client, authorize, STREAMER))
    assert response.status_code == 303
    assert response.headers["location"] == f"/streamers/{STREAMER}"

    user = await _user(sev, STREAMER_ID)
    assert user.channel_access_token and user.channel_access_token != user.access_token
    assert set(user.channel_scopes) == set(CONNECT_SCOPES)
    async with sev.store() as store:
        broadcaster = await store.get_broadcaster(STREAMER_ID)
    assert broadcaster is not None and set(broadcaster.granted_scopes) == set(CONNECT_SCOPES)
    assert _connected_subscriptions(simulator, STREAMER_ID) == CONNECTED_TYPES
    made = {
        (
            sub["type"],
            sub["version"],
            json.dumps(normalize_condition(sub["condition"]), sort_keys=True),
        )
        for sub in simulator.subscriptions()
    }
    for entry in wanted_types(set(CONNECT_SCOPES)):
        condition = json.dumps(entry.condition(STREAMER_ID), sort_keys=True)
        assert (entry.type, entry.version, condition) in made, entry.key
    # The newer types, as Twitch's reference has them.
    me = {"broadcaster_user_id": STREAMER_ID}
    for type_, condition_of in (
        ("channel.goal.begin", me),
        ("channel.goal.progress", me),
        ("channel.goal.end", me),
        ("channel.charity_campaign.start", me),
        ("channel.charity_campaign.progress", me),
        ("channel.charity_campaign.stop", me),
        ("channel.shoutout.create", {**me, "moderator_user_id": STREAMER_ID}),
    ):
        assert (type_, "1", json.dumps(condition_of, sort_keys=True)) in made, type_
    for type_ in ("channel.hype_train.progress", AUTOMATIC):
        assert (type_, "2", json.dumps(me, sort_keys=True)) in made, type_
    page = await client.get(f"{sev.url}/streamers/{STREAMER}")
    assert page.status_code == 200 and "Disconnect your channel" in page.text

    channel_token = user.channel_access_token
    token = await csrf_token(client, sev.url)
    response = await client.post(
        f"{sev.url}/disconnect", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/streamers/{STREAMER}"
    assert await _validate_at_twitch(simulator, channel_token) == 401
    assert _connected_subscriptions(simulator, STREAMER_ID) == set()
    user = await _user(sev, STREAMER_ID)
    assert user.channel_access_token is None and user.channel_scopes == []
    async with sev.store() as store:
        broadcaster = await store.get_broadcaster(STREAMER_ID)
    assert broadcaster is not None and broadcaster.granted_scopes == []
    # The login itself is untouched.
    assert user.access_token and await _validate_at_twitch(simulator, user.access_token) == 200
    assert "Connect your channel" in (await client.get(f"{sev.url}/streamers/{STREAMER}")).text


async def test_connect_as_another_twitch_account_is_refused(
    sev: SevProcess, simulator: SimulatorProcess, client: httpx.AsyncClient
) -> None:
    await log_in(client, sev.url, STREAMER)
    authorize = await start_connect(client, sev.url)
    response = await finish(client, await decide(client, authorize, "speedrunsally"))
    assert response.status_code == 403
    assert "That was a different Twitch account" in response.text
    assert 'action="/connect"' in response.text
    user = await _user(sev, STREAMER_ID)
    assert user.channel_access_token is None
    async with sev.store() as store:
        assert await store.get_broadcaster("41000002") is None
    assert _connected_subscriptions(simulator, "41000002") == set()


async def test_connect_cancelled_offers_connect_again(
    sev: SevProcess, client: httpx.AsyncClient
) -> None:
    await log_in(client, sev.url, STREAMER)
    authorize = await start_connect(client, sev.url)
    response = await finish(client, await decide(client, authorize, STREAMER, "cancel"))
    assert response.status_code == 200 and "You cancelled at Twitch" in response.text
    assert 'action="/connect"' in response.text
    assert await _logged_in_as(client, sev, "PixelPaladin")
    assert (await _user(sev, STREAMER_ID)).channel_access_token is None


async def test_channel_grant_revoked_at_twitch_switches_connected_types_off(
    simulator: SimulatorProcess, make_sev: Callable[..., SevProcess], client: httpx.AsyncClient
) -> None:
    sev = make_sev(simulator, SEV_TOKEN_VALIDATE_INTERVAL_S="1")
    await log_in(client, sev.url, STREAMER)
    assert (await connect_channel(client, sev.url, STREAMER)).status_code == 303
    channel_token = (await _user(sev, STREAMER_ID)).channel_access_token
    assert channel_token is not None

    await _revoke_at_twitch(simulator, channel_token)

    async def withdrawn() -> bool:
        # Two paths get there: Twitch's authorization_revoked revocations take each type's
        # scope, and the next token check drops the channel token itself.
        async with sev.store() as store:
            broadcaster = await store.get_broadcaster(STREAMER_ID)
            user = await store.get_user(STREAMER_ID)
        return (
            broadcaster is not None
            and broadcaster.granted_scopes == []
            and user is not None
            and user.channel_access_token is None
        )

    await eventually(withdrawn, timeout=10, what="the grant to be withdrawn")
    user = await _user(sev, STREAMER_ID)
    assert user.channel_access_token is None and user.session_ended_reason is None
    await eventually(
        lambda: not _connected_subscriptions(simulator, STREAMER_ID),
        timeout=10,
        what="the connected subscriptions to go",
    )
    assert await _logged_in_as(client, sev, "PixelPaladin")


async def test_user_who_disconnects_sev_on_twitch_is_logged_out_at_once(
    sev: SevProcess, simulator: SimulatorProcess, client: httpx.AsyncClient
) -> None:
    await log_in(client, sev.url, STREAMER)
    assert (await connect_channel(client, sev.url, STREAMER)).status_code == 303
    await eventually(
        lambda: any(
            s["type"] == "user.authorization.revoke" and s["status"] == "enabled"
            for s in simulator.subscriptions()
        ),
        what="SEV's user.authorization.revoke subscription",
    )
    async with page_socket(sev.url, client.cookies["sev_session"]) as page:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                f"{simulator.url}/control/disconnect", json={"login": STREAMER}
            )
        assert len(response.json()["sent"]) == 1
        await page.wait_disconnected()
        assert page.session_ended == [{"reason": DISCONNECTED_ON_TWITCH}]

    async def logged_out() -> bool:
        async with sev.store() as store:
            user = await store.get_user(STREAMER_ID)
            broadcaster = await store.get_broadcaster(STREAMER_ID)
        return (
            user is not None
            and user.access_token is None
            and user.channel_access_token is None
            and broadcaster is not None
            and broadcaster.granted_scopes == []
        )

    # Token validation runs hourly here: the notification alone does it.
    await eventually(logged_out, timeout=10, what="the user to be logged out")
    home = (await client.get(f"{sev.url}/")).text
    assert "You disconnected SEV from your Twitch account" in home and 'href="/login"' in home


async def test_a_resent_authorization_revoke_does_not_log_the_user_out_again(
    sev: SevProcess, client: httpx.AsyncClient
) -> None:
    # Twitch resends a message whose answer it did not get, with the same id, for up to 10
    # minutes; by then the user may have logged in again.
    await log_in(client, sev.url, VIEWER)
    subscription = {
        **notification_body()["subscription"],
        "type": "user.authorization.revoke",
        "version": "1",
        "condition": {"client_id": DEMO_CLIENT_ID},
    }
    event = {
        "client_id": DEMO_CLIENT_ID,
        "user_id": VIEWER_ID,
        "user_login": VIEWER,
        "user_name": "Viewer_Vic",
    }
    headers, raw = signed_request({"subscription": subscription, "event": event})
    headers["Twitch-Eventsub-Subscription-Type"] = "user.authorization.revoke"
    headers["Twitch-Eventsub-Subscription-Version"] = "1"
    async with httpx.AsyncClient(timeout=10) as twitch:
        first = await twitch.post(f"{sev.url}/webhooks/eventsub", headers=headers, content=raw)
        assert first.status_code == 204
        assert (await _user(sev, VIEWER_ID)).access_token is None
        await log_in(client, sev.url, VIEWER)
        again = await twitch.post(f"{sev.url}/webhooks/eventsub", headers=headers, content=raw)
    assert again.status_code == 204
    assert await _logged_in_as(client, sev, "Viewer_Vic")
    assert (await _user(sev, VIEWER_ID)).access_token is not None


async def test_connected_streamer_logging_out_keeps_the_channel_connected(
    sev: SevProcess, simulator: SimulatorProcess, client: httpx.AsyncClient
) -> None:
    # Twitch's docs leave open whether revoking one token ends the user's whole authorization:
    # the simulated Twitch does so here, and the channel must stay connected all the same.
    async with httpx.AsyncClient(timeout=10) as http:
        await http.post(f"{simulator.url}/control/faults", json={"revoke_ends_authorization": True})
    await log_in(client, sev.url, STREAMER)
    assert (await connect_channel(client, sev.url, STREAMER)).status_code == 303
    await eventually(
        lambda: _connected_subscriptions(simulator, STREAMER_ID) == CONNECTED_TYPES,
        what="the connected subscriptions",
    )
    login_token = (await _user(sev, STREAMER_ID)).access_token
    assert login_token is not None
    # Logging in again replaces the login token; logging out drops it.
    async with httpx.AsyncClient(timeout=20) as other_browser:
        await log_in(other_browser, sev.url, STREAMER)
    assert (await log_out(client, sev.url)).status_code == 303
    await asyncio.sleep(1.0)
    user = await _user(sev, STREAMER_ID)
    assert user.access_token is None and user.channel_access_token
    assert await _validate_at_twitch(simulator, user.channel_access_token) == 200
    enabled = {
        s["type"]
        for s in simulator.subscriptions()
        if s["type"] in CONNECTED_TYPES and s["status"] == "enabled"
    }
    assert enabled == CONNECTED_TYPES


# -- secrets ------------------------------------------------------------------------------------


def _raw_rows(path: Path) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(
            repr(row)
            for table in tables
            for row in db.execute(f"SELECT * FROM {table}")  # noqa: S608
        )


async def test_secrets_never_in_clear_text_in_store_pages_or_logs(
    simulator: SimulatorProcess, make_sev: Callable[..., SevProcess], client: httpx.AsyncClient
) -> None:
    sev = make_sev(simulator, SEV_LOG_LEVEL="DEBUG", SEV_TOKEN_VALIDATE_INTERVAL_S="1")
    pages: list[str] = []
    tokens: set[str] = set()

    async def remember() -> None:
        user = await _user(sev, STREAMER_ID)
        tokens.update(
            t
            for t in (
                user.access_token,
                user.refresh_token,
                user.channel_access_token,
                user.channel_refresh_token,
            )
            if t
        )

    await log_in(client, sev.url, STREAMER)
    await remember()
    pages.append((await client.get(f"{sev.url}/")).text)
    assert (await connect_channel(client, sev.url, STREAMER)).status_code == 303
    await remember()
    pages.append((await client.get(f"{sev.url}/streamers/{STREAMER}")).text)
    await asyncio.sleep(1.5)  # a validation cycle or two, logged at DEBUG
    raw_store = _raw_rows(sev.data_dir / "sev.sqlite3")
    cookie = json.dumps(_session_of(client, sev))
    await log_out(client, sev.url)
    pages.append((await client.get(f"{sev.url}/")).text)

    assert len(tokens) == 4
    secrets_ = {*tokens, DEMO_CLIENT_SECRET, sev.env["SEV_TOKEN_KEY"]}
    logs = sev.logs()
    assert "logged in" in logs  # the log is really there
    for secret in secrets_:
        assert secret not in raw_store
        assert secret not in logs
        assert secret not in cookie
        assert all(secret not in page for page in pages)


async def test_secrets_never_in_clear_text_in_captured_logs(
    simulator: SimulatorProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    settings = app_settings(
        tmp_path,
        twitch_client_id=DEMO_CLIENT_ID,
        twitch_client_secret=DEMO_CLIENT_SECRET,
        twitch_api_url=f"{simulator.url}/helix",
        twitch_auth_url=f"{simulator.url}/oauth2",
        sev_token_validate_interval_s=0.5,
    )
    asgi = create_app(settings)
    sev_url = settings.sev_public_url
    async with LifespanManager(asgi) as manager:
        store: Store = services_of(asgi.other_asgi_app).store
        # The browser talks to SEV in-process and to the simulated Twitch over HTTP.
        mounts = {sev_url: httpx.ASGITransport(app=manager.app)}
        async with httpx.AsyncClient(timeout=20, mounts=mounts) as browser:
            await log_in(browser, sev_url, STREAMER)
            assert (await connect_channel(browser, sev_url, STREAMER)).status_code == 303
            user = await store.get_user(STREAMER_ID)
            assert user is not None
            await asyncio.sleep(1.2)  # validation cycles
            await log_out(browser, sev_url)
    tokens = [
        user.access_token,
        user.refresh_token,
        user.channel_access_token,
        user.channel_refresh_token,
    ]
    text = "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in caplog.records
    )
    assert "logged in" in text
    for secret in [*tokens, DEMO_CLIENT_SECRET]:
        assert secret and secret not in text
