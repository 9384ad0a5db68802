"""Jinja templates (autoescaped) with SEV's globals: demo flag, CSRF token, flash message."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from sev.events import badges_of, is_twitch_login, summary_parts
from sev.profiles import face_src

ROOT = Path(__file__).resolve().parents[2]  # the checkout: sev/web/ is two levels down
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"

templates = Jinja2Templates(directory=TEMPLATES_DIR)
# The streamer page's first paint words amounts as static/feed.js does for live events.
templates.env.globals.update(
    event_badges=badges_of,
    summary_parts=summary_parts,
    is_twitch_login=is_twitch_login,
    # The one test a picture's address passes before it goes in an img's src (static/faces.js
    # is the page's own copy).
    face_src=face_src,
)


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use), for hidden form fields."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return token


def _picture(url: object) -> str:
    return face_src(url) or ""


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    """Render a page with the globals every template may use."""
    settings = request.app.state.settings
    services = getattr(request.app.state, "services", None)
    full = {
        "demo": settings.demo,
        # A Helix picture as a page may show it, else "" (profiles.safe_image_url): the
        # header's avatar too is data from Twitch, not markup.
        "picture": services.profiles.safe_image if services is not None else _picture,
        "csrf_token": csrf_token(request),
        "flash": request.session.pop("flash", None),
        "public_host": settings.public_host,
        **(context or {}),
    }
    return templates.TemplateResponse(request, name, full, status_code=status_code)
