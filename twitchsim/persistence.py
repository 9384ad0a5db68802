"""The simulated Twitch's memory across restarts: one JSON file in a data dir.

Real Twitch does not forget a token, a grant or a subscription when it restarts, and SEV relies
on that: at start it validates every token it stored, so a simulator that forgot them would log
every viewer out and withdraw every channel grant. With a data dir (`sev demo`: SEV_DATA_DIR;
`python -m twitchsim --data-dir`) the simulator keeps in `twitchsim-state.json`: authorization
codes, grants, access and refresh tokens (expiry as wall-clock time, so an expired token stays
expired), subscriptions with their secret and status, the cost budget, retired versions, removed
accounts, every message not yet delivered (sent again after the restart, same id, its retry
count carried on) and where each demo stream is (its seed and start, so it plays on rather than
going live again). WebSocket subscriptions are kept but come back disabled
(`websocket_disconnected`): no connection survives a restart, on Twitch either. Not kept: the
fault switches (a test's remote), rate-limit buckets, and the
request and delivery logs.

The file holds tokens and secrets: it is written mode 0600 and its content is never logged.
It is saved at most every SAVE_INTERVAL_S after a change (a crash loses no more than that) and
at stop, through a temporary file renamed over the old one, so a crash mid-write leaves the
previous state whole. A file that cannot be read is set aside as `.bad` and the simulator
starts empty: a demo that starts beats one that does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, get_args

from .deliveries import SimMessage, SimMessageType
from .streams import StreamOrigin
from .subscriptions import SimSubscription
from .tokens import AccessToken, AuthorizationCode, RefreshToken, SimGrant

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from .deliveries import Deliveries
    from .directory import Directory
    from .subscriptions import SimSubscriptions
    from .tokens import TokenStore

log = logging.getLogger(__name__)

STATE_FILE = "twitchsim-state.json"
FORMAT_VERSION = 1
SAVE_INTERVAL_S = 0.5

Record = TypeVar("Record", bound="DataclassInstance")

# What a stored field may hold, by the type its dataclass declares (JSON has lists, not tuples).
_VALID: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "str | None": lambda v: v is None or isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "float | None": lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool)),
    "bool": lambda v: isinstance(v, bool),
    "tuple[str, ...]": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
    "dict[str, str]": lambda v: (
        isinstance(v, dict) and all(isinstance(i, str) for i in (*v.keys(), *v.values()))
    ),
}
_CONVERT: dict[str, Callable[[Any], Any]] = {"float": float, "tuple[str, ...]": tuple}


class UnreadableState(ValueError):
    """The state file is not one this simulator wrote (the message names what, never values)."""


@dataclass
class SavedState:
    """Everything a restarted simulator takes over, checked and ready to use."""

    codes: list[AuthorizationCode]
    grants: list[SimGrant]
    access: list[AccessToken]
    refresh: list[RefreshToken]
    subscriptions: list[SimSubscription]
    subscription_seq: int
    max_total_cost: int
    removed_versions: set[tuple[str, str]]
    removed_users: set[str]
    messages: list[SimMessage]
    stream_origins: dict[str, StreamOrigin]
    streams_played_until: float | None


def snapshot(
    tokens: TokenStore,
    subscriptions: SimSubscriptions,
    directory: Directory,
    deliveries: Deliveries,
    *,
    streams: tuple[dict[str, StreamOrigin], float | None],
) -> dict[str, Any]:
    """The state as JSON-ready values, taken in one go on the event loop (so it is consistent)."""
    return {
        "version": FORMAT_VERSION,
        "tokens": {
            "codes": [asdict(c) for c in tokens.codes.values()],
            "grants": [asdict(g) for g in tokens.grants.values()],
            "access": [asdict(t) for t in tokens.access.values()],
            "refresh": [asdict(t) for t in tokens.refresh.values()],
        },
        "subscriptions": {
            "seq": subscriptions.seq,
            "max_total_cost": subscriptions.max_total_cost,
            "removed_versions": sorted(subscriptions.removed_versions),
            "items": [asdict(s) for s in subscriptions.values()],
        },
        "removed_users": sorted(directory.removed),
        "messages": [
            {
                "id": m.id,
                "type": m.type,
                "subscription_id": m.subscription.id,
                "body": m.body.decode(),
                "challenge": m.challenge,
                "retries": m.retries,
            }
            for m in deliveries.unfinished()
        ],
        "streams": {
            "origins": {channel: asdict(origin) for channel, origin in streams[0].items()},
            "played_until": streams[1],
        },
    }


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UnreadableState(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise UnreadableState(f"{what} is not a list")
    return value


def _field(value: dict[str, Any], name: str, kind: str, what: str) -> Any:
    if name not in value:
        raise UnreadableState(f"{what} has no {name}")
    if not _VALID[kind](value[name]):
        raise UnreadableState(f"{what}.{name} is not a {kind}")
    return _CONVERT.get(kind, lambda v: v)(value[name])


def _record(cls: type[Record], raw: Any) -> Record:
    """A dataclass from its stored fields, each checked against the type it declares (a field
    with a default may be missing: a file written before the field was added)."""
    what = cls.__name__
    value = _object(raw, what)
    return cls(
        **{
            f.name: _field(value, f.name, str(f.type), what)
            for f in fields(cls)
            if f.name in value or f.default is MISSING
        }
    )


def _records(cls: type[Record], raw: Any, what: str) -> list[Record]:
    return [_record(cls, item) for item in _list(raw, what)]


def decode(data: Any) -> SavedState:
    """Check a parsed state file and build its records; UnreadableState names what is wrong."""
    root = _object(data, "the state")
    if root.get("version") != FORMAT_VERSION:
        raise UnreadableState(f"the format version is not {FORMAT_VERSION}")
    tokens = _object(root.get("tokens"), "tokens")
    subs = _object(root.get("subscriptions"), "subscriptions")
    items = _records(SimSubscription, subs.get("items"), "subscriptions.items")
    by_id = {s.id: s for s in items}
    versions = _list(subs.get("removed_versions"), "subscriptions.removed_versions")
    if not all(_VALID["tuple[str, ...]"](v) and len(v) == 2 for v in versions):
        raise UnreadableState("subscriptions.removed_versions is not a list of pairs")
    removed_users = _list(root.get("removed_users"), "removed_users")
    if not _VALID["tuple[str, ...]"](removed_users):
        raise UnreadableState("removed_users is not a list of ids")
    messages = []
    for raw in _list(root.get("messages"), "messages"):
        message = _object(raw, "a message")
        kind = _field(message, "type", "str", "a message")
        if kind not in get_args(SimMessageType):
            raise UnreadableState("a message has an unknown type")
        sub = by_id.get(_field(message, "subscription_id", "str", "a message"))
        if sub is None:
            continue  # its subscription is gone: Twitch would not send it either
        messages.append(
            SimMessage(
                _field(message, "id", "str", "a message"),
                kind,
                sub,
                _field(message, "body", "str", "a message").encode(),
                _field(message, "challenge", "str | None", "a message"),
                retries=_field(message, "retries", "int", "a message"),
            )
        )
    streams = _object(root.get("streams"), "streams")
    origins = _object(streams.get("origins"), "streams.origins")
    return SavedState(
        codes=_records(AuthorizationCode, tokens.get("codes"), "tokens.codes"),
        grants=_records(SimGrant, tokens.get("grants"), "tokens.grants"),
        access=_records(AccessToken, tokens.get("access"), "tokens.access"),
        refresh=_records(RefreshToken, tokens.get("refresh"), "tokens.refresh"),
        subscriptions=items,
        subscription_seq=_field(subs, "seq", "int", "subscriptions"),
        max_total_cost=_field(subs, "max_total_cost", "int", "subscriptions"),
        removed_versions={(t, v) for t, v in versions},
        removed_users=set(removed_users),
        messages=messages,
        stream_origins={str(c): _record(StreamOrigin, o) for c, o in origins.items()},
        streams_played_until=_field(streams, "played_until", "float | None", "streams"),
    )


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file mode 0600, in the same directory so that the rename is atomic.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class StateFile:
    """Loads the state at start; saves it after changes (debounced) and at stop."""

    def __init__(self, path: Path, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.path = path
        self._snapshot = snapshot
        self._dirty = asyncio.Event()
        self._saver: asyncio.Task[None] | None = None
        # The text last handed to a writer, and the writers' order (see `_write`).
        self._text: str | None = None
        self._number = 0
        self._written_number = 0
        self._write_lock = threading.Lock()
        self._failing = False

    def load(self) -> SavedState | None:
        """The saved state, or None: no file yet, or one that cannot be read (logged once and
        set aside as `.bad`, so the next save does not overwrite what someone may want to see)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or type(error).__name__
            self._set_aside(f"cannot be read ({reason})")
            return None
        try:
            state = decode(json.loads(text))
        except ValueError as error:  # JSONDecodeError and UnreadableState: no values in them
            self._set_aside(f"is not a state file this simulator can read ({error})")
            return None
        self._text = text
        return state

    def _set_aside(self, problem: str) -> None:
        bad = self.path.with_name(self.path.name + ".bad")
        try:
            os.replace(self.path, bad)
            kept = f"moved to {bad}"
        except OSError:
            kept = "left in place"
        log.warning("simulated Twitch: %s %s; %s, starting empty", self.path, problem, kept)

    def changed(self) -> None:
        """Something worth keeping changed: save soon."""
        self._dirty.set()

    def start(self) -> None:
        """Begin saving changes in the background."""
        if self._saver is None:
            self._saver = asyncio.create_task(self._save_changes())

    async def stop(self) -> None:
        """Stop the background saver and save what there is now."""
        if self._saver is not None:
            self._saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._saver
            self._saver = None
        await self.save()

    async def _save_changes(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.save()
            except Exception:
                # A bug here must not end saving for the rest of the run.
                log.exception("simulated Twitch: saving its state failed")
            await asyncio.sleep(SAVE_INTERVAL_S)

    async def save(self) -> None:
        """Write the state if it differs from what was last written."""
        text = json.dumps(self._snapshot(), separators=(",", ":"))
        if text == self._text:
            return
        self._text = text
        self._number += 1
        await asyncio.to_thread(self._write, self._number, text)

    def _write(self, number: int, text: str) -> None:
        # A save cancelled at stop goes on in its thread while the final one starts: whichever
        # runs last, the newer state is the one left on disk.
        with self._write_lock:
            if number <= self._written_number:
                return
            try:
                _write_atomically(self.path, text)
            except OSError as error:
                if not self._failing:
                    log.warning(
                        "simulated Twitch: cannot save its state to %s (%s)",
                        self.path,
                        error.strerror or type(error).__name__,
                    )
                self._failing = True
                # Not written: the next save must try again even if nothing else changes.
                self._text = None
                return
            self._failing = False
            self._written_number = number
