"""Who a Twitch login or user id is, as Helix Get Users says, cached in this process.

Anyone may open `/streamers/{login}` for any login, and every event names an actor: without a
cache a stranger (or a busy channel) would turn page views into Helix calls. Both caches are
bounded (least recently used goes first) and expire, "no such user" included; a lookup that is
already in flight is shared, never repeated. Twitch's rate limit is TwitchClient's business.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar
from urllib.parse import urlsplit

from sev.config import SIMULATOR_MOUNT
from sev.events import Event
from sev.ratelimit import RateLimiter
from sev.twitch import USERS_PER_REQUEST, TwitchClient, TwitchError, TwitchUnavailable, TwitchUser

log = logging.getLogger(__name__)

# Twitch's image CDN: the only place outside SEV a page may load a picture from
# (sev/web/security.py).
TWITCH_IMAGES = "https://static-cdn.jtvnw.net"
# Where the simulated Twitch serves its demo accounts' pictures (twitchsim/helix.py), below its
# own base URL: in demo mode SEV mounts it, so they are SEV's own origin.
DEMO_IMAGES = "/profile-images"
# The same pictures as a page's same-origin path: SEV mounts the simulator at /_twitch.
SIMULATOR_IMAGES = SIMULATOR_MOUNT + DEMO_IMAGES
_UNSAFE = frozenset("\\\"'<>`")


def _plain(url: object) -> bool:
    """Printable ASCII without spaces, quotes, angle brackets or backslashes, not too long."""
    return (
        isinstance(url, str)
        and 0 < len(url) <= 2000
        and all(0x21 <= ord(c) < 0x7F and c not in _UNSAFE for c in url)
    )


# How long serving or publishing events waits for Helix's pictures before it goes on without
# them (the lookup still finishes and fills the cache for the next time).
FACES_WAIT_S = 1.0
# After Twitch failed or was that slow, pictures come from the cache alone for this long: a
# Twitch that hangs must not cost every published batch the whole wait.
FACES_PAUSE_S = 30.0
# Logins not in the cache that this process looks up per minute, at most: a stranger who opens
# page after page of made-up logins must not spend the app's Helix rate limit (800 a minute),
# which subscriptions need.
LOGIN_LOOKUPS_PER_MINUTE = 120
# A client's share of them (an address, or a logged-in user): one stranger's made-up logins
# exhaust their own share, never the whole process's, so genuine pages still open. Several
# clients together can still reach the process's cap, which stays the backstop.
CLIENT_LOOKUPS_PER_MINUTE = 20
LOGIN_TTL_S = 600.0
IMAGE_TTL_S = 3600.0
MAX_LOGINS = 2_000
MAX_IMAGES = 20_000

V = TypeVar("V")


class TtlCache(Generic[V]):
    """At most `size` entries, each forgotten `ttl_s` after it was put (or when pushed out)."""

    def __init__(self, size: int, ttl_s: float, clock: Callable[[], float]) -> None:
        self.size = size
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> tuple[bool, V | None]:
        """(True, value) while `key` is cached and fresh, else (False, None)."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry[0] <= self._clock():
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, entry[1]

    def put(self, key: str, value: V) -> None:
        """Cache `value` under `key`, pushing out the least recently used beyond `size`."""
        self._entries[key] = (self._clock() + self.ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


def face_src(url: object) -> str | None:
    """`url` when it may go in an img's src as it is: an https address on Twitch's image CDN or
    a same-origin path to the simulated Twitch's pictures (what safe_image_url returns)."""
    if not isinstance(url, str) or not _plain(url) or _dot_segment(url):
        return None
    if url.startswith(f"{SIMULATOR_IMAGES}/"):
        return url
    return url if url.startswith(f"{TWITCH_IMAGES}/") else None


def _dot_segment(url: str) -> bool:
    """Whether the path has a `.` or `..` segment, in any spelling a browser resolves as one
    (`%2e%2e`, `.%2E`): such a path can leave the pictures' folder on SEV's own origin."""
    path = urlsplit(url).path.lower().replace("%2e", ".")
    return any(segment in (".", "..") for segment in path.split("/"))


def safe_image_url(url: str, demo_images: str | None = None) -> str | None:
    """What a page may put in an img's src for `url`: an https URL on Twitch's image CDN as it
    is, or (demo mode) a picture of the simulated Twitch at `demo_images` (an absolute URL under
    SEV's own mount of it) as a same-origin path; else None."""
    if not isinstance(url, str) or not _plain(url):
        return None
    if demo_images and url.startswith(demo_images + "/"):
        return face_src(urlsplit(url).path)
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" == TWITCH_IMAGES and parts.path.startswith("/"):
        return face_src(url)
    return None


class LookupsExhausted(TwitchUnavailable):
    """This client (CLIENT_LOOKUPS_PER_MINUTE) or this process (LOGIN_LOOKUPS_PER_MINUTE)
    looked up that many logins in the last minute already."""


class Profiles:
    """Helix users by login (pages) and profile pictures by user id (events), cached."""

    def __init__(
        self,
        twitch: TwitchClient,
        *,
        demo_images: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        login_lookups_per_minute: int = LOGIN_LOOKUPS_PER_MINUTE,
        client_lookups_per_minute: int = CLIENT_LOOKUPS_PER_MINUTE,
    ) -> None:
        self._twitch = twitch
        self._clock = clock
        self._login_lookups = RateLimiter(login_lookups_per_minute, 60.0, clock)
        self._client_lookups = RateLimiter(client_lookups_per_minute, 60.0, clock)
        self._faces_paused_until = 0.0
        # Demo mode: where the simulated Twitch's pictures are, in SEV's own mount of it.
        self._demo_images = demo_images
        self.logins: TtlCache[TwitchUser | None] = TtlCache(MAX_LOGINS, LOGIN_TTL_S, clock)
        self.images: TtlCache[str] = TtlCache(MAX_IMAGES, IMAGE_TTL_S, clock)
        self._pending: dict[str, asyncio.Future[TwitchUser | None]] = {}
        self._image_lock = asyncio.Lock()

    def safe_image(self, url: str) -> str:
        """`url` as a page may show it, else "" (see safe_image_url)."""
        return safe_image_url(url, self._demo_images) or ""

    def image_of(self, user: TwitchUser) -> str:
        """The user's picture as a page may show it, else ""."""
        return self.safe_image(user.profile_image_url)

    async def by_login(self, login: str, client: str | None = None) -> TwitchUser | None:
        """The Helix user with this (normalised) login, None when Twitch knows none; TwitchError
        when Twitch fails (not cached). A lookup for `client` (who asks: "ip:<address>" or
        "user:<id>") spends that client's share first, then the process's."""
        hit, user = self.logins.get(login)
        if hit:
            return user
        pending = self._pending.get(login)
        if pending is not None:
            return await asyncio.shield(pending)
        if client is not None and not self._client_lookups.allow(client):
            raise LookupsExhausted("too many lookups of unknown logins by this client", 429)
        if not self._login_lookups.allow("logins"):
            raise LookupsExhausted("too many lookups of unknown logins this minute", 429)
        future: asyncio.Future[TwitchUser | None] = asyncio.get_running_loop().create_future()
        self._pending[login] = future
        try:
            found = await self._twitch.get_users(logins=[login])
            user = next((u for u in found if u.login == login), None)
            self.logins.put(login, user)
            if user is not None:
                self.images.put(user.id, self.image_of(user))
            future.set_result(user)
            return user
        except Exception as error:
            future.set_exception(error)
            # Marked retrieved: when nobody else waited, asyncio would complain about it.
            future.exception()
            raise
        except BaseException:
            future.cancel()
            raise
        finally:
            del self._pending[login]

    def _from_cache(self, user_ids: Iterable[str], found: dict[str, str]) -> list[str]:
        """Put the cached pictures of these ids in `found`; the ids not in the cache."""
        missing = []
        for user_id in user_ids:
            hit, url = self.images.get(user_id)
            if hit:
                found[user_id] = url or ""
            else:
                missing.append(user_id)
        return missing

    async def images_of(self, user_ids: Iterable[str]) -> dict[str, str]:
        """Each id's picture ("" when none may be shown), from the cache or Helix in batches of
        100; ids Twitch does not know are cached as ""; TwitchError when Twitch fails."""
        found: dict[str, str] = {}
        missing = self._from_cache(dict.fromkeys(i for i in user_ids if i), found)
        if not missing:
            return found
        # One lookup at a time: a second caller finds what the first fetched.
        async with self._image_lock:
            still = self._from_cache(missing, found)
            for start in range(0, len(still), USERS_PER_REQUEST):
                batch = still[start : start + USERS_PER_REQUEST]
                users = {u.id: u for u in await self._twitch.get_users(ids=batch)}
                for user_id in batch:
                    user = users.get(user_id)
                    url = self.image_of(user) if user else ""
                    self.images.put(user_id, url)
                    found[user_id] = url
        return found

    async def with_faces(self, events: list[Event], wait_s: float = FACES_WAIT_S) -> list[Event]:
        """`events` with each actor's picture (`actor.profile_image_url`), one batched lookup for
        those not cached; when Twitch fails or is slower than `wait_s`, those without one."""
        ids = {e.actor.id for e in events if e.actor is not None and e.actor.id}
        if not ids:
            return events
        if self._clock() < self._faces_paused_until:
            images = self._cached_images(ids)
            return [_with_face(event, images) for event in events]
        lookup = asyncio.ensure_future(self.images_of(ids))
        try:
            images = await asyncio.wait_for(asyncio.shield(lookup), wait_s)
        except TimeoutError:
            log.warning("Helix's pictures took over %.1f s; events go without them", wait_s)
            lookup.add_done_callback(_retrieve)
            self._faces_paused_until = self._clock() + FACES_PAUSE_S
            images = self._cached_images(ids)
        except TwitchError as error:
            # One line, no traceback: Twitch being away is not SEV's bug.
            log.warning("Twitch failed while looking up pictures: %s", error)
            self._faces_paused_until = self._clock() + FACES_PAUSE_S
            images = self._cached_images(ids)
        return [_with_face(event, images) for event in events]

    def _cached_images(self, ids: Iterable[str]) -> dict[str, str]:
        return {i: url for i in ids if (url := self.images.get(i)[1])}


def _with_face(event: Event, images: dict[str, str]) -> Event:
    url = images.get(event.actor.id) if event.actor else None
    if event.actor is None or not url:
        return event
    actor = event.actor.model_copy(update={"profile_image_url": url})
    return event.model_copy(update={"actor": actor})


def _retrieve(task: asyncio.Future[dict[str, str]]) -> None:
    # A lookup nobody waits for any more: its failure is logged, not left unretrieved.
    if not task.cancelled() and task.exception() is not None:
        log.warning("Twitch failed while looking up pictures: %s", task.exception())
