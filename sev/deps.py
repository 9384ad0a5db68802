"""FastAPI dependencies: the lifespan's resources and the current user, as Annotated aliases."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request

from sev.config import Settings
from sev.store import Store, User

if TYPE_CHECKING:
    from sev.ingest import Ingestor
    from sev.live import Live
    from sev.subscriptions import Subscriptions
    from sev.twitch import TwitchClient


class LoginRequired(Exception):
    """Raised by CurrentUser; the app turns it into a redirect (pages) or a 401 (API)."""


# The accessors are `async def` although they do not await: FastAPI runs a plain `def`
# dependency in its thread pool: a thread hop per request (~13% of a webhook in py-spy).


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def _twitch(request: Request) -> TwitchClient:
    return request.app.state.twitch  # type: ignore[no-any-return]


async def _live(request: Request) -> Live:
    return request.app.state.live  # type: ignore[no-any-return]


async def _ingestor(request: Request) -> Ingestor:
    return request.app.state.ingestor  # type: ignore[no-any-return]


async def _subscriptions(request: Request) -> Subscriptions:
    return request.app.state.subscriptions  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[Store, Depends(_store)]
TwitchDep = Annotated["TwitchClient", Depends(_twitch)]
LiveDep = Annotated["Live", Depends(_live)]
IngestorDep = Annotated["Ingestor", Depends(_ingestor)]
SubscriptionsDep = Annotated["Subscriptions", Depends(_subscriptions)]


async def _optional_user(request: Request, store: StoreDep) -> User | None:
    user_id = request.session.get("user_id")
    if not isinstance(user_id, str):
        return None
    user = await store.get_user(user_id)
    if user is None or user.session_ended_reason:
        # The user was deleted or Twitch refused their token: the session is over.
        request.session.pop("user_id", None)
        if user is not None and user.session_ended_reason:
            request.session["flash"] = user.session_ended_reason
        return None
    return user


async def _current_user(user: Annotated[User | None, Depends(_optional_user)]) -> User:
    if user is None:
        raise LoginRequired
    return user


OptionalUser = Annotated[User | None, Depends(_optional_user)]
CurrentUser = Annotated[User, Depends(_current_user)]


async def check_csrf(request: Request) -> None:
    """Refuse a state-changing form whose token does not match the session's (403)."""
    expected = request.session.get("csrf")
    submitted = (await request.form()).get("csrf_token")
    if not (isinstance(expected, str) and isinstance(submitted, str)) or not hmac.compare_digest(
        expected, submitted
    ):
        raise HTTPException(status_code=403, detail="The form expired; reload the page and retry.")


CsrfChecked = Depends(check_csrf)
