"""All carriers of this process: one EventSub WebSocket per carrier it holds the lease of, and
the subscriptions on them kept in line with the plan (sev/eventsub/websocket/plan.py).

With several SEV processes, each carrier's connection is held by one process at a time through a
store lease (`eventsub-socket:{user id}`), renewed every tick and taken over by another process
within one lease period if the holder dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from sev.clock import now_utc
from sev.config import Settings
from sev.events import wanted_types
from sev.eventsub.protocol import Message
from sev.eventsub.websocket.carrier import TICK_S, CarrierSocket
from sev.eventsub.websocket.plan import (
    NO_CARRIER,
    Plan,
    Wanted,
    plan,
    refusal,
    token_of,
)
from sev.eventsub.websocket.rules import keepalive_floor
from sev.store import Broadcaster, Refusal, Store, StoreUnavailable, SubscriptionRecord
from sev.store.records import RefusalReason
from sev.tokens import TokenKind
from sev.twitch import (
    SubscriptionConflict,
    SubscriptionRefused,
    TwitchAuthError,
    TwitchClient,
    TwitchError,
    TwitchForbidden,
    TwitchUnavailable,
)

log = logging.getLogger(__name__)

# What Twitch's refusal of a WebSocket subscription (SubscriptionRefused.reason) is held back
# as: its limits over a WebSocket are per viewer's login (any reason but these: SOCKET_LIMIT).
SOCKET_REFUSALS: dict[str, RefusalReason] = {
    "cost": RefusalReason.SOCKET_COST,
    "version_removed": RefusalReason.VERSION_REMOVED,
}

# sev/eventsub/receiver.py's Receiver.receive: the webhook's path for a genuine message.
Receive = Callable[[Message, datetime], Awaitable[None]]


class _TokenRenewed(Exception):
    """Twitch refused a carrier's token, which was then renewed: subscribe again with it."""


class SocketTransport:
    """Keeps one EventSub WebSocket per carrier this process holds the lease of."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        twitch: TwitchClient,
        *,
        receive: Receive,
        note_refusals: Callable[[str, dict[str, Refusal | None]], Awaitable[None]],
        check_token: Callable[[str, TokenKind], Awaitable[None]],
        holder: str,
        clock: Callable[[], datetime] = now_utc,
        wake: asyncio.Event | None = None,
    ) -> None:
        self.url = settings.twitch_eventsub_ws_url
        self.floor = keepalive_floor(self.url)
        self._lease_s = settings.sev_eventsub_lease_s
        self._tick_s = min(TICK_S, self._lease_s / 3)
        self._settings = settings
        self._store = store
        self._twitch = twitch
        self._receive = receive
        self._note_refusals = note_refusals
        # TokenKeeper.check: validate one of a user's tokens, refreshing (or dropping) it.
        self._check_token = check_token
        self._holder = holder
        self._clock = clock
        self._sockets: dict[str, CarrierSocket] = {}
        # Set (by `wake`, or by whoever shares the event) when something changed: plan again now.
        self._wake = wake if wake is not None else asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="sev-eventsub-sockets")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for carrier_id in list(self._sockets):
            await self._drop(carrier_id)

    def wake(self) -> None:
        """Something changed (a favourite, a login, a grant): plan again now."""
        self._wake.set()

    def now(self) -> datetime:
        return self._clock()

    async def receive(self, message: Message) -> None:
        """An admitted notification or revocation from any connection: the webhook's path."""
        await self._receive(message, self._clock())

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as error:
                log.warning("EventSub WebSocket planning: store unavailable (%s)", error)
            except Exception:
                log.exception("EventSub WebSocket planning failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._tick_s)
            self._wake.clear()

    async def tick(self) -> None:
        """Plan, take or renew the carriers' leases, and (dis)connect accordingly."""
        now = self._clock()
        grace = timedelta(seconds=self._settings.sev_release_grace_s)
        broadcasters = await self._store.list_broadcasters()
        current = plan(broadcasters, await self._store.users_with_tokens(), now, grace)
        await self._note_uncarried(broadcasters, current, now)
        for carrier_id, wanted in current.carriers.items():
            if not wanted:
                continue
            held = await self._store.try_lease(_lease(carrier_id), self._holder, self._lease_s, now)
            if not held:
                if carrier_id in self._sockets:
                    log.info("another process took over the EventSub WebSocket of %s", carrier_id)
                    await self._drop(carrier_id, release=False)
                continue
            socket = self._sockets.get(carrier_id)
            if socket is None:
                socket = self._sockets[carrier_id] = CarrierSocket(carrier_id, self)
                await socket.assign(wanted)
                socket.start()
            else:
                await socket.assign(wanted)
        for carrier_id in set(self._sockets) - {c for c, w in current.carriers.items() if w}:
            await self._drop(carrier_id)

    async def _drop(self, carrier_id: str, *, release: bool = True) -> None:
        socket = self._sockets.pop(carrier_id, None)
        if socket is not None:
            with contextlib.suppress(Exception):
                await socket.assign([])
            await socket.stop()
        if release:
            with contextlib.suppress(StoreUnavailable, TimeoutError):
                await asyncio.wait_for(
                    self._store.try_lease(_lease(carrier_id), self._holder, 0, self._clock()), 1.0
                )

    async def _note_uncarried(
        self, broadcasters: Sequence[Broadcaster], current: Plan, now: datetime
    ) -> None:
        """Say on each channel's page which public types nobody can carry, and stop saying it
        once someone can."""
        for broadcaster in broadcasters:
            keys = set(current.uncarried.get(broadcaster.id, []))
            stale = {r.key for r in broadcaster.refusals if r.reason == NO_CARRIER} - keys
            fresh = keys - {r.key for r in broadcaster.refusals if r.reason == NO_CARRIER}
            if not stale and not fresh:
                continue
            decided: dict[str, Refusal | None] = dict.fromkeys(stale)
            for entry in wanted_types(set()):
                if entry.key in fresh:
                    decided[entry.key] = refusal(entry, NO_CARRIER, now)
            await self._note_refusals(broadcaster.id, decided)

    # -- what a connection asks of the transport -----------------------------------------------

    async def sync(
        self,
        user_id: str,
        session_id: str,
        wanted: dict[tuple[str, str], Wanted],
        subscribed: dict[tuple[str, str], str],
    ) -> None:
        """Bring one session's subscriptions in line with `wanted` (mutates `subscribed`)."""
        try:
            await self._sync(user_id, session_id, wanted, subscribed, renew=True)
        except _TokenRenewed:
            # Within the welcome's window: at once, with the renewed token.
            await self._sync(user_id, session_id, wanted, subscribed, renew=False)

    async def _sync(
        self,
        user_id: str,
        session_id: str,
        wanted: dict[tuple[str, str], Wanted],
        subscribed: dict[tuple[str, str], str],
        *,
        renew: bool,
    ) -> None:
        user = await self._store.get_user(user_id)
        token = token_of(user)
        if token is None:
            return
        now = self._clock()
        decided: dict[str, dict[str, Refusal | None]] = {}
        for key in [k for k in subscribed if k not in wanted]:
            subscription_id = subscribed.pop(key)
            with contextlib.suppress(TwitchAuthError):
                await self._twitch.delete_socket_subscription(subscription_id, token)
            await self._store.delete_subscription(subscription_id)
        for key, item in wanted.items():
            if key in subscribed:
                continue
            entry = item.entry
            try:
                created, _ = await self._twitch.create_socket_subscription(
                    entry.type,
                    entry.version,
                    entry.condition(item.broadcaster_id),
                    session_id,
                    token,
                )
            except SubscriptionRefused as refused:
                reason = SOCKET_REFUSALS.get(refused.reason, RefusalReason.SOCKET_LIMIT)
                log.warning("Twitch refused %s over WebSocket: %s", entry.type, refused)
                decided.setdefault(item.broadcaster_id, {})[entry.key] = refusal(entry, reason, now)
                continue
            except TwitchForbidden as forbidden:
                log.warning("Twitch refused %s over WebSocket: %s", entry.type, forbidden)
                decided.setdefault(item.broadcaster_id, {})[entry.key] = refusal(
                    entry, RefusalReason.FORBIDDEN, now
                )
                continue
            except SubscriptionConflict:
                # Already on this session (a retry after a lost answer): Twitch holds it.
                continue
            except TwitchAuthError as error:
                # Expired (or revoked): refresh it now rather than at the next hourly check,
                # then try again (a refused one ends the grant and the plan moves on).
                log.info("Twitch refused the token of %s (%s); renewing it", user_id, error)
                if not renew:
                    raise TwitchUnavailable("Twitch refused a renewed token too") from error
                kind: TokenKind = "channel" if user and user.channel_access_token else "login"
                with contextlib.suppress(TwitchError):
                    await self._check_token(user_id, kind)
                raise _TokenRenewed from error
            except TwitchUnavailable:
                raise
            except TwitchError as error:
                log.warning("subscribing to %s over WebSocket failed: %s", entry.type, error)
                continue
            subscribed[key] = created.id
            decided.setdefault(item.broadcaster_id, {})[entry.key] = None
            await self._store.save_subscription(
                SubscriptionRecord(
                    id=created.id,
                    broadcaster_id=item.broadcaster_id,
                    type=created.type,
                    version=created.version,
                    condition=dict(created.condition),
                    status=created.status,
                    created_at=created.created_at,
                    carrier_id=user_id,
                    session_id=session_id,
                )
            )
        for broadcaster_id, changes in decided.items():
            await self._note_refusals(broadcaster_id, changes)

    async def moved(self, ids: set[str], session_id: str) -> None:
        """The subscriptions carried over to a new session after a reconnect."""
        for subscription_id in ids:
            record = await self._store.get_subscription(subscription_id)
            if record is not None:
                await self._store.save_subscription(
                    record.model_copy(update={"session_id": session_id})
                )

    async def forget(self, ids: set[str], status: str | None) -> None:
        """Mark (or delete) the records of subscriptions whose connection ended."""
        for subscription_id in ids:
            record = await self._store.get_subscription(subscription_id)
            if record is None:
                continue
            if status is None:
                await self._store.delete_subscription(subscription_id)
            elif record.status == "enabled":
                await self._store.save_subscription(record.model_copy(update={"status": status}))


def _lease(carrier_id: str) -> str:
    return f"eventsub-socket:{carrier_id}"
