"""Registration glue for ``python flow.py hitl ...``; see :mod:`metaflow_hitl.plugin.cli`.

Metaflow imports every CLI plugin to list the commands (``python flow.py --help``,
``metaflow/cli_components/utils.py::LazyPluginCommandCollection.list_commands``), so the
``hitl`` group here is a name and a help line; its subcommands and its callback come from
the implementation when ``hitl`` is actually run.
"""

from typing import Any

from metaflow._vendor import click

from metaflow_extensions.hitl.plugins.hitl_loader import implementation

__all__ = ["cli"]

HELP = "Human approval gates: list, show, approve, reject, audit."


class _DeferredGroup(click.Group):
    """The ``hitl`` group, whose commands are imported from metaflow-hitl on first use."""

    def _real(self) -> Any:
        return implementation("plugin.cli", "the hitl command was run").hitl_group

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self._real().list_commands(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return self._real().get_command(ctx, cmd_name)

    def invoke(self, ctx: Any) -> Any:
        self.callback = self._real().callback  # sets ctx.obj to the hitl CLI context
        return super().invoke(ctx)


@click.group()
def cli() -> None:
    """Metaflow CLI plugin entry point."""


cli.add_command(_DeferredGroup(name="hitl", help=HELP, short_help=HELP))
