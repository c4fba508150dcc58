"""The ``hitl`` commands: list, show, approve, reject, audit.

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
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn

from metaflow_hitl.cli.identity import resolve_actor_login
from metaflow_hitl.errors import (
    ConfigError,
    GateNotFound,
    HitlError,
    NotAllowed,
    RunEnded,
    TooLate,
)
from metaflow_hitl.gate_id import GateId, parse_gate_ref
from metaflow_hitl.gates import GateStatus, decide, expire_gate, gate_status, require_request
from metaflow_hitl.index.parallel import read_all
from metaflow_hitl.index.reader import StoredGate, read_gates
from metaflow_hitl.input_schema import example_input, parse_input_json
from metaflow_hitl.plugin.metaflow_internals import click
from metaflow_hitl.policy import check_decider, tally
from metaflow_hitl.ports import ApprovalStore, Resumer
from metaflow_hitl.records import Actor, Decision, Request
from metaflow_hitl.render.tables import ago, render_table, state_text, truncate
from metaflow_hitl.review.config import backend_for_request, backend_for_review
from metaflow_hitl.review.publish import publish_decision
from metaflow_hitl.settle import Settled, settle
from metaflow_hitl.timestamps import format_ts, utc_now
from metaflow_hitl.trust import channel_refusal, identity_note

__all__ = ["CliContext", "build_hitl_group", "fail"]


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


def _columns() -> int | None:
    """The terminal's width for tables when stdout is a terminal (``$COLUMNS`` first, as
    :func:`shutil.get_terminal_size` reads it); ``None`` (no cutting) into a pipe or file,
    like ``gh``."""
    import shutil

    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def _color() -> bool | None:
    """``False`` when ``$NO_COLOR`` is set (https://no-color.org); else click decides (colour
    on a terminal only)."""
    import os

    return False if os.environ.get("NO_COLOR") else None


def _identity(decision: Decision) -> str:
    """``asserted, unverified (...)`` when any decider's identity is only asserted (the CLI),
    else how the first decider's is established."""
    notes = [identity_note(a.channel, a.source) for a in decision.deciders] or ["unknown"]
    return next((n for n in notes if n.startswith("asserted")), notes[0])


def _store_row(d: Decision) -> dict[str, Any]:
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
        "identity": _identity(d),
    }


def fail(error: HitlError) -> NoReturn:
    """Print a refusal (headline, message, next command) to stderr and exit 1.

    Under ``--json`` the refusal is one JSON object on stderr too: ``{"error": {"type",
    "headline", "message", "hint"}}``.
    """
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.params.get("as_json"):
        error_json = {
            "type": type(error).__name__,
            "headline": error.headline,
            "message": error.message,
            "hint": error.hint,
        }
        click.echo(json.dumps({"error": error_json}, sort_keys=True), err=True)
        sys.exit(1)
    click.secho(f"Error ({error.headline}): {error.message}", fg="red", err=True, color=_color())
    if error.hint:
        click.echo(error.hint, err=True)
    sys.exit(1)


def _handled(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HitlError as exc:
            fail(exc)

    return wrapper


def _emit_json(value: Any) -> None:
    """Indented for a terminal; compact into a pipe or file (Python's C encoder serves only
    compact JSON: 10,000 gates took 0.3 s indented)."""
    pretty = sys.stdout.isatty()
    click.echo(json.dumps(value, indent=2 if pretty else None, sort_keys=True))


def _resolve(ctx: CliContext, gate: str | None, latest: bool, *, pending: bool) -> GateId:
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


def _status_json(status: GateStatus) -> dict[str, Any]:
    return {
        "gate_id": str(status.request.gate_id),
        "state": status.state,
        "proceed": status.decision.proceed if status.decision else None,
        "request": status.request.to_dict(),
        "decision": status.decision.to_dict() if status.decision else None,
        "votes": [v.to_dict() for v in status.votes],
        "approvals": len(status.tally.approvals),
        "needed": status.tally.needed,
    }


def _gates(
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
        out = [
            GateStatus(
                request=g.request,
                decision=g.decision,
                votes=g.votes,
                tally=tally(g.request, g.votes),
            )
            for g in _read_gates(ctx, use_index=use_index)
            if not run_id or g.gate_id.run_id == run_id
        ]
    order = {"pending": 0}
    out.sort(key=lambda s: (order.get(s.state, 1), -s.request.created_at.timestamp()))
    return out


@contextlib.contextmanager
def _bulk() -> Iterator[None]:
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


def _read_gates(
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
        click.secho(f"Warning: {warning}", fg="yellow", err=True, color=_color())
    return reading.gates


def _may_approve(request: Request, login: str) -> bool:
    """Whether ``login`` could approve: allowed by policy, or possibly through a team."""
    refusal = check_decider(request, login, "approve", teams=None)
    if refusal is None:
        return True
    return refusal.code == "team_unchecked"


def _settle(ctx: CliContext, request: Request, decision: Decision) -> Settled:
    """Publish and resume a decision (:func:`metaflow_hitl.settle.settle`): never raises."""

    def publish(request: Request, decision: Decision) -> dict[str, str | None]:
        return publish_decision(request, decision, store=ctx.store)

    return settle(request, decision, publish=publish, resumer=ctx.resumer)


def _warn_unsettled(settled: Settled) -> None:
    """Report an incomplete settle on stderr (when another error is the command's outcome)."""
    if not settled.complete:
        exc = settled.error()
        click.secho(f"Warning: {exc.message}", fg="yellow", err=True, color=_color())
        click.secho(str(exc.hint), fg="yellow", err=True, color=_color())


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

    @hitl.command(
        name="list",
        help="The inbox: gates, pending first (only pending unless --all or --status).",
    )
    @click.option("--all", "show_all", is_flag=True, help="Include decided gates.")
    @click.option("--run-id", default=None, help="Only gates of this run.")
    @click.option("--flow", "flow_name", default=None, help="Only gates of this flow.")
    @click.option(
        "--status",
        type=click.Choice(["pending", "approved", "rejected", "timed_out", "run_ended"]),
        default=None,
        help="Only gates in this state.",
    )
    @click.option("--mine", is_flag=True, help="Only gates you may approve (your login: --as).")
    @click.option("--as", "login", default=None, help="Your login for --mine (default: git/OS).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    @click.option(
        "--no-index",
        "no_index",
        is_flag=True,
        help="Read and validate every record instead of the index of decided gates.",
    )
    @click.pass_obj
    @_handled
    @_bulk()
    def list_cmd(
        ctx: CliContext,
        show_all: bool,
        run_id: str | None,
        flow_name: str | None,
        status: str | None,
        mine: bool,
        login: str | None,
        as_json: bool,
        no_index: bool,
    ) -> None:
        if flow_name and ctx.flow and flow_name != ctx.flow:
            raise ConfigError(f"--flow {flow_name} names another flow than this one ({ctx.flow}).")
        scoped = CliContext(store=ctx.store, flow=flow_name or ctx.flow)
        pending_only = status == "pending" or (status is None and not show_all)
        statuses = _gates(scoped, pending_only=pending_only, run_id=run_id, use_index=not no_index)
        if status:
            statuses = [s for s in statuses if s.state == status]
        if mine:
            me, _ = resolve_actor_login(login)
            statuses = [s for s in statuses if _may_approve(s.request, me)]
        if as_json:
            _emit_json([_status_json(s) for s in statuses])
            return
        if not statuses:
            where = f" in {ctx.store.location}" + (
                f" for flow {scoped.flow}" if scoped.flow else ""
            )
            click.echo(f"No pending gates{where}." if not show_all else f"No gates{where}.")
            return
        now, width = utc_now(), _columns()
        rows = []
        for s in statuses:
            r = s.request
            rows.append(
                [
                    str(r.gate_id) if not ctx.flow else r.gate_id.short,
                    state_text(s.state, s.decision.proceed)
                    if s.decision
                    else f"pending {len(s.tally.approvals)}/{r.min_approvals}",
                    ago(r.created_at, now),
                    format_ts(r.expires_at)[:16] + "Z",
                    ", ".join(r.approvers) or "-",
                    r.message if width else truncate(r.message, 48),
                ]
            )
        headers = ["GATE", "STATE", "AGE", "EXPIRES", "APPROVERS", "MESSAGE"]
        click.echo(render_table(headers, rows, width=width))

    @hitl.command(name="show", help="Show one gate: its request, votes and decision.")
    @click.argument("gate", required=False)
    @click.option("--latest", is_flag=True, help="The most recently opened gate.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    @click.pass_obj
    @_handled
    def show_cmd(ctx: CliContext, gate: str | None, latest: bool, as_json: bool) -> None:
        status = gate_status(ctx.store, _resolve(ctx, gate, latest, pending=False))
        if as_json:
            _emit_json(_status_json(status))
            return
        r = status.request
        lines = [
            f"Gate:        {r.gate_id}",
            f"State:       {status.state}",
            f"Message:     {r.message}",
            f"Started by:  {r.started_by}",
            f"Created:     {format_ts(r.created_at)}",
            f"Expires:     {format_ts(r.expires_at)} (then {r.on_timeout})",
            f"Approvers:   {', '.join(r.approvers) or 'anyone'}"
            f"{'' if r.allow_self_approval else ' (not the run starter)'}",
            f"Quorum:      {len(status.tally.approvals)}/{r.min_approvals} approvals",
            f"Input:       {json.dumps(r.input_schema.get('properties', {}))}",
        ]
        example = example_input(r.input_schema)
        if example:
            lines.append(f"Example:     --input '{json.dumps(example)}'")
        for v in status.votes:
            lines.append(
                f"Vote:        {format_ts(v.actor.at)} {v.actor.login} ({v.actor.channel}, "
                f"{identity_note(v.actor.channel, v.actor.source)}): {v.intent}"
                + (f" {json.dumps(v.input)}" if v.input else "")
                + (f" - {v.reason}" if v.reason else "")
            )
        if status.decision:
            d = status.decision
            lines.append(f"Decision:    {d.summary()} at {format_ts(d.decided_at)}")
            for a in d.deciders:
                lines.append(f"Decider:     {a.login} ({identity_note(a.channel, a.source)})")
            if d.input:
                lines.append(f"With input:  {json.dumps(d.input)}")
        click.echo("\n".join(lines))

    def _act(
        ctx: CliContext,
        gate_id: GateId,
        intent: str,
        login_flag: str | None,
        payload: dict[str, Any],
        reason: str | None,
        as_json: bool,
    ) -> None:
        refused = channel_refusal(require_request(ctx.store, gate_id), "cli")
        if refused:
            raise NotAllowed(
                f"{refused}.", hint="Decide it on its GitHub page (a review, /approve or /reject)."
            )
        login, source = resolve_actor_login(login_flag)
        actor = Actor(login=login, channel="cli", at=utc_now(), source=source)
        try:
            result = decide(
                ctx.store,
                gate_id,
                actor=actor,
                intent=intent,  # type: ignore[arg-type]
                input=payload,
                reason=reason,
            )
        except TooLate as exc:  # the expiry may have been recorded by this call: settle it
            _warn_unsettled(_settle(ctx, require_request(ctx.store, gate_id), exc.decision))
            raise
        review: dict[str, Any] = {}
        resumed = False
        if result.decision:
            settled = _settle(ctx, result.request, result.decision)
            settled.raise_if_incomplete()  # the decision stands; exit non-zero with the repair
            review, resumed = dict(settled.review), settled.resumed
        if as_json:
            _emit_json(
                {
                    "gate_id": str(gate_id),
                    "recorded": "decision" if result.decision else "vote",
                    "decision": result.decision.to_dict() if result.decision else None,
                    "approvals": len(result.tally.approvals),
                    "needed": result.tally.needed,
                    "review": review,
                    "resumed": resumed,
                }
            )
        elif result.decision:
            click.echo(f"Gate {gate_id}: {result.decision.summary()}.")
            if resumed:
                click.echo("Resumed the paused Argo workflow.")
            if review.get("commit"):
                click.echo(
                    f"Committed to {review['location']} ({review['path']}, "
                    f"commit {str(review['commit'])[:12]})."
                )
        else:
            click.echo(
                f"Approval by {login} recorded for gate {gate_id}; "
                f"{result.tally.missing} more approval(s) needed."
            )

    @hitl.command(name="approve", help="Approve a gate, optionally with input (JSON).")
    @click.argument("gate", required=False)
    @click.option("--latest", is_flag=True, help="The most recently opened pending gate.")
    @click.option("--input", "input_json", default=None, help="Approval input as a JSON object.")
    @click.option("--as", "login", default=None, help="Your login (default: git/OS user).")
    @click.option("--reason", default=None, help="An optional remark kept with the approval.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    @click.pass_obj
    @_handled
    def approve_cmd(
        ctx: CliContext,
        gate: str | None,
        latest: bool,
        input_json: str | None,
        login: str | None,
        reason: str | None,
        as_json: bool,
    ) -> None:
        gate_id = _resolve(ctx, gate, latest, pending=True)
        _act(ctx, gate_id, "approve", login, parse_input_json(input_json), reason, as_json)

    @hitl.command(name="reject", help="Reject a gate; the gated step fails with your reason.")
    @click.argument("gate", required=False)
    @click.option("--latest", is_flag=True, help="The most recently opened pending gate.")
    @click.option("--reason", required=True, help="Why it must not proceed.")
    @click.option("--as", "login", default=None, help="Your login (default: git/OS user).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    @click.pass_obj
    @_handled
    def reject_cmd(
        ctx: CliContext,
        gate: str | None,
        latest: bool,
        reason: str,
        login: str | None,
        as_json: bool,
    ) -> None:
        if not reason.strip():
            raise ConfigError("--reason must not be empty; say why the step must not run.")
        gate_id = _resolve(ctx, gate, latest, pending=True)
        _act(ctx, gate_id, "reject", login, {}, reason.strip(), as_json)

    def _store_decisions(
        ctx: CliContext, *, use_index: bool = True
    ) -> list[tuple[StoredGate, Decision]]:
        """Every decided gate with its decision, in the order they were decided; the request
        (``gate.request``) is decoded only when used."""
        out = []
        for gate in _read_gates(ctx, decided_only=True, use_index=use_index):
            decision = gate.decision
            if decision is not None:
                out.append((gate, decision))
        out.sort(key=lambda pair: (pair[1].decided_at, str(pair[1].gate_id)))
        return out

    @hitl.command(
        name="audit",
        help="Every decision from the review repo's git history, checked against "
        "the store: gate, outcome, who, channel, when, evidence.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    @click.option(
        "--source",
        type=click.Choice(["review", "store"]),
        default="review",
        show_default=True,
        help="Read git history, or the store's records.",
    )
    @click.option(
        "--expire", is_flag=True, help="First record the expiry of gates whose time is up."
    )
    @click.option(
        "--no-index",
        "no_index",
        is_flag=True,
        help="Read and validate every record instead of the index of decided gates.",
    )
    @click.pass_obj
    @_handled
    @_bulk()
    def audit_cmd(
        ctx: CliContext, as_json: bool, source: str, expire: bool, no_index: bool
    ) -> None:
        unsettled: list[Settled] = []
        if expire:
            for gate_id in list(ctx.store.list_gates(pending_only=True, flow=ctx.flow)):
                decision = expire_gate(ctx.store, gate_id)
                if decision is not None:
                    settled = _settle(ctx, require_request(ctx.store, gate_id), decision)
                    if not settled.complete:
                        unsettled.append(settled)
        pairs = _store_decisions(ctx, use_index=not no_index)
        rows: list[dict[str, Any]] = []
        problems: list[str] = []
        if source == "store":
            rows = [_store_row(d) for _, d in pairs]
        else:
            reviewed: dict[str, Decision] = {}  # gate -> decision, for gates with a review
            by_review: dict[str, Any] = {}  # a request's review settings -> its backend
            seen: dict[str, dict[str, Any]] = {}
            unreviewed: list[dict[str, Any]] = []
            # Each repo's history is read (a git subprocess, or GitHub) in a thread from the
            # moment its first gate names it, while the other gates are looked at.
            with ThreadPoolExecutor(max_workers=4) as pool:
                histories: dict[str, Any] = {}
                for stored, d in pairs:
                    review = stored.review
                    key = json.dumps(review, sort_keys=True)
                    if key not in by_review:
                        by_review[key] = backend_for_review(review, gate_id=str(stored.gate_id))
                    backend = by_review[key]
                    if backend is not None:
                        if backend.location not in histories:
                            histories[backend.location] = pool.submit(backend.audit)
                        reviewed[str(stored.gate_id)] = d
                    else:  # no review repo (review=none; the S3 default): the store's record
                        unreviewed.append(_store_row(d))
                for location, history in histories.items():
                    for entry in history.result():
                        if ctx.flow and not entry.gate_id.startswith(ctx.flow + "/"):
                            continue
                        seen[entry.gate_id] = {**entry.to_dict(), "source": location}
            by_gate = {str(d.gate_id) for _, d in pairs}
            for gate, d in reviewed.items():
                entry = seen.get(gate)
                if entry is None:
                    problems.append(
                        f"{gate}: {d.outcome} in the store, missing from the review "
                        f"repo (run: metaflow-hitl sync {gate})"
                    )
                elif (entry["outcome"], entry["decided_by"]) != (d.outcome, d.decided_by):
                    problems.append(
                        f"{gate}: the review repo says {entry['outcome']} by "
                        f"{entry['decided_by']}, the store {d.outcome} by "
                        f"{d.decided_by}"
                    )
                if entry is not None:
                    entry.update(
                        input=d.input,
                        reason=d.reason,
                        deciders=[a.login for a in d.deciders],
                        identity=_identity(d),
                        proceed=d.proceed,
                    )
            for gate in seen:
                if gate not in by_gate:
                    problems.append(f"{gate}: in the review repo but not in the store")
            rows = sorted(
                [*seen.values(), *unreviewed], key=lambda r: (r["decided_at"], r["gate_id"])
            )
        if as_json:
            _emit_json(rows)
        elif not rows:
            where = f" in {ctx.store.location}" + (f" for flow {ctx.flow}" if ctx.flow else "")
            click.echo(f"No decisions yet{where}.")
        else:
            table = [
                [
                    r["gate_id"],
                    r["outcome"],
                    ", ".join(r.get("deciders") or [r["decided_by"]])
                    + (" (asserted)" if str(r.get("identity", "")).startswith("asserted") else ""),
                    r["channel"],
                    r["decided_at"],
                    truncate(
                        json.dumps(r["input"]) if r.get("input") else (r.get("reason") or "-"), 40
                    ),
                ]
                + ([str(r.get("commit", ""))[:10]] if source == "review" else [])
                for r in rows
            ]
            headers = ["GATE", "OUTCOME", "BY", "CHANNEL", "WHEN", "INPUT/REASON"]
            headers += ["COMMIT"] if source == "review" else []
            click.echo(render_table(headers, table, width=_columns()))
        for problem in problems:
            click.secho(f"Mismatch: {problem}", fg="red", err=True, color=_color())
        for settled in unsettled:  # expiries recorded by --expire that did not settle
            _warn_unsettled(settled)
        if problems or unsettled:
            sys.exit(1)

    @hitl.command(
        name="sync",
        help="Repair after a failure: commit decisions their review repo is missing, and resume "
        "Argo gates that are decided but still suspended. Safe to repeat.",
    )
    @click.argument("gate", required=False)
    @click.option(
        "--since",
        default="7d",
        show_default=True,
        help="Only gates opened this recently (a duration such as 2d), unless GATE is named.",
    )
    @click.option(
        "--watch",
        "watch_every",
        default=None,
        help="Keep running: every DURATION (e.g. 5s), resume newly decided Argo gates and close "
        "gates whose run ended (the in-cluster resumer; see docs/argo.md).",
    )
    @click.option("--max-passes", type=int, default=None, hidden=True)
    @click.pass_obj
    @_handled
    def sync_cmd(
        ctx: CliContext,
        gate: str | None,
        since: str,
        watch_every: str | None,
        max_passes: int | None,
    ) -> None:
        from metaflow_hitl.durations import parse_duration

        if watch_every is not None:
            from metaflow_hitl.cli.watch import watch

            if gate:
                raise ConfigError("--watch watches every gate; do not name one.")
            watch(
                ctx,
                interval=parse_duration(watch_every, what="--watch"),
                since_seconds=parse_duration(since, what="--since"),
                max_passes=max_passes,
            )
            return
        with _bulk():
            _sync_once(ctx, gate, since)

    def _sync_once(ctx: CliContext, gate: str | None, since: str) -> None:
        from metaflow_hitl.durations import parse_duration

        targets = [parse_gate_ref(gate, flow=ctx.flow)] if gate else None
        window = parse_duration(since, what="--since")
        now = utc_now()
        published = resumed = 0
        failures: list[str] = []
        for stored, _ in _store_decisions(ctx):
            if targets is not None and stored.gate_id not in targets:
                continue
            if targets is None and (now - stored.request.created_at).total_seconds() > window:
                continue
            try:
                # What sync acts on is read from the records, never from the index.
                request = require_request(ctx.store, stored.gate_id)
                decision = ctx.store.get_decision(stored.gate_id)
            except HitlError as exc:  # named by the gate being synced, never the previous one
                failures.append(f"{stored.gate_id}: {exc.message}")
                continue
            if decision is None:  # pragma: no cover - records are never deleted
                continue
            settled = _settle(ctx, request, decision)
            for step, error in settled.failures:
                if isinstance(error, RunEnded):  # nothing will ever resume it: not a failure
                    click.echo(f"Not resumed {stored.gate_id}: {error.message}")
                    continue
                failures.append(f"{stored.gate_id}: {step}: {error.message}")
            if backend_for_request(request) is not None and "publish" not in dict(settled.failures):
                published += 1
            if settled.resumed:
                resumed += 1
                click.echo(f"Resumed {request.gate_id} ({decision.summary()}).")
        click.echo(
            f"{published} decision(s) in their review repos; {resumed} Argo gate(s) resumed."
        )
        for failure in failures:
            click.secho(f"Failed: {failure}", fg="red", err=True, color=_color())
        if failures:
            sys.exit(1)

    from metaflow_hitl.cli.remind import remind_command  # here: remind imports this module

    hitl.add_command(remind_command)
    return hitl
