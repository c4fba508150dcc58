"""Argo's two steps on a gated template's ``retryStrategy.expression``, for the tests.

1. Tag substitution (``SubstituteParams``, ``workflow/common/util.go``): a simple tag
   ``{{inputs.parameters.x}}`` is replaced by the value's text, escaped for JSON only
   (``util/template/simple_template.go``: ``strconv.Quote`` and the quotes cut), so a value is
   pasted into the expression verbatim once the template is decoded; an expression tag
   ``{{=EXPR}}`` is *evaluated* with the parameters as variables and replaced by its JSON
   result (``util/template/expression_template.go``), so a value is never read as syntax.
2. ``processNodeRetries`` (``workflow/controller/operator.go``) evaluates what is left as an
   expr-lang boolean.

:func:`substitute` does step 1 for the grammar a gate's expression tag uses (a member/index
chain compared with ``in`` to a list of string literals, which expr-lang and Python parse
alike: the tag's text is parsed with :mod:`ast` and only those node types are accepted);
:func:`evaluate` then requires what is left to be a bare ``true``/``false`` (optionally
``(...) && (...)`` of them), so any text of the value left in the expression fails the test.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

_SIMPLE_TAG = re.compile(r"\{\{(?!=)(.*?)\}\}")
_EXPRESSION_TAG = re.compile(r"\{\{=(.*?)\}\}")


def _env(parameters: dict[str, str]) -> dict[str, Any]:
    """The environment Argo builds: dotted keys expanded into nested maps (``util/expand``)."""
    env: dict[str, Any] = {}
    for name, value in parameters.items():
        node = env
        *parents, leaf = f"inputs.parameters.{name}".split(".", 2)
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return env


def _eval(node: ast.AST, env: dict[str, Any]) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body, env)
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.Attribute):  # expr-lang member access on a map
        return _eval(node.value, env)[node.attr]
    if isinstance(node, ast.Subscript):
        return _eval(node.value, env)[_eval(node.slice, env)]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.List):
        return [_eval(e, env) for e in node.elts]
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.In):
        return _eval(node.left, env) in _eval(node.comparators[0], env)
    raise AssertionError(f"not in the grammar a gate's expression tag uses: {ast.dump(node)}")


def substitute(expression: str, parameters: dict[str, str]) -> str:
    """``expression`` after Argo's tag substitution with these input parameters."""
    env = _env(parameters)

    def simple(match: re.Match[str]) -> str:
        name = match.group(1).strip().removeprefix("inputs.parameters.")
        return parameters[name]

    def evaluated(match: re.Match[str]) -> str:
        return json.dumps(_eval(ast.parse(match.group(1), mode="eval"), env))

    return _SIMPLE_TAG.sub(simple, _EXPRESSION_TAG.sub(evaluated, expression))


def evaluate(expression: str, parameters: dict[str, str]) -> bool:
    """Whether Argo retries: the substituted expression must be made of ``true``/``false``
    (joined by ``&&`` in parentheses) and nothing else."""
    text = substitute(expression, parameters)
    terms = [t.strip().removeprefix("(").removesuffix(")") for t in text.split("&&")]
    assert all(t in ("true", "false") for t in terms), text
    return all(t == "true" for t in terms)
