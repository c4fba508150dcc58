"""Exit statuses are distinct per error family, documented, and what the commands return.

A script wrapping ``metaflow-hitl`` must tell "fix the command" (2), "no such gate" (3),
"refused" (4), "bad input" (5), "store or network, try again" (6) and "the decision stands, run
sync" (7) apart without reading text. The table lives in :mod:`metaflow_hitl.errors` and in the
README; these tests hold the classes, both tables and the real console script to one another.
Click's own usage errors exit 2 (``click.exceptions.UsageError.exit_code``), the same family as
our :class:`~metaflow_hitl.errors.ConfigError`.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path

import pytest

import metaflow_hitl
from metaflow_hitl import errors
from metaflow_hitl.errors import HitlError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import open_gate
from metaflow_hitl.plugin.metaflow_internals import click
from metaflow_hitl.stores import LocalApprovalStore
from metaflow_hitl.timestamps import utc_now
from tests.support.builders import build_request
from tests.support.console import cli

README = Path(__file__).resolve().parents[2] / "README.md"


def _table(text: str) -> dict[int, str]:
    """``{code: family text}`` from an RST ``====`` table or a Markdown ``| code |`` table."""
    rows: dict[int, str] = {}
    last: int | None = None
    for line in text.splitlines():
        m = re.match(r"^\|?\s*(\d)\s{2,}(.*)$", line) or re.match(
            r"^\|\s*`?(\d)`?\s*\|(.*)\|", line
        )
        if m:
            last = int(m.group(1))
            rows[last] = m.group(2).strip()
        elif last is not None and line.startswith("      ") and line.strip():
            rows[last] += " " + line.strip()  # an RST continuation line
        else:
            last = None
    return rows


def _classes() -> list[type[HitlError]]:
    for info in pkgutil.walk_packages(metaflow_hitl.__path__, "metaflow_hitl."):
        importlib.import_module(info.name)
    found: list[type[HitlError]] = []
    todo: list[type[HitlError]] = [HitlError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return [c for c in found if c.__module__ == "metaflow_hitl.errors"]


def test_every_error_class_exits_with_a_documented_status_of_its_family() -> None:
    table = _table(errors.__doc__ or "")
    assert sorted(table) == list(range(8)), table
    for cls in _classes():
        assert cls.exit_code in table, cls
        if cls.exit_code in (2, 3, 5, 6, 7):  # families that name their classes
            named = re.findall(r":class:`(\w+)`", table[cls.exit_code])
            assert any(issubclass(cls, getattr(errors, n)) for n in named), (
                f"{cls.__name__} exits {cls.exit_code} but the table names {named}"
            )


def test_the_readme_documents_the_same_statuses() -> None:
    section = README.read_text().split("### Exit status", 1)[1].split("\n#", 1)[0]
    documented = _table(section)
    assert sorted(documented) == sorted(_table(errors.__doc__ or "")), documented


def test_click_usage_errors_share_the_usage_status() -> None:
    assert click.exceptions.UsageError.exit_code == errors.ConfigError.exit_code == 2


@pytest.fixture
def store(tmp_path: Path) -> Path:
    local = LocalApprovalStore(tmp_path / "store")
    request = build_request(
        gate=GateId("Flow", "1", "gate"),
        approvers=["bob"],
        input_schema={"target": "str"},
        now=utc_now(),
    )
    open_gate(local, request)
    return local.root


@pytest.mark.parametrize(
    ("args", "code", "family"),
    [
        (("show", "Flow/1/nope"), 3, "GateNotFound"),
        (("show", "not a gate id"), 2, "GateRefError"),
        (("approve", "Flow/1/gate", "--latest", "--as", "bob"), 2, "ConfigError"),
        (
            ("approve", "Flow/1/gate", "--as", "mallory", "--input", '{"target": "x"}'),
            4,
            "NotAllowed",
        ),
        (("approve", "Flow/1/gate", "--as", "bob", "--input", '{"target": 7}'), 5, "InvalidInput"),
        (("approve", "Flow/1/gate", "--as", "bob", "--bogus-flag"), 2, None),  # click's own
    ],
    ids=["not-found", "bad-ref", "usage", "refused", "invalid-input", "click-usage"],
)
def test_each_family_exits_with_its_status(
    store: Path, args: tuple[str, ...], code: int, family: str | None
) -> None:
    done = cli(store, *args)
    assert done.returncode == code, (done.stdout, done.stderr)
    if family:
        error = json.loads(cli(store, *args, "--json").stderr)["error"]
        assert (error["type"], error["exit_code"]) == (family, code)
    assert not list(store.rglob("decision.json"))  # nothing was decided


def test_an_unreadable_store_exits_with_the_store_status(tmp_path: Path) -> None:
    """A record that is not JSON is a RecordError: family 6 (the store's content)."""
    local = LocalApprovalStore(tmp_path / "store")
    gate = GateId("Flow", "1", "gate")
    open_gate(local, build_request(gate=gate))
    request_file = next(local.root.rglob("request.json"))
    request_file.write_text("{not json")
    done = cli(local.root, "show", str(gate))
    assert done.returncode == 6, (done.stdout, done.stderr)
