"""``python flow.py hitl ...``: the Metaflow CLI plugin.

Metaflow's loader wants a click group holding exactly one sub-group, named like the plugin.
Gates live in the flow's own datastore (``--datastore-root`` is honoured).
"""

from __future__ import annotations

from typing import Any

from metaflow._vendor import click

from metaflow_hitl.cli.commands import CliContext, build_hitl_group
from metaflow_hitl.errors import ConfigError
from metaflow_hitl.stores import store_for_datastore_root

__all__ = ["cli"]


def _from_flow(obj: Any) -> CliContext:
    datastore = obj.flow_datastore
    if datastore.TYPE != "local":
        raise ConfigError(
            f"this release keeps gates in the local datastore only; this flow uses "
            f"{datastore.TYPE!r}. Run with --datastore=local."
        )
    return CliContext(store=store_for_datastore_root(datastore.datastore_root), flow=obj.flow.name)


@click.group()
def cli() -> None:
    """Metaflow CLI plugin entry point."""


cli.add_command(build_hitl_group(_from_flow))
