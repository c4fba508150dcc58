"""What reviewers read: approval files, PR/issue bodies, replies and decision records.

Pure functions from records to text. Nothing here talks to git or GitHub; the review-repo
adapters call these and write the results. The Markdown comes from jinja2 templates shipped in
the package (``metaflow_hitl/render/templates``, the top-level ``templates/`` folder of the repo).
A folder named by ``templates_dir=`` or ``METAFLOW_HITL_TEMPLATES_DIR`` is searched first, so
users can override any template (or one partial, e.g. ``_decide.md.j2``) by file name.

Escaping is on by default and cannot be forgotten: the environment passes every ``{{ value }}``
through :func:`~metaflow_hitl.render.markdown.escape_inline` unless the value is
:class:`~metaflow_hitl.render.markdown.MarkdownText` (made by the ``md_lines``, ``code``, ``cell``,
``codeblock`` or ``safe`` filters). Jinja's own HTML autoescaping is off on purpose: it leaves
Markdown live, and its ``Markup`` (from ``join``, ``tojson``...) would bypass our escaping.
Undefined names raise (``StrictUndefined``); template errors surface as
:class:`~metaflow_hitl.errors.ConfigError` naming the template.

The hidden gate marker (:mod:`metaflow_hitl.markers`) is added by the render functions
themselves, outside the templates, so an override cannot drop or alter it.

Files in the review repo, per gate ``Flow/run/step``:

* ``approvals/Flow/run/step.md`` — :func:`render_approval_file`, committed when the gate opens.
* ``decisions/Flow/run/step.json`` — :func:`render_decision_record`: the decision record,
  byte for byte as the store keeps it (:func:`~metaflow_hitl.records.encode_record`), so
  ``git log`` of the review repo can be checked against the store with ``decode_record``.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import jinja2

from metaflow_hitl.durations import format_duration
from metaflow_hitl.errors import ConfigError, DecisionRefused, GateRefError, InvalidInput
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.input_schema import example_input
from metaflow_hitl.markers import (
    reminder_tag,
    render_marker,
    render_reply_marker,
    reply_event_tag,
)
from metaflow_hitl.records import Decision, Reminder, Request, encode_record
from metaflow_hitl.render.markdown import (
    MarkdownText,
    code_block,
    code_span,
    escape_inline,
    escape_lines,
)
from metaflow_hitl.render.phrases import after_timeout
from metaflow_hitl.timestamps import format_ts

__all__ = [
    "GITHUB_BODY_LIMIT",
    "TEMPLATES_DIR_ENV",
    "ArtifactSummary",
    "approval_path",
    "branch_for",
    "decision_path",
    "parse_approval_path",
    "render_approval_file",
    "render_decision_record",
    "render_issue_body",
    "render_pr_body",
    "render_pr_title",
    "render_reminder_comment",
    "render_reply",
    "render_run_ended_comment",
    "summarize_artifacts",
    "summarize_value",
    "template_environment",
]

#: Environment variable naming a folder of template overrides.
TEMPLATES_DIR_ENV = "METAFLOW_HITL_TEMPLATES_DIR"
#: Artifact rows shown in an approval file; the rest are counted.
MAX_ARTIFACT_ROWS = 50
#: GitHub refuses issue, pull request and comment bodies longer than this many characters.
#: Escaping can make text six times longer (``&`` is ``&amp;``), so the free text of a PR or
#: issue body or a reply (the message, a reason, the input) is cut until the body fits.
GITHUB_BODY_LIMIT = 65_536
# (characters of free text kept, artifact rows kept) tried in turn until a body fits.
_SHRINK = ((None, MAX_ARTIFACT_ROWS), (8_000, MAX_ARTIFACT_ROWS), (3_000, 20), (1_000, 5), (200, 0))

_LINK_LABELS = {
    "metaflow_ui": "Metaflow UI",
    "argo_ui": "Argo Workflows UI",
    "code_package": "Code package",
}


# --- artifact summaries ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ArtifactSummary:
    """One row of the artifact table: a name, a type and a short, safe rendition of a value.

    Parameters
    ----------
    name
        The artifact name.
    type_name
        ``int``, ``dict``, ``numpy.ndarray``...
    value
        At most ``max_chars`` characters; ends with ``…`` when cut.
    truncated
        Whether ``value`` was cut.
    """

    name: str
    type_name: str
    value: str
    truncated: bool = False


_PLAIN = (type(None), bool, int, float, complex, str, bytes, bytearray)
_CONTAINERS: dict[type, str] = {
    list: "[]",
    tuple: "()",
    set: "{}",
    frozenset: "{}",
    dict: "{}",
}
_ARRAY_MODULES = ("numpy", "pandas")


def _type_name(value: Any) -> str:
    kind = type(value)
    module = getattr(kind, "__module__", "") or ""
    name = getattr(kind, "__qualname__", "") or kind.__name__
    return name if module == "builtins" else f"{module}.{name}"


def _bounded(value: Any, budget: int, depth: int) -> str:
    kind = type(value)
    if kind is str:
        return repr(value[: budget + 1])
    if kind in (bytes, bytearray):
        return repr(bytes(value[: budget + 1]))
    if kind is int and value.bit_length() > 256:
        return f"<int of {value.bit_length()} bits>"
    if kind in _PLAIN:
        return repr(value)
    if kind in _CONTAINERS:
        if depth >= 4:
            return "..."
        items = value.items() if kind is dict else value
        parts: list[str] = []
        used = 0
        for item in items:
            if used > budget:
                parts.append("...")
                break
            if kind is dict:
                piece = _bounded(item[0], budget, depth + 1) + ": "
                piece += _bounded(item[1], budget - len(piece), depth + 1)
            else:
                piece = _bounded(item, budget, depth + 1)
            parts.append(piece)
            used += len(piece) + 2
        if kind in (set, frozenset) and not parts:
            return f"{kind.__name__}()"
        inner = ", ".join(parts) + ("," if kind is tuple and len(parts) == 1 else "")
        return _CONTAINERS[kind][0] + inner + _CONTAINERS[kind][1]
    module = (getattr(kind, "__module__", "") or "").split(".")[0]
    if module in _ARRAY_MODULES:
        shape = getattr(value, "shape", None)
        if isinstance(shape, tuple) and all(type(n) is int for n in shape):
            return f"<{_type_name(value)} shape={shape!r}>"
    return f"<{_type_name(value)} object>"


def summarize_value(name: str, value: Any, max_chars: int = 120) -> ArtifactSummary:
    """Describe an artifact value for people, without running its code.

    Builtin scalars, strings, bytes and containers are rendered piecewise (never more than
    about ``max_chars`` of work, whatever their size; nesting below four levels shows
    ``...``). Anything else, including subclasses of builtins, shows only its type — its
    ``__repr__`` is not called — except NumPy/pandas objects, which also show their shape.

    Parameters
    ----------
    name
        The artifact name.
    value
        The value.
    max_chars
        The longest ``value`` text; longer text is cut and ends with ``…``.

    Returns
    -------
    ArtifactSummary
    """
    max_chars = max(8, int(max_chars))
    try:
        text = _bounded(value, max_chars, 0)
    except Exception:  # e.g. a container changed size meanwhile: a summary must never fail
        text = f"<{_type_name(value)} object>"
    truncated = len(text) > max_chars
    if truncated:
        text = text[: max_chars - 1] + "…"
    return ArtifactSummary(name=name, type_name=_type_name(value), value=text, truncated=truncated)


def summarize_artifacts(values: Mapping[str, Any], max_chars: int = 120) -> list[ArtifactSummary]:
    """:func:`summarize_value` for each item, sorted by name."""
    return [summarize_value(k, values[k], max_chars) for k in sorted(values)]


# --- paths in the review repo ---------------------------------------------------------


def branch_for(gate_id: GateId) -> str:
    """The gate's review branch: ``hitl/<flow>/<run>/<step>``."""
    return f"hitl/{gate_id.flow}/{gate_id.run_id}/{gate_id.step}"


def approval_path(gate_id: GateId) -> str:
    """``approvals/<flow>/<run>/<step>.md``: where a gate's approval file lives."""
    return f"approvals/{gate_id.flow}/{gate_id.run_id}/{gate_id.step}.md"


def decision_path(gate_id: GateId) -> str:
    """``decisions/<flow>/<run>/<step>.json``: where a gate's decision record lives."""
    return f"decisions/{gate_id.flow}/{gate_id.run_id}/{gate_id.step}.json"


def parse_approval_path(path: str) -> GateId | None:
    """The gate of an approval file path, or ``None`` if ``path`` is not one (never raises)."""
    parts = str(path).split("/")
    if len(parts) != 4 or parts[0] != "approvals" or not parts[3].endswith(".md"):
        return None
    try:
        return GateId(parts[1], parts[2], parts[3][: -len(".md")])
    except GateRefError:
        return None


# --- the template environment ---------------------------------------------------------


def _finalize(value: Any) -> str:
    if isinstance(value, MarkdownText):
        return value
    if value is None:
        return ""
    return escape_inline(value)


@lru_cache(maxsize=8)
def _environment(override: str | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader("metaflow_hitl.render", "templates")]
    if override:
        loaders.insert(0, jinja2.FileSystemLoader(override))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - finalize escapes every output for Markdown
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        md=escape_inline,
        md_lines=escape_lines,
        code=code_span,
        cell=lambda text: code_span(text, cell=True),
        codeblock=code_block,
        safe=MarkdownText,
    )
    return env


def template_environment(templates_dir: str | os.PathLike[str] | None = None) -> jinja2.Environment:
    """The jinja2 environment: ``templates_dir``, else ``$METAFLOW_HITL_TEMPLATES_DIR``, first.

    Filters: ``md`` (inline escape; applied to every output anyway), ``md_lines`` (keep
    line breaks; ``quote=true`` for a blockquote), ``code`` (inline code span), ``cell``
    (code inside a table cell), ``codeblock(lang)`` (fenced block), ``safe`` (trusted
    Markdown — only for text the template itself built).

    Raises
    ------
    ConfigError
        If the override folder does not exist (a typo would otherwise go unnoticed).
    """
    chosen = templates_dir if templates_dir is not None else os.environ.get(TEMPLATES_DIR_ENV)
    folder = os.fspath(chosen) if chosen else None
    if folder and not os.path.isdir(folder):
        source = "templates_dir" if templates_dir is not None else TEMPLATES_DIR_ENV
        raise ConfigError(
            f"the template override folder {folder!r} ({source}) is not a directory.",
            hint=f"Create it, fix the path, or unset {TEMPLATES_DIR_ENV}.",
        )
    return _environment(folder)


def _render(name: str, context: dict[str, Any], templates_dir: Any) -> str:
    env = template_environment(templates_dir)
    try:
        text = env.get_template(name).render(context)
    except jinja2.TemplateError as exc:
        where = getattr(exc, "filename", None) or name
        raise ConfigError(
            f"template {name!r} could not be rendered ({where}): {type(exc).__name__}: {exc}",
            hint=f"Fix or remove the override in {TEMPLATES_DIR_ENV} (or templates_dir=); "
            "the templates shipped with metaflow-hitl list the names they receive.",
        ) from exc
    return text.rstrip("\n") + "\n"


# --- contexts -------------------------------------------------------------------------


def _link_destination(url: str) -> MarkdownText | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return MarkdownText("<" + quote(url, safe="/:?#[]@!$&'()*+,;=%~-._") + ">")


def _links(request: Request, extra: Mapping[str, str] | None) -> list[dict[str, Any]]:
    merged = {**request.links, **(extra or {})}
    order = [k for k in _LINK_LABELS if k in merged] + sorted(set(merged) - set(_LINK_LABELS))
    return [
        {
            "label": _LINK_LABELS.get(key, key.replace("_", " ").capitalize()),
            "url": _link_destination(str(merged[key])),
            "text": str(merged[key]),
        }
        for key in order
        if merged[key]
    ]


def _schema_fields(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    rows = []
    for name, prop in props.items():
        prop = prop if isinstance(prop, Mapping) else {}
        kind = prop.get("type", "any")
        rows.append(
            {
                "name": name,
                "type": " or ".join(kind) if isinstance(kind, list) else str(kind),
                "required": name in required,
                "description": prop.get("description") or prop.get("title") or "",
                "default": json.dumps(prop["default"]) if "default" in prop else None,
                "choices": [json.dumps(v) for v in prop.get("enum") or []],
            }
        )
    return rows


def _commands(request: Request, flow_file_hint: str | None) -> dict[str, Any]:
    example = example_input(request.input_schema)
    example_json = json.dumps(example, ensure_ascii=False) if example else ""
    cli = ["metaflow-hitl"] + (["--store", request.store] if request.store else [])
    approve = [*cli, "approve", str(request.gate_id)]
    if example_json:
        approve += ["--input", example_json]
    commands = {
        "example_json": example_json,
        "approve_comment": "/approve" + (f" {example_json}" if example_json else ""),
        "approve_pairs": _pairs_command(example),
        "reject_comment": "/reject <reason>",
        "cli_approve": shlex.join(approve),
        "cli_reject": shlex.join([*cli, "reject", str(request.gate_id), "--reason", "<reason>"]),
        "flow_approve": None,
        "flow_reject": None,
    }
    if flow_file_hint:
        flow = ["python", flow_file_hint, "hitl"]
        short = request.gate_id.short
        flow_approve = [*flow, "approve", short] + (
            ["--input", example_json] if example_json else []
        )
        commands["flow_approve"] = shlex.join(flow_approve)
        commands["flow_reject"] = shlex.join([*flow, "reject", short, "--reason", "<reason>"])
    return commands


def _pairs_command(example: Mapping[str, Any]) -> str | None:
    """``/approve k=v ...`` for the example input (grammar v3), or ``None`` when a value has
    no bare form (a list or object holding white space)."""
    parts = []
    for key, value in example.items():
        if isinstance(value, str):
            bare = value and not any(c.isspace() or c == '"' for c in value)
            text = value if bare else json.dumps(value, ensure_ascii=False)
        else:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            if any(c.isspace() for c in text):
                return None
        parts.append(f"{key}={text}")
    return "/approve " + " ".join(parts) if parts else None


def _timeout_input_json(request: Request) -> str | None:
    if request.on_timeout != "approve":
        return None
    props = request.input_schema.get("properties") or {}
    defaults = {
        k: p["default"] for k, p in props.items() if isinstance(p, Mapping) and "default" in p
    }
    return json.dumps(defaults, ensure_ascii=False)


def _gate_context(
    request: Request,
    *,
    artifacts: Iterable[ArtifactSummary],
    links: Mapping[str, str] | None,
    flow_file_hint: str | None,
    mode: Literal["pr", "issue", "file"],
) -> dict[str, Any]:
    rows = list(artifacts)
    return {
        "mode": mode,
        "request": request,
        "gate_id": str(request.gate_id),
        "gate": request.gate_id,
        "message": request.message,
        "created_at": format_ts(request.created_at),
        "expires_at": format_ts(request.expires_at),
        "timeout": format_duration(request.timeout_seconds),
        "on_timeout_text": after_timeout(request),
        "timeout_input_json": _timeout_input_json(request),
        "fields": _schema_fields(request.input_schema),
        "schema_closed": request.input_schema.get("additionalProperties") is False,
        "artifacts": rows[:MAX_ARTIFACT_ROWS],
        "artifacts_hidden": max(0, len(rows) - MAX_ARTIFACT_ROWS),
        "links": _links(request, links),
        "commands": _commands(request, flow_file_hint),
        "approval_path": approval_path(request.gate_id),
        "has_teams": any("/" in login for login in request.approvers),
        # a plain git review repo (or none) has no pull request to review or comment on
        "cli_only": (request.review or {}).get("backend") in ("git", "none"),
        "content": _content(request),
        "supersedes": _supersedes(request),
        # a GitHub page whose store only the run's machine sees: the Action cannot decide it
        "store_unreachable": (request.review or {}).get("backend") == "github"
        and "://" not in (request.store or ""),
    }


def _content(request: Request) -> dict[str, Any] | None:
    """The request's content digest, compactly: digest, artifact names, code."""
    from metaflow_hitl.content import Content

    content = Content.from_dict(request.content)
    if content is None:
        return None
    names = sorted(content.artifacts)
    shown = ", ".join(names[:MAX_ARTIFACT_ROWS]) + (
        " ..." if len(names) > MAX_ARTIFACT_ROWS else ""
    )
    return {
        "digest": content.short(),
        "count": len(names),
        "names": shown or "none",
        "code": content.code[:30],
    }


def _supersedes(request: Request) -> dict[str, str] | None:
    """The earlier gate this one asks again for (other content), if any."""
    origin = request.origin or {}
    if not origin.get("supersedes"):
        return None
    return {
        "gate_id": str(origin["supersedes"]),
        "outcome": str(origin.get("supersedes_outcome") or "pending"),
        "changed": str(origin.get("changed") or "unknown"),
    }


# --- render functions -----------------------------------------------------------------


def _cut(text: str | None, keep: int | None, where: str) -> str | None:
    """``text`` cut to ``keep`` characters, saying how much was left out and where it is."""
    if text is None or keep is None or len(text) <= keep:
        return text
    return f"{text[:keep]}\n\n[{len(text) - keep} more characters are not shown here: {where}]"


def _fitted(render: Any, what: str) -> str:
    """The first rendering, from least to most shortened, that GitHub accepts."""
    for keep, rows in _SHRINK:
        text = render(keep, rows)
        if len(text) <= GITHUB_BODY_LIMIT:
            return str(text)
    raise ConfigError(
        f"the {what} is over GitHub's {GITHUB_BODY_LIMIT}-character limit even with the "
        "message, reasons and artifacts cut short.",
        hint=f"Shorten the template override ({TEMPLATES_DIR_ENV} or templates_dir=).",
    )


def _render_gate(
    request: Request,
    template: str,
    mode: Literal["pr", "issue", "file"],
    artifacts: Iterable[ArtifactSummary],
    links: Mapping[str, str] | None,
    flow_file_hint: str | None,
    templates_dir: str | os.PathLike[str] | None,
) -> str:
    """Render a gate document and put the marker first (outside any template override).

    Pull request and issue bodies are fitted to :data:`GITHUB_BODY_LIMIT`; the approval file
    (a file in git) always holds the full message.
    """
    rows = list(artifacts)
    ctx = _gate_context(
        request, artifacts=rows, links=links, flow_file_hint=flow_file_hint, mode=mode
    )
    marker = render_marker(request) + "\n"
    if mode == "file":
        return marker + _render(template, ctx, templates_dir)
    where = f"the approval file {approval_path(request.gate_id)} has them"

    def render(keep: int | None, max_rows: int) -> str:
        shown = min(max_rows, MAX_ARTIFACT_ROWS)
        local = {
            **ctx,
            "message": _cut(request.message, keep, where),
            "artifacts": rows[:shown],
            "artifacts_hidden": max(0, len(rows) - shown),
        }
        return marker + _render(template, local, templates_dir)

    return _fitted(render, f"{mode} body of gate {request.gate_id}")


def render_approval_file(
    request: Request,
    *,
    artifacts: Iterable[ArtifactSummary] = (),
    links: Mapping[str, str] | None = None,
    flow_file_hint: str | None = None,
    templates_dir: str | os.PathLike[str] | None = None,
) -> str:
    """The approval file committed to the review repo at :func:`approval_path`.

    Parameters
    ----------
    request
        The stored request.
    artifacts
        Summaries of the gated step's input artifacts (:func:`summarize_artifacts`).
    links
        Extra links by key (``metaflow_ui``, ``argo_ui``, ``code_package`` or any other),
        merged over ``request.links``. Only ``http(s)`` URLs become links; others are shown
        as text.
    flow_file_hint
        The flow file as reviewers would run it (``flows/train.py``), to show the flow's own
        ``hitl`` commands; ``None`` to show only the ``metaflow-hitl`` commands.
    templates_dir
        A folder of template overrides (default: ``$METAFLOW_HITL_TEMPLATES_DIR``).

    Returns
    -------
    str
        Markdown starting with the gate marker, ending with one newline.

    Raises
    ------
    ConfigError
        If a template fails (e.g. an override names a variable that does not exist).
    """
    return _render_gate(
        request, "approval.md.j2", "file", artifacts, links, flow_file_hint, templates_dir
    )


def render_pr_body(
    request: Request,
    *,
    artifacts: Iterable[ArtifactSummary] = (),
    links: Mapping[str, str] | None = None,
    flow_file_hint: str | None = None,
    templates_dir: str | os.PathLike[str] | None = None,
) -> str:
    """The body of the gate's pull request (``pr_body.md.j2``); see :func:`render_approval_file`."""
    return _render_gate(
        request, "pr_body.md.j2", "pr", artifacts, links, flow_file_hint, templates_dir
    )


def render_issue_body(
    request: Request,
    *,
    artifacts: Iterable[ArtifactSummary] = (),
    links: Mapping[str, str] | None = None,
    flow_file_hint: str | None = None,
    templates_dir: str | os.PathLike[str] | None = None,
) -> str:
    """The body of the gate's issue (``issue_body.md.j2``); see :func:`render_approval_file`."""
    return _render_gate(
        request, "issue_body.md.j2", "issue", artifacts, links, flow_file_hint, templates_dir
    )


def render_pr_title(request: Request, *, max_chars: int = 120) -> str:
    """A plain-text title for the PR or issue: ``Approve Flow/run/step: <message>``.

    Whitespace is collapsed, ``@`` is followed by a zero-width joiner (no mentions), and the
    title is cut to ``max_chars`` with ``…``.
    """
    first = " ".join(request.message.split()).replace("@", "@\u200d")
    title = f"Approve {request.gate_id}: {first}" if first else f"Approve {request.gate_id}"
    return title if len(title) <= max_chars else title[: max_chars - 1] + "…"


def _check_pair(request: Request, decision: Decision) -> None:
    if decision.gate_id != request.gate_id:
        raise ValueError(f"decision for {decision.gate_id} rendered with request {request.gate_id}")


def render_decision_record(request: Request, decision: Decision) -> str:
    """The decision file committed at :func:`decision_path`: the store's JSON, byte for byte.

    Raises
    ------
    ValueError
        If ``decision`` is for another gate than ``request`` (a programming error).
    """
    _check_pair(request, decision)
    return encode_record(decision).decode("utf-8")


def render_reply(
    request: Request,
    result: Decision | DecisionRefused | str,
    *,
    hint: str | None = None,
    templates_dir: str | os.PathLike[str] | None = None,
    show_fields: bool | None = None,
) -> str:
    """The bot's reply comment (``reply.md.j2``), starting with its reply marker.

    The reply fits :data:`GITHUB_BODY_LIMIT`: a long reason, input or refusal is cut, and the
    reply says so and where to read the rest.

    Parameters
    ----------
    request
        The stored request.
    result
        The decision now in force, or why a command was refused (a
        :class:`~metaflow_hitl.errors.DecisionRefused` or its text).
    hint
        How to change the outcome (default: the refusal's own hint).
    templates_dir
        A folder of template overrides.
    show_fields
        List the gate's input fields and an ``/approve`` example (default: when ``result``
        is an :class:`~metaflow_hitl.errors.InvalidInput`).
    """
    decision = result if isinstance(result, Decision) else None
    refusal = None
    # A reviewer on GitHub cannot run the CLI: an input refusal shows the schema's fields.
    if show_fields is None:
        show_fields = isinstance(result, InvalidInput)
    if isinstance(result, DecisionRefused):
        refusal, hint = result.message, hint if hint is not None else result.hint
    elif isinstance(result, str):
        refusal = result
    if decision is not None:
        _check_pair(request, decision)
    input_json = (
        json.dumps(decision.input, indent=2, ensure_ascii=False)
        if decision and decision.input
        else None
    )
    where = f"see them with: metaflow-hitl show {request.gate_id}"
    marker = render_reply_marker(request.gate_id) + "\n"

    def render(keep: int | None, _rows: int) -> str:
        shown = decision
        if decision is not None and keep is not None and decision.reason:
            shown = replace(decision, reason=_cut(decision.reason, keep, where))
        ctx = {
            "request": request,
            "gate_id": str(request.gate_id),
            "decision": shown,
            "summary": replace(decision, reason=None).summary() if decision else None,
            "evidence": {
                "url": _link_destination(decision.evidence_url),
                "text": decision.evidence_url,
            }
            if decision and decision.evidence_url
            else None,
            "input_json": _cut(input_json, keep, where),
            "refusal": _cut(refusal, keep, where),
            "hint": _cut(hint, keep, where),
            "commands": _commands(request, None),
            "show_fields": show_fields,
            "fields": _schema_fields(request.input_schema),
            "schema_closed": request.input_schema.get("additionalProperties") is False,
        }
        return marker + _render("reply.md.j2", ctx, templates_dir)

    return _fitted(render, f"reply on gate {request.gate_id}")


def render_reminder_comment(
    request: Request,
    reminder: Reminder,
    *,
    templates_dir: str | os.PathLike[str] | None = None,
) -> str:
    """A reminder comment on the gate's pull request or issue (``reminder.md.j2``).

    It starts with the bot's reply marker (so the Action never reads it as a command) and ends
    with :func:`~metaflow_hitl.markers.reminder_tag`. It mentions the approvers and, from the
    third reminder on, the ``escalate_to`` entries; the gate's message is not repeated (it is
    on the page).
    """
    from metaflow_hitl.reminders import mentions

    context = {
        "request": request,
        "gate_id": str(request.gate_id),
        "number": reminder.number,
        "waited": format_duration((reminder.due_at - request.created_at).total_seconds()),
        "every": format_duration(request.remind_every_seconds or 0),
        "expires": format_ts(request.expires_at),
        "then": after_timeout(request),
        "mentions": mentions(request.approvers),
        "escalated": mentions(reminder.escalated_to),
    }
    body = _render("reminder.md.j2", context, templates_dir)
    return (
        f"{render_reply_marker(request.gate_id)}\n{body}\n"
        f"{reminder_tag(request.gate_id, reminder.number)}\n"
    )


#: The event key of the one "run ended" comment a gate's page gets (its hidden tag).
RUN_ENDED_EVENT = "run-ended"


def render_run_ended_comment(
    request: Request,
    decision: Decision,
    why: str,
    *,
    templates_dir: str | os.PathLike[str] | None = None,
) -> str:
    """The comment telling a decided gate's page that its run ended before it was resumed
    (``run_ended.md.j2``). It starts with the reply tag of the ``run-ended`` event
    (:func:`~metaflow_hitl.markers.reply_event_tag`), so the Action never reads it as a
    command and it is posted once per gate."""
    context = {
        "request": request,
        "gate_id": str(request.gate_id),
        "summary": decision.summary(),
        "why": why,
    }
    body = _render("run_ended.md.j2", context, templates_dir)
    return f"{reply_event_tag(request.gate_id, RUN_ENDED_EVENT)}\n{body}"
