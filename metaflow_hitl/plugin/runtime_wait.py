"""On a local run, wait for a gate *before* its step is launched on remote compute.

Metaflow's local runtime starts every task as a subprocess whose command line the step's
decorators shape in ``StepDecorator.runtime_step_cli(cli_args, ...)``
(``metaflow/runtime.py``, ``Worker._launch``: each decorator edits the ``CLIArgs`` in place,
then ``cmdline = args.get_args()`` is run with ``subprocess.Popen``). ``@kubernetes`` and
``@batch`` (also added with ``--with``) replace the ``step`` command with
``kubernetes step`` / ``batch step`` (``plugins/kubernetes/kubernetes_decorator.py`` and
``plugins/aws/batch/batch_decorator.py``, ``runtime_step_cli``), and that command creates the
Job or the Batch job at once. A gate waiting in ``task_pre_step`` would therefore wait inside
a running pod (a GPU idling for hours).

So for those steps the task's command becomes::

    python flow.py <same top-level options> hitl await-gate STEP --run-id ... -- <command>

:func:`wait_before_remote_launch` arranges it. It wraps ``cli_args.get_args`` of the one
``CLIArgs`` object (decorators run in any order, and ``@kubernetes`` may come after
``@hitl``: only once they all ran is the final command known). :func:`await_gate_command`
opens the gate, waits and then ``exec``\\ s the original command: nothing asks Kubernetes or
AWS Batch for anything until the gate is decided; after an approval (or
``on_reject="continue"``) the step launches as usual and its task finds the decision in the
store; after a rejection the process exits with Metaflow's
``METAFLOW_EXIT_DISALLOW_RETRY`` (``metaflow/exception.py``), which the runtime does not
retry (``NativeRuntime._poll_workers``), so no pod is ever created, not even by ``@retry``.
The wait is a process of its own, streamed like any task's output, so the runtime's other
branches keep running and printing.

Every reliance on those Metaflow internals (``CLIArgs`` fields, the command names) is here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from metaflow_hitl.cli.group import fail
from metaflow_hitl.errors import ConfigError, HitlError
from metaflow_hitl.plugin.metaflow_internals import click

__all__ = [
    "AWAIT_COMMAND",
    "REMOTE_COMMANDS",
    "await_gate_command",
    "launches_remotely",
    "wait_before_remote_launch",
]

#: The first word of the task command of steps that run on remote compute.
REMOTE_COMMANDS = ("kubernetes", "batch")
#: The hidden ``python flow.py hitl ...`` subcommand that waits, then launches.
AWAIT_COMMAND = "await-gate"
#: ``metaflow.exception.METAFLOW_EXIT_DISALLOW_RETRY``: the runtime does not retry this exit.
EXIT_DISALLOW_RETRY = 202


def launches_remotely(commands: list[str]) -> bool:
    """Whether a task command (``CLIArgs.commands``) launches the step on remote compute."""
    return bool(commands) and commands[0] in REMOTE_COMMANDS


def wait_before_remote_launch(cli_args: Any) -> None:
    """Make this task's launch wait for its gate first, if the step runs remotely.

    Called from ``@hitl``'s ``runtime_step_cli``. Steps that run locally keep waiting in
    their task (no cost to avoid there).
    """
    original: Callable[[], list[str]] = cli_args.get_args

    def get_args() -> list[str]:
        argv = original()
        if not launches_remotely(list(cli_args.commands)):
            return argv
        return _await_argv(cli_args, original, argv)

    cli_args.get_args = get_args


def _await_argv(cli_args: Any, build: Callable[[], list[str]], launch: list[str]) -> list[str]:
    """``python flow.py <top-level options> hitl await-gate STEP ... -- <launch>``."""
    saved = (cli_args.commands, cli_args.command_args, cli_args.command_options)
    given = cli_args.command_options
    cli_args.commands = ["hitl", AWAIT_COMMAND]
    cli_args.command_args = [cli_args.task.step]
    cli_args.command_options = {
        "run-id": given.get("run-id"),
        "task-id": given.get("task-id"),
        "input-paths": given.get("input-paths"),
        "retry-count": given.get("retry-count"),
        "clone-run-id": given.get("clone-run-id"),
    }
    try:
        head = build()  # the same entry point and top-level options (--datastore, --with...)
    finally:
        cli_args.commands, cli_args.command_args, cli_args.command_options = saved
    return [*head, "--", *launch]


@click.command(
    name=AWAIT_COMMAND,
    hidden=True,
    help="Run by the local runtime for a gated step on remote compute: open the gate, wait "
    "for its decision, then launch the step (or fail it without launching).",
)
@click.argument("step_name")
@click.option("--run-id", required=True)
@click.option("--task-id", required=True)
@click.option("--input-paths", default=None)
@click.option("--retry-count", default=0, type=int)
@click.option("--clone-run-id", default=None)
@click.argument("launch", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def await_gate_command(
    ctx: Any,
    step_name: str,
    run_id: str,
    task_id: str,
    input_paths: str | None,
    retry_count: int,
    clone_run_id: str | None,
    launch: tuple[str, ...],
) -> None:
    if not launch:
        fail(ConfigError("await-gate needs the command to launch after `--`"))
    try:
        proceed = _await(ctx, step_name, run_id, task_id, input_paths, retry_count, clone_run_id)
    except HitlError as exc:
        sys.stdout.flush()
        click.secho(f"Error ({exc.headline}): {exc.message}", fg="red", err=True)
        if exc.hint:
            click.echo(exc.hint, err=True)
        sys.exit(EXIT_DISALLOW_RETRY)  # a broken gate is not fixed by launching again
    if not proceed:
        sys.exit(EXIT_DISALLOW_RETRY)
    sys.stdout.flush()
    sys.stderr.flush()
    # the runtime built this argv (no shell, no untrusted text); exec keeps pid and pipes
    os.execv(launch[0], list(launch))  # noqa: S606


def _await(
    ctx: Any,
    step_name: str,
    run_id: str,
    task_id: str,
    input_paths: str | None,
    retry_count: int,
    clone_run_id: str | None,
) -> bool:
    """Open the gate and wait; whether the step should be launched."""
    from metaflow.util import get_username

    from metaflow_hitl.plugin.argo_notify import _datastores, gate_decorator, read_input_paths
    from metaflow_hitl.plugin.decorator import HitlException, _rejection

    obj = ctx.obj
    graph, flow = obj.graph, obj.flow
    deco = gate_decorator(graph, flow, step_name)
    inputs = _datastores(obj.flow_datastore, read_input_paths(input_paths, None))
    print(
        f"[@hitl] Step {step_name!r} runs on remote compute: it is launched only once the "
        "gate is approved.",
        flush=True,
    )
    _request, decision = deco._run_gate(
        ctx.store,
        step_name,
        run_id,
        task_id,
        flow,
        graph,
        inputs,
        retry_count,
        origin_run=clone_run_id,
        started_by=get_username() or "unknown",
    )
    if decision.proceed or deco.spec.on_reject != "fail":
        return True
    error: HitlException = _rejection(decision, step_name, run_id)
    sys.stdout.flush()
    click.secho(f"{error.headline}: {error.message}", fg="red", err=True)
    click.echo("[@hitl] The step was not launched.", err=True)
    return False
