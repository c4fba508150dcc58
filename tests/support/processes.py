"""What a Python child process needs to import this checkout's ``tests`` package."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root (the folder holding ``tests/``).
ROOT = Path(__file__).resolve().parents[2]


def python_path(*folders: Path | str) -> str:
    """A ``PYTHONPATH`` value: ``folders`` (default: the repository root) before the current one.

    Use it in a child's environment instead of editing ``sys.path`` inside the child's code.
    """
    entries = [str(f) for f in folders or (ROOT,)]
    current = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join([*entries, *([current] if current else [])])
