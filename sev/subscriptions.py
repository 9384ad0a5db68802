"""EventSub subscriptions, shared per broadcaster: ensure, reconcile, release, revocations.

One set of subscriptions per broadcaster however many viewers favour them (Twitch allows at most
3 identical subscriptions and charges against a cost budget). Created when the first viewer
favours a streamer, reconciled against Twitch at start-up and on an interval, released after a
grace period once nobody favours the streamer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sev.config import Settings
from sev.events import EventType, broadcaster_id_of, wanted_types
from sev.eventsub import now_utc
from sev.store import Broadcaster, Store, SubscriptionRecord
from sev.twitch import Subscription, SubscriptionConflict, TwitchClient, TwitchError

log = logging.getLogger(__name__)

# Statuses in which a subscription still works (or is about to).
LIVE_STATUSES = frozenset({"enabled", "webhook_callback_verification_pending"})
Notify = Callable[[str, dict[str, Any]], Awaitable[None]]


def _same(record: SubscriptionRecord | Subscription, entry: EventType, broadcaster_id: str) -> bool:
    return record.type == entry.type and record.condition == entry.condition(broadcaster_id)


class Subscriptions:
    """Keeps Twitch's subscriptions in line with what SEV's viewers want."""

    def __init__(
        self, settings: Settings, store: Store, twitch: TwitchClient, notify: Notify
    ) -> None:
        self._settings = settings
        self._store = store
        self._twitch = twitch
        self._notify = notify
        self._lock = asyncio.Lock()
        # Challenges answered in this process: Twitch enables those subscriptions. The challenge
        # can arrive before create_subscription returns, so creation checks here too.
        self._verified: set[str] = set()

    def _to_record(self, subscription: Subscription, broadcaster_id: str) -> SubscriptionRecord:
        return SubscriptionRecord(
            id=subscription.id,
            broadcaster_id=broadcaster_id,
            type=subscription.type,
            version=subscription.version,
            condition=dict(subscription.condition),
            status=subscription.status,
            created_at=subscription.created_at or "",
        )

    async def ensure(self, broadcaster: Broadcaster) -> None:
        """Create whatever of the wanted set this broadcaster is missing (raises TwitchError)."""
        async with self._lock:
            await self._ensure(broadcaster, await self._store.list_subscriptions(broadcaster.id))

    async def _ensure(self, broadcaster: Broadcaster, records: list[SubscriptionRecord]) -> None:
        wanted = wanted_types(set(broadcaster.granted_scopes))
        for record in records:
            if not any(_same(record, entry, broadcaster.id) for entry in wanted):
                # A type no longer wanted (the streamer disconnected their channel).
                await self._twitch.delete_subscription(record.id)
                await self._store.delete_subscription(record.id)
        for entry in wanted:
            matching = [r for r in records if _same(r, entry, broadcaster.id)]
            if any(r.status in LIVE_STATUSES for r in matching):
                continue
            for stale in matching:
                # Failed or revoked: Twitch keeps it until deleted, and it counts against the
                # limit of 3 identical subscriptions.
                await self._twitch.delete_subscription(stale.id)
                await self._store.delete_subscription(stale.id)
            await self._create(broadcaster, entry)

    async def _create(self, broadcaster: Broadcaster, entry: EventType) -> None:
        condition = entry.condition(broadcaster.id)
        try:
            created = await self._twitch.create_subscription(
                entry.type,
                entry.version,
                condition,
                self._settings.callback_url,
                self._settings.secret("eventsub"),
            )
        except SubscriptionConflict:
            adopted = await self._adopt(broadcaster, entry)
            if adopted is None:
                return
            created = adopted
        except TwitchError as error:
            if error.status in (400, 403):
                # Not allowed for this channel (e.g. a scope the streamer withdrew): skip it,
                # the others still work.
                log.warning("Twitch refused %s for %s: %s", entry.type, broadcaster.login, error)
                return
            raise
        record = self._to_record(created, broadcaster.id)
        if record.id in self._verified and record.status == "webhook_callback_verification_pending":
            record = record.model_copy(update={"status": "enabled"})
        await self._store.save_subscription(record)

    async def verified(self, subscription: dict[str, Any]) -> None:
        """SEV answered this subscription's challenge: Twitch now enables it."""
        subscription_id = str(subscription.get("id", ""))
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified.add(subscription_id)
        record = await self._store.get_subscription(subscription_id)
        if record is not None and record.status != "enabled":
            await self._store.save_subscription(record.model_copy(update={"status": "enabled"}))

    async def _adopt(self, broadcaster: Broadcaster, entry: EventType) -> Subscription | None:
        async for existing in self._twitch.list_subscriptions(type=entry.type):
            if (
                _same(existing, entry, broadcaster.id)
                and existing.transport.get("callback") == self._settings.callback_url
            ):
                return existing
        return None

    async def favourites_changed(self, broadcaster_ids: set[str]) -> None:
        """Mark streamers nobody favours any more; reconcile releases them after the grace."""
        for broadcaster_id in broadcaster_ids:
            broadcaster = await self._store.get_broadcaster(broadcaster_id)
            if broadcaster is None:
                continue
            wanted = await self._store.favorite_count(broadcaster_id) > 0
            if wanted and broadcaster.unwanted_since is not None:
                await self._store.save_broadcaster(
                    broadcaster.model_copy(update={"unwanted_since": None})
                )
            elif not wanted and broadcaster.unwanted_since is None:
                await self._store.save_broadcaster(
                    broadcaster.model_copy(update={"unwanted_since": now_utc()})
                )

    async def reconcile(self, now: datetime | None = None) -> None:
        """Bring Twitch in line with what is wanted: recreate, release and delete orphans."""
        now = now or now_utc()
        grace = timedelta(seconds=self._settings.sev_release_grace_s)
        async with self._lock:
            at_twitch = {
                s.id: s
                async for s in self._twitch.list_subscriptions()
                if s.transport.get("callback") == self._settings.callback_url
            }
            records = await self._store.list_subscriptions()
            known = {r.id for r in records}
            for record in records:
                current = at_twitch.get(record.id)
                if current is None:
                    await self._store.delete_subscription(record.id)
                elif current.status != record.status:
                    await self._store.save_subscription(
                        record.model_copy(update={"status": current.status})
                    )
            for broadcaster in await self._store.list_broadcasters():
                released = (
                    broadcaster.unwanted_since is not None
                    and now - broadcaster.unwanted_since >= grace
                )
                mine = await self._store.list_subscriptions(broadcaster.id)
                if released:
                    for record in mine:
                        await self._twitch.delete_subscription(record.id)
                        await self._store.delete_subscription(record.id)
                    log.info("released the subscriptions of %s", broadcaster.login)
                elif broadcaster.unwanted_since is None:
                    await self._ensure(broadcaster, mine)
            for orphan in set(at_twitch) - known:
                # Ours (our callback) but unknown to the store: nobody can be watching it.
                if broadcaster_id_of(at_twitch[orphan].condition) is not None:
                    await self._twitch.delete_subscription(orphan)

    async def revoked(self, subscription: dict[str, Any]) -> None:
        """Twitch revoked a subscription: record why and tell the broadcaster's viewers."""
        subscription_id = str(subscription.get("id", ""))
        status = str(subscription.get("status", "revoked"))
        record = await self._store.get_subscription(subscription_id)
        broadcaster_id = (
            record.broadcaster_id
            if record
            else broadcaster_id_of(subscription.get("condition") or {})
        )
        if record is not None:
            await self._store.save_subscription(record.model_copy(update={"status": status}))
        if broadcaster_id is None:
            return
        if status == "authorization_revoked":
            await self._withdraw_scope(broadcaster_id, str(subscription.get("type", "")))
        await self._notify(
            broadcaster_id,
            {
                "kind": "revocation",
                "type": subscription.get("type"),
                "status": status,
            },
        )

    async def _withdraw_scope(self, broadcaster_id: str, event_type: str) -> None:
        broadcaster = await self._store.get_broadcaster(broadcaster_id)
        if broadcaster is None:
            return
        withdrawn = {
            e.scope
            for e in wanted_types(set(broadcaster.granted_scopes))
            if e.type == event_type and e.scope
        }
        if withdrawn:
            scopes = [s for s in broadcaster.granted_scopes if s not in withdrawn]
            await self._store.save_broadcaster(
                broadcaster.model_copy(update={"granted_scopes": scopes})
            )
