"""The store contract, run against both backends (embedded SQLite, MongoDB-wire server)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pymongo import MongoClient

from sev.clock import format_timestamp
from sev.crypto import TokenCipher
from sev.store import Broadcaster, Store, SubscriptionRecord, User
from sev.store.base import MESSAGE_MEMORY_S
from sev.store.mongo import MongoStore
from sev.store.sqlite import SqliteStore
from tests.support.factories import make_event

KEY = Fernet.generate_key().decode()


@pytest.fixture(params=["sqlite", "mongo"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """Makes stores over one database, so a test can close and reopen it."""
    cipher = TokenCipher(KEY)
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "sev.sqlite3", cipher)
    server = request.getfixturevalue("mongo_server")
    database = f"sev_test_{uuid.uuid4().hex[:12]}"
    return lambda: MongoStore(server.uri, cipher, database=database)


@pytest.fixture
async def store(store_factory: Callable[[], Store]) -> AsyncIterator[Store]:
    opened = store_factory()
    await opened.open()
    yield opened
    await opened.close()


def _raw_user_docs(store: Store) -> list[str]:
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store._path) as db:
            return [row[0] for row in db.execute("SELECT doc FROM users")]
    assert isinstance(store, MongoStore)
    client: MongoClient[dict[str, Any]] = MongoClient(store._uri)
    try:
        return [
            json.dumps(d, default=str)
            for d in client[store._database_name or "sev"]["users"].find()
        ]
    finally:
        client.close()


async def test_store_keeps_user_tokens_encrypted(store: Store) -> None:
    user = User(
        id="7",
        login="viewer",
        display_name="Viewer",
        scopes=["user:read:email"],
        access_token="plain-access-token-xyz",
        refresh_token="plain-refresh-token-abc",
    )
    await store.save_user(user)
    loaded = await store.get_user("7")
    assert loaded is not None
    assert loaded.access_token == "plain-access-token-xyz"
    assert loaded.refresh_token == "plain-refresh-token-abc"
    raw = _raw_user_docs(store)
    assert raw and all(
        "plain-access-token" not in doc and "plain-refresh" not in doc for doc in raw
    )


async def test_store_counts_favourites(store: Store) -> None:
    for index in range(3):
        await store.save_user(
            User(
                id=str(index),
                login=f"u{index}",
                display_name="U",
                favorite_id="1337" if index < 2 else "99",
            )
        )
    assert await store.favourite_count("1337") == 2
    assert await store.favourite_count("99") == 1
    assert len(await store.users_with_tokens()) == 0


async def test_store_sets_the_favourite_without_touching_tokens(store: Store) -> None:
    await store.save_user(User(id="1", login="u", display_name="U", access_token="old"))
    stale = await store.get_user("1")
    assert stale is not None
    await store.save_user(stale.model_copy(update={"access_token": "refreshed"}))
    await store.set_favourite("1", "1337")
    user = await store.get_user("1")
    assert user is not None
    assert (user.favorite_id, user.access_token) == ("1337", "refreshed")
    assert await store.favourite_count("1337") == 1
    await store.set_favourite("1", None)
    assert await store.favourite_count("1337") == 0


async def test_store_finds_broadcasters_by_login(store: Store) -> None:
    await store.save_broadcaster(
        Broadcaster(id="1", login="alpha", display_name="Alpha", granted_scopes=["bits:read"])
    )
    found = await store.get_broadcaster_by_login("alpha")
    assert found is not None and found.granted_scopes == ["bits:read"]
    assert await store.get_broadcaster_by_login("beta") is None
    assert [b.id for b in await store.list_broadcasters()] == ["1"]


async def test_store_saves_and_deletes_subscriptions(store: Store) -> None:
    record = SubscriptionRecord(
        id="s1",
        broadcaster_id="1",
        type="stream.online",
        version="1",
        condition={"broadcaster_user_id": "1"},
        status="enabled",
    )
    await store.save_subscription(record)
    await store.save_subscription(record.model_copy(update={"status": "authorization_revoked"}))
    listed = await store.list_subscriptions("1")
    assert [s.status for s in listed] == ["authorization_revoked"]
    assert await store.list_subscriptions("2") == []
    await store.delete_subscription("s1")
    assert await store.get_subscription("s1") is None


async def test_store_stores_a_redelivered_message_once(store: Store) -> None:
    event = make_event(message_id="same-id")
    first, second = await store.insert_events([event, event])
    again = (await store.insert_events([event]))[0]
    assert (first.created, second.created, again.created) == (True, False, False)
    assert first.event.seq == second.event.seq == again.event.seq == 1
    assert len(await store.latest_events("1337", 10)) == 1


async def test_store_numbers_events_strictly_increasing_under_concurrency(store: Store) -> None:
    events = [make_event() for _ in range(200)]
    results = await asyncio.gather(*(store.insert_events([e]) for e in events))
    seqs = sorted(r[0].event.seq for r in results)
    assert seqs == list(range(1, 201))
    stored = await store.events_after("1337", 0, 500)
    assert [e.seq for e in stored] == list(range(1, 201))
    assert {e.id for e in stored} == {e.id for e in events}


async def test_store_numbers_each_broadcaster_separately(store: Store) -> None:
    results = await store.insert_events([make_event("1"), make_event("2"), make_event("1")])
    assert [(r.event.broadcaster.id, r.event.seq) for r in results] == [
        ("1", 1),
        ("2", 1),
        ("1", 2),
    ]


async def test_store_answers_newest_and_after_queries(store: Store) -> None:
    await store.insert_events([make_event(message_id=f"m{i}", n=i) for i in range(25)])
    newest = await store.latest_events("1337", 10)
    assert [e.seq for e in newest] == list(range(25, 15, -1))
    assert newest[0].data["n"] == 24
    after = await store.events_after("1337", 20, 100)
    assert [e.seq for e in after] == [21, 22, 23, 24, 25]
    assert await store.events_after("1337", 25, 100) == []
    assert await store.latest_events("nobody", 10) == []
    before = await store.events_before("1337", 12, 5)
    assert [e.seq for e in before] == [11, 10, 9, 8, 7]
    assert [e.seq for e in await store.events_before("1337", 3, 10)] == [2, 1]
    assert await store.events_before("1337", 1, 10) == []
    assert await store.events_before("nobody", 10, 10) == []


async def test_store_finds_the_newest_event_of_some_types(store: Store) -> None:
    await store.insert_events(
        [
            make_event(event_type="stream.online", n=1),
            make_event(event_type="channel.update", n=2),
            make_event(event_type="stream.offline", n=3),
            make_event(event_type="channel.follow", n=4),
            make_event("other", event_type="stream.online", n=5),
        ]
    )
    status = await store.latest_event_of("1337", ["stream.online", "stream.offline"])
    assert status is not None
    assert (status.type, status.seq, status.data["n"]) == ("stream.offline", 3, 3)
    update = await store.latest_event_of("1337", ["channel.update"])
    assert update is not None and update.data["n"] == 2
    assert await store.latest_event_of("1337", ["channel.raid"]) is None
    assert await store.latest_event_of("nobody", ["stream.online"]) is None
    assert await store.latest_event_of("1337", []) is None


async def test_store_keeps_data_after_reopening(store_factory: Callable[[], Store]) -> None:
    first = store_factory()
    await first.open()
    await first.insert_events([make_event(message_id="kept")])
    await first.save_user(User(id="1", login="u", display_name="U", access_token="tok"))
    await first.close()
    second = store_factory()
    await second.open()
    try:
        events = await second.latest_events("1337", 10)
        assert [e.id for e in events] == ["kept"]
        user = await second.get_user("1")
        assert user is not None and user.access_token == "tok"
        assert (await second.insert_events([make_event()]))[0].event.seq == 2
    finally:
        await second.close()


async def test_store_remembers_handled_messages_for_an_hour(store: Store) -> None:
    now = datetime.now(UTC)
    assert not await store.seen_message("revocation-1")
    await store.note_message("revocation-1", now)
    await store.note_message("revocation-1", now)  # a copy noted twice is no error
    assert await store.seen_message("revocation-1")
    assert not await store.seen_message("revocation-2")
    # Noting a message past the memory forgets the old ones.
    await store.note_message("revocation-2", now + timedelta(seconds=MESSAGE_MEMORY_S + 1))
    assert not await store.seen_message("revocation-1")
    assert await store.seen_message("revocation-2")


async def test_store_gives_a_lease_to_one_holder(store: Store) -> None:
    now = datetime.now(UTC)
    assert await store.try_lease("reconcile", "a", 60, now)
    assert not await store.try_lease("reconcile", "b", 60, now)
    assert await store.try_lease("reconcile", "a", 60, now + timedelta(seconds=30))
    assert await store.try_lease("reconcile", "b", 60, now + timedelta(seconds=200))
    assert not await store.try_lease("reconcile", "a", 60, now + timedelta(seconds=201))


async def test_store_stores_a_batch_around_a_duplicate_without_a_hole(store: Store) -> None:
    [first] = await store.insert_events([make_event(message_id="retried")])
    batch = [make_event(message_id=m) for m in ("a", "retried", "b", "c")]
    results = await store.insert_events(batch)
    assert [(r.event.id, r.event.seq, r.created) for r in results] == [
        ("a", 2, True),
        ("retried", 1, False),
        ("b", 3, True),
        ("c", 4, True),
    ]
    assert results[1].event == first.event
    # Seqs stay consecutive: a reader after 1 has nothing missing to wait for.
    assert [e.id for e in await store.events_after("1337", 1, 10)] == ["a", "b", "c"]
    assert [e.seq for e in await store.events_after("1337", 0, 10)] == [1, 2, 3, 4]


async def test_store_takes_a_batch_of_many_redeliveries(store: Store) -> None:
    # After an outage Twitch resends what was stored but never acknowledged, all at once.
    stored = [make_event(message_id=f"m{n}") for n in range(80)]
    await store.insert_events(stored)
    batch = [*stored[:40], make_event(message_id="new-1"), *stored[40:], stored[0]]
    batch.insert(60, make_event(message_id="new-2"))
    results = await store.insert_events(batch)
    created = [(r.event.id, r.event.seq) for r in results if r.created]
    assert created == [("new-1", 81), ("new-2", 82)]
    assert all(r.event.seq == int(r.event.id[1:]) + 1 for r in results if not r.created)
    assert len(await store.events_after("1337", 0, 1000)) == 82


async def test_store_batches_from_two_stores_never_show_a_seq_before_a_lower_one(
    store_factory: Callable[[], Store],
) -> None:
    # Two stores on one database are two SEV processes; a third reads while they write.
    writers = [store_factory() for _ in range(2)]
    reader = store_factory()
    for opened in (*writers, reader):
        await opened.open()
    seen: list[list[int]] = []
    stop = asyncio.Event()

    async def read() -> None:
        while not stop.is_set():
            seen.append([e.seq for e in await reader.events_after("1337", 0, 10_000)])
            await asyncio.sleep(0)

    async def write(store: Store, name: str) -> list[Any]:
        results = []
        for batch in range(15):
            # Every third batch also carries a message the other process gets too (a Twitch
            # retry landing elsewhere): stored once, whoever is first.
            shared = [make_event(message_id=f"shared-{batch}")] if batch % 3 == 0 else []
            events = [make_event(message_id=f"{name}-{batch}-{n}") for n in range(8)]
            results += await store.insert_events(events[:4] + shared + events[4:])
        return results

    reading = asyncio.create_task(read())
    try:
        written = await asyncio.gather(*(write(s, n) for s, n in zip(writers, "ab", strict=True)))
    finally:
        stop.set()
        await reading
        for opened in (*writers, reader):
            await opened.close()
    checker = store_factory()
    await checker.open()
    try:
        stored = await checker.events_after("1337", 0, 10_000)
    finally:
        await checker.close()
    # Every read showed a prefix 1..n: never a seq whose predecessor was not there yet.
    assert len(seen) > 5
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in seen)
    assert [e.seq for e in stored] == list(range(1, 2 * 15 * 8 + 5 + 1))
    by_id = {e.id: e.seq for e in stored}
    results = written[0] + written[1]
    assert all(by_id[r.event.id] == r.event.seq for r in results)
    created = [r.event.id for r in results if r.created]
    assert sorted(created) == sorted(by_id)  # each stored event was created exactly once
    assert sum(1 for r in results if not r.created) == 5  # the shared ones' second copies


async def test_store_numbers_on_when_two_stores_take_turns_with_one_broadcaster(
    store_factory: Callable[[], Store],
) -> None:
    # A load balancer sends a broadcaster's webhooks to each process in turn: nearly every batch
    # finds its first seq taken by the other's last one.
    stores = [store_factory() for _ in range(2)]
    for opened in stores:
        await opened.open()
    try:
        results = []
        for n in range(40):
            results += await stores[n % 2].insert_events([make_event(message_id=f"turn-{n}")])
        stored = await stores[0].events_after("1337", 0, 100)
    finally:
        for opened in stores:
            await opened.close()
    assert [e.seq for e in stored] == list(range(1, 41))
    assert [e.id for e in stored] == [f"turn-{n}" for n in range(40)]
    assert all(r.created for r in results)
    assert [r.event.seq for r in results] == list(range(1, 41))


def test_mongo_store_tells_a_taken_seq_from_a_stored_message_by_mongodbs_key_pattern() -> None:
    # MongoDB names the index a duplicate key broke (`keyPattern`, `keyValue`): no lookup then.
    store = MongoStore("mongodb://127.0.0.1:1/", TokenCipher(KEY))
    event = make_event(message_id="m-1")
    by_seq = {
        "index": 0,
        "code": 11000,
        "errmsg": "E11000 duplicate key error collection: sev.events index: "
        'broadcaster_id_1_seq_1 dup key: { broadcaster_id: "1337", seq: 7 }',
        "keyPattern": {"broadcaster_id": 1, "seq": 1},
        "keyValue": {"broadcaster_id": "1337", "seq": 7},
    }
    by_id = {**by_seq, "keyPattern": {"_id": 1}, "keyValue": {"_id": "m-1"}}
    assert asyncio.run(store._stopped_by_message_id(by_seq, event)) is False
    assert asyncio.run(store._stopped_by_message_id(by_id, event)) is True


def _received(event: Any, moment: datetime) -> Any:
    return event.model_copy(update={"received_at": format_timestamp(moment)})


async def test_store_prunes_events_received_before_a_moment(store: Store) -> None:
    now = datetime.now(UTC)
    old, new = now - timedelta(days=31), now - timedelta(days=29)
    await store.insert_events(
        [
            _received(make_event(message_id="old-0"), old),
            _received(make_event(message_id="new-0"), new),
            _received(make_event(message_id="old-1"), old),
            _received(make_event("other", message_id="old-2"), old),
            _received(make_event(message_id="new-1"), new),
        ]
    )
    cutoff = now - timedelta(days=30)
    assert await store.prune_events(cutoff, 2) == 2  # bounded
    assert await store.prune_events(cutoff, 2) == 1
    assert await store.prune_events(cutoff, 2) == 0
    assert [e.id for e in await store.events_after("1337", 0, 10)] == ["new-0", "new-1"]
    assert await store.latest_events("other", 10) == []


async def test_store_numbers_on_after_retention_deleted_every_event(
    store_factory: Callable[[], Store],
) -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    first = store_factory()
    await first.open()
    await first.insert_events([_received(make_event(), old) for _ in range(3)])
    assert await first.prune_events(old + timedelta(days=1), 100) == 3
    await first.close()
    # A process that never saw those events: it must not hand out seq 1 again (a viewer that
    # holds seq 3 would take the new event for one it has).
    second = store_factory()
    await second.open()
    try:
        [result] = await second.insert_events([make_event(message_id="after")])
        assert result.event.seq == 4
        assert [e.id for e in await second.events_after("1337", 3, 10)] == ["after"]
    finally:
        await second.close()


@pytest.fixture
async def mongo_store(mongo_server: Any) -> AsyncIterator[MongoStore]:
    opened = MongoStore(
        mongo_server.uri, TokenCipher(KEY), database=f"sev_test_{uuid.uuid4().hex[:12]}"
    )
    await opened.open()
    yield opened
    await opened.close()


def _raw_events(store: MongoStore) -> Any:
    client: MongoClient[dict[str, Any]] = MongoClient(store._uri, tz_aware=True)
    return client, client[store._database_name or "sev"]["events"]


async def test_mongo_store_keeps_received_at_as_a_date_beside_the_string(
    mongo_store: MongoStore,
) -> None:
    event = _received(make_event(message_id="dated"), datetime(2026, 12, 1, 8, 30, tzinfo=UTC))
    await mongo_store.insert_events([event])
    client, events = _raw_events(mongo_store)
    try:
        doc = events.find_one({"_id": "dated"})
        indexes = {index["name"]: index for index in events.list_indexes()}
    finally:
        client.close()
    assert doc is not None
    assert doc["received_date"] == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    assert doc["received_at"] == "2026-12-01T08:30:00.000Z"
    [stored] = await mongo_store.latest_events("1337", 1)
    assert stored.received_at == "2026-12-01T08:30:00.000Z"
    # A TTL index where the server has them (MongoDB); FerretDB v1 refuses the option, so a
    # plain index serves the retention duty there.
    if mongo_store.has_ttl_index:
        assert indexes["received_ttl"]["expireAfterSeconds"] == 30 * 86400
    else:
        assert "received_date" in indexes
        assert "received_ttl" not in indexes


async def test_mongo_store_prunes_events_stored_before_the_date_field(
    mongo_store: MongoStore,
) -> None:
    now = datetime.now(UTC)
    await mongo_store.insert_events(
        [_received(make_event(message_id=f"m{n}"), now - timedelta(days=40 - n)) for n in range(3)]
    )
    client, events = _raw_events(mongo_store)
    try:
        # As an older SEV stored them: the string only.
        events.update_many({}, {"$unset": {"received_date": ""}})
    finally:
        client.close()
    assert await mongo_store.prune_events(now - timedelta(days=39), 10) == 1
    assert [e.id for e in await mongo_store.events_after("1337", 0, 10)] == ["m1", "m2"]


async def test_mongo_store_numbers_on_after_a_ttl_index_deleted_every_event(
    mongo_store: MongoStore,
) -> None:
    await mongo_store.insert_events([make_event() for _ in range(3)])
    await mongo_store.close()  # which waits for the counter to follow
    client, events = _raw_events(mongo_store)
    try:
        events.delete_many({})  # what MongoDB's TTL monitor does, newest included
    finally:
        client.close()
    other_process = MongoStore(
        mongo_store._uri, TokenCipher(KEY), database=mongo_store._database_name
    )
    await other_process.open()
    try:
        [result] = await other_process.insert_events([make_event()])
    finally:
        await other_process.close()
    assert result.event.seq == 4
