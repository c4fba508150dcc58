"""The built packages are what a company can adopt: the sdist builds the wheel, the wheel
carries the license and metadata without placeholders, its long description renders on the
package index without broken links, it installs into a clean venv where Metaflow finds the
extension, and the documented uninstall leaves flows without gates working.

Metadata fields: the core metadata spec (Metadata-Version 2.4,
https://packaging.python.org/en/latest/specifications/core-metadata/): ``License-Expression``
(an SPDX expression) and ``License-File`` (a path under ``.dist-info/licenses/``, PEP 639).
PyPI renders a ``text/markdown`` description without a base URL, so a relative link or an
in-page anchor there leads nowhere: every link must be absolute.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
#: After uninstalling: Metaflow imports, ``@hitl`` does not.
NO_HITL = """
import metaflow
try:
    from metaflow import hitl
except ImportError:
    print("NO-HITL")
"""


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build``: the sdist, then the wheel built from the unpacked sdist."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (found,) = dist.glob("metaflow_hitl-*.whl")
    return found


def _metadata(wheel: Path) -> tuple[list[str], str]:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    return names, meta


def _headers(meta: str) -> tuple[list[tuple[str, str]], str]:
    head, _, body = meta.partition("\n\n")
    fields = [tuple(line.split(": ", 1)) for line in head.splitlines() if ": " in line]
    return [(k, v) for k, v in fields], body


def test_the_wheel_carries_the_license_and_no_placeholder_metadata(wheel: Path) -> None:
    names, meta = _metadata(wheel)
    fields, _ = _headers(meta)
    values = dict(fields)
    assert values["License-Expression"] == "Apache-2.0"
    assert [v for k, v in fields if k == "License-File"] == ["LICENSE"]
    (licence,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    with zipfile.ZipFile(wheel) as zf:
        shipped = zf.read(licence).decode()
    assert shipped == (ROOT / "LICENSE").read_text()
    assert shipped.lstrip().startswith("Apache License\n                           Version 2.0")
    assert "END OF TERMS AND CONDITIONS" in shipped  # the full text, not a pointer to it
    # no placeholder anywhere in the metadata headers; URLs only if real (there are none yet)
    head = "\n".join(f"{k}: {v}" for k, v in fields)
    for placeholder in ("example.invalid", "example.com", "your-org", "TODO", "0000000"):
        assert placeholder not in head, placeholder
    for key, value in fields:
        if key in ("Project-URL", "Home-page", "Download-URL"):
            url = value.split(", ", 1)[-1]
            assert re.match(r"https://[a-z0-9.-]+\.[a-z]{2,}/", url), (key, value)
            assert not re.search(r"example|invalid|localhost", url), (key, value)
    # Metaflow: a lower bound only (README *Compatibility*)
    (metaflow,) = [v for k, v in fields if k == "Requires-Dist" and v.startswith("metaflow")]
    assert metaflow == "metaflow>=2.15", metaflow
    # Apache-2.0 section 4(d): a NOTICE is needed only to pass on one the work includes; the
    # wheel holds this project's code alone (no vendored third-party files), so none is.
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {
        "metaflow_hitl",
        "metaflow_extensions",
        wheel.name.split("-py3")[0] + ".dist-info",
    }, tops
    assert not [n for n in names if "NOTICE" in n]


def test_the_long_description_renders_without_relative_links(wheel: Path) -> None:
    from markdown_it import MarkdownIt

    _, meta = _metadata(wheel)
    fields, body = _headers(meta)
    assert dict(fields)["Description-Content-Type"] == "text/markdown"
    assert body.strip() == (ROOT / "README.md").read_text().strip()
    md = MarkdownIt("commonmark").enable("table")
    targets = []
    for token in md.parse(body):
        for child in [token, *(token.children or [])]:
            if child.type == "link_open":
                targets.append(str(child.attrs.get("href")))
            elif child.type == "image":
                targets.append(str(child.attrs.get("src")))
            elif child.type in ("html_inline", "html_block"):
                targets += re.findall(r"(?:href|src)=[\"']([^\"']+)", child.content)
    assert targets, "the README links to Metaflow's docs at least"
    broken = [t for t in targets if not re.match(r"(https?://|mailto:)", t)]
    assert broken == [], f"relative links or anchors break on the package index: {broken}"


def test_the_sdist_holds_what_the_readme_names(dist: Path) -> None:
    import tarfile

    (sdist,) = dist.glob("metaflow_hitl-*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"`((?:docs|examples|github_action)/[^`\s]+|action\.yml)`", readme))
    assert named, "the README names its docs by path"
    for path in sorted(named):
        if path.endswith("/"):
            assert any(n.startswith(path) for n in names), path
        else:
            assert path in names, f"{path} is named by the README but not in the sdist"
    assert {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml"} <= names


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
    # The documented uninstall (docs/operations.md, *Uninstalling*), in this venv: Metaflow
    # and flows without gates keep working, and @hitl is gone.
    doc = (ROOT / "docs" / "operations.md").read_text()
    (uninstall,) = [c for c in re.findall(r"(?m)^ *(pip uninstall .*)$", doc)]
    bin_dir = env_dir / "bin"
    gone = subprocess.run(
        ["bash", "-c", uninstall],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert gone.returncode == 0, gone.stderr
    after = subprocess.run(
        [str(py), "-c", NO_HITL],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert after.returncode == 0, after.stderr
    assert "NO-HITL" in after.stdout
    assert not (bin_dir / "metaflow-hitl").exists()
