"""Security headers on SEV's own pages: a strict Content-Security-Policy and friends.

Event text is untrusted; the page builds nodes with textContent, and the policy is the second
line: only SEV's own scripts and Twitch's embed run, nothing can be framed or posted elsewhere.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sev.profiles import TWITCH_IMAGES

_TWITCH_EMBED = "https://embed.twitch.tv https://player.twitch.tv"


def policy(auth_url: str) -> str:
    """The page policy; `auth_url` is Twitch's OAuth base, where the connect form redirects."""
    auth = urlsplit(auth_url)
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' {_TWITCH_EMBED}",
            f"frame-src {_TWITCH_EMBED} https://www.twitch.tv",
            # Pictures: SEV's own (the demo's simulated Twitch too) and Twitch's image CDN.
            f"img-src 'self' {TWITCH_IMAGES}",
            "style-src 'self'",
            # 'self' covers the page's own websocket (ws:/wss: on the same host).
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            # Browsers also check a form's redirects: POST /connect goes on to Twitch's OAuth.
            f"form-action 'self' {auth.scheme}://{auth.netloc}",
            "frame-ancestors 'none'",
        )
    )


# HSTS on an https SEV: a year, as browsers' preload rules ask; subdomains are the operator's.
HSTS = "max-age=31536000"


def is_under(path: str, prefix: str) -> bool:
    """Whether `path` is `prefix` or below it, segment-wise (`/_twitchx` is not under
    `/_twitch`)."""
    base = prefix.rstrip("/")
    return path == base or path.startswith(base + "/")


class SecurityHeaders:
    """Adds the headers to every HTTP response except those below `exempt` paths; with `hsts`
    (SEV served over https), Strict-Transport-Security on every response."""

    def __init__(
        self, app: ASGIApp, auth_url: str, exempt: tuple[str, ...] = (), *, hsts: bool = False
    ) -> None:
        self.app = app
        self.exempt = exempt
        self.headers = {
            "Content-Security-Policy": policy(auth_url),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "strict-origin-when-cross-origin",
            "X-Frame-Options": "DENY",
        }
        self.transport_headers = {"Strict-Transport-Security": HSTS} if hsts else {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        added = dict(self.transport_headers)
        if not any(is_under(path, prefix) for prefix in self.exempt):
            added.update(self.headers)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in added.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RedactOAuthQuery(logging.Filter):
    """Hides OAuth `code`/`state` values from uvicorn's access log lines."""

    _SECRET_PARAMS = re.compile(r"\b(code|state)=[^&\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the request path argument of an access log record."""
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._SECRET_PARAMS.sub(r"\1=[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def redact_access_log() -> None:
    """Install the filter on uvicorn's access logger (once per process)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactOAuthQuery) for f in access.filters):
        access.addFilter(RedactOAuthQuery())
