"""The CLI behaves like ``gh`` and ``argo``: internal commands hidden from ``--help``, errors
as JSON under ``--json``, a timed-out gate says what its timeout did, empty answers say where
they looked. Runs the real console script on a real local store."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import expire_gate, open_gate
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores import LocalApprovalStore
from metaflow_hitl.timestamps import utc_now

EXE = Path(sys.executable).with_name("metaflow-hitl")


def cli(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), "--store", str(store), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_user_commands_and_hides_internal_ones(tmp_path: Path) -> None:
    from metaflow_hitl.plugin.cli import hitl_group

    listed = set(hitl_group.list_commands(None))  # type: ignore[arg-type]
    hidden = {name for name in listed if hitl_group.commands[name].hidden}
    assert {"notify", "await-gate"} <= hidden
    shown = cli(tmp_path, "--help").stdout
    for command in ("list", "show", "approve", "reject", "audit", "sync"):
        assert command in shown
    assert "notify" not in shown


def test_json_errors_are_json_on_stderr(tmp_path: Path) -> None:
    store = tmp_path / "store"
    LocalApprovalStore(store)
    done = cli(store, "show", "Flow/1/nope", "--json")
    assert done.returncode == 1
    error = json.loads(done.stderr)["error"]
    assert error["type"] == "GateNotFound"
    assert error["message"]
    assert done.stdout == ""


def test_timed_out_gates_say_whether_they_approved(tmp_path: Path) -> None:
    store = LocalApprovalStore(tmp_path / "store")
    past = utc_now() - timedelta(hours=2)
    for run, on_timeout in (("1", "approve"), ("2", "reject")):
        spec = GateSpec.from_options(message="m", timeout="1h", on_timeout=on_timeout)
        gate = GateId("Flow", run, "gate")
        request = spec.request_for(
            gate, message="m", started_by="a", runtime="local", now=past, store="s"
        )
        open_gate(store, request)
        expire_gate(store, gate)
    table = cli(store.root, "list", "--all").stdout
    assert "timed_out (approved)" in table
    assert "timed_out (rejected)" in table
    rows = json.loads(cli(store.root, "list", "--all", "--json").stdout)
    assert sorted((r["gate_id"], r["proceed"]) for r in rows) == [
        ("Flow/1/gate", True),
        ("Flow/2/gate", False),
    ]


def test_an_empty_store_says_where_it_looked(tmp_path: Path) -> None:
    store = tmp_path / "store"
    LocalApprovalStore(store)
    assert f"No pending gates in {store}" in cli(store, "list").stdout
