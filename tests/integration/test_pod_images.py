"""Flows deployed by a machine with metaflow-hitl, run in pods whose image has not got it.

Metaflow's code package carries every installed extension's files (the package's INFO file
lists them and the pod loads them from there: ``metaflow/extension_support/__init__.py``
lines 363-376 in Metaflow 2.19, ``_get_extension_packages`` reading ``ext_info``), and every
``import metaflow`` in the pod imports each extension's step decorators
(``metaflow/plugins/__init__.py`` resolves ``STEP_DECORATORS_DESC`` eagerly). A stock pod
image has only what Metaflow's bootstrap installs: ``boto3`` and ``requests``
(``metaflow/metaflow_environment.py``, ``_get_install_dependencies_cmd``); Metaflow itself
comes from the code package.

Each test compiles a flow with ``argo-workflows create --only-json`` (the deployer: this
venv, with the extension), then runs the pods' own container scripts (code package
downloaded from the loopback S3 server, see ``argo_pods.py``) with another interpreter:

* **stock**: a venv with only ``boto3`` and ``requests``;
* **older**: the stock venv plus a metaflow-hitl of an earlier release (built from commit
  ``fdc6491``, whose registration files imported ``metaflow_hitl`` eagerly, with its version
  set to 0.0.9 and a line that announces its import) and its dependencies.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.integration.argo_pods import Workflow, compile_flow, pods_supported
from tests.integration.venvs import make_venv, pins

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(pods_supported()), reason=str(pods_supported())),
]

ROOT = Path(__file__).resolve().parents[2]
OLDER_COMMIT = "fdc6491"
OLDER_VERSION = "0.0.9"
OLD_IMPORTED = "OLDER metaflow-hitl imported"
#: What a stock Metaflow pod has (``_get_install_dependencies_cmd``), pinned to this venv's.
STOCK = ("boto3", "requests")
OLDER_DEPS = ("metaflow", "jsonschema", "jinja2", "gitpython")
REVIEW_OFF = {"METAFLOW_HITL_REVIEW": "none"}


@pytest.fixture(scope="module")
def stock_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_venv(tmp_path_factory.mktemp("pod") / "stock", *pins(*STOCK))


def _older_wheel(out: Path) -> Path:
    """metaflow-hitl as of :data:`OLDER_COMMIT`, as release :data:`OLDER_VERSION`."""
    src = out / "src"
    src.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", OLDER_COMMIT],
        capture_output=True,
        check=True,
    )
    tar_path = out / "older.tar"
    tar_path.write_bytes(archive.stdout)
    with tarfile.open(tar_path) as tar:
        tar.extractall(src, filter="data")
    pyproject = src / "pyproject.toml"
    pyproject.write_text(
        re.sub(
            r'^version = ".*"$',
            f'version = "{OLDER_VERSION}"',
            pyproject.read_text(),
            count=1,
            flags=re.M,
        )
    )
    init = src / "metaflow_hitl" / "__init__.py"
    text = re.sub(
        r'^__version__ = ".*"$',
        f'__version__ = "{OLDER_VERSION}"',
        init.read_text(),
        count=1,
        flags=re.M,
    )
    init.write_text(text + f"\nimport sys as _sys\nprint({OLD_IMPORTED!r}, file=_sys.stderr)\n")
    dist = out / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("metaflow_hitl-*.whl")
    return wheel


@pytest.fixture(scope="module")
def older_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("pod-older")
    wheel = _older_wheel(base)
    return make_venv(base / "older", str(wheel), *pins(*STOCK, *OLDER_DEPS))


def _pod_env(s3_env: dict[str, str]) -> dict[str, str]:
    """The pod's environment: the workflow's S3 settings, nothing of this venv's."""
    drop = ("METAFLOW_HITL_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    return {k: v for k, v in s3_env.items() if not k.startswith(drop)}


def _probe(python: Path, code: str) -> str:
    done = subprocess.run(  # not from the checkout: ``-c`` puts the cwd on sys.path
        [str(python), "-c", code],
        cwd=python.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout + done.stderr


def test_the_venvs_are_what_they_claim(stock_python: Path, older_python: Path) -> None:
    """The stock venv has no Metaflow and no metaflow-hitl; the older one has 0.0.9."""
    finds = "import importlib.util as u; print([u.find_spec(m) is not None for m in {!r}])"
    mods = ("metaflow", "metaflow_hitl", "jsonschema", "jinja2", "git", "boto3", "requests")
    assert _probe(stock_python, finds.format(mods)).strip() == str(
        [False, False, False, False, False, True, True]
    )
    version = "from importlib import metadata; print(metadata.version('metaflow-hitl'))"
    assert _probe(older_python, version).strip() == OLDER_VERSION


def _run_plain(wf: Workflow) -> list[str]:
    outputs = []
    start = wf.run("start")
    assert start.returncode == 0, start.output
    assert start.task_id
    outputs.append(start.output)
    end = wf.run("end", inputs=wf.path("start", start.task_id))
    assert end.returncode == 0, end.output
    outputs.append(end.output)
    return outputs


@pytest.mark.parametrize("image", ["stock", "older"])
def test_a_flow_without_gates_runs_in_an_image_without_metaflow_hitl(
    image: str,
    request: pytest.FixtureRequest,
    s3_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """Issue 18: the extension's files travel in every code package; they must not need
    metaflow-hitl (nor its dependencies), and an older metaflow-hitl in the image is not
    imported for a flow that does not use it."""
    python = request.getfixturevalue(f"{image}_python")
    template = compile_flow({**s3_env, **REVIEW_OFF}, tmp_path, "plain_flow.py", gated=True)
    names = {t["name"] for t in template["spec"]["templates"]}
    assert not [n for n in names if n.startswith("hitl-")], names
    wf = Workflow(
        template, "plainflow-p0d1x", tmp_path / "pods", env=_pod_env(s3_env), python=python
    )
    outputs = _run_plain(wf)
    assert "END plain" in outputs[-1]
    for out in outputs:
        assert "metaflow_hitl" not in out
        assert "Traceback" not in out
        assert OLD_IMPORTED not in out


def test_a_gated_flow_in_a_stock_image_says_what_the_image_needs(
    stock_python: Path, s3_env: dict[str, str], tmp_path: Path
) -> None:
    """The code package carries metaflow_hitl (``add_to_package``) but not jsonschema, jinja2
    or gitpython: every task of a gated flow fails before its code runs, with one message
    naming the packages and the pip command, not a traceback from Metaflow's plugin loader."""
    template = compile_flow({**s3_env, **REVIEW_OFF}, tmp_path, "deploy_flow.py", gated=True)
    wf = Workflow(
        template, "deployflow-st0ck", tmp_path / "pods", env=_pod_env(s3_env), python=stock_python
    )
    start = wf.run("start")
    assert start.returncode != 0
    out = start.output
    assert "@hitl" in out
    assert "lacks jsonschema, jinja2, gitpython" in out
    assert 'pip install "metaflow-hitl[github,s3]==' in out
    assert "Flows without @hitl need none of them" in out
    assert "Cannot locate step_decorator plugin" not in out
    assert "ModuleNotFoundError" not in out
    assert "Traceback" not in out


def test_a_gated_flow_runs_the_deployers_release_over_an_older_one_in_the_image(
    older_python: Path, s3_env: dict[str, str], tmp_path: Path
) -> None:
    """The code package's ``metaflow_hitl`` and registration files win over the image's older
    release, which is never imported: the notify pod records the request with the deployer's
    code. Metaflow 2.16+ runs a task with ``PYTHONPATH`` set to the package's code directory
    (``metaflow/packaging_sys/__init__.py`` line 894 in 2.19, ``.mf_code``), which Python
    puts before site-packages; earlier releases extract the package beside the flow file,
    ``sys.path[0]``. (Were the image's copy imported anyway, the glue refuses to mix releases:
    ``tests/unit/test_glue_imports.py``.)"""
    template = compile_flow({**s3_env, **REVIEW_OFF}, tmp_path, "deploy_flow.py", gated=True)
    wf = Workflow(
        template, "deployflow-0lder", tmp_path / "pods", env=_pod_env(s3_env), python=older_python
    )
    start = wf.run("start")
    assert start.returncode == 0, start.output
    assert start.task_id
    notify = wf.run("hitl-notify-gate", inputs=wf.path("start", start.task_id))
    assert notify.returncode == 0, notify.output
    assert "is waiting for approval" in notify.output
    for out in (start.output, notify.output):
        assert OLD_IMPORTED not in out
        assert "Refusing to mix releases" not in out
