"""EventSub subscriptions, shared per broadcaster: ensure, reconcile, release, revocations.

One set of subscriptions per broadcaster however many viewers favour them (Twitch allows at most
3 subscriptions with the same type and condition, and charges against a cost budget). Created
when the first viewer favours a streamer, reconciled against Twitch at start-up and on an
interval, released after a grace period once nobody favours the streamer.

At Twitch's limits SEV holds back rather than hammers: a type Twitch refuses (429 for the limit
of 3 or the cost budget, 410 for a retired version, 403) or revokes in a way that asking again
would not mend is recorded as a Refusal on the broadcaster, shown on the streamer page, and asked
for again only when it may succeed (budget freed, a timer, another version). A reconcile in which
nothing changed lists subscriptions and writes nothing to Twitch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sev.clock import now_utc
from sev.config import Settings
from sev.events import AUTHORIZATION_REVOKE, EventType, broadcaster_id_of, wanted_types
from sev.store import Broadcaster, Refusal, Store, SubscriptionRecord
from sev.store.records import RefusalReason
from sev.twitch import (
    Subscription,
    SubscriptionConflict,
    SubscriptionRefused,
    TwitchAuthError,
    TwitchClient,
    TwitchError,
    TwitchForbidden,
    TwitchUnavailable,
)

log = logging.getLogger(__name__)

# Statuses in which a subscription still works (or is about to).
LIVE_STATUSES = frozenset({"enabled", "webhook_callback_verification_pending"})
_VERIFICATION_FAILED = "webhook_callback_verification_failed"
# The owner of app-wide subscriptions (user.authorization.revoke) in SubscriptionRecord.
APP_OWNER = ""
# How long a refused type waits before SEV asks Twitch again; None: until something changes
# (COST: until the budget has room; VERSION_REMOVED: until SEV asks for another version).
RETRY_AFTER: dict[RefusalReason, timedelta | None] = {
    RefusalReason.LIMIT: timedelta(hours=1),
    RefusalReason.FORBIDDEN: timedelta(hours=1),
    RefusalReason.BETA_MAINTENANCE: timedelta(hours=1),
    RefusalReason.MODERATOR_REMOVED: timedelta(hours=1),
    RefusalReason.COST: None,
    RefusalReason.VERSION_REMOVED: None,
}
# Revocations that asking again at once would not mend: the type is held back (RETRY_AFTER),
# with the revocation's status as the reason. Others (notification_failures_exceeded, unknown
# ones) are recreated by the next reconcile.
HELD_REVOCATIONS = frozenset(
    {
        RefusalReason.VERSION_REMOVED,
        RefusalReason.BETA_MAINTENANCE,
        RefusalReason.MODERATOR_REMOVED,
    }
)
Notify = Callable[[str, dict[str, Any]], Awaitable[None]]


class Subscriptions:
    """Keeps Twitch's subscriptions in line with what SEV's viewers want."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        twitch: TwitchClient,
        notify: Notify,
        clock: Callable[[], datetime] = now_utc,
        *,
        plan_again: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._twitch = twitch
        self._notify = notify
        self._clock = clock
        self._lock = asyncio.Lock()
        # One broadcaster's subscriptions change one step at a time: a revocation handled by the
        # webhook and that broadcaster's part of a reconcile never interleave (the reconcile
        # would recreate a type before the revocation holds it back). Per broadcaster, so a
        # webhook waits for a few Helix calls at most, never for a whole reconcile pass.
        self._owner_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # Every read-modify-write of a broadcaster here goes through _edit, one at a time: a
        # burst of revocations and a token check must not write back each other's stale copy.
        self._edit_lock = asyncio.Lock()
        # Challenges answered in this process: Twitch enables those subscriptions. The challenge
        # can arrive before create_subscription returns and its record is saved, so creation
        # checks here too, once the record is saved.
        self._verified: set[str] = set()
        # Retired versions already logged: a version Twitch removes revokes it for everybody.
        self._logged_removals: set[tuple[str, str]] = set()
        # With the WebSocket transport (sev/eventsub/websocket/) the connections subscribe, not
        # this class: what would create subscriptions tells them to plan again instead.
        self._plan_again = plan_again

    # -- ensure -----------------------------------------------------------------------------

    async def ensure(self, broadcaster: Broadcaster) -> None:
        """Create whatever of the wanted set this broadcaster is missing (raises TwitchError)."""
        if self._plan_again is not None:
            self._plan_again()
            return
        async with self._lock, self._owner_locks[broadcaster.id]:
            fresh = await self._store.get_broadcaster(broadcaster.id) or broadcaster
            records = await self._store.list_subscriptions(broadcaster.id)
            await self._ensure(fresh, records, self._clock())

    async def _ensure(
        self, broadcaster: Broadcaster, records: list[SubscriptionRecord], now: datetime
    ) -> None:
        if broadcaster.removed_at is not None:
            # The account is gone: whatever Twitch still lists for it only counts against limits.
            for record in records:
                await self._delete(record)
            return
        wanted = wanted_types(set(broadcaster.granted_scopes))
        decided = await self._ensure_entries(
            broadcaster.id,
            wanted,
            records,
            broadcaster.refusals,
            now,
            may_cost=not await self._authorized(broadcaster.id),
        )
        keys = {e.key for e in wanted}
        if _apply(broadcaster.refusals, decided, keys) != broadcaster.refusals:
            # Applied to a fresh read: a revocation handled meanwhile keeps its refusal.
            await self._edit(
                broadcaster.id, lambda b: {"refusals": _apply(b.refusals, decided, keys)}
            )

    async def _ensure_entries(
        self,
        owner: str,
        wanted: list[EventType],
        records: list[SubscriptionRecord],
        refusals: list[Refusal],
        now: datetime,
        *,
        may_cost: bool,
    ) -> dict[str, Refusal | None]:
        """Create the missing subscriptions of `wanted` for `owner`; returns what it decided
        about refusals, by catalogue key (None: no longer refused)."""
        condition_of = owner if owner != APP_OWNER else self._twitch.client_id
        for record in records:
            if not any(e.matches(record.type, record.condition, condition_of) for e in wanted):
                # A type no longer wanted (the streamer disconnected their channel).
                await self._delete(record)
        held = {r.key: r for r in refusals}
        decided: dict[str, Refusal | None] = {}
        for entry in wanted:
            matching = [r for r in records if entry.matches(r.type, r.condition, condition_of)]
            if any(r.status in LIVE_STATUSES for r in matching):
                decided[entry.key] = None
                continue
            refusal = held.get(entry.key)
            if refusal is not None and not self._may_ask_again(refusal, entry, now):
                continue
            for stale in matching:
                # Failed or revoked: Twitch keeps it until deleted, and it counts against the
                # limit of 3 identical subscriptions.
                await self._delete(stale)
            budget = self._twitch.budget
            if may_cost and entry.scope is None and budget is not None and budget.spent:
                # Twitch would refuse a subscription that costs 1: do not ask.
                decided[entry.key] = _refusal(entry, RefusalReason.COST, now)
                continue
            try:
                await self._create(owner, entry, condition_of)
            except SubscriptionRefused as refused:
                log.warning("Twitch refused %s for %s: %s", entry.type, owner or "SEV", refused)
                decided[entry.key] = _refusal(entry, RefusalReason(refused.reason), now)
            except TwitchForbidden as forbidden:
                # Not allowed for this channel (a scope withdrawn at Twitch that SEV has not
                # heard of yet): the others still work.
                log.warning("Twitch refused %s for %s: %s", entry.type, owner or "SEV", forbidden)
                decided[entry.key] = _refusal(entry, RefusalReason.FORBIDDEN, now)
            else:
                decided[entry.key] = None
        return decided

    def _may_ask_again(self, refusal: Refusal, entry: EventType, now: datetime) -> bool:
        if refusal.reason == RefusalReason.COST:
            budget = self._twitch.budget
            return budget is None or not budget.spent
        if refusal.reason == RefusalReason.VERSION_REMOVED:
            return refusal.version != entry.version
        return refusal.retry_at is None or now >= refusal.retry_at

    async def _authorized(self, user_id: str) -> bool:
        # A user who authorized SEV's client (logged in, or connected) costs nothing to watch.
        user = await self._store.get_user(user_id)
        return user is not None and bool(user.access_token or user.channel_access_token)

    async def _edit(
        self, broadcaster_id: str, change: Callable[[Broadcaster], dict[str, Any]]
    ) -> Broadcaster | None:
        """Apply `change` (the fields to update) to the stored broadcaster, read afresh."""
        async with self._edit_lock:
            broadcaster = await self._store.get_broadcaster(broadcaster_id)
            if broadcaster is None:
                return None
            edited = broadcaster.model_copy(update=change(broadcaster))
            if edited != broadcaster:
                await self._store.save_broadcaster(edited)
            return edited

    async def withdraw_scopes(
        self, broadcaster_id: str, scopes: frozenset[str] | None = None
    ) -> Broadcaster | None:
        """Take scopes (None: all of them) out of what a broadcaster granted SEV."""
        return await self._edit(
            broadcaster_id,
            lambda b: {
                "granted_scopes": []
                if scopes is None
                else [s for s in b.granted_scopes if s not in scopes]
            },
        )

    async def _create(self, owner: str, entry: EventType, condition_of: str) -> None:
        condition = entry.condition(condition_of)
        try:
            created = await self._subscribe(entry, condition)
        except SubscriptionConflict:
            adopted = await self._adopt(entry, condition_of)
            if adopted is None:
                # Ours under another record: reconcile deletes that orphan and creates anew.
                log.warning("Twitch has %s for %s already; not found to adopt", entry.type, owner)
                return
            if adopted.status in LIVE_STATUSES:
                created = adopted
            else:
                # On SEV's callback but failed: a stranger's, made with their own secret (SEV's
                # webhook refused its challenge), or SEV's own that failed. Either way it
                # delivers nothing, and it holds SEV's place: replaced by one of SEV's own.
                log.warning(
                    "Twitch has %s for %s on SEV's callback, %s; replacing it",
                    entry.type,
                    owner or "SEV",
                    adopted.status,
                )
                await self._twitch.delete_subscription(adopted.id)
                created = await self._subscribe(entry, condition)
        record = _to_record(created, owner)
        await self._store.save_subscription(record)
        # The challenge can be answered before this record is saved, or while it is: `verified`
        # then found nothing to enable. It notes every answered challenge before it looks, so
        # whichever of the two comes last sees the other's work.
        if record.id in self._verified and record.status == "webhook_callback_verification_pending":
            await self._store.save_subscription(record.model_copy(update={"status": "enabled"}))

    async def _subscribe(self, entry: EventType, condition: dict[str, str]) -> Subscription:
        return await self._twitch.create_subscription(
            entry.type,
            entry.version,
            condition,
            self._settings.callback_url,
            self._settings.secret("eventsub"),
        )

    async def _adopt(self, entry: EventType, condition_of: str) -> Subscription | None:
        """The subscription on SEV's callback that made Twitch answer 409, if Twitch lists it.

        Only an enabled one is surely SEV's: Twitch enables a webhook subscription once its
        challenge is answered, and SEV's webhook answers only challenges signed with SEV's
        secret. A pending one may be SEV's own (another process's, or a create whose answer
        was lost), so it is kept; if it is a stranger's, SEV's webhook refuses its challenge,
        Twitch marks it failed, and the next reconcile replaces it.
        """
        # user_id matches any user named in a condition: a few pages at most, whatever the type.
        found = (
            self._twitch.list_subscriptions(type=entry.type)
            if entry is AUTHORIZATION_REVOKE
            else self._twitch.list_subscriptions(user_id=condition_of)
        )
        async for existing in found:
            if (
                entry.matches(existing.type, existing.condition, condition_of)
                and existing.transport.get("callback") == self._settings.callback_url
            ):
                return existing
        return None

    async def _delete(self, record: SubscriptionRecord) -> None:
        if record.carrier_id:
            # A WebSocket subscription: only its maker's token can delete it.
            carrier = await self._store.get_user(record.carrier_id)
            token = carrier and (carrier.channel_access_token or carrier.access_token)
            if token:
                with contextlib.suppress(TwitchAuthError):
                    await self._twitch.delete_socket_subscription(record.id, token)
        else:
            await self._twitch.delete_subscription(record.id)
        await self._store.delete_subscription(record.id)

    async def note_refusals(self, broadcaster_id: str, decided: dict[str, Refusal | None]) -> None:
        """Record (a Refusal) or clear (None) refusals of a broadcaster's catalogue entries."""

        def change(broadcaster: Broadcaster) -> dict[str, Any]:
            kept = {r.key: r for r in broadcaster.refusals}
            for key, value in decided.items():
                if value is None:
                    kept.pop(key, None)
                else:
                    kept[key] = value
            return {"refusals": list(kept.values())}

        await self._edit(broadcaster_id, change)

    async def verified(self, subscription: dict[str, Any]) -> None:
        """SEV answered this subscription's challenge: Twitch now enables it."""
        subscription_id = str(subscription.get("id", ""))
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified.add(subscription_id)
        record = await self._store.get_subscription(subscription_id)
        if record is not None and record.status != "enabled":
            await self._store.save_subscription(record.model_copy(update={"status": "enabled"}))

    async def favourites_changed(self, broadcaster_ids: set[str]) -> None:
        """Mark streamers nobody favours any more; reconcile releases them after the grace."""
        for broadcaster_id in broadcaster_ids:
            wanted = await self._store.favourite_count(broadcaster_id) > 0
            now = self._clock()
            await self._edit(broadcaster_id, _mark_unwanted(not wanted, now))

    async def release_if_unwanted(self, broadcaster_id: str) -> None:
        """Release at once a streamer nobody favours any more, if watching them costs budget.

        A streamer who authorized SEV costs nothing to watch and keeps the grace period.
        """
        if self._plan_again is not None:
            self._plan_again()
            return
        async with self._lock, self._owner_locks[broadcaster_id]:
            if await self._store.favourite_count(broadcaster_id) > 0:
                return
            if await self._authorized(broadcaster_id):
                return
            records = await self._store.list_subscriptions(broadcaster_id)
            for record in records:
                await self._delete(record)
            if records:
                log.info("released the subscriptions of %s at once", broadcaster_id)

    # -- reconcile --------------------------------------------------------------------------

    async def reconcile(self, now: datetime | None = None) -> None:
        """Bring Twitch in line with what is wanted: recreate, release and delete orphans.

        One streamer that Twitch refuses never stops the pass for the others; only Twitch being
        unreachable does (the duty retries soon).
        """
        now = now or self._clock()
        grace = timedelta(seconds=self._settings.sev_release_grace_s)
        callback = self._settings.callback_url
        async with self._lock:
            state = await self._store.get_eventsub_state()
            if callback not in state.callbacks:
                # Saved before any subscription exists under it, so a later URL change finds it.
                state = state.model_copy(update={"callbacks": [*state.callbacks, callback]})
                await self._store.save_eventsub_state(state)
            at_twitch: dict[str, Subscription] = {}
            earlier: list[Subscription] = []
            async for subscription in self._twitch.list_subscriptions():
                used = subscription.transport.get("callback")
                if used == callback:
                    at_twitch[subscription.id] = subscription
                elif used in state.callbacks:
                    earlier.append(subscription)
            records = await self._sync_records(at_twitch)
            for broadcaster in await self._store.list_broadcasters():
                try:
                    await self._reconcile_broadcaster(broadcaster, now, grace)
                except TwitchUnavailable:
                    raise
                except TwitchError as error:
                    log.warning("reconciling %s failed: %s", broadcaster.login, error)
            await self._reconcile_app([r for r in records if r.broadcaster_id == APP_OWNER], now)
            known = {r.id for r in records}
            for orphan in set(at_twitch) - known:
                # Ours (our callback) but unknown to the store: nobody can be watching it.
                if broadcaster_id_of(at_twitch[orphan].condition) is not None:
                    await self._twitch.delete_subscription(orphan)
            for old in earlier:
                # Made under an earlier SEV_PUBLIC_URL: it counts against the budget and the
                # limit of 3, and delivers to a URL SEV no longer serves.
                log.info("deleting %s %s made for %s", old.type, old.id, old.transport["callback"])
                await self._twitch.delete_subscription(old.id)
            budget = self._twitch.budget
            if budget is not None:
                await self._store.save_eventsub_state(
                    state.model_copy(
                        update={
                            "total": budget.total,
                            "total_cost": budget.total_cost,
                            "max_total_cost": budget.max_total_cost,
                            "checked_at": now,
                        }
                    )
                )

    async def _sync_records(self, at_twitch: dict[str, Subscription]) -> list[SubscriptionRecord]:
        """Make the store's records say what Twitch says; returns those Twitch still has."""
        kept = []
        for record in await self._store.list_subscriptions():
            current = at_twitch.get(record.id)
            if current is None:
                await self._store.delete_subscription(record.id)
                continue
            if current.status != record.status:
                if current.status in LIVE_STATUSES or current.status == _VERIFICATION_FAILED:
                    await self._store.save_subscription(
                        record.model_copy(update={"status": current.status})
                    )
                else:
                    # Revoked, and the revocation message not (yet) handled: act on it now,
                    # so a held type is not recreated first.
                    await self._revoke(record, current.status)
                record = record.model_copy(update={"status": current.status})
            kept.append(record)
        return kept

    async def _reconcile_broadcaster(
        self, listed: Broadcaster, now: datetime, grace: timedelta
    ) -> None:
        async with self._owner_locks[listed.id]:
            # Read again under the lock: a revocation may have held a type back meanwhile.
            broadcaster = await self._store.get_broadcaster(listed.id)
            if broadcaster is not None:
                await self._reconcile_one(broadcaster, now, grace)

    async def _reconcile_one(
        self, broadcaster: Broadcaster, now: datetime, grace: timedelta
    ) -> None:
        mine = await self._store.list_subscriptions(broadcaster.id)
        if broadcaster.unwanted_since is None:
            await self._ensure(broadcaster, mine, now)
        elif now - broadcaster.unwanted_since >= grace:
            for record in mine:
                await self._delete(record)
            if mine:
                log.info("released the subscriptions of %s", broadcaster.login)

    async def _reconcile_app(self, records: list[SubscriptionRecord], now: datetime) -> None:
        state = await self._store.get_eventsub_state()
        try:
            decided = await self._ensure_entries(
                APP_OWNER, [AUTHORIZATION_REVOKE], records, state.refusals, now, may_cost=False
            )
        except TwitchUnavailable:
            raise
        except TwitchError as error:
            log.warning("subscribing to %s failed: %s", AUTHORIZATION_REVOKE.type, error)
            return
        refusals = _apply(state.refusals, decided, {AUTHORIZATION_REVOKE.key})
        if refusals != state.refusals:
            await self._store.save_eventsub_state(state.model_copy(update={"refusals": refusals}))

    # -- revocations ------------------------------------------------------------------------

    async def revoked(self, subscription: dict[str, Any]) -> None:
        """Twitch revoked one of SEV's subscriptions: record why, act on it, tell the viewers.

        Acted on only for subscription ids SEV holds: a revocation of anything else (another
        deployment's, or one SEV already deleted) changes nothing. A resend, or a revocation
        that reconcile already found in Twitch's list, changes nothing either.
        """
        subscription_id = str(subscription.get("id", ""))
        status = str(subscription.get("status", "") or "revoked")
        record = await self._store.get_subscription(subscription_id)
        if record is None:
            log.info("revocation (%s) of a subscription SEV does not hold: ignored", status)
            return
        if record.status != status:
            await self._revoke(record, status)

    async def _revoke(self, record: SubscriptionRecord, status: str) -> None:
        async with self._owner_locks[record.broadcaster_id]:
            # Read again under the lock: the webhook and a reconcile may both have seen it.
            current = await self._store.get_subscription(record.id)
            if current is not None and current.status != status:
                await self._revoke_locked(current, status)

    async def _revoke_locked(self, record: SubscriptionRecord, status: str) -> None:
        await self._store.save_subscription(record.model_copy(update={"status": status}))
        if record.broadcaster_id == APP_OWNER:
            log.warning("Twitch revoked %s (%s); reconcile subscribes again", record.type, status)
            return
        broadcaster = await self._store.get_broadcaster(record.broadcaster_id)
        if broadcaster is None:
            return
        now = self._clock()
        if status == "authorization_revoked":
            await self._withdraw_scope(broadcaster, record.type)
        elif status == "user_removed":
            log.info("Twitch says %s no longer exists; SEV stops asking", broadcaster.login)
            await self._edit(broadcaster.id, lambda _: {"removed_at": now})
        elif status in HELD_REVOCATIONS:
            reason = RefusalReason(status)
            self._hold(broadcaster, record, reason, now)
            entry = next(
                (
                    e
                    for e in wanted_types(set(broadcaster.granted_scopes))
                    if e.matches(record.type, record.condition, broadcaster.id)
                ),
                None,
            )
            if entry is not None:
                held = _refusal(entry, reason, now, version=record.version)
                await self._edit(
                    broadcaster.id,
                    lambda b: {"refusals": [*(r for r in b.refusals if r.key != held.key), held]},
                )
        await self._notify(
            broadcaster.id, {"kind": "revocation", "type": record.type, "status": status}
        )

    def _hold(
        self,
        broadcaster: Broadcaster,
        record: SubscriptionRecord,
        reason: RefusalReason,
        now: datetime,
    ) -> None:
        """Log a revocation that asking again would not mend, once per type and version."""
        seen = (record.type, record.version)
        if reason == RefusalReason.VERSION_REMOVED and seen in self._logged_removals:
            return
        self._logged_removals.add(seen)
        log.warning(
            "Twitch revoked %s v%s of %s (%s); SEV holds it back until %s",
            record.type,
            record.version,
            broadcaster.login,
            reason,
            "it asks for another version"
            if reason == RefusalReason.VERSION_REMOVED
            else (now + (RETRY_AFTER[reason] or timedelta())).isoformat(timespec="seconds"),
        )

    async def _withdraw_scope(self, broadcaster: Broadcaster, event_type: str) -> None:
        withdrawn = frozenset(
            scope
            for e in wanted_types(set(broadcaster.granted_scopes))
            if e.type == event_type and e.scope
            for scope in (e.scope, *e.also_scopes)
        )
        if withdrawn:
            await self.withdraw_scopes(broadcaster.id, withdrawn)


def _apply(
    refusals: list[Refusal], decided: dict[str, Refusal | None], wanted: set[str]
) -> list[Refusal]:
    """Refusals after an ensure: those of types still wanted, updated with what it decided."""
    kept = {r.key: r for r in refusals if r.key in wanted}
    for key, refusal in decided.items():
        if refusal is None:
            kept.pop(key, None)
        else:
            kept[key] = refusal
    return list(kept.values())


def _mark_unwanted(unwanted: bool, now: datetime) -> Callable[[Broadcaster], dict[str, Any]]:
    """The change that starts (or ends) a broadcaster's grace period."""
    return lambda b: {"unwanted_since": (b.unwanted_since or now) if unwanted else None}


def _to_record(subscription: Subscription, owner: str) -> SubscriptionRecord:
    return SubscriptionRecord(
        id=subscription.id,
        broadcaster_id=owner,
        type=subscription.type,
        version=subscription.version,
        condition=dict(subscription.condition),
        status=subscription.status,
        created_at=subscription.created_at or "",
    )


def _refusal(
    entry: EventType, reason: RefusalReason, now: datetime, *, version: str | None = None
) -> Refusal:
    wait = RETRY_AFTER.get(reason, timedelta(hours=1))
    return Refusal(
        key=entry.key,
        version=version or entry.version,
        reason=reason,
        at=now,
        retry_at=now + wait if wait is not None else None,
    )
