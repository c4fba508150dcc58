"""``metaflow-hitl handle-event``: decide a gate from one GitHub event (what the Action runs).

Settings come from the environment, which the Action's ``env:`` maps its inputs to:

==============================  ==========================================================
``GITHUB_EVENT_NAME``           the event (``--event-name``)
``GITHUB_EVENT_PATH``           the payload file (``--event-path``)
``METAFLOW_HITL_STORE``         the approval store (or ``metaflow-hitl --store PATH``)
``METAFLOW_HITL_GITHUB_TOKEN``  the token (else ``GITHUB_TOKEN``); never printed
``METAFLOW_HITL_GITHUB_API_URL`` the REST API root (else ``GITHUB_API_URL``)
``METAFLOW_HITL_REQUIRE_MERGE`` ``true``: approvals on a pull request count only at its merge
``METAFLOW_HITL_ALLOW_EDITS``   ``true``: edited comments are read as commands
``GITHUB_OUTPUT``               outputs ``gate-id``, ``decision``, ``ignored-reason``
==============================  ==========================================================

Exit 0 when the event decided a gate, recorded a vote or was deliberately ignored (the
reason is printed); exit 1 when it could not be recorded (store, GitHub or settings error).

What it prints and outputs can hold text a commenter chose (a rejection reason). The Actions
runner reads a line starting with ``::`` (after blanks) as a workflow command, and ``##[``
anywhere in a line as a legacy one, so both are broken with a zero-width space first
(:func:`inert_for_runner`): a reason cannot set outputs, mask text or stop commands.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import replace
from typing import Any

from metaflow_hitl.cli.group import fail
from metaflow_hitl.errors import ConfigError, HitlError
from metaflow_hitl.plugin.metaflow_internals import click

__all__ = ["handle_event_command", "inert_for_runner", "read_bool_env", "write_outputs"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def read_bool_env(name: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off; unset is false); anything else refused."""
    text = os.environ.get(name, "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name}={text!r} is not true or false.", hint=f"Set {name}=true or false.")


_RUNNER_COMMAND = re.compile(r"(?m)^(\s*):(?=:)")


def inert_for_runner(text: str) -> str:
    """``text`` with every GitHub Actions workflow command made plain text (see module docs)."""
    return _RUNNER_COMMAND.sub("\\1:\u200b", text).replace("##[", "##\u200b[")


def write_outputs(path: str | None, outputs: dict[str, str]) -> None:
    """Append outputs to ``$GITHUB_OUTPUT`` in the ``name<<delimiter`` form, with a random
    delimiter that cannot occur in a value."""
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        for name, value in outputs.items():
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            while delimiter in value:  # pragma: no cover - astronomically unlikely
                delimiter = f"ghadelimiter_{uuid.uuid4()}"
            fh.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def _load(event_name: str | None, event_path: str | None) -> tuple[str, Any]:
    name = event_name or os.environ.get("GITHUB_EVENT_NAME", "")
    path = event_path or os.environ.get("GITHUB_EVENT_PATH", "")
    if not name or not path:
        raise ConfigError(
            "no event: set GITHUB_EVENT_NAME and GITHUB_EVENT_PATH, or pass --event-name and "
            "--event-path.",
            hint="metaflow-hitl handle-event --event-name issue_comment --event-path event.json",
        )
    try:
        with open(path, encoding="utf-8") as fh:
            return name, json.load(fh)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the event payload {path}: {exc}") from None


def _handle_workflow_run(obj: Any, payload: Any, settings: Any) -> tuple[Any, Any]:
    """Replay the reviews/merge a ``workflow_run`` hand-off stands for (see workflow_run.py)."""
    from metaflow_hitl.argo.settings import RuntimeResumer
    from metaflow_hitl.github.events import normalize_event
    from metaflow_hitl.github.handler import handle_event
    from metaflow_hitl.github.review_backend import GitHubReviewBackend
    from metaflow_hitl.github.workflow_run import events_from_workflow_run, repo_of

    marker = normalize_event("workflow_run", payload)  # an "ignored" event to report with
    repo = repo_of(payload) if isinstance(payload, dict) else ""
    if not repo:
        return marker, None
    github = GitHubReviewBackend(repo)
    handoff = events_from_workflow_run(payload, github)
    if handoff.ignored is not None:
        return replace(marker, ignored=handoff.ignored), None
    outcome = None
    for name, replayed in handoff.events:
        event = normalize_event(name, replayed)
        if event.ignored is not None:
            marker = event
            continue
        outcome = handle_event(
            event, store=obj.store, github=github, resumer=RuntimeResumer(), settings=settings
        )
        marker = event
    return marker, outcome


@click.command("handle-event")
@click.option("--event-name", default=None, help="The event (default: $GITHUB_EVENT_NAME).")
@click.option(
    "--event-path", default=None, help="The JSON payload file (default: $GITHUB_EVENT_PATH)."
)
@click.pass_obj
def handle_event_command(obj: Any, event_name: str | None, event_path: str | None) -> None:
    """Decide a gate from one GitHub event (pull_request_review, pull_request, issue_comment,
    issues, or the workflow_run hand-off of the example review workflows)."""
    from metaflow_hitl.argo.settings import RuntimeResumer
    from metaflow_hitl.github.events import normalize_event
    from metaflow_hitl.github.handler import HandlerSettings, handle_event

    try:
        name, payload = _load(event_name, event_path)
        settings = HandlerSettings(
            require_merge=read_bool_env("METAFLOW_HITL_REQUIRE_MERGE"),
            allow_edits=read_bool_env("METAFLOW_HITL_ALLOW_EDITS"),
        )
        outcome = None
        if name == "workflow_run":
            event, outcome = _handle_workflow_run(obj, payload, settings)
        else:
            event = normalize_event(name, payload)
        if event.ignored is None and outcome is None:
            from metaflow_hitl.github.review_backend import GitHubReviewBackend

            github = GitHubReviewBackend(event.repo)
            outcome = handle_event(
                event, store=obj.store, github=github, resumer=RuntimeResumer(), settings=settings
            )
    except HitlError as exc:
        fail(exc, exit_code=1)  # the Action's contract: 0 handled or ignored, 1 not recorded
    if outcome is None:
        gate_id, decision, ignored = "", "", event.ignored or ""
        click.echo(inert_for_runner(f"ignored: {ignored}"))
    else:
        gate_id, decision = outcome.gate_id or "", outcome.decision or ""
        ignored = outcome.ignored_reason or ""
        click.echo(inert_for_runner(outcome.message))
    write_outputs(
        os.environ.get("GITHUB_OUTPUT"),
        {"gate-id": gate_id, "decision": decision, "ignored-reason": inert_for_runner(ignored)},
    )
