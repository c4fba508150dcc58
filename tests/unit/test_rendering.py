"""Rendering for the review repo: golden files, Markdown escaping, markers, template loading.

Golden files live in ``tests/golden/rendering/``. A difference fails the test with a diff;
``HITL_REGEN_GOLDEN=1 pytest tests/unit/test_rendering.py`` rewrites them (review the diff
before committing). Where markdown-it-py is installed, rendered Markdown is also parsed as
CommonMark (with GFM tables) to prove that hostile values stay text.
"""

from __future__ import annotations

import html
import json
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaflow_hitl.errors import ConfigError, InvalidInput
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.markers import (
    MARKER_NAME,
    Marker,
    MarkerProblem,
    is_bot_reply,
    marker_for,
    parse_markers,
    render_marker,
    render_reply_marker,
    sole_marker,
    verify_marker,
)
from metaflow_hitl.records import Actor, Decision, Request, decode_record
from metaflow_hitl.render.documents import (
    TEMPLATES_DIR_ENV,
    ArtifactSummary,
    approval_path,
    decision_path,
    parse_approval_path,
    render_approval_file,
    render_decision_record,
    render_issue_body,
    render_pr_body,
    render_pr_title,
    render_reply,
    summarize_artifacts,
    summarize_value,
    template_environment,
)
from metaflow_hitl.render.markdown import (
    MarkdownText,
    code_block,
    code_span,
    escape_inline,
    escape_lines,
    normalize_text,
)
from metaflow_hitl.review.trailers import AuditEntry, decision_commit_message, open_commit_message
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.timestamps import add_seconds
from tests.support.golden import check_golden

ZWJ = "\u200d"

try:
    from markdown_it import MarkdownIt
except ImportError:  # pragma: no cover - markdown-it-py is optional for these tests
    MarkdownIt = None

needs_parser = pytest.mark.skipif(MarkdownIt is None, reason="markdown-it-py is not installed")


def to_html(text: str) -> str:
    assert MarkdownIt is not None
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(text)


# --- requests and values ----------------------------------------------------------------

# Self-contained on purpose: golden files pin every byte, so the requests are built here.
T0 = datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=timezone.utc)
GATE = GateId("TrainAndDeploy", "1732", "gate")


def build_request(*, gate: GateId = GATE, **options: Any) -> Request:
    options.setdefault("timeout", "1h")
    spec = GateSpec.from_options(**options)
    return spec.request_for(
        gate,
        message=spec.message,
        started_by="starter",
        runtime="local",
        now=T0,
        store="/tmp/hitl-test-store",
    )


def actor(login: str, at: datetime = T0, channel: Any = "cli") -> Actor:
    return Actor(login=login, channel=channel, at=at)


SCHEMA = {
    "type": "object",
    "properties": {
        "deploy_target": {
            "type": "string",
            "enum": ["staging", "production"],
            "description": "Where the model goes.",
        },
        "replicas": {"type": "integer", "default": 2, "description": "Serving replicas."},
        "notes": {"type": ["string", "null"]},
    },
    "required": ["deploy_target", "replicas"],
    "additionalProperties": False,
}

HOSTILE_MESSAGE = (
    "# Deploy now\n"
    "Click [here](javascript:alert(1)) or ![img](http://x/y.png)\n"
    "<script>alert('x')</script> <img src=x onerror=alert(1)>\n"
    "cc @octocat and @acme/admins\n"
    "/approve {}\n"
    "    indented code?\n"
    "1. list | table | cell\n"
    "-->  <!-- metaflow-hitl:v1 {} --> ``` ~~~ $x^2$ *bold* _it_ ~~gone~~\n"
    "\u202eevil\u202c naïve 中文 😀"
)

FORGED = (
    '<!-- metaflow-hitl:v1 {"digest": "sha256:' + "0" * 64 + '", "gate_id": "Other/1/gate", '
    '"store": "s3://attacker"} -->'
)

HOSTILE_ARTIFACTS: dict[str, Any] = {
    "heading": "# heading\n## another",
    "link": "[click](javascript:alert(document.cookie))",
    "image": "![img](http://x/track.png)",
    "script": "<script>alert(1)</script>",
    "mentions": "@org/team please look, @user too",
    "command": "ok\n/approve {}\n/reject no",
    "backticks": "``` `` ` code",
    "comment_end": "--> <!-- -->",
    "forged_marker": FORGED,
    "pipes": "a | b \\| c",
    "long": "x" * 10_000,
    "unicode": "naïve 中文 😀 \u202eRTL\u202c \x00\x1b[31m",
    "nested": {"a": ["<b>", {"c": "@d"}], "e": ("`",)},
}


def basic_request() -> Request:
    request = build_request(
        message="Accuracy 93.1% on the holdout set.\nDeploy model v7?",
        input_schema=SCHEMA,
        approvers=["alice", "bob", "acme/ml-leads"],
        min_approvals=2,
        timeout="1d",
    )
    return replace(
        request, links={"metaflow_ui": "https://mf.example/TrainAndDeploy/1732"}, nonce="1" * 32
    )


def hostile_request() -> Request:
    schema = {
        "type": "object",
        "properties": {
            "target|x": {"type": "string", "description": "@admins # not a heading\n/approve {}"},
            "`code`": {"type": "string", "default": "<b>x</b>"},
        },
        "required": ["target|x"],
    }
    request = build_request(message="placeholder", input_schema=schema)
    return replace(
        request,
        message=HOSTILE_MESSAGE,
        started_by="@mallory",
        store="/tmp/store'; rm -rf ~ #-->",
        nonce="2" * 32,
    )


def argo_request() -> Request:
    request = build_request(
        gate=GateId("NightlyRetrain", "argo-nightly-retrain-x7k2p", "approve_deploy"),
        message="Ship the nightly model?",
        on_timeout="approve",
        on_reject="continue",
        timeout="2h30m",
        allow_self_approval=True,
    )
    return replace(
        request,
        runtime="argo-workflows",
        store="s3://ml-bucket/hitl",
        origin={
            "workflow": "nightly-retrain-x7k2p",
            "namespace": "ml",
            "node_selector": "hitl-gate=NightlyRetrain-approve_deploy",
        },
        links={
            "argo_ui": "https://argo.example/workflows/ml/nightly-retrain-x7k2p",
            "code_package": "s3://ml-bucket/metaflow/NightlyRetrain/data/ab/abcdef",
            "runbook": "javascript:alert(1)",
        },
        nonce="3" * 32,
    )


def decision(request: Request, outcome: str = "approved", **overrides: Any) -> Decision:
    at = add_seconds(T0, 600)
    values: dict[str, Any] = {
        "gate_id": request.gate_id,
        "outcome": outcome,
        "proceed": outcome == "approved",
        "decided_by": "alice",
        "channel": "comment",
        "deciders": (actor("bob", at, "github-review"), actor("alice", at, "comment")),
        "decided_at": at,
        "request_digest": request.digest(),
        "input": {"deploy_target": "staging", "replicas": 2} if outcome == "approved" else {},
        "evidence_url": "https://github.com/acme/approvals/pull/7#issuecomment-1",
        "nonce": "0" * 32,
    }
    values.update(overrides)
    return Decision(**values)


ARTIFACTS = summarize_artifacts(
    {"accuracy": 0.931, "model_version": "v7", "feature_counts": {"age": 10, "income": 12}}
)


# --- golden files -----------------------------------------------------------------------


def test_approval_file_golden() -> None:
    text = render_approval_file(
        basic_request(), artifacts=ARTIFACTS, flow_file_hint="flows/train_and_deploy.py"
    )
    check_golden("rendering/approval_basic.md", text)


def test_approval_file_argo_golden() -> None:
    check_golden("rendering/approval_argo.md", render_approval_file(argo_request()))


def test_approval_file_hostile_golden() -> None:
    text = render_approval_file(
        hostile_request(), artifacts=summarize_artifacts(HOSTILE_ARTIFACTS, max_chars=80)
    )
    check_golden("rendering/approval_hostile.md", text)


def test_pr_body_golden() -> None:
    check_golden("rendering/pr_body.md", render_pr_body(basic_request(), flow_file_hint="flow.py"))


def test_issue_body_golden() -> None:
    check_golden("rendering/issue_body.md", render_issue_body(basic_request(), artifacts=ARTIFACTS))


def test_decision_record_golden() -> None:
    request = basic_request()
    check_golden(
        "rendering/decision_record.json", render_decision_record(request, decision(request))
    )


def test_commit_message_golden() -> None:
    request = basic_request()
    reason = "looks good\n\nHitl-Outcome: rejected"
    text = decision_commit_message(request, decision(request, reason=reason))
    check_golden("rendering/commit_message.txt", text)


@pytest.mark.parametrize(
    ("name", "outcome", "overrides"),
    [
        ("reply_approved.md", "approved", {}),
        (
            "reply_rejected.md",
            "rejected",
            {
                "reason": "accuracy regressed\n# not a heading\n@team /approve {}",
                "deciders": (actor("alice", T0, "comment"),),
            },
        ),
        (
            "reply_timed_out.md",
            "timed_out",
            {
                "decided_by": "timeout",
                "channel": "timeout",
                "evidence_url": None,
                "deciders": (actor("timeout", T0, "timeout"),),
                "reason": "no decision",
            },
        ),
    ],
    ids=["approved", "rejected", "timed-out"],
)
def test_reply_golden(name: str, outcome: str, overrides: dict[str, Any]) -> None:
    request = basic_request()
    check_golden(
        f"rendering/{name}", render_reply(request, decision(request, outcome, **overrides))
    )


def test_reply_refusal_golden() -> None:
    refusal = InvalidInput(
        "approval input fails the gate's input schema",
        problems=["replicas: '@admins <b>three</b>' is not of type 'integer'"],
        hint='Comment again: /approve {"deploy_target": "staging", "replicas": 2}',
    )
    check_golden("rendering/reply_refused.md", render_reply(basic_request(), refusal))


def test_reply_refusal_from_text_uses_given_hint() -> None:
    text = render_reply(basic_request(), "you are not an approver", hint="Ask `alice`.")
    assert "you are not an approver" in text
    assert "Ask \\`alice\\`." in text
    assert is_bot_reply(text)


def test_pr_title_is_one_plain_line_without_mentions() -> None:
    title = render_pr_title(hostile_request(), max_chars=60)
    assert "\n" not in title
    assert len(title) == 60
    assert title.endswith("…")
    assert not re.search(r"@\w", render_pr_title(replace(basic_request(), message="@octocat")))


# --- hostile values stay text -------------------------------------------------------------


def _strip_code(text: str) -> str:
    """Drop fenced blocks and code spans: GitHub links no mention and runs no HTML there."""
    text = re.sub(r"(?ms)^(`{3,})[^\n]*\n.*?^\1\s*$", "", text)
    return re.sub(r"(`+).*?\1", "", text)


@pytest.fixture(scope="module")
def hostile_file() -> str:
    return render_approval_file(
        hostile_request(),
        artifacts=summarize_artifacts(HOSTILE_ARTIFACTS, max_chars=80),
        links={"metaflow_ui": "https://mf.example/x?a=<b>&c=(d)", "evil": "javascript:alert(1)"},
    )


def test_hostile_values_forge_no_marker(hostile_file: str) -> None:
    assert parse_markers(hostile_file) == [marker_for(hostile_request())]
    outside_code = _strip_code(hostile_file)
    assert outside_code.count("-->") == 1
    assert outside_code.count("<!--") == 1


def test_hostile_values_add_no_command_line(hostile_file: str) -> None:
    lines = _strip_code(hostile_file).splitlines()
    assert not [line for line in lines if re.match(r"[\s>]*/(approve|reject)", line)]


def test_hostile_values_mention_no_one(hostile_file: str) -> None:
    assert not re.search(r"@[A-Za-z0-9]", _strip_code(hostile_file))


def test_hostile_values_add_no_html(hostile_file: str) -> None:
    assert not re.search(
        r"<(?!code>|/code>|!-- metaflow-hitl:v1 |https://)", _strip_code(hostile_file)
    )


def test_hostile_values_add_no_heading_or_unsafe_link(hostile_file: str) -> None:
    headings = [line for line in hostile_file.splitlines() if line.startswith("#")]
    assert headings == [
        "# Approval requested: `TrainAndDeploy/1732/gate`",
        "## Input",
        "## Input artifacts",
        "## Links",
        "## How to decide",
    ]
    assert not re.search(r"(?<!\\)\]\((?!<https://)", _strip_code(hostile_file))
    assert "- Evil: `javascript:alert(1)`" in hostile_file


def test_store_path_is_shell_quoted(hostile_file: str) -> None:
    line = next(x for x in hostile_file.splitlines() if x.startswith("metaflow-hitl "))
    assert shlex.split(line)[:4] == [
        "metaflow-hitl",
        "--store",
        hostile_request().store,
        "approve",
    ]


@needs_parser
def test_hostile_file_parses_to_text_only(hostile_file: str) -> None:
    page = to_html(hostile_file)
    tags = set(re.findall(r"<([a-z0-9]+)", page))
    assert tags <= {
        "h1",
        "h2",
        "p",
        "ul",
        "li",
        "code",
        "pre",
        "blockquote",
        "br",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "a",
        "strong",
    }
    assert re.findall(r'<a href="([^"]*)"', page) == ["https://mf.example/x?a=%3Cb%3E&amp;c=(d)"]
    assert len(re.findall(r"<h[1-6]", page)) == 5


@needs_parser
def test_hostile_artifacts_render_as_their_summaries(hostile_file: str) -> None:
    page = to_html(hostile_file)
    table = page.split("<h2>Input artifacts</h2>")[1].split("</table>")[0]
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", table, re.S)
    summaries = summarize_artifacts(HOSTILE_ARTIFACTS, max_chars=80)
    assert len(rows) == len(summaries)
    for (name, _type, value), summary in zip(rows, summaries, strict=True):
        shown = html.unescape(re.sub(r"</?code>", "", value)).replace(ZWJ, "")
        assert html.unescape(re.sub(r"</?code>", "", name)) == summary.name
        expected = normalize_text(summary.value).replace("@" + ZWJ, "@")
        assert shown == expected + (" (truncated)" if summary.truncated else "")


@needs_parser
def test_hostile_message_renders_as_quoted_lines(hostile_file: str) -> None:
    page = to_html(hostile_file)
    quote = page.split("<blockquote>")[1].split("</blockquote>")[0]
    text = html.unescape(re.sub(r"<br />\n?|</?p>", "\n", quote)).replace(ZWJ, "")
    lines = [line for line in text.split("\n") if line]
    expected = [
        re.sub(r"^ +", lambda m: "\xa0" * len(m.group()), line.rstrip())
        for line in normalize_text(HOSTILE_MESSAGE).split("\n")
    ]
    assert lines == expected


# --- escaping functions -------------------------------------------------------------------

MD_ALPHABET = st.sampled_from(
    [*"abXY 019\n\t\\`*_{}[]()#+-.!|~<>&@/=:$\"'%^;", "é", "中", "😀", "\u202e", "\x00", "\r"]
)
TEXTS = st.one_of(st.text(MD_ALPHABET, max_size=40), st.text(max_size=40))


def _inline_expected(text: str) -> str:
    value = normalize_text(text).replace("\n", " ").replace("\t", " ")
    stripped = value.lstrip(" ")
    return "\xa0" * (len(value) - len(stripped)) + stripped.replace("@", "@" + ZWJ)


@needs_parser
@settings(max_examples=300)
@given(TEXTS)
def test_escape_inline_renders_as_the_same_characters(text: str) -> None:
    page = to_html("A" + escape_inline(text) + "Z")
    match = re.fullmatch(r"<p>A(.*)Z</p>\n", page, re.S)
    assert match, page
    assert html.unescape(match.group(1)) == _inline_expected(text)


@needs_parser
@settings(max_examples=300)
@given(TEXTS)
def test_escape_inline_in_a_table_cell_stays_in_its_cell(text: str) -> None:
    page = to_html(
        f"| h | i |\n| - | - |\n| {escape_inline(text)} | {code_span(text, cell=True)} |"
    )
    cells = re.findall(r"<td>(.*?)</td>", page, re.S)
    assert len(cells) == 2, page
    # markdown-it-py trims cells with str.strip() (any Unicode space); GFM trims " " and tab.
    assert html.unescape(cells[0]).strip() == _inline_expected(text).strip()
    in_code = normalize_text(text).replace("\n", " ").replace("\t", " ").replace("@", "@" + ZWJ)
    assert html.unescape(re.sub(r"</?code>", "", cells[1])).strip() == in_code.strip()


@needs_parser
@settings(max_examples=300)
@given(TEXTS.filter(lambda t: normalize_text(t).replace("\n", " ").replace("\t", " ") != ""))
def test_code_span_cannot_be_closed_early(text: str) -> None:
    page = to_html("A " + code_span(text) + " Z")
    match = re.fullmatch(r"<p>A <code>(.*)</code> Z</p>\n", page, re.S)
    assert match, page
    assert html.unescape(match.group(1)) == normalize_text(text).replace("\n", " ").replace(
        "\t", " "
    )


@needs_parser
@settings(max_examples=300)
@given(TEXTS)
def test_code_block_cannot_be_closed_early(text: str) -> None:
    page = to_html("A\n\n" + code_block(text, "json") + "\n\nZ")
    match = re.fullmatch(
        r'<p>A</p>\n<pre><code class="language-json">(.*)</code></pre>\n<p>Z</p>\n', page, re.S
    )
    assert match, page
    assert html.unescape(match.group(1)) == normalize_text(text).removesuffix("\n") + "\n"


@needs_parser
@settings(max_examples=300)
@given(TEXTS, st.booleans())
def test_escape_lines_keeps_lines_and_adds_no_markup(text: str, quote: bool) -> None:
    page = to_html(escape_lines(text, quote=quote))
    allowed = {"p", "br", "blockquote"} if quote else {"p", "br"}
    assert set(re.findall(r"</?([a-z0-9]+)", page)) <= allowed, page
    shown = html.unescape(re.sub(r"<[^>]+>", "\n", page)).replace(ZWJ, "")
    expected = [
        re.sub(r"^[ \t]+", lambda m: "\xa0" * len(m.group().replace("\t", "    ")), line)
        for line in (line.rstrip() for line in normalize_text(text).replace(ZWJ, "").split("\n"))
        if line
    ]
    # Compared without Unicode spaces at line ends: markdown-it-py strips them with
    # str.strip() where GFM strips only " " and tab; NBSP indentation we add is kept.
    assert [line.strip() for line in shown.split("\n") if line.strip()] == [
        line.strip() for line in expected if line.strip()
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("# h", "\\# h"),
        ("/approve {}", "\\/approve {}"),
        ("  - item", "&nbsp;&nbsp;\\- item"),
        ("12. x", "12\\. x"),
        ("3) x", "3\\) x"),
        ("a\nb", "a b"),
        ("@user @org/team", f"@{ZWJ}user @{ZWJ}org/team"),
        ("<b>&amp;</b>", "&lt;b&gt;&amp;amp;&lt;/b&gt;"),
        ("[x](y) ![i](z)", "\\[x\\](y) !\\[i\\](z)"),
        ("a|b", "a\\|b"),
        ("$x$ ~s~ *b* _i_", "\\$x\\$ \\~s\\~ \\*b\\* \\_i\\_"),
        ("\u202eevil\x00", "\ufffdevil\ufffd"),
    ],
    ids=[
        "plain",
        "heading",
        "slash-command",
        "indented-list",
        "ordered",
        "ordered-paren",
        "newline",
        "mentions",
        "html",
        "links",
        "pipe",
        "math-strike-emphasis",
        "controls",
    ],
)
def test_escape_inline_table(text: str, expected: str) -> None:
    assert escape_inline(text) == expected


def test_escape_lines_quotes_and_hard_breaks() -> None:
    assert escape_lines("a\n/approve\n\n\n# b\n", quote=True) == "> a\\\n> \\/approve\n>\n> \\# b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x", "`x`"),
        ("a`b", "``a`b``"),
        ("`", "`` ` ``"),
        ("a ``` b", "````a ``` b````"),
        ("", "` `"),
        ("  ", "`  `"),
        ("a\nb", "`a b`"),
    ],
    ids=["plain", "backtick", "only-backtick", "triple", "empty", "spaces", "newline"],
)
def test_code_span_table(text: str, expected: str) -> None:
    assert code_span(text) == expected


def test_code_block_fence_outgrows_content() -> None:
    assert code_block("x\n````\ny\n") == "`````\nx\n````\ny\n`````"
    with pytest.raises(ValueError, match="plain word"):
        code_block("x", "json\n```")


def test_markdown_text_is_not_escaped_twice() -> None:
    once = escape_inline("*x*")
    assert isinstance(once, MarkdownText)
    assert escape_inline(once) == once


# --- artifact summaries -------------------------------------------------------------------


class EvilRepr:
    calls = 0

    def __repr__(self) -> str:
        EvilRepr.calls += 1
        raise RuntimeError("repr must not be called")

    __str__ = __repr__


class FakeArray:
    """Looks like numpy to the summarizer (numpy itself is not a test dependency)."""

    __module__ = "numpy"
    __qualname__ = "ndarray"
    shape = (1000, 3)


class Sub(str):
    pass


loop: list[Any] = []
loop.append(loop)


@pytest.mark.parametrize(
    ("value", "type_name", "text", "truncated"),
    [
        (None, "NoneType", "None", False),
        (True, "bool", "True", False),
        (42, "int", "42", False),
        (10**5000, "int", "<int of 16610 bits>", False),
        (0.931, "float", "0.931", False),
        ("v7", "str", "'v7'", False),
        ("x" * 10_000, "str", "'" + "x" * 26 + "…", True),
        (b"\x00\xff", "bytes", "b'\\x00\\xff'", False),
        ([1, (2,), {3}, set()], "list", "[1, (2,), {3}, set()]", False),
        ({"a": {"b": {"c": {"d": {"e": 1}}}}}, "dict", "{'a': {'b': {'c': {'d': ...}}}}", False),
        (loop, "list", "[[[[...]]]]", False),
        (list(range(10**6)), "list", "[0, 1, 2, 3, 4, 5, 6, 7, 8,…", True),
        (EvilRepr(), "test_rendering.EvilRepr", "<test_rendering.EvilRepr object>", False),
        (Sub("x"), "test_rendering.Sub", "<test_rendering.Sub object>", False),
        (FakeArray(), "numpy.ndarray", "<numpy.ndarray shape=(1000, 3)>", False),
    ],
    ids=[
        "none",
        "bool",
        "int",
        "huge-int",
        "float",
        "str",
        "long-str",
        "bytes",
        "containers",
        "deep",
        "self-reference",
        "million-items",
        "evil-repr",
        "str-subclass",
        "array",
    ],
)
def test_summarize_value(value: Any, type_name: str, text: str, truncated: bool) -> None:
    summary = summarize_value("v", value, max_chars=28 if truncated else 120)
    assert summary == ArtifactSummary(
        name="v", type_name=type_name, value=text, truncated=truncated
    )
    assert EvilRepr.calls == 0


def test_summarize_artifacts_sorts_by_name() -> None:
    assert [s.name for s in summarize_artifacts({"b": 1, "a": 2})] == ["a", "b"]


def test_artifact_rows_are_capped() -> None:
    rows = summarize_artifacts({f"a{i:03d}": i for i in range(60)})
    text = render_approval_file(basic_request(), artifacts=rows)
    assert "a049" in text
    assert "a050" not in text
    assert "…and 10 more, not shown." in text


# --- markers ------------------------------------------------------------------------------


def test_marker_roundtrip() -> None:
    request = argo_request()
    marker = marker_for(request)
    assert marker.workflow == "nightly-retrain-x7k2p"
    assert marker.node_selector == "hitl-gate=NightlyRetrain-approve_deploy"
    assert parse_markers("text\n" + render_marker(request) + "\nmore") == [marker]
    assert verify_marker(marker, request) is None


def test_marker_values_cannot_close_the_comment() -> None:
    request = replace(basic_request(), store="s3://b/--> <!-- & -->", origin={"namespace": "x>"})
    line = render_marker(request)
    assert line.startswith(f"<!-- {MARKER_NAME} {{")
    assert line.count("-->") == 1
    assert line.endswith("} -->")
    assert "<" not in line[4:]
    assert parse_markers(line) == [marker_for(request)]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"message": "Deploy model v8?"}, "digest"),
        ({"store": "s3://elsewhere"}, "digest"),
        ({"gate_id": GateId("TrainAndDeploy", "1733", "gate")}, "gate"),
    ],
    ids=["message-changed", "store-changed", "other-gate"],
)
def test_verify_marker_detects_tampering(change: dict[str, Any], field: str) -> None:
    marker = marker_for(basic_request())
    problem = verify_marker(marker, replace(basic_request(), **change))
    assert problem is not None
    assert field in problem


def test_verify_marker_checks_every_field() -> None:
    request = argo_request()
    forged = replace(marker_for(request), node_selector="hitl-gate=Other-gate")
    problem = verify_marker(forged, request)
    assert problem is not None
    assert "node_selector" in problem
    assert "authoritative" in problem


def test_forged_second_marker_is_refused() -> None:
    genuine = render_approval_file(basic_request())
    assert sole_marker(genuine) == marker_for(basic_request())
    assert sole_marker(genuine + "\n" + render_marker(basic_request())) == marker_for(
        basic_request()
    )
    refused = sole_marker(genuine + "\n```\n" + FORGED + "\n```\n")
    assert isinstance(refused, MarkerProblem)
    assert refused.kind == "several"
    assert "Other/1/gate" in refused.message
    missing = sole_marker("no marker here")
    assert isinstance(missing, MarkerProblem)
    assert missing.kind == "missing"


DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "text",
    [
        "<!-- metaflow-hitl:v1 {not json} -->",
        "<!-- metaflow-hitl:v1 [1, 2] -->",
        '<!-- metaflow-hitl:v1 {"gate_id": "F/1/s", "store": "x"} -->',
        f'<!-- metaflow-hitl:v1 {{"gate_id": "F/1/s", "store": 1, "digest": "{DIGEST}"}} -->',
        f'<!-- metaflow-hitl:v1 {{"gate_id": "../x/s", "store": "x", "digest": "{DIGEST}"}} -->',
        '<!-- metaflow-hitl:v1 {"gate_id": "F/1/s", "store": "x", "digest": "md5:ab"} -->',
        f'<!-- metaflow-hitl:v1 {{"gate_id": "F/1/s", "store": "x", "digest": "{DIGEST}", '
        '"workflow": 3} -->',
        f'<!-- metaflow-hitl:v1 {{"gate_id": "F/1/s", "store": "x -->", "digest": "{DIGEST}"}} -->',
        f'<!-- metaflow-hitl:v2 {{"gate_id": "F/1/s", "store": "x", "digest": "{DIGEST}"}} -->',
        f'<!-- metaflow-hitl:v1 {{"gate_id": "F/1/s", "store": "x", "digest": "{DIGEST}"}}',
        "<!-- metaflow-hitl:v1 " + "{" * 100_000 + " -->",
        "<!-- metaflow-hitl:v1 " + "[" * 8_000 + " -->",
        "",
        None,
    ],
    ids=[
        "not-json",
        "not-object",
        "missing-digest",
        "mistyped",
        "bad-gate-id",
        "bad-digest",
        "mistyped-optional",
        "arrow-in-value",
        "other-version",
        "unterminated",
        "huge",
        "deep",
        "empty",
        "none",
    ],
)
def test_malformed_markers_are_ignored(text: Any) -> None:
    assert parse_markers(text) == []


def test_unknown_marker_keys_are_ignored() -> None:
    text = (
        f'<!-- metaflow-hitl:v1 {{"gate_id": "F/1/s", "store": "x", "digest": "{DIGEST}", '
        '"new": 1} -->'
    )
    assert parse_markers(text) == [Marker(gate_id="F/1/s", store="x", digest=DIGEST)]


def test_reply_marker() -> None:
    line = render_reply_marker(GateId("F", "1", "s"))
    assert line == '<!-- metaflow-hitl:v1:reply {"gate_id": "F/1/s"} -->'
    assert is_bot_reply(line + "\nDone.")
    assert not is_bot_reply("Thanks!\n" + line)
    assert not is_bot_reply("<!-- metaflow-hitl:v1:reply {oops} -->")
    assert not is_bot_reply(None)
    assert parse_markers(line) == []


def test_reply_starts_with_reply_marker_and_no_gate_marker() -> None:
    request = basic_request()
    text = render_reply(request, decision(request))
    assert text.startswith(render_reply_marker(request.gate_id) + "\n")
    assert parse_markers(text) == []


# --- paths and records --------------------------------------------------------------------


def test_paths() -> None:
    gate = GateId("TrainAndDeploy", "argo-x-1", "gate")
    assert approval_path(gate) == "approvals/TrainAndDeploy/argo-x-1/gate.md"
    assert decision_path(gate) == "decisions/TrainAndDeploy/argo-x-1/gate.json"
    assert parse_approval_path(approval_path(gate)) == gate


@pytest.mark.parametrize(
    "path",
    [
        "approvals/F/1/s.txt",
        "decisions/F/1/s.md",
        "approvals/../1/s.md",
        "approvals/F/1/x/s.md",
        "approvals/F/1/.md",
        "approvals/F/1/s-t.md",
        "approvals/F/../s.md",
    ],
    ids=["suffix", "folder", "dotdot-flow", "nested", "empty-step", "bad-step", "dotdot-run"],
)
def test_parse_approval_path_refuses(path: str) -> None:
    assert parse_approval_path(path) is None


def test_decision_record_is_the_store_record() -> None:
    request = basic_request()
    made = decision(request)
    assert decode_record(render_decision_record(request, made), Decision) == made
    other = replace(basic_request(), gate_id=GateId("TrainAndDeploy", "1", "gate"))
    with pytest.raises(ValueError, match="rendered with request"):
        render_decision_record(other, made)


def test_commit_message_trailers_are_single_lines() -> None:
    request = basic_request()
    text = decision_commit_message(request, decision(request, reason="a\nHitl-Outcome: rejected"))
    trailers = text.split("\n\n", 1)[1].splitlines()
    assert [t.split(":")[0] for t in trailers] == [
        "Hitl-Gate",
        "Hitl-Outcome",
        "Hitl-Decided-By",
        "Hitl-Channel",
        "Hitl-Decided-At",
        "Hitl-Evidence",
        "Hitl-Request-Digest",
    ]
    assert "Hitl-Outcome: approved" in trailers


# --- templates: packaging, strictness, overrides -------------------------------------------


def test_packaged_templates_are_found() -> None:
    names = set(template_environment(None).list_templates())
    assert {"approval.md.j2", "pr_body.md.j2", "issue_body.md.j2", "reply.md.j2"} <= names


def test_missing_variable_raises_instead_of_rendering_empty(tmp_path: Path) -> None:
    (tmp_path / "approval.md.j2").write_text("Hello {{ no_such_name }}!\n")
    with pytest.raises(ConfigError, match="no_such_name") as info:
        render_approval_file(basic_request(), templates_dir=tmp_path)
    assert isinstance(info.value.__cause__, jinja2.UndefinedError)
    assert TEMPLATES_DIR_ENV in (info.value.hint or "")


def test_missing_attribute_raises(tmp_path: Path) -> None:
    (tmp_path / "reply.md.j2").write_text("{{ request.no_such_field }}\n")
    with pytest.raises(ConfigError):
        render_reply(basic_request(), "no", templates_dir=tmp_path)


def test_override_directory_wins_and_keeps_the_marker(tmp_path: Path) -> None:
    (tmp_path / "_decide.md.j2").write_text("Ask in #ml-approvals about {{ gate_id }}.\n")
    text = render_approval_file(basic_request(), templates_dir=tmp_path)
    assert text.startswith(render_marker(basic_request()) + "\n")
    assert "Ask in #ml-approvals about TrainAndDeploy/1732/gate." in text
    assert "/approve" not in text
    assert "## Input artifacts" in text


def test_override_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pr_body.md.j2").write_text("Custom {{ gate.step }}\n")
    monkeypatch.setenv(TEMPLATES_DIR_ENV, str(tmp_path))
    assert render_pr_body(basic_request()).endswith("\nCustom gate\n")
    monkeypatch.delenv(TEMPLATES_DIR_ENV)
    assert "Custom" not in render_pr_body(basic_request())


def test_override_output_is_escaped_unless_marked_safe(tmp_path: Path) -> None:
    (tmp_path / "pr_body.md.j2").write_text(
        "{{ message }}|{{ message ~ '!' }}|{{ [message]|join(',') }}|{{ '**ok**'|safe }}\n"
    )
    request = replace(basic_request(), message="# <b>@x</b>")
    body = render_pr_body(request, templates_dir=tmp_path).split("\n", 1)[1]
    escaped = f"\\# &lt;b&gt;@{ZWJ}x&lt;/b&gt;"
    assert body == f"{escaped}|{escaped}!|{escaped}|**ok**\n"


def test_missing_override_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        render_pr_body(basic_request(), templates_dir=tmp_path / "typo")


def test_template_syntax_error_names_the_template(tmp_path: Path) -> None:
    (tmp_path / "issue_body.md.j2").write_text("{% if %}\n")
    with pytest.raises(ConfigError, match=r"issue_body\.md\.j2"):
        render_issue_body(basic_request(), templates_dir=tmp_path)


# --- purity -------------------------------------------------------------------------------

_PROBE = textwrap.dedent(
    """
    import json, sys
    BLOCKED = {"metaflow", "metaflow_extensions", "github", "git", "boto3", "botocore",
               "kubernetes"}
    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError("blocked: " + name)
    sys.meta_path.insert(0, Blocker())
    import metaflow_hitl.render.documents, metaflow_hitl.markers, metaflow_hitl.render.markdown
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED
                    or m.startswith(("metaflow_hitl.plugin", "metaflow_hitl.cli")))
    print(json.dumps(loaded))
    """
)


def test_rendering_imports_no_metaflow_github_or_cloud_sdk() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize(
    ("review", "cli_only"),
    [
        ({"backend": "git", "location": "/srv/a.git"}, True),
        ({"backend": "none"}, True),
        ({"backend": "github", "repo": "acme/approvals", "mode": "pr"}, False),
    ],
    ids=["git", "none", "github"],
)
def test_plain_git_review_repos_offer_only_the_cli(review: dict[str, Any], cli_only: bool) -> None:
    request = replace(basic_request(), review=review)
    text = render_approval_file(request)
    assert ("there is no pull request to review" in text) is cli_only
    # the gate needs input: an approving review or a merge cannot approve it, a comment can
    assert ("a merge without it cannot approve it" in text) is not cli_only
    assert ("/approve" in text) is not cli_only
    assert "metaflow-hitl --store" in text  # the CLI is always offered


@pytest.mark.parametrize(
    ("store", "warned"),
    [("/home/alice/flows/.metaflow/_hitl", True), ("s3://bucket/metaflow/_hitl", False)],
    ids=["local-store", "s3-store"],
)
def test_github_page_of_a_local_store_says_the_action_cannot_decide_it(store, warned) -> None:
    github = {"backend": "github", "location": "github:acme/a", "repo": "acme/a", "mode": "pr"}
    request = replace(basic_request(), review=github, store=store)
    for page in (render_pr_body(request), render_issue_body(request)):
        body = " ".join(page.replace("\n> ", "\n").split())
        assert ("the GitHub Action cannot record a decision made here" in body) is warned
        assert ("--datastore=s3" in body) is warned


def test_trailers_read_back_what_was_written() -> None:
    """review/trailers.py is both the writer and the reader: what audit reads from a commit is
    exactly what the decision said, and a login or reason cannot add a trailer of its own."""
    request = basic_request()
    made = decision(request, reason="fine\nHitl-Outcome: rejected", decided_by="eve\nHitl-X: 1")
    entry = AuditEntry.from_commit(
        decision_commit_message(request, made), commit="c0ffee", author="eve"
    )
    assert entry is not None
    assert (entry.gate_id, entry.outcome, entry.channel) == (
        str(request.gate_id),
        "approved",
        "comment",
    )
    assert entry.decided_by == "eve Hitl-X: 1"  # flattened onto its own line
    assert entry.request_digest == request.digest()
    assert entry.evidence == made.evidence_url
    assert AuditEntry.from_commit(open_commit_message(request), commit="c", author="a") is None
