"""Timestamps as Twitch writes them: RFC 3339 in UTC with up to nine fractional digits."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def rfc3339_nano(ns: int | None = None) -> str:
    """Format like Go's RFC3339Nano, as Twitch does: trailing zeros of the fraction dropped."""
    ns = time.time_ns() if ns is None else ns
    seconds, fraction = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{fraction:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def rfc3339_offset(seconds: float, ns: int | None = None) -> str:
    """A timestamp `seconds` from now (or from `ns`)."""
    ns = time.time_ns() if ns is None else ns
    return rfc3339_nano(ns + int(seconds * 1_000_000_000))
