"""User tokens over their life: validated on an interval, refreshed, dropped when Twitch says no.

Twitch requires apps to validate user tokens at login and hourly, and to end the session when a
token is no longer valid. Each user has up to two tokens: the login token, and the channel token
of "connect your channel". A login token Twitch refuses (and cannot refresh) ends the user's
sessions; a channel token Twitch refuses means the streamer withdrew the grant, so the
connected event types are switched off.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sev.clock import now_utc
from sev.eventsub.subscriptions import Subscriptions
from sev.store import Broadcaster, Store, User
from sev.twitch import TwitchAuthError, TwitchClient, TwitchError, TwitchUnavailable

log = logging.getLogger(__name__)

LOGIN_ENDED = (
    "Twitch no longer accepts your login to SEV (it was revoked or has expired), "
    "so you were logged out. Log in again to carry on."
)

DISCONNECTED_ON_TWITCH = (
    "You disconnected SEV from your Twitch account, so you were logged out. "
    "Log in again to carry on."
)

# Tells a user's open pages, in every process, that their session ended, and disconnects them
# (Live.end_sessions): (user id, the reason in words).
SessionsEnded = Callable[[str, str], Awaitable[None]]

TokenKind = Literal["login", "channel"]
_FIELDS: dict[TokenKind, tuple[str, str, str, str]] = {
    "login": ("access_token", "refresh_token", "token_expires_at", "scopes"),
    "channel": (
        "channel_access_token",
        "channel_refresh_token",
        "channel_token_expires_at",
        "channel_scopes",
    ),
}


@dataclass(frozen=True)
class Grant:
    """A user token SEV keeps, with what Twitch said about it."""

    access_token: str
    refresh_token: str | None
    expires_at: datetime
    scopes: list[str]

    def fields(self, kind: TokenKind) -> dict[str, Any]:
        """The User fields that hold this grant."""
        access, refresh, expires, scopes = _FIELDS[kind]
        return {
            access: self.access_token,
            refresh: self.refresh_token,
            expires: self.expires_at,
            scopes: list(self.scopes),
        }


def cleared(kind: TokenKind) -> dict[str, Any]:
    """The User fields that forget a grant."""
    access, refresh, expires, scopes = _FIELDS[kind]
    return {access: None, refresh: None, expires: None, scopes: []}


async def end_sessions(
    store: Store, sessions_ended: SessionsEnded, user: User, reason: str
) -> User:
    """Log a user out everywhere: the login token forgotten, every session cookie of theirs
    dead (the epoch moves on), and every open page told why and disconnected."""
    user = user.model_copy(update={**cleared("login"), **user.ended(reason)})
    await store.save_user(user)
    await sessions_ended(user.id, reason)
    return user


async def withdraw_channel(
    store: Store, subscriptions: Subscriptions, user: User
) -> Broadcaster | None:
    """Forget a streamer's channel grant and drop the connected subscriptions it allowed.

    The store is updated first; if Twitch fails while deleting subscriptions, the TwitchError
    propagates and reconciliation removes them later.
    """
    await store.save_user(user.model_copy(update=cleared("channel")))
    broadcaster = await subscriptions.withdraw_scopes(user.id)
    if broadcaster is None:
        return None
    await subscriptions.ensure(broadcaster)
    return broadcaster


async def end_authorization(
    store: Store, subscriptions: Subscriptions, sessions_ended: SessionsEnded, user_id: str
) -> None:
    """The user disconnected SEV on Twitch: every token of theirs is dead, so log them out
    everywhere and drop the connected event types their channel grant allowed."""
    user = await store.get_user(user_id)
    if user is None:
        return
    if user.access_token:
        user = await end_sessions(store, sessions_ended, user, DISCONNECTED_ON_TWITCH)
    log.info("%s disconnected SEV on Twitch: logged out, grants dropped", user.login)
    if user.channel_access_token or user.channel_scopes:
        try:
            await withdraw_channel(store, subscriptions, user)
        except TwitchError as error:
            # The store already says so; reconcile deletes the subscriptions later.
            log.warning("Twitch failed while unsubscribing %s: %s", user.login, error)


class TokenKeeper:
    """Validates every stored user token, refreshing or dropping those Twitch refuses."""

    def __init__(
        self,
        store: Store,
        twitch: TwitchClient,
        subscriptions: Subscriptions,
        sessions_ended: SessionsEnded,
        clock: Any = now_utc,
    ) -> None:
        self._store = store
        self._twitch = twitch
        self._subscriptions = subscriptions
        self._sessions_ended = sessions_ended
        self._clock = clock

    async def validate_all(self) -> None:
        """The periodic duty: check every user's tokens (Twitch down: stop, retry soon)."""
        for user in await self._store.users_with_tokens():
            for kind in ("login", "channel"):
                try:
                    await self.check(user.id, kind)
                except TwitchUnavailable:
                    raise
                except TwitchError as error:
                    # One odd answer must not stop the sweep for everybody else.
                    log.warning("checking the %s token of %s failed: %s", kind, user.login, error)

    async def check(self, user_id: str, kind: TokenKind) -> None:
        """Validate one of a user's tokens now: keep, refresh, or drop it."""
        user = await self._store.get_user(user_id)
        if user is None:
            return
        access, refresh, expires, _ = _FIELDS[kind]
        token: str | None = getattr(user, access)
        if not token:
            return
        grant = await self.renew(user.id, token, getattr(user, refresh), getattr(user, expires))
        # Re-read: the user may have logged in, out or reconnected while Twitch answered, and
        # the newer state wins over what this check found about an older token.
        current = await self._store.get_user(user_id)
        if current is None or getattr(current, access) != token:
            return
        if grant is not None:
            if grant.access_token != token:
                log.info("refreshed the %s token of %s", kind, current.login)
            await self._store.save_user(current.model_copy(update=grant.fields(kind)))
        elif kind == "login":
            log.info("Twitch refused the login token of %s: session ended", current.login)
            await end_sessions(self._store, self._sessions_ended, current, LOGIN_ENDED)
        else:
            log.info("Twitch refused the channel token of %s: grant withdrawn", current.login)
            await withdraw_channel(self._store, self._subscriptions, current)

    async def renew(
        self,
        user_id: str,
        access_token: str,
        refresh_token: str | None,
        expires_at: datetime | None,
    ) -> Grant | None:
        """The grant to keep: the same token if valid, a refreshed one, or None (Twitch refused).

        Raises TwitchUnavailable when Twitch cannot answer: that ends nothing.
        """
        now = self._clock()
        # A token past its expiry is not worth a validation: straight to the refresh.
        if expires_at is None or expires_at > now:
            info = await self._twitch.validate_token(access_token)
            if info is not None and info.user_id == user_id:
                expires = now + timedelta(seconds=info.expires_in)
                return Grant(access_token, refresh_token, expires, list(info.scopes))
        if not refresh_token:
            return None
        try:
            tokens = await self._twitch.refresh_token(refresh_token)
        except TwitchAuthError:
            return None
        # Twitch may rotate the refresh token: the new one is the one to keep.
        expires = now + timedelta(seconds=tokens.expires_in)
        return Grant(tokens.access_token, tokens.refresh_token, expires, list(tokens.scope))
