"""The comment grammar, Atlantis style: a table of comments and what each one means."""

# ruff: noqa: E501 -- case tables keep one case per line (# fmt: skip), Atlantis style

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metaflow_hitl.slash_commands import MAX_COMMENT_BYTES, Command, Ignore, Reply, parse_comment

FENCE = "```"

COMMANDS = [
    pytest.param("/approve", Command("approve"), id="approve"),
    pytest.param("/approve   ", Command("approve"), id="approve-trailing-spaces"),
    pytest.param("/approve\n", Command("approve"), id="approve-trailing-newline"),
    pytest.param('/approve {"deploy_target": "staging"}', Command("approve", input={"deploy_target": "staging"}), id="approve-inline-json"),
    pytest.param('/approve {}', Command("approve", input={}), id="approve-empty-object"),
    pytest.param('/approve\n{\n  "replicas": 3,\n  "notes": "ok"\n}', Command("approve", input={"replicas": 3, "notes": "ok"}), id="approve-json-over-lines"),
    pytest.param(f'/approve\n{FENCE}json\n{{"deploy_target": "staging", "replicas": 3}}\n{FENCE}', Command("approve", input={"deploy_target": "staging", "replicas": 3}), id="approve-fenced-json"),
    pytest.param(f'/approve\n{FENCE}\n{{"a": 1}}\n{FENCE}\n', Command("approve", input={"a": 1}), id="approve-fence-without-language"),
    pytest.param(f'/approve\r\n{FENCE}json\r\n{{"a": 1}}\r\n{FENCE}\r\n', Command("approve", input={"a": 1}), id="approve-fenced-json-crlf"),
    pytest.param('/approve\r\n{"a": 1}\r\n', Command("approve", input={"a": 1}), id="approve-json-crlf"),
    pytest.param("/approve looks good to me", Command("approve", reason="looks good to me"), id="approve-with-note"),
    pytest.param("/approve   ship it  \n", Command("approve", reason="ship it"), id="approve-note-trimmed"),
    pytest.param("/approve\tLGTM", Command("approve", reason="LGTM"), id="approve-tab-note"),
    pytest.param("/approve /reject", Command("approve", reason="/reject"), id="approve-note-that-looks-like-reject"),
    pytest.param("/reject accuracy regressed on the holdout set", Command("reject", reason="accuracy regressed on the holdout set"), id="reject-with-reason"),
    pytest.param("/reject no\nbecause:\n- a\n- b", Command("reject", reason="no\nbecause:\n- a\n- b"), id="reject-multiline-reason"),
    pytest.param("/reject\r\nregressed\r\n", Command("reject", reason="regressed"), id="reject-crlf"),
    pytest.param("\n\n   \n/approve", Command("approve"), id="leading-blank-lines"),
    pytest.param("  /reject too risky", Command("reject", reason="too risky"), id="leading-spaces"),
    pytest.param("\r\n\r\n/approve", Command("approve"), id="leading-crlf-blank-lines"),
    pytest.param('/reject {"a": 1}', Command("reject", reason='{"a": 1}'), id="reject-json-is-just-a-reason"),
    pytest.param("/reject no\n> /approve", Command("reject", reason="no\n> /approve"), id="quoted-second-command-is-text"),
    pytest.param("/reject no\n    /approve", Command("reject", reason="no\n    /approve"), id="code-block-second-command-is-text"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "command"), COMMANDS)
def test_commands(body: str, command: Command) -> None:
    assert parse_comment(body) == command


REPLIES = [
    pytest.param("/reject", "Add a reason", id="reject-without-reason"),
    pytest.param("/reject   \n\n", "Add a reason", id="reject-blank-reason"),
    pytest.param("/approve {", "not valid JSON", id="json-truncated"),
    pytest.param("/approve {'a': 1}", "not valid JSON", id="json-single-quotes"),
    pytest.param('/approve {"a": 1,}', "not valid JSON", id="json-trailing-comma"),
    pytest.param('/approve {"a": 1} thanks!', "text after the JSON", id="text-after-json"),
    pytest.param('/approve {"a": 1}\n\nalso please check x', "text after the JSON", id="paragraph-after-json"),
    pytest.param('/approve {"a": 1} {"b": 2}', "text after the JSON", id="two-json-objects"),
    pytest.param(f"/approve\n{FENCE}json\n[1, 2]\n{FENCE}", "must be a JSON object, not a list", id="fenced-json-array"),
    pytest.param(f'/approve\n{FENCE}json\n"prod"\n{FENCE}', "must be a JSON object, not a str", id="fenced-json-string"),
    pytest.param(f"/approve\n{FENCE}json\n{{oops}}\n{FENCE}", "not valid JSON", id="fenced-invalid-json"),
    pytest.param(f'/approve\n{FENCE}json\n{{"a": 1}}\n', "single ```json block", id="fence-not-closed"),
    pytest.param(f'/approve\n{FENCE}json\n{{"a": 1}}\n{FENCE}\nthanks', "single ```json block", id="text-after-fence"),
    pytest.param(f'/approve\n{FENCE}json\n{{"a": 1}}\n{FENCE}\n{FENCE}json\n{{"b": 2}}\n{FENCE}', "text after the JSON", id="two-fences"),
    pytest.param(f'/approve {FENCE}json {{"a": 1}}{FENCE}', "single ```json block", id="fence-on-one-line"),
    pytest.param('/approve {"a": "' + "x" * 70_000 + '"}', "KiB", id="huge-approve-comment"),
    pytest.param('/approve {"a": ' + "[" * 30_000 + "]" * 30_000 + "}", "not valid JSON", id="json-nested-too-deep"),
    # grammar v2: one command per comment, no duplicate keys (RFC 8259 §4 leaves them undefined)
    pytest.param("/approve\n/reject too risky", "more than one command", id="approve-then-reject"),
    pytest.param("/reject not yet\n/approve", "more than one command", id="reject-then-approve"),
    pytest.param("/approve ship it\n  /approve", "more than one command", id="approve-twice-indented"),
    pytest.param("/reject no\n\nthen later:\n/approve", "more than one command", id="approve-inside-a-reason"),
    pytest.param('/approve {"target": "prod", "target": "staging"}', "given twice", id="duplicate-key"),
    pytest.param('/approve {"a": {"x": 1, "x": 2}}', "given twice", id="duplicate-nested-key"),
    pytest.param(f'/approve\n{FENCE}json\n{{"t": 1, "t": 1}}\n{FENCE}', "given twice", id="duplicate-key-fenced"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "needle"), REPLIES)
def test_replies_tell_the_author_how_to_fix_it(body: str, needle: str) -> None:
    result = parse_comment(body)
    assert isinstance(result, Reply), result
    assert needle in result.message


IGNORED = [
    pytest.param(None, id="none"),
    pytest.param("", id="empty"),
    pytest.param(" \n\t\r\n", id="whitespace-only"),
    pytest.param("/approved", id="approved-suffix"),
    pytest.param("/approves", id="approves"),
    pytest.param("/approve-all", id="approve-dash"),
    pytest.param('/approve{"a": 1}', id="json-glued-to-command"),
    pytest.param("/rejected: nope", id="rejected"),
    pytest.param("/APPROVE", id="upper-case"),
    pytest.param("/Approve", id="title-case"),
    pytest.param("approve", id="no-slash"),
    pytest.param("//approve", id="double-slash"),
    pytest.param("\\/approve", id="escaped-slash"),
    pytest.param("/ approve", id="space-after-slash"),
    pytest.param("> /approve", id="quoted"),
    pytest.param(">/approve", id="quoted-no-space"),
    pytest.param("> /approve\n\nI disagree", id="quote-then-text"),
    pytest.param("I think we should /approve", id="command-mid-line"),
    pytest.param("LGTM\n/approve", id="command-on-second-line"),
    pytest.param(f"{FENCE}\n/approve\n{FENCE}", id="command-inside-code-block"),
    pytest.param("`/approve`", id="inline-code"),
    pytest.param("- /approve", id="list-item"),
    pytest.param("\uff0fapprove", id="fullwidth-slash"),
    pytest.param("\u2215approve", id="division-slash"),
    pytest.param("\u2044approve", id="fraction-slash"),
    pytest.param("/\u0430pprove", id="cyrillic-a"),
    pytest.param("/appr\u043eve", id="cyrillic-o"),
    pytest.param("/r\u0435ject no", id="cyrillic-e-in-reject"),
    pytest.param("/\uff41pprove", id="fullwidth-a"),
    pytest.param("\u200b/approve", id="zero-width-space-before"),
    pytest.param("/approve\u200b", id="zero-width-space-after"),
    pytest.param("\ufeff/approve", id="byte-order-mark-before"),
    pytest.param("/app\u00adrove", id="soft-hyphen-inside"),
    pytest.param("x" * (MAX_COMMENT_BYTES + 1), id="huge-non-command"),
    pytest.param("../../etc/passwd", id="path"),
]  # fmt: skip


@pytest.mark.parametrize("body", IGNORED)
def test_ignored_with_a_reason(body: str | None) -> None:
    result = parse_comment(body)
    assert isinstance(result, Ignore), result
    assert result.reason


def test_leading_blank_lines_count_against_the_size_limit_not_the_grammar() -> None:
    body = "\n" * 100 + "/approve"
    assert parse_comment(body) == Command("approve")


def test_comment_of_exactly_the_limit_is_parsed() -> None:
    body = "/reject " + "x" * (MAX_COMMENT_BYTES - len("/reject "))
    assert len(body.encode()) == MAX_COMMENT_BYTES
    result = parse_comment(body)
    assert isinstance(result, Command)
    assert result.intent == "reject"


def test_size_limit_counts_bytes_not_characters() -> None:
    body = "/reject " + "é" * (MAX_COMMENT_BYTES // 2)
    assert len(body) < MAX_COMMENT_BYTES < len(body.encode())
    assert isinstance(parse_comment(body), Reply)


@given(st.text(max_size=400))
def test_parse_comment_never_raises(body: str) -> None:
    assert isinstance(parse_comment(body), Command | Reply | Ignore)


@given(
    st.sampled_from(["/approve", "/reject", "/approve\n```json\n", "/approve {"]),
    st.text(max_size=200),
)
def test_parse_comment_never_raises_after_a_command(head: str, tail: str) -> None:
    result = parse_comment(head + tail)
    assert isinstance(result, Command | Reply | Ignore)
    if isinstance(result, Command) and result.intent == "approve":
        assert isinstance(result.input, dict)
