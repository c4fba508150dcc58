"""GitHub's REST contract, as the fake GitHub server checks it.

The contract is GitHub's own OpenAPI description of api.github.com, shipped by the npm package
``@octokit/openapi`` (``generated/api.github.com.json``; installed by ``npm ci`` at the repository
root, see ``tests/fakes/README.md``). It is read once per process (:func:`load_contract`) and used
twice:

* every path template of the whole description becomes a route, so a request GitHub does not
  document is told apart from one GitHub documents but the fake does not implement;
* the operations the fake implements are copied, with every component they reference, into a
  small description that ``openapi-core`` validates requests and responses against (the whole
  13 MB description would take seconds to walk on every request).

Places where the description disagrees with GitHub's behaviour, with its own prose or with
itself are patched in :data:`AMENDMENTS`, each with its reason. Keep that list short: every entry
is a place where the fake is more lenient than the schema.

Docs: https://github.com/github/rest-api-description, https://openapi-core.readthedocs.io
"""

from __future__ import annotations

import copy
import functools
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]
PACKAGE_DIR = REPO_ROOT / "node_modules" / "@octokit" / "openapi"
SPEC_FILE = PACKAGE_DIR / "generated" / "api.github.com.json"

#: The host the small description declares; requests are validated as if sent to it.
_SPEC_HOST = "http://api.github.invalid"

#: Statuses GitHub may answer on any route, documented or not (auth, rate limits, missing
#: resources, outages). When an operation does not document one of these, the body is checked
#: against ``basic-error`` instead of being reported as an undocumented status.
GENERIC_ERROR_STATUSES = frozenset({401, 403, 404, 429, 500, 502, 503, 504})

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class SpecMissing(RuntimeError):
    """``node_modules/@octokit/openapi`` is not installed (run ``npm ci`` at the repo root)."""


def _labels_as_bare_array(spec: dict[str, Any]) -> None:
    op = spec["paths"]["/repos/{owner}/{repo}/issues/{issue_number}/labels"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    items = schema["oneOf"][0]["properties"]["labels"]["items"]
    schema["oneOf"].append({"type": "array", "minItems": 1, "items": copy.deepcopy(items)})


def _nullable_simple_label_description(spec: dict[str, Any]) -> None:
    labels = spec["components"]["schemas"]["pull-request-simple"]["properties"]["labels"]
    labels["items"]["properties"]["description"]["nullable"] = True


def _contents_conflict_any_of(spec: dict[str, Any]) -> None:
    op = spec["paths"]["/repos/{owner}/{repo}/contents/{path}"]["put"]
    schema = op["responses"]["409"]["content"]["application/json"]["schema"]
    schema["anyOf"] = schema.pop("oneOf")


def _contents_without_array_discriminator(spec: dict[str, Any]) -> None:
    op = spec["paths"]["/repos/{owner}/{repo}/contents/{path}"]["get"]
    del op["responses"]["200"]["content"]["application/json"]["schema"]["discriminator"]


def _null_in_nullable_enums(spec: dict[str, Any]) -> None:
    stack: list[Any] = [spec]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("nullable") is True and None not in node.get("enum", [None]):
                node["enum"] = [*node["enum"], None]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


#: Where GitHub's description and GitHub's behaviour disagree, and the fake sides with the
#: behaviour: (why, patch of the small description). Keep it short; each entry is leniency.
AMENDMENTS: tuple[tuple[str, Callable[[dict[str, Any]], None]], ...] = (
    (
        "issues/add-labels: the schema documents only {'labels': [...]}, but its description "
        "says 'You can also pass an array of labels directly', and PyGithub's add_to_labels() "
        "sends exactly that",
        _labels_as_bare_array,
    ),
    (
        "pull-request-simple: a label's description is nullable in `label` and `pull-request` "
        "but not here; GitHub sends null for a label without a description",
        _nullable_simple_label_description,
    ),
    (
        "repos/create-or-update-file-contents 409: oneOf basic-error or "
        "repository-rule-violation-error, whose properties are all optional, so every body "
        "matches both and oneOf can never pass; read as anyOf",
        _contents_conflict_any_of,
    ),
    (
        "repos/get-content 200: the discriminator maps 'array' to content-directory, but an "
        "array has no `type` property to discriminate on, so every directory listing fails; "
        "the oneOf without it still tells the four shapes apart",
        _contents_without_array_discriminator,
    ),
    (
        "nullable enums (e.g. issue.state_reason): GitHub sends null, which OpenAPI 3.0.3 "
        "allows only when the enum lists null; openapi-core enforces that reading",
        _null_in_nullable_enums,
    ),
)


@dataclass(frozen=True)
class Route:
    """One path template of the description, with the methods documented on it."""

    pattern: str
    regex: re.Pattern[str]
    operations: Mapping[str, str]  # lower-case method -> operationId
    names: tuple[str, ...]  # path parameters, in order
    n_literal: int


@dataclass(frozen=True)
class Match:
    """A request path matched to a documented operation."""

    method: str
    pattern: str
    operation_id: str
    params: Mapping[str, str]


@dataclass(frozen=True)
class _Request:
    """The request shape openapi-core reads (its ``Request`` + ``SupportsPathPattern``)."""

    method: str
    path: str
    path_pattern: str
    body: bytes | None
    content_type: str
    parameters: Any
    host_url: str = _SPEC_HOST


@dataclass(frozen=True)
class _Response:
    status_code: int
    data: bytes | None
    content_type: str
    headers: Any


@dataclass
class GitHubContract:
    """Routes of the whole description plus validators for the implemented operations."""

    version: str
    routes: tuple[Route, ...]
    operations: Mapping[str, dict[str, Any]]  # operationId -> operation, as described
    load_seconds: float
    _openapi: Any = field(repr=False)
    _basic_error: Any = field(repr=False)

    def match(self, method: str, raw_path: str) -> Match | str:
        """The documented operation for ``method raw_path``, or why there is none."""
        from urllib.parse import unquote

        method = method.lower()
        candidates = [(route, m) for route in self.routes if (m := route.regex.fullmatch(raw_path))]
        if not candidates:
            return f"no path of GitHub's REST API matches {raw_path!r}"
        with_method = [c for c in candidates if method in c[0].operations]
        if not with_method:
            documented = sorted({m.upper() for c in candidates for m in c[0].operations})
            return (
                f"GitHub documents {candidates[0][0].pattern} only for {', '.join(documented)}, "
                f"not {method.upper()}"
            )
        route, m = min(with_method, key=lambda c: (len(c[0].names), -c[0].n_literal))
        params = {k: unquote(v) for k, v in zip(route.names, m.groups(), strict=True)}
        return Match(method, route.pattern, route.operations[method], params)

    def documented_statuses(self, operation_id: str) -> frozenset[str]:
        return frozenset(self.operations[operation_id]["responses"])

    def request_errors(
        self,
        match: Match,
        *,
        path: str,
        query: Any,
        headers: Any,
        body: bytes | None,
        content_type: str,
    ) -> list[str]:
        """Every way the request breaks the operation's parameters or body schema."""
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import ImmutableMultiDict

        request = _Request(
            method=match.method,
            path=path,
            path_pattern=match.pattern,
            body=body,
            content_type=content_type,
            parameters=RequestParameters(
                path=dict(match.params),
                query=query,
                header=headers,
                cookie=ImmutableMultiDict(),
            ),
        )
        return [_describe(e) for e in self._openapi.iter_request_errors(request)]

    def response_errors(
        self,
        match: Match,
        *,
        path: str,
        status: int,
        headers: Any,
        body: bytes | None,
        content_type: str,
    ) -> list[str]:
        """Every way the response breaks what the operation documents for its status."""
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        documented = self.documented_statuses(match.operation_id)
        if str(status) not in documented and "default" not in documented:
            if status in GENERIC_ERROR_STATUSES:
                return self.generic_error_errors(body)
            return [
                f"status {status} is not documented for {match.operation_id} "
                f"(documented: {', '.join(sorted(documented))})"
            ]
        request = _Request(
            method=match.method,
            path=path,
            path_pattern=match.pattern,
            body=None,
            content_type="application/json",
            parameters=RequestParameters(
                path=dict(match.params),
                query=ImmutableMultiDict(),
                header=Headers(),
                cookie=ImmutableMultiDict(),
            ),
        )
        response = _Response(status, body, content_type, headers)
        return [_describe(e) for e in self._openapi.iter_response_errors(request, response)]

    def generic_error_errors(self, body: bytes | None) -> list[str]:
        """Check an error body GitHub may send on any route against ``basic-error``."""
        if not body:
            return []
        try:
            value = json.loads(body)
        except ValueError as e:
            return [f"error body is not JSON: {e}"]
        return [_schema_error(e) for e in self._basic_error.iter_errors(value)]


def _schema_error(error: Any) -> str:
    from jsonschema.exceptions import best_match

    where = "/".join(str(p) for p in error.absolute_path) or "<root>"
    if error.context:
        best = best_match(error.context)
        inner = "/".join(str(p) for p in best.absolute_path) or "<root>"
        return f"{where}: {_short(error.message)} (closest: {inner}: {_short(best.message)})"
    return f"{where}: {_short(error.message)}"


def _short(message: str) -> str:
    # jsonschema messages start with the offending value, which can be kilobytes long
    return message if len(message) <= 240 else f"{message[:100]} ... {message[-120:]}"


def _describe(error: BaseException) -> str:
    """A short summary of an openapi-core error: its kind and the schema errors behind it
    (never the whole offending value, which can be kilobytes of JSON)."""
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    kinds = " <- ".join(dict.fromkeys(type(e).__name__ for e in chain))
    for link in chain:
        schema_errors = getattr(link, "schema_errors", None)
        if schema_errors:
            details = [_schema_error(e) for e in list(schema_errors)]
            more = f" (+{len(details) - 8} more)" if len(details) > 8 else ""
            return f"{kinds}: {'; '.join(details[:8])}{more}"
    text = str(chain[-1]) or str(error)
    return f"{kinds}: {text[:300]}"


def _resolve(spec: Mapping[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].split("/")[1:]:
            target = target[part]
        node = target
    return node


def _route(spec: Mapping[str, Any], pattern: str, item: Mapping[str, Any]) -> Route:
    multi: set[str] = set()
    operations: dict[str, str] = {}
    shared = item.get("parameters", [])
    for method in _METHODS:
        op = item.get(method)
        if not isinstance(op, dict):
            continue
        operations[method] = op["operationId"]
        for param in [*shared, *op.get("parameters", [])]:
            param = _resolve(spec, param)
            if param.get("in") == "path" and param.get("x-multi-segment"):
                multi.add(param["name"])
    regex, names, n_literal = "", [], 0
    for piece in re.split(r"(\{[^}]+\})", pattern):
        if piece.startswith("{") and piece.endswith("}"):
            names.append(piece[1:-1])  # may hold "-", so groups are positional
            regex += "(.+)" if names[-1] in multi else "([^/]+)"
        else:
            regex += re.escape(piece)
            n_literal += len(piece)
    return Route(pattern, re.compile(regex), operations, tuple(names), n_literal)


def _referenced_components(spec: Mapping[str, Any], roots: Iterable[Any]) -> dict[str, Any]:
    components: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref not in seen:
                seen.add(ref)
                _, _, section, name = ref.split("/")
                target = spec["components"][section][name]
                components.setdefault(section, {})[name] = target
                stack.append(target)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return components


def _check_no_suffix_clash(paths: Mapping[str, Any]) -> None:
    # openapi-core takes the first path whose template is a suffix of the matched one.
    for a in paths:
        for b in paths:
            if a != b and a.endswith(b):
                raise RuntimeError(f"{b} is a suffix of {a}: openapi-core would confuse them")


@functools.cache
def load_contract(operation_ids: frozenset[str]) -> GitHubContract:
    """Read the description once and build the routes and the validators for ``operation_ids``.

    Raises :class:`SpecMissing` when the npm package is not installed, and ``LookupError`` when
    an operation id is not in the description (a fake must implement real operations only).
    """
    if not SPEC_FILE.is_file():
        raise SpecMissing(
            f"{SPEC_FILE.relative_to(REPO_ROOT)} is missing: run `npm ci` at the repository root"
        )
    from openapi_core import Config, OpenAPI
    from openapi_schema_validator import OAS30Validator

    started = time.perf_counter()
    with SPEC_FILE.open("rb") as f:
        spec = json.load(f)

    routes = tuple(_route(spec, pattern, item) for pattern, item in spec["paths"].items())
    paths: dict[str, dict[str, Any]] = {}
    operations: dict[str, dict[str, Any]] = {}
    for pattern, item in spec["paths"].items():
        for method in _METHODS:
            op = item.get(method)
            if isinstance(op, dict) and op["operationId"] in operation_ids:
                target = paths.setdefault(pattern, {})
                if "parameters" in item:
                    target["parameters"] = item["parameters"]
                target[method] = op
                operations[op["operationId"]] = op
    missing = operation_ids - operations.keys()
    if missing:
        raise LookupError(f"not in GitHub's OpenAPI description: {', '.join(sorted(missing))}")

    small = {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "servers": [{"url": _SPEC_HOST}],
        "paths": paths,
        "components": _referenced_components(spec, [paths]),
    }
    small = copy.deepcopy(small)
    for _, amend in AMENDMENTS:
        amend(small)
    _check_no_suffix_clash(paths)
    openapi = OpenAPI.from_dict(small, config=Config(spec_validator_cls=None))
    basic_error = OAS30Validator(spec["components"]["schemas"]["basic-error"])
    return GitHubContract(
        version=spec["info"]["version"],
        routes=routes,
        operations=operations,
        load_seconds=time.perf_counter() - started,
        _openapi=openapi,
        _basic_error=basic_error,
    )
