"""The CLI behaves like ``gh`` and ``argo``: internal commands hidden from ``--help``, errors
as JSON under ``--json``, a timed-out gate says what its timeout did, empty answers say where
they looked. Runs the real console script on a real local store."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path

from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import expire_gate, open_gate
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores import LocalApprovalStore
from metaflow_hitl.timestamps import utc_now
from tests.support.console import EXE, cli, console


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
    assert done.returncode == 3  # not found (errors.py: exit statuses)
    error = json.loads(done.stderr)["error"]
    assert error["type"] == "GateNotFound"
    assert error["exit_code"] == 3
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


def _on_a_terminal(store: Path, columns: int | None) -> str:
    """``metaflow-hitl list`` with stdout on a pseudo-terminal of ``columns`` (``$COLUMNS``)."""
    import pty

    main_fd, child_fd = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env.update({"NO_COLOR": "1", **({"COLUMNS": str(columns)} if columns else {})})
    done = subprocess.run(
        [str(EXE), "--store", str(store), "list"],
        stdout=child_fd, stderr=subprocess.PIPE, timeout=60, check=False, env=env,
    )  # fmt: skip
    os.close(child_fd)
    out = b""
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(main_fd)
    assert done.returncode == 0, done.stderr
    return out.decode().replace("\r\n", "\n")


def test_tables_fit_the_terminal_with_an_ellipsis_and_no_color_is_honoured(
    tmp_path: Path,
) -> None:
    store = LocalApprovalStore(tmp_path / "store")
    spec = GateSpec.from_options(message="m", timeout="1h")
    long = "Accuracy 94.3% on the holdout set of the quarterly model; deploy to all regions?"
    request = spec.request_for(
        GateId("Flow", "1", "gate"), message=long, started_by="a", runtime="local",
        now=utc_now(), store="s",
    )  # fmt: skip
    open_gate(store, request)
    for columns in (60, 80, 100):
        lines = _on_a_terminal(store.root, columns).splitlines()
        assert all(len(line) <= columns for line in lines), (columns, lines)
        assert lines[1].endswith("…")  # the message, cut
        assert "\x1b[" not in "\n".join(lines)
    assert long in _on_a_terminal(store.root, 300)  # a wide terminal shows it whole
    piped = subprocess.run(
        [str(EXE), "--store", str(store.root), "list"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "COLUMNS": "40"},
    )  # fmt: skip
    assert long[:40] in piped.stdout  # into a pipe: $COLUMNS ignored, cut at 48 as before


def test_store_works_before_or_after_the_subcommand(tmp_path: Path) -> None:
    """``--store`` is a group option; like ``gh -R`` it may also follow the subcommand."""
    store = LocalApprovalStore(tmp_path / "store")
    request = GateSpec.from_options(message="Ship?", timeout="1h").request_for(
        GateId("Flow", "1", "gate"),
        message="Ship?",
        started_by="alice",
        runtime="local",
        now=utc_now(),
        store=str(store.root),
    )
    open_gate(store, request)
    before = cli(store.root, "list", "--json")
    after = console("list", "--json", "--store", str(store.root))
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout) != []


def test_a_value_that_looks_like_store_stays_a_value() -> None:
    from metaflow_hitl.cli.main import hoist_store

    takes = frozenset({"--reason"})
    assert hoist_store(["reject", "G", "--reason", "--store", "--store=/s"], takes) == [
        "--store",
        "/s",
        "reject",
        "G",
        "--reason",
        "--store",
    ]
    assert hoist_store(["list", "--", "--store", "x"]) == ["list", "--", "--store", "x"]


def test_two_different_stores_are_refused(tmp_path: Path) -> None:
    done = console("--store", str(tmp_path / "a"), "list", "--store", str(tmp_path / "b"))
    assert done.returncode == 2
    assert "--store given twice with different paths" in done.stderr
