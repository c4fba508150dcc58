"""Names added to the ``metaflow`` namespace by metaflow-hitl.

The version is a literal here, pinned equal to ``metaflow_hitl.__version__`` and
``pyproject.toml`` by ``tests/unit/test_glue_imports.py``: Metaflow imports this module on
every ``import metaflow``, also in pods whose image lacks metaflow-hitl, so it imports
nothing.
"""

__mf_extensions__ = "hitl"
#: The metaflow-hitl release this glue belongs to (the deployer's, inside a code package).
__version__ = "0.2.0"


def hitl_version() -> str:
    """The metaflow-hitl release of this extension (the deployer's, inside a code package)."""
    return __version__
