"""TwitchClient: the only code SEV uses to talk to Twitch (real or simulated; only URLs differ).

Helix calls use an app access token (client credentials), cached and renewed once on 401.
Rate limits: every Helix answer's `Ratelimit-Remaining`/`Ratelimit-Reset` is remembered; an empty
bucket or a 429 makes the call wait for the reset, for at most `max_rate_limit_wait_s` in all,
then give up with TwitchUnavailable. Tokens and secrets are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sev.events import normalize_condition

log = logging.getLogger(__name__)

USERS_PER_REQUEST = 100
SUBSCRIPTION_FILTERS = frozenset({"status", "type", "user_id", "subscription_id"})


class TwitchError(Exception):
    """Twitch refused or failed a request; `status` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TwitchUnavailable(TwitchError):
    """Network error, timeout, 5xx or rate limit exhausted: callers answer 503."""


class TwitchAuthError(TwitchError):
    """A token is invalid and cannot be renewed (or the app credentials are wrong)."""


class TwitchForbidden(TwitchError):
    """403: the broadcaster has not granted the scope this subscription needs."""


class SubscriptionConflict(TwitchError):
    """409 on create: the same type + condition + callback already exists."""


class SubscriptionRefused(TwitchError):
    """Twitch will not create this subscription now; `reason` says why.

    "limit": 429, three subscriptions with this type and condition exist already;
    "cost": 429 with the app's `max_total_cost` spent;
    "version_removed": 410, Twitch no longer offers this type and version.
    """

    def __init__(self, message: str, status: int, reason: str) -> None:
        super().__init__(message, status)
        self.reason = reason


@dataclass(frozen=True)
class Budget:
    """Twitch's count and cost of the app's subscriptions, from its last create or list answer."""

    total: int
    total_cost: int
    max_total_cost: int

    @property
    def spent(self) -> bool:
        """No room left for a subscription that costs 1."""
        return self.total_cost >= self.max_total_cost

    @classmethod
    def of(cls, body: Any) -> Budget | None:
        """The figures of a Helix answer, or None when it carries none."""
        if not isinstance(body, dict):
            return None
        values = [body.get(k) for k in ("total", "total_cost", "max_total_cost")]
        numbers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
        return cls(*numbers) if len(numbers) == len(values) else None


class _TwitchModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TwitchUser(_TwitchModel):
    """A Helix user (`GET /users`), with Twitch's field names."""

    id: str
    login: str
    display_name: str
    type: str = ""
    broadcaster_type: str = ""
    description: str = ""
    profile_image_url: str = ""
    offline_image_url: str = ""
    created_at: str = ""
    email: str | None = None


class Subscription(_TwitchModel):
    """An EventSub subscription as Helix returns it."""

    id: str
    status: str
    type: str
    version: str
    condition: dict[str, str]
    created_at: str
    cost: int = 0
    # `method` plus `callback` (webhook), `session_id` (websocket) or `conduit_id`; no secret.
    transport: dict[str, str]

    @field_validator("condition", mode="before")
    @classmethod
    def _normalize_condition(cls, value: Any) -> Any:
        # Twitch answers every condition field of the type, the unused ones as "".
        return normalize_condition(value) if isinstance(value, dict) else value

    @field_validator("transport", mode="before")
    @classmethod
    def _drop_nulls(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if v is not None}
        return value


class TokenInfo(_TwitchModel):
    """What `GET /oauth2/validate` says about a token (login/user_id absent for app tokens)."""

    client_id: str
    login: str | None = None
    user_id: str | None = None
    scopes: list[str] = Field(default_factory=list)
    expires_in: int

    @field_validator("scopes", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class TokenSet(_TwitchModel):
    """A user's tokens from `POST /oauth2/token` (store the refresh token: it may change)."""

    access_token: str = Field(repr=False)
    refresh_token: str = Field(repr=False)
    expires_in: int
    scope: list[str] = Field(default_factory=list)
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret

    @field_validator("scope", mode="before")
    @classmethod
    def _scope_list(cls, value: Any) -> Any:
        if value is None:
            return []
        return value.split() if isinstance(value, str) else value


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return response.reason_phrase


def _chunks(items: Sequence[tuple[str, str]], size: int) -> list[list[tuple[str, str]]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class TwitchClient:
    """Talks to Twitch's OAuth and Helix APIs over one shared httpx.AsyncClient."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        client_id: str,
        client_secret: str,
        api_url: str,
        auth_url: str,
        max_rate_limit_wait_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._client_id = client_id
        self._client_secret = client_secret
        self._api_url = api_url.rstrip("/")
        self._auth_url = auth_url.rstrip("/")
        self._max_wait = max_rate_limit_wait_s
        # Epoch seconds (Twitch's Ratelimit-Reset is one) and the wait: tests pass their own.
        self._clock = clock
        self._sleep = sleep
        self._app_token: str | None = None
        self._token_lock = asyncio.Lock()
        self._remaining: int | None = None
        self._reset_at = 0.0
        # The subscription figures of Twitch's latest create or list answer.
        self.budget: Budget | None = None

    @property
    def client_id(self) -> str:
        """The app's client id (public)."""
        return self._client_id

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise TwitchUnavailable(f"Twitch timed out ({method} {url})") from exc
        except httpx.HTTPError as exc:
            raise TwitchUnavailable(f"Twitch unreachable ({method} {url}): {exc}") from exc
        if response.status_code >= 500:
            raise TwitchUnavailable(
                f"Twitch failed ({method} {url}): {response.status_code}", response.status_code
            )
        return response

    async def _fetch_app_token(self) -> str:
        response = await self._send(
            "POST",
            f"{self._auth_url}/token",
            data={
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "grant_type": "client_credentials",
            },
        )
        if response.status_code != 200:
            raise TwitchAuthError(f"app token refused: {_message(response)}", response.status_code)
        token = response.json().get("access_token")
        if not isinstance(token, str) or not token:
            raise TwitchError("app token response without access_token", response.status_code)
        return token

    async def app_token(self) -> str:
        """The app access token (client credentials), fetched once and cached."""
        async with self._token_lock:
            if self._app_token is None:
                self._app_token = await self._fetch_app_token()
            return self._app_token

    async def _renew_app_token(self, rejected: str) -> str:
        async with self._token_lock:
            # Concurrent callers that saw the same 401 share one renewal.
            token = self._app_token
            if token is None or token == rejected:
                token = self._app_token = await self._fetch_app_token()
            return token

    def _note_rate_limit(self, response: httpx.Response) -> None:
        remaining = response.headers.get("ratelimit-remaining")
        reset = response.headers.get("ratelimit-reset")
        try:
            self._remaining = int(remaining) if remaining is not None else None
            self._reset_at = float(reset) if reset is not None else self._reset_at
        except ValueError:
            self._remaining = None

    async def _wait_for_rate_limit(self, deadline: float) -> None:
        wait = self._reset_at - self._clock()
        budget = deadline - self._clock()
        if budget <= 0:
            raise TwitchUnavailable("Twitch rate limit: still empty after waiting", 429)
        await self._sleep(min(max(wait, 0.05), budget))

    async def _helix(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A Helix call with the app token: renewed once on 401, rate limits waited out."""
        deadline = self._clock() + self._max_wait
        token = await self.app_token()
        renewed = False
        while True:
            if self._remaining == 0 and self._reset_at > self._clock():
                await self._wait_for_rate_limit(deadline)
            headers = {"Authorization": f"Bearer {token}", "Client-Id": self._client_id}
            response = await self._send(method, f"{self._api_url}{path}", headers=headers, **kwargs)
            self._note_rate_limit(response)
            if response.status_code == 401 and not renewed:
                log.info("Twitch refused the app token (401); getting a new one")
                token = await self._renew_app_token(token)
                renewed = True
                continue
            if response.status_code == 401:
                raise TwitchAuthError(
                    f"Twitch refused a fresh app token: {_message(response)}", 401
                )
            # A 429 with points left is not the rate limit (e.g. too many same subscriptions).
            if response.status_code == 429 and self._remaining in (0, None):
                log.warning("Twitch rate limit reached; waiting for the reset")
                await self._wait_for_rate_limit(deadline)
                self._remaining = None
                continue
            return response

    def _raise_for(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        message = f"{what}: {status} {_message(response)}"
        if status == 403:
            raise TwitchForbidden(message, status)
        if status == 409:
            raise SubscriptionConflict(message, status)
        if status == 410:
            raise SubscriptionRefused(message, status, "version_removed")
        if status == 429:
            # Not the rate limit (_helix waits that out): a limit of EventSub's own.
            spent = "cost" in message.lower() or (self.budget is not None and self.budget.spent)
            raise SubscriptionRefused(message, status, "cost" if spent else "limit")
        raise TwitchError(message, status)

    async def get_users(
        self, *, logins: Sequence[str] = (), ids: Sequence[str] = ()
    ) -> list[TwitchUser]:
        """Users by login and/or id, in batches of 100; unknown ones are simply absent."""
        wanted = list(dict.fromkeys([("id", i) for i in ids] + [("login", n) for n in logins]))
        users: dict[str, TwitchUser] = {}
        for batch in _chunks(wanted, USERS_PER_REQUEST):
            response = await self._helix("GET", "/users", params=batch)
            self._raise_for(response, "get users")
            for item in response.json().get("data", []):
                user = TwitchUser.model_validate(item)
                users[user.id] = user
        return list(users.values())

    async def create_subscription(
        self, type: str, version: str, condition: dict[str, str], callback: str, secret: str
    ) -> Subscription:
        """Create a webhook subscription (Twitch then sends its challenge to `callback`)."""
        body = {
            "type": type,
            "version": version,
            "condition": condition,
            "transport": {"method": "webhook", "callback": callback, "secret": secret},
        }
        response = await self._helix("POST", "/eventsub/subscriptions", json=body)
        self._raise_for(response, f"create {type} subscription")
        answer = response.json()
        self.budget = Budget.of(answer) or self.budget
        return Subscription.model_validate(answer["data"][0])

    async def _user_helix(
        self, method: str, path: str, user_token: str, **kwargs: Any
    ) -> httpx.Response:
        """A Helix call with a user's token (WebSocket subscriptions need one). A 401 is
        Twitch refusing that token: TwitchAuthError, for the token keeper to mend."""
        headers = {"Authorization": f"Bearer {user_token}", "Client-Id": self._client_id}
        response = await self._send(method, f"{self._api_url}{path}", headers=headers, **kwargs)
        if response.status_code == 401:
            raise TwitchAuthError(f"Twitch refused a user token: {_message(response)}", 401)
        return response

    async def create_socket_subscription(
        self,
        type: str,
        version: str,
        condition: dict[str, str],
        session_id: str,
        user_token: str,
    ) -> tuple[Subscription, Budget | None]:
        """Create a WebSocket subscription on `session_id` with a user's token; returns it with
        that user's own cost figures (a WebSocket budget is per user, not per app)."""
        body = {
            "type": type,
            "version": version,
            "condition": condition,
            "transport": {"method": "websocket", "session_id": session_id},
        }
        response = await self._user_helix("POST", "/eventsub/subscriptions", user_token, json=body)
        if response.status_code == 429:
            message = f"create {type} subscription: 429 {_message(response)}"
            reason = "cost" if "cost" in message.lower() else "limit"
            raise SubscriptionRefused(message, 429, reason)
        self._raise_for(response, f"create {type} subscription")
        answer = response.json()
        return Subscription.model_validate(answer["data"][0]), Budget.of(answer)

    async def delete_socket_subscription(self, subscription_id: str, user_token: str) -> bool:
        """Delete a WebSocket subscription with the token of the user who made it."""
        response = await self._user_helix(
            "DELETE", "/eventsub/subscriptions", user_token, params={"id": subscription_id}
        )
        if response.status_code == 404:
            return False
        self._raise_for(response, "delete subscription")
        return True

    async def list_subscriptions(
        self, *, first: int | None = None, **one_filter: str
    ) -> AsyncIterator[Subscription]:
        """Every subscription (optionally one of status/type/user_id/subscription_id), all pages."""
        if len(one_filter) > 1 or not set(one_filter) <= SUBSCRIPTION_FILTERS:
            raise ValueError(f"at most one filter of {sorted(SUBSCRIPTION_FILTERS)}")
        params: dict[str, str] = dict(one_filter)
        if first is not None:
            params["first"] = str(first)
        while True:
            response = await self._helix("GET", "/eventsub/subscriptions", params=params)
            self._raise_for(response, "list subscriptions")
            body = response.json()
            self.budget = Budget.of(body) or self.budget
            for item in body.get("data", []):
                yield Subscription.model_validate(item)
            cursor = (body.get("pagination") or {}).get("cursor")
            if not cursor:
                return
            params["after"] = cursor

    async def delete_subscription(self, subscription_id: str) -> bool:
        """Delete a subscription: True when deleted, False when Twitch did not know it (404)."""
        response = await self._helix(
            "DELETE", "/eventsub/subscriptions", params={"id": subscription_id}
        )
        if response.status_code == 404:
            return False
        self._raise_for(response, "delete subscription")
        return True

    async def validate_token(self, access_token: str) -> TokenInfo | None:
        """What a user token is (validate at login and hourly); None when it is invalid."""
        response = await self._send(
            "GET",
            f"{self._auth_url}/validate",
            headers={"Authorization": f"OAuth {access_token}"},
        )
        if response.status_code == 401:
            return None
        self._raise_for(response, "validate token")
        return TokenInfo.model_validate(response.json())

    async def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        """Exchange an authorization code for a user's tokens."""
        return await self._user_tokens(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        )

    async def refresh_token(self, refresh_token: str) -> TokenSet:
        """New tokens for a refresh token; TwitchAuthError when the user must log in again."""
        return await self._user_tokens(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )

    async def _user_tokens(self, form: dict[str, str]) -> TokenSet:
        data = {**form, "client_id": self._client_id, "client_secret": self._client_secret}
        response = await self._send("POST", f"{self._auth_url}/token", data=data)
        if response.status_code in (400, 401, 403):
            raise TwitchAuthError(
                f"{form['grant_type']} refused: {_message(response)}", response.status_code
            )
        self._raise_for(response, form["grant_type"])
        try:
            return TokenSet.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            raise TwitchError("malformed token response", response.status_code) from exc

    async def revoke_token(self, access_token: str) -> None:
        """Revoke a token (logout); a token Twitch no longer knows counts as revoked."""
        response = await self._send(
            "POST",
            f"{self._auth_url}/revoke",
            data={"client_id": self._client_id, "token": access_token},
        )
        if response.status_code == 400:
            return
        self._raise_for(response, "revoke token")
