"""Read-only views of a task's input artifacts, for rendering gate messages.

``{self.accuracy}`` reads the artifact from the step's input; ``{inputs.train_a.score}`` and
``{inputs[0].score}`` read a join step's inputs. A missing name raises
:class:`~metaflow_hitl.message.MissingArtifact` listing what is there, so the error names
both the wrong name and the right ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from metaflow_hitl.message import MissingArtifact

__all__ = ["ArtifactView", "InputsView"]


def _public(datastore: Any) -> list[str]:
    if datastore is None:
        return []
    return [name for name in datastore if not name.startswith("_")]


class ArtifactView:
    """Attribute access to one task datastore's artifacts, falling back to the flow class.

    Parameters
    ----------
    datastore
        A Metaflow ``TaskDataStore`` opened for reading, or ``None``.
    flow
        The running flow: class-level names (Parameters, properties) resolve through it.
    where
        How error messages name this view (``"the inputs of step 'gate'"``).
    """

    def __init__(self, datastore: Any, flow: Any, where: str) -> None:
        object.__setattr__(self, "_ds", datastore)
        object.__setattr__(self, "_flow", flow)
        object.__setattr__(self, "_where", where)

    def __getattr__(self, name: str) -> Any:
        ds = object.__getattribute__(self, "_ds")
        flow = object.__getattribute__(self, "_flow")
        if name.startswith("_"):
            raise MissingArtifact(name, self._where, _public(ds))
        if ds is not None and name in ds:
            return ds[name]
        if flow is not None and hasattr(type(flow), name):
            return getattr(flow, name)
        raise MissingArtifact(name, self._where, _public(ds))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("artifact views are read-only")


class InputsView(Sequence[ArtifactView]):
    """A join step's inputs: ``inputs.<step>`` or ``inputs[i]``, like Metaflow's ``Inputs``."""

    def __init__(self, datastores: Sequence[Any], flow: Any) -> None:
        self._views = [
            ArtifactView(ds, None, f"the input from step {ds.step_name!r}") for ds in datastores
        ]
        self._by_step = {
            ds.step_name: view for ds, view in zip(datastores, self._views, strict=True)
        }

    def __getattr__(self, name: str) -> ArtifactView:
        by_step = self.__dict__.get("_by_step", {})
        if name in by_step:
            return by_step[name]
        raise MissingArtifact(name, "the join's inputs (by step name)", by_step)

    def __getitem__(self, index: int) -> ArtifactView:  # type: ignore[override]
        return self._views[index]

    def __len__(self) -> int:
        return len(self._views)

    def __iter__(self) -> Iterator[ArtifactView]:
        return iter(self._views)
