"""Property-based tests (hypothesis) of everything that reads text someone else wrote.

Thousands of generated cases, reproducible (the suite's Hypothesis profile in
``tests/conftest.py``: the same cases on every run and in CI). Each property is the contract of the function under test:

* the comment grammar never raises, refuses with an actionable message, and what it accepts
  is strict JSON; what we render as a command parses back to what we meant;
* schema normalisation raises only :class:`ConfigError` (with a message), and a schema it
  accepts validates any JSON value without raising;
* :func:`decode_record` raises only :class:`RecordError` (naming the record), and what it
  accepts encodes back to the same record;
* a gate id is either refused or made of path-safe components: no ``..``, separators, NUL,
  drive letters or non-ASCII can reach a store key or a file path (the stores themselves
  are checked in ``tests/contract/test_store_paths.py``).

``max_examples`` is set per test and is only an upper bound; the cases actually run are
measured by ``benchmarks/bench_property_cases.py`` and reported in docs/reliability.md
("Hostile input").
"""

# ruff: noqa: E501, PT017 -- strategy tables stay on one line; properties assert inside except

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaflow_hitl.errors import ConfigError, GateRefError, RecordError
from metaflow_hitl.gate_id import GateId, parse_gate_ref
from metaflow_hitl.input_schema import (
    MAX_INPUT_BYTES,
    SHORT_TYPES,
    example_input,
    normalize_schema,
    parse_input_json,
    validate_input,
)
from metaflow_hitl.records import Decision, Request, Vote, decode_record, encode_record
from metaflow_hitl.render.documents import render_approval_file
from metaflow_hitl.slash_commands import MAX_COMMENT_BYTES, Command, Ignore, Reply, parse_comment
from tests.support.builders import GATE, T0, actor, build_request


def cases(n: int) -> Any:
    """At most ``n`` cases, on the suite's reproducible profile (``tests/conftest.py``)."""
    return settings(max_examples=n)


# -- strategies ---------------------------------------------------------------------------------

# Finite JSON scalars and containers: what a person can legitimately type.
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
JSON_OBJECTS = st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=5)

# Characters that matter to the grammar, Markdown and paths, and look-alikes of them.
TRICKY = st.sampled_from(
    [
        *'/\\ \t\n\r{}[]":,`>-#@.0123456789eE+',
        "```",
        "```json\n",
        "\n```",
        "approve",
        "reject",
        "1e999",
        "NaN",
        "Infinity",
        "9" * 5000,
        "\u00a0",  # no-break space
        "\u200b",  # zero-width space
        "\u200d",  # zero-width joiner
        "\u202e",  # right-to-left override
        "\u2028",  # line separator
        "\ufeff",  # byte order mark
        "\uff0f",  # fullwidth solidus
        "\u2215",  # division slash
        "\u0430",  # Cyrillic a
        "\ud800",  # a lone surrogate (GitHub never sends one; we must not crash on it)
    ]
)
# Every Unicode white space, and the invisible characters people paste.
SPACES = [
    *(chr(c) for c in range(0x3000 + 1) if chr(c).isspace()),
    "\u200b",
    "\u200d",
    "\u2060",
    "\ufeff",
]
HEADS = st.sampled_from(
    ["/approve", "/reject", "/approve ", "/reject ", "/approve\n", "  /approve", "\n/reject\t", ""]
)
COMMENTS = st.one_of(
    st.text(max_size=300),
    st.builds(lambda h, parts: h + "".join(parts), HEADS, st.lists(TRICKY, max_size=25)),
    st.builds(lambda h, v: h + json.dumps(v), HEADS, JSON_VALUES),
    st.builds(lambda h, t: h + t, HEADS, st.text(max_size=200)),
    st.builds(lambda ws, h, t: ws + h + t, st.sampled_from(SPACES), HEADS, st.text(max_size=20)),
    # grammar v3: the original design's <"k": v> and key=value pairs, hostile inside
    st.builds(lambda h, t: h + "<" + t + ">", HEADS, st.text(max_size=100)),
    st.builds(lambda h, t: h + '<"' + t, HEADS, st.text(max_size=100)),
    st.builds(
        lambda h, kv: h + " ".join(f"{k}={v}" for k, v in kv),
        HEADS,
        st.lists(
            st.tuples(
                st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,5}", fullmatch=True),
                st.one_of(st.text(max_size=20), TRICKY),
            ),
            max_size=4,
        ),
    ),
)
#: A valid value for each short-form type, to fill an example's placeholders with.
_FILL = {"string": "s", "integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}}
#: A schema typing key=value input: every kind of property, and keys it does not declare.
PAIR_SCHEMA = {
    "type": "object",
    "properties": {
        "a": {"type": "integer"}, "b": {"type": "number"}, "c": {"type": "boolean"},
        "d": {"type": ["null", "string"]}, "e": {"type": "array"}, "f": {"type": "object"},
        "s": {"type": "string"},
    },
}  # fmt: skip

# Words a refusal may use to tell the author what to do next.
ACTIONABLE = re.compile(r"/approve|/reject|shorten|JSON|KiB|code block|separate comment|reason")


# -- the comment grammar ------------------------------------------------------------------------


def _strict_json(value: Any) -> str:
    return json.dumps(value, allow_nan=False)  # raises on NaN/inf: not JSON


@pytest.mark.parametrize("schema", [None, PAIR_SCHEMA], ids=["no-schema", "typed"])
@cases(2000)
@given(body=COMMENTS)
def test_grammar_never_raises_and_every_refusal_says_what_to_do(
    body: str, schema: dict[str, Any] | None
) -> None:
    result = parse_comment(body, schema)
    if isinstance(result, Reply):
        assert result.message.strip()
        assert ACTIONABLE.search(result.message), result.message
    elif isinstance(result, Ignore):
        assert result.reason.strip()
    else:
        assert isinstance(result, Command)
        assert result.intent in ("approve", "reject")
        assert isinstance(result.input, dict)
        if result.input:
            text = _strict_json(result.input)  # what is accepted can be stored as JSON
            assert len(text.encode("utf-8", "surrogatepass")) <= MAX_INPUT_BYTES * 2
        if result.intent == "reject":
            assert result.reason
            assert result.reason.strip()


@cases(800)
@given(COMMENTS)
def test_grammar_decides_command_or_not_before_looking_at_size(head: str) -> None:
    """Short or over the size limit, the same text is a command (or not): a long look-alike
    is ignored, never answered as if it were a command."""
    short = parse_comment(head)
    long = parse_comment(head + "\n" + "x" * (MAX_COMMENT_BYTES + 1))
    assert isinstance(short, Ignore) == isinstance(long, Ignore), (short, long)
    if not isinstance(long, Ignore):
        assert isinstance(long, Reply)
        assert "KiB" in long.message


@cases(300)
@given(JSON_OBJECTS, st.sampled_from(["inline", "lines", "fence", "fence-crlf"]))
def test_approve_round_trips_any_json_object(value: dict[str, Any], form: str) -> None:
    text = json.dumps(value)
    body = {
        "inline": f"/approve {text}",
        "lines": "/approve\n" + json.dumps(value, indent=2),
        "fence": f"/approve\n```json\n{text}\n```",
        "fence-crlf": f"/approve\r\n```json\r\n{text}\r\n```\r\n",
    }[form]
    assert parse_comment(body) == Command("approve", input=value)


@cases(400)
@given(st.text(min_size=1, max_size=200).filter(lambda t: t.strip()))
def test_reject_round_trips_any_reason(reason: str) -> None:
    result = parse_comment("/reject " + reason)
    expected = reason.replace("\r\n", "\n").replace("\r", "\n").strip()
    assert result == Command("reject", reason=expected)


@cases(150)
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), st.sampled_from([*SHORT_TYPES, *(t + "?" for t in SHORT_TYPES)]), min_size=1, max_size=5))  # fmt: skip
def test_the_rendered_approve_command_parses_back_to_valid_input(short: dict[str, str]) -> None:
    """The ``/approve {...}`` an approval file shows is a command our grammar reads back to
    input the gate's schema accepts."""
    request = build_request(input_schema=short)
    page = render_approval_file(request)
    blocks = re.findall(r"(?ms)^(`{3,})\n(/approve.*?)\n\1$", page)
    assert blocks, page
    result = parse_comment(blocks[0][1])
    assert isinstance(result, Command)
    example = example_input(request.input_schema)
    assert result.input == example
    # fields with no default get a placeholder, which fails validation if pasted as is
    problems = validate_input(request.input_schema, result.input)
    holes = [k for k, v in example.items() if v == f"<{k}>"]
    assert bool(problems) == bool(holes), (example, problems)
    for key in holes:
        assert any(p.startswith(f"{key}: '<{key}>' is the example's placeholder") for p in problems)


@cases(300)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "a": st.integers(-(10**12), 10**12),
            "b": st.floats(allow_nan=False, allow_infinity=False, width=32),
            "c": st.booleans(),
            "s": st.text(max_size=30),
            "e": st.lists(st.integers(), max_size=3),
            "zz": st.from_regex(r"[A-Za-z0-9_.:/-]{0,12}", fullmatch=True),
        },
    ).filter(bool)
)
def test_key_value_pairs_round_trip_typed_by_the_schema(value: dict[str, Any]) -> None:
    """``/approve a=1 s="x y"``: each value read as the type the schema declares."""
    parts = []
    for key, item in value.items():
        if key == "s":
            parts.append(f"s={json.dumps(item)}")  # any string, quoted
        elif key == "zz":
            parts.append(f"zz={item}")  # undeclared: the text as a string
        else:
            parts.append(f"{key}={json.dumps(item, separators=(',', ':'))}")
    result = parse_comment("/approve " + " ".join(parts), PAIR_SCHEMA)
    assert result == Command("approve", input=value), parts


@cases(300)
@given(JSON_OBJECTS)
def test_the_angle_form_round_trips_any_json_object(value: dict[str, Any]) -> None:
    """The original design's ``/approve <"deploy_target": "staging">``."""
    members = json.dumps(value)[1:-1]
    assert parse_comment(f"/approve <{members}>") == Command("approve", input=value)


# -- schemas ------------------------------------------------------------------------------------

SHORT_SPECS = st.one_of(
    st.sampled_from([*SHORT_TYPES, *(t + "?" for t in SHORT_TYPES), "?", "str??", "", "int "]),
    JSON_VALUES,
)
SCHEMA_KEYS = st.sampled_from(
    ["type", "properties", "required", "additionalProperties", "$schema", "$ref", "$defs",
     "enum", "default", "pattern", "items", "minimum", "not", "anyOf", "x"]
)  # fmt: skip
SCHEMAISH = st.one_of(
    st.none(),
    JSON_VALUES,
    st.dictionaries(st.text(max_size=10), SHORT_SPECS, max_size=5),
    st.dictionaries(SCHEMA_KEYS, JSON_VALUES, max_size=5),
    st.builds(
        lambda props, req, ref: {
            "type": "object",
            "properties": props,
            "required": req,
            **({"$defs": {"d": {"type": "string"}}, "properties": {**props, "r": {"$ref": ref}}} if ref else {}),
        },
        st.dictionaries(st.text(max_size=6), st.dictionaries(SCHEMA_KEYS, JSON_VALUES, max_size=3), max_size=3),
        st.lists(st.text(max_size=6), max_size=3),
        st.sampled_from([None, "#/$defs/d", "#/$defs/nope", "https://example.com/s.json", "#"]),
    ),
)  # fmt: skip


@cases(600)
@given(SCHEMAISH, JSON_VALUES)
def test_schema_normalisation_and_validation_never_crash(schema: Any, value: Any) -> None:
    try:
        normal = normalize_schema(schema)
    except ConfigError as exc:
        assert str(exc).strip()
        assert "input_schema" in str(exc)
        return
    assert normal["type"] == "object"
    problems = validate_input(normal, value)
    assert all(isinstance(p, str) and p for p in problems)
    assert all(len(p) <= 300 for p in problems)
    json.dumps(normal, allow_nan=False)  # what records store is strict JSON


@cases(200)
@given(st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True), st.sampled_from([*SHORT_TYPES, *(t + "?" for t in SHORT_TYPES)]), max_size=6))  # fmt: skip
def test_short_form_example_input_is_valid_input_once_its_placeholders_are_filled(
    short: dict[str, str],
) -> None:
    schema = normalize_schema(short)
    example = example_input(schema)
    holes = {k for k, v in example.items() if v == f"<{k}>"}
    problems = validate_input(schema, example)
    assert {p.split(":")[0] for p in problems if "placeholder" in p} == holes
    filled = {k: (_FILL[schema["properties"][k]["type"]] if k in holes else v)
              for k, v in example.items()}  # fmt: skip
    assert validate_input(schema, filled) == []
    assert validate_input(schema, {"not_a_field_" + "x" * 20: 1})  # closed: unknown refused


@cases(500)
@given(st.one_of(st.text(max_size=120), st.builds(json.dumps, JSON_VALUES), st.lists(TRICKY, max_size=12).map("".join)))  # fmt: skip
def test_cli_input_is_an_object_or_a_clear_refusal(text: str) -> None:
    from metaflow_hitl.errors import InvalidInput

    try:
        value = parse_input_json(text)
    except InvalidInput as exc:
        assert exc.message
        assert exc.problems
        assert all(p.strip() for p in exc.problems)
        return
    assert isinstance(value, dict)
    _strict_json(value)


# -- records ------------------------------------------------------------------------------------


def _vote() -> Vote:
    return Vote(gate_id=GATE, intent="approve", actor=actor("alice"), input={"a": 1})


def _decision() -> Decision:
    request = build_request()
    return Decision(
        gate_id=GATE,
        outcome="approved",
        proceed=True,
        decided_by="alice",
        channel="cli",
        deciders=(actor("alice"),),
        decided_at=T0,
        request_digest=request.digest(),
    )


VALID = {
    Request: json.loads(encode_record(build_request(input_schema={"target": "str"}))),
    Vote: json.loads(encode_record(_vote())),
    Decision: json.loads(encode_record(_decision())),
}
KINDS = st.sampled_from([Request, Vote, Decision])
WEIRD_VALUES = st.one_of(
    JSON_VALUES,
    st.sampled_from(
        ["../../etc/passwd", "F/1/s/../x", "C:\\x", "\x00", "2026-02-30T00:00:00Z",
         "2026-11-25T10:00:00+02:00", "2026-11-25T10:00:00", 10**400, -1, 0, True,
         {"type": "object", "properties": {"a": {"$ref": "https://evil.example/x"}}},
         {"type": "nonsense"}, "metaflow-hitl/request", 2, 1.0]
    ),
)  # fmt: skip


def _mutate(doc: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    out = json.loads(json.dumps(doc))
    for _ in range(data.draw(st.integers(1, 3))):
        how = data.draw(st.sampled_from(["replace", "delete", "add", "nested"]))
        key = data.draw(st.sampled_from(sorted(out))) if out else "x"
        if how == "replace":
            out[key] = data.draw(WEIRD_VALUES)
        elif how == "delete":
            out.pop(key, None)
        elif how == "add":
            out[data.draw(st.text(max_size=8))] = data.draw(WEIRD_VALUES)
        elif isinstance(out.get(key), dict) and out[key]:
            inner = data.draw(st.sampled_from(sorted(out[key])))
            out[key][inner] = data.draw(WEIRD_VALUES)
    return out


def _check_decoded(data: bytes | str, kind: type) -> None:
    try:
        record = decode_record(data, kind, where="gates/x/request.json")
    except RecordError as exc:
        assert str(exc).startswith("gates/x/request.json"), str(exc)
        return
    assert isinstance(record, kind)
    again = encode_record(record)  # raises if the record holds non-JSON (NaN, inf)
    assert decode_record(again, kind) == record


@cases(800)
@given(KINDS, st.data())
def test_decode_record_of_mutated_records_decodes_or_says_why(
    kind: type, data: st.DataObject
) -> None:
    _check_decoded(json.dumps(_mutate(VALID[kind], data)), kind)


@cases(600)
@given(KINDS, st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode), st.builds(json.dumps, JSON_VALUES)))  # fmt: skip
def test_decode_record_of_arbitrary_bytes_or_json_never_crashes(kind: type, data: Any) -> None:
    _check_decoded(data, kind)


@cases(100)
@given(KINDS, st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "1" * 5000]))
def test_records_never_hold_non_finite_or_unreadable_numbers(kind: type, number: str) -> None:
    doc = json.loads(json.dumps(VALID[kind]))
    if kind is Request:
        doc["timeout_seconds"] = "@NUMBER@"
    else:
        doc["input"] = {"a": "@NUMBER@"}
    text = json.dumps(doc).replace('"@NUMBER@"', number)
    try:
        decode_record(text, kind)
    except RecordError as exc:
        assert "JSON" in str(exc)
    else:  # pragma: no cover - the property fails
        raise AssertionError(f"a record with {number[:20]} was accepted")


# -- gate ids -----------------------------------------------------------------------------------

PATH_ALPHABET = st.sampled_from(
    [*"aZ_09.-/\\:~$ \t\n", "..", "../", "\x00", "C:", "\\\\?\\", "%2e%2e%2f", "\u2024\u2024",
     "\uff0e", "\u0430", "\u212a", "\u00e9", "e\u0301", "\u200d", "\u202e", "/etc/passwd"]
)  # fmt: skip
GATE_TEXTS = st.one_of(
    st.text(max_size=80),
    st.lists(PATH_ALPHABET, max_size=20).map("".join),
    st.lists(st.lists(PATH_ALPHABET, max_size=6).map("".join), min_size=2, max_size=4).map(
        "/".join
    ),
)


def _component_is_path_safe(part: str) -> None:
    assert part
    assert part not in (".", "..")
    assert part.isascii()
    assert part.isprintable()
    assert not set(part) & set("/\\:\x00 ~$%")
    assert not PurePosixPath(part).is_absolute()
    assert not PureWindowsPath(part).anchor
    assert not PureWindowsPath(part).drive
    assert PurePosixPath(part).name == part
    assert PureWindowsPath(part).name == part
    assert not part.startswith(("-", "."))  # never an option, never a hidden file


@cases(2000)
@given(GATE_TEXTS, st.sampled_from([None, "Flow"]))
def test_gate_refs_are_refused_or_path_safe(text: str, flow: str | None) -> None:
    try:
        gate = parse_gate_ref(text, flow=flow)
    except GateRefError as exc:
        assert str(exc).strip()
        return
    for part in (gate.flow, gate.run_id, gate.step):
        _component_is_path_safe(part)
    assert GateId.parse(str(gate)) == gate  # the text form round trips
    root = PurePosixPath("/store/v1/gates")
    assert (root / gate.flow / gate.run_id / gate.step).parts[:4] == root.parts
    win = PureWindowsPath("C:/store") / gate.flow / gate.run_id / gate.step
    assert win.drive == "C:"
    assert len(win.parts) == 5
    assert "/" not in gate.slug
    assert "\\" not in gate.slug
