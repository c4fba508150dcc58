"""``hitl remind``: send the due reminders of pending gates (``@hitl(remind_every=...)``).

Run it on a schedule -- ``github_action/hitl-remind.yml`` runs ``metaflow-hitl remind`` every
15 minutes in the review repository -- so a gate paused on Argo, where no task waits, is
still chased: each gate with ``remind_every`` gets reminder ``n`` once ``n`` intervals have
passed, as a comment on its pull request or issue (GitHub review repos) and a notification
(Apprise), mentioning ``escalate_to`` from the third reminder on. Running it again, or twice
at once, sends nothing twice (:mod:`metaflow_hitl.reminders`).

Notifications go to ``--notifier`` (as the decorator's ``notifier=``: ``apprise`` reads
``METAFLOW_HITL_APPRISE_URLS``); without it, to ``METAFLOW_HITL_APPRISE_URLS`` when that is
set, else nowhere (said in the output). Exit status 6 (store or network) when a reminder's
comment or notification failed, or a gate could not be read: the reminder still counts as sent.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from metaflow_hitl.cli.group import CliContext, fail
from metaflow_hitl.errors import ConfigError, HitlError, StoreError
from metaflow_hitl.notify import APPRISE_URLS_ENV
from metaflow_hitl.plugin.metaflow_internals import click
from metaflow_hitl.reminders import remind_pending
from metaflow_hitl.review.config import backend_for_request
from metaflow_hitl.timestamps import parse_ts, utc_now

__all__ = ["remind_command"]

SENT_BY = "remind-command"


def _notifier(setting: str | None, no_notify: bool) -> tuple[Any, str]:
    """The notifier and a sentence saying where notifications go."""
    if no_notify:
        return None, "notifications: off (--no-notify)"
    if setting is None and os.environ.get(APPRISE_URLS_ENV, "").strip():
        setting = "apprise"
    if setting is None:
        return None, f"notifications: none ({APPRISE_URLS_ENV} is not set; see --notifier)"
    from metaflow_hitl.notify import notifier_from_setting

    notifier = notifier_from_setting(setting)
    urls = ", ".join(notifier.urls) if notifier is not None else "none"
    return notifier, f"notifications: {urls}"


def _now(value: str | None) -> Any:
    if value is None:
        return utc_now()
    try:
        return parse_ts(value)
    except ValueError as exc:
        raise ConfigError(f"--now: {exc}") from None


@click.command(
    name="remind",
    help="Send the due reminders of pending gates that set remind_every: a comment on the "
    "gate's pull request or issue and a notification, escalating to escalate_to from the "
    "third reminder on. Each reminder is sent once, however often this runs.",
)
@click.option("--flow", "flow_name", default=None, help="Only gates of this flow.")
@click.option(
    "--notifier",
    default=None,
    metavar="SETTING",
    help=f"Where to notify: 'apprise' (URLs from {APPRISE_URLS_ENV}) or Apprise URLs. "
    f"Default: {APPRISE_URLS_ENV} when set.",
)
@click.option("--no-notify", is_flag=True, help="Comment only; send no notification.")
@click.option("--dry-run", is_flag=True, help="Show the reminders due; write and send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--now", "now_text", default=None, hidden=True, help="The time (tests).")
@click.pass_obj
def remind_command(
    ctx: CliContext,
    flow_name: str | None,
    notifier: str | None,
    no_notify: bool,
    dry_run: bool,
    as_json: bool,
    now_text: str | None,
) -> None:
    """The ``remind`` command."""
    try:
        if flow_name and ctx.flow and flow_name != ctx.flow:
            raise ConfigError(f"--flow {flow_name} names another flow than this one ({ctx.flow}).")
        now = _now(now_text)
        if dry_run:
            sender, where = None, "notifications: none (dry run)"
        else:
            sender, where = _notifier(notifier, no_notify)
        results, errors = remind_pending(
            ctx.store,
            now=now,
            sent_by=SENT_BY,
            notifier=sender,
            review_for=backend_for_request,
            flow=flow_name or ctx.flow,
            dry_run=dry_run,
        )
    except HitlError as exc:
        fail(exc)
    problems = [f"{r.gate_id}: {p}" for r in results for p in r.problems] + errors
    if as_json:
        click.echo(
            json.dumps(
                {"reminders": [r.to_dict() for r in results], "errors": errors},
                indent=2,
                sort_keys=True,
            )
        )
    else:
        click.echo(where)
        for result in results:
            click.echo(result.summary())
        count = {s: sum(r.status == s for r in results) for s in ("sent", "already-sent", "due")}
        click.echo(
            f"{count['sent']} reminder(s) sent, {count['already-sent']} already sent by another "
            f"sender" + (f", {count['due']} due (dry run)." if dry_run else ".")
        )
        for problem in problems:
            click.secho(f"Failed: {problem}", fg="red", err=True)
    if problems:
        sys.exit(StoreError.exit_code)  # a comment or notification could not be sent
