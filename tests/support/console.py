"""The ``metaflow-hitl`` console script of this environment, run in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["EXE", "cli", "console"]

EXE = Path(sys.executable).with_name("metaflow-hitl")


def console(*args: str) -> subprocess.CompletedProcess[str]:
    """``metaflow-hitl ARGS`` with stdout and stderr captured apart."""
    return subprocess.run(
        [str(EXE), *args], capture_output=True, text=True, timeout=60, check=False
    )


def cli(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``metaflow-hitl --store STORE ARGS``."""
    return console("--store", str(store), *args)
