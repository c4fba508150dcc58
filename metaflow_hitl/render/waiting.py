"""What a waiting task prints: where the gate is and exactly how to decide it."""

from __future__ import annotations

import json
import os
import shlex
import time

from metaflow_hitl.input_schema import example_input
from metaflow_hitl.records import Decision, Request
from metaflow_hitl.render.phrases import after_timeout
from metaflow_hitl.settle import Settled
from metaflow_hitl.timestamps import format_ts

__all__ = [
    "approve_command",
    "print_decided",
    "print_rejoined",
    "print_unsettled",
    "print_waiting",
    "script_path",
]


#: Pause between lines of a notice. Metaflow's runtime reads one line of a task's output per
#: poll event; lines written in one burst would sit in its buffer until the task writes again
#: (for a waiting gate: until it is decided). Separate writes arrive as separate events.
LINE_GAP_SECONDS = 0.03


def _say(text: str) -> None:
    print(text, flush=True)
    time.sleep(LINE_GAP_SECONDS)


def script_path(flow_file: str) -> str:
    """The flow file as the user can type it: relative below the cwd, else absolute."""
    if not os.path.isabs(flow_file):
        return flow_file
    relative = os.path.relpath(flow_file)
    return flow_file if relative.startswith("..") else relative


def _top_options(request: Request) -> list[str]:
    """Options the approver needs to reach the gate's store (S3 for runs on Argo)."""
    return ["--datastore=s3"] if request.store.startswith("s3://") else []


def approve_command(request: Request, flow_file: str) -> str:
    """The exact CLI command that approves ``request`` (with example input if needed)."""
    script = script_path(flow_file)
    parts = ["python", script, *_top_options(request), "hitl", "approve", request.gate_id.short]
    example = example_input(request.input_schema)
    if example:
        parts += ["--input", json.dumps(example)]
    return " ".join(shlex.quote(p) for p in parts)


def print_waiting(
    request: Request, *, flow_file: str, review: dict[str, str | None] | None = None
) -> None:
    """Announce a newly opened gate, where to review it and how to decide it."""
    script = script_path(flow_file)
    who = ", ".join(request.approvers) or "anyone but the person who started the run"
    if request.allow_self_approval and not request.approvers:
        who = "anyone"
    _say(f"[@hitl] Gate {request.gate_id} is waiting for approval.")
    for line in request.message.splitlines() or [""]:
        _say(f"[@hitl]   {line}")
    _say(
        f"[@hitl] Expires {format_ts(request.expires_at)}; if nobody decides by then, "
        f"{after_timeout(request)}."
    )
    _say(f"[@hitl] Approvers: {who}; {request.min_approvals} approval(s) needed.")
    if review and review.get("url"):
        _say(f"[@hitl] Review: {review['url']}")
    elif review and review.get("branch"):
        _say(
            f"[@hitl] Review: {review.get('path')} on branch {review.get('branch')} of "
            f"{review.get('location')}"
        )
    _say(f"[@hitl] Approve: {approve_command(request, flow_file)}")
    reject = ["python", script, *_top_options(request), "hitl", "reject"]
    reject += [request.gate_id.short, "--reason", "why"]
    _say(f"[@hitl] Reject:  {' '.join(shlex.quote(p) for p in reject)}")


def print_rejoined(request: Request, *, run_id: str, retry_count: int) -> None:
    """A retried or resumed task found its gate open: wait again, notify no one."""
    if request.gate_id.run_id != str(run_id):
        why = f"this run resumes run {request.gate_id.run_id} and waits on its gate"
    else:
        why = f"attempt {retry_count} waits on the gate opened by an earlier attempt"
    _say(f"[@hitl] Gate {request.gate_id} is still waiting; {why}. Nobody was notified again.")


def print_decided(decision: Decision) -> None:
    """Report the decision the task proceeds (or stops) with."""
    _say(f"[@hitl] Gate {decision.gate_id}: {decision.summary()}.")


def print_unsettled(settled: Settled) -> None:
    """Warn that a decision this task recorded was not published or resumed (it still holds)."""
    if settled.complete:
        return
    exc = settled.error()
    _say(f"[@hitl] Warning: {exc.message}")
    _say(f"[@hitl] {exc.hint}")
