"""The slash-command grammar of review comments.

Parsing never raises: :func:`parse_comment` returns a :class:`Command` to act on, a
:class:`Reply` to post (the text looked like a command but was malformed), or an
:class:`Ignore` with the reason it was not a command.

Grammar (the first non-blank line of the comment must start with the command)::

    comment  := blank* command
    command  := "/approve" [ws (json | fence | angle | pairs | note)] | "/reject" ws reason
    json     := a JSON object, possibly over several lines, and nothing after it
    fence    := "```json" newline JSON-object newline "```" and nothing after it
    angle    := "<" JSON object members ">"   (the original design's form, v3)
    pairs    := key "=" value (ws key "=" value)*, typed by the input schema (v3;
                :mod:`metaflow_hitl.input_pairs`)
    note     := any other text: a free-form remark kept with the approval
    reason   := any non-blank text

Examples::

    /approve
    /approve {"deploy_target": "staging"}
    /approve
    ```json
    {"deploy_target": "staging", "replicas": 3}
    ```
    /approve <"deploy_target": "staging", "replicas": 3>
    /approve deploy_target=staging replicas=3
    /approve note="two words" replicas=3
    /approve looks good to me
    /reject accuracy regressed on the holdout set

Grammar **v3** adds the ``angle`` and ``pairs`` forms; an ``angle`` that is not valid JSON
members, or a ``pairs`` value not of its field's type, is answered, never taken as a note.
A text with ``=`` in a word among other words (``/approve lgtm, x=1``) stays a note.

One command per comment (since grammar **v2**): a comment with a second line that starts with
``/approve`` or ``/reject`` is answered with a request for one command and records nothing.
A JSON object that gives a key twice is refused (RFC 8259 leaves its meaning undefined).

Not commands (ignored): ``> /approve`` (a quote), ``/approved``, a command in the middle of
a comment or inside a code block (fenced, or indented by four or more spaces, which Markdown
shows as code), look-alike characters such as a full-width ``／approve``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from metaflow_hitl.input_pairs import PAIRS, split_pairs, type_pairs
from metaflow_hitl.input_schema import MAX_INPUT_BYTES, STRICT_JSON, json_problem

__all__ = ["MAX_COMMENT_BYTES", "Command", "Ignore", "Reply", "parse_comment"]

#: Comments longer than this are answered with an error instead of being parsed.
MAX_COMMENT_BYTES = 65_536

_HEAD = re.compile(r"/(approve|reject)(?=\s|$)")
_BLANK_LINES = re.compile(r"\A(?:[ \t]*\n)+")
#: A line that starts a command (up to three spaces of indent, as Markdown allows).
_COMMAND_LINE = re.compile(r"^[ \t]{0,3}/(?:approve|reject)(?=\s|$)", re.MULTILINE)
#: The original design's ``<"key": value, ...>``: JSON object members between angle brackets.
_ANGLE = re.compile(r"<\s*(?:\"[\s\S]*)?>")
_FENCE = re.compile(r"```(?:json)?[ \t]*\n(?P<body>.*?)\n[ \t]*```", re.DOTALL)


@dataclass(frozen=True)
class Command:
    """A well-formed command."""

    intent: Literal["approve", "reject"]
    input: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


@dataclass(frozen=True)
class Reply:
    """The comment is a command but malformed: tell the author how to fix it."""

    message: str


@dataclass(frozen=True)
class Ignore:
    """Not a command; the reason is logged."""

    reason: str


def _json_object(text: str) -> dict[str, Any] | Reply:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
        return Reply(f"The approval input is over {MAX_INPUT_BYTES // 1024} KiB; shorten it.")
    try:
        value, end = STRICT_JSON.raw_decode(text)
    except json.JSONDecodeError as exc:
        return Reply(
            f"The input after /approve is not valid JSON ({json_problem(exc, text)}). "
            'Write it as /approve {"deploy_target": "staging"}.'
        )
    except RecursionError:
        return Reply("The input after /approve is not valid JSON: it is nested too deeply.")
    if not isinstance(value, dict):
        kind = type(value).__name__
        return Reply(f"The input after /approve must be a JSON object, not a {kind}.")
    if text[end:].strip():
        return Reply(
            "There is text after the JSON input of /approve; put remarks in a separate comment."
        )
    return value


def parse_comment(
    body: str | None, schema: Mapping[str, Any] | None = None
) -> Command | Reply | Ignore:
    """Parse a comment body.

    Parameters
    ----------
    body
        The comment text exactly as GitHub delivered it.
    schema
        The gate's input schema, which types ``key=value`` input (strings without one).

    Returns
    -------
    Command, Reply or Ignore
    """
    if not body or not body.strip():
        return Ignore("empty comment")
    text = _BLANK_LINES.sub("", body.replace("\r\n", "\n").replace("\r", "\n"), count=1)
    stripped = text.lstrip(" \t")
    indented = len(text[: len(text) - len(stripped)].expandtabs(4)) >= 4
    text = stripped
    head = None if indented else _HEAD.match(text)
    if len(body.encode("utf-8", "surrogatepass")) > MAX_COMMENT_BYTES:
        # The same test as below decides whether it is a command at all: a look-alike that
        # would be ignored when short is ignored when long, never answered.
        if head is not None:
            return Reply(f"This comment is over {MAX_COMMENT_BYTES // 1024} KiB; it was not read.")
        return Ignore("comment too large to be a command")
    if head is None:
        if indented and _HEAD.match(text):
            return Ignore("a command indented by 4 or more spaces is a code block, not a command")
        return Ignore("the comment does not start with /approve or /reject")
    if len(_COMMAND_LINE.findall(text)) > 1:
        return Reply(
            "This comment holds more than one command; nothing was recorded. Post one "
            "/approve or /reject per comment."
        )
    intent = head.group(1)
    rest = text[head.end() :].strip()
    if intent == "reject":
        if not rest:
            return Reply("Add a reason: /reject <why this must not proceed>.")
        return Command("reject", reason=rest)
    if not rest:
        return Command("approve")
    if rest.startswith("```"):
        fence = _FENCE.fullmatch(rest)
        if fence is None:
            return Reply(
                "The code block after /approve must be a single ```json block holding one "
                "JSON object, with nothing after it."
            )
        parsed = _json_object(fence.group("body"))
    elif rest.startswith("{"):
        parsed = _json_object(rest)
    elif rest.startswith('<"') or _ANGLE.fullmatch(rest):
        if not rest.endswith(">"):
            return Reply(
                'The input after /approve opens with <" but does not end with >; write it as '
                '/approve <"deploy_target": "staging">.'
            )
        parsed = _json_object("{" + rest[1:-1] + "}")
        if isinstance(parsed, Reply):
            return Reply(
                f"The input between < and > after /approve is not valid JSON members: "
                f'{parsed.message} Write it as /approve <"deploy_target": "staging">.'
            )
    elif PAIRS.fullmatch(rest):
        typed = type_pairs(split_pairs(rest), schema)
        if isinstance(typed, list):
            return Reply(
                "The key=value input after /approve was not used: "
                + "; ".join(typed)
                + ". Nothing was recorded."
            )
        parsed = typed
    else:
        return Command("approve", reason=rest)
    if isinstance(parsed, Reply):
        return parsed
    return Command("approve", input=parsed)
