"""``metaflow-hitl sync --watch``: the in-cluster resumer's loop.

When GitHub-hosted runners can reach S3 (through OIDC) but not the Argo Server, the Action
records decisions only, and this loop, running in the cluster (``deploy/argo/``), resumes
them. Each pass costs one listing of the store (:meth:`ApprovalStore.scan_gates`: record
names and tags, no record read) and reads only what changed:

* a gate whose ``decision.json`` tag is new since the last pass: its request and decision are
  read and settled (:func:`metaflow_hitl.settle.settle`, the one failure policy after a
  decision): its Argo node resumed (waiting a bounded time for the node, checking the
  workflow's UID) and, if its run ended before that, its page told so. Publishing is left to
  whoever recorded the decision (the Action, the CLI: each settles what it records, and
  ``sync GATE`` repairs); the loop may hold no GitHub token. A resume that failed is tried
  again next pass; one that came to an outcome (resumed, already resumed or expired, run
  ended) is not, and a failed page reply is reported once with its repair command;
* every ``probe_every`` seconds, each pending Argo gate opened within ``--since``: if its run
  ended (stopped, failed, deleted...), the gate is closed
  (:func:`metaflow_hitl.argo.run_end.close_if_run_ended`) and that decision, which this loop
  recorded, is settled like any other: published, so the page says the run ended.

Nothing here decides a gate for a person: the loop only carries recorded decisions to Argo.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from metaflow._vendor import click

from metaflow_hitl.argo.run_end import close_if_run_ended
from metaflow_hitl.errors import HitlError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.records import Decision, Request
from metaflow_hitl.settle import Settled, settle
from metaflow_hitl.timestamps import utc_now

__all__ = ["WatchState", "watch", "watch_pass"]

#: Seconds between looks at the runs of pending gates (one GET per pending Argo gate).
PROBE_EVERY_SECONDS = 60.0


@dataclass
class WatchState:
    """What the loop remembers between passes."""

    acted: dict[GateId, str] = field(default_factory=dict)  # gate -> decision tag handled
    requests: dict[GateId, Request] = field(default_factory=dict)  # immutable: cached
    last_probe: float = float("-inf")
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (gate, outcome) log


def _request(ctx: Any, state: WatchState, gate_id: GateId) -> Request | None:
    request = state.requests.get(gate_id)
    if request is None:
        request = ctx.store.get_request(gate_id)
        if request is not None:
            state.requests[gate_id] = request
    return request


def watch_pass(
    ctx: Any,
    state: WatchState,
    *,
    since_seconds: float,
    probe_every: float = PROBE_EVERY_SECONDS,
    monotonic: Callable[[], float] = time.monotonic,
    echo: Callable[[str], None] = click.echo,
) -> int:
    """One pass: resume newly decided Argo gates, close gates of ended runs. Returns how many
    problems it met (each echoed; tried again next pass)."""
    problems = 0
    now = utc_now()
    scan = ctx.store.scan_gates(flow=ctx.flow)
    pending: list[GateId] = []
    for gate_id, records in scan.items():
        tag = records.get("decision.json")
        if tag is None:
            pending.append(gate_id)
            continue
        if state.acted.get(gate_id) == tag:
            continue
        try:
            request = _request(ctx, state, gate_id)
            if request is None:  # pragma: no cover - records are never deleted
                continue
            if (now - request.created_at).total_seconds() > since_seconds:
                state.acted[gate_id] = tag
                continue
            decision = ctx.store.get_decision(gate_id)
            if decision is None:  # pragma: no cover - records are never deleted
                continue
        except HitlError as exc:
            problems += 1
            echo(f"Failed: {gate_id}: {exc.message}")
            continue
        if request.runtime != "argo-workflows":  # a local gate: its task reads the store
            state.acted[gate_id] = tag
            continue
        settled = _settle(request, decision, ctx, publish=False)
        if "resume" not in dict(settled.failures):  # an outcome: not tried again
            state.acted[gate_id] = tag
        problems += _report(state, settled, echo)
    if monotonic() - state.last_probe >= probe_every:
        state.last_probe = monotonic()
        problems += _close_ended(ctx, state, pending, since_seconds=since_seconds, echo=echo)
    return problems


def _close_ended(
    ctx: Any,
    state: WatchState,
    pending: list[GateId],
    *,
    since_seconds: float,
    echo: Callable[[str], None],
) -> int:
    problems = 0
    now = utc_now()
    for gate_id in pending:
        try:
            request = _request(ctx, state, gate_id)
            if request is None or request.runtime != "argo-workflows":
                continue
            if (now - request.created_at).total_seconds() > since_seconds:
                continue
            closed = close_if_run_ended(ctx.store, request, ctx.resumer)
        except HitlError as exc:
            problems += 1
            echo(f"Failed: {gate_id}: {exc.message}")
            continue
        if closed is None:
            continue
        problems += _report(state, _settle(request, closed, ctx, publish=True), echo)
    return problems


def _settle(request: Request, decision: Decision, ctx: Any, *, publish: bool) -> Settled:
    """:func:`settle` as the loop uses it: resume (a no-op for a run-ended decision), tell the
    page of a run that ended, and publish only the decisions this loop recorded."""
    from metaflow_hitl.review.publish import announce_run_ended, publish_decision

    def publish_here(request: Request, decision: Decision) -> dict[str, str | None]:
        return publish_decision(request, decision, store=ctx.store)

    return settle(
        request,
        decision,
        publish=publish_here if publish else None,
        resumer=ctx.resumer,
        announce=announce_run_ended,
    )


def _report(state: WatchState, settled: Settled, echo: Callable[[str], None]) -> int:
    """Log what settling came to (one line, and one per failure); returns the failures."""
    gate, decision = str(settled.request.gate_id), settled.decision
    if decision.run_ended is not None:
        outcome = "closed"
    elif settled.run_ended is not None:
        outcome = settled.run_ended.outcome
    elif settled.resumed:
        outcome = "resumed"
    elif "resume" in dict(settled.failures):
        outcome = "failed"
    else:
        outcome = "unchanged"  # resumed already, or expired: nothing to write
    state.outcomes.append((gate, outcome))
    echo(settled.notice() or f"{gate}: {outcome} ({decision.summary()})")
    if settled.failures:
        error = settled.error()
        echo(f"Failed: {error.message} {error.hint}")
    return len(settled.failures)


def watch(
    ctx: Any,
    *,
    interval: float,
    since_seconds: float,
    max_passes: int | None = None,
    probe_every: float = PROBE_EVERY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    echo: Callable[[str], None] = click.echo,
) -> WatchState:
    """Run :func:`watch_pass` every ``interval`` seconds (``max_passes`` times, or forever)."""
    state = WatchState()
    passes = 0
    echo(
        f"Watching {ctx.store.location} every {interval:g}s for decided Argo gates "
        f"(runs checked every {probe_every:g}s)."
    )
    while True:
        started = monotonic()
        try:
            watch_pass(
                ctx,
                state,
                since_seconds=since_seconds,
                probe_every=probe_every,
                monotonic=monotonic,
                echo=echo,
            )
        except HitlError as exc:  # the store itself failed: keep watching
            echo(f"Failed: {exc.message}")
        passes += 1
        if max_passes is not None and passes >= max_passes:
            return state
        sleep(max(0.0, interval - (monotonic() - started)))
