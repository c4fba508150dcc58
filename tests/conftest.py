"""What every test shares: its tier, and the one Hypothesis profile.

Tiers
-----
Each test gets exactly one tier marker, from the folder it lives in (never by hand):

``pure``      ``tests/unit``: in-process, no servers, no Metaflow runs; the fast loop
              (``bash scripts/test.sh --fast`` runs only these).
``contract``  ``tests/contract``: one port or adapter against its real counterpart or a
              stateful fake (moto S3, git remotes, the GitHub / Argo / Kubernetes fakes).
``e2e``       ``tests/integration``: real Metaflow runs, deployments and Actions in
              subprocesses.

A test file anywhere else under ``tests/`` is a collection error, so a new folder has to be
given a tier here first. Select a tier with ``-m``: ``pytest -m pure``, ``pytest -m "not e2e"``.

Hypothesis
----------
One profile, ``hitl``, loaded for the whole suite: reproducible (``derandomize``, no example
database), no per-example deadline (the machine is shared, timings are noise), and the two
health checks our strategies trip on purpose suppressed. Tests set only ``max_examples`` (and
rarely an extra health check) with ``@settings``; everything else comes from the profile.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

TESTS = Path(__file__).resolve().parent

#: Folder under ``tests/`` -> the one tier marker its tests get.
TIERS = {"unit": "pure", "contract": "contract", "integration": "e2e"}

settings.register_profile(
    "hitl",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.load_profile("hitl")


def tier_of(path: Path) -> str:
    """The tier marker of the test file at ``path`` (a ``UsageError`` outside a tier folder)."""
    try:
        folder = path.resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        folder = ""
    if folder not in TIERS:
        raise pytest.UsageError(
            f"{path} is not in a test tier folder ({', '.join(f'tests/{f}' for f in TIERS)}); "
            "move it into one, or add its folder to TIERS in tests/conftest.py"
        )
    return TIERS[folder]


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(tier_of(item.path))
