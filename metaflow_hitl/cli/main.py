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

__all__ = ["main"]


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


@click.group(help="Human approval gates for Metaflow.")
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
