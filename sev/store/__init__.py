"""Persistence: the Store protocol and its two backends (embedded SQLite, MongoDB)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sev.config import Settings
from sev.crypto import TokenCipher
from sev.store.base import MAX_CATCH_UP, MAX_SEQ, Inserted, Store, StoreUnavailable
from sev.store.records import Broadcaster, EventSubState, Refusal, SubscriptionRecord, User

if TYPE_CHECKING:
    from sev.store.lanes import RedisLanes

__all__ = [
    "MAX_CATCH_UP",
    "MAX_SEQ",
    "Broadcaster",
    "EventSubState",
    "Inserted",
    "Refusal",
    "Store",
    "StoreUnavailable",
    "SubscriptionRecord",
    "User",
    "create_store",
]


def create_store(settings: Settings, *, lanes: RedisLanes | None = None) -> Store:
    """The store the settings ask for: MongoDB with MONGODB_URI, else embedded SQLite.

    `lanes` (several processes on one MongoDB) let one writer at a time number a broadcaster's
    batches; SQLite is one process's, so it has no use for them.
    """
    cipher = TokenCipher(settings.secret("token_key"))
    if settings.mongodb_uri is not None:
        from sev.store.mongo import MongoStore

        return MongoStore(
            settings.mongodb_uri.get_secret_value(),
            cipher,
            retention_days=settings.sev_event_retention_days,
            lanes=lanes,
        )
    from sev.store.sqlite import SqliteStore

    return SqliteStore(settings.sev_data_dir / "sev.sqlite3", cipher)
