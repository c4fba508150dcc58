"""``hitl sync``: repair after a failure (publish and resume what is missing), or ``--watch``."""

from __future__ import annotations

import sys

from metaflow_hitl.cli.group import (
    CliContext,
    bulk,
    color,
    handled,
    settle_decision,
    store_decisions,
)
from metaflow_hitl.errors import ConfigError, HitlError, SettleIncomplete
from metaflow_hitl.gate_id import parse_gate_ref
from metaflow_hitl.gates import require_request
from metaflow_hitl.plugin.metaflow_internals import click
from metaflow_hitl.review.config import backend_for_request
from metaflow_hitl.timestamps import utc_now


@click.command(
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
@handled
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
    with bulk():
        _sync_once(ctx, gate, since)


def _sync_once(ctx: CliContext, gate: str | None, since: str) -> None:
    from metaflow_hitl.durations import parse_duration

    targets = [parse_gate_ref(gate, flow=ctx.flow)] if gate else None
    window = parse_duration(since, what="--since")
    now = utc_now()
    published = resumed = 0
    failures: list[str] = []
    for stored, _ in store_decisions(ctx):
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
        settled = settle_decision(ctx, request, decision)
        notice = settled.notice()
        if notice:  # a run that ended is not a failure (metaflow_hitl.settle)
            click.echo(notice)
        for step, error in settled.failures:
            failures.append(f"{stored.gate_id}: {step}: {error.message}")
        if backend_for_request(request) is not None and "publish" not in dict(settled.failures):
            published += 1
        if settled.resumed:
            resumed += 1
            click.echo(f"Resumed {request.gate_id} ({decision.summary()}).")
    click.echo(f"{published} decision(s) in their review repos; {resumed} Argo gate(s) resumed.")
    for failure in failures:
        click.secho(f"Failed: {failure}", fg="red", err=True, color=color())
    if failures:
        sys.exit(SettleIncomplete.exit_code)  # decisions stand; their follow-up failed
