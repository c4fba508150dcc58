"""Setup checks ``@hitl`` runs in ``step_init``, before any task, and what it skips there.

``step_init`` runs in every process that loads the flow (``metaflow/cli.py``, ``start``:
``decorators._init_step_decorators`` for every command but ``run``/``resume``, which call it
themselves): the run, each task, and an approver's ``python flow.py hitl approve``. The
approver needs none of the flow's notification settings, extras or review token, so
:func:`approver_command` tells those processes apart, from the command line click is
parsing (``ctx.saved_args``, set by Metaflow's ``start`` group).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from metaflow_hitl.errors import ConfigError
from metaflow_hitl.review.config import GITHUB_TOKEN_ENVS

__all__ = [
    "TASK_LIKE_HITL_COMMANDS",
    "approver_command",
    "check_review_setup",
    "flow_command",
    "unreachable_store_warning",
]

#: ``python flow.py hitl <these>`` open gates like a task does (and need what a task needs).
TASK_LIKE_HITL_COMMANDS = ("notify", "await-gate")


def flow_command() -> list[str]:
    """The arguments of the flow's command being run (``["hitl", "approve", ...]``), or
    ``[]`` outside a click invocation."""
    from metaflow_hitl.plugin.metaflow_internals import click

    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        saved = getattr(ctx, "saved_args", None)
        if saved:
            return [str(a) for a in saved]
        ctx = ctx.parent
    return []


def approver_command(args: list[str] | None = None) -> bool:
    """Whether this process runs a ``hitl`` command that only reads or decides gates."""
    args = flow_command() if args is None else args
    if not args or args[0] != "hitl":
        return False
    sub = next((a for a in args[1:] if not a.startswith("-")), None)
    return sub not in TASK_LIKE_HITL_COMMANDS


def check_review_setup(review: Mapping[str, Any]) -> None:
    """Fail now, not at task time, when a GitHub review cannot work from this process.

    Raises
    ------
    ConfigError
        If PyGithub is not installed, or no token is set.
    """
    if review.get("backend") != "github":
        return
    where = review.get("location") or "github:"
    try:
        import github  # noqa: F401 - PyGithub; imported again when the backend is used
    except ImportError:
        raise ConfigError(
            f"review={where!r} needs PyGithub, which is not installed in this Python "
            f"environment ({sys.executable}).",
            hint='Install the extra: pip install "metaflow-hitl[github]"',
        ) from None
    if not any(os.environ.get(v, "").strip() for v in GITHUB_TOKEN_ENVS):
        raise ConfigError(
            f"review={where!r} needs a GitHub token, and neither "
            f"{' nor '.join(GITHUB_TOKEN_ENVS)} is set.",
            hint="Set METAFLOW_HITL_GITHUB_TOKEN to a token with contents, pull requests and "
            f"issues write access to {review.get('repo')}, or use review='none' / 'git:...'.",
        )


def unreachable_store_warning(review: Mapping[str, Any], store: str) -> str | None:
    """Why the GitHub Action could never decide this gate, or ``None``.

    A GitHub review with a store only this machine sees (the laptop's ``.metaflow``): the
    Action's runner cannot read the request nor record a decision.
    """
    if review.get("backend") != "github" or "://" in store:
        return None
    return (
        f"the gate's store {store} is on this machine, so the GitHub Action cannot record a "
        "decision made on the pull request or issue: decide with `hitl approve` / `reject` "
        "here, or keep gates in a store the Action reaches (run with --datastore=s3, and set "
        "the Action's `store` input / METAFLOW_HITL_STORE to that s3:// location)."
    )
