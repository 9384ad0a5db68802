"""`python -m bench.storage`: bytes per stored event in each store (the retention arithmetic).

Stores N events built as the webhook builds them (twitchsim's payloads, SEV's build_event) in a
fresh embedded store and a fresh database on the MongoDB-wire server, and reports what each
takes per event: the SQLite file with its indexes (after a WAL checkpoint and VACUUM); for
MongoDB, the BSON document the store writes (what MongoDB's `collStats.size` counts, before
WiredTiger compresses it) and the keys of its five index entries. FerretDB's own `collStats`
describes its SQLite tables, not MongoDB's, so it is reported apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from sev.clock import format_timestamp
from sev.crypto import TokenCipher
from sev.events import Event, build_event
from sev.store import Store
from sev.store.mongo import MongoStore, _event_to_doc
from sev.store.sqlite import SqliteStore
from twitchsim.directory import Directory
from twitchsim.generator import BUILDERS


def events(kinds: list[str], count: int, seed: int = 16) -> list[Event]:
    """`count` events cycling through `kinds`, for one streamer, as SEV stores them."""
    rng = random.Random(seed)
    directory = Directory()
    streamer = directory.streamers[0]
    built = []
    for n in range(count):
        kind = kinds[n % len(kinds)]
        data = BUILDERS[kind](streamer, directory, rng)
        now = format_timestamp(datetime.now(UTC))
        built.append(
            build_event(
                message_id=str(uuid.UUID(int=rng.getrandbits(128))),
                event_type=kind,
                version="1",
                broadcaster_id=streamer.id,
                data=data,
                message_timestamp=now,
                received_at=now,
            )
        )
    return built


async def _fill(store: Store, batch: list[Event]) -> None:
    await store.open()
    try:
        for start in range(0, len(batch), 256):
            await store.insert_events(batch[start : start + 256])
    finally:
        await store.close()


def sqlite_bytes(batch: list[Event], tmp: Path) -> float:
    """Bytes per event of the embedded store's file."""
    path = tmp / f"{uuid.uuid4().hex}.sqlite3"
    cipher = TokenCipher(Fernet.generate_key().decode())
    asyncio.run(_fill(SqliteStore(path, cipher), []))
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
    empty = path.stat().st_size
    asyncio.run(_fill(SqliteStore(path, cipher), batch))
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
    return (path.stat().st_size - empty) / len(batch)


def mongo_bytes(batch: list[Event], uri: str) -> dict[str, float]:
    """BSON document and index key bytes per event, and what FerretDB's collStats says."""
    import bson
    from pymongo import MongoClient

    documents = [
        _event_to_doc(event.model_copy(update={"seq": n})) for n, event in enumerate(batch)
    ]
    keys = [
        ("_id",),
        ("broadcaster_id", "seq"),
        ("broadcaster_id", "type", "seq"),
        ("received_date",),
    ]
    index_bytes = sum(
        len(bson.encode({name: doc.get(name) for name in key})) for doc in documents for key in keys
    )
    database = f"sev_storage_{uuid.uuid4().hex[:8]}"
    cipher = TokenCipher(Fernet.generate_key().decode())
    asyncio.run(_fill(MongoStore(uri, cipher, database=database), batch))
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    try:
        stats = client[database].command("collStats", "events")
        client.drop_database(database)
    finally:
        client.close()
    return {
        "bson_document_bytes": sum(len(bson.encode(doc)) for doc in documents) / len(batch),
        "index_key_bytes": index_bytes / len(batch),
        "ferretdb_collstats_bytes": (stats["size"] + stats["totalIndexSize"]) / len(batch),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storage", description=__doc__)
    parser.add_argument("--count", type=int, default=5000)
    args = parser.parse_args()
    mixes = {"channel.follow": ["channel.follow"], "every type in turn": sorted(BUILDERS)}
    from tests.support.services import MongoServer

    mongo = MongoServer()
    mongo.start()
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, kinds in mixes.items():
                batch = events(kinds, args.count)
                results[name] = {
                    "events": len(batch),
                    "event_json_bytes": sum(len(e.model_dump_json()) for e in batch) / len(batch),
                    "sqlite_bytes": sqlite_bytes(batch, Path(tmp)),
                    "mongo": mongo_bytes(batch, mongo.uri),
                }
    finally:
        mongo.close()
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
