"""Log in with Twitch (authorization code), log out, and connect a streamer's channel.

`/login` and `/connect` send the browser to Twitch's consent page (the URL built by Authlib's
RFC 6749 helper); both come back to `/auth/callback`, which finds the pending attempt in the
session by its `state` and exchanges the code through the one Twitch client (`TwitchClient`,
httpx). Tokens go to the store (encrypted there), never to the session, a page or a log.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from sev.clock import now_utc
from sev.config import Settings
from sev.events import CONNECT_SCOPES
from sev.eventsub.subscriptions import Subscriptions
from sev.sessions import is_current
from sev.store import Store, User
from sev.store.records import RefusalReason
from sev.streamers import broadcaster_from
from sev.tokens import Grant, end_sessions, withdraw_channel
from sev.twitch import TokenInfo, TwitchAuthError, TwitchClient, TwitchError, TwitchUser
from sev.web.deps import (
    CsrfChecked,
    CurrentUser,
    LiveDep,
    OptionalUser,
    SettingsDep,
    StoreDep,
    SubscriptionsDep,
    TwitchDep,
)
from sev.web.templating import render

log = logging.getLogger(__name__)
router = APIRouter()

# The pending login or connect attempt: {"state", "purpose", "user_id", "next"}. One per
# session: a newer attempt replaces an older one (two tabs), whose callback then fails.
_ATTEMPT = "auth_attempt"
Purpose = Literal["login", "connect"]

LOGGED_OUT_ELSEWHERE = "You logged out of SEV in another window, so this one was logged out too."


class _AuthFailed(Exception):
    """A login or connect attempt that cannot finish: the page to show, and its status."""

    def __init__(self, title: str, message: str, status_code: int) -> None:
        super().__init__(title)
        self.title = title
        self.message = message
        self.status_code = status_code


_NOT_LOGGED_IN = "Twitch did not log you in"
_EXPIRED = _AuthFailed(
    "This login attempt has expired",
    "It was replaced by a newer one (perhaps in another tab) or took too long. "
    "Nothing was changed; start again.",
    400,
)
_UNREACHABLE = _AuthFailed(
    "Twitch is not answering",
    "SEV could not reach Twitch to finish this. Nothing was changed; try again in a minute.",
    503,
)


def _safe_next(value: str | None) -> str:
    """A local path to return to after login; anything else (another site) means home."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    return value


def _with_scope(url: str, scope: str) -> str:
    # Authlib leaves out an empty scope; Twitch documents the parameter as required.
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "scope"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("scope", scope)])))


def _authorize(
    request: Request,
    settings: Settings,
    purpose: Purpose,
    *,
    user_id: str | None,
    next_url: str,
    scope: str = "",
    **params: str,
) -> Response:
    state = secrets.token_urlsafe(24)
    url = prepare_grant_uri(
        f"{settings.twitch_auth_url}/authorize",
        settings.twitch_client_id,
        "code",
        redirect_uri=settings.redirect_url,
        state=state,
        **params,
    )
    request.session[_ATTEMPT] = {
        "state": state,
        "purpose": purpose,
        "user_id": user_id,
        "next": next_url,
    }
    return RedirectResponse(_with_scope(url, scope), status_code=303)


def _failure(request: Request, failed: _AuthFailed, purpose: Purpose = "login") -> Response:
    """The page of a login or connect attempt that failed, with a way to try again."""
    # Connecting starts with a form (POST, CSRF-checked); logging in with a link.
    return render(
        request,
        "auth_error.html",
        {
            "title": failed.title,
            "message": failed.message,
            "retry_url": "/connect" if purpose == "connect" else "/login",
            "retry_post": purpose == "connect",
        },
        status_code=failed.status_code,
    )


async def _revoke_quietly(twitch: TwitchClient, token: str | None) -> bool:
    """Revoke a token at Twitch; False (logged) when Twitch cannot be reached."""
    if not token:
        return True
    try:
        await twitch.revoke_token(token)
    except TwitchError as error:
        log.warning("could not revoke a token at Twitch: %s", error)
        return False
    return True


async def _retire_token(
    twitch: TwitchClient, store: Store, owner_id: str, token: str | None
) -> bool:
    """Revoke a token SEV no longer needs, unless its owner has a channel grant SEV keeps.

    Twitch's docs do not say whether revoking one token ends the user's whole authorization of
    the app (a user who disconnects SEV on Twitch does end all of it, and every subscription
    that relied on it is revoked). So while a streamer's channel grant stands, SEV forgets their
    other tokens instead: SEV keeps no copy, and Twitch lets them expire within hours.
    """
    owner = await store.get_user(owner_id)
    if token and owner is not None and owner.channel_access_token:
        log.info(
            "forgot a token of %s without revoking it: their channel stays connected", owner.login
        )
        return True
    return await _revoke_quietly(twitch, token)


@router.get("/login", include_in_schema=False)
async def login(
    request: Request, settings: SettingsDep, user: OptionalUser, next: str | None = None
) -> Response:
    """Send the browser to Twitch's consent page (no scopes: login only)."""
    if user is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _authorize(request, settings, "login", user_id=None, next_url=_safe_next(next))


@router.post("/connect", include_in_schema=False, dependencies=[CsrfChecked])
async def connect_channel(request: Request, settings: SettingsDep, user: CurrentUser) -> Response:
    """Ask the streamer, on Twitch, for the scopes of SEV's connected event types."""
    return _authorize(
        request,
        settings,
        "connect",
        user_id=user.id,
        next_url="/",
        scope=" ".join(CONNECT_SCOPES),
        # Show the consent page even when Twitch remembers a grant: the streamer chooses.
        force_verify="true",
    )


def _pop_attempt(request: Request) -> dict[str, Any]:
    """The pending attempt this callback answers; a stale callback leaves the pending one be."""
    attempt = request.session.get(_ATTEMPT)
    state = request.query_params.get("state")
    if isinstance(attempt, dict) and state and attempt.get("state") == state:
        del request.session[_ATTEMPT]
        return attempt
    return {}


@router.get("/auth/callback", include_in_schema=False)
async def auth_callback(
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    twitch: TwitchDep,
    subscriptions: SubscriptionsDep,
) -> Response:
    """Twitch's answer to /login or /connect: tokens → user (and channel) → session."""
    attempt = _pop_attempt(request)
    purpose: Purpose = "connect" if attempt.get("purpose") == "connect" else "login"
    try:
        profile, grant = await _redeem(request, settings, twitch, attempt)
    except _AuthFailed as failed:
        return _failure(request, failed, purpose)
    if purpose == "connect":
        return await _finish_connect(request, store, twitch, subscriptions, attempt, profile, grant)
    return await _finish_login(request, store, twitch, attempt, profile, grant)


async def _redeem(
    request: Request, settings: Settings, twitch: TwitchClient, attempt: dict[str, Any]
) -> tuple[TwitchUser, Grant]:
    """Who consented at Twitch, and the grant they gave: raises _AuthFailed with the page."""
    error = request.query_params.get("error")
    if error == "access_denied":
        raise _AuthFailed(
            "You cancelled at Twitch",
            "Nothing was changed: SEV got no access to your Twitch account.",
            200,
        )
    if error:
        # Only an OAuth error code is echoed: a crafted link must not put its words on SEV's page.
        shown = error if re.fullmatch(r"[a-z_]{1,40}", error) else "an error"
        raise _AuthFailed(
            _NOT_LOGGED_IN,
            f"Twitch answered “{shown}”. Try again; if it keeps happening, tell SEV's operator.",
            400,
        )
    code = request.query_params.get("code")
    if not attempt or not code:
        raise _EXPIRED
    try:
        tokens = await twitch.exchange_code(code, settings.redirect_url)
        info = await twitch.validate_token(tokens.access_token)
        profile = await _profile(twitch, info)
    except TwitchAuthError as refused:
        # A used or expired code.
        log.info("Twitch refused the authorization code: %s", refused)
        raise _AuthFailed(
            _NOT_LOGGED_IN,
            "Twitch refused this login attempt (it may have been used already). Start again.",
            400,
        ) from None
    except TwitchError as failure:
        log.warning("Twitch failed while finishing a login: %s", failure)
        raise _UNREACHABLE from None
    if info is None or profile is None:
        raise _AuthFailed(_NOT_LOGGED_IN, "Twitch did not confirm who you are. Start again.", 400)
    expires_at = now_utc() + timedelta(seconds=info.expires_in)
    return profile, Grant(tokens.access_token, tokens.refresh_token, expires_at, list(info.scopes))


async def _profile(twitch: TwitchClient, info: TokenInfo | None) -> TwitchUser | None:
    if info is None or not info.user_id:
        return None
    found = await twitch.get_users(ids=[info.user_id])
    return found[0] if found else None


def _with_profile(user: User | None, profile: TwitchUser) -> User:
    base = user or User(id=profile.id, login=profile.login, display_name=profile.display_name)
    return base.model_copy(
        update={
            "login": profile.login,
            "display_name": profile.display_name,
            "profile_image_url": profile.profile_image_url or "",
        }
    )


async def _finish_login(
    request: Request,
    store: Store,
    twitch: TwitchClient,
    attempt: dict[str, Any],
    profile: TwitchUser,
    grant: Grant,
) -> Response:
    existing = await store.get_user(profile.id)
    replaced = existing.access_token if existing else None
    user = _with_profile(existing, profile).model_copy(
        update={**grant.fields("login"), "session_ended_reason": None}
    )
    await store.save_user(user)
    if replaced and replaced != grant.access_token:
        await _retire_token(twitch, store, user.id, replaced)
    # A fresh session for the fresh login: nothing from before survives, the CSRF token rotates.
    request.session.clear()
    request.session["user_id"] = user.id
    request.session["epoch"] = user.session_epoch
    request.session["csrf"] = secrets.token_urlsafe(24)
    log.info("%s logged in", user.login)
    return RedirectResponse(_safe_next(attempt.get("next")), status_code=303)


async def _finish_connect(
    request: Request,
    store: Store,
    twitch: TwitchClient,
    subscriptions: Subscriptions,
    attempt: dict[str, Any],
    profile: TwitchUser,
    grant: Grant,
) -> Response:
    user_id = attempt.get("user_id")
    user = await store.get_user(user_id) if isinstance(user_id, str) else None
    if (
        user is None
        or request.session.get("user_id") != user.id
        or not is_current(request.session, user)
    ):
        await _retire_token(twitch, store, profile.id, grant.access_token)
        return _failure(
            request,
            _AuthFailed(
                "Log in first",
                "Your SEV session ended while you were at Twitch. Log in, then connect your "
                "channel again.",
                400,
            ),
        )
    if profile.id != user.id:
        # Only the streamer may connect their own channel; the token is of no use to SEV.
        await _retire_token(twitch, store, profile.id, grant.access_token)
        return _failure(
            request,
            _AuthFailed(
                "That was a different Twitch account",
                f"You authorized SEV on Twitch as {profile.display_name}, but you are logged in "
                f"to SEV as {user.display_name}. Only a streamer can connect their own channel: "
                f"log in to Twitch as {user.display_name}, then try again.",
                403,
            ),
            "connect",
        )
    # The channel token this one replaces is forgotten, not revoked: revoking it might end
    # the authorization the new one stands on (see _retire_token).
    user = _with_profile(user, profile).model_copy(update=grant.fields("channel"))
    await store.save_user(user)
    existing = await store.get_broadcaster(user.id)
    broadcaster = broadcaster_from(
        profile,
        existing,
        granted_scopes=sorted(grant.scopes),
        # A fresh grant mends refusals for missing authorization; Twitch's limits stand.
        refusals=[
            r
            for r in (existing.refusals if existing else [])
            if r.reason not in (RefusalReason.FORBIDDEN, RefusalReason.MODERATOR_REMOVED)
        ],
    )
    await store.save_broadcaster(broadcaster)
    log.info("%s connected their channel", user.login)
    try:
        await subscriptions.ensure(broadcaster)
        # A channel nobody favours yet is released after the grace period, like any other.
        await subscriptions.favourites_changed({broadcaster.id})
    except TwitchError as error:
        log.warning("Twitch failed while subscribing to %s: %s", broadcaster.login, error)
        request.session["flash"] = (
            "Your channel is connected. Twitch is slow to confirm the new event types; "
            "SEV will keep trying."
        )
    return RedirectResponse(f"/streamers/{broadcaster.login}", status_code=303)


@router.post("/disconnect", include_in_schema=False, dependencies=[CsrfChecked])
async def disconnect_channel(
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    twitch: TwitchDep,
    subscriptions: SubscriptionsDep,
) -> Response:
    """Revoke the streamer's channel grant and drop the connected event types."""
    revoked = await _revoke_quietly(twitch, user.channel_access_token)
    try:
        broadcaster = await withdraw_channel(store, subscriptions, user)
    except TwitchError as error:
        log.warning("Twitch failed while unsubscribing %s: %s", user.login, error)
        broadcaster = await store.get_broadcaster(user.id)
    message = "Your channel is disconnected."
    if not revoked:
        message += (
            " Twitch did not answer, so you may also want to remove SEV under Twitch's "
            "Settings → Connections."
        )
    request.session["flash"] = message
    log.info("%s disconnected their channel", user.login)
    return RedirectResponse(
        f"/streamers/{broadcaster.login}" if broadcaster else "/", status_code=303
    )


@router.post("/logout", include_in_schema=False, dependencies=[CsrfChecked])
async def logout(
    request: Request, user: OptionalUser, store: StoreDep, twitch: TwitchDep, live: LiveDep
) -> Response:
    """Revoke the login token at Twitch (best effort) and end the user's sessions."""
    revoked = True
    if user is not None:
        revoked = await _retire_token(twitch, store, user.id, user.access_token)
        # The login token is gone, so every session of this user ends, not only this one: its
        # cookies stop counting and its open pages are disconnected, in every process.
        await end_sessions(store, live.end_sessions, user, LOGGED_OUT_ELSEWHERE)
        log.info("%s logged out", user.login)
    request.session.clear()
    request.session["flash"] = "You are logged out." + (
        "" if revoked else " Twitch did not answer; SEV has forgotten your login all the same."
    )
    return RedirectResponse("/", status_code=303)
