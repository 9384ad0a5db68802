"""The demo accounts: deterministic ids and names, pictures as inline SVG (no outside requests)."""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from typing import Any

_PALETTE = ("#9146ff", "#00b5ad", "#e91916", "#f5a623", "#1f69ff", "#00a86b", "#ff6905", "#bf94ff")


def avatar_svg(seed: str, display_name: str, size: int) -> str:
    """A round picture with the account's initial, as an SVG document."""
    colour = _PALETTE[hashlib.sha256(seed.encode()).digest()[0] % len(_PALETTE)]
    initial = escape(display_name[:1].upper() or "?")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 100 100"><circle cx="50" cy="50" r="50" fill="{colour}"/>'
        f'<text x="50" y="66" font-family="sans-serif" font-size="48" text-anchor="middle" '
        f'fill="#fff">{initial}</text></svg>'
    )


def _avatar(seed: str, display_name: str, size: int) -> str:
    """The same picture as a data URL."""
    svg = avatar_svg(seed, display_name, size)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _banner(seed: str, display_name: str) -> str:
    """A wide offline picture, as a data URL."""
    colour = _PALETTE[hashlib.sha256(seed.encode()).digest()[1] % len(_PALETTE)]
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="1920" height="1080" viewBox="0 0 160 90">'
        f'<rect width="160" height="90" fill="{colour}"/><text x="80" y="50" '
        'font-family="sans-serif" font-size="10" text-anchor="middle" fill="#fff">'
        f"{escape(display_name)} is offline</text></svg>"
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


@dataclass(frozen=True)
class Account:
    """One demo Twitch user; streamers have a channel that events happen in."""

    id: str
    login: str
    display_name: str
    streamer: bool
    broadcaster_type: str = ""
    description: str = ""
    created_at: str = "2019-06-01T12:00:00Z"

    @property
    def profile_image_url(self) -> str:
        """The account's picture (inline SVG)."""
        return _avatar(self.id, self.display_name, 300)

    @property
    def offline_image_url(self) -> str:
        """The channel's offline picture (inline SVG), empty for viewers as on Twitch."""
        return _banner(self.id, self.display_name) if self.streamer else ""

    def picture_svg(self) -> str:
        """The account's picture as the simulator serves it at `{images}/{id}.svg`."""
        return avatar_svg(self.id, self.display_name, 300)

    def helix(self, *, email: bool = False, images: str = "") -> dict[str, Any]:
        """The account as Helix `GET /users` returns it; with `images` (where the simulator
        serves pictures, like Twitch's image CDN), the picture is a URL there, else inline."""
        user: dict[str, Any] = {
            "id": self.id,
            "login": self.login,
            "display_name": self.display_name,
            "type": "",
            "broadcaster_type": self.broadcaster_type,
            "description": self.description,
            "profile_image_url": (f"{images}/{self.id}.svg" if images else self.profile_image_url),
            "offline_image_url": self.offline_image_url,
            "view_count": 0,
            "created_at": self.created_at,
        }
        if email:
            user["email"] = f"{self.login}@example.com"
        return user

    def user_fields(self, prefix: str = "user") -> dict[str, str]:
        """`{prefix}_id`, `{prefix}_login`, `{prefix}_name` as EventSub payloads carry them."""
        return {
            f"{prefix}_id": self.id,
            f"{prefix}_login": self.login,
            f"{prefix}_name": self.display_name,
        }


DEMO_ACCOUNTS: tuple[Account, ...] = (
    Account("41000001", "pixelpaladin", "PixelPaladin", True, "partner",
            "Retro RPGs, bad puns, good vibes.", "2015-03-14T09:26:53Z"),
    Account("41000002", "speedrunsally", "SpeedrunSally", True, "partner",
            "Any% or bust. World record attempts nightly.", "2016-08-02T18:00:00Z"),
    Account("41000003", "cozycrumpet", "CozyCrumpet", True, "affiliate",
            "Cozy games and a cup of tea.", "2018-11-20T07:45:00Z"),
    Account("41000004", "lofi_llama", "Lofi_Llama", True, "affiliate",
            "Beats to code and chill to.", "2019-01-05T22:10:00Z"),
    Account("41000005", "captain_chaos", "Captain_Chaos", True, "",
            "Chaos% runs. Nothing goes to plan.", "2020-04-01T04:01:00Z"),
    Account("41000006", "bytebard", "ByteBard", True, "",
            "Live-coding ballads about off-by-one errors.", "2021-07-07T15:30:00Z"),
    Account("42000001", "viewer_vic", "Viewer_Vic", False, "", "Just here for the chat."),
    Account("42000002", "lurker_lou", "Lurker_Lou", False, "", "Lurking since 2019."),
    Account("42000003", "chat_champ", "Chat_Champ", False, "", "First!"),
    Account("42000004", "emote_emma", "Emote_Emma", False, "", "PogChamp enthusiast."),
)  # fmt: skip


class Directory:
    """Lookup of the demo accounts by id and by login (case-insensitive, as on Twitch)."""

    def __init__(self, accounts: tuple[Account, ...] = DEMO_ACCOUNTS) -> None:
        self._all = accounts
        self._by_id = {a.id: a for a in accounts}
        self._by_login = {a.login: a for a in accounts}
        # Deleted or suspended accounts: Helix and OAuth no longer know them.
        self._removed: set[str] = set()

    @property
    def accounts(self) -> tuple[Account, ...]:
        """The accounts that exist."""
        return tuple(a for a in self._all if a.id not in self._removed)

    def __iter__(self) -> Iterator[Account]:
        return iter(self.accounts)

    def by_id(self, user_id: str) -> Account | None:
        """The account with this id, if any."""
        return None if user_id in self._removed else self._by_id.get(user_id)

    def by_login(self, login: str) -> Account | None:
        """The account with this login (any case), if any."""
        account = self._by_login.get(login.strip().lower())
        return None if account is None or account.id in self._removed else account

    @property
    def removed(self) -> frozenset[str]:
        """Ids of the accounts deleted or suspended."""
        return frozenset(self._removed)

    def remove(self, user_id: str) -> None:
        """The account is deleted or suspended."""
        self._removed.add(user_id)

    def restore(self, user_id: str) -> None:
        """A suspended account is back."""
        self._removed.discard(user_id)

    @property
    def streamers(self) -> list[Account]:
        """Accounts with a channel."""
        return [a for a in self.accounts if a.streamer]

    def someone_else(
        self, rng: random.Random, *not_these: Account, streamer: bool = False
    ) -> Account:
        """A random account other than the given ones (a streamer when asked)."""
        pool = [a for a in self.accounts if a not in not_these and (a.streamer or not streamer)]
        return rng.choice(pool)
