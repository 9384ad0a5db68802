"""Security headers: SEV's pages carry a strict policy; Twitch-facing routes are left alone."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from sev.profiles import TWITCH_IMAGES
from sev.sessions import SESSION_COOKIE
from sev.store import User
from sev.web.security import HSTS, RedactOAuthQuery
from tests.support.apps import running_app
from tests.support.factories import notification_body, session_cookie, signed_request


async def test_pages_carry_a_content_security_policy(tmp_path: Path) -> None:
    async with running_app(tmp_path) as app:
        response = await app.client.get("/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self' https://embed.twitch.tv" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    # The connect form redirects to Twitch's OAuth: that origin must be a form target.
    assert f"form-action 'self' {app.settings.twitch_auth_url.rsplit('/', 1)[0]}" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


async def test_webhook_answers_carry_no_page_policy(tmp_path: Path) -> None:
    async with running_app(tmp_path) as app:
        headers, body = signed_request(notification_body())
        response = await app.client.post("/webhooks/eventsub", headers=headers, content=body)
    assert response.status_code == 204
    assert "content-security-policy" not in response.headers


def test_access_log_hides_oauth_codes() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/auth/callback?code=abc123&state=xyz", "1.1", 303),
        None,
    )
    RedactOAuthQuery().filter(record)
    line = record.getMessage()
    assert "abc123" not in line and "xyz" not in line
    assert "/auth/callback?code=[redacted]&state=[redacted]" in line


@pytest.mark.parametrize("path", ["/_twitchx", "/_twitch/control/accounts", "/webhooksx"])
async def test_a_path_beside_an_exempt_one_carries_the_page_policy(
    tmp_path: Path, path: str
) -> None:
    """Only what is below the webhook (and a demo's simulated Twitch) goes without the page
    policy: SEV's 404 page for a path that merely starts the same way carries it, and without
    a simulated Twitch (real Twitch), /_twitch is nobody's."""
    async with running_app(tmp_path) as app:
        response = await app.client.get(path)
    assert response.status_code == 404
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("public_url", "hsts"), [("https://sev.example", True), ("http://127.0.0.1:8000", False)]
)
async def test_an_https_sev_tells_browsers_to_keep_to_https(
    tmp_path: Path, public_url: str, hsts: bool
) -> None:
    async with running_app(tmp_path, sev_public_url=public_url) as app:
        page = await app.client.get("/")
        headers, body = signed_request(notification_body())
        webhook = await app.client.post("/webhooks/eventsub", headers=headers, content=body)
    for response in (page, webhook):
        assert response.headers.get("strict-transport-security") == (HSTS if hsts else None)


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("javascript:alert(1)", None),
        ("https://evil.example/me.png", None),
        ('https://static-cdn.jtvnw.net/x.png" onerror="alert(1)', None),
        ("https://static-cdn.jtvnw.net/%2e%2e/x.png", None),
        ("data:image/svg+xml;base64,PHN2Zz4=", None),
        (f"{TWITCH_IMAGES}/jtv_user_pictures/me-300x300.png", "same"),
    ],
)
async def test_the_headers_avatar_is_a_picture_from_twitch_or_none(
    tmp_path: Path, stored: str, shown: str | None
) -> None:
    """The logged-in viewer's picture in every page's header comes from Helix: it passes the
    same filter as every other picture before it goes in an img's src."""
    async with running_app(tmp_path) as app:
        await app.store.save_user(
            User(id="42", login="vic", display_name="Vic", profile_image_url=stored)
        )
        cookie = session_cookie(app.settings.secret("session"), user_id="42", csrf="c")
        app.client.cookies.set(SESSION_COOKIE, cookie)
        page = await app.client.get("/")
    assert page.status_code == 200 and ">Vic<" in page.text
    avatars = re.findall(r'<img class="avatar avatar-small" src="([^"]*)"', page.text)
    assert avatars == ([] if shown is None else [stored])
    assert "evil.example" not in page.text and "javascript:" not in page.text
