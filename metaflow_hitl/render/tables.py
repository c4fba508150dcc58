"""Plain-text tables and durations for people reading a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

__all__ = ["ago", "render_table", "state_text", "truncate"]


def truncate(text: str, width: int) -> str:
    """One line of at most ``width`` characters, ending in ``…`` when cut."""
    line = " ".join(str(text).split())
    return line if len(line) <= width else line[: max(0, width - 1)] + "…"


def ago(then: datetime, now: datetime) -> str:
    """``3m``, ``2h``, ``4d``: how long ago (or, negative, how far ahead) ``then`` is."""
    seconds = int((now - then).total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{sign}{seconds // size}{unit}"
    return f"{sign}{seconds}s"


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, width: int | None = None
) -> str:
    """Left-aligned columns separated by two spaces, with a header line.

    With ``width`` (the terminal's columns), the widest columns are cut, widest first, with
    an ellipsis, until each line fits (no column below its header or 8 characters).
    """
    cells = [[" ".join(str(c).split()) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    if width is not None:
        floor = [max(len(h), 8) for h in headers]
        while sum(widths) + 2 * (len(widths) - 1) > width:
            wide = max(range(len(widths)), key=lambda i: widths[i] - floor[i])
            if widths[wide] <= floor[wide]:
                break
            widths[wide] -= 1
        cells = [[truncate(c, w) for c, w in zip(row, widths, strict=True)] for row in cells]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def state_text(state: str, proceed: bool | None) -> str:
    """A gate's state for a table: ``timed_out`` says what the timeout did."""
    if state == "timed_out" and proceed is not None:
        return f"timed_out ({'approved' if proceed else 'rejected'})"
    return state
