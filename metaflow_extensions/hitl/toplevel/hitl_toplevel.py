"""Names added to the ``metaflow`` namespace by metaflow-hitl."""

from metaflow_hitl import __version__

__mf_extensions__ = "hitl"


def hitl_version() -> str:
    """The installed metaflow-hitl version."""
    return __version__
