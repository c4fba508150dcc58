"""Durations as people write them: ``30s``, ``15m``, ``4h``, ``2d``, ``1h30m``.

Used for ``timeout``, ``poll_interval`` and, later, reminder intervals.
"""

from __future__ import annotations

import os
import re

from metaflow_hitl.errors import ConfigError

__all__ = ["format_duration", "parse_duration", "seconds_setting"]

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_TERM = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?[dhms])+")
_EXAMPLES = "'30s', '15m', '4h', '2d' or '1h30m'"


#: The longest duration accepted: ten years.
MAX_SECONDS = 3650 * 86400
#: The shortest: the stored timestamps keep milliseconds.
MIN_SECONDS = 0.001


def parse_duration(value: str | int | float, *, what: str = "duration") -> float:
    """Parse a duration into seconds.

    Parameters
    ----------
    value
        A string of one or more ``<number><unit>`` terms with units ``d``, ``h``, ``m``,
        ``s`` in that order (``1h30m``), or a number of seconds.
    what
        The option name, used in the error message.

    Returns
    -------
    float
        The duration in seconds, greater than zero.

    Raises
    ------
    ConfigError
        If the value is not a positive duration; the message lists the valid forms.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be a duration such as {_EXAMPLES}, not {value!r}.")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond float range: too long, refused below
            seconds = float("inf")
    else:
        text = str(value).strip().lower()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif _WHOLE.fullmatch(text):
            units = [u for _, u in _TERM.findall(text)]
            order = [k for k in _UNITS if k in units]
            if units != order:
                raise ConfigError(
                    f"{what} {value!r} repeats or misorders its units; write the largest unit "
                    f"first, each once, as in {_EXAMPLES}."
                )
            seconds = sum(float(n) * _UNITS[u] for n, u in _TERM.findall(text))
        else:
            raise ConfigError(
                f"{what} {value!r} is not a duration. Use numbers with the units d, h, m, s, "
                f"as in {_EXAMPLES}."
            )
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise ConfigError(
            f"{what} must be longer than zero, got {value!r}; write a finite duration such as "
            f"{_EXAMPLES}."
        )
    if seconds > MAX_SECONDS:
        raise ConfigError(
            f"{what} {value!r} is longer than {MAX_SECONDS // 86400} days; nothing should wait "
            "that long (and Argo's suspend and the records' timestamps would not hold it)."
        )
    if seconds < MIN_SECONDS:
        raise ConfigError(
            f"{what} {value!r} is shorter than {MIN_SECONDS * 1000:g} ms, the precision of the "
            "stored timestamps."
        )
    return seconds


def format_duration(seconds: float) -> str:
    """Format seconds as a compact duration (``1h30m``; ``0.25s`` below a second).

    Parameters
    ----------
    seconds
        A non-negative number of seconds.

    Returns
    -------
    str
        The shortest ``d/h/m/s`` spelling, which :func:`parse_duration` reads back.
    """
    if seconds < 1:
        return f"{seconds:g}s"
    rest = round(seconds)
    parts = []
    for unit, size in _UNITS.items():
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def seconds_setting(name: str, default: float) -> float:
    """A timeout in seconds from environment variable ``name`` (``default`` when unset).

    Raises
    ------
    ConfigError
        If the value is not a number of seconds between 0 (exclusive) and 3600.
    """
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise ConfigError(
            f"{name}={text!r} is not a number of seconds.",
            hint=f"Set it to e.g. {default:g}, or unset it.",
        )
    return value
