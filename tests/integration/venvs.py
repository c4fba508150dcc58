"""Virtual environments other than the suite's own, for runs "as another machine has it"."""

from __future__ import annotations

import subprocess
import venv
from importlib import metadata
from pathlib import Path


def pins(*dists: str) -> list[str]:
    """``dist==version`` for each distribution, at the version this venv has (pip's cache)."""
    return [f"{d}=={metadata.version(d)}" for d in dists]


def make_venv(path: Path, *requirements: str) -> Path:
    """A new venv at ``path`` with ``requirements`` installed; returns its interpreter."""
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    python = path / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return python


def site_packages(python: Path) -> Path:
    """The venv's ``purelib`` directory."""
    done = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=python.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return Path(done.stdout.strip())
