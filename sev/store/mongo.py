"""The MongoDB store, through PyMongo's async API (`pymongo.AsyncMongoClient`).

Needs no transactions, TTL indexes or change streams (FerretDB v1 has none of them). Event
numbering relies on a unique index on (broadcaster_id, seq): an event is inserted with the next
seq in one atomic insert, and a process that raced another for the same seq retries with the next
one, so a seq N+1 can only exist once N does.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pymongo
from pymongo import DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from sev.crypto import TokenCipher
from sev.events import Event
from sev.store.base import MESSAGE_MEMORY_S, Inserted, StoreUnavailable
from sev.store.records import (
    Broadcaster,
    EventSubState,
    SubscriptionRecord,
    User,
    user_from_doc,
    user_to_doc,
)

Doc = dict[str, Any]
# Twitch wants an answer within a few seconds; a database that cannot answer in this time is
# reported as down (the webhook answers 503 and Twitch retries).
_OPERATION_TIMEOUT_S = 3.0
_PING_TIMEOUT_S = 1.5
_SEQ_RETRIES = 50


def _event_to_doc(event: Event) -> Doc:
    doc = event.model_dump(mode="json", exclude={"id", "data"})
    # Raw Twitch payloads may hold keys MongoDB-wire servers refuse (dots, `$`, nested
    # arrays): the payload is kept as JSON text.
    doc.update(
        _id=event.id,
        broadcaster_id=event.broadcaster.id,
        data_json=json.dumps(event.data, separators=(",", ":")),
    )
    return doc


def _event_from_doc(doc: Doc) -> Event:
    fields = {k: v for k, v in doc.items() if k not in ("_id", "broadcaster_id", "data_json")}
    return Event.model_validate({**fields, "id": doc["_id"], "data": json.loads(doc["data_json"])})


def _strip_id(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k != "_id"}


class MongoStore:
    """Store backed by MongoDB (or any MongoDB-wire server)."""

    def __init__(self, uri: str, cipher: TokenCipher, database: str | None = None) -> None:
        self._uri = uri
        self._cipher = cipher
        self._database_name = database
        self._client: AsyncMongoClient[Doc] | None = None
        # Per process, the next seq to try per broadcaster: one round trip per event normally.
        self._next_seq: dict[str, int] = {}
        # Within a process, inserts for one broadcaster go one at a time (no self-inflicted
        # seq races); across processes the unique index arbitrates.
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._indexes_ready = False

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
        except PyMongoError as error:
            raise StoreUnavailable(str(error)) from error

    async def close(self) -> None:
        """Close the client."""
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
        """Store events one by one in order (each insert is atomic with its seq)."""
        return [await self._insert_event(event) for event in events]

    async def _max_seq(self, broadcaster_id: str) -> int:
        docs = await self._find(
            "events",
            {"broadcaster_id": broadcaster_id},
            projection={"seq": 1},
            sort=[("seq", DESCENDING)],
            limit=1,
        )
        return int(docs[0]["seq"]) if docs else 0

    async def _insert_event(self, event: Event) -> Inserted:
        async with self._locks[event.broadcaster.id]:
            return await self._insert_event_locked(event)

    async def _insert_event_locked(self, event: Event) -> Inserted:
        events = self._collection("events")
        broadcaster_id = event.broadcaster.id
        seq = self._next_seq.get(broadcaster_id) or await self._max_seq(broadcaster_id) + 1
        for _ in range(_SEQ_RETRIES):
            stored = event.model_copy(update={"seq": seq})
            try:
                await events.insert_one(_event_to_doc(stored))
            except DuplicateKeyError:
                existing = await self._find_one("events", {"_id": event.id})
                if existing is not None:
                    return Inserted(_event_from_doc(existing), created=False)
                # Another process took this seq: continue after the newest one.
                seq = await self._max_seq(broadcaster_id) + 1
                continue
            except PyMongoError as error:
                # The write may or may not have happened: re-read the seq next time.
                self._next_seq.pop(broadcaster_id, None)
                raise StoreUnavailable(str(error)) from error
            self._next_seq[broadcaster_id] = seq + 1
            return Inserted(stored, created=True)
        raise StoreUnavailable(
            f"could not number an event of {broadcaster_id}: too much contention"
        )

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
