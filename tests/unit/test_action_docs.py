"""The inputs and outputs tables of ``docs/github-action.md`` are ``action.yml``'s.

Generic on purpose: a new input needs one table row (name, default, environment variable,
meaning) and nothing here. Checked per input: listed exactly once, the same default (quotes
and backticks aside), the same ``required`` (a ``Required`` column if the table has one,
else every input must be optional and the page must say so), and the environment variable
the table names is the one the action's steps map ``${{ inputs.<name> }}`` to. A composite
action's inputs reach its steps only through expressions (GitHub's metadata syntax,
https://docs.github.com/en/actions/reference/workflows-and-actions/metadata-syntax).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "github-action.md"


def action() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def table(first_header: str) -> list[dict[str, str]]:
    """The rows of the page's table whose first header cell is ``first_header``."""
    lines = DOC.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
        assert len(cells) == len(header), line
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def plain(cell: str) -> str | None:
    """A default as written in a cell (`` `"false"` ``, `` `${{ github.token }}` ``)."""
    text = cell.strip()
    if text in ("—", "-", "none", ""):
        return None
    text = text.strip("`")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return text


def names(cell: str) -> list[str]:
    return re.findall(r"`([a-z0-9-]+)`", cell)


def env_mappings() -> dict[str, set[str]]:
    """Input name -> the environment variables the action's steps set from it."""
    out: dict[str, set[str]] = {}
    for step in action()["runs"]["steps"]:
        for var, value in (step.get("env") or {}).items():
            for name in re.findall(r"\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}", str(value)):
                out.setdefault(name, set()).add(var)
    return out


def test_every_input_is_documented_once_with_its_default_and_required():
    inputs = action()["inputs"]
    rows = table("Input")
    documented = [n for row in rows for n in names(row["Input"])]
    assert sorted(documented) == sorted(inputs), "the table lists each action.yml input once"
    has_required = "Required" in rows[0]
    for row in rows:
        for name in names(row["Input"]):
            spec = inputs[name] or {}
            want = spec.get("default")
            assert plain(row["Default"]) == (None if want is None else str(want)), name
            required = bool(spec.get("required", False))
            if has_required:
                assert (row["Required"].strip("`").lower() in ("yes", "true")) == required, name
            else:
                assert not required, f"{name} is required: add a Required column to the table"
            assert spec.get("description"), f"{name} has no description in action.yml"
    if not has_required:
        assert "No input is required." in DOC.read_text()


def test_the_environment_variable_column_is_what_the_action_maps():
    mapped = env_mappings()
    for row in table("Input"):
        variable = row.get("Environment variable", "—").strip("`")
        for name in names(row["Input"]):
            if variable in ("—", "-", ""):
                continue
            assert variable in mapped.get(name, set()), (name, variable, mapped.get(name))


def test_every_output_is_documented_once():
    outputs = action()["outputs"]
    documented = [n for row in table("Output") for n in names(row["Output"])]
    assert sorted(documented) == sorted(outputs)


def test_no_input_is_described_as_unused():
    text = DOC.read_text() + "\n" + (ROOT / "action.yml").read_text()
    for stale in ("not used in this release", "accepted, not used", "in this release"):
        assert stale not in text, stale
