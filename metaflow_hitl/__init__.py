"""metaflow-hitl: human approval gates for Metaflow pipelines.

The layout is the architecture:

* the **top level** is the pure core and nothing else — records and their formats
  (:mod:`~metaflow_hitl.records`), who may decide (:mod:`~metaflow_hitl.policy`), the life of a
  gate (:mod:`~metaflow_hitl.gates`), what follows a decision (:mod:`~metaflow_hitl.settle`),
  the comment grammar (:mod:`~metaflow_hitl.slash_commands`), every hidden tag
  (:mod:`~metaflow_hitl.markers`), every error (:mod:`~metaflow_hitl.errors`), the ports
  adapters implement (:mod:`~metaflow_hitl.ports`) — importing no Metaflow, GitHub, git, boto3
  or kubernetes; with it :mod:`~metaflow_hitl.index` (the read cache) and
  :mod:`~metaflow_hitl.render` (everything people read, from overridable templates);
* **one folder per technology**: :mod:`~metaflow_hitl.stores`, :mod:`~metaflow_hitl.review`
  (git), :mod:`~metaflow_hitl.github`, :mod:`~metaflow_hitl.argo`,
  :mod:`~metaflow_hitl.notify`;
* **front ends**: :mod:`~metaflow_hitl.cli` (``metaflow-hitl``, the ``hitl`` commands) and
  :mod:`~metaflow_hitl.plugin` (the Metaflow glue, registered from ``metaflow_extensions/hitl``).

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

__version__ = "0.2.0"

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
