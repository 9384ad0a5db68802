"""OAuth state: authorization codes, grants, access and refresh tokens (in memory; kept across
restarts by persistence.py when the simulator has a data dir)."""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_ALPHABET = string.ascii_lowercase + string.digits
CODE_LIFETIME_S = 600


def new_token(length: int = 30) -> str:
    """A random token shaped like Twitch's (lower-case letters and digits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class OAuthFailure(Exception):
    """A refused OAuth request, with the status and message Twitch answers."""

    def __init__(self, status: int, message: str, *, error: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error


@dataclass
class SimGrant:
    """One user's consent to one client for some scopes; its tokens live and die with it."""

    id: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    revoked: bool = False


@dataclass
class AccessToken:
    """An access token: an app token (no user) or a user token (from a grant)."""

    token: str = field(repr=False)
    client_id: str
    expires_at: float
    scopes: tuple[str, ...] = ()
    user_id: str | None = None
    grant_id: str | None = None


@dataclass
class RefreshToken:
    """A refresh token; single use here (each refresh rotates it)."""

    token: str = field(repr=False)
    grant_id: str


@dataclass
class AuthorizationCode:
    """A code handed to the redirect URI, redeemable once within ten minutes."""

    code: str = field(repr=False)
    client_id: str
    redirect_uri: str
    user_id: str
    scopes: tuple[str, ...]
    expires_at: float


class TokenStore:
    """Issues, looks up, refreshes and revokes tokens; tells the owner when a grant dies."""

    def __init__(
        self,
        lifetime_s: int,
        *,
        on_grant_revoked: Callable[[SimGrant], None] = lambda grant: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lifetime_s = lifetime_s
        self.clock = clock
        self.on_grant_revoked = on_grant_revoked
        self.codes: dict[str, AuthorizationCode] = {}
        self.grants: dict[str, SimGrant] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}

    def restore(
        self,
        codes: list[AuthorizationCode],
        grants: list[SimGrant],
        access: list[AccessToken],
        refresh: list[RefreshToken],
    ) -> None:
        """Take over a saved state: a restarted Twitch still knows every token it issued."""
        self.codes = {c.code: c for c in codes}
        self.grants = {g.id: g for g in grants}
        self.access = {t.token: t for t in access}
        self.refresh = {t.token: t for t in refresh}

    def issue_code(
        self, client_id: str, redirect_uri: str, user_id: str, scopes: tuple[str, ...]
    ) -> str:
        """A new authorization code for this consent."""
        now = self.clock()
        self.codes = {k: c for k, c in self.codes.items() if c.expires_at > now}
        code = new_token()
        self.codes[code] = AuthorizationCode(
            code, client_id, redirect_uri, user_id, scopes, now + CODE_LIFETIME_S
        )
        return code

    def redeem_code(
        self, code: str, client_id: str, redirect_uri: str
    ) -> tuple[AccessToken, RefreshToken]:
        """Exchange a code (once) for a user access token and a refresh token."""
        found = self.codes.pop(code, None)
        if found is None or found.expires_at <= self.clock() or found.client_id != client_id:
            raise OAuthFailure(400, "Invalid authorization code")
        if found.redirect_uri != redirect_uri:
            raise OAuthFailure(400, "Parameter redirect_uri does not match registered URI")
        grant = SimGrant(new_token(), client_id, found.user_id, found.scopes)
        self.grants[grant.id] = grant
        return self._user_tokens(grant)

    def issue_app_token(self, client_id: str) -> AccessToken:
        """A new app access token (client credentials); no refresh token, as on Twitch."""
        token = AccessToken(new_token(), client_id, self.clock() + self.lifetime_s)
        self.access[token.token] = token
        return token

    def use_refresh_token(
        self, refresh_token: str, client_id: str
    ) -> tuple[AccessToken, RefreshToken]:
        """New tokens for a live grant; the refresh token rotates (the old one stops working)."""
        found = self.refresh.get(refresh_token)
        grant = self.grants.get(found.grant_id) if found else None
        if found is None or grant is None or grant.revoked or grant.client_id != client_id:
            raise OAuthFailure(400, "Invalid refresh token", error="Bad Request")
        del self.refresh[refresh_token]
        return self._user_tokens(grant)

    def lookup(self, token: str) -> AccessToken | None:
        """The live access token with this value: None when unknown, expired or revoked."""
        found = self.access.get(token)
        if found is None or found.expires_at <= self.clock():
            return None
        if found.grant_id is not None:
            grant = self.grants.get(found.grant_id)
            if grant is None or grant.revoked:
                return None
        return found

    def expires_in(self, token: AccessToken) -> int:
        """Whole seconds left before the token expires."""
        return max(0, int(token.expires_at - self.clock()))

    def revoke(self, token: str, client_id: str) -> bool:
        """Revoke an access or refresh token of this client; a user token takes its grant along."""
        found = self.access.get(token)
        grant_id: str | None
        if found is not None:
            if found.client_id != client_id:
                return False
            grant_id = found.grant_id
            del self.access[token]
        elif token in self.refresh:
            grant_id = self.refresh[token].grant_id
            if self.grants[grant_id].client_id != client_id:
                return False
        else:
            return False
        if grant_id is not None:
            self._revoke_grant(self.grants[grant_id])
        return True

    def revoke_authorization(self, client_id: str, user_id: str) -> None:
        """End every grant the user gave the client (the user disconnected the app)."""
        for grant in list(self.grants.values()):
            if grant.client_id == client_id and grant.user_id == user_id and not grant.revoked:
                self._revoke_grant(grant)

    def owner(self, token: str) -> str | None:
        """The user an access or refresh token belongs to (None for app or unknown tokens)."""
        found = self.access.get(token)
        if found is not None:
            return found.user_id
        refresh = self.refresh.get(token)
        return self.grants[refresh.grant_id].user_id if refresh else None

    def expire(self, token: str) -> None:
        """Make a token expire now (tests use this to exercise 401 paths)."""
        if token in self.access:
            self.access[token].expires_at = self.clock() - 1

    def forget_app_tokens(self) -> None:
        """Drop every app token, as Twitch may invalidate one at any time."""
        self.access = {k: t for k, t in self.access.items() if t.user_id is not None}

    def granted_scopes(self, client_id: str, user_id: str) -> set[str]:
        """Scopes the user has granted the client through grants not revoked."""
        return {
            scope
            for grant in self.grants.values()
            if grant.client_id == client_id and grant.user_id == user_id and not grant.revoked
            for scope in grant.scopes
        }

    def has_authorized(self, client_id: str, user_id: str) -> bool:
        """Whether the user has a live grant for the client (what makes a subscription free)."""
        return any(
            g.client_id == client_id and g.user_id == user_id and not g.revoked
            for g in self.grants.values()
        )

    def _user_tokens(self, grant: SimGrant) -> tuple[AccessToken, RefreshToken]:
        access = AccessToken(
            new_token(),
            grant.client_id,
            self.clock() + self.lifetime_s,
            grant.scopes,
            grant.user_id,
            grant.id,
        )
        refresh = RefreshToken(new_token(50), grant.id)
        self.access[access.token] = access
        self.refresh[refresh.token] = refresh
        return access, refresh

    def _revoke_grant(self, grant: SimGrant) -> None:
        grant.revoked = True
        self.access = {k: t for k, t in self.access.items() if t.grant_id != grant.id}
        self.refresh = {k: t for k, t in self.refresh.items() if t.grant_id != grant.id}
        self.on_grant_revoked(grant)
