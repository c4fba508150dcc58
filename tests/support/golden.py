"""The one golden-file check: compare text with ``tests/golden/<name>``, or rewrite it.

``HITL_REGEN_GOLDEN=1`` rewrites every golden file a run compares (review the diff before
committing it). A missing golden file fails; it is never created silently.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

#: Where the golden files live: ``tests/golden/<area>/<file>``.
GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def check_golden(name: str, text: str) -> None:
    """Fail with a unified diff unless ``text`` is the content of ``tests/golden/<name>``.

    Parameters
    ----------
    name
        The path below ``tests/golden/``, e.g. ``"rendering/pr_body.md"``.
    text
        What the code under test produced (compared exactly: no newline translation).
    """
    path = GOLDEN / name
    if os.environ.get("HITL_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; create it with HITL_REGEN_GOLDEN=1")
    with open(path, encoding="utf-8", newline="") as fh:
        expected = fh.read()
    if text != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"golden/{name}",
                "produced",
            )
        )
        pytest.fail(f"{name} differs from its golden file (HITL_REGEN_GOLDEN=1 rewrites):\n{diff}")
