"""Persistence: the Store protocol and its two backends (embedded SQLite, MongoDB)."""

from __future__ import annotations

from sev.config import Settings
from sev.crypto import TokenCipher
from sev.store.base import MAX_CATCH_UP, MAX_SEQ, Inserted, Store, StoreUnavailable
from sev.store.records import Broadcaster, EventSubState, Refusal, SubscriptionRecord, User

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


def create_store(settings: Settings) -> Store:
    """The store the settings ask for: MongoDB with MONGODB_URI, else embedded SQLite."""
    cipher = TokenCipher(settings.secret("token_key"))
    if settings.mongodb_uri is not None:
        from sev.store.mongo import MongoStore

        return MongoStore(
            settings.mongodb_uri.get_secret_value(),
            cipher,
            retention_days=settings.sev_event_retention_days,
        )
    from sev.store.sqlite import SqliteStore

    return SqliteStore(settings.sev_data_dir / "sev.sqlite3", cipher)
