"""Gate ids: one readable, deterministic name per (flow, run, step).

A gate id is ``<flow>/<run_id>/<step>``, e.g. ``TrainAndDeploy/1732/gate``. The same task
retried, or re-run by a resumed Metaflow run that reuses its origin's gate, computes the same
id and so finds its existing request instead of opening a new one.

Every component is checked before it can reach a file path, an S3 key or a git branch name:
flow and step names are Python identifiers (Metaflow requires that); run ids are the
characters Metaflow and Argo produce (letters, digits, ``.``, ``_``, ``-``), never ``.`` or
``..``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from metaflow_hitl.errors import GateRefError

__all__ = ["GateId", "is_flow_name", "parse_gate_ref"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_RUN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,252}")


def _check(kind: str, value: str, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value) or value in {".", ".."}:
        raise GateRefError(f"{kind} {value!r} is not allowed in a gate id: {rule}.")
    return value


@dataclass(frozen=True, order=True)
class GateId:
    """The identity of one gate.

    Parameters
    ----------
    flow
        The flow class name.
    run_id
        The Metaflow run id (``1732`` locally, ``argo-<workflow>`` on Argo).
    step
        The gated step's name.
    """

    flow: str
    run_id: str
    step: str

    def __post_init__(self) -> None:
        _check("flow name", self.flow, _IDENT, "use a Python identifier")
        _check("run id", self.run_id, _RUN, "use letters, digits, '.', '_' and '-' only")
        _check("step name", self.step, _IDENT, "use a Python identifier")

    def __str__(self) -> str:
        return f"{self.flow}/{self.run_id}/{self.step}"

    @property
    def short(self) -> str:
        """``RUN/STEP``: how a gate is named inside its own flow's CLI."""
        return f"{self.run_id}/{self.step}"

    @property
    def slug(self) -> str:
        """A single path component (for branch names): ``flow--run--step``."""
        return f"{self.flow}--{self.run_id}--{self.step}"

    @classmethod
    def parse(cls, text: str) -> GateId:
        """Parse a full gate id ``FLOW/RUN/STEP``.

        Raises
        ------
        GateRefError
            If the text is not three valid components.
        """
        return _parse_full(text) if isinstance(text, str) else parse_gate_ref(text, flow=None)


def is_flow_name(text: str) -> bool:
    """Whether ``text`` can be a gate's flow name (so a ``--flow`` filter never becomes a path
    or key trick)."""
    return isinstance(text, str) and _IDENT.fullmatch(text) is not None


@functools.lru_cache(maxsize=1 << 16)
def _parse_full(text: str) -> GateId:
    """:meth:`GateId.parse`, remembered: reading a store parses each gate's id from each of
    its records (ids are immutable, so the cache is safe; errors are not cached)."""
    return parse_gate_ref(text, flow=None)


def parse_gate_ref(text: str, *, flow: str | None) -> GateId:
    """Parse a gate reference as a user types it.

    Parameters
    ----------
    text
        ``FLOW/RUN/STEP``, or ``RUN/STEP`` when ``flow`` is known (inside a flow's CLI).
    flow
        The flow the CLI runs for, or ``None`` outside a flow.

    Returns
    -------
    GateId

    Raises
    ------
    GateRefError
        With the accepted forms, when the text fits none of them.
    """
    parts = str(text).strip().split("/")
    if len(parts) == 3:
        return GateId(*parts)
    if len(parts) == 2 and flow is not None:
        return GateId(flow, parts[0], parts[1])
    forms = "FLOW/RUN/STEP" + (" or RUN/STEP" if flow is not None else "")
    raise GateRefError(
        f"{text!r} is not a gate reference; use {forms} (e.g. TrainAndDeploy/1732/gate).",
        hint="List the gates with: hitl list --all",
    )
