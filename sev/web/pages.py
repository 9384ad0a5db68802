"""Pages: home, the favourite form, the streamer page, and the events API."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from sev.events import FAMILY_LABELS, display_table
from sev.profiles import LookupsExhausted, Profiles
from sev.store import MAX_CATCH_UP, MAX_SEQ, Broadcaster, StoreUnavailable
from sev.streamers import (
    CONNECTION_STATES,
    KIND_STATES,
    PAGE_SIZE,
    REVOKED,
    STREAM_STATES,
    broadcaster_from,
    login_from_input,
    normalize_login,
    read_events,
    read_stream,
)
from sev.twitch import TwitchError
from sev.web.deps import (
    CsrfChecked,
    CurrentUser,
    FavouriteChangesDep,
    LoginRequired,
    OptionalUser,
    ProfilesDep,
    StoreDep,
    SubscriptionsDep,
    TwitchDep,
)
from sev.web.templating import render

log = logging.getLogger(__name__)
router = APIRouter()


@router.get("/", include_in_schema=False)
async def read_home(
    request: Request, user: OptionalUser, store: StoreDep, profiles: ProfilesDep
) -> Response:
    """Home: the login button, or the favourite form and the current favourite."""
    favourite = await store.get_broadcaster(user.favorite_id) if user and user.favorite_id else None
    avatar = profiles.safe_image(favourite.profile_image_url) if favourite else ""
    return render(
        request, "home.html", {"user": user, "favourite": favourite, "favourite_avatar": avatar}
    )


_TWITCH_DOWN = "Twitch is not answering right now; try again in a minute."
_LOOKUPS_SPENT = (
    "SEV has looked up many channels in the last minute; try this one again in a minute."
)


def _form_error(request: Request, user: Any, message: str, status: int, value: str) -> Response:
    return render(
        request,
        "home.html",
        {"user": user, "favourite": None, "error": message, "streamer_value": value},
        status_code=status,
    )


@router.get("/favorite", include_in_schema=False)
async def read_favourite_form() -> Response:
    """The form lives on the home page (a bookmarked or retyped /favorite leads there)."""
    return RedirectResponse("/", status_code=303)


@router.post("/favorite", include_in_schema=False, dependencies=[CsrfChecked])
async def set_favourite(
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    twitch: TwitchDep,
    subscriptions: SubscriptionsDep,
    favourite_changes: FavouriteChangesDep,
    streamer: str = Form(default="", max_length=200),
) -> Response:
    """Set the viewer's favourite streamer and make sure SEV listens to them."""
    if not streamer.strip():
        return _form_error(
            request, user, "Enter a login: the streamer's name on Twitch.", 422, streamer
        )
    login = login_from_input(streamer)
    if login is None:
        return _form_error(
            request,
            user,
            "Enter the streamer's login or their twitch.tv address: a Twitch login has 1 to 25 "
            "letters, digits or underscores.",
            422,
            streamer,
        )
    try:
        found = await twitch.get_users(logins=[login])
    except TwitchError:
        log.warning("Twitch failed while resolving %s", login, exc_info=True)
        return _form_error(request, user, _TWITCH_DOWN, 503, streamer)
    if not found:
        return _form_error(
            request, user, f"There is no Twitch channel called {login}.", 404, streamer
        )
    twitch_user = found[0]
    if twitch_user.id != user.favorite_id and not favourite_changes.allow(user.id):
        return _form_error(
            request,
            user,
            f"You changed your favourite streamer {favourite_changes.limit} times in the last "
            f"{int(favourite_changes.window_s // 60)} minutes; wait a few minutes and try again.",
            429,
            streamer,
        )
    try:
        existing = await store.get_broadcaster(twitch_user.id)
        # Favoured now: no grace period runs (favourites_changed below says the same).
        broadcaster = broadcaster_from(twitch_user, existing, unwanted_since=None)
        await store.save_broadcaster(broadcaster)
        try:
            await subscriptions.ensure(broadcaster)
        except TwitchError:
            log.warning("Twitch failed while subscribing to %s", login, exc_info=True)
            await subscriptions.favourites_changed({broadcaster.id})
            return _form_error(request, user, _TWITCH_DOWN, 503, streamer)
        previous = user.favorite_id
        await store.set_favourite(user.id, broadcaster.id)
        await subscriptions.favourites_changed(
            {broadcaster.id} | ({previous} if previous else set())
        )
        if previous and previous != broadcaster.id:
            try:
                await subscriptions.release_if_unwanted(previous)
            except TwitchError:
                # Released after the grace period instead.
                log.warning("Twitch failed while releasing %s", previous, exc_info=True)
    except StoreUnavailable:
        return _form_error(
            request, user, "SEV's database is unavailable; try again shortly.", 503, streamer
        )
    return RedirectResponse(f"/streamers/{broadcaster.login}", status_code=303)


async def _broadcaster_or_404(store: StoreDep, login: str) -> Broadcaster | None:
    normalized = normalize_login(login)
    return await store.get_broadcaster_by_login(normalized) if normalized else None


@router.get("/streamers/{login}", include_in_schema=False)
async def read_streamer(
    request: Request, login: str, user: OptionalUser, store: StoreDep, profiles: ProfilesDep
) -> Response:
    """The streamer page: embed, latest events (first paint) and the live connection; for a
    channel SEV does not follow yet, who it is and a way to follow it (anyone may open it)."""
    normalized = normalize_login(login)
    if normalized is None:
        # Not a login at all: no need to ask Twitch.
        return _not_found(request, user, f"“{login[:60]}” is not a Twitch login.")
    broadcaster = await store.get_broadcaster_by_login(normalized)
    if broadcaster is None:
        return await _read_unfollowed(request, user, profiles, normalized)
    if user is None:
        raise LoginRequired
    initial = await read_events(store, broadcaster, faces=profiles.with_faces)
    stream = await read_stream(store, broadcaster)
    return render(
        request,
        "streamer.html",
        {
            "user": user,
            "broadcaster": broadcaster,
            # For the embed (templates/_embed.html), shared with the page of an unfollowed one.
            "channel": broadcaster,
            "following": True,
            "avatar": profiles.safe_image(broadcaster.profile_image_url),
            "initial": initial,
            "stream": stream,
            "is_owner": user.id == broadcaster.id,
            # The page's (and streamer.js's) one copy of how events and kinds are shown.
            "event_kinds": display_table(),
            "family_labels": FAMILY_LABELS,
            "page_settings": {
                "kind_states": KIND_STATES,
                "stream_states": STREAM_STATES,
                "connection_states": CONNECTION_STATES,
                "revoked": REVOKED,
                "catch_up_limit": MAX_CATCH_UP,
                "page_size": PAGE_SIZE,
            },
        },
    )


def _not_found(request: Request, user: Any, message: str) -> Response:
    return render(request, "not_found.html", {"user": user, "message": message}, status_code=404)


def _asker(request: Request, user: Any) -> str:
    """Whose share of the login lookups a request spends: a logged-in user's, else its address
    (the client uvicorn's proxy headers resolved, so each visitor behind the proxy is apart)."""
    if user is not None:
        return f"user:{user.id}"
    return f"ip:{request.client.host if request.client else ''}"


async def _read_unfollowed(request: Request, user: Any, profiles: Profiles, login: str) -> Response:
    try:
        twitch_user = await profiles.by_login(login, _asker(request, user))
    except LookupsExhausted:
        busy = render(
            request,
            "error.html",
            {"user": user, "title": "SEV is busy", "message": _LOOKUPS_SPENT},
            status_code=503,
        )
        busy.headers["Retry-After"] = "60"
        return busy
    except TwitchError as error:
        log.warning("Twitch failed while looking up %s: %s", login, error)
        return render(
            request,
            "error.html",
            {"user": user, "title": "Twitch is not answering", "message": _TWITCH_DOWN},
            status_code=503,
        )
    if twitch_user is None:
        return _not_found(request, user, f"Twitch has no channel called {login}.")
    return render(
        request,
        "streamer_unfollowed.html",
        {
            "user": user,
            "channel": twitch_user,
            "following": False,
            "avatar": profiles.image_of(twitch_user),
            "next_url": f"/streamers/{twitch_user.login}",
        },
    )


@router.get("/api/streamers/{login}/events")
async def read_streamer_events(
    login: str,
    user: CurrentUser,
    store: StoreDep,
    profiles: ProfilesDep,
    limit: int = Query(default=PAGE_SIZE, ge=1, le=100),
    after: int | None = Query(default=None, ge=0, le=MAX_SEQ),
    before: int | None = Query(default=None, ge=0, le=MAX_SEQ),
) -> Response:
    """A streamer and their events, newest first: the same shape as the socket's `watch` ack.
    `after` gives what came since a seq; `before` pages back through older history."""
    if after is not None and before is not None:
        return JSONResponse({"error": "give after or before, not both"}, status_code=422)
    broadcaster = await _broadcaster_or_404(store, login)
    if broadcaster is None:
        return JSONResponse({"error": f"SEV does not follow {login}"}, status_code=404)
    return JSONResponse(
        await read_events(
            store, broadcaster, after=after, before=before, limit=limit, faces=profiles.with_faces
        )
    )
