"""Approval input schemas: the short form people write, and validation with JSON Schema.

``input_schema`` accepts two spellings:

* the short form, a mapping of field name to type — ``{"deploy_target": "str",
  "replicas": "int", "notes": "str?"}``. Types: ``str``, ``int``, ``float``, ``bool``,
  ``list``, ``dict``; a trailing ``?`` makes the field optional. Unknown fields are refused,
  so a typo in ``/approve {"deploy_targte": ...}`` is caught.
* a full JSON Schema (draft 2020-12) for an object: any mapping with ``"$schema"``,
  ``"properties"`` or ``"type": "object"``.

Both become one JSON Schema, which is what records store and what validation uses (the
``jsonschema`` library; no hand-written checks). Validation reports every problem at once.
See https://json-schema.org/draft/2020-12/json-schema-validation for the vocabulary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from metaflow_hitl.errors import ConfigError, InvalidInput

__all__ = [
    "MAX_INPUT_BYTES",
    "SHORT_TYPES",
    "example_input",
    "normalize_schema",
    "parse_input_json",
    "timeout_input",
    "validate_input",
]

#: The largest approval input accepted, in bytes of JSON.
MAX_INPUT_BYTES = 64 * 1024

#: Short-form type names and the JSON Schema type each stands for.
SHORT_TYPES: dict[str, str] = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "list": "array",
    "dict": "object",
}

_EXAMPLES: dict[str, Any] = {
    "string": "...",
    "integer": 1,
    "number": 1.0,
    "boolean": True,
    "array": [],
    "object": {},
}


def _is_full_schema(schema: Mapping[str, Any]) -> bool:
    return "$schema" in schema or "properties" in schema or schema.get("type") == "object"


def normalize_schema(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """Turn a short-form or full ``input_schema`` into one JSON Schema.

    Parameters
    ----------
    schema
        The decorator's ``input_schema``: ``None``, a short form or a full JSON Schema.

    Returns
    -------
    dict
        A draft 2020-12 JSON Schema of an object. ``None`` gives a schema that accepts only
        ``{}`` — a gate without a schema takes no input.

    Raises
    ------
    ConfigError
        For an unknown short type, a bad field name, or an invalid JSON Schema.
    """
    if schema is None:
        return {"type": "object", "properties": {}, "additionalProperties": False}
    if not isinstance(schema, Mapping):
        raise ConfigError(
            f"input_schema must be a dict, got {type(schema).__name__}: "
            'use the short form {"deploy_target": "str"} or a JSON Schema object.'
        )
    if _is_full_schema(schema):
        full = json.loads(json.dumps(schema))
        from jsonschema import Draft202012Validator  # lazy: see records._validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(full)
        except SchemaError as exc:
            raise ConfigError(f"input_schema is not a valid JSON Schema: {exc.message}") from None
        if full.get("type") != "object":
            raise ConfigError(
                'input_schema must describe a JSON object ("type": "object"); approval input '
                "is always an object of named fields."
            )
        return full
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, spec in schema.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(f"input_schema field {name!r} must be an identifier-like name.")
        if not isinstance(spec, str):
            raise ConfigError(
                f"input_schema field {name!r} has type {spec!r}; in the short form each value "
                f"is one of {', '.join(SHORT_TYPES)} (add '?' for optional). Pass a full JSON "
                'Schema (with "type": "object" and "properties") for anything richer.'
            )
        optional = spec.endswith("?")
        base = spec[:-1] if optional else spec
        if base not in SHORT_TYPES:
            raise ConfigError(
                f"input_schema field {name!r} has unknown type {spec!r}; valid types are "
                f"{', '.join(SHORT_TYPES)}, each optionally followed by '?'."
            )
        properties[name] = {"type": SHORT_TYPES[base]}
        if not optional:
            required.append(name)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    return out


def reject_json_constant(name: str) -> Any:
    """``parse_constant`` hook for :mod:`json`: refuse ``NaN`` and ``Infinity``."""
    # NaN and Infinity are not JSON; records carrying them break strict readers.
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


def parse_input_json(text: str | None) -> dict[str, Any]:
    """Parse approval input typed by a person (CLI ``--input`` or a comment).

    Parameters
    ----------
    text
        JSON text of an object, or ``None``/blank for no input.

    Returns
    -------
    dict

    Raises
    ------
    InvalidInput
        If the text is too large, not JSON, or not a JSON object.
    """
    if text is None or not text.strip():
        return {}
    if len(text.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
        raise InvalidInput(
            "approval input is too large",
            problems=[f"input is over {MAX_INPUT_BYTES // 1024} KiB of JSON"],
        )
    try:
        value = json.loads(text, parse_constant=reject_json_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            "approval input is not valid JSON",
            problems=[f"{exc.msg} at line {exc.lineno} column {exc.colno}"],
            hint='Pass a JSON object, e.g. --input \'{"deploy_target": "staging"}\'.',
        ) from None
    except RecursionError:
        raise InvalidInput(
            "approval input is not valid JSON",
            problems=["it is nested too deeply to read"],
        ) from None
    if not isinstance(value, dict):
        raise InvalidInput(
            "approval input must be a JSON object",
            problems=[f"got a JSON {type(value).__name__}"],
            hint='Pass a JSON object, e.g. --input \'{"deploy_target": "staging"}\'.',
        )
    return value


def validate_input(schema: Mapping[str, Any], value: Any) -> list[str]:
    """List every way ``value`` fails ``schema`` (empty when it is valid).

    Parameters
    ----------
    schema
        A normalized schema (see :func:`normalize_schema`).
    value
        The approval input.

    Returns
    -------
    list of str
        One readable line per problem, ordered by field, e.g.
        ``"replicas: 'three' is not of type 'integer'"``.
    """
    from jsonschema import Draft202012Validator  # lazy: see records._validator

    validator = Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(p) for p in error.path) or "input"
        problems.append(f"{where}: {error.message}")
    return problems


def example_input(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Build an example input from a schema, for help texts (``/approve {...}``).

    Uses each property's ``default``, first ``enum`` value or first ``examples`` entry when
    present, otherwise a placeholder for its type. Optional fields are left out.
    """
    props = schema.get("properties", {}) or {}
    required = set(schema.get("required", []) or [])
    out: dict[str, Any] = {}
    for name, prop in props.items():
        if name not in required or not isinstance(prop, Mapping):
            continue
        if "default" in prop:
            out[name] = prop["default"]
        elif prop.get("enum"):
            out[name] = prop["enum"][0]
        elif prop.get("examples"):
            out[name] = prop["examples"][0]
        else:
            kind = prop.get("type")
            out[name] = _EXAMPLES.get(kind if isinstance(kind, str) else "string", "...")
    return out


def timeout_input(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The input an ``on_timeout="approve"`` gate proceeds with: each property's default.

    Raises
    ------
    ConfigError
        If a required property has no default, so a timeout could not produce valid input.
    """
    props = schema.get("properties", {}) or {}
    value = {
        name: prop["default"]
        for name, prop in props.items()
        if isinstance(prop, Mapping) and "default" in prop
    }
    problems = validate_input(schema, value)
    if problems:
        raise ConfigError(
            "on_timeout='approve' needs input that satisfies input_schema, but without a human "
            "there is none: " + "; ".join(problems) + ". Give each required field a "
            '"default" (full JSON Schema form), make it optional (short form "str?"), '
            "or use on_timeout='reject'."
        )
    return value
