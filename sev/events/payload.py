"""Reading an event's data as Twitch sent it: each reader answers a fallback (or None) rather
than fail when a field is missing or not the documented shape."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Numbers a badge shows: whole, not negative, and exact in JavaScript too (static/feed.js
# formats the same badges for events that arrive live).
MAX_AMOUNT = 2**53 - 1
# ISO 4217 currencies use at most 4 minor digits; Twitch's charity amounts use 2.
MAX_DECIMAL_PLACES = 8
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def text(value: Any, limit: int = 200) -> str:
    """A field as one line of at most `limit` characters; "" for a missing one."""
    line = " ".join(str(value).split()) if value is not None else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def nested(data: Mapping[str, Any], *path: str) -> Any:
    """The value at `path` (`"reward", "cost"`), or None where a step is not an object."""
    value: Any = data
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def count(value: Any) -> int | None:
    """A whole, non-negative amount a badge can show exactly, or None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT:
        return None
    return value


def money(value: Any) -> str | None:
    """A `{value, decimal_places, currency}` amount as "1,234.56 USD", or None."""
    if not isinstance(value, Mapping):
        return None
    amount, places = count(value.get("value")), count(value.get("decimal_places"))
    currency = value.get("currency")
    if amount is None or places is None or places > MAX_DECIMAL_PLACES:
        return None
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        return None
    whole, fraction = divmod(amount, 10**places)
    number = f"{whole:,}" + (f".{fraction:0{places}d}" if places else "")
    return f"{number} {currency}"
