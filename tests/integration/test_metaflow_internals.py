"""On a Metaflow whose internals changed, ``argo-workflows create`` fails closed.

The dependency is ``metaflow>=2.15`` with no upper bound (README *Compatibility*), so the Argo
compile hook checks each private Metaflow API it relies on (listed in
``metaflow_hitl/plugin/metaflow_internals.py``, with file and line in Metaflow 2.19.39's
``metaflow/plugins/argo/argo_workflows.py``: ``ArgoWorkflows`` line 95, ``self.graph`` line
154, ``self._workflow_template = self._compile_workflow_template()`` line 193; 2.15.21: lines
88, 144, 179). These tests change those internals in a real ``argo-workflows create
--only-json`` run, the way a new Metaflow release could, and check that nothing is printed as a
template and the error names the change, the installed Metaflow and the tested versions.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from metaflow_hitl.errors import UnsupportedMetaflow
from metaflow_hitl.plugin import metaflow_internals
from metaflow_hitl.plugin.argo_compile import _gated_payload, gates_of
from tests.integration.argo_pods import compile_flow

ROOT = Path(__file__).resolve().parents[2]
FLOWS = Path(__file__).parent / "flows"

#: Run the flow file after changing Metaflow's ArgoWorkflows the way ``CHANGE`` says.
PRELUDE = """
import functools, runpy, sys
from metaflow.plugins.argo.argo_workflows import ArgoWorkflows as A
change = sys.argv.pop(1)
if change == "method-removed":
    del A._compile_workflow_template
elif change == "compiled-elsewhere":
    # A Metaflow that builds the template through another method: the wrapped one never runs.
    build, init = A._compile_workflow_template, A.__init__
    def __init__(self, *args, **kwargs):
        self._compile_workflow_template = functools.partial(build, self)
        init(self, *args, **kwargs)
    A.__init__ = __init__
elif change == "no-payload":
    build = A._compile_workflow_template
    A._compile_workflow_template = lambda self: str(build(self))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _create(env: dict[str, str], tmp_path: Path, change: str) -> subprocess.CompletedProcess:
    shutil.copy(FLOWS / "deploy_flow.py", tmp_path / "deploy_flow.py")
    cmd = [sys.executable, "-c", PRELUDE, change, "deploy_flow.py", "--no-pylint"]
    return subprocess.run(
        [*cmd, "argo-workflows", "create", "--only-json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("method-removed", "ArgoWorkflows has no _compile_workflow_template() method"),
        (
            "compiled-elsewhere",
            "ArgoWorkflows() no longer builds its template with _compile_workflow_template()",
        ),
        ("no-payload", "_compile_workflow_template() returned no payload dict"),
    ],
)
def test_changed_argo_internals_deploy_nothing(s3_env, tmp_path, change, named):
    import metaflow

    done = _create(s3_env, tmp_path, change)
    assert done.returncode != 0, done.stdout
    assert '"kind": "WorkflowTemplate"' not in done.stdout  # no template, gated or not
    out = done.stdout + done.stderr
    assert "@hitl: unsupported Metaflow version" in out, out
    assert named in out, out
    assert f"with Metaflow {metaflow.__version__}" in out
    assert "Nothing was deployed" in out
    assert f'pip install "metaflow=={metaflow_internals.TESTED_METAFLOW[-1]}"' in out
    # no traceback through metaflow-hitl (Metaflow's own code package may print "Exception
    # ignored" for a gzip stream the aborted deploy leaves unclosed, on Python 3.13)
    assert not re.search(r'File "[^"]*metaflow_hitl', out), out


def test_the_unchanged_metaflow_compiles_the_gates(s3_env, tmp_path):
    """The same run without a change: the checks pass on the installed Metaflow."""
    template = compile_flow(s3_env, tmp_path, "deploy_flow.py", gated=True)
    entry = template["spec"]["entrypoint"]
    dag = next(t for t in template["spec"]["templates"] if t["name"] == entry)
    assert "hitl-suspend-gate" in [t["name"] for t in dag["dag"]["tasks"]]


def _graph(nodes: dict[str, Any], sorted_nodes: Any = None) -> Any:
    class Graph(dict):
        pass

    graph = Graph(nodes)
    if sorted_nodes is not None:
        graph.sorted_nodes = sorted_nodes
    return graph


def _node(*decorators: Any) -> Any:
    return SimpleNamespace(decorators=list(decorators))


@pytest.mark.parametrize(
    ("graph", "named"),
    [
        (_graph({"start": _node()}), "no sorted_nodes list"),
        (_graph({"start": SimpleNamespace()}, ["start"]), "step 'start' of the flow graph"),
        (_graph({}, ["start"]), "step 'start' of the flow graph"),
        (
            _graph({"start": _node(SimpleNamespace(name="hitl", attributes=None))}, ["start"]),
            "has no attributes dict",
        ),
    ],
)
def test_graph_shapes_the_hook_cannot_read_are_named(graph, named):
    with pytest.raises(UnsupportedMetaflow, match=re.escape(named)):
        gates_of(graph)


def test_the_real_graph_shape_reads_gates_in_the_flows_order():
    hitl = SimpleNamespace(name="hitl", attributes={"message": "ok?", "timeout": "2h"})
    other = SimpleNamespace(name="retry", attributes={})
    graph = _graph({"b": _node(other, hitl), "a": _node(hitl), "c": _node()}, ["a", "b", "c"])
    assert [(g.step, g.timeout_seconds) for g in gates_of(graph)] == [("a", 7200), ("b", 7200)]


def test_the_tested_versions_are_the_ones_ci_runs_and_the_readme_states():
    compat = (ROOT / "scripts" / "compat.sh").read_text()
    pairs = re.search(r'PAIRS=\$\{HITL_COMPAT_PAIRS-?"([^"]+)"\}', compat)
    assert pairs, "scripts/compat.sh sets PAIRS"
    versions = tuple(p.split(":")[1] for p in pairs.group(1).split())
    assert versions == metaflow_internals.TESTED_METAFLOW
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| Metaflow |"))
    assert ", ".join(versions) in row, row


def test_a_gate_the_compiler_cannot_see_is_refused():
    """The hook runs only for a flow with a gate (a gated step's ``step_init`` installs it):
    a graph in which it finds no ``@hitl`` step means Metaflow keeps decorators elsewhere,
    and deploying would drop the gate."""
    argo = SimpleNamespace(graph=_graph({"start": _node()}, ["start"]))
    with pytest.raises(UnsupportedMetaflow, match="no step of the compiled graph carries"):
        _gated_payload(argo, SimpleNamespace(payload={}))
    with pytest.raises(UnsupportedMetaflow, match="keeps no graph attribute"):
        _gated_payload(SimpleNamespace(), SimpleNamespace(payload={}))
