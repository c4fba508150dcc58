"""Re-verify a GitHub decision against GitHub where it is used: in the gated step.

The store holds the decision; anyone who can write the store can write one. A gate with
``trusted_channels`` (:mod:`metaflow_hitl.trust`) does not take the record's word for it:
before the step runs, :func:`verify_decision` asks GitHub, for each decider whose channel is
GitHub, that

* the gate's page is the one metaflow-hitl opened for this gate (its marker names the gate;
  a pull request comes from the gate's branch ``hitl/<flow>/<run>/<step>``);
* the decider's evidence exists on that page and is theirs: the ``/approve`` or ``/reject``
  comment (unedited), the approving review, the merge or the close the record links to
  (``evidence_url``), carrying the recorded intent, and for the final decider the recorded
  input (and a rejection's reason);
* the decider is eligible *now* by the gate's rules: write permission on the review repo
  (the collaborator-permission API), the gate's ``approvers`` and teams, no self-approval
  (:func:`metaflow_hitl.policy.check_decider`).

Each failure raises its own :class:`~metaflow_hitl.errors.DecisionUnverified` subclass, so
the step's headline says which: evidence missing, decider not eligible, GitHub unreachable.
GitHub's REST API: issue comments ``GET /repos/{o}/{r}/issues/comments/{id}``, reviews
``GET /repos/{o}/{r}/pulls/{n}/reviews/{id}``, the pull request's ``merged`` and
``merged_by``, the issue's ``closed_by`` (https://docs.github.com/en/rest/issues/comments,
https://docs.github.com/en/rest/pulls/reviews, https://docs.github.com/en/rest/pulls/pulls,
https://docs.github.com/en/rest/issues/issues).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from metaflow_hitl.errors import (
    DeciderNotEligible,
    EvidenceMissing,
    GitHubUnreachable,
    HitlError,
)
from metaflow_hitl.markers import MarkerProblem, sole_marker
from metaflow_hitl.policy import check_decider, normalize_login
from metaflow_hitl.records import Actor, Decision, Intent, Publication, Request
from metaflow_hitl.render.documents import branch_for
from metaflow_hitl.slash_commands import Command, parse_comment
from metaflow_hitl.trust import channel_group

__all__ = ["GitHubReader", "verify_decision"]

_COMMENT = re.compile(r"#issuecomment-(\d+)$")
_REVIEW = re.compile(r"#pullrequestreview-(\d+)$")
_T = TypeVar("_T")


class GitHubReader(Protocol):
    """What verification reads from GitHub (one review repo); implemented by
    :class:`~metaflow_hitl.github.review_backend.GitHubReviewBackend`."""

    def permission(self, login: str) -> str | None: ...
    def team_member(self, org: str, slug: str, login: str) -> bool | None: ...
    def get_pull(self, number: int) -> dict[str, Any] | None: ...
    def get_issue(self, number: int) -> dict[str, Any] | None: ...
    def get_comment(self, comment_id: int) -> dict[str, Any] | None: ...
    def get_review(self, number: int, review_id: int) -> dict[str, Any] | None: ...
    def is_ours(self, item: dict[str, Any]) -> bool: ...


def verify_decision(
    request: Request,
    decision: Decision,
    github: GitHubReader,
    *,
    publication: Publication | None,
) -> int:
    """Check every GitHub decider of ``decision`` against GitHub.

    Parameters
    ----------
    request
        The gate's stored request.
    decision
        Its stored decision.
    github
        The gate's review repository.
    publication
        The store's record of the page published for the gate (its number).

    Returns
    -------
    int
        How many deciders were verified (0 when none decided through GitHub).

    Raises
    ------
    EvidenceMissing, DeciderNotEligible, GitHubUnreachable
        The step must not run; the message names the decider and what is wrong.
    """
    actors = [a for a in decision.deciders if channel_group(a.channel) == "github"]
    if not actors:
        return 0
    gate = request.gate_id
    if decision.request_digest != request.digest():
        raise EvidenceMissing(
            f"the decision on gate {gate} was made for another request "
            f"({decision.request_digest[:19]}), not the gate's ({request.digest()[:19]})."
        )
    if publication is None or str(publication.gate_id) != str(gate):
        raise EvidenceMissing(
            f"gate {gate} has no record of the GitHub page it was published on, so "
            f"{decision.decided_by}'s {decision.channel} decision cannot be checked."
        )
    number = publication.number
    is_pull = publication.mode == "pr"
    page = _ask(lambda: github.get_pull(number) if is_pull else github.get_issue(number), gate)
    where = f"#{number} in {publication.repo}"
    if page is None:
        raise EvidenceMissing(f"gate {gate}'s page {where} is gone.")
    marker = sole_marker(page.get("body"))
    if isinstance(marker, MarkerProblem) or marker.gate_id != str(gate):
        raise EvidenceMissing(f"{where} is not gate {gate}'s page (its marker does not name it).")
    if is_pull and (page.get("head") or {}).get("ref") != branch_for(gate):
        raise EvidenceMissing(f"{where} does not come from gate {gate}'s branch.")
    if not github.is_ours(page):
        raise EvidenceMissing(f"{where} was not opened by metaflow-hitl's account.")
    intent: Intent = "approve" if decision.outcome == "approved" else "reject"
    for actor in actors:
        final = normalize_login(actor.login) == normalize_login(decision.decided_by)
        _check_evidence(github, decision, actor, intent, number, page, final=final, where=where)
        _check_eligible(github, request, actor, intent)
    return len(actors)


def _ask(call: Callable[[], _T], gate: Any) -> _T:
    try:
        return call()
    except HitlError as exc:
        raise GitHubUnreachable(
            f"could not ask GitHub to verify the decision on gate {gate}: {exc.message}",
            hint="The step did not run. Re-run it (e.g. `resume`) once GitHub answers.",
        ) from None


def _id(pattern: re.Pattern[str], url: str) -> int | None:
    found = pattern.search(url)
    return int(found.group(1)) if found else None


def _login(item: dict[str, Any] | None, key: str = "user") -> str:
    return normalize_login(str(((item or {}).get(key) or {}).get("login") or ""))


def _check_evidence(
    github: GitHubReader,
    decision: Decision,
    actor: Actor,
    intent: Intent,
    number: int,
    page: dict[str, Any],
    *,
    final: bool,
    where: str,
) -> None:
    who, url = normalize_login(actor.login), actor.evidence_url or ""
    what = f"{actor.login}'s {actor.channel} ({url or 'no link recorded'})"
    if actor.channel == "comment":
        cid = _id(_COMMENT, url)
        item = None if cid is None else _ask(lambda: github.get_comment(cid), decision.gate_id)
        if item is None:
            raise EvidenceMissing(f"{what} is not on GitHub: deleted, or never there.")
        if not str(item.get("issue_url") or "").endswith(f"/issues/{number}"):
            raise EvidenceMissing(f"{what} is not on {where}.")
        if _login(item) != who:
            raise EvidenceMissing(f"{what} was written by {_login(item)}, not {actor.login}.")
        if item.get("updated_at") != item.get("created_at"):
            raise EvidenceMissing(f"{what} was edited after it was cast.")
        parsed = parse_comment(item.get("body"))
        _check_said(decision, parsed, intent, what, final=final)
    elif actor.channel == "github-review":
        rid = _id(_REVIEW, url)
        item = (
            None if rid is None else _ask(lambda: github.get_review(number, rid), decision.gate_id)
        )
        if item is None:
            raise EvidenceMissing(f"{what} is not on {where}: deleted, or never there.")
        if _login(item) != who:
            raise EvidenceMissing(f"{what} was submitted by {_login(item)}, not {actor.login}.")
        if str(item.get("state") or "").upper() != "APPROVED" or intent != "approve":
            raise EvidenceMissing(f"{what} is {item.get('state')} now, not an approval.")
        parsed = parse_comment(item.get("body"))
        value = parsed.input if isinstance(parsed, Command) and parsed.intent == "approve" else {}
        if final and dict(value) != dict(decision.input):
            raise EvidenceMissing(f"{what} carries other input than the decision records.")
    elif actor.channel == "merge":
        if not page.get("merged") or _login(page, "merged_by") != who or intent != "approve":
            raise EvidenceMissing(f"{where} was not merged by {actor.login}.")
    elif actor.channel == "close":
        issue = _ask(lambda: github.get_issue(number), decision.gate_id) or {}
        closed = page.get("state") == "closed" and not page.get("merged")
        if not closed or _login(issue, "closed_by") != who or intent != "reject":
            raise EvidenceMissing(f"{where} was not closed without merging by {actor.login}.")


def _check_said(decision: Decision, parsed: Any, intent: Intent, what: str, *, final: bool) -> None:
    if not isinstance(parsed, Command) or parsed.intent != intent:
        said = parsed.intent if isinstance(parsed, Command) else "no command"
        raise EvidenceMissing(f"{what} says {said} now, not {intent}.")
    if not final:
        return
    if intent == "approve" and dict(parsed.input) != dict(decision.input):
        raise EvidenceMissing(f"{what} carries other input than the decision records.")
    if intent == "reject" and (parsed.reason or None) != (decision.reason or None):
        raise EvidenceMissing(f"{what} gives another reason than the decision records.")


def _member(github: GitHubReader, org: str, slug: str, login: str, request: Request) -> bool | None:
    return _ask(lambda: github.team_member(org, slug, login), request.gate_id)


def _check_eligible(github: GitHubReader, request: Request, actor: Actor, intent: Intent) -> None:
    login = actor.login
    permission = _ask(lambda: github.permission(login), request.gate_id)
    teams: list[str] | None = []
    listed = {normalize_login(a) for a in request.approvers if "/" not in a}
    if normalize_login(login) not in listed:
        for entry in (normalize_login(a) for a in request.approvers if "/" in a):
            org, _, slug = entry.partition("/")
            member = _member(github, org, slug, login, request)
            if member is None:
                teams = None
                break
            if member:
                teams = [entry]
                break
    refusal = check_decider(
        request, login, intent, permission=permission, teams=teams, require_permission=True
    )
    if refusal is not None:
        raise DeciderNotEligible(
            f"{login} may not decide gate {request.gate_id} now: {refusal.reason}.",
            hint="The step did not run. An eligible approver must decide it again on a new run.",
        )
