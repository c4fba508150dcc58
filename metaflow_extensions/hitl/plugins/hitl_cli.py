"""Registration glue for ``python flow.py hitl ...``; see :mod:`metaflow_hitl.plugin.cli`."""

from metaflow_hitl.plugin.cli import cli

__all__ = ["cli"]
