"""The session cookie: Starlette's SessionMiddleware format, readable outside HTTP middleware.

Socket.IO traffic does not pass through FastAPI's middleware, so the socket server checks the
cookie itself with the same signer, secret and lifetime (docs/PITFALLS.md).
"""

from __future__ import annotations

import json
from base64 import b64decode
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

import itsdangerous
from itsdangerous import BadSignature

from sev.store.records import User

SESSION_COOKIE = "sev_session"


def read_session(cookie_header: str | None, secret: str, max_age: int) -> dict[str, Any]:
    """The session in a Cookie header, or {} when absent, forged or expired."""
    if not cookie_header:
        return {}
    try:
        cookies = SimpleCookie()
        cookies.load(cookie_header)
    except CookieError:
        return {}
    morsel = cookies.get(SESSION_COOKIE)
    if morsel is None:
        return {}
    try:
        data = itsdangerous.TimestampSigner(secret).unsign(morsel.value.encode(), max_age=max_age)
        session = json.loads(b64decode(data))
    except (BadSignature, ValueError):
        return {}
    return session if isinstance(session, dict) else {}


def is_current(session: Mapping[str, Any], user: User) -> bool:
    """Whether a session of this user still counts: not ended, and issued in the current epoch.

    Cookies from before session epochs existed carry none and count as epoch 0.
    """
    return not user.session_ended_reason and session.get("epoch", 0) == user.session_epoch
