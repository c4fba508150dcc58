"""``hitl approve`` and ``hitl reject``: record a decision from the CLI, then settle it."""

from __future__ import annotations

from typing import Any

from metaflow_hitl.cli.group import (
    CliContext,
    emit_json,
    handled,
    resolve_gate,
    settle_decision,
    warn_unsettled,
)
from metaflow_hitl.cli.identity import resolve_actor_login
from metaflow_hitl.errors import (
    ConfigError,
    NotAllowed,
    TooLate,
)
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import decide, require_request
from metaflow_hitl.input_schema import parse_input_json
from metaflow_hitl.plugin.metaflow_internals import click
from metaflow_hitl.records import Actor
from metaflow_hitl.timestamps import utc_now
from metaflow_hitl.trust import channel_refusal


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
        warn_unsettled(settle_decision(ctx, require_request(ctx.store, gate_id), exc.decision))
        raise
    review: dict[str, Any] = {}
    resumed = False
    notice: str | None = None
    if result.decision:
        settled = settle_decision(ctx, result.request, result.decision)
        settled.raise_if_incomplete()  # the decision stands; exit non-zero with the repair
        review, resumed, notice = dict(settled.review), settled.resumed, settled.notice()
    if as_json:
        if notice:
            click.echo(notice, err=True)
        emit_json(
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
        if notice:  # the run ended: not a failure (metaflow_hitl.settle)
            click.echo(notice)
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


@click.command(name="approve", help="Approve a gate, optionally with input (JSON).")
@click.argument("gate", required=False)
@click.option("--latest", is_flag=True, help="The most recently opened pending gate.")
@click.option("--input", "input_json", default=None, help="Approval input as a JSON object.")
@click.option("--as", "login", default=None, help="Your login (default: git/OS user).")
@click.option("--reason", default=None, help="An optional remark kept with the approval.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
@handled
def approve_cmd(
    ctx: CliContext,
    gate: str | None,
    latest: bool,
    input_json: str | None,
    login: str | None,
    reason: str | None,
    as_json: bool,
) -> None:
    gate_id = resolve_gate(ctx, gate, latest, pending=True)
    _act(ctx, gate_id, "approve", login, parse_input_json(input_json), reason, as_json)


@click.command(name="reject", help="Reject a gate; the gated step fails with your reason.")
@click.argument("gate", required=False)
@click.option("--latest", is_flag=True, help="The most recently opened pending gate.")
@click.option("--reason", required=True, help="Why it must not proceed.")
@click.option("--as", "login", default=None, help="Your login (default: git/OS user).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
@handled
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
    gate_id = resolve_gate(ctx, gate, latest, pending=True)
    _act(ctx, gate_id, "reject", login, {}, reason.strip(), as_json)
