"""`python -m bench.seal [--messages N] [--rounds R]`: what checking Redis fan-out costs per
message (docs/PERFORMANCE.md, "Sealed fan-out").

Each process seals what it publishes and, for every message it reads back from Redis, opens
the seal and checks the message's shape (sev/live/fanout.py: `seal`, `unseal`, `read_message`).
This times those three on N copies of one ordinary event as python-socketio publishes it (about
600 bytes of JSON), `--rounds` times after one round not counted, beside the `json.loads`
python-socketio's listener pays for the same message anyway (`read_message` decodes in its place:
SEV hands python-socketio the decoded message, so the JSON is decoded once). Printed: the median
microseconds per message of each step; the check's own cost is "all" minus "json.loads alone".
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from bench.servers import BROADCASTER, SESSION_SECRET
from sev.events import Event, Person
from sev.live.fanout import fanout_key, read_message, seal, unseal


def _message() -> bytes:
    event = Event(
        id="5f0b1d3c-7a4e-4d7b-9a51-1c2d3e4f5a6b",
        seq=4242,
        type="channel.cheer",
        version="1",
        broadcaster=Person(
            id=BROADCASTER.id, login=BROADCASTER.login, name=BROADCASTER.display_name
        ),
        actor=Person(id="41000002", login="cool_user", name="Cool_User"),
        occurred_at="2026-12-08T10:11:12.123Z",
        received_at="2026-12-08T10:11:12.200Z",
        summary="Cool_User cheered 100 bits",
        data={
            "is_anonymous": False,
            "user_id": "41000002",
            "user_login": "cool_user",
            "user_name": "Cool_User",
            "broadcaster_user_id": BROADCASTER.id,
            "broadcaster_user_login": BROADCASTER.login,
            "broadcaster_user_name": BROADCASTER.display_name,
            "message": "Cheer100 nice stream!",
            "bits": 100,
        },
    )
    return json.dumps(
        {
            "method": "emit",
            "event": "event",
            "data": [event.model_dump(mode="json")],
            "namespace": "/",
            "room": f"broadcaster:{BROADCASTER.id}",
            "skip_sid": None,
            "callback": None,
            "host_id": "0123456789abcdef",
        }
    ).encode()


def _per_message_us(step: Callable[[], object], messages: int, rounds: int) -> float:
    """The median time of one call of `step`, in microseconds, over `rounds` rounds."""
    times = []
    for round_number in range(rounds + 1):
        started = time.perf_counter()
        for _ in range(messages):
            step()
        if round_number:  # the first round warms up and is not counted
            times.append((time.perf_counter() - started) / messages * 1e6)
    return statistics.median(times)


def main(arguments: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.seal", description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000, help="messages per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds counted")
    args = parser.parse_args(arguments)
    messages, rounds = max(1, min(args.messages, 1_000_000)), max(1, min(args.rounds, 50))
    key = fanout_key(SESSION_SECRET)
    body = _message()
    now = time.time()
    sealed = seal(key, body, now)
    opened = unseal(key, sealed, now)
    steps: dict[str, Callable[[], object]] = {
        "json.loads alone": lambda: json.loads(opened),
        "seal (per publish)": lambda: seal(key, body, now),
        "unseal (per message read)": lambda: unseal(key, sealed, now),
        "decode + shape, seq only": lambda: read_message(
            opened, room_prefix="broadcaster:", whole_events=False
        ),
        "decode + shape, whole Event": lambda: read_message(
            opened, room_prefix="broadcaster:", whole_events=True
        ),
        "all, per message read": lambda: read_message(
            unseal(key, sealed, now), room_prefix="broadcaster:", whole_events=True
        ),
    }
    print(f"bench.seal: {len(body)}-byte message, {messages} x {rounds} rounds, median")
    for name, step in steps.items():
        print(f"  {name:<28} {_per_message_us(step, messages, rounds):6.2f} us")


if __name__ == "__main__":
    main()
