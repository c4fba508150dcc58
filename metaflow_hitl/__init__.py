"""metaflow-hitl: human approval gates for Metaflow pipelines.

The package is layered: a pure core (:mod:`~metaflow_hitl.records`,
:mod:`~metaflow_hitl.policy`, :mod:`~metaflow_hitl.gates`, :mod:`~metaflow_hitl.input_schema`,
:mod:`~metaflow_hitl.slash_commands`, :mod:`~metaflow_hitl.errors`...) that imports no Metaflow,
GitHub, boto3 or kubernetes; ports (:mod:`~metaflow_hitl.ports`); adapters
(:mod:`~metaflow_hitl.stores`, :mod:`~metaflow_hitl.cli`); and the Metaflow glue
(:mod:`~metaflow_hitl.plugin`, registered from ``metaflow_extensions/hitl``).

In a flow, use the decorator: ``from metaflow import hitl``.
"""

from __future__ import annotations

from metaflow_hitl.errors import (
    AlreadyDecided,
    ConfigError,
    DeadlinePassed,
    DecisionRefused,
    GateNotFound,
    GateRefError,
    HitlError,
    InvalidInput,
    MessageRenderError,
    NotAllowed,
    RecordError,
    StoreError,
    TooLate,
)
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.records import FORMAT_VERSION, Actor, Decision, Request, Vote

__version__ = "0.1.0"

__all__ = [
    "FORMAT_VERSION",
    "Actor",
    "AlreadyDecided",
    "ConfigError",
    "DeadlinePassed",
    "Decision",
    "DecisionRefused",
    "GateId",
    "GateNotFound",
    "GateRefError",
    "HitlError",
    "InvalidInput",
    "MessageRenderError",
    "NotAllowed",
    "RecordError",
    "Request",
    "StoreError",
    "TooLate",
    "Vote",
    "__version__",
]
