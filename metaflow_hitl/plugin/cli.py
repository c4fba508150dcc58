"""``python flow.py hitl ...``: the Metaflow CLI plugin.

Metaflow's loader wants a click group holding exactly one sub-group, named like the plugin.
Gates live in the flow's own datastore (``--datastore`` / ``--datastore-root`` are honoured):
the local one, or S3 (runs on Argo Workflows).
"""

from __future__ import annotations

from typing import Any

from metaflow_hitl.cli.group import CliContext, build_hitl_group
from metaflow_hitl.errors import ConfigError
from metaflow_hitl.plugin.argo_notify import notify_command
from metaflow_hitl.plugin.metaflow_internals import click
from metaflow_hitl.plugin.runtime_wait import await_gate_command
from metaflow_hitl.stores import store_for_datastore_root

__all__ = ["FlowCliContext", "cli", "hitl_group"]

SUPPORTED_DATASTORES = ("local", "s3")


class FlowCliContext(CliContext):
    """A :class:`CliContext` that also carries Metaflow's CLI object (flow, graph...)."""

    def __init__(self, obj: Any) -> None:
        datastore = obj.flow_datastore
        if datastore.TYPE not in SUPPORTED_DATASTORES:
            raise ConfigError(
                f"this release keeps gates in the local or S3 datastore; this flow uses "
                f"{datastore.TYPE!r}. Run with --datastore=local or --datastore=s3."
            )
        root = datastore.datastore_root
        super().__init__(store=lambda: store_for_datastore_root(root), flow=obj.flow.name)
        self.obj = obj


@click.group()
def cli() -> None:
    """Metaflow CLI plugin entry point."""


#: ``python flow.py hitl``; the registered glue (``metaflow_extensions/hitl/plugins/hitl_cli.py``)
#: defers to it.
hitl_group = build_hitl_group(FlowCliContext)
hitl_group.add_command(notify_command)
hitl_group.add_command(await_gate_command)
cli.add_command(hitl_group)
