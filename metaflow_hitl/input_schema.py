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
import math
from collections.abc import Mapping
from typing import Any

from metaflow_hitl.errors import ConfigError, InvalidInput

__all__ = [
    "MAX_INPUT_BYTES",
    "SHORT_TYPES",
    "STRICT_JSON",
    "check_input_schema",
    "clip_middle",
    "example_input",
    "json_problem",
    "loads_strict",
    "normalize_schema",
    "parse_input_json",
    "placeholder",
    "timeout_input",
    "validate_input",
]

#: The largest approval input accepted, in bytes of JSON.
MAX_INPUT_BYTES = 64 * 1024
#: At most this many problems are listed by :func:`validate_input`, each at most 300 chars.
MAX_PROBLEMS = 20

#: Short-form type names and the JSON Schema type each stands for.
SHORT_TYPES: dict[str, str] = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "list": "array",
    "dict": "object",
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
        A draft 2020-12 JSON Schema of an object. ``None`` gives ``{"type": "object"}``: a
        gate without a schema accepts any JSON object as input (as the original
        metaflow-hitl did), or none.

    Raises
    ------
    ConfigError
        For an unknown short type, a bad field name, or an invalid JSON Schema.
    """
    if schema is None:
        return {"type": "object"}
    if not isinstance(schema, Mapping):
        raise ConfigError(
            f"input_schema must be a dict, got {type(schema).__name__}: "
            'use the short form {"deploy_target": "str"} or a JSON Schema object.'
        )
    if _is_full_schema(schema):
        try:
            # a Mapping dumps to a JSON object, so it loads back as a dict
            full: dict[str, Any] = loads_strict(json.dumps(schema, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"input_schema is not plain JSON ({exc}); use only dicts, lists, strings, "
                "finite numbers, booleans and None."
            ) from None
        except RecursionError:
            raise ConfigError("input_schema is nested too deeply to read.") from None
        check_input_schema(full)
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


#: Keywords whose values are data, not subschemas: a ``"$ref"`` key inside them is no reference.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})


def _references(node: Any) -> list[str]:
    """Every ``$ref`` / ``$dynamicRef`` value in a schema (data keywords skipped)."""
    found: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                    found.append(value)
                elif key not in _DATA_KEYWORDS:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return found


def check_input_schema(full: Mapping[str, Any]) -> None:
    """Check a full JSON Schema: valid for draft 2020-12, and every reference resolvable.

    References must point inside the schema (``"#/$defs/target"``): validation runs in the
    GitHub Action and the waiting task, which never fetch schemas over the network, so a
    reference that cannot be resolved there would fail every approval after the gate opened.

    Raises
    ------
    ConfigError
        Naming the first problem.
    """
    from jsonschema import Draft202012Validator  # lazy: see records._validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(full)
    except SchemaError as exc:
        raise ConfigError(f"input_schema is not a valid JSON Schema: {exc.message}") from None
    except RecursionError:
        raise ConfigError("input_schema is nested too deeply to read.") from None
    from referencing import Registry, Resource
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012

    resource = Resource.from_contents(full, default_specification=DRAFT202012)
    base = resource.id() or ""
    resolver = Registry().with_resource(base, resource).resolver(base_uri=base)
    for ref in _references(full):
        try:
            if not ref.startswith("#"):
                raise Unresolvable(ref)
            resolver.lookup(ref)
        except Unresolvable:
            raise ConfigError(
                f"input_schema refers to {ref!r}, which is not inside the schema; put the "
                'definition under "$defs" and refer to it as "#/$defs/<name>".'
            ) from None


def reject_json_constant(name: str) -> Any:
    """``parse_constant`` hook for :mod:`json`: refuse ``NaN`` and ``Infinity``."""
    # NaN and Infinity are not JSON; records carrying them break strict readers.
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


#: The longest integer literal read from JSON (Python's own limit for ``int(str)``).
MAX_INT_DIGITS = 4300


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise json.JSONDecodeError(f"the number {text[:40]} is too large for JSON", text, 0)
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise json.JSONDecodeError(
            f"an integer of {len(text.lstrip('-'))} digits is too long (at most {MAX_INT_DIGITS})",
            text,
            0,
        )
    return int(text)


#: A JSON decoder for text that becomes a record (see :func:`loads_strict`); its
#: ``raw_decode`` reads one value from the start of a text.
def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members, refusing a key given twice (RFC 8259 §4 leaves the meaning of
    duplicate names undefined; Python would silently keep the last one)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise json.JSONDecodeError(f"the key {key!r} is given twice", "", 0)
        seen[key] = value
    return seen


STRICT_JSON = json.JSONDecoder(
    parse_constant=reject_json_constant,
    parse_float=_finite_float,
    parse_int=_bounded_int,
    object_pairs_hook=_unique_keys,
)


def loads_strict(text: str | bytes) -> Any:
    """:func:`json.loads` for text that becomes a record: every number finite and readable.

    ``NaN``, ``Infinity``, numbers beyond float range (``1e999``, which Python would read as
    infinity) and integers too long to convert are refused with
    :class:`json.JSONDecodeError`, as is anything :func:`json.loads` refuses.
    """
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    return STRICT_JSON.decode(text)


def json_problem(exc: json.JSONDecodeError, text: str) -> str:
    """Describe a JSON error for people: ``<what> at line L column C`` when it has a place."""
    if exc.doc != text:  # raised by a number or constant hook: no place in ``text``
        return exc.msg
    return f"{exc.msg} at line {exc.lineno} column {exc.colno}"


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
        value = loads_strict(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            "approval input is not valid JSON",
            problems=[json_problem(exc, text)],
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
        ``"replicas: 'three' is not of type 'integer'"``; at most :data:`MAX_PROBLEMS`
        lines of at most 300 characters, then a count of the rest.

    Raises
    ------
    ConfigError
        If the schema refers to a definition it does not hold (a stored schema that was
        edited by hand; :func:`normalize_schema` refuses such schemas up front).
    """
    from jsonschema import Draft202012Validator  # lazy: see records._validator
    from referencing.exceptions import Unresolvable

    validator = Draft202012Validator(schema)
    try:
        errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.path)))
    except Unresolvable as exc:  # a stored schema that normalize_schema never saw
        raise ConfigError(
            f"the gate's input_schema refers to something it does not contain ({exc}); no "
            "approval input can be checked against it.",
            hint="Fix input_schema in the flow and start a new run.",
        ) from None
    problems = [
        f"{key}: {item!r} is the example's placeholder; put the value to approve with there"
        for key, item in (value.items() if isinstance(value, dict) else ())
        if item == placeholder(str(key))
    ]
    for error in errors[:MAX_PROBLEMS]:
        where = ".".join(str(p) for p in error.path) or "input"
        line = f"{where}: {error.message}"
        # jsonschema quotes the offending value: keep a reply about a 60 KB value short, with
        # the verdict at the end of the line.
        problems.append(clip_middle(line, 300))
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"... and {len(errors) - MAX_PROBLEMS} more problems")
    return problems


def clip_middle(text: str, limit: int) -> str:
    """``text`` at most ``limit`` characters long, its middle replaced by ``…`` if needed.

    Messages quoting a value (``'xxx…xxx' is too long``) keep their start and their verdict.
    """
    if len(text) <= limit:
        return text
    tail = limit // 2
    return text[: limit - tail - 1] + "…" + text[-tail:]


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
        else:  # a placeholder that fails validation if pasted as is (see validate_input)
            out[name] = placeholder(name)
    return out


def placeholder(name: str) -> str:
    """The stand-in for field ``name`` in example commands: ``"<name>"``, refused as input."""
    return f"<{name}>"


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
