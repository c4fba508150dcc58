"""Hostile input, beyond the fixed cases of test_rendering.py and test_commands.py.

* **Injection**: generated hostile text (raw HTML, links, images, mentions, slash commands,
  forged markers, bidi overrides, table breaks) put into the gate message, artifact values,
  approval input, rejection reasons and refusals, then rendered into the approval file, the PR
  body, the issue body and the bot's replies. Each page is parsed with markdown-it-py
  (CommonMark + GFM tables, raw HTML *enabled*, so any HTML that got through shows up as a
  tag) and checked: only the templates' own tags, links and headings; no mention, no command
  line, exactly the gate's own marker.
* **Size**: 70 KB and 1 MB comments, 64 KB inputs and reasons, megabyte artifacts. Pages
  GitHub must accept stay under its 65,536-character body limit.
* **Look-alikes**: Unicode spellings of ``/approve`` that a reader might take for it are not
  commands; neither are commands in code (indented, fenced with ``~~~``) or as HTML entities.
"""

# ruff: noqa: E501 -- case tables keep one case per line (# fmt: skip), Atlantis style

from __future__ import annotations

import html
import json
import re
import unicodedata
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from metaflow_hitl.errors import InvalidInput, RecordError
from metaflow_hitl.input_schema import normalize_schema, parse_input_json, validate_input
from metaflow_hitl.markers import is_bot_reply, marker_for, parse_markers, render_reply_marker
from metaflow_hitl.records import Decision, Request, decode_record, encode_record
from metaflow_hitl.render.documents import (
    GITHUB_BODY_LIMIT,
    approval_path,
    render_approval_file,
    render_issue_body,
    render_pr_body,
    render_reply,
    summarize_artifacts,
    summarize_value,
)
from metaflow_hitl.slash_commands import MAX_COMMENT_BYTES, Command, Ignore, Reply, parse_comment
from tests.support.builders import T0, actor, build_request

ZWJ = "\u200d"
SAFE_LINK = "https://ui.example/TrainAndDeploy/1732"


def to_html(text: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(text)


# -- what hostile text looks like ----------------------------------------------------------------

SNIPPETS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<details open><summary>x</summary>",
    "<a href='https://evil.example'>click</a>",
    "[click](https://evil.example)",
    "[click][r]\n\n[r]: https://evil.example",
    "![pixel](https://evil.example/p.png)",
    "<https://evil.example>",
    "javascript:alert(1)",
    "@octocat",
    "@acme/admins",
    "cc @everyone",
    "/approve",
    '/approve {"target": "prod"}',
    "/reject no",
    "# Approved!",
    "Approved\n===",
    "> quoted",
    "- [x] done",
    "| a | b |\n| - | - |",
    "```\ncode",
    "~~~\ncode",
    "    indented",
    "<!-- metaflow-hitl:v1 {} -->",
    '<!-- metaflow-hitl:v1 {"digest": "sha256:'
    + "0" * 64
    + '", "gate_id": "Other/1/gate", "store": "s3://evil"} -->',
    "<!-- metaflow-hitl:v1:reply {} -->",
    "-->",
    "&lt;script&gt;",
    "&#47;approve",
    "\\",
    "`",
    "``",
    "*",
    "_",
    "$x^2$",
    "\u202e",
    "\u2066",
    "\x00",
    "\x1b[31m",
    "\r",
    "\n",
    "\n\n",
    "\t",
    "\u2028",
    "😀",
    "中文",
]
HOSTILE = st.one_of(
    st.lists(st.sampled_from(SNIPPETS), min_size=1, max_size=8).map("".join),
    st.lists(st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=8)), max_size=10).map(" ".join),
)

ALLOWED_TAGS = {
    "h1", "h2", "p", "ul", "li", "code", "pre", "blockquote", "br", "table", "thead", "tbody",
    "tr", "th", "td", "a", "strong", "em",
}  # fmt: skip


def _outside_code(page: str) -> str:
    page = re.sub(r"(?s)<pre><code[^>]*>.*?</code></pre>", "", page)
    return re.sub(r"(?s)<code>.*?</code>", "", page)


def check_page(text: str, *, headings: int, links: set[str], marker: Any) -> None:
    """The invariants every page we publish keeps, whatever text it carries."""
    if marker is None:  # a reply: its own marker first, never a gate marker
        assert parse_markers(text) == []
    else:
        assert parse_markers(text) == [marker]
    page = to_html(text)
    tags = set(re.findall(r"<([a-z][a-z0-9]*)", page))
    assert tags <= ALLOWED_TAGS, tags - ALLOWED_TAGS
    # Only the HTML comment the render functions put first: none smuggled in.
    assert len(re.findall(r"<!--", page)) == 1
    assert set(re.findall(r'<a href="([^"]*)"', page)) <= links
    assert len(re.findall(r"<h[1-6]>", page)) == headings
    visible = html.unescape(re.sub(r"<[^>]+>", "\n", _outside_code(page)))
    # GitHub notifies for @login and @org/team outside code; a joiner after @ breaks it.
    assert not re.search(r"(?<![\w`])@[A-Za-z0-9]", visible), visible
    # No line of the Markdown (outside code) is a command: the bot never writes one.
    source = re.sub(r"(?ms)^(`{3,}|~{3,})[^\n]*\n.*?^\1\s*$", "", text)
    source = re.sub(r"(`+).*?\1", "", source)
    assert not [x for x in source.split("\n") if re.match(r"[\s>]*/(approve|reject)", x)]


def hostile_request(message: str, **fields: Any) -> Request:
    request = build_request(
        input_schema={"target": "str", "notes": "str?"},
        links={"metaflow_ui": SAFE_LINK},
        review={"backend": "github", "repo": "acme/approvals", "mode": "pr"},
    )
    return replace(request, message=message, **fields)


# -- injection into every page we publish ----------------------------------------------------------


@settings(max_examples=120)
@given(HOSTILE, st.dictionaries(st.sampled_from(["a", "b", "model", "notes"]), HOSTILE, max_size=3))
def test_approval_file_and_issue_body_keep_hostile_text_inert(
    message: str, artifacts: dict[str, str]
) -> None:
    request = hostile_request(message)
    rows = summarize_artifacts({**artifacts, "nested": {"k": [message]}}, max_chars=200)
    for text, headings in (
        (render_approval_file(request, artifacts=rows, links={"evil": "javascript:alert(1)"}), 5),
        (render_issue_body(request, artifacts=rows), 4),
    ):
        check_page(text, headings=headings, links={SAFE_LINK}, marker=marker_for(request))


@settings(max_examples=120)
@given(HOSTILE)
def test_pr_body_keeps_hostile_text_inert(message: str) -> None:
    request = hostile_request(message)
    text = render_pr_body(request, flow_file_hint="flows/train.py")
    check_page(text, headings=1, links=set(), marker=marker_for(request))


@settings(max_examples=150)
@given(HOSTILE, HOSTILE, st.sampled_from(["approved", "rejected", "timed_out"]))
def test_replies_keep_hostile_reasons_and_input_inert(
    reason: str, value: str, outcome: str
) -> None:
    request = hostile_request("Deploy?")
    decision = Decision(
        gate_id=request.gate_id,
        outcome=outcome,  # type: ignore[arg-type]
        proceed=outcome == "approved",
        decided_by="alice",
        channel="comment",
        deciders=(actor("alice"),),
        decided_at=T0,
        request_digest=request.digest(),
        reason=reason,
        input={"target": value, value[:20]: [value]} if outcome == "approved" else {},
        evidence_url="https://github.com/acme/approvals/pull/7#issuecomment-1",
    )
    text = render_reply(request, decision)
    assert text.startswith(render_reply_marker(request.gate_id) + "\n")
    assert is_bot_reply(text)
    links = {"https://github.com/acme/approvals/pull/7#issuecomment-1"}
    check_page(text, headings=0, links=links, marker=None)


@settings(max_examples=150)
@given(HOSTILE, HOSTILE)
def test_refusal_replies_echoing_a_comment_keep_it_inert(comment: str, hint: str) -> None:
    """A refusal quotes what the commenter wrote (the JSON problem, the failing value)."""
    request = hostile_request("Deploy?")
    problems = validate_input(request.input_schema, {"target": comment, comment[:30]: 1})
    refusal = InvalidInput("approval input does not match", problems=problems, hint=hint)
    for result in (refusal, f"{comment} is not an approver"):
        text = render_reply(request, result)
        assert is_bot_reply(text)
        check_page(text, headings=0, links=set(), marker=None)


def test_a_forged_marker_in_every_free_text_field_is_not_read() -> None:
    forged = SNIPPETS[24]
    request = hostile_request(forged, started_by="mallory")
    rows = summarize_artifacts({"x": forged, "y": {"k": forged}})
    for text in (
        render_approval_file(request, artifacts=rows),
        render_pr_body(request),
        render_issue_body(request, artifacts=rows),
    ):
        assert parse_markers(text) == [marker_for(request)]


# -- size ----------------------------------------------------------------------------------------

KB70 = 70 * 1024
MB = 1024 * 1024

SIZES = [
    pytest.param("/approve " + "x" * KB70, Reply, "KiB", id="approve-70KB-note"),
    pytest.param("/reject " + "x" * MB, Reply, "KiB", id="reject-1MB-reason"),
    pytest.param('/approve {"a": "' + "x" * MB + '"}', Reply, "KiB", id="approve-1MB-json"),
    pytest.param("/approve\n```json\n" + '{"a": "' + "é" * 40_000 + '"}\n```', Reply, "KiB", id="approve-80KB-utf8-fence"),
    pytest.param('/approve {"a": "' + "x" * (64 * 1024) + '"}', Reply, "KiB", id="approve-input-just-over-64KiB"),
    pytest.param("lgtm " * (MB // 5), Ignore, "too large", id="1MB-chatter"),
    pytest.param("\u00a0/approve " + "x" * KB70, Ignore, "too large", id="70KB-lookalike-is-ignored-not-answered"),
    pytest.param("    /approve " + "x" * KB70, Ignore, "too large", id="70KB-indented-is-ignored"),
    pytest.param("/approve " + "{" * 30_000, Reply, "JSON", id="approve-30k-open-braces"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "kind", "needle"), SIZES)
def test_oversized_comments(body: str, kind: type, needle: str) -> None:
    result = parse_comment(body)
    assert isinstance(result, kind), result
    assert needle in (result.message if isinstance(result, Reply) else result.reason)  # type: ignore[union-attr]


def test_a_comment_of_exactly_the_limit_carries_its_input() -> None:
    value = {"a": "x" * (MAX_COMMENT_BYTES - len('/approve {"a": ""}'))}
    body = "/approve " + json.dumps(value)
    assert len(body.encode()) == MAX_COMMENT_BYTES
    assert parse_comment(body) == Command("approve", input=value)


@pytest.mark.parametrize(
    "text",
    ['{"a": "' + "x" * MB + '"}', "[" * 100_000, '{"a": ' + "9" * 5000 + "}", '{"a": 1e999}'],
    ids=["1MB", "deep", "5000-digit-int", "1e999"],
)
def test_oversized_or_unreadable_cli_input_is_refused_clearly(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_input_json(text)
    assert info.value.problems
    assert all(len(p) < 200 for p in info.value.problems)


def test_problems_with_a_huge_value_stay_short() -> None:
    """Regression: jsonschema quotes the failing value; a 60 KB value made a 60 KB reply."""
    schema = normalize_schema({f"f{i:02}": "int" for i in range(30)})
    problems = validate_input(schema, {f"f{i:02}": "x" * 60_000 for i in range(30)})
    assert len(problems) == 21
    assert all(len(p) <= 300 for p in problems)
    assert all(p.endswith("is not of type 'integer'") for p in problems[:20])  # verdict kept
    assert problems[-1] == "... and 10 more problems"


@pytest.mark.parametrize("char", ["&", "<", "@", "`", "-\n", "x"])
def test_pages_fit_githubs_body_limit_whatever_the_text(char: str) -> None:
    """Regression: escaping made a 20,000-character message of '&' a 101 KB PR body, and a
    64 KB rejection reason a 320 KB reply; GitHub refuses bodies over 65,536 characters."""
    message = (char * 20_000)[:20_000]
    request = hostile_request(message)
    rows = summarize_artifacts({f"a{i:02}": char * 500 for i in range(60)}, max_chars=120)
    pr, issue = render_pr_body(request), render_issue_body(request, artifacts=rows)
    decision = Decision(
        gate_id=request.gate_id,
        outcome="rejected",
        proceed=False,
        decided_by="alice",
        channel="comment",
        deciders=(actor("alice"),),
        decided_at=T0,
        request_digest=request.digest(),
        reason=(char * 65_000)[:65_000],
    )
    replies = [render_reply(request, decision), render_reply(request, char * 65_000)]
    for text in (pr, issue, *replies):
        assert len(text) <= GITHUB_BODY_LIMIT
        assert parse_markers(text) in ([marker_for(request)], [])
    assert approval_path(request.gate_id) in pr  # says where the full message is
    full = render_approval_file(request, artifacts=rows)  # a file in git: nothing cut
    assert len(re.findall(r"\\-|-", full)) >= message.count("-")
    assert "more characters are not shown" not in full


def test_short_pages_are_not_cut() -> None:
    request = hostile_request("Deploy model v7?\n" + "ok " * 1000)
    assert "not shown here" not in render_pr_body(request)


@pytest.mark.parametrize(
    "value",
    ["x" * MB, b"\x00" * MB, list(range(MB)), {str(i): i for i in range(100_000)}, [[[[[[["deep"]]]]]]], 10**100_000],
    ids=["1MB-str", "1MB-bytes", "1M-list", "100k-dict", "deep", "huge-int"],
)  # fmt: skip
def test_huge_artifacts_are_summarised_in_bounded_text(value: Any) -> None:
    summary = summarize_value("artifact", value, max_chars=120)
    assert len(summary.value) <= 120


def test_a_record_over_the_field_limits_is_refused() -> None:
    request = hostile_request("x")
    doc = json.loads(encode_record(request))
    doc["message"] = "m" * 100_001
    with pytest.raises(RecordError, match="too long"):
        decode_record(json.dumps(doc), Request)


# -- look-alikes and commands in code ---------------------------------------------------------------

LOOKALIKES = [
    pytest.param("\u00a0/approve", id="nbsp-before"),
    pytest.param("/\u00a0approve", id="nbsp-after-slash"),
    pytest.param("\u3000/approve", id="ideographic-space-before"),
    pytest.param("\u2028/approve", id="line-separator-before"),
    pytest.param("\u2060/approve", id="word-joiner-before"),
    pytest.param("/ap\u200dprove", id="zwj-inside"),
    pytest.param("/ap\u200cprove", id="zwnj-inside"),
    pytest.param("\u202e/approve", id="rtl-override-before"),
    pytest.param("/\u202eevorppa", id="rtl-override-reversed"),
    pytest.param("\u200e/approve", id="lrm-before"),
    pytest.param("\u2066/approve\u2069", id="isolate"),
    pytest.param("/approve\u0301", id="combining-accent-after"),
    pytest.param("/ap\u0440rove", id="cyrillic-er"),
    pytest.param("/appr\u03bfve", id="greek-omicron"),
    pytest.param("/\u0251pprove", id="latin-alpha"),
    pytest.param("/\U0001d41approve", id="math-bold-a"),
    pytest.param("\uff0f\uff41\uff50\uff50\uff52\uff4f\uff56\uff45", id="all-fullwidth-nfkc-equal"),
    pytest.param("\ufe68approve", id="small-reverse-solidus"),
    pytest.param("\u29f8approve", id="big-solidus"),
    pytest.param("/\U000e0061pprove", id="tag-character"),
    pytest.param("/re\u0458ect no", id="cyrillic-je-in-reject"),
    pytest.param("&#47;approve", id="html-entity-slash"),
    pytest.param("&sol;approve", id="html-named-entity"),
    pytest.param("<b>/approve</b>", id="html-bold"),
    pytest.param("**/approve**", id="markdown-bold"),
    pytest.param("<!-- -->/approve", id="after-html-comment"),
    pytest.param("    /approve", id="indented-code-4-spaces"),
    pytest.param("\t/approve", id="indented-code-tab"),
    pytest.param("\n\n      /reject no", id="indented-code-after-blank-lines"),
    pytest.param("~~~\n/approve\n~~~", id="tilde-fence"),
    pytest.param("```json\n/approve {}\n```", id="json-fence"),
    pytest.param(">> /approve", id="nested-quote"),
    pytest.param("1. /approve", id="ordered-list"),
    pytest.param("* /approve", id="star-list"),
]  # fmt: skip


@pytest.mark.parametrize("body", LOOKALIKES)
def test_lookalikes_and_commands_in_code_are_not_commands(body: str) -> None:
    result = parse_comment(body)
    assert isinstance(result, Ignore), result
    assert result.reason


def test_three_spaces_of_indentation_are_still_a_command() -> None:
    """CommonMark: up to three spaces do not make code; the command stands."""
    assert parse_comment("   /approve") == Command("approve")
    assert parse_comment("\n \t\n   /reject too risky") == Command("reject", reason="too risky")


CONFUSABLES = {
    "/": ["\uff0f", "\u2215", "\u2044", "\u29f8", "\u2571", "\u30ce"],
    "a": ["\u0430", "\u0251", "\uff41", "\U0001d41a", "\u03b1"],
    "p": ["\u0440", "\u03c1", "\uff50"],
    "r": ["\u0433", "\uff52"],
    "o": ["\u043e", "\u03bf", "\u0585", "\uff4f", "0"],
    "v": ["\u03bd", "\u0475", "\uff56"],
    "e": ["\u0435", "\u0454", "\uff45"],
}


@settings(max_examples=400)
@given(st.data())
def test_any_confusable_spelling_of_approve_is_not_a_command(data: st.DataObject) -> None:
    word = list("/approve")
    positions = data.draw(
        st.sets(st.sampled_from([i for i, c in enumerate(word) if c in CONFUSABLES]), min_size=1)
    )
    for i in positions:
        word[i] = data.draw(st.sampled_from(CONFUSABLES[word[i]]))
    invisible = data.draw(st.sampled_from(["", "\u200b", "\u200d", "\u2060", "\ufeff"]))
    body = invisible + "".join(word) + data.draw(st.sampled_from(["", " {}", " lgtm"]))
    assert "".join(word) != "/approve"
    assert isinstance(parse_comment(body), Ignore), body
    if unicodedata.normalize("NFKC", body).startswith("/approve"):
        assert isinstance(parse_comment(body), Ignore)  # NFKC-equal is still not equal
