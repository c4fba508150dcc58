"""``metaflow-hitl``: the same commands for people without the flow file.

The store is ``--store PATH``, else ``METAFLOW_HITL_STORE``, else the ``_hitl`` folder of
Metaflow's local datastore root (``METAFLOW_DATASTORE_SYSROOT_LOCAL``, or the nearest
``.metaflow`` folder above the current directory, as Metaflow itself finds it).
"""

from __future__ import annotations

import os
from typing import Any

from metaflow_hitl import __version__
from metaflow_hitl.cli.group import CliContext, build_hitl_group, fail
from metaflow_hitl.cli.handle_event import handle_event_command
from metaflow_hitl.errors import ConfigError, HitlError
from metaflow_hitl.plugin.metaflow_internals import click
from metaflow_hitl.stores import STORE_DIRNAME, open_store

__all__ = ["hoist_store", "main"]


def _default_store() -> str:
    configured = os.environ.get("METAFLOW_HITL_STORE")
    if configured is not None and not configured.strip():
        # The Action passes its `store` input here; empty must not mean "look around".
        raise ConfigError(
            "METAFLOW_HITL_STORE is set but empty (the Action's `store` input is empty), so "
            "there is no store to record in; refusing to guess one.",
            hint="Set the Action's `store` input (or METAFLOW_HITL_STORE) to the gates' store, "
            "e.g. s3://bucket/metaflow/_hitl, or pass --store PATH.",
        )
    if configured:
        return configured
    # Metaflow's own search: METAFLOW_DATASTORE_SYSROOT_LOCAL, else the nearest .metaflow above.
    from metaflow.plugins.datastores.local_storage import LocalStorage

    root = LocalStorage.get_datastore_root_from_config(lambda *a, **k: None, create_on_absent=False)
    if root is None:
        raise ConfigError(
            "no store found: no .metaflow folder here or above, and neither --store nor "
            "METAFLOW_HITL_STORE is set.",
            hint="Pass the store explicitly: metaflow-hitl --store /path/.metaflow/_hitl list",
        )
    return os.path.join(root, STORE_DIRNAME)


def _context(location: str | None) -> CliContext:
    return CliContext(store=lambda: open_store(location or _default_store()), flow=None)


def hoist_store(args: list[str], takes_value: frozenset[str] = frozenset()) -> list[str]:
    """Move ``--store PATH`` / ``--store=PATH`` given after the subcommand to the front, so
    ``metaflow-hitl list --store S`` means ``metaflow-hitl --store S list`` (as ``gh -R`` and
    ``argo -n`` work on either side).

    Parameters
    ----------
    args
        The command line after the program name.
    takes_value
        Option names whose next argument is their value (``--reason``, ``--input``...): that
        argument is never read as ``--store``, so ``--reason --store`` keeps its reason.

    Nothing after ``--`` is touched, and a second, different ``--store`` is refused rather
    than one silently winning.
    """
    rest: list[str] = []
    found: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg in takes_value and i + 1 < len(args):
            rest += args[i : i + 2]
            i += 2
            continue
        if arg == "--store":
            if i + 1 == len(args):
                raise click.UsageError(
                    "--store needs a PATH, e.g. --store s3://bucket/metaflow/_hitl."
                )
            found.append(args[i + 1])
            i += 2
            continue
        if arg.startswith("--store="):
            found.append(arg.split("=", 1)[1])
            i += 1
            continue
        rest.append(arg)
        i += 1
    if len(set(found)) > 1:
        raise click.UsageError(f"--store given twice with different paths: {', '.join(found)}.")
    return (["--store", found[0]] if found else []) + rest


class _StoreAnywhere(click.Group):
    """The console script's group: ``--store`` before or after the subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        takes_value = frozenset(
            name
            for command in self.commands.values()
            for param in command.params
            if isinstance(param, click.Option) and not param.is_flag and not param.count
            for name in param.opts + param.secondary_opts
        )
        return super().parse_args(ctx, hoist_store(list(args), takes_value))


@click.group(cls=_StoreAnywhere, help="Human approval gates for Metaflow.")
@click.version_option(__version__, prog_name="metaflow-hitl")
@click.option(
    "--store",
    default=None,
    metavar="PATH",
    help="The approval store (default: METAFLOW_HITL_STORE, or .metaflow/_hitl).",
)
@click.pass_context
def main(ctx: Any, store: str | None) -> None:
    """The ``metaflow-hitl`` console script."""
    try:
        ctx.obj = _context(store)
    except HitlError as exc:
        fail(exc)


# The same commands as `python flow.py hitl ...`, at the top level of this script.
for _name, _command in build_hitl_group(lambda obj: obj).commands.items():
    main.add_command(_command, _name)
main.add_command(handle_event_command)
