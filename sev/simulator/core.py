"""The Simulator: state, the ASGI app, background work and the event triggers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from .catalog import CATALOG
from .config import Faults, SimulatorConfig
from .control import ControlRoutes
from .deliveries import Deliveries, envelope
from .directory import Directory
from .generator import Event, build_event
from .helix import HelixRoutes
from .oauth import OAuthRoutes
from .ratelimit import TokenBucket
from .subscriptions import SimSubscription, Subscriptions
from .tokens import Grant, TokenStore

log = logging.getLogger(__name__)


def _matches(sub: SimSubscription, event: Event) -> bool:
    condition = sub.condition
    if sub.type == "channel.raid":
        side = "to" if "to_broadcaster_user_id" in condition else "from"
        key = f"{side}_broadcaster_user_id"
    else:
        key = "user_id" if sub.type == "user.update" else "broadcaster_user_id"
    return condition.get(key) == event.get(key)


class Simulator:
    """A simulated Twitch speaking Twitch's wire contract, with in-memory state to inspect."""

    app: ASGIApp

    def __init__(self, config: SimulatorConfig, *, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.faults = Faults()
        self.directory = Directory()
        self.tokens = TokenStore(config.token_lifetime_s, on_grant_revoked=self._grant_revoked)
        self.subscriptions = Subscriptions(self.directory, self.tokens)
        self._rng = random.Random(config.seed)  # noqa: S311 - event content, not secrets
        self.deliveries = Deliveries(config, self.faults, self.subscriptions, self._rng)
        self._buckets: dict[str, TokenBucket] = {}
        self._http = http
        self._own_http: httpx.AsyncClient | None = None
        self._generator: asyncio.Task[None] | None = None
        self._started = False
        self.app = Starlette(
            routes=[
                Mount("/oauth2", routes=OAuthRoutes(self).routes()),
                Mount("/helix", routes=HelixRoutes(self).routes()),
                Mount("/control", routes=ControlRoutes(self).routes()),
            ],
            lifespan=self._lifespan,
        )

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        """Start the delivery workers and the steady generator (idempotent)."""
        if self._started:
            return
        self._started = True
        http = self._http
        if http is None:
            # Deliveries go to local callbacks: no proxy from the environment, no redirects.
            http = self._own_http = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        self.deliveries.start(http)
        if self.config.events_per_minute > 0:
            self._generator = asyncio.create_task(self._generate())

    async def stop(self) -> None:
        """Stop background work and close the HTTP client the simulator opened itself."""
        if not self._started:
            return
        self._started = False
        if self._generator is not None:
            self._generator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._generator
            self._generator = None
        await self.deliveries.stop()
        if self._own_http is not None:
            await self._own_http.aclose()
            self._own_http = None

    def bucket(self, client_id: str) -> TokenBucket:
        """The rate-limit bucket of a client id (unknown ids share one)."""
        key = client_id if client_id == self.config.client_id else ""
        if key not in self._buckets:
            self._buckets[key] = TokenBucket(
                self.config.rate_limit_points, self.config.rate_limit_window_s
            )
        return self._buckets[key]

    def queue_verification(self, sub: SimSubscription) -> None:
        """Queue the `webhook_callback_verification` challenge of a new subscription."""
        challenge = secrets.token_urlsafe(24)
        self.deliveries.send(envelope(sub, "webhook_callback_verification", challenge=challenge))

    async def trigger(
        self, type: str, broadcaster_login: str, /, count: int = 1, **overrides: Any
    ) -> list[str]:
        """Send `count` events of `type` in a channel to every enabled matching subscription.

        `overrides` replace event fields; `type` and `broadcaster_login` are positional-only so
        that an event's own `type` field (stream.online, hype trains) can be overridden too.
        """
        if type not in CATALOG:
            raise ValueError(f"unknown event type {type!r}")
        account = self.directory.by_login(broadcaster_login)
        if account is None:
            raise LookupError(f"unknown broadcaster {broadcaster_login!r}")
        if count < 1:
            raise ValueError("count must be at least 1")
        # A raid goes into the channel, unless only outgoing raids are subscribed.
        raids = [s.condition for s in self.subscriptions.values() if s.status == "enabled"]
        incoming = any(c.get("to_broadcaster_user_id") == account.id for c in raids)
        outgoing = any(c.get("from_broadcaster_user_id") == account.id for c in raids)
        raided = incoming or not outgoing
        sent: list[str] = []
        for _ in range(count):
            event = build_event(type, account, self.directory, self._rng, raided=raided)
            event.update(overrides)
            sent += self._fan_out(type, event)
        return sent

    def _fan_out(self, type_: str, event: Event) -> list[str]:
        sent = []
        for sub in list(self.subscriptions.values()):
            if sub.status == "enabled" and sub.type == type_ and _matches(sub, event):
                message = envelope(sub, "notification", event=event)
                self.deliveries.send(message)
                sent.append(message.id)
        return sent

    async def _generate(self) -> None:
        rate = self.config.events_per_minute / 60
        while True:
            await asyncio.sleep(self._rng.expovariate(rate))
            enabled = [s for s in self.subscriptions.values() if s.status == "enabled"]
            if not enabled:
                continue
            sub = self._rng.choice(enabled)
            user_id = next(iter(sub.condition.values()))
            account = self.directory.by_id(sub.condition.get("broadcaster_user_id", user_id))
            if account is not None:
                raided = "to_broadcaster_user_id" in sub.condition
                event = build_event(sub.type, account, self.directory, self._rng, raided=raided)
                self._fan_out(sub.type, event)

    def _grant_revoked(self, grant: Grant) -> None:
        for sub in self.subscriptions.revoke_unauthorized(grant):
            log.info("subscription %s revoked: authorization_revoked", sub.id)
            self.deliveries.send(envelope(sub, "revocation"))


def create_simulator(config: SimulatorConfig | None = None) -> Simulator:
    """A simulator with the given (or the default demo) configuration."""
    return Simulator(config or SimulatorConfig())
