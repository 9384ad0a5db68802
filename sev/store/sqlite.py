"""The embedded store: one SQLite file in SEV_DATA_DIR (WAL), used from one dedicated thread."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sev.clock import format_timestamp
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, favorite_id TEXT, has_token INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS users_favorite ON users (favorite_id);
CREATE TABLE IF NOT EXISTS broadcasters (
    id TEXT PRIMARY KEY, login TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS broadcasters_login ON broadcasters (login);
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY, broadcaster_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS subscriptions_broadcaster ON subscriptions (broadcaster_id);
CREATE TABLE IF NOT EXISTS events (
    message_id TEXT PRIMARY KEY, broadcaster_id TEXT NOT NULL, seq INTEGER NOT NULL,
    doc TEXT NOT NULL, UNIQUE (broadcaster_id, seq));
CREATE INDEX IF NOT EXISTS events_type ON events (broadcaster_id, json_extract(doc, '$.type'), seq);
CREATE INDEX IF NOT EXISTS events_received ON events (json_extract(doc, '$.received_at'));
CREATE TABLE IF NOT EXISTS seq_floors (broadcaster_id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS app_state (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, seen_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS messages_seen_at ON messages (seen_at);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL);
"""

# The seq is computed inside the INSERT, which SQLite runs under its write lock: numbering and
# storing are one atomic step, so an event is never visible before a lower seq of its broadcaster.
# seq_floors holds the highest seq of a broadcaster whose events retention deleted, so numbering
# goes on above them even when none is left.
_INSERT_EVENT = """
INSERT OR IGNORE INTO events (message_id, broadcaster_id, seq, doc)
VALUES (?, ?, MAX(
    (SELECT COALESCE(MAX(seq), 0) FROM events WHERE broadcaster_id = ?),
    (SELECT COALESCE(MAX(seq), 0) FROM seq_floors WHERE broadcaster_id = ?)) + 1, ?)
"""
# SEV's received_at is a fixed-width UTC string, so comparing strings compares moments.
_OLD_EVENTS = """
SELECT rowid, broadcaster_id FROM events WHERE json_extract(doc, '$.received_at') < ? LIMIT ?
"""
_RAISE_FLOOR = """
INSERT INTO seq_floors (broadcaster_id, seq)
SELECT broadcaster_id, MAX(seq) FROM events WHERE broadcaster_id = ?
ON CONFLICT (broadcaster_id) DO UPDATE SET seq = MAX(seq, excluded.seq)
"""


_T = TypeVar("_T")


def _event_doc(event: Event) -> str:
    return event.model_dump_json(exclude={"id", "seq"})


def _event_from_row(message_id: str, seq: int, doc: str) -> Event:
    fields: dict[str, Any] = json.loads(doc)
    return Event.model_validate({**fields, "id": message_id, "seq": seq})


class SqliteStore:
    """Store backed by a single SQLite database file."""

    def __init__(self, path: Path, cipher: TokenCipher) -> None:
        self._path = path
        self._cipher = cipher
        self._db: sqlite3.Connection | None = None
        # One thread owns the connection: SQLite calls never block the event loop, and they
        # run one at a time, which is what a single connection wants.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sev-sqlite")

    async def _run(self, function: Callable[..., _T], *args: Any) -> _T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)
        except (sqlite3.Error, RuntimeError) as error:
            raise StoreUnavailable(str(error)) from error

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("store is not open")
        return self._db

    def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # Only SEV's user reads it (user tokens are encrypted, events and emails are not):
        # created 0600 before SQLite opens it; its -wal and -shm files take the same mode.
        self._path.touch(mode=0o600, exist_ok=True)
        self._path.chmod(0o600)  # a file an older SEV created 0644
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged event survives a power cut, not only a crash; group commit
        # (insert_events) pays the fsync once per batch.
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
        self._db = db

    async def open(self) -> None:
        """Open (creating if needed) the database file and its schema."""
        await self._run(self._open)

    async def close(self) -> None:
        """Close the connection and its thread."""
        if self._db is not None:
            await self._run(self._conn.close)
            self._db = None
        self._thread.shutdown(wait=True)

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        await self._all("SELECT 1")

    async def _all(self, sql: str, *params: Any) -> list[Any]:
        return await self._run(lambda: self._conn.execute(sql, params).fetchall())

    async def _write(self, sql: str, *params: Any) -> None:
        await self._run(lambda: self._conn.execute(sql, params))

    # -- users --------------------------------------------------------------------------------

    async def save_user(self, user: User) -> None:
        """Insert or replace a user."""
        await self._write(
            "INSERT OR REPLACE INTO users (id, favorite_id, has_token, doc) VALUES (?, ?, ?, ?)",
            user.id,
            user.favorite_id,
            int(bool(user.access_token or user.channel_access_token)),
            json.dumps(user_to_doc(user, self._cipher)),
        )

    async def get_user(self, user_id: str) -> User | None:
        """A user by Twitch id."""
        rows = await self._all("SELECT doc FROM users WHERE id = ?", user_id)
        return user_from_doc(json.loads(rows[0][0]), self._cipher) if rows else None

    async def set_favourite(self, user_id: str, broadcaster_id: str | None) -> None:
        """Change only the favourite."""
        await self._write(
            "UPDATE users SET favorite_id = ?, doc = json_set(doc, '$.favorite_id', ?) "
            "WHERE id = ?",
            broadcaster_id,
            broadcaster_id,
            user_id,
        )

    async def users_with_tokens(self) -> list[User]:
        """Users whose tokens must be validated."""
        rows = await self._all("SELECT doc FROM users WHERE has_token = 1")
        return [user_from_doc(json.loads(row[0]), self._cipher) for row in rows]

    async def favourite_count(self, broadcaster_id: str) -> int:
        """How many users favour this broadcaster."""
        rows = await self._all("SELECT COUNT(*) FROM users WHERE favorite_id = ?", broadcaster_id)
        return int(rows[0][0])

    # -- broadcasters -------------------------------------------------------------------------

    async def save_broadcaster(self, broadcaster: Broadcaster) -> None:
        """Insert or replace a broadcaster."""
        await self._write(
            "INSERT OR REPLACE INTO broadcasters (id, login, doc) VALUES (?, ?, ?)",
            broadcaster.id,
            broadcaster.login,
            broadcaster.model_dump_json(),
        )

    async def get_broadcaster(self, broadcaster_id: str) -> Broadcaster | None:
        """A broadcaster by Twitch id."""
        rows = await self._all("SELECT doc FROM broadcasters WHERE id = ?", broadcaster_id)
        return Broadcaster.model_validate_json(rows[0][0]) if rows else None

    async def get_broadcaster_by_login(self, login: str) -> Broadcaster | None:
        """A broadcaster by (lower-case) login."""
        rows = await self._all(
            "SELECT doc FROM broadcasters WHERE login = ? ORDER BY rowid DESC LIMIT 1", login
        )
        return Broadcaster.model_validate_json(rows[0][0]) if rows else None

    async def list_broadcasters(self) -> list[Broadcaster]:
        """Every broadcaster SEV knows."""
        rows = await self._all("SELECT doc FROM broadcasters")
        return [Broadcaster.model_validate_json(row[0]) for row in rows]

    # -- subscriptions ------------------------------------------------------------------------

    async def save_subscription(self, subscription: SubscriptionRecord) -> None:
        """Insert or replace a subscription record."""
        await self._write(
            "INSERT OR REPLACE INTO subscriptions (id, broadcaster_id, doc) VALUES (?, ?, ?)",
            subscription.id,
            subscription.broadcaster_id,
            subscription.model_dump_json(),
        )

    async def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        """A subscription by Twitch id."""
        rows = await self._all("SELECT doc FROM subscriptions WHERE id = ?", subscription_id)
        return SubscriptionRecord.model_validate_json(rows[0][0]) if rows else None

    async def delete_subscription(self, subscription_id: str) -> None:
        """Forget a subscription."""
        await self._write("DELETE FROM subscriptions WHERE id = ?", subscription_id)

    async def list_subscriptions(
        self, broadcaster_id: str | None = None
    ) -> list[SubscriptionRecord]:
        """All subscription records, or those of one broadcaster."""
        if broadcaster_id is None:
            rows = await self._all("SELECT doc FROM subscriptions")
        else:
            rows = await self._all(
                "SELECT doc FROM subscriptions WHERE broadcaster_id = ?", broadcaster_id
            )
        return [SubscriptionRecord.model_validate_json(row[0]) for row in rows]

    async def get_eventsub_state(self) -> EventSubState:
        """The app-wide EventSub state."""
        rows = await self._all("SELECT doc FROM app_state WHERE name = 'eventsub'")
        return EventSubState.model_validate_json(rows[0][0]) if rows else EventSubState()

    async def save_eventsub_state(self, state: EventSubState) -> None:
        """Replace the app-wide EventSub state."""
        await self._write(
            "INSERT OR REPLACE INTO app_state (name, doc) VALUES ('eventsub', ?)",
            state.model_dump_json(),
        )

    # -- events -------------------------------------------------------------------------------

    async def insert_events(self, events: Sequence[Event]) -> list[Inserted]:
        """Store a batch in one transaction (one fsync); duplicates are reported, not stored."""
        if not events:
            return []
        return await self._run(self._insert_batch, list(events))

    def _insert_batch(self, events: list[Event]) -> list[Inserted]:
        conn = self._conn
        results: list[Inserted] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for event in events:
                broadcaster_id = event.broadcaster.id
                cursor = conn.execute(
                    _INSERT_EVENT,
                    (event.id, broadcaster_id, broadcaster_id, broadcaster_id, _event_doc(event)),
                )
                row = conn.execute(
                    "SELECT seq, doc FROM events WHERE message_id = ?", (event.id,)
                ).fetchone()
                results.append(
                    Inserted(_event_from_row(event.id, row[0], row[1]), cursor.rowcount == 1)
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return results

    async def prune_events(self, received_before: datetime, limit: int) -> int:
        """Delete up to `limit` events received before the moment, in one transaction."""
        return await self._run(self._prune, format_timestamp(received_before), limit)

    def _prune(self, cutoff: str, limit: int) -> int:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute(_OLD_EVENTS, (cutoff, limit)).fetchall()
            for broadcaster_id in {row[1] for row in rows}:
                conn.execute(_RAISE_FLOOR, (broadcaster_id,))
            conn.executemany("DELETE FROM events WHERE rowid = ?", [(row[0],) for row in rows])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(rows)

    async def latest_events(self, broadcaster_id: str, limit: int) -> list[Event]:
        """Newest first."""
        rows = await self._all(
            "SELECT message_id, seq, doc FROM events WHERE broadcaster_id = ? "
            "ORDER BY seq DESC LIMIT ?",
            broadcaster_id,
            limit,
        )
        return [_event_from_row(*row) for row in rows]

    async def events_after(self, broadcaster_id: str, after: int, limit: int) -> list[Event]:
        """Oldest first, seq > after."""
        rows = await self._all(
            "SELECT message_id, seq, doc FROM events WHERE broadcaster_id = ? AND seq > ? "
            "ORDER BY seq ASC LIMIT ?",
            broadcaster_id,
            after,
            limit,
        )
        return [_event_from_row(*row) for row in rows]

    async def events_before(self, broadcaster_id: str, before: int, limit: int) -> list[Event]:
        """Newest first, seq < before."""
        rows = await self._all(
            "SELECT message_id, seq, doc FROM events WHERE broadcaster_id = ? AND seq < ? "
            "ORDER BY seq DESC LIMIT ?",
            broadcaster_id,
            before,
            limit,
        )
        return [_event_from_row(*row) for row in rows]

    async def latest_event_of(self, broadcaster_id: str, types: Sequence[str]) -> Event | None:
        """The newest event of one of `types`: one indexed lookup per type (an IN list would
        make SQLite walk the broadcaster's events by seq instead of using events_type)."""
        newest: Event | None = None
        for event_type in dict.fromkeys(types):
            rows = await self._all(
                "SELECT message_id, seq, doc FROM events WHERE broadcaster_id = ? "
                "AND json_extract(doc, '$.type') = ? ORDER BY seq DESC LIMIT 1",
                broadcaster_id,
                event_type,
            )
            if rows and (newest is None or rows[0][1] > newest.seq):
                newest = _event_from_row(*rows[0])
        return newest

    # -- messages that are not events ---------------------------------------------------------

    async def seen_message(self, message_id: str) -> bool:
        """Whether the id was noted."""
        return bool(await self._all("SELECT 1 FROM messages WHERE id = ?", message_id))

    async def note_message(self, message_id: str, now: datetime) -> None:
        """Remember the id; forget the old ones."""
        stamp = now.timestamp()

        def note() -> None:
            self._conn.execute(
                "INSERT OR IGNORE INTO messages (id, seen_at) VALUES (?, ?)", (message_id, stamp)
            )
            self._conn.execute(
                "DELETE FROM messages WHERE seen_at < ?", (stamp - MESSAGE_MEMORY_S,)
            )

        await self._run(note)

    # -- leases -------------------------------------------------------------------------------

    async def try_lease(self, name: str, holder: str, seconds: float, now: datetime) -> bool:
        """Take the lease if free, expired or already ours."""
        stamp = now.timestamp()
        await self._write(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "expires_at = excluded.expires_at "
            "WHERE leases.holder = excluded.holder OR leases.expires_at < ?",
            name,
            holder,
            stamp + seconds,
            stamp,
        )
        rows = await self._all("SELECT holder FROM leases WHERE name = ?", name)
        return bool(rows) and rows[0][0] == holder
