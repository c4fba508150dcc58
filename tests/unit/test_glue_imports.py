"""The registration files under ``metaflow_extensions/hitl`` cost a flow without gates nothing.

Metaflow imports every installed extension's registration modules on each ``import
metaflow`` (``metaflow/plugins/__init__.py`` resolves ``STEP_DECORATORS_DESC`` eagerly, and
``metaflow/cli_components/utils.py``'s ``LazyPluginCommandCollection.list_commands`` imports
the CLI plugins for ``--help``), also in pods that run a code package without metaflow-hitl.
So those modules import nothing of :mod:`metaflow_hitl` nor of its dependencies until a gate,
the ``hitl`` command or the card is used; the version they carry is a literal kept equal to
the package's here. (Pods without the package: ``tests/integration/test_pod_images.py``.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import metaflow  # noqa: F401 - first: Metaflow imports the glue modules while it starts
import pytest

import metaflow_hitl
from metaflow_extensions.hitl.plugins import hitl_loader
from metaflow_extensions.hitl.plugins import hitl_step as glue
from metaflow_extensions.hitl.toplevel import hitl_toplevel
from tests.support.processes import python_path

ROOT = Path(__file__).resolve().parents[2]
#: What a flow without gates must not import: ours and what only ours needs.
HEAVY = ("metaflow_hitl", "jsonschema", "jinja2", "git", "github", "kubernetes")

LOADED = textwrap.dedent(
    """
    import json, sys
    {body}
    heavy = {heavy!r}
    print("LOADED=" + json.dumps(sorted(
        m for m in sys.modules if m.split(".")[0] in heavy)))
    """
)


def _loaded(body: str, cwd: Path, *argv: str) -> list[str]:
    code = LOADED.format(body=body, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("LOADED=")]
    assert line, done.stdout + done.stderr
    return json.loads(line[-1].removeprefix("LOADED="))


def test_the_glue_version_is_the_package_version() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    declared = re.search(r'^version = "([^"]+)"$', pyproject, re.M)
    assert declared
    assert hitl_toplevel.__version__ == metaflow_hitl.__version__ == declared.group(1)
    assert hitl_toplevel.hitl_version() == metaflow_hitl.__version__
    assert hitl_toplevel.__version__ in hitl_loader.pip_command()


def test_import_metaflow_loads_nothing_of_ours_but_the_glue(tmp_path: Path) -> None:
    assert _loaded("import metaflow; assert metaflow.hitl", tmp_path) == []


def test_a_flow_without_gates_loads_nothing_of_ours_for_help(tmp_path: Path) -> None:
    """``--help`` lists every CLI plugin, ``hitl`` included, without importing the group."""
    shutil.copy(ROOT / "benchmarks" / "flows" / "plain_flow.py", tmp_path / "plain_flow.py")
    body = textwrap.dedent(
        """
        import runpy, sys, io, contextlib
        sys.argv = ["plain_flow.py", "--no-pylint", "--help"]
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                runpy.run_path("plain_flow.py", run_name="__main__")
        except SystemExit as stop:
            assert stop.code in (0, None), stop.code
        assert " hitl " in out.getvalue(), out.getvalue()
        """
    )
    assert _loaded(body, tmp_path) == []


def test_decorating_a_step_loads_the_implementation(tmp_path: Path) -> None:
    body = "from metaflow import hitl, step\nhitl(message='ok?')(step(lambda self: None))"
    assert "metaflow_hitl.plugin.decorator" in _loaded(body, tmp_path)


def test_the_implementation_subclasses_the_declaration_and_keeps_its_options() -> None:
    from metaflow_hitl.plugin import decorator as impl

    assert issubclass(impl.HitlDecorator, glue.HitlDecorator)
    assert "defaults" not in vars(impl.HitlDecorator)  # one list of options: the glue's
    assert impl.HitlDecorator.name == glue.HitlDecorator.name == "hitl"
    made = glue.HitlDecorator(attributes={"message": "ship?"}, statically_defined=True)
    assert type(made) is impl.HitlDecorator
    assert made.attributes["message"] == "ship?"
    assert made.attributes["timeout"] == glue.HitlDecorator.defaults["timeout"]


def test_exceptions_import_from_the_old_path() -> None:
    from metaflow_extensions.hitl.plugins.hitl_decorator import HitlException, HitlRejected
    from metaflow_hitl.plugin import decorator as impl

    assert (HitlException, HitlRejected) == (impl.HitlException, impl.HitlRejected)
    from metaflow_extensions.hitl.plugins import hitl_decorator as old_path

    assert old_path.hitl is glue.hitl
    with pytest.raises(AttributeError):
        old_path.NoSuchThing  # noqa: B018


def test_the_old_import_path_works_as_a_flows_first_import(tmp_path: Path) -> None:
    """Metaflow's plugin loader imports the registered module while ``import metaflow``
    runs (``metaflow/extension_support/plugins.py``, ``get_plugin``); a flow whose first line
    imports the old path must not meet a half-initialised module."""
    body = (
        "from metaflow_extensions.hitl.plugins.hitl_decorator import hitl\n"
        "from metaflow import hitl as new; assert hitl is not None and new is not None"
    )
    assert "metaflow_hitl" not in _loaded(body, tmp_path)


def test_a_missing_dependency_names_the_packages_and_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = hitl_loader.importlib.util.find_spec

    def without_jinja(name: str, *args: object) -> object:
        return None if name in ("jinja2", "git") else real(name, *args)

    monkeypatch.setattr(hitl_loader.importlib.util, "find_spec", without_jinja)
    with pytest.raises(hitl_loader.HitlUnavailable) as info:
        hitl_loader.implementation("plugin.decorator", "step 'gate' has a @hitl gate")
    text = str(info.value)
    assert text.startswith("step 'gate' has a @hitl gate, but this Python environment lacks")
    assert "lacks jinja2, gitpython (" in text
    assert hitl_loader.pip_command() in text

    made = glue.HitlDecorator(attributes={"message": "ship?"}, statically_defined=True)
    assert type(made).__name__ == "_Unavailable"  # stands in until step_init says why
    with pytest.raises(hitl_loader.HitlUnavailable, match="lacks jinja2"):
        made.step_init()


def test_another_release_imported_first_is_refused(tmp_path: Path) -> None:
    """An image whose own metaflow_hitl is imported before the code package's (a stale copy
    first on ``sys.path``) is told which two releases met, instead of running a mix."""
    fake = tmp_path / "shadow" / "metaflow_hitl"
    (fake / "plugin").mkdir(parents=True)
    (fake / "__init__.py").write_text('__version__ = "0.0.9"\n')
    (fake / "plugin" / "__init__.py").write_text("")
    (fake / "plugin" / "decorator.py").write_text("")
    code = textwrap.dedent(
        """
        import metaflow
        from metaflow_extensions.hitl.plugins.hitl_loader import HitlUnavailable, implementation
        try:
            implementation("plugin.decorator", "step 'gate' has a @hitl gate")
        except HitlUnavailable as why:
            print("REFUSED", why)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": python_path(fake.parent)},  # first, before site-packages
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "REFUSED step 'gate' has a @hitl gate, but the metaflow-hitl imported here is 0.0.9" in (
        done.stdout
    )
    assert str(fake) in done.stdout
    assert f"deployed with {hitl_toplevel.__version__}" in done.stdout
    assert "Refusing to mix releases" in done.stdout
