"""FastAPI dependencies: the lifespan's resources and the current user, as Annotated aliases."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from sev.config import Settings
from sev.eventsub.receiver import Receiver
from sev.eventsub.subscriptions import Subscriptions
from sev.live import Live
from sev.profiles import Profiles
from sev.ratelimit import RateLimiter
from sev.services import Services
from sev.sessions import is_current
from sev.store import Store, User
from sev.twitch import TwitchClient

SESSION_ENDED = "This session ended (you logged out, here or in another window). Log in again."


class LoginRequired(Exception):
    """Raised by CurrentUser; the app turns it into a redirect (pages) or a 401 (API)."""


def services_of(app: Any) -> Services:
    """The running app's services (set by the lifespan; AttributeError before it ran)."""
    services: Services = app.state.services
    return services


# The accessors are `async def` although they do not await: FastAPI runs a plain `def`
# dependency in its thread pool: a thread hop per request (~13% of a webhook in py-spy).


async def _services(request: Request) -> Services:
    return services_of(request.app)


ServicesDep = Annotated[Services, Depends(_services)]


async def _settings(request: Request) -> Settings:
    # Also before the lifespan ran: create_app puts the settings on the app itself.
    settings: Settings = request.app.state.settings
    return settings


async def _store(services: ServicesDep) -> Store:
    return services.store


async def _twitch(services: ServicesDep) -> TwitchClient:
    return services.twitch


async def _live(services: ServicesDep) -> Live:
    return services.live


async def _subscriptions(services: ServicesDep) -> Subscriptions:
    return services.subscriptions


async def _receiver(services: ServicesDep) -> Receiver:
    return services.receiver


async def _favourite_changes(services: ServicesDep) -> RateLimiter:
    return services.favourite_changes


async def _profiles(services: ServicesDep) -> Profiles:
    return services.profiles


SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[Store, Depends(_store)]
TwitchDep = Annotated[TwitchClient, Depends(_twitch)]
LiveDep = Annotated[Live, Depends(_live)]
SubscriptionsDep = Annotated[Subscriptions, Depends(_subscriptions)]
FavouriteChangesDep = Annotated[RateLimiter, Depends(_favourite_changes)]
ProfilesDep = Annotated[Profiles, Depends(_profiles)]
ReceiverDep = Annotated[Receiver, Depends(_receiver)]


async def _optional_user(request: Request, store: StoreDep) -> User | None:
    user_id = request.session.get("user_id")
    if not isinstance(user_id, str):
        return None
    user = await store.get_user(user_id)
    if user is None or not is_current(request.session, user):
        # Deleted, logged out (here or elsewhere), or Twitch refused the token: it is over.
        request.session.pop("user_id", None)
        if user is not None:
            request.session["flash"] = user.session_ended_reason or SESSION_ENDED
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
