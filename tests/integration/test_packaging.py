"""The built wheel installs into a clean venv and Metaflow finds the extension."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    (found,) = out.glob("metaflow_hitl-*.whl")
    return found


def test_wheel_has_top_level_txt_templates_and_no_self_dependency(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top = zf.read(next(n for n in names if n.endswith("top_level.txt"))).decode().split()
        meta = zf.read(next(n for n in names if n.endswith("METADATA"))).decode()
    # Metaflow discovers extensions through top_level.txt listing metaflow_extensions.
    assert "metaflow_extensions" in top
    assert "metaflow_extensions/__init__.py" not in names  # Metaflow refuses one
    assert "metaflow_extensions/hitl/plugins/mfextinit_hitl.py" in names
    assert "metaflow_hitl/render/templates/__init__.py" in names
    assert "metaflow_hitl/render/templates/card.html.j2" in names
    assert "metaflow_extensions/hitl/plugins/cards/mfextinit_hitl.py" in names
    assert "metaflow_extensions/hitl/plugins/hitl_card.py" in names
    assert "metaflow_hitl/py.typed" in names
    # An extra that requires metaflow-hitl itself makes Metaflow's loader see a cycle.
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert not [r for r in requires if "metaflow-hitl" in r.lower()], requires
    assert any("Provides-Extra: github" in line for line in meta.splitlines())


def test_wheel_installs_and_metaflow_finds_the_plugin(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        capture_output=True,
        text=True,
    )
    probe = textwrap.dedent(
        """
        from metaflow import hitl, hitl_version
        from metaflow_extensions.hitl.plugins.hitl_decorator import hitl as old_path
        import importlib.resources as res
        import metaflow_hitl
        assert hitl_version() == metaflow_hitl.__version__
        assert hitl.args == old_path.args  # the same decorator class behind both paths
        assert res.files("metaflow_hitl.render.templates").joinpath("__init__.py").is_file()
        # render from the installed copy of the templates
        import metaflow_hitl.render.documents as rendering
        from metaflow_hitl.gate_id import GateId
        from metaflow_hitl.spec import GateSpec
        from metaflow_hitl.timestamps import utc_now
        request = GateSpec.from_options(message="ship?", input_schema={"t": "str"}).request_for(
            GateId("F", "1", "gate"), message="ship?", started_by="alice", runtime="local",
            now=utc_now(), store="/s")
        text = rendering.render_approval_file(request)
        assert "ship?" in text and request.digest() in text
        env = rendering.template_environment()
        source = env.loader.get_source(env, "approval.md.j2")[1]
        assert "site-packages" in source, source
        # the hitl card type is registered (plugins/cards) and renders from the installed template
        from metaflow.plugins import CARDS
        from metaflow_extensions.hitl.plugins.hitl_card import HitlCard
        from metaflow_hitl.plugin.card import render_card_html
        assert [c for c in CARDS if c.type == "hitl"] == [HitlCard], [c.type for c in CARDS]
        html = render_card_html(request.to_dict(), None, pathspec="F/1/gate/2")
        assert "No decision recorded" in html and "ship?" in html
        print("OK", metaflow_hitl.__file__)
        """
    )
    done = subprocess.run(
        [str(py), "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert str(env_dir) in done.stdout  # imported from the venv, not from the checkout
    console = subprocess.run(
        [str(env_dir / "bin" / "metaflow-hitl"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert console.returncode == 0, console.stderr
    assert "metaflow-hitl" in console.stdout
