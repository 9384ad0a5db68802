"""The MongoDB store, through PyMongo's async API (`pymongo.AsyncMongoClient`).

Needs no transactions or change streams (FerretDB v1 has neither); uses a TTL index where the
server has them (FerretDB v1 does not: the retention duty prunes there, see `prune_events`).

Events are written a batch at a time (group commit): one ordered `insert_many` per broadcaster
in the batch, each event numbered in advance with consecutive seqs starting after the newest one
stored. Why this keeps "an event is never visible before every lower seq of its broadcaster",
across processes, with no reservation and no change to the readers:

- **Each seq is written only after its predecessor.** An ordered insert stops at its first
  failure, so the event numbered N+1 is attempted only once N was stored by the same command;
  the first event of a command takes the newest stored seq + 1 (read from the store, or remembered
  by this process from its own last write for at most `_REMEMBER_NEXT_S`).
- **So a lower seq can never appear late.** By induction, when N+1 exists every lower seq was
  written before it; a writer that numbered an event N from an older read finds N taken, and the
  unique index on (broadcaster_id, seq) refuses it. N exists, so it renumbers what is left of its
  batch from N+1 (and after a few such tries from the newest seq, read again). A reader that saw
  N+1 therefore never later gets N.
- **No holes.** A message id already stored (the unique `_id`: Twitch's retry) stops the ordered
  insert at that event; the rest of the batch's ids are looked up in one query, those stored come
  back `created=False` (the stored copy), and the others are sent again from the seq the first
  would have used (copies within one batch are stored once before any of this). Seqs stay
  consecutive: nothing is reserved that could stay empty, so a reader never has a missing seq to
  wait for.

Why not reserve a block from a counter (`$inc` by the batch's size) and `insert_many(ordered=
False)`: two processes would hold blocks 1-10 and 11-20 at once, the second could be stored
first and a reader would see 11 before 1; and a duplicate in a reserved block leaves a hole that
only a filler document and readers that know about fillers could close. Serialising the writers
or teaching readers a watermark costs round trips on both paths, which numbering from the stored
maximum avoids: without contention a batch costs one `insert_many` (the `counters` write below
is off that path); when processes take turns with one broadcaster's webhooks, a batch usually
costs one failed insert more (its first seq was the other's last).

With `REDIS_URL` (several processes) a batch is written holding the broadcaster's lane
(`sev/store/lanes.py`), which also says where the last holder stopped: processes that take
turns with a broadcaster's webhooks then number one after the other instead of colliding. The
lane is only an optimisation: without it everything above still holds.

The `counters` collection keeps, per broadcaster, the highest seq stored (`$max`, written after
an insert_many by a task of its own, at most once a second per broadcaster, so no webhook waits
for it; `close` writes what is due). It is read only when a broadcaster has no event left:
retention may delete all of a quiet broadcaster's events (the TTL index spares none), and
numbering must then go on above the old seqs, not start at 1 again. Only a process killed within
a second of a broadcaster's last batch, followed by a whole retention period without an event of
that broadcaster, would let seqs of that last second be handed out again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import pymongo
from pymongo import DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, PyMongoError

from sev.clock import format_timestamp, parse_timestamp
from sev.crypto import TokenCipher
from sev.events import Event
from sev.store.base import MESSAGE_MEMORY_S, Inserted, StoreUnavailable
from sev.store.lanes import Lane, RedisLanes
from sev.store.records import (
    Broadcaster,
    EventSubState,
    SubscriptionRecord,
    User,
    user_from_doc,
    user_to_doc,
)

log = logging.getLogger(__name__)

Doc = dict[str, Any]
# Twitch wants an answer within a few seconds; a database that cannot answer in this time is
# reported as down (the webhook answers 503 and Twitch retries).
_OPERATION_TIMEOUT_S = 3.0
_PING_TIMEOUT_S = 1.5
_SEQ_RETRIES = 50
# After a collision, the next seqs are tried one by one this many times before the newest is
# read: with several processes, a broadcaster's webhooks alternate between them and nearly every
# batch finds its first seq taken by the other's last batch (one or a few events). A try is a
# failed insert on the unique index; the read is a sort by seq, which FerretDB v1 answers by
# scanning every event of the broadcaster (tens of ms per thousand events).
_SEQ_PROBES = 4
# How long this process trusts its own "next seq" for a broadcaster without reading the store:
# far below any retention (a day at least), so a remembered seq cannot have been written by
# another process and deleted again since (which would let it be written twice).
_REMEMBER_NEXT_S = 600.0
_DUPLICATE_KEY = 11000
# The counter only matters once retention has deleted all of a broadcaster's events (a day at
# the least after the last one): it may lag this much behind the newest batch.
_COUNTER_PAUSE_S = 1.0
# The index option MongoDB needs for a TTL index and FerretDB v1 refuses (NotImplemented).
_NOT_IMPLEMENTED = 238
_INDEX_OPTIONS_CONFLICT = 85


def _event_to_doc(event: Event) -> Doc:
    doc = event.model_dump(mode="json", exclude={"id", "data"})
    # Raw Twitch payloads may hold keys MongoDB-wire servers refuse (dots, `$`, nested
    # arrays): the payload is kept as JSON text.
    doc.update(
        _id=event.id,
        broadcaster_id=event.broadcaster.id,
        data_json=json.dumps(event.data, separators=(",", ":")),
    )
    # `received_at` stays the string the API answers with; a TTL index needs a BSON date.
    # An unreadable one is pruned by its string instead (prune_events).
    with contextlib.suppress(ValueError):
        doc["received_date"] = parse_timestamp(event.received_at)
    return doc


_NOT_EVENT_FIELDS = ("_id", "broadcaster_id", "data_json", "received_date")


def _event_from_doc(doc: Doc) -> Event:
    fields = {k: v for k, v in doc.items() if k not in _NOT_EVENT_FIELDS}
    return Event.model_validate({**fields, "id": doc["_id"], "data": json.loads(doc["data_json"])})


def _strip_id(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k != "_id"}


@contextlib.asynccontextmanager
async def _no_lane(broadcaster_id: str) -> AsyncIterator[Lane]:
    yield Lane(held=False)


class _Refused(Exception):
    """The server refused one event's document (not a duplicate, not an outage)."""


class MongoStore:
    """Store backed by MongoDB (or any MongoDB-wire server)."""

    def __init__(
        self,
        uri: str,
        cipher: TokenCipher,
        database: str | None = None,
        *,
        retention_days: int = 30,
        lanes: RedisLanes | None = None,
    ) -> None:
        self._uri = uri
        self._cipher = cipher
        self._database_name = database
        self._retention_days = retention_days
        self._client: AsyncMongoClient[Doc] | None = None
        # Per process, the next seq to try per broadcaster and when it was learnt (monotonic):
        # no read before a batch normally.
        self._next_seq: dict[str, tuple[int, float]] = {}
        # Within a process, batches for one broadcaster go one at a time (no self-inflicted
        # seq races); across processes the unique index arbitrates.
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._indexes_ready = False
        self.has_ttl_index = False
        # Per broadcaster, the seq its counter must reach, and the one task that writes it.
        self._counter_due: dict[str, int] = {}
        self._counter_writers: dict[str, asyncio.Task[None]] = {}
        self._closing = asyncio.Event()
        # With REDIS_URL (several processes): one writer at a time per broadcaster (lanes.py).
        self.lanes = lanes
        # Inserts refused because another process had taken the seq (for tests and the bench).
        self.collisions = 0

    def _collection(self, name: str) -> AsyncCollection[Doc]:
        if self._client is None:
            raise StoreUnavailable("store is not open")
        database = (
            self._client.get_database(self._database_name)
            if self._database_name
            else self._client.get_default_database("sev")
        )
        return database[name]

    async def open(self) -> None:
        """Connect (lazily: a server that is down now is reported by ping) and create indexes."""
        self._closing.clear()
        self._client = AsyncMongoClient(
            self._uri,
            serverSelectionTimeoutMS=int(_OPERATION_TIMEOUT_S * 1000),
            connectTimeoutMS=2000,
            timeoutMS=int(_OPERATION_TIMEOUT_S * 1000),
            tz_aware=True,
            appname="sev",
        )
        try:
            await self.create_indexes()
        except StoreUnavailable:
            # Not fatal: SEV starts, /healthz says 503, indexes are created when it recovers.
            self._indexes_ready = False
        else:
            self._indexes_ready = True

    async def create_indexes(self) -> None:
        """Create the indexes SEV's queries and uniqueness rules rely on (idempotent)."""
        try:
            await self._collection("events").create_index(
                [("broadcaster_id", 1), ("seq", 1)], unique=True, name="broadcaster_seq"
            )
            await self._collection("events").create_index(
                [("broadcaster_id", 1), ("type", 1), ("seq", -1)], name="broadcaster_type_seq"
            )
            await self._collection("users").create_index("favorite_id", name="favorite")
            await self._collection("broadcasters").create_index("login", name="login")
            await self._collection("subscriptions").create_index(
                "broadcaster_id", name="broadcaster"
            )
            await self._collection("messages").create_index("seen_at", name="seen_at")
            self.has_ttl_index = await self._create_ttl_index()
        except PyMongoError as error:
            raise StoreUnavailable(str(error)) from error

    async def _create_ttl_index(self) -> bool:
        """The TTL index on received_date, or a plain one where the server has no TTL indexes.

        Either way the retention duty prunes too (legacy events have no received_date).
        """
        events = self._collection("events")
        seconds = self._retention_days * 86400
        try:
            await events.create_index(
                "received_date", name="received_ttl", expireAfterSeconds=seconds
            )
        except OperationFailure as error:
            if error.code == _INDEX_OPTIONS_CONFLICT:
                # SEV_EVENT_RETENTION_DAYS changed: change the index's expiry in place.
                await self._collection("events").database.command(
                    "collMod",
                    "events",
                    index={"name": "received_ttl", "expireAfterSeconds": seconds},
                )
                return True
            if error.code != _NOT_IMPLEMENTED:
                raise
            await events.create_index("received_date", name="received_date")
            return False
        return True

    async def close(self) -> None:
        """Close the client (once the counters caught up with what was stored)."""
        self._closing.set()
        if self._counter_writers:
            await asyncio.wait(self._counter_writers.values(), timeout=_OPERATION_TIMEOUT_S)
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the server answers within a second and a half."""
        if self._client is None:
            raise StoreUnavailable("store is not open")
        try:
            with pymongo.timeout(_PING_TIMEOUT_S):
                await self._client.admin.command("ping")
                if not self._indexes_ready:
                    await self.create_indexes()
                    self._indexes_ready = True
        except PyMongoError as error:
            raise StoreUnavailable(str(error)) from error

    async def _find(self, collection: str, query: Doc, **options: Any) -> list[Doc]:
        try:
            cursor = self._collection(collection).find(query, **options)
            return [doc async for doc in cursor]
        except PyMongoError as error:
            raise StoreUnavailable(str(error)) from error

    async def _find_one(self, collection: str, query: Doc) -> Doc | None:
        try:
            return await self._collection(collection).find_one(query)
        except PyMongoError as error:
            raise StoreUnavailable(str(error)) from error

    async def _replace(self, collection: str, doc_id: str, doc: Doc) -> None:
        try:
            await self._collection(collection).replace_one({"_id": doc_id}, doc, upsert=True)
        except PyMongoError as error:
            raise StoreUnavailable(str(error)) from error

    async def _delete(self, collection: str, doc_id: str) -> None:
        try:
            await self._collection(collection).delete_one({"_id": doc_id})
        except PyMongoError as error:
            raise StoreUnavailable(str(error)) from error

    # -- users --------------------------------------------------------------------------------

    async def save_user(self, user: User) -> None:
        """Insert or replace a user (tokens encrypted)."""
        doc = user_to_doc(user, self._cipher)
        doc["has_token"] = bool(user.access_token or user.channel_access_token)
        await self._replace("users", user.id, doc)

    async def get_user(self, user_id: str) -> User | None:
        """A user by Twitch id."""
        doc = await self._find_one("users", {"_id": user_id})
        return user_from_doc(_strip_id(doc), self._cipher) if doc else None

    async def set_favourite(self, user_id: str, broadcaster_id: str | None) -> None:
        """Change only the favourite."""
        try:
            await self._collection("users").update_one(
                {"_id": user_id}, {"$set": {"favorite_id": broadcaster_id}}
            )
        except PyMongoError as error:
            raise StoreUnavailable(str(error)) from error

    async def users_with_tokens(self) -> list[User]:
        """Users whose tokens must be validated."""
        docs = await self._find("users", {"has_token": True})
        return [user_from_doc(_strip_id(doc), self._cipher) for doc in docs]

    async def favourite_count(self, broadcaster_id: str) -> int:
        """How many users favour this broadcaster."""
        try:
            return await self._collection("users").count_documents({"favorite_id": broadcaster_id})
        except PyMongoError as error:
            raise StoreUnavailable(str(error)) from error

    # -- broadcasters -------------------------------------------------------------------------

    async def save_broadcaster(self, broadcaster: Broadcaster) -> None:
        """Insert or replace a broadcaster."""
        await self._replace("broadcasters", broadcaster.id, broadcaster.model_dump(mode="json"))

    async def get_broadcaster(self, broadcaster_id: str) -> Broadcaster | None:
        """A broadcaster by Twitch id."""
        doc = await self._find_one("broadcasters", {"_id": broadcaster_id})
        return Broadcaster.model_validate(_strip_id(doc)) if doc else None

    async def get_broadcaster_by_login(self, login: str) -> Broadcaster | None:
        """A broadcaster by (lower-case) login."""
        doc = await self._find_one("broadcasters", {"login": login})
        return Broadcaster.model_validate(_strip_id(doc)) if doc else None

    async def list_broadcasters(self) -> list[Broadcaster]:
        """Every broadcaster SEV knows."""
        return [
            Broadcaster.model_validate(_strip_id(d)) for d in await self._find("broadcasters", {})
        ]

    # -- subscriptions ------------------------------------------------------------------------

    async def save_subscription(self, subscription: SubscriptionRecord) -> None:
        """Insert or replace a subscription record."""
        await self._replace("subscriptions", subscription.id, subscription.model_dump(mode="json"))

    async def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        """A subscription by Twitch id."""
        doc = await self._find_one("subscriptions", {"_id": subscription_id})
        return SubscriptionRecord.model_validate(_strip_id(doc)) if doc else None

    async def delete_subscription(self, subscription_id: str) -> None:
        """Forget a subscription."""
        await self._delete("subscriptions", subscription_id)

    async def list_subscriptions(
        self, broadcaster_id: str | None = None
    ) -> list[SubscriptionRecord]:
        """All subscription records, or those of one broadcaster."""
        query = {} if broadcaster_id is None else {"broadcaster_id": broadcaster_id}
        docs = await self._find("subscriptions", query)
        return [SubscriptionRecord.model_validate(_strip_id(doc)) for doc in docs]

    # -- events -------------------------------------------------------------------------------

    async def get_eventsub_state(self) -> EventSubState:
        """The app-wide EventSub state."""
        doc = await self._find_one("app_state", {"_id": "eventsub"})
        return EventSubState.model_validate(_strip_id(doc)) if doc else EventSubState()

    async def save_eventsub_state(self, state: EventSubState) -> None:
        """Replace the app-wide EventSub state."""
        await self._replace("app_state", "eventsub", state.model_dump(mode="json"))

    async def insert_events(self, events: Sequence[Event]) -> list[Inserted]:
        """Store a batch: per broadcaster one ordered insert_many (see the module docstring)."""
        groups: dict[str, list[int]] = {}
        for index, event in enumerate(events):
            groups.setdefault(event.broadcaster.id, []).append(index)
        # Broadcasters are independent: their writes go concurrently. Every one is awaited
        # before an error is raised, so nothing of this batch is still in flight afterwards.
        outcomes = await asyncio.gather(
            *(
                self._insert_group(broadcaster_id, [events[i] for i in indexes])
                for broadcaster_id, indexes in groups.items()
            ),
            return_exceptions=True,
        )
        results: list[Inserted | None] = [None] * len(events)
        for indexes, outcome in zip(groups.values(), outcomes, strict=True):
            if isinstance(outcome, BaseException):
                raise outcome
            for index, result in zip(indexes, outcome, strict=True):
                results[index] = result
        return [result for result in results if result is not None]

    async def _insert_group(self, broadcaster_id: str, events: list[Event]) -> list[Inserted]:
        lane_of = self.lanes.hold if self.lanes is not None else _no_lane
        async with self._locks[broadcaster_id], lane_of(broadcaster_id) as lane:
            try:
                results = await self._insert_group_locked(broadcaster_id, events, lane.next_seq)
            except PyMongoError as error:
                # The write may or may not have happened: read the newest seq next time.
                self._next_seq.pop(broadcaster_id, None)
                lane.next_seq = None
                raise StoreUnavailable(str(error)) from error
            except BaseException:
                self._next_seq.pop(broadcaster_id, None)
                lane.next_seq = None
                raise
            # Where the next holder of the lane starts, in whichever process.
            lane.next_seq = self._next_seq[broadcaster_id][0]
            return results

    async def _insert_group_locked(
        self, broadcaster_id: str, events: list[Event], start: int | None
    ) -> list[Inserted]:
        # A message id twice in one batch (Twitch's retry racing the original) is stored once.
        unique = list({event.id: event for event in reversed(events)}.values())[::-1]
        outcomes: dict[str, Inserted] = {}
        pending = unique
        # Where the lane's last holder stopped, else what this process remembers or reads.
        seq = start if start is not None else await self._next(broadcaster_id)
        collisions = 0
        while pending:
            numbered = [
                event.model_copy(update={"seq": seq + i}) for i, event in enumerate(pending)
            ]
            try:
                await self._insert_numbered(broadcaster_id, numbered)
            except BulkWriteError as error:
                # Ordered: the first nInserted were stored, the next one failed, none after it
                # was tried.
                stored = int(error.details.get("nInserted", 0))
                failures = error.details.get("writeErrors") or [{}]
                outcomes.update((e.id, Inserted(e, created=True)) for e in numbered[:stored])
                if failures[0].get("code") != _DUPLICATE_KEY:
                    # A document this server refuses: the ingest worker retries the batch one
                    # event at a time, so only that event fails (those stored come back as
                    # duplicates).
                    raise _Refused(failures[0].get("errmsg", "write refused")) from error
                rest = pending[stored:]
                if await self._stopped_by_message_id(failures[0], rest[0]):
                    await self._mark_stored(rest, outcomes)
                    # Redeliveries: not created. The seq of the one that stopped the insert goes
                    # to the next event, so no seq is left empty.
                    seq += stored
                    pending = [event for event in rest if event.id not in outcomes]
                    continue
                # Another process took the seq. It exists, so the next one may be written: try
                # it (the unique index decides), and read the newest only after a few tries.
                collisions += 1
                self.collisions += 1
                if collisions > _SEQ_RETRIES:
                    raise StoreUnavailable(
                        f"could not number events of {broadcaster_id}: too much contention"
                    ) from error
                if collisions % _SEQ_PROBES:
                    seq, pending = numbered[stored].seq + 1, rest
                else:
                    seq, pending = await self._read_next(broadcaster_id), rest
                continue
            outcomes.update((event.id, Inserted(event, created=True)) for event in numbered)
            seq += len(numbered)
            pending = []
        self._next_seq[broadcaster_id] = (seq, time.monotonic())
        results = []
        for event in events:
            outcome = outcomes[event.id]
            results.append(outcome)
            # A second copy in this batch: the stored event, not created.
            outcomes[event.id] = Inserted(outcome.event, created=False)
        return results

    async def _stopped_by_message_id(self, failure: Doc, event: Event) -> bool:
        """Whether an ordered insert stopped at `event` because its message id is stored
        (Twitch's retry), rather than because its seq is taken."""
        pattern = failure.get("keyPattern")
        if isinstance(pattern, dict) and pattern:  # MongoDB names the index
            return "_id" in pattern
        # FerretDB v1 does not: look the one id up (by `_id`, which it does not scan for).
        found = await self._collection("events").find_one({"_id": event.id}, projection={"_id": 1})
        return found is not None

    async def _mark_stored(self, events: list[Event], outcomes: dict[str, Inserted]) -> None:
        """Record those of `events` whose message id is stored already (one query for all:
        after an outage Twitch redelivers many)."""
        ids = [event.id for event in events]
        async for doc in self._collection("events").find({"_id": {"$in": ids}}):
            outcomes[doc["_id"]] = Inserted(_event_from_doc(doc), created=False)

    async def _insert_numbered(self, broadcaster_id: str, numbered: list[Event]) -> None:
        """One ordered insert_many; then the counter follows what was stored, without making
        the webhooks wait for it."""
        try:
            await self._collection("events").insert_many(
                [_event_to_doc(event) for event in numbered], ordered=True
            )
        except BulkWriteError as error:
            stored = int(error.details.get("nInserted", 0))
            if stored:
                self._follow_counter(broadcaster_id, numbered[stored - 1].seq)
            raise
        self._follow_counter(broadcaster_id, numbered[-1].seq)

    def _follow_counter(self, broadcaster_id: str, seq: int) -> None:
        self._counter_due[broadcaster_id] = max(seq, self._counter_due.get(broadcaster_id, 0))
        if broadcaster_id not in self._counter_writers:
            self._counter_writers[broadcaster_id] = asyncio.create_task(
                self._write_counter(broadcaster_id)
            )

    async def _write_counter(self, broadcaster_id: str) -> None:
        """Raise the counter now, then at most once a second while batches keep coming: one
        small write per second per busy broadcaster rather than one per batch."""
        try:
            while (seq := self._counter_due.pop(broadcaster_id, None)) is not None:
                await self._raise_counter(broadcaster_id, seq)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), _COUNTER_PAUSE_S)
        finally:
            del self._counter_writers[broadcaster_id]

    async def _next(self, broadcaster_id: str) -> int:
        remembered = self._next_seq.get(broadcaster_id)
        if remembered is not None and time.monotonic() - remembered[1] < _REMEMBER_NEXT_S:
            return remembered[0]
        return await self._read_next(broadcaster_id)

    async def _read_next(self, broadcaster_id: str) -> int:
        """The newest stored seq + 1; after retention deleted them all, the counter's + 1."""
        newest = await self._collection("events").find_one(
            {"broadcaster_id": broadcaster_id}, projection={"seq": 1}, sort=[("seq", DESCENDING)]
        )
        if newest is not None:
            return int(newest["seq"]) + 1
        counter = await self._collection("counters").find_one({"_id": broadcaster_id})
        return (int(counter["seq"]) if counter else 0) + 1

    async def _raise_counter(self, broadcaster_id: str, seq: int) -> None:
        counters = self._collection("counters")
        try:
            try:
                await counters.update_one(
                    {"_id": broadcaster_id}, {"$max": {"seq": seq}}, upsert=True
                )
            except DuplicateKeyError:
                # Another process created it at the same moment: it exists now.
                await counters.update_one({"_id": broadcaster_id}, {"$max": {"seq": seq}})
        except (PyMongoError, StoreUnavailable) as error:
            # The events are stored: their webhooks are answered. The counter only matters once
            # retention has deleted every event of this broadcaster, and the next batch raises
            # it past this seq anyway.
            log.warning("counter of %s not raised to %d: %s", broadcaster_id, seq, error)

    async def latest_events(self, broadcaster_id: str, limit: int) -> list[Event]:
        """Newest first."""
        docs = await self._find(
            "events", {"broadcaster_id": broadcaster_id}, sort=[("seq", DESCENDING)], limit=limit
        )
        return [_event_from_doc(doc) for doc in docs]

    async def events_after(self, broadcaster_id: str, after: int, limit: int) -> list[Event]:
        """Oldest first, seq > after."""
        docs = await self._find(
            "events",
            {"broadcaster_id": broadcaster_id, "seq": {"$gt": after}},
            sort=[("seq", 1)],
            limit=limit,
        )
        return [_event_from_doc(doc) for doc in docs]

    async def events_before(self, broadcaster_id: str, before: int, limit: int) -> list[Event]:
        """Newest first, seq < before."""
        docs = await self._find(
            "events",
            {"broadcaster_id": broadcaster_id, "seq": {"$lt": before}},
            sort=[("seq", DESCENDING)],
            limit=limit,
        )
        return [_event_from_doc(doc) for doc in docs]

    async def latest_event_of(self, broadcaster_id: str, types: Sequence[str]) -> Event | None:
        """The newest event of one of `types` (through the broadcaster_type_seq index)."""
        if not types:
            return None
        docs = await self._find(
            "events",
            {"broadcaster_id": broadcaster_id, "type": {"$in": list(types)}},
            sort=[("seq", DESCENDING)],
            limit=1,
        )
        return _event_from_doc(docs[0]) if docs else None

    async def prune_events(self, received_before: datetime, limit: int) -> int:
        """Delete up to `limit` events received before the given moment; how many went.

        By received_date, and by the `received_at` string for events stored before it existed
        (SEV's fixed-width UTC form sorts as the moments do): the index on received_date holds
        those as null, so neither clause scans the collection. The `counters` keep numbering
        above what is deleted.
        """
        cutoff = format_timestamp(received_before)
        query = {
            "$or": [
                {"received_date": {"$lt": received_before}},
                {"received_date": {"$exists": False}, "received_at": {"$lt": cutoff}},
            ]
        }
        events = self._collection("events")
        try:
            old = [
                doc["_id"] async for doc in events.find(query, projection={"_id": 1}, limit=limit)
            ]
            if not old:
                return 0
            deleted = await events.delete_many({"_id": {"$in": old}})
        except PyMongoError as error:
            raise StoreUnavailable(str(error)) from error
        return int(deleted.deleted_count)

    # -- messages that are not events ---------------------------------------------------------

    async def seen_message(self, message_id: str) -> bool:
        """Whether the id was noted."""
        return bool(await self._find("messages", {"_id": message_id}, limit=1))

    async def note_message(self, message_id: str, now: datetime) -> None:
        """Remember the id; forget the old ones (by hand: no TTL indexes, see above)."""
        stamp = now.timestamp()
        messages = self._collection("messages")
        try:
            await messages.update_one(
                {"_id": message_id}, {"$setOnInsert": {"seen_at": stamp}}, upsert=True
            )
            await messages.delete_many({"seen_at": {"$lt": stamp - MESSAGE_MEMORY_S}})
        except DuplicateKeyError:
            pass  # another process noted it at the same moment
        except PyMongoError as error:
            raise StoreUnavailable(str(error)) from error

    # -- leases -------------------------------------------------------------------------------

    async def try_lease(self, name: str, holder: str, seconds: float, now: datetime) -> bool:
        """Take the lease if free, expired or already ours (one atomic upsert)."""
        stamp = now.timestamp()
        leases = self._collection("leases")
        try:
            await leases.find_one_and_update(
                {"_id": name, "$or": [{"holder": holder}, {"expires_at": {"$lt": stamp}}]},
                {"$set": {"holder": holder, "expires_at": stamp + seconds}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # held by someone else: the upsert tried to create a second copy
        except PyMongoError as error:
            raise StoreUnavailable(str(error)) from error
        return True
