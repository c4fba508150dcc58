"""The exception tree: every HitlError lives in metaflow_hitl.errors, is drawn in its docstring
under its real parent, and has a headline of its own (the headline is what a failed step or
command shows first, so two errors sharing one would read as the same failure)."""

from __future__ import annotations

import importlib
import pkgutil
import re

import metaflow_hitl
from metaflow_hitl import errors
from metaflow_hitl.errors import HitlError


def _import_everything() -> None:
    for info in pkgutil.walk_packages(metaflow_hitl.__path__, "metaflow_hitl."):
        importlib.import_module(info.name)


def _all_subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _all_subclasses(sub)
    return found


def _drawn_tree() -> dict[str, str | None]:
    """``{class: parent}`` as the module docstring draws it (indentation is the nesting)."""
    doc = errors.__doc__ or ""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        m = re.match(r"^(\s*)(?:[│ ]*[├└]── )?([A-Z]\w+)\s{2,}", line)
        if not m or not re.search(r"[├└]── |^\s{4}HitlError", line):
            continue
        depth = len(line) - len(line.lstrip(" │├└─"))
        name = m.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((depth, name))
    return parents


def test_every_hitl_error_is_defined_in_errors() -> None:
    _import_everything()
    elsewhere = sorted(
        f"{c.__module__}.{c.__name__}"
        for c in _all_subclasses(HitlError)
        if c.__module__ != "metaflow_hitl.errors" and not c.__module__.startswith("tests")
    )
    assert elsewhere == []


def test_the_drawing_matches_the_classes() -> None:
    _import_everything()
    drawn = _drawn_tree()
    classes = {c.__name__: c for c in _all_subclasses(HitlError) | {HitlError}}
    classes = {n: c for n, c in classes.items() if c.__module__ == "metaflow_hitl.errors"}
    assert set(drawn) == set(classes)
    for name, parent in drawn.items():
        real = classes[name].__bases__[0].__name__ if name != "HitlError" else None
        assert parent == real, f"{name} is drawn under {parent}, but its parent is {real}"


def test_headlines_are_unique_and_marked() -> None:
    _import_everything()
    seen: dict[str, str] = {}
    for cls in sorted(_all_subclasses(HitlError) | {HitlError}, key=lambda c: c.__name__):
        headline = cls.__dict__.get("headline")
        assert headline, f"{cls.__name__} has no headline of its own"
        assert headline.startswith("@hitl"), headline
        assert headline not in seen, f"{cls.__name__} and {seen[headline]} share {headline!r}"
        seen[headline] = cls.__name__


def test_every_error_is_exported() -> None:
    names = {c.__name__ for c in _all_subclasses(HitlError) | {HitlError}}
    assert names <= set(errors.__all__)
