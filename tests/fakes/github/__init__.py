"""A stateful GitHub REST API on loopback, held to GitHub's OpenAPI description.

Import what tests need from here: ``from tests.fakes.github import Clock, FakeGitHub,
SKIP_REASON, SPEC_FILE``. The underscored modules are the fake's insides (the OpenAPI contract,
request dispatch, the world's state, rendering, and the operations by area); ``api`` is
:class:`FakeGitHub` itself. See ``tests/fakes/README.md``.
"""

from __future__ import annotations

from ._state import Clock
from .api import (
    OPERATIONS,
    SKIP_REASON,
    SPEC_FILE,
    ContractViolation,
    FakeGitHub,
    LoggedRequest,
    SpecMissing,
)

__all__ = [
    "OPERATIONS",
    "SKIP_REASON",
    "SPEC_FILE",
    "Clock",
    "ContractViolation",
    "FakeGitHub",
    "LoggedRequest",
    "SpecMissing",
]
