"""Markdown for untrusted text: escaping, code spans and fenced code blocks.

Review pages show text that someone other than the reader chose: artifact values, the gate
message, refusal reasons echoing a comment. These functions make such text inert in GitHub
Flavored Markdown (https://github.github.com/gfm/): it renders as the same characters and never
as a heading, list, quote, link, image, raw HTML, math, a table-cell break, an @-mention that
notifies someone, or a line that starts with a slash command.

* :func:`escape_inline` — one line of text (newlines become spaces): for sentences and
  table cells. This is what the template environment applies to every ``{{ value }}``.
* :func:`escape_lines` — keeps line breaks (each line neutralised on its own), optionally
  as a blockquote: for the gate message.
* :func:`code_span` / :func:`code_block` — monospace, with a backtick fence longer than any
  run of backticks inside, so the text cannot close it.

The rules: ``\\ ` * _ [ ] | ~ $ #`` are backslash-escaped everywhere; ``& < >`` become
entities; ``@`` is followed by a zero-width joiner (U+200D) so ``@user`` and ``@org/team``
mention no one; at the start of a line, ``- + = /`` markers and ``1.``/``1)`` are escaped
and leading blanks become ``&nbsp;``. Control characters and bidirectional overrides (which
can make text read differently than it is) become U+FFFD.
"""

from __future__ import annotations

import re

__all__ = [
    "MarkdownText",
    "code_block",
    "code_span",
    "escape_inline",
    "escape_lines",
    "normalize_text",
]

ZWJ = "\u200d"


class MarkdownText(str):
    """A string that is already Markdown, safe to emit as is (the result of escaping)."""

    __slots__ = ()


_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_SPECIAL = re.compile(r"[\\`*_\[\]|~$#&<>@]")
# Control characters (but tab and newline), DEL, C1 controls, and bidi embeddings/overrides/
# isolates (U+202A-202E, U+2066-2069, U+061C, U+200E/F).
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x84\x86-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_NEWLINES = re.compile("\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
_LINE_START = re.compile(r"(?P<indent>[ \t]*)(?:(?P<mark>[-+=/])|(?P<num>\d{1,9})(?P<dot>[.)]))")
_LANG = re.compile(r"[A-Za-z0-9_+.-]{0,30}")


def normalize_text(text: object) -> str:
    """``str(text)`` with newlines unified to ``\\n`` and unsafe characters made visible."""
    value = text if isinstance(text, str) else str(text)
    value = _NEWLINES.sub("\n", value)
    return _UNSAFE.sub("\ufffd", value)


def _escape_char(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _ENTITIES:
        return _ENTITIES[char]
    if char == "@":
        return "@" + ZWJ
    return "\\" + char


def _escape_line(line: str) -> str:
    head = _LINE_START.match(line)
    prefix = ""
    if head is not None:
        indent = head.group("indent").replace("\t", "    ")
        prefix = "&nbsp;" * len(indent)
        if head.group("mark"):
            prefix += "\\" + head.group("mark")
        else:
            prefix += head.group("num") + "\\" + head.group("dot")
        line = line[head.end() :]
    else:
        stripped = line.lstrip(" \t")
        indent = line[: len(line) - len(stripped)].replace("\t", "    ")
        prefix = "&nbsp;" * len(indent)
        line = stripped
    return prefix + _SPECIAL.sub(_escape_char, line)


def escape_inline(text: object) -> MarkdownText:
    """Escape text for use inside one line of Markdown (a sentence or a table cell).

    Parameters
    ----------
    text
        Any value; non-strings are converted with ``str``. A :class:`MarkdownText` is
        returned unchanged (it is escaped already).

    Returns
    -------
    MarkdownText
        The text on one line (line breaks become spaces), rendering as the same characters.

    Examples
    --------
    >>> escape_inline("# hi [x](javascript:alert(1)) @team")
    '\\\\# hi \\\\[x\\\\](javascript:alert(1)) @\\u200dteam'
    """
    if isinstance(text, MarkdownText):
        return text
    value = normalize_text(text).replace("\n", " ").replace("\t", " ")
    return MarkdownText(_escape_line(value))


def escape_lines(text: object, *, quote: bool = False) -> MarkdownText:
    """Escape multi-line text, keeping its line breaks (as hard breaks) and blank lines.

    Parameters
    ----------
    text
        Any value; non-strings are converted with ``str``.
    quote
        Prefix every line with ``> `` so the text renders as one blockquote.

    Returns
    -------
    MarkdownText
        One Markdown block (several paragraphs when the text has blank lines). Place it at
        the start of a line.
    """
    lines = [line.rstrip() for line in normalize_text(text).split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    out: list[str] = []
    for index, line in enumerate(lines):
        if not line:
            if out and out[-1]:
                out.append("")
            continue
        escaped = _escape_line(line)
        following = lines[index + 1] if index + 1 < len(lines) else ""
        out.append(escaped + ("\\" if following else ""))
    prefix = "> " if quote else ""
    return MarkdownText("\n".join((prefix + line).rstrip() for line in out))


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def code_span(text: object, *, cell: bool = False) -> MarkdownText:
    """Put text in an inline code span that it cannot close.

    Parameters
    ----------
    text
        Any value; non-strings are converted with ``str``. Line breaks become spaces.
    cell
        The span goes inside a table cell. GFM splits table rows on ``|`` before it looks
        for code spans, and cannot represent every backslash-pipe sequence inside one, so the
        text is emitted as ``<code>`` around escaped Markdown instead (same rendering).

    Returns
    -------
    MarkdownText
    """
    value = normalize_text(text).replace("\n", " ").replace("\t", " ")
    if cell:
        return MarkdownText("<code>" + _SPECIAL.sub(_escape_char, value) + "</code>")
    if not value:
        return MarkdownText("` `")
    fence = "`" * (_longest_backtick_run(value) + 1)
    if value.strip(" ") and (value[0] in "` " or value[-1] in "` "):
        value = f" {value} "
    return MarkdownText(f"{fence}{value}{fence}")


def code_block(text: object, lang: str = "") -> MarkdownText:
    """Put text in a fenced code block that it cannot close.

    Parameters
    ----------
    text
        Any value; non-strings are converted with ``str``. One trailing newline is dropped.
    lang
        The info string (``json``, ``shell``); anything but letters, digits and ``_+.-`` is
        refused with :class:`ValueError`, since it comes from the template author.

    Returns
    -------
    MarkdownText
        The block, without a trailing newline. Place it at the start of a line.
    """
    if not _LANG.fullmatch(lang):
        raise ValueError(f"code block language {lang!r} is not a plain word")
    value = normalize_text(text).removesuffix("\n")
    fence = "`" * max(3, _longest_backtick_run(value) + 1)
    return MarkdownText(f"{fence}{lang}\n{value}\n{fence}")
