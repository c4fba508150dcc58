"""The ``hitl`` card: real local runs, cards read back with Metaflow's client, values escaped.

Metaflow renders ``@card`` only for a task that succeeds: a gate rejected with
``on_reject="fail"`` leaves no card until ``card create RUN/STEP/TASK --type hitl`` makes one
from the saved artifacts, while ``on_reject="continue"`` renders it with the run. The
rendering tests at the bottom call :func:`render_card_html` directly (no run).
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from metaflow_hitl.plugin.card import render_card_html

HOSTILE = '<script>alert("x")</script> & <b>bold</b>'
MFUI = "https://mfui.example.org"
ARGO_UI = "https://argo.example.org"


class _Html(HTMLParser):
    """Collects tags, links and visible text, to check what a browser would see."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs += [v or "" for k, v in attrs if k == "href"]

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(" ".join(data.split()))


def parse(html: str) -> _Html:
    parser = _Html()
    parser.feed(html)
    return parser


def cards_of(ws, pathspec: str) -> list[dict] | None:
    """The task's hitl cards through Metaflow's client; None if Metaflow finds none."""
    return ws.client(
        "import json\n"
        "from metaflow.cards import get_cards\n"
        "from metaflow.plugins.cards.exception import CardNotPresentException\n"
        "try:\n"
        f"    cards = get_cards(Task({pathspec!r}), type='hitl')\n"
        "except CardNotPresentException:\n"
        "    print('null')\n"
        "else:\n"
        "    print(json.dumps([{'type': c.type, 'html': c.get()} for c in cards]))"
    )


def gate_task(ws, run_id: str) -> str:
    return ws.client(
        f"print(__import__('json').dumps(Run('CardFlow/{run_id}')['gate'].task.pathspec))"
    )


def assert_safe(html: str) -> _Html:
    """No markup from artifact values: only the template's own tags, no script at all."""
    page = parse(html)
    assert "script" not in page.tags
    assert "b" not in page.tags
    assert "img" not in page.tags
    assert "<script>" not in html
    assert "Content-Security-Policy" in html
    assert "default-src 'none'" in html
    return page


def test_approved_run_shows_the_decision_escaped_with_links(workspace):
    ws = workspace("card_flow.py")
    ws.env.update(METAFLOW_UI_URL=MFUI + "/", METAFLOW_HITL_ARGO_UI_URL=ARGO_UI)
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    run_id = gate.split("/")[1]
    ok = ws.hitl(
        "approve",
        f"{run_id}/gate",
        "--as",
        "reviewer",
        "--reason",
        "looks fine <img src=x onerror=alert(1)>",
        "--input",
        json.dumps({"target": HOSTILE}),
    )
    assert ok.returncode == 0, ok.stderr
    code, out = ws.finish(proc)
    assert code == 0, out

    (card,) = cards_of(ws, gate_task(ws, run_id))
    assert card["type"] == "hitl"
    html = card["html"]
    page = assert_safe(html)
    text = "\n".join(page.text)
    assert 'data-outcome="approved"' in html
    for expected in (
        "Approved",
        f"CardFlow/{run_id}/gate",
        f"Deploy {HOSTILE}?",  # the message, shown as text
        "Decided by",
        "reviewer",
        "cli",
        "looks fine <img src=x onerror=alert(1)>",
        "The step's code ran after this decision.",
        "reviewer, carol",
        "Expires at",
    ):
        assert expected in text, (expected, text)
    assert '"target": ' + json.dumps(HOSTILE) in text  # the approval's input, as JSON text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    # the Metaflow UI run page, shaped as Metaflow prints it; no Argo link for a local run
    assert f"{MFUI}/CardFlow/{run_id}" in page.hrefs
    assert not [h for h in page.hrefs if h.startswith(ARGO_UI)]


def test_rejected_run_has_no_card_until_card_create_makes_one(workspace):
    ws = workspace("card_flow.py")
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    run_id = gate.split("/")[1]
    no = ws.hitl("reject", f"{run_id}/gate", "--as", "reviewer", "--reason", f"no: {HOSTILE}")
    assert no.returncode == 0, no.stderr
    code, out = ws.finish(proc)
    assert code != 0, out
    assert "rejected by reviewer" in out

    task = gate_task(ws, run_id)
    # Metaflow renders @card only for successful tasks: the rejected task has none...
    assert cards_of(ws, task) is None
    # ...but its artifacts were saved, so the card can be made from them afterwards.
    made = ws.run("card", "create", task.split("/", 1)[1], "--type", "hitl")
    assert made.returncode == 0, made.stderr
    (card,) = cards_of(ws, task)
    html = card["html"]
    page = assert_safe(html)
    text = "\n".join(page.text)
    assert 'data-outcome="rejected"' in html
    assert "Rejected" in text
    assert f"no: {HOSTILE}" in text
    assert "The step's code did not run: the task failed at the gate." in text
    assert "No Argo UI link" not in text


def test_rejected_with_continue_renders_with_the_run(workspace):
    ws = workspace("card_flow.py")
    ws.env.update(GATE_ON_REJECT="continue")
    proc = ws.start()
    gate = ws.wait_for_gate(proc)
    run_id = gate.split("/")[1]
    no = ws.hitl("reject", f"{run_id}/gate", "--as", "reviewer", "--reason", "not today")
    assert no.returncode == 0, no.stderr
    code, out = ws.finish(proc)
    assert code == 0, out
    assert "END outcome rejected" in out
    (card,) = cards_of(ws, gate_task(ws, run_id))
    text = "\n".join(assert_safe(card["html"]).text)
    assert "Rejected" in text
    assert "not today" in text
    assert 'on_reject="continue"' in text


# -- rendering, without a run -------------------------------------------------------------


def request_dict(**overrides: object) -> dict:
    data = {
        "gate_id": "F/1/gate",
        "message": "Ship it?",
        "approvers": [],
        "min_approvals": 2,
        "allow_self_approval": False,
        "on_timeout": "reject",
        "on_reject": "fail",
        "created_at": "2026-01-01T00:00:00.000Z",
        "expires_at": "2026-01-02T00:00:00.000Z",
        "started_by": "alice",
        "runtime": "argo-workflows",
        "review": {
            "backend": "github",
            "repo": "acme/approvals",
            "url": "https://github.com/acme/approvals/pull/7",
        },
        "links": {"code_package": "s3://bucket/pkg.tgz", "metaflow_ui": "javascript:alert(1)"},
        "origin": {"workflow": "train-abc", "namespace": "ml"},
    }
    data.update(overrides)
    return data


def decision_dict(**overrides: object) -> dict:
    data = {
        "gate_id": "F/1/gate",
        "outcome": "approved",
        "proceed": True,
        "decided_by": "bob",
        "channel": "github-review",
        "deciders": [
            {
                "login": "bob",
                "channel": "github-review",
                "at": "2026-01-01T01:00:00.000Z",
                "source": "github",
                "evidence_url": "https://github.com/acme/approvals/pull/7#pullrequestreview-1",
            },
            {"login": "carol", "channel": "comment", "at": "x", "evidence_url": "javascript:x"},
        ],
        "reason": None,
        "input": {},
        "decided_at": "2026-01-01T01:00:00.000Z",
        "evidence_url": "https://github.com/acme/approvals/pull/7#pullrequestreview-1",
    }
    data.update(overrides)
    return data


def test_links_only_for_http_urls_in_a_fixed_order():
    html = render_card_html(
        request_dict(),
        decision_dict(),
        pathspec="F/1/gate/2",
        links={"argo_ui": "https://argo.example.org/workflows/ml/train-abc"},
    )
    page = assert_safe(html)
    assert page.hrefs == [
        "https://github.com/acme/approvals/pull/7#pullrequestreview-1",  # bob's evidence
        "https://github.com/acme/approvals/pull/7",
        "https://github.com/acme/approvals/pull/7#pullrequestreview-1",
        "https://argo.example.org/workflows/ml/train-abc",
    ]
    text = "\n".join(page.text)
    assert "javascript:alert(1) (not an http(s) link)" in text
    assert "s3://bucket/pkg.tgz (not an http(s) link)" in text
    assert "anyone (no list given)" in text
    assert "github: acme/approvals" in text


@pytest.mark.parametrize(
    ("decision", "request_over", "verdict", "outcome", "note"),
    [
        (
            decision_dict(outcome="timed_out", proceed=False),
            {},
            "Timed out: rejected",
            "rejected",
            "did not run",
        ),
        (
            decision_dict(outcome="timed_out", proceed=True),
            {"on_timeout": "approve"},
            "Timed out: approved automatically",
            "approved",
            "ran after",
        ),
        (
            decision_dict(outcome="rejected", proceed=False),
            {"on_reject": "continue"},
            "Rejected",
            "rejected",
            "ran anyway",
        ),
        (None, {}, "No decision recorded", "pending", None),
    ],
    ids=["timeout-reject", "timeout-approve", "reject-continue", "no-decision"],
)
def test_verdicts(decision, request_over, verdict, outcome, note):
    html = render_card_html(request_dict(**request_over), decision)
    text = "\n".join(parse(html).text)
    assert verdict in text
    assert f'data-outcome="{outcome}"' in html
    if note:
        assert note in text
    if decision and decision["outcome"] == "timed_out":
        assert "Decided by" not in text


def test_missing_and_overwritten_artifacts_are_explained():
    empty = "\n".join(parse(render_card_html(None, None, pathspec="F/1/s/2")).text)
    assert "has no hitl_request or hitl_decision artifact" in empty
    assert "F/1/s/2" in empty
    odd = "\n".join(parse(render_card_html(request_dict(), "<script>x</script>")).text)
    assert "The hitl_decision artifact is a str, not a record" in odd
    assert_safe(render_card_html(request_dict(), "<script>x</script>"))


def test_unknown_options_are_listed_not_dropped():
    class FakeTask:  # the two artifacts a Task would hold
        pathspec = "F/1/gate/2"

        def __contains__(self, name: str) -> bool:
            return False

    from metaflow.plugins import CARDS  # the card type as Metaflow registered it

    (card_type,) = [c for c in CARDS if c.type == "hitl"]
    html = card_type(options={"colour": "red"}).render(FakeTask())
    assert "takes no options; ignored: colour" in html


def test_huge_input_is_cut():
    html = render_card_html(request_dict(), decision_dict(input={"blob": "y" * 50_000}))
    assert re.search(r"… \(\d+ more\)", html)
    assert len(html) < 40_000


def test_hostile_values_everywhere_stay_text():
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    request = request_dict(
        message=evil,
        gate_id=evil,
        approvers=[evil],
        started_by=evil,
        review={"backend": "github", "repo": evil, "url": "https://ok.example/" + evil},
        links={"x": 'https://ok.example/a" onmouseover="alert(3)'},
    )
    decision = decision_dict(
        gate_id=evil,
        decided_by=evil,
        reason=evil,
        input={evil: evil},
        deciders=[{"login": evil, "channel": evil, "at": evil, "source": evil}],
    )
    html = render_card_html(request, decision, pathspec=evil)
    page = assert_safe(html)
    assert not [h for h in page.hrefs if '"' in h or "<" in h]
    assert 'onmouseover="' not in html
    assert evil in "\n".join(page.text)
