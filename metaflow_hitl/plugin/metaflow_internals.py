"""Every private Metaflow API metaflow-hitl uses, in one place; the compile hook's are checked.

Besides the Argo compile hook's internals (below), the package uses:

- ``metaflow._vendor.click`` (:data:`click`): Metaflow's CLI is built with its vendored click,
  so the ``hitl`` command group it mounts, and our console script beside it, use the same one;
- ``metaflow.util.decompress_list`` (:func:`decompress_list`): how Metaflow's ``step``
  command encodes ``--input-paths`` (the Argo notify task reads them the same way);
- ``node.is_inside_foreach`` (:func:`inside_foreach`), with ``split_parents`` and the parents'
  ``type`` as the fallback of older Metaflow;
- ``current.origin_run_id`` (:func:`origin_run_id`): the run a ``resume`` cloned from;
- the local runtime's ``CLIArgs`` (``commands``, ``command_args``, ``command_options``,
  ``get_args``, ``task.step``) and ``ctx.saved_args`` of Metaflow's ``start`` group: used by
  :mod:`metaflow_hitl.plugin.runtime_wait` (wait before a remote launch) and
  :mod:`metaflow_hitl.plugin.setup_checks` (which command is running).

(``metaflow_extensions/hitl`` imports ``metaflow._vendor.click`` directly: those registration
modules must import nothing of ``metaflow_hitl``.)

The Argo compile hook:

Metaflow gives a step decorator no public way to add tasks to the Argo workflow it compiles, so
:mod:`metaflow_hitl.plugin.argo_compile` uses these internals (Metaflow 2.19.39,
``metaflow/plugins/argo/argo_workflows.py``):

- ``ArgoWorkflows`` (line 95), whose ``__init__`` keeps the flow graph as ``self.graph``
  (line 154) and builds the template with ``self._compile_workflow_template()`` (line 193,
  defined at line 801); the hook wraps that method;
- the object it returns has a ``payload`` dict (the WorkflowTemplate), which ``--only-json``,
  ``deploy()`` and the Deployer all serialise;
- the graph lists its steps in ``sorted_nodes``, each node holds its decorators in
  ``decorators``, each with ``name`` and ``attributes``.

The dependency on Metaflow is a lower bound only (``metaflow>=2.15``), so a newer Metaflow may
change any of these. Each is checked where it is used and a change raises
:class:`~metaflow_hitl.errors.UnsupportedMetaflow` naming what is missing, the installed
Metaflow and the versions tested, so ``argo-workflows create`` deploys nothing rather than a
gated step without its gate. Local runs, the CLI and the Action use no such internals.
"""

from __future__ import annotations

from typing import Any

from metaflow._vendor import click

from metaflow_hitl.errors import UnsupportedMetaflow

__all__ = [
    "TESTED_METAFLOW",
    "argo_workflows_class",
    "click",
    "decompress_list",
    "gated_steps",
    "inside_foreach",
    "metaflow_version",
    "origin_run_id",
    "unsupported",
]

#: The Metaflow versions CI tests (``scripts/compat.sh`` and README *Compatibility*), besides
#: the newest one the package index serves.
TESTED_METAFLOW = ("2.15.21", "2.17.5", "2.19.39")

_COMPILE = "_compile_workflow_template"


def metaflow_version() -> str:
    """The installed Metaflow's version, or ``"unknown"``."""
    try:
        from importlib import metadata

        return metadata.version("metaflow")
    except Exception:  # an unusual install (vendored, no dist-info): still say something
        return "unknown"


def unsupported(what: str) -> UnsupportedMetaflow:
    """The error for a Metaflow whose internal ``what`` changed."""
    import metaflow_hitl

    return UnsupportedMetaflow(
        f"metaflow-hitl {metaflow_hitl.__version__} cannot add its gates to the Argo workflow "
        f"with Metaflow {metaflow_version()}: {what}. Nothing was deployed (a gated step is "
        f"never deployed without its gate). Tested with Metaflow {', '.join(TESTED_METAFLOW)} "
        "and the newest Metaflow at release time.",
        hint=(
            f'Install a tested Metaflow (pip install "metaflow=={TESTED_METAFLOW[-1]}") or a '
            "metaflow-hitl release that supports this Metaflow; local runs are not affected."
        ),
    )


def argo_workflows_class() -> Any:
    """Metaflow's ``ArgoWorkflows`` class, checked to have the method the hook wraps.

    Raises
    ------
    UnsupportedMetaflow
        If the module, the class or its ``_compile_workflow_template`` is missing.
    """
    try:
        from metaflow.plugins.argo import argo_workflows
    except ImportError as exc:
        what = f"metaflow.plugins.argo.argo_workflows cannot be imported ({exc})"
        raise unsupported(what) from None
    cls = getattr(argo_workflows, "ArgoWorkflows", None)
    if not isinstance(cls, type):
        raise unsupported("metaflow.plugins.argo.argo_workflows has no ArgoWorkflows class")
    if not callable(getattr(cls, _COMPILE, None)):
        raise unsupported(f"ArgoWorkflows has no {_COMPILE}() method")
    return cls


def gated_steps(graph: Any) -> list[tuple[str, dict[str, Any]]]:
    """``(step name, @hitl attributes)`` for each gated step of ``graph``, in the flow's order.

    Raises
    ------
    UnsupportedMetaflow
        If the graph or its nodes do not have the shape described in the module docstring.
    """
    names = getattr(graph, "sorted_nodes", None)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise unsupported("the flow graph has no sorted_nodes list of step names")
    out = []
    for name in names:
        try:
            decorators = list(graph[name].decorators)
        except (KeyError, TypeError, AttributeError):
            raise unsupported(f"step {name!r} of the flow graph has no decorators list") from None
        for deco in decorators:
            if getattr(deco, "name", None) != "hitl":
                continue
            attributes = getattr(deco, "attributes", None)
            if not isinstance(attributes, dict):
                raise unsupported(f"the @hitl decorator of step {name!r} has no attributes dict")
            out.append((name, attributes))
    return out


def decompress_list(text: str) -> list[str]:
    """The pathspecs of a ``--input-paths`` value, decoded as Metaflow's ``step`` command does."""
    from metaflow.util import decompress_list as decode

    return list(decode(text))


def inside_foreach(graph: Any, step_name: str) -> bool:
    """Whether ``step_name`` runs inside a foreach (at any depth)."""
    node = graph[step_name]
    inside = getattr(node, "is_inside_foreach", None)
    if inside is None:  # older Metaflow: derive it from the enclosing splits
        inside = any(graph[p].type == "foreach" for p in node.split_parents)
    return bool(inside)


def origin_run_id(current: Any) -> str | None:
    """The run a ``resume`` cloned from (``None`` for a fresh run)."""
    value = getattr(current, "origin_run_id", None)
    return str(value) if value else None
