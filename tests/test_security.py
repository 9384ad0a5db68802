"""Security headers: SEV's pages carry a strict policy; Twitch-facing routes are left alone."""

from __future__ import annotations

import logging
from pathlib import Path

from sev.security import RedactOAuthQuery
from tests.support.apps import running_app
from tests.support.factories import notification_body, signed_request


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
