"""The ``hitl`` Metaflow card: a gated step's request and decision, next to the run.

``@card(type="hitl")`` on a ``@hitl`` step renders, from the task's own artifacts
(``hitl_request``, ``hitl_decision``, ``hitl_input``; no store access), what was asked, the
outcome, who decided through which channel and when, the reason and input, the approvers and
expiry, and links to the review (pull request or issue), the decision's evidence, the Argo UI
and the Metaflow UI. Metaflow card API: https://docs.metaflow.org/api/cards

Every value is escaped (jinja2 autoescape) and only ``http(s)`` URLs become links; the page
carries a Content-Security-Policy that allows no script at all. A task without the artifacts
(no ``@hitl`` on the step, or the gate failed before deciding) gets a card saying so.

Metaflow renders ``@card`` only for tasks that succeed. A rejected gate fails its task
(``on_reject="fail"``), so its card is made afterwards with ``python flow.py card create
RUN/STEP/TASK --type hitl`` (the artifacts are saved for failed tasks too), or the gate uses
``on_reject="continue"``; see docs/card.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from metaflow_hitl.content import Content
from metaflow_hitl.trust import identity_note

__all__ = ["card_context", "render_card_html", "render_task"]

#: The template under ``metaflow_hitl/render/templates``.
TEMPLATE = "card.html.j2"
#: Characters of the input JSON shown before it is cut.
INPUT_PREVIEW_CHARS = 20_000

_VERDICTS = {
    "approved": ("Approved", "approved"),
    "rejected": ("Rejected", "rejected"),
}
_LINK_LABELS = {
    "review": "Review (pull request / issue)",
    "evidence": "Decision evidence",
    "argo_ui": "Argo Workflows UI",
    "metaflow_ui": "Metaflow UI",
}


def render_task(task: Any, options: Mapping[str, Any] | None = None) -> str:
    """The card's HTML for ``task`` (a :class:`metaflow.Task`).

    The card type itself, ``HitlCard``, is the Metaflow glue in
    ``metaflow_extensions/hitl/plugins/hitl_card.py``; it calls this.

    Parameters
    ----------
    task
        The task; its ``hitl_request`` and ``hitl_decision`` artifacts are read.
    options
        The card's options: none are defined; unknown ones are listed on the card.
    """
    request, request_problem = _artifact(task, "hitl_request")
    decision, decision_problem = _artifact(task, "hitl_decision")
    problems = [p for p in (request_problem, decision_problem) if p]
    if options:
        problems.append("The hitl card takes no options; ignored: " + ", ".join(sorted(options)))
    links, link_problems = _environment_links(task, request)
    return render_card_html(
        request,
        decision,
        pathspec=str(getattr(task, "pathspec", "")),
        links=links,
        problems=problems + link_problems,
    )


def _artifact(task: Any, name: str) -> tuple[Any, str | None]:
    try:
        if name not in task:
            return None, None
        return task[name].data, None
    except Exception as exc:  # an unreadable artifact is reported on the card
        return None, f"The {name} artifact could not be read: {type(exc).__name__}: {exc}"


def _environment_links(task: Any, request: Any) -> tuple[dict[str, str], list[str]]:
    """The Argo UI and Metaflow UI links the settings of this process allow."""
    links: dict[str, str] = {}
    problems: list[str] = []
    if isinstance(request, Mapping):
        from metaflow_hitl.argo.settings import argo_ui_link
        from metaflow_hitl.errors import ConfigError
        from metaflow_hitl.records import Request

        try:
            argo = argo_ui_link(Request.from_dict(request))
        except ConfigError as exc:
            problems.append(f"No Argo UI link: {exc}")
        except Exception as exc:  # a request that does not parse still gets its card
            problems.append(f"No Argo UI link: hitl_request is not a request record ({exc})")
        else:
            if argo:
                links["argo_ui"] = argo
    from metaflow.metaflow_config import UI_URL

    run = "/".join(str(getattr(task, "pathspec", "")).split("/")[:2])
    if UI_URL and run.count("/") == 1:
        # The run page, as Metaflow itself prints it: {UI_URL}/{flow}/{run_id}.
        links["metaflow_ui"] = f"{UI_URL.rstrip('/')}/{run}"
    return links, problems


# ---------------------------------------------------------------------------------------
# Rendering (no Metaflow needed: the tests call these directly too)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _href(value: Any) -> str | None:
    """``value`` if it is an http(s) URL without whitespace or control characters."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    lower = url.lower()
    if not (lower.startswith("https://") or lower.startswith("http://")) or len(url) < 9:
        return None
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    return url


def _link(label: str, value: Any) -> dict[str, Any]:
    return {"label": label, "href": _href(value), "text": _text(value)}


def _get(record: Any, key: str, default: Any = None) -> Any:
    return record.get(key, default) if isinstance(record, Mapping) else default


def _verdict(decision: Any) -> tuple[str, str]:
    outcome = _get(decision, "outcome")
    if outcome == "timed_out":
        if _get(decision, "proceed"):
            return "Timed out: approved automatically", "approved"
        return "Timed out: rejected", "rejected"
    if outcome in _VERDICTS:
        return _VERDICTS[outcome]
    if decision is None:
        return "No decision recorded", "pending"
    return f"Unknown outcome {_text(outcome)!r}", "pending"


def _what_happened(request: Any, decision: Any) -> str:
    if not isinstance(decision, Mapping):
        return ""
    if decision.get("proceed"):
        return "The step's code ran after this decision."
    if _get(request, "on_reject") == "continue":
        return 'The step\'s code ran anyway (on_reject="continue") and saw this decision.'
    return "The step's code did not run: the task failed at the gate."


def _deciders(decision: Any) -> list[dict[str, Any]]:
    rows = []
    for actor in _get(decision, "deciders") or []:
        if not isinstance(actor, Mapping):
            continue
        rows.append(
            {
                "login": _text(actor.get("login")),
                "channel": _text(actor.get("channel")),
                "at": _text(actor.get("at")),
                "source": identity_note(actor.get("channel"), actor.get("source")),
                "evidence": _link("evidence", actor.get("evidence_url"))
                if actor.get("evidence_url")
                else None,
            }
        )
    return rows


def _input_json(decision: Any) -> str | None:
    value = _get(decision, "input")
    if not value:
        return None
    try:
        text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > INPUT_PREVIEW_CHARS:
        text = text[:INPUT_PREVIEW_CHARS] + f"\n… ({len(text) - INPUT_PREVIEW_CHARS} more)"
    return text


def _content_row(content: Any) -> str:
    """The content digest and the artifacts it covers, compactly."""
    parsed = Content.from_dict(content) if isinstance(content, Mapping) else None
    if parsed is None:
        return ""
    names = sorted(parsed.artifacts)
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return f"{parsed.short()} over {shown or 'no artifacts'}, the code and the message"


def _request_rows(request: Any) -> list[tuple[str, str]]:
    if not isinstance(request, Mapping):
        return []
    approvers = request.get("approvers") or []
    needed = request.get("min_approvals")
    rows = [
        (
            "Approvers",
            ", ".join(_text(a) for a in approvers) if approvers else "anyone (no list given)",
        ),
        ("Approvals needed", _text(needed)),
        ("Self-approval", "allowed" if request.get("allow_self_approval") else "not allowed"),
        ("Started by", _text(request.get("started_by"))),
        ("Opened at", _text(request.get("created_at"))),
        ("Expires at", _text(request.get("expires_at"))),
        ("On timeout", _text(request.get("on_timeout"))),
        ("On reject", _text(request.get("on_reject"))),
        ("Runtime", _text(request.get("runtime"))),
        ("Trusted channels", ", ".join(map(_text, request.get("trusted_channels") or []))),
        ("Content", _content_row(request.get("content"))),
        ("Asked again for", _text((request.get("origin") or {}).get("supersedes") or "")),
    ]
    review = request.get("review") or {}
    if isinstance(review, Mapping) and review.get("backend") not in (None, "none"):
        where = review.get("repo") or review.get("location")
        rows.append(("Review repo", f"{_text(review.get('backend'))}: {_text(where)}"))
        for key in ("branch", "path", "commit"):
            if review.get(key):
                rows.append((f"Review {key}", _text(review.get(key))))
    return [(k, v) for k, v in rows if v]


def _links(request: Any, decision: Any, extra: Mapping[str, str]) -> list[dict[str, Any]]:
    found: dict[str, Any] = {}
    review = _get(request, "review") or {}
    if isinstance(review, Mapping) and review.get("url"):
        found["review"] = review.get("url")
    if _get(decision, "evidence_url"):
        found["evidence"] = _get(decision, "evidence_url")
    request_links = _get(request, "links") or {}
    if isinstance(request_links, Mapping):
        for key, value in request_links.items():
            if value:
                found.setdefault(str(key), value)
    for key, value in extra.items():
        if value:
            found.setdefault(key, value)
    order = [k for k in _LINK_LABELS if k in found] + sorted(set(found) - set(_LINK_LABELS))
    return [
        _link(_LINK_LABELS.get(key, key.replace("_", " ").capitalize()), found[key])
        for key in order
    ]


def card_context(
    request: Any,
    decision: Any,
    *,
    pathspec: str = "",
    links: Mapping[str, str] | None = None,
    problems: list[str] | None = None,
) -> dict[str, Any]:
    """The names ``card.html.j2`` receives, built from the two artifacts' values.

    Parameters
    ----------
    request, decision
        The ``hitl_request`` and ``hitl_decision`` artifacts (``to_dict()`` of the records),
        or None when the task has none. Values of other types are reported, not rendered.
    pathspec
        The task, ``Flow/run/step/task``.
    links
        Extra links by key (``argo_ui``, ``metaflow_ui``); only http(s) URLs become links.
    problems
        Notes shown at the top of the card.
    """
    notes = list(problems or [])
    for name, value in (("hitl_request", request), ("hitl_decision", decision)):
        if value is not None and not isinstance(value, Mapping):
            notes.append(
                f"The {name} artifact is a {type(value).__name__}, not a record; was it "
                "overwritten by the step's code?"
            )
    if request is None and decision is None and not notes:
        notes.append(
            "This task has no hitl_request or hitl_decision artifact: the step has no @hitl, "
            "or its gate failed before a decision (see the task's logs)."
        )
    verdict, verdict_class = _verdict(decision if isinstance(decision, Mapping) else None)
    gate = _get(decision, "gate_id") or _get(request, "gate_id") or pathspec
    facts: list[tuple[str, str]] = []
    if isinstance(decision, Mapping):
        if decision.get("outcome") != "timed_out":
            facts.append(("Decided by", _text(decision.get("decided_by"))))
            facts.append(("Channel", _text(decision.get("channel"))))
        facts.append(("Decided at", _text(decision.get("decided_at"))))
        if decision.get("reason"):
            facts.append(("Reason", _text(decision.get("reason"))))
    return {
        "gate_id": _text(gate),
        "pathspec": pathspec,
        "message": _text(_get(request, "message")),
        "verdict": verdict,
        "verdict_class": verdict_class,
        "what_happened": _what_happened(request, decision),
        "facts": [(k, v) for k, v in facts if v],
        "deciders": _deciders(decision),
        "input_json": _input_json(decision),
        "request_rows": _request_rows(request),
        "links": _links(request, decision, links or {}),
        "problems": notes,
    }


def render_card_html(
    request: Any,
    decision: Any,
    *,
    pathspec: str = "",
    links: Mapping[str, str] | None = None,
    problems: list[str] | None = None,
) -> str:
    """Render the card's HTML; see :func:`card_context` for the parameters."""
    context = card_context(request, decision, pathspec=pathspec, links=links, problems=problems)
    return _template().render(context)


def _template() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("metaflow_hitl.render", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template(TEMPLATE)
