"""``key=value`` approval input, typed by the gate's input schema.

``/approve deploy_target=staging replicas=3`` means ``{"deploy_target": "staging",
"replicas": 3}`` when the schema says ``replicas`` is an integer. Each value is read as the
type its property declares (``string``: as written; ``integer``, ``number``, ``boolean``,
``null``: as the JSON literal; ``array``, ``object``: as JSON); a value in double quotes is
always a string (JSON string escapes apply); a key the schema does not declare, or declares
without a type, gets the text as a string. The schema then validates the result as usual.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["PAIRS", "split_pairs", "type_pairs"]

#: One ``key=value`` token: a bare value has no whitespace; a quoted one is a JSON string.
_PAIR = r'[A-Za-z_][A-Za-z0-9_.-]*=(?:"(?:[^"\\\n]|\\.)*"|[^\s"]*)'
#: The whole rest of an ``/approve`` line made only of pairs.
PAIRS = re.compile(rf"{_PAIR}(?:[ \t]+{_PAIR})*")
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_ORDER = ("null", "boolean", "integer", "number", "array", "object", "string")


def split_pairs(text: str) -> list[tuple[str, str, bool]]:
    """``(key, raw value, quoted)`` of each token of a :data:`PAIRS` match."""
    out = []
    for token in re.findall(_PAIR, text):
        key, _, raw = token.partition("=")
        out.append((key, raw, raw.startswith('"')))
    return out


def _as(kind: str, raw: str) -> tuple[bool, Any]:
    if kind == "string":
        return True, raw
    if kind == "integer" and _INT.fullmatch(raw):
        return True, int(raw)
    if kind == "number" and _NUMBER.fullmatch(raw):
        return True, json.loads(raw)
    if kind == "boolean" and raw in ("true", "false"):
        return True, raw == "true"
    if kind == "null" and raw == "null":
        return True, None
    if kind in ("array", "object"):
        try:
            value = json.loads(raw)
        except ValueError:
            return False, None
        if isinstance(value, list if kind == "array" else dict):
            return True, value
    return False, None


def type_pairs(
    pairs: list[tuple[str, str, bool]], schema: Mapping[str, Any] | None
) -> dict[str, Any] | list[str]:
    """The input object the pairs mean under ``schema``, or the problems found.

    Problems: a key given twice, a value that is not of its property's type.
    """
    props = (schema or {}).get("properties") or {}
    out: dict[str, Any] = {}
    problems: list[str] = []
    for key, raw, quoted in pairs:
        if key in out:
            problems.append(f"{key} is given twice")
            continue
        if quoted:
            try:
                out[key] = json.loads(raw)
            except ValueError:
                problems.append(f"{key}: {raw} is not a valid double-quoted string")
            continue
        prop = props.get(key)
        kinds = prop.get("type") if isinstance(prop, Mapping) else None
        if kinds is None:
            out[key] = raw
            continue
        listed = [kinds] if isinstance(kinds, str) else list(kinds)
        for kind in sorted(listed, key=lambda k: _ORDER.index(k) if k in _ORDER else 99):
            ok, value = _as(str(kind), raw)
            if ok:
                out[key] = value
                break
        else:
            problems.append(
                f"{key}={raw} is not {' or '.join(map(str, listed))}, as the gate's input "
                f"schema wants for {key}"
            )
    return problems or out
