"""Plain-Python checks compiled from the record JSON Schemas: the fast path of
:func:`metaflow_hitl.records.decode_record`.

Validating a record with ``jsonschema`` costs ~0.5 ms: 90 % of the time ``list --all`` and
``audit`` spent on a store of 10,000 gates. The schemas in
:data:`~metaflow_hitl.records.RECORD_SCHEMAS` use a small set of keywords, so
:func:`compile_schema` turns one into plain Python checks (~30 us a record) that accept a
document only when the schema does: they are never looser (``integer`` refuses ``1.0``,
``enum``/``const`` compare types too, ``pattern`` uses ``re.search`` as ``jsonschema`` does).
A schema using any other keyword compiles to ``None``. ``decode_record`` still runs
``jsonschema`` on every document the check does not accept, so its errors and messages are
unchanged; only valid records skip it. ``tests/unit/test_record_check.py`` compares the two
on valid, mutated and random documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["Check", "compile_schema"]

Check = Callable[[Any], bool]

_TYPES: dict[str, Check] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}
_NUMBER = _TYPES["number"]
#: Keywords that carry no constraint.
_ANNOTATIONS = frozenset({"$schema", "title", "description"})


class _Unknown(Exception):
    """The schema uses a keyword this module does not compile."""


def _same(value: Any, allowed: Any) -> bool:
    return type(value) is type(allowed) and value == allowed


def _keyword(key: str, arg: Any, schema: dict[str, Any]) -> Check | None:
    """The check of one keyword (``None``: no constraint); raises :class:`_Unknown`."""
    if key in _ANNOTATIONS:
        return None
    if key == "type":
        names = [arg] if isinstance(arg, str) else list(arg)
        if any(n not in _TYPES for n in names):
            raise _Unknown(key)
        tests = [_TYPES[n] for n in names]
        return lambda v: any(f(v) for f in tests)
    if key == "const":
        return lambda v: _same(v, arg)
    if key == "enum":
        allowed = tuple(arg)
        return lambda v: any(_same(v, x) for x in allowed)
    if key == "minLength":
        return lambda v: not isinstance(v, str) or len(v) >= arg
    if key == "maxLength":
        return lambda v: not isinstance(v, str) or len(v) <= arg
    if key == "pattern":
        rx = re.compile(arg)  # jsonschema matches with Python's re.search too
        return lambda v: not isinstance(v, str) or rx.search(v) is not None
    if key == "minimum":
        return lambda v: not _NUMBER(v) or v >= arg
    if key == "maximum":
        return lambda v: not _NUMBER(v) or v <= arg
    if key == "exclusiveMinimum":
        return lambda v: not _NUMBER(v) or v > arg
    if key == "exclusiveMaximum":
        return lambda v: not _NUMBER(v) or v < arg
    if key == "maxItems":
        return lambda v: not isinstance(v, list) or len(v) <= arg
    if key == "minItems":
        return lambda v: not isinstance(v, list) or len(v) >= arg
    if key == "items":
        item = _compile(arg)
        return lambda v: not isinstance(v, list) or all(item(x) for x in v)
    if key == "required":
        required = tuple(arg)
        return lambda v: not isinstance(v, dict) or all(k in v for k in required)
    if key == "properties":
        props = {name: _compile(sub) for name, sub in arg.items()}
        return lambda v: not isinstance(v, dict) or all(f(v[k]) for k, f in props.items() if k in v)
    if key == "additionalProperties":
        known = frozenset(schema.get("properties", {}))
        if arg is True:
            return None
        if arg is False:
            return lambda v: not isinstance(v, dict) or v.keys() <= known
        extra = _compile(arg)
        return lambda v: (
            not isinstance(v, dict) or all(extra(x) for n, x in v.items() if n not in known)
        )
    raise _Unknown(key)


def _compile(schema: Any) -> Check:
    if not isinstance(schema, dict):
        raise _Unknown(schema)
    checks = [c for key, arg in schema.items() if (c := _keyword(key, arg, schema)) is not None]
    return lambda v: all(f(v) for f in checks)


def compile_schema(schema: Any) -> Check | None:
    """A function telling whether a document certainly matches ``schema``; ``None`` when
    the schema uses a keyword this module does not compile."""
    try:
        return _compile(schema)
    except _Unknown:
        return None
