"""The ``hitl`` command group and what its commands share.

The commands live one module each: :mod:`~metaflow_hitl.cli.inbox` (``list``, ``show``),
:mod:`~metaflow_hitl.cli.decide` (``approve``, ``reject``), :mod:`~metaflow_hitl.cli.audit`
(``audit``, over a pure :func:`~metaflow_hitl.cli.audit.reconcile`),
:mod:`~metaflow_hitl.cli.sync` (``sync``, ``--watch``) and :mod:`~metaflow_hitl.cli.remind`.

One definition serves two front ends: ``python flow.py hitl ...`` (a Metaflow CLI plugin,
where gates can be named ``RUN/STEP``) and the ``metaflow-hitl`` console script (for
approvers without the flow file, pointed at a store). Both use Metaflow's vendored click,
as Metaflow's plugin loader requires.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from metaflow_hitl.errors import (
    ConfigError,
    GateNotFound,
    HitlError,
)
from metaflow_hitl.gate_id import GateId, parse_gate_ref
from metaflow_hitl.gates import GateStatus, gate_status
from metaflow_hitl.index.parallel import read_all
from metaflow_hitl.index.reader import StoredGate, read_gates
from metaflow_hitl.liveness import read_waiter
from metaflow_hitl.plugin.metaflow_internals import click
from metaflow_hitl.policy import check_decider, tally
from metaflow_hitl.ports import ApprovalStore, Resumer
from metaflow_hitl.records import Decision, Request
from metaflow_hitl.review.publish import announce_run_ended, publish_decision
from metaflow_hitl.settle import Settled, settle
from metaflow_hitl.timestamps import format_ts, utc_now
from metaflow_hitl.trust import identity_note

__all__ = [
    "CliContext",
    "build_hitl_group",
    "bulk",
    "color",
    "columns",
    "emit_json",
    "fail",
    "gate_statuses",
    "handled",
    "identity_of",
    "may_approve",
    "read_stored_gates",
    "resolve_gate",
    "settle_decision",
    "status_json",
    "store_decisions",
    "store_row",
    "warn_unsettled",
]


class CliContext:
    """What every command needs: the store and, inside a flow, which flow.

    The store is opened on first use, so ``--help`` and commands that fail earlier never need
    one (and a missing store is reported by the command, with its hint).
    """

    def __init__(
        self,
        store: ApprovalStore | Callable[[], ApprovalStore],
        flow: str | None = None,
        resumer: Resumer | None = None,
    ) -> None:
        self._store = store
        self.flow = flow
        self._resumer = resumer

    @property
    def resumer(self) -> Resumer:
        """Resumes decided Argo gates (settings from ``METAFLOW_HITL_ARGO_*``)."""
        if self._resumer is None:
            from metaflow_hitl.argo.settings import RuntimeResumer

            self._resumer = RuntimeResumer()
        return self._resumer

    @property
    def store(self) -> ApprovalStore:
        if callable(self._store) and not isinstance(self._store, ApprovalStore):
            self._store = self._store()
        return self._store  # type: ignore[return-value]


def columns() -> int | None:
    """The terminal's width for tables when stdout is a terminal (``$COLUMNS`` first, as
    :func:`shutil.get_terminal_size` reads it); ``None`` (no cutting) into a pipe or file,
    like ``gh``."""
    import shutil

    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def color() -> bool | None:
    """``False`` when ``$NO_COLOR`` is set (https://no-color.org); else click decides (colour
    on a terminal only)."""
    import os

    return False if os.environ.get("NO_COLOR") else None


def identity_of(decision: Decision) -> str:
    """``asserted, unverified (...)`` when any decider's identity is only asserted (the CLI),
    else how the first decider's is established."""
    notes = [identity_note(a.channel, a.source) for a in decision.deciders] or ["unknown"]
    return next((n for n in notes if n.startswith("asserted")), notes[0])


def store_row(d: Decision) -> dict[str, Any]:
    """An ``audit`` row from the store's decision record."""
    return {
        "gate_id": str(d.gate_id),
        "outcome": d.outcome,
        "proceed": d.proceed,
        "decided_by": d.decided_by,
        "deciders": [a.login for a in d.deciders],
        "channel": d.channel,
        "decided_at": format_ts(d.decided_at),
        "evidence": d.evidence_url,
        "input": d.input,
        "reason": d.reason,
        "source": "store",
        "identity": identity_of(d),
    }


def fail(error: HitlError, *, exit_code: int | None = None) -> NoReturn:
    """Print a refusal (headline, message, next command) to stderr and exit with the error
    family's status (:attr:`~metaflow_hitl.errors.HitlError.exit_code`), or ``exit_code``.

    Under ``--json`` the refusal is one JSON object on stderr too: ``{"error": {"type",
    "headline", "message", "hint", "exit_code"}}``.
    """
    code = error.exit_code if exit_code is None else exit_code
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.params.get("as_json"):
        error_json = {
            "type": type(error).__name__,
            "headline": error.headline,
            "message": error.message,
            "hint": error.hint,
            "exit_code": code,
        }
        click.echo(json.dumps({"error": error_json}, sort_keys=True), err=True)
        sys.exit(code)
    click.secho(f"Error ({error.headline}): {error.message}", fg="red", err=True, color=color())
    if error.hint:
        click.echo(error.hint, err=True)
    sys.exit(code)


def handled(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HitlError as exc:
            fail(exc)

    return wrapper


def emit_json(value: Any) -> None:
    """Indented for a terminal; compact into a pipe or file (Python's C encoder serves only
    compact JSON: 10,000 gates took 0.3 s indented)."""
    pretty = sys.stdout.isatty()
    click.echo(json.dumps(value, indent=2 if pretty else None, sort_keys=True))


def resolve_gate(ctx: CliContext, gate: str | None, latest: bool, *, pending: bool) -> GateId:
    if bool(gate) == bool(latest):
        raise ConfigError(
            "name exactly one gate: GATE (FLOW/RUN/STEP"
            + (" or RUN/STEP" if ctx.flow else "")
            + ") or --latest.",
            hint="List the gates with: hitl list",
        )
    if gate:
        return parse_gate_ref(gate, flow=ctx.flow)
    ids = list(ctx.store.list_gates(pending_only=pending, flow=ctx.flow))
    requests = [r for r in (ctx.store.get_request(g) for g in ids) if r is not None]
    if not requests:
        what = "pending gate" if pending else "gate"
        raise GateNotFound(
            f"no {what} in store {ctx.store.location}"
            + (f" for flow {ctx.flow}" if ctx.flow else ""),
            hint="List every gate with: hitl list --all",
        )
    return max(requests, key=lambda r: (r.created_at, str(r.gate_id))).gate_id


def status_json(status: GateStatus) -> dict[str, Any]:
    return {
        "gate_id": str(status.request.gate_id),
        "state": status.state,
        "proceed": status.decision.proceed if status.decision else None,
        "request": status.request.to_dict(),
        "decision": status.decision.to_dict() if status.decision else None,
        "votes": [v.to_dict() for v in status.votes],
        "approvals": len(status.tally.approvals),
        "needed": status.tally.needed,
        "waiter": status.waiter.to_dict() if status.waiter else None,
        "nobody_waiting": status.nobody_waiting,
    }


def gate_statuses(
    ctx: CliContext, *, pending_only: bool, run_id: str | None, use_index: bool = True
) -> list[GateStatus]:
    if pending_only:
        ids = [
            gate_id
            for gate_id in ctx.store.list_gates(pending_only=True, flow=ctx.flow)
            if not run_id or gate_id.run_id == run_id
        ]
        out = read_all(
            lambda gate_id: gate_status(ctx.store, gate_id), ids, parallel=ctx.store.is_remote
        )
    else:
        gates = [
            g
            for g in read_stored_gates(ctx, use_index=use_index)
            if not run_id or g.gate_id.run_id == run_id
        ]
        waiters = read_all(  # one read per pending local gate (decided ones have none)
            lambda g: read_waiter(ctx.store, g.request, g.decision),
            gates,
            parallel=ctx.store.is_remote,
        )
        now = utc_now()
        out = [
            GateStatus(
                request=g.request,
                decision=g.decision,
                votes=g.votes,
                tally=tally(g.request, g.votes),
                waiter=waiter,
                read_at=now,
            )
            for g, waiter in zip(gates, waiters, strict=True)
        ]
    order = {"pending": 0}
    out.sort(key=lambda s: (order.get(s.state, 1), -s.request.created_at.timestamp()))
    return out


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """Pause the cyclic garbage collector while a command builds many small objects.

    Reading 10,000 gates allocates a few million acyclic objects (parsed JSON, records); the
    collector's passes over them cost ~25 % of ``list --all`` and ``audit``. The command is
    short-lived and every object stays live until it prints, so nothing is collected later.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_stored_gates(
    ctx: CliContext, *, decided_only: bool = False, use_index: bool = True
) -> list[StoredGate]:
    """Every gate of the store (of ``ctx.flow``), decided ones from the index; index
    problems (they cost speed, never correctness) are warned about on stderr."""
    reading = read_gates(
        ctx.store,
        flow=ctx.flow,
        decided_only=decided_only,
        use_index=use_index,
        parallel=ctx.store.is_remote,
    )
    for warning in reading.warnings:
        click.secho(f"Warning: {warning}", fg="yellow", err=True, color=color())
    return reading.gates


def may_approve(request: Request, login: str) -> bool:
    """Whether ``login`` could approve: allowed by policy, or possibly through a team."""
    refusal = check_decider(request, login, "approve", teams=None)
    if refusal is None:
        return True
    return refusal.code == "team_unchecked"


def settle_decision(ctx: CliContext, request: Request, decision: Decision) -> Settled:
    """Publish and resume a decision (:func:`metaflow_hitl.settle.settle`): never raises. A
    run that ended is told to the gate's page (print :meth:`Settled.notice` to say so here)."""

    def publish(request: Request, decision: Decision) -> dict[str, str | None]:
        return publish_decision(request, decision, store=ctx.store)

    return settle(
        request, decision, publish=publish, resumer=ctx.resumer, announce=announce_run_ended
    )


def warn_unsettled(settled: Settled) -> None:
    """Report an incomplete settle on stderr (when another error is the command's outcome),
    and a run that ended (:meth:`Settled.notice`: not a failure)."""
    notice = settled.notice()
    if notice:
        click.echo(notice, err=True)
    if not settled.complete:
        exc = settled.error()
        click.secho(f"Warning: {exc.message}", fg="yellow", err=True, color=color())
        click.secho(str(exc.hint), fg="yellow", err=True, color=color())


def store_decisions(
    ctx: CliContext, *, use_index: bool = True
) -> list[tuple[StoredGate, Decision]]:
    """Every decided gate with its decision, in the order they were decided; the request
    (``gate.request``) is decoded only when used."""
    out = []
    for gate in read_stored_gates(ctx, decided_only=True, use_index=use_index):
        decision = gate.decision
        if decision is not None:
            out.append((gate, decision))
    out.sort(key=lambda pair: (pair[1].decided_at, str(pair[1].gate_id)))
    return out


def build_hitl_group(make_context: Callable[[Any], CliContext]) -> click.Group:
    """Build the ``hitl`` click group.

    Parameters
    ----------
    make_context
        Called with the parent click context's ``obj``; returns the :class:`CliContext`
        the subcommands receive.
    """

    @click.group(name="hitl", help="Human approval gates: list, show, approve, reject, audit.")
    @click.pass_context
    def hitl(click_ctx: Any) -> None:
        try:
            click_ctx.obj = make_context(click_ctx.obj)
        except HitlError as exc:
            fail(exc)

    # Imported here: each command module imports this one's helpers.
    from metaflow_hitl.cli.audit import audit_cmd
    from metaflow_hitl.cli.decide import approve_cmd, reject_cmd
    from metaflow_hitl.cli.inbox import list_cmd, show_cmd
    from metaflow_hitl.cli.remind import remind_command
    from metaflow_hitl.cli.sync import sync_cmd

    for command in (list_cmd, show_cmd, approve_cmd, reject_cmd, audit_cmd, sync_cmd):
        hitl.add_command(command)
    hitl.add_command(remind_command)
    return hitl
