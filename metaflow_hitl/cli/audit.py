"""``hitl audit``: every decision, from the review repos' history, checked against the store."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from metaflow_hitl.cli.group import (
    CliContext,
    bulk,
    color,
    columns,
    emit_json,
    handled,
    identity_of,
    settle_decision,
    store_decisions,
    store_row,
    warn_unsettled,
)
from metaflow_hitl.errors import SettleIncomplete
from metaflow_hitl.gates import expire_gate, require_request
from metaflow_hitl.plugin.metaflow_internals import click
from metaflow_hitl.records import Decision
from metaflow_hitl.render.tables import render_table, truncate
from metaflow_hitl.review.config import backend_for_review
from metaflow_hitl.settle import Settled


def reconcile(
    reviewed: Mapping[str, Decision],
    seen: dict[str, dict[str, Any]],
    *,
    every_gate: set[str],
) -> list[str]:
    """Check the review repos' history against the store; pure (no I/O).

    Parameters
    ----------
    reviewed
        Gate id -> the store's decision, for each decided gate that has a review repo.
    seen
        Gate id -> the audit row read from the review repos' history (trailers). Each row
        whose gate has a store decision is completed in place from it (input, reason,
        deciders, identity, proceed: the trailers do not carry them).
    every_gate
        Every decided gate of the store (with or without a review repo).

    Returns
    -------
    list of str
        One line per mismatch, with the command that repairs it where there is one: a store
        decision missing from its repo, a repo and a store that disagree, a repo decision
        the store does not hold.
    """
    problems: list[str] = []
    for gate, d in reviewed.items():
        entry = seen.get(gate)
        if entry is None:
            problems.append(
                f"{gate}: {d.outcome} in the store, missing from the review "
                f"repo (run: metaflow-hitl sync {gate})"
            )
            continue
        if (entry["outcome"], entry["decided_by"]) != (d.outcome, d.decided_by):
            problems.append(
                f"{gate}: the review repo says {entry['outcome']} by "
                f"{entry['decided_by']}, the store {d.outcome} by {d.decided_by}"
            )
        entry.update(
            input=d.input,
            reason=d.reason,
            deciders=[a.login for a in d.deciders],
            identity=identity_of(d),
            proceed=d.proceed,
        )
    unknown = [gate for gate in seen if gate not in every_gate]
    return problems + [f"{gate}: in the review repo but not in the store" for gate in unknown]


@click.command(
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
@click.option("--expire", is_flag=True, help="First record the expiry of gates whose time is up.")
@click.option(
    "--no-index",
    "no_index",
    is_flag=True,
    help="Read and validate every record instead of the index of decided gates.",
)
@click.pass_obj
@handled
@bulk()
def audit_cmd(ctx: CliContext, as_json: bool, source: str, expire: bool, no_index: bool) -> None:
    unsettled: list[Settled] = []
    if expire:
        for gate_id in list(ctx.store.list_gates(pending_only=True, flow=ctx.flow)):
            decision = expire_gate(ctx.store, gate_id)
            if decision is not None:
                settled = settle_decision(ctx, require_request(ctx.store, gate_id), decision)
                if not settled.complete:
                    unsettled.append(settled)
                elif settled.run_ended is not None:  # not a failure (metaflow_hitl.settle)
                    warn_unsettled(settled)
    pairs = store_decisions(ctx, use_index=not no_index)
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    if source == "store":
        rows = [store_row(d) for _, d in pairs]
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
                    unreviewed.append(store_row(d))
            for location, history in histories.items():
                for entry in history.result():
                    if ctx.flow and not entry.gate_id.startswith(ctx.flow + "/"):
                        continue
                    seen[entry.gate_id] = {**entry.to_dict(), "source": location}
        problems = reconcile(reviewed, seen, every_gate={str(d.gate_id) for _, d in pairs})
        rows = sorted([*seen.values(), *unreviewed], key=lambda r: (r["decided_at"], r["gate_id"]))
    if as_json:
        emit_json(rows)
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
        click.echo(render_table(headers, table, width=columns()))
    for problem in problems:
        click.secho(f"Mismatch: {problem}", fg="red", err=True, color=color())
    for settled in unsettled:  # expiries recorded by --expire that did not settle
        warn_unsettled(settled)
    if problems:  # a finding, like diff(1)
        sys.exit(1)
    if unsettled:
        sys.exit(SettleIncomplete.exit_code)
