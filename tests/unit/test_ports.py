"""Every adapter matches the port it implements, method by method (names, parameter names and
kinds), so a port cannot drift from its implementations again (issue: ReviewBackend.open_review
once matched neither)."""

from __future__ import annotations

import inspect

import pytest

from metaflow_hitl import ports
from metaflow_hitl.github.review_backend import GitHubReviewBackend
from metaflow_hitl.review.git_backend import GitReviewBackend
from metaflow_hitl.stores.local import LocalApprovalStore
from metaflow_hitl.stores.memory import MemoryApprovalStore
from metaflow_hitl.stores.s3 import S3ApprovalStore

PAIRS = [
    (ports.ApprovalStore, LocalApprovalStore),
    (ports.ApprovalStore, S3ApprovalStore),
    (ports.ApprovalStore, MemoryApprovalStore),
    (ports.ReviewBackend, GitReviewBackend),
    (ports.ReviewBackend, GitHubReviewBackend),
]


def _methods(protocol: type) -> list[str]:
    return [
        name
        for name, value in vars(protocol).items()
        if callable(value) and not name.startswith("_")
    ]


def _shape(fn: object) -> list[tuple[str, object]]:
    params = list(inspect.signature(fn).parameters.values())  # type: ignore[arg-type]
    return [(p.name, p.kind) for p in params if p.name != "self"]


@pytest.mark.parametrize(
    ("port", "adapter"), PAIRS, ids=[f"{p.__name__}-{a.__name__}" for p, a in PAIRS]
)
def test_the_adapter_has_every_port_method_with_its_parameters(port: type, adapter: type) -> None:
    methods = _methods(port)
    assert methods, f"{port.__name__} declares no methods?"
    for name in methods:
        implemented = getattr(adapter, name, None)
        assert implemented is not None, f"{adapter.__name__} lacks {port.__name__}.{name}"
        want, got = _shape(getattr(port, name)), _shape(implemented)
        assert got[: len(want)] == want, f"{adapter.__name__}.{name}{got} != port {want}"
        extra = got[len(want) :]
        assert all(
            p.default is not inspect.Parameter.empty
            for p in list(inspect.signature(implemented).parameters.values())[len(want) + 1 :]
        ), f"{adapter.__name__}.{name} requires parameters the port lacks: {extra}"
