"""The inbox: ``hitl list`` (pending first) and ``hitl show`` (one gate in full)."""

from __future__ import annotations

import json

from metaflow_hitl.cli.group import (
    CliContext,
    bulk,
    columns,
    emit_json,
    gate_statuses,
    handled,
    may_approve,
    resolve_gate,
    status_json,
)
from metaflow_hitl.cli.identity import resolve_actor_login
from metaflow_hitl.errors import (
    ConfigError,
)
from metaflow_hitl.gates import GateStatus, gate_status
from metaflow_hitl.input_schema import example_input
from metaflow_hitl.plugin.metaflow_internals import click
from metaflow_hitl.render.phrases import starter_line
from metaflow_hitl.render.tables import ago, render_table, state_text, truncate
from metaflow_hitl.timestamps import format_ts, utc_now
from metaflow_hitl.trust import identity_note


@click.command(
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
@handled
@bulk()
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
    statuses = gate_statuses(
        scoped, pending_only=pending_only, run_id=run_id, use_index=not no_index
    )
    if status:
        statuses = [s for s in statuses if s.state == status]
    if mine:
        me, _ = resolve_actor_login(login)
        statuses = [s for s in statuses if may_approve(s.request, me)]
    if as_json:
        emit_json([status_json(s) for s in statuses])
        return
    if not statuses:
        where = f" in {ctx.store.location}" + (f" for flow {scoped.flow}" if scoped.flow else "")
        click.echo(f"No pending gates{where}." if not show_all else f"No gates{where}.")
        return
    now, width = utc_now(), columns()
    rows = []
    for s in statuses:
        r = s.request
        rows.append(
            [
                str(r.gate_id) if not ctx.flow else r.gate_id.short,
                state_text(s.state, s.decision.proceed)
                if s.decision
                else f"pending {len(s.tally.approvals)}/{r.min_approvals}"
                + (" (nobody waiting)" if s.nobody_waiting else ""),
                ago(r.created_at, now),
                format_ts(r.expires_at)[:16] + "Z",
                ", ".join(r.approvers) or "-",
                r.message if width else truncate(r.message, 48),
            ]
        )
    headers = ["GATE", "STATE", "AGE", "EXPIRES", "APPROVERS", "MESSAGE"]
    click.echo(render_table(headers, rows, width=width))


@click.command(name="show", help="Show one gate: its request, votes and decision.")
@click.argument("gate", required=False)
@click.option("--latest", is_flag=True, help="The most recently opened gate.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
@handled
def show_cmd(ctx: CliContext, gate: str | None, latest: bool, as_json: bool) -> None:
    status = gate_status(ctx.store, resolve_gate(ctx, gate, latest, pending=False))
    if as_json:
        emit_json(status_json(status))
        return
    r = status.request
    lines = [
        f"Gate:        {r.gate_id}",
        f"State:       {status.state}",
        *_waiting_lines(status),
        f"Message:     {r.message}",
        f"Started by:  {r.started_by}",
        *([f"Starter:     {starter_line(r.starter)}"] if r.starter else []),
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


def _waiting_lines(status: GateStatus) -> list[str]:
    """Who waits on a pending local gate, from its heartbeat (nothing when unknown)."""
    w = status.waiter
    if status.decision is not None or w is None:
        return []
    if w.stopped is not None:
        return [
            f"Waiting:     nobody: the task ({w.host}, pid {w.pid}) stopped at "
            f"{format_ts(w.beat_at)} because {w.stopped}. A retry of the task, or a `resume` "
            "of the run, opens it again."
        ]
    if status.nobody_waiting:
        return [
            f"Waiting:     nobody: the waiting task ({w.host}, pid {w.pid}) last beat at "
            f"{format_ts(w.beat_at)}; its run was probably killed. Deciding the gate is still "
            "recorded, and a `resume` of the run with the same content finds the decision."
        ]
    return [f"Waiting:     {w.host}, pid {w.pid}, since {format_ts(w.started_at)}"]
