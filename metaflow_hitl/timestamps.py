"""UTC timestamps, written one way everywhere: ``2026-11-25T10:53:10.123Z``.

Records never hold local times or offsets other than UTC, so comparisons across the
cluster, the GitHub Action and a laptop need no time-zone rules (and no DST).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

__all__ = ["add_seconds", "format_ts", "parse_ts", "utc_now"]

_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z")


def utc_now() -> datetime:
    """The current time, timezone-aware UTC, to the millisecond (as records keep it)."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_ts(value: datetime) -> str:
    """Format an aware datetime as UTC with millisecond precision and a ``Z``.

    Any offset is converted to UTC; sub-millisecond digits are dropped (rounded down), so
    ``parse_ts(format_ts(t))`` is ``t`` to the millisecond and never later than ``t``.

    Raises
    ------
    ValueError
        For a naive datetime (no time zone): its instant is unknown.
    """
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not allowed in records; use UTC")
    value = value.astimezone(timezone.utc).replace(tzinfo=None)
    # isoformat, not strftime: strftime("%Y") drops the leading zeros of years before 1000 on
    # glibc, which parse_ts (and the record schemas) would then refuse.
    return value.isoformat(timespec="milliseconds") + "Z"


def parse_ts(text: str) -> datetime:
    """Parse a timestamp written by :func:`format_ts` (``Z`` suffix required).

    Raises
    ------
    ValueError
        If the text is not a UTC timestamp of that form.
    """
    if not isinstance(text, str) or not _TS.fullmatch(text):
        raise ValueError(f"{text!r} is not a UTC timestamp like 2026-11-25T10:53:10.123Z")
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc)
    except ValueError as exc:  # matches the pattern but is no date, e.g. month 13
        raise ValueError(f"{text!r} is not a valid UTC timestamp: {exc}") from None


def add_seconds(value: datetime, seconds: float) -> datetime:
    """``value`` plus ``seconds`` (kept here so callers need no timedelta import)."""
    return value + timedelta(seconds=seconds)
