"""The one reader of the wall clock (everything else takes the time as an argument or a clock),
and the timestamps SEV reads from Twitch and writes itself."""

from __future__ import annotations

from datetime import UTC, datetime


def now_utc() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def parse_timestamp(value: str) -> datetime:
    """Parse Twitch's RFC 3339 timestamps, which may carry nanoseconds.

    `datetime.fromisoformat` reads them (it drops digits past microseconds); the shape check
    first refuses the other ISO 8601 forms it would also take (no separators, a space for T,
    no time zone).
    """
    text = value.strip()
    shape = text[4:5] + text[7:8] + text[10:11].upper() + text[13:14] + text[16:17]
    if shape != "--T::" or text[19:20] not in (".", "Z", "z", "+", "-"):
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # Year 1 or 9999 with an offset leaves datetime's range.
        raise ValueError(f"timestamp out of range: {value!r}") from None


def format_timestamp(moment: datetime) -> str:
    """SEV's own timestamp form: UTC, milliseconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def normalize_timestamp(value: str) -> str:
    """A Twitch timestamp in SEV's form; unparseable values are returned as they came."""
    try:
        return format_timestamp(parse_timestamp(value))
    except ValueError:
        return value
