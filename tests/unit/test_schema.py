"""Input schemas: the short form, full JSON Schema, and validation that reports everything."""

from __future__ import annotations

import json

import pytest

from metaflow_hitl.errors import ConfigError, InvalidInput
from metaflow_hitl.input_schema import (
    MAX_INPUT_BYTES,
    SHORT_TYPES,
    example_input,
    normalize_schema,
    parse_input_json,
    timeout_input,
    validate_input,
)

# -- normalize_schema: short form -------------------------------------------------------------


def test_no_schema_accepts_any_json_object_as_the_original_did() -> None:
    """The original metaflow-hitl's quickstart approves a schema-less gate with
    ``--input '{"deploy_target": "staging"}'`` (/work/shared/reference/original-readme.txt)."""
    schema = normalize_schema(None)
    assert validate_input(schema, {}) == []
    assert validate_input(schema, {"deploy_target": "staging", "n": [1, {"a": None}]}) == []
    assert validate_input(schema, [1]) != []  # still an object
    assert validate_input(schema, "staging") != []


def test_short_form_becomes_json_schema() -> None:
    assert normalize_schema({"deploy_target": "str", "replicas": "int", "notes": "str?"}) == {
        "type": "object",
        "properties": {
            "deploy_target": {"type": "string"},
            "replicas": {"type": "integer"},
            "notes": {"type": "string"},
        },
        "required": ["deploy_target", "replicas"],
        "additionalProperties": False,
    }


@pytest.mark.parametrize(("short", "json_type"), list(SHORT_TYPES.items()), ids=list(SHORT_TYPES))
def test_each_short_type_maps_to_its_json_type(short: str, json_type: str) -> None:
    schema = normalize_schema({"x": short})
    assert schema["properties"]["x"] == {"type": json_type}
    assert schema["required"] == ["x"]


def test_all_optional_fields_give_no_required_list() -> None:
    schema = normalize_schema({"a": "str?", "b": "int?"})
    assert "required" not in schema
    assert validate_input(schema, {}) == []


@pytest.mark.parametrize(
    ("schema", "needle"),
    [
        pytest.param({"x": "string"}, "unknown type 'string'", id="json-type-name-in-short-form"),
        pytest.param({"x": "integer?"}, "unknown type 'integer?'", id="optional-unknown"),
        pytest.param({"x": "?"}, "unknown type '?'", id="lone-question-mark"),
        pytest.param({"x": "str??"}, "unknown type 'str??'", id="double-question-mark"),
        pytest.param({"x": "Str"}, "unknown type 'Str'", id="capitalised"),
        pytest.param({"x": ""}, "unknown type ''", id="empty-type"),
    ],
)
def test_unknown_short_type_lists_the_valid_ones(schema: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        normalize_schema(schema)
    assert needle in str(info.value)
    assert "str, int, float, bool, list, dict" in str(info.value)


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param({"x": 1}, id="int-instead-of-type-name"),
        pytest.param({"x": ["str"]}, id="list-instead-of-type-name"),
        pytest.param({"x": {"type": "string"}}, id="json-schema-property-in-short-form"),
    ],
)
def test_non_string_short_type_suggests_full_json_schema(schema: dict) -> None:
    with pytest.raises(ConfigError, match="full JSON"):
        normalize_schema(schema)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("deploy-target", id="dash"),
        pytest.param("has space", id="space"),
        pytest.param("1st", id="leading-digit"),
        pytest.param("", id="empty"),
        pytest.param("../x", id="path"),
        pytest.param(1, id="int-key"),
    ],
)
def test_bad_short_form_field_names_are_refused(name: object) -> None:
    with pytest.raises(ConfigError, match="identifier"):
        normalize_schema({name: "str"})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param("str", id="string"),
        pytest.param(["str"], id="list"),
        pytest.param(1, id="int"),
    ],
)
def test_schema_must_be_a_mapping(schema: object) -> None:
    with pytest.raises(ConfigError, match="must be a dict"):
        normalize_schema(schema)  # type: ignore[arg-type]


# -- normalize_schema: full JSON Schema -------------------------------------------------------

FULL = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "deploy_target": {"enum": ["staging", "prod"]},
        "replicas": {"type": "integer", "minimum": 1, "default": 2},
    },
    "required": ["deploy_target"],
}


def test_full_json_schema_is_kept_as_is() -> None:
    assert normalize_schema(FULL) == FULL


def test_full_json_schema_is_copied_not_aliased() -> None:
    schema = normalize_schema(FULL)
    schema["properties"]["replicas"]["minimum"] = 99
    assert FULL["properties"]["replicas"]["minimum"] == 1


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param({"type": "object", "properties": {"x": {"type": "strin"}}}, id="bad-type"),
        pytest.param({"type": "object", "required": "x"}, id="required-not-a-list"),
        pytest.param({"type": "object", "properties": {"x": {"minimum": "1"}}}, id="bad-minimum"),
        pytest.param({"type": "object", "properties": []}, id="properties-not-an-object"),
    ],
)
def test_invalid_json_schema_is_refused(schema: dict) -> None:
    with pytest.raises(ConfigError, match="not a valid JSON Schema"):
        normalize_schema(schema)


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param({"$schema": FULL["$schema"], "type": "array"}, id="array"),
        pytest.param({"$schema": FULL["$schema"], "type": "string"}, id="string"),
        pytest.param({"properties": {"x": {"type": "string"}}}, id="no-type"),
    ],
)
def test_non_object_json_schema_is_refused(schema: dict) -> None:
    with pytest.raises(ConfigError, match='"type": "object"'):
        normalize_schema(schema)


# -- validate_input ---------------------------------------------------------------------------

SHORT = normalize_schema({"deploy_target": "str", "replicas": "int", "notes": "str?"})


def test_valid_input_has_no_problems() -> None:
    assert validate_input(SHORT, {"deploy_target": "prod", "replicas": 3}) == []


def test_every_problem_is_reported_at_once() -> None:
    problems = validate_input(SHORT, {"replicas": "three", "deploy_targte": "prod"})
    assert len(problems) == 3, problems
    text = "\n".join(problems)
    assert "'deploy_target' is a required property" in text
    assert "replicas: 'three' is not of type 'integer'" in text
    assert "deploy_targte" in text  # the unknown (typo'd) field is named


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        pytest.param({"deploy_target": "p", "replicas": True}, "replicas", id="bool-is-not-int"),
        pytest.param({"deploy_target": "p", "replicas": 1.5}, "replicas", id="float-is-not-int"),
        pytest.param({"deploy_target": None, "replicas": 1}, "deploy_target", id="null"),
        pytest.param([], "input", id="array-not-object"),
        pytest.param("prod", "input", id="string-not-object"),
    ],
)
def test_wrong_values_name_where(value: object, needle: str) -> None:
    problems = validate_input(SHORT, value)
    assert len(problems) == 1, problems
    assert problems[0].startswith(needle + ":")


def test_full_schema_constraints_are_enforced() -> None:
    problems = validate_input(FULL, {"deploy_target": "dev", "replicas": 0})
    assert len(problems) == 2, problems
    assert problems[0].startswith("deploy_target:")
    assert problems[1].startswith("replicas:")


# -- parse_input_json -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param(None, {}, id="none"),
        pytest.param("", {}, id="empty"),
        pytest.param("  \n", {}, id="blank"),
        pytest.param('{"a": 1}', {"a": 1}, id="object"),
        pytest.param(' {"a": [1, {"b": null}]}\n', {"a": [1, {"b": None}]}, id="nested"),
    ],
)
def test_parse_input_json_accepts(text: str | None, value: dict) -> None:
    assert parse_input_json(text) == value


@pytest.mark.parametrize(
    ("text", "message", "problem"),
    [
        pytest.param("{", "not valid JSON", "line 1 column 2", id="truncated"),
        pytest.param("{'a': 1}", "not valid JSON", "line 1", id="single-quotes"),
        pytest.param('{"a": 1} x', "not valid JSON", "Extra data", id="trailing-text"),
        pytest.param("[1, 2]", "must be a JSON object", "got a JSON list", id="array"),
        pytest.param('"prod"', "must be a JSON object", "got a JSON str", id="string"),
        pytest.param("3", "must be a JSON object", "got a JSON int", id="number"),
        pytest.param("null", "must be a JSON object", "got a JSON NoneType", id="null"),
        pytest.param(
            '{"a": "' + "x" * MAX_INPUT_BYTES + '"}', "too large", "64 KiB", id="over-64KiB"
        ),
        pytest.param(
            '{"a": "' + "é" * (MAX_INPUT_BYTES // 2) + '"}',
            "too large",
            "64 KiB",
            id="over-64KiB-in-bytes-not-chars",
        ),
        pytest.param(
            '{"a": ' + "[" * 30_000 + "]" * 30_000 + "}",
            "not valid JSON",
            "nested",
            id="nested-too-deep",
        ),
    ],
)
def test_parse_input_json_refuses(text: str, message: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_input_json(text)
    assert message in info.value.message
    assert len(info.value.problems) == 1
    assert problem in info.value.problems[0]


def test_input_just_under_the_limit_is_accepted() -> None:
    text = json.dumps({"a": "x" * (MAX_INPUT_BYTES - 20)})
    assert len(text.encode()) <= MAX_INPUT_BYTES
    assert parse_input_json(text)["a"].startswith("xxx")


# -- example_input / timeout_input ------------------------------------------------------------


def test_example_input_fills_required_fields_only() -> None:
    assert example_input(SHORT) == {"deploy_target": "<deploy_target>", "replicas": "<replicas>"}


def test_example_input_prefers_default_enum_and_examples() -> None:
    schema = normalize_schema(
        {
            "type": "object",
            "properties": {
                "target": {"enum": ["staging", "prod"]},
                "replicas": {"type": "integer", "default": 3},
                "owner": {"type": "string", "examples": ["alice"]},
                "flag": {"type": "boolean"},
                "optional": {"type": "string"},
            },
            "required": ["target", "replicas", "owner", "flag"],
        }
    )
    assert example_input(schema) == {
        "target": "staging",
        "replicas": 3,
        "owner": "alice",
        "flag": "<flag>",  # no default, enum or examples: a placeholder
    }


def test_example_input_placeholders_fail_validation_when_pasted() -> None:
    schema = normalize_schema({name: name for name in SHORT_TYPES})
    problems = validate_input(schema, example_input(schema))
    for name in SHORT_TYPES:
        assert (
            f"{name}: '<{name}>' is the example's placeholder; put the value to approve "
            "with there" in problems
        )


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        pytest.param(None, {}, id="no-schema"),
        pytest.param({"notes": "str?"}, {}, id="only-optional"),
        pytest.param(
            {
                "type": "object",
                "properties": {"replicas": {"type": "integer", "default": 2}},
                "required": ["replicas"],
            },
            {"replicas": 2},
            id="required-with-default",
        ),
    ],
)
def test_timeout_input_uses_defaults(schema: dict | None, expected: dict) -> None:
    assert timeout_input(normalize_schema(schema)) == expected


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param({"deploy_target": "str"}, id="short-required"),
        pytest.param(
            {
                "type": "object",
                "properties": {"replicas": {"type": "integer", "default": "two"}},
                "required": ["replicas"],
            },
            id="default-of-wrong-type",
        ),
    ],
)
def test_timeout_input_without_valid_defaults_is_a_config_error(schema: dict) -> None:
    with pytest.raises(ConfigError) as info:
        timeout_input(normalize_schema(schema))
    text = str(info.value)
    assert "on_timeout='approve'" in text
    assert "on_timeout='reject'" in text  # the way out
