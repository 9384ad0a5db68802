"""The Simulator: state, the ASGI app, background work and the event triggers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from .config import Faults, SimulatorConfig
from .control import ControlRoutes
from .deliveries import Deliveries, envelope
from .directory import Account, Directory
from .generator import SimEvent, generate_event, gift_recipients
from .helix import HelixRoutes
from .images import PROFILE_IMAGES, ImageRoutes
from .oauth import OAuthRoutes
from .persistence import STATE_FILE, SavedState, StateFile, snapshot
from .ratelimit import TokenBucket
from .streams import StreamOrigin, StreamShow
from .subscriptions import REVOCATION_STATUSES, SimSubscription, SimSubscriptions
from .tokens import AccessToken, SimGrant, TokenStore
from .triggers import resolve, why_nothing_sent
from .websocket import EventSockets

log = logging.getLogger(__name__)


def _matches(sub: SimSubscription, event: SimEvent) -> bool:
    condition = sub.condition
    if sub.type == "channel.raid":
        # Both sides are in the condition; the unused one is "".
        side = "to" if condition.get("to_broadcaster_user_id") else "from"
        key = f"{side}_broadcaster_user_id"
    else:
        key = "user_id" if sub.type == "user.update" else "broadcaster_user_id"
    if key not in event:
        # Charity campaign events name the channel `broadcaster_id` though their condition
        # says `broadcaster_user_id`.
        return condition.get(key) == event.get("broadcaster_id")
    return condition.get(key) == event.get(key)


def _channel_of(sub: SimSubscription) -> str | None:
    """The user whose events a subscription carries (None for the app's own)."""
    return next(
        (v for k, v in sub.condition.items() if v and k not in ("client_id", "reward_id")), None
    )


class Simulator:
    """A simulated Twitch speaking Twitch's wire contract, with in-memory state to inspect
    (kept in `config.data_dir` across restarts when there is one)."""

    app: ASGIApp

    def __init__(self, config: SimulatorConfig, *, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.faults = Faults()
        self.directory = Directory()
        self.tokens = TokenStore(config.token_lifetime_s, on_grant_revoked=self._grant_revoked)
        self.subscriptions = SimSubscriptions(self.directory, self.tokens)
        self.subscriptions.callbacks = config.callbacks
        self._rng = random.Random(config.seed)  # noqa: S311 - event content, not secrets
        # Each demo stream's origin, and until when (wall clock) the streams had played: enough
        # to take them up again after a restart rather than have every channel go live anew.
        self._stream_origins: dict[str, StreamOrigin] = {}
        self._streams_played_until: float | None = None
        self._state: StateFile | None = None
        self.deliveries = Deliveries(
            config, self.faults, self.subscriptions, self._rng, on_change=self.changed
        )
        self.sockets = EventSockets(config, self.subscriptions, on_change=self.changed)
        if config.data_dir is not None:
            self._state = StateFile(config.data_dir / STATE_FILE, self._snapshot)
            saved = self._state.load()
            if saved is not None:
                self._restore(saved)
        self._buckets: dict[str, TokenBucket] = {}
        # The latest Helix requests (method, path, query, status), for tests to count.
        self.helix_requests: deque[dict[str, Any]] = deque(maxlen=5000)
        self.helix_request_count = 0
        self._http = http
        self._own_http: httpx.AsyncClient | None = None
        self._generator: asyncio.Task[None] | None = None
        self._started = False
        self._routes = Starlette(
            routes=[
                Mount("/oauth2", routes=OAuthRoutes(self).routes()),
                Mount("/helix", routes=HelixRoutes(self).routes()),
                Mount("/control", routes=ControlRoutes(self).routes()),
                Mount(PROFILE_IMAGES, routes=ImageRoutes(self).routes()),
                WebSocketRoute("/ws", self.sockets.endpoint),
            ],
            lifespan=self._lifespan,
        )

        # A plain coroutine function (not a bound method), so that servers see an ASGI 3 app.
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                await self._routes(scope, receive, send)
            finally:
                # Every change to what is kept comes through a request or a delivery (which
                # says so itself); a request that changed nothing costs the saver a comparison.
                if scope["type"] == "http":
                    self.changed()

        self.app = app

    def changed(self) -> None:
        """State worth keeping may have changed: save it soon (no-op without a data dir)."""
        if self._state is not None:
            self._state.changed()

    def _snapshot(self) -> dict[str, Any]:
        return snapshot(
            self.tokens,
            self.subscriptions,
            self.directory,
            self.deliveries,
            streams=(self._stream_origins, self._streams_played_until),
        )

    def _restore(self, saved: SavedState) -> None:
        access = saved.access
        if self.config.public:
            # A public demo's app tokens are SEV's alone, and SEV asks again on a 401: none is
            # kept across a restart, so one taken with an earlier secret (before the demo had a
            # secret of its own) does not outlive it.
            access = [token for token in access if token.user_id is not None]
        self.tokens.restore(saved.codes, saved.grants, access, saved.refresh)
        self.subscriptions.restore(
            saved.subscriptions,
            seq=saved.subscription_seq,
            max_total_cost=saved.max_total_cost,
            removed_versions=saved.removed_versions,
        )
        for user_id in saved.removed_users:
            self.directory.remove(user_id)
        self.deliveries.resume(saved.messages)
        self._stream_origins = dict(saved.stream_origins)
        self._streams_played_until = saved.streams_played_until
        log.info(
            "simulated Twitch: state restored from %s (%d tokens, %d subscriptions, %d messages "
            "to send)",
            self.config.data_dir,
            len(saved.access),
            len(saved.subscriptions),
            len(saved.messages),
        )

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        """Start the delivery workers and the demo streams (idempotent)."""
        if self._started:
            return
        self._started = True
        http = self._http
        if http is None:
            # Deliveries go to local callbacks: no proxy from the environment, no redirects.
            http = self._own_http = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        self.deliveries.start(http)
        if self._state is not None:
            self._state.start()
        if self.config.events_per_minute > 0:
            self._generator = asyncio.create_task(self._generate())

    async def stop(self) -> None:
        """Stop background work, save the state (with the messages not yet delivered) and close
        the HTTP client the simulator opened itself."""
        if not self._started:
            return
        self._started = False
        if self._generator is not None:
            self._generator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._generator
            self._generator = None
        await self.sockets.stop()
        await self.deliveries.stop()
        if self._state is not None:
            await self._state.stop()
        if self._own_http is not None:
            await self._own_http.aclose()
            self._own_http = None

    def bucket(self, token: AccessToken) -> TokenBucket:
        """The rate-limit bucket an authenticated request draws on: its client id's for an app
        token, its client id and user's for a user token (ratelimit.py)."""
        # Tokens exist only for the configured client and the directory's users: bounded.
        key = f"{token.client_id}/{token.user_id or ''}"
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
        """Send `count` events of `type` (or its twitch-cli alias, triggers.py) in a channel to
        every enabled matching subscription.

        `overrides` replace event fields; `type` and `broadcaster_login` are positional-only so
        that an event's own `type` field (stream.online, hype trains) can be overridden too.
        """
        type, fixed = resolve(type)
        overrides = {**fixed, **overrides}
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
            event = generate_event(type, account, self.directory, self._rng, raided=raided)
            event.update(overrides)
            sent += self._send(type, event, account, self._rng)
        return sent

    def why_nothing_sent(self, name: str, broadcaster_login: str) -> dict[str, Any]:
        """Why a trigger of `name` in this channel reached no subscription (triggers.py)."""
        type_, _ = resolve(name)
        account = self.directory.by_login(broadcaster_login)
        if account is None:
            raise LookupError(f"unknown broadcaster {broadcaster_login!r}")
        granted = self.tokens.granted_scopes(self.config.client_id, account.id)
        return why_nothing_sent(type_, account, self.subscriptions.values(), granted)

    def _send(self, type_: str, event: SimEvent, account: Account, rng: random.Random) -> list[str]:
        """Fan an event out; a community gift is followed by each recipient's channel.subscribe
        (`is_gift: true`), as Twitch sends them. The message ids, the gift's first."""
        sent = self._fan_out(type_, event)
        if type_ == "channel.subscription.gift":
            for recipient in gift_recipients(event, account, self.directory, rng):
                sent += self._fan_out("channel.subscribe", recipient)
        return sent

    def _fan_out(self, type_: str, event: SimEvent) -> list[str]:
        sent = []
        for sub in list(self.subscriptions.values()):
            if sub.status != "enabled" or sub.type != type_ or not _matches(sub, event):
                continue
            if sub.websocket:
                message_id = self.sockets.notify(sub, event)
                if message_id is not None:
                    sent.append(message_id)
                continue
            message = envelope(sub, "notification", event=event)
            self.deliveries.send(message)
            sent.append(message.id)
        return sent

    async def _generate(self) -> None:
        """Play each subscribed demo streamer's stream (streams.py) to its live subscriptions.

        A channel's stream starts when it first has an enabled subscription and then runs on
        its own clock, whoever subscribes or leaves: a favourite set again finds the same
        session, not a new one going live.
        """
        loop = asyncio.get_running_loop()
        mean_gap_s = 60 / self.config.events_per_minute
        # The streams run on the loop's clock; their origins are kept on the wall clock.
        wall_to_loop = loop.time() - time.time()
        shows = {
            channel_id: self._resume_show(origin, wall_to_loop, mean_gap_s)
            for channel_id, origin in self._stream_origins.items()
        }
        while True:
            now = loop.time()
            for channel_id in self._subscribed_channels() - shows.keys():
                seed = (
                    secrets.token_hex(8)
                    if self.config.seed is None
                    else f"{self.config.seed}/{channel_id}"
                )
                self._stream_origins[channel_id] = StreamOrigin(seed, now - wall_to_loop)
                rng = random.Random(seed)  # noqa: S311 - event content, not secrets
                shows[channel_id] = StreamShow(rng, start=now, mean_gap_s=mean_gap_s)
                self.changed()
            self._streams_played_until = now - wall_to_loop
            for channel_id, show in shows.items():
                account = self.directory.by_id(channel_id)
                for planned in show.due(now):
                    if account is not None:
                        event = generate_event(
                            planned.type, account, self.directory, show.rng, raided=planned.raided
                        )
                        self._send(planned.type, event, account, show.rng)
            wake = min((show.next_at for show in shows.values()), default=now + 1)
            # At least once a second: a streamer may have gained their first subscriber.
            await asyncio.sleep(min(max(wake - now, 0.0), 1.0))

    def _resume_show(
        self, origin: StreamOrigin, wall_to_loop: float, mean_gap_s: float
    ) -> StreamShow:
        """A stream of an earlier run, played again from its seed up to where that run was."""
        rng = random.Random(origin.seed)  # noqa: S311 - event content, not secrets
        show = StreamShow(rng, start=origin.start + wall_to_loop, mean_gap_s=mean_gap_s)
        if self._streams_played_until is not None:
            # Sent before the restart; what fell due while it was down comes next, as after
            # any stall (going live or offline is sent, a missed trickle of follows is not).
            show.due(self._streams_played_until + wall_to_loop)
        return show

    def _subscribed_channels(self) -> set[str]:
        """The demo streamers named by an enabled subscription."""
        named = {_channel_of(s) for s in self.subscriptions.values() if s.status == "enabled"}
        return {account.id for account in self.directory.streamers if account.id in named}

    def _grant_revoked(self, grant: SimGrant) -> None:
        self.revoke(self.subscriptions.revoke_unauthorized(grant), "authorization_revoked")

    def revoke(self, subs: list[SimSubscription], status: str) -> list[str]:
        """Revoke subscriptions with one of Twitch's documented statuses; send each revocation."""
        if status not in REVOCATION_STATUSES:
            raise ValueError(f"not a revocation status: {status!r}")
        for sub in subs:
            sub.status = status
            if status == "version_removed":
                self.subscriptions.removed_versions.add((sub.type, sub.version))
            log.info("subscription %s revoked: %s", sub.id, status)
            if sub.websocket:
                self.sockets.revoke(sub)
            else:
                self.deliveries.send(envelope(sub, "revocation"))
        return [sub.id for sub in subs]

    def remove_user(self, login: str) -> list[str]:
        """The account is deleted or suspended: its subscriptions are revoked (user_removed)."""
        account = self.directory.by_login(login)
        if account is None:
            raise LookupError(f"unknown account {login!r}")
        self.directory.remove(account.id)
        # Kept even when no subscription names the account (no revocation to send).
        self.changed()
        return self.revoke(self.subscriptions.matching(user_id=account.id), "user_removed")

    def disconnect(self, login: str) -> list[str]:
        """The user disconnects the app on Twitch's Connections page: every token of theirs
        dies, what relied on their authorization is revoked, and user.authorization.revoke
        subscribers hear of it. Returns the notification message ids."""
        account = self.directory.by_login(login)
        if account is None:
            raise LookupError(f"unknown account {login!r}")
        client_id = self.config.client_id
        self.tokens.revoke_authorization(client_id, account.id)
        event = {
            "client_id": client_id,
            "user_id": account.id,
            "user_login": account.login,
            "user_name": account.display_name,
        }
        sent = []
        for sub in self.subscriptions.matching(type="user.authorization.revoke"):
            if sub.status == "enabled" and sub.condition.get("client_id") == client_id:
                message = envelope(sub, "notification", event=event)
                self.deliveries.send(message)
                sent.append(message.id)
        return sent


def create_simulator(config: SimulatorConfig | None = None) -> Simulator:
    """A simulator with the given (or the default demo) configuration."""
    return Simulator(config or SimulatorConfig())
