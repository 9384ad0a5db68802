"""What an EventSub WebSocket may say: Twitch's close codes, where a reconnect may go, and how
long a keepalive SEV believes (pure functions of their inputs)."""

from __future__ import annotations

import math
from urllib.parse import parse_qs, urlsplit

# Twitch's close codes (EventSub WebSocket reference, "Close message"): what each means, and
# whether connecting again at once can help (False: only once something changes).
CLOSES: dict[int, tuple[str, bool]] = {
    4000: ("Twitch had an internal server error", True),
    4001: ("SEV sent Twitch a message (only pongs are allowed): a bug in SEV", True),
    4002: ("SEV did not answer Twitch's ping in time", True),
    4003: ("no subscription was created within the welcome's window", False),
    4004: ("SEV did not move to the reconnect URL within the grace time", True),
    4005: ("network timeout", True),
    4006: ("network error", True),
    4007: ("the reconnect URL was invalid", True),
}
# Twitch's EventSub WebSocket host: a reconnect URL elsewhere is not Twitch's.
TWITCH_EVENTSUB_HOST = "eventsub.wss.twitch.tv"
# keepalive_timeout_seconds: "whole integers between 10 and 600", 10 when not asked for.
KEEPALIVE_DEFAULT_S = 10.0
KEEPALIVE_MAX_S = 600.0


def _endpoint(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a ws:// or wss:// URL; None for anything else or anything odd."""
    # Userinfo, backslashes, spaces and non-ASCII are where URL parsers disagree about the host.
    if not url.isascii() or not url.isprintable() or " " in url or "\\" in url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("ws", "wss") or not parts.hostname or "@" in parts.netloc:
        return None
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "wss" else 80)


def reconnect_allowed(url: str, configured: str) -> bool:
    """Whether a `session_reconnect` URL is Twitch's: `wss://` on Twitch's EventSub host, or the
    scheme, host and port of the configured URL (a simulated Twitch)."""
    target = _endpoint(url)
    return target is not None and target in (
        ("wss", TWITCH_EVENTSUB_HOST, 443),
        _endpoint(configured),
    )


def keepalive_floor(configured: str) -> float:
    """The least keepalive SEV believes: Twitch's 10 s, or less when the configured URL itself
    asks for less (only a simulated Twitch grants that, and tests need short silences)."""
    asked = parse_qs(urlsplit(configured).query).get("keepalive_timeout_seconds", [])
    try:
        seconds = float(asked[-1])
    except (IndexError, ValueError):
        return KEEPALIVE_DEFAULT_S
    if not math.isfinite(seconds):
        return KEEPALIVE_DEFAULT_S
    return max(1.0, min(KEEPALIVE_DEFAULT_S, seconds))


def keepalive_timeout(value: object, floor: float) -> float:
    """A welcome's `keepalive_timeout_seconds` as SEV believes it.

    Below `floor` it is raised to it (a shorter silence would only churn connections). Above
    Twitch's 600, not a positive finite number, or absent, it is Twitch's default 10: Twitch
    never says more than 600, and the shortest documented wait costs at worst one needless
    reconnect, where believing 1e308 keeps SEV on a silent connection for good.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return KEEPALIVE_DEFAULT_S
    if not 0 < value <= KEEPALIVE_MAX_S:
        return KEEPALIVE_DEFAULT_S
    return max(floor, float(value))
