"""The lint the pre-commit hook runs is the lint ``scripts/test.sh`` runs: one ruff version."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_pre_commit_ruff_rev_is_the_dev_extra_pin() -> None:
    # (no tomllib: the suite also runs on Python 3.10)
    versions = re.findall(r'^\s*"ruff==([^"; ]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert len(versions) == 1, "pyproject's dev extra must pin ruff exactly (ruff==X.Y.Z)"
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    (ruff,) = [r for r in config["repos"] if r["repo"].endswith("/ruff-pre-commit")]
    assert ruff["rev"] == f"v{versions[0]}"
    assert {h["id"] for h in ruff["hooks"]} == {"ruff", "ruff-format"}
