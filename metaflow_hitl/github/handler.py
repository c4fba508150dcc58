"""Turn one GitHub event into a gate decision: the logic behind the Action and
``metaflow-hitl handle-event``.

:func:`handle_event` takes a normalised event (:mod:`metaflow_hitl.github.events`), the
approval store, a narrow GitHub interface (:class:`~metaflow_hitl.github.api.GitHubApi`,
implemented by :class:`~metaflow_hitl.github.review_backend.GitHubReviewBackend`), a
:class:`~metaflow_hitl.ports.Resumer` and :class:`HandlerSettings`, and returns an
:class:`Outcome`. The rules:

1. **Cheap filters first** (no API call): other events, review ``commented``, deleted
   comments, edited comments (unless ``allow_edits``), bot authors (``*[bot]`` or
   ``type: Bot``), the bot's own replies, acts of the token's own account (its merges, closes
   and replies), comments that are not commands, and bodies without a gate marker are
   ignored with a logged reason.
2. **Find the gate**: the page's body (read again from the API) must hold exactly one
   marker; the request is loaded from *our* store and the marker verified against it
   (digest, store, Argo fields); the event's repo must be the gate's review repo, a pull
   request must come from the gate's branch ``hitl/<flow>/<run>/<step>`` in the same repo,
   and the page kind (pull request / issue) must match the gate's review mode. Any mismatch
   is refused with one reply; nothing is recorded.
3. **The vote** of this event: an ``approved`` review of the current head commit approves
   (input from a leading ``/approve {json}`` in the review body); ``changes_requested`` and
   ``dismissed`` withdraw the reviewer's approval; a merge approves as the merger (channel
   ``merge``, with the merger's latest ``/approve`` input); closing without merging rejects as
   whoever closed it (channel ``close``); ``/approve`` and ``/reject`` comments vote as their
   author (channel ``comment``). With ``require_merge``, approving reviews and ``/approve``
   comments on a pull request do not approve by themselves (the comment or review gets a
   reply saying so): they count towards ``min_approvals`` when the pull request is merged, and
   the deciders are then the first ``min_approvals`` distinct eligible approvers in time
   order, the merge counting as the merger's approval at the time of the merge. Issues
   cannot be merged, so the setting does not apply to issue-mode gates. Without it (the
   default), reviews, ``/approve`` and merges all approve.
4. **Who**: write permission from the collaborator-permission API (never
   ``author_association``), team membership from the teams API, no self-approval unless
   allowed (:func:`metaflow_hitl.policy.check_decider`).
5. **Count like Prow**: every review and comment of the page is replayed into eligible votes
   (latest intent per person; approvals of an older commit, edited comments unless
   ``allow_edits``, bots, the token's own comments, malformed commands and input failing the
   schema dropped) and tallied in GitHub's time order with this vote, so a dropped webhook
   cannot change the outcome and deliveries may arrive in any order: the earliest decisive
   act on GitHub wins. :func:`metaflow_hitl.gates.decide` records the vote and, first decision
   wins, the decision. A vote that arrives after the history already settled the gate is told
   so ("came after") and not counted.
6. **Then** the decision is settled (:func:`metaflow_hitl.settle.settle`): published
   (commit, merge/close, one reply) and the run resumed, both attempted even if one fails;
   a failure fails the job (:class:`~metaflow_hitl.errors.SettleIncomplete`, naming
   ``metaflow-hitl sync GATE``) while the decision stands. An Argo run that ended before it
   could be resumed is not a failure (nothing can resume it): the page gets one reply saying
   so, the job prints :meth:`~metaflow_hitl.settle.Settled.notice` and exits 0. An event that
   finds the gate decided (or expired) changes nothing: it settles again idempotently and
   replies once per event, never on a re-delivery.

Refusals (who, what input, which gate) get a reply saying why and what would work.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from metaflow_hitl.errors import (
    AlreadyDecided,
    DecisionRefused,
    GateRefError,
    InvalidInput,
)
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import decide, expire_gate
from metaflow_hitl.github.api import GitHubApi
from metaflow_hitl.github.events import GitHubEvent
from metaflow_hitl.github.history import Cast, casts_from_page, votes_from_casts
from metaflow_hitl.markers import (
    MarkerProblem,
    is_bot_reply,
    parse_markers,
    reply_event_tag,
    sole_marker,
    verify_marker,
)
from metaflow_hitl.policy import check_decider, is_bot, normalize_login
from metaflow_hitl.ports import ApprovalStore, Resumer
from metaflow_hitl.records import (
    Actor,
    Decision,
    Intent,
    PageChange,
    Publication,
    Request,
    Vote,
)
from metaflow_hitl.render.documents import branch_for, render_reply
from metaflow_hitl.settle import Announce, Publish, Settled, settle
from metaflow_hitl.slash_commands import Command, Ignore, Reply, parse_comment
from metaflow_hitl.timestamps import format_ts, parse_ts, utc_now
from metaflow_hitl.trust import channel_refusal

__all__ = [
    "HandlerSettings",
    "NoopResumer",
    "Outcome",
    "handle_event",
]

log = logging.getLogger("metaflow_hitl.action")

#: Refusal replies one account can draw on one page per hour; later ones are only logged.
MAX_REFUSALS_PER_HOUR = 3
#: Accounts asked about one by one before a run reads the collaborators listing instead.
LIST_AFTER = 2

Clock = Callable[[], datetime]


@dataclass(frozen=True, kw_only=True)
class HandlerSettings:
    """How the Action reads events (``METAFLOW_HITL_REQUIRE_MERGE``, ``..._ALLOW_EDITS``)."""

    require_merge: bool = False
    allow_edits: bool = False


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one event did. ``decision`` is the gate's decision now in force, if any;
    ``ignored_reason`` says why the event changed nothing (None when it recorded a vote)."""

    gate_id: str | None = None
    decision: Literal["approved", "rejected", "timed_out"] | None = None
    ignored_reason: str | None = None
    replied: bool = False
    message: str = ""


class NoopResumer:
    """The resumer for local runs: the waiting task reads the store, nothing to resume."""

    def resume(self, request: Request, decision: Decision) -> bool:
        return False


def _ts(value: str | None, default: datetime) -> datetime:
    try:
        return parse_ts(value) if value else default
    except (ValueError, TypeError):
        return default


@dataclass(frozen=True, kw_only=True)
class _Act(Cast):
    """The vote an event asks for: a cast, and the review or comment it comes from."""

    key: str = ""  # "review:ID" / "comment:ID" ("" for merges and closes)


class _Handler:
    def __init__(
        self,
        event: GitHubEvent,
        store: ApprovalStore,
        github: GitHubApi,
        settings: HandlerSettings,
        clock: Clock,
    ) -> None:
        self.event, self.store, self.github = event, store, github
        self.settings, self.clock = settings, clock
        self.gate_id: str | None = None
        self.request: Request | None = None
        self._facts: dict[str, tuple[str | None, list[str] | None]] = {}
        self._asked = 0  # permission lookups of single accounts in this run
        self._listing: dict[str, str] | None = None  # the collaborators listing, once read

    # -- results ------------------------------------------------------------------------------
    def ignore(self, reason: str) -> Outcome:
        log.info("ignored %s: %s", self.event.event_key, reason)
        return Outcome(gate_id=self.gate_id, ignored_reason=reason, message=f"ignored: {reason}")

    def _parse(self, body: str | None) -> Command | Reply | Ignore:
        """A comment, with ``key=value`` input typed by the gate's schema."""
        schema = self.request.input_schema if self.request is not None else None
        return parse_comment(body, schema)

    def reply(self, text: str, key_suffix: str = "", *, key: str | None = None) -> bool:
        key = (key or self.event.event_key) + key_suffix
        tag = reply_event_tag(self.gate_id or "", key)
        return self.github.comment_once(self.event.number, f"{tag}\n{text.rstrip()}\n", tag)

    def refuse(
        self,
        reason: str,
        hint: str | None = None,
        *,
        actor: str | None = None,
        key: str | None = None,
        show_fields: bool = False,
    ) -> Outcome:
        """Refuse with one reply (per comment or review, or per ``key``), unless ``actor``
        already got :data:`MAX_REFUSALS_PER_HOUR` refusals on this page in the last hour."""
        actor = self.event.actor if actor is None else actor
        who = f"@{actor}: " if actor else ""
        log.warning("refused %s: %s", self.event.event_key, reason)
        outcome = Outcome(gate_id=self.gate_id, ignored_reason=reason, message=f"refused: {reason}")
        if actor and self._refusals(actor) >= MAX_REFUSALS_PER_HOUR:
            log.warning(
                "not replying: %s had %d refusals here this hour", actor, MAX_REFUSALS_PER_HOUR
            )
            return outcome
        if self.request is not None:
            text = render_reply(self.request, f"{who}{reason}", hint=hint, show_fields=show_fields)
        else:
            text = f"**metaflow-hitl** did not act on this event: {who}{reason}"
            text += f"\n\n{hint}" if hint else ""
        suffix = f":refused:{normalize_login(actor)}" if actor else ":refused"
        replied = self.reply(text, suffix, key=key)
        return replace(outcome, replied=replied)

    def _refusals(self, actor: str) -> int:
        """Refusal replies this token posted for ``actor`` on this page in the last hour."""
        cutoff = self.clock() - timedelta(hours=1)
        needle = f":refused:{normalize_login(actor)}"
        return sum(
            1
            for c in self.github.list_comments(self.event.number)
            if needle in str(c.get("body") or "").split("\n", 1)[0]
            and _ts(c.get("created_at"), cutoff) > cutoff
            and self.github.is_ours(c)
        )

    # -- 1. filters -----------------------------------------------------------------------------
    def prefilter(self) -> str | None:
        """A reason to ignore the event, found without calling GitHub; None to go on."""
        e = self.event
        if e.ignored:
            return e.ignored
        if e.kind == "changed":
            return None  # whoever changed a page, and whatever its body says now, it counts
        if e.kind == "comment":
            if e.action == "edited" and not self.settings.allow_edits:
                return "edited comments are ignored (allow-edits is off)"
            if e.action not in ("created", "edited"):
                return f"issue_comment action {e.action!r} is not handled"
        if e.kind == "closed":
            closer = e.merged_by if e.merged else e.actor
            if is_bot(closer or "") or (e.actor_type == "Bot" and not e.merged):
                return f"the pull request was closed by a bot ({closer}), e.g. our own publishing"
        elif e.actor_is_bot:
            return f"{e.actor} is a bot; bots never decide"
        if e.kind == "review" and e.review_state == "commented":
            return "a review that only comments is not a vote"
        if e.kind == "comment":
            if is_bot_reply(e.comment_body):
                return "the comment is a metaflow-hitl reply"
            parsed = parse_comment(e.comment_body)
            if isinstance(parsed, Ignore):
                return parsed.reason
        marker = sole_marker(e.body)
        if isinstance(marker, MarkerProblem) and marker.kind == "missing":
            return f"#{e.number} is not a gate's page: it has no metaflow-hitl marker"
        return None

    # -- 2. the gate ----------------------------------------------------------------------------
    def find_gate(self) -> tuple[Request, dict[str, Any] | None] | Outcome:
        e = self.event
        page = self.github.get_pull(e.number) if e.is_pull else self.github.get_issue(e.number)
        if page is None:
            return self.ignore(f"#{e.number} was not found in {e.repo}")
        marker = sole_marker(page.get("body"))
        if isinstance(marker, MarkerProblem):
            if marker.kind == "missing":
                return self.ignore(f"#{e.number} is not a gate's page: {marker.message}")
            return self.refuse(
                marker.message, "Restore the page text the bot wrote, or decide with the CLI."
            )
        self.gate_id = marker.gate_id
        try:
            gate_id = GateId.parse(marker.gate_id)
        except GateRefError as exc:  # pragma: no cover - parse_markers checked it
            return self.refuse(str(exc))
        request = self.store.get_request(gate_id)
        if request is None:
            return self.refuse(
                f"gate {gate_id} has no request in the store {self.store.location}; nothing "
                "was recorded.",
                "Check that the Action's store setting points to the flow's store.",
            )
        self.request = request
        problem = verify_marker(marker, request)
        if problem:
            return self.refuse(problem, "Nothing was recorded; decide with the CLI if needed.")
        review = request.review or {}
        want_repo = str(review.get("repo") or "")
        if review.get("backend") != "github" or want_repo.lower() != e.repo.lower():
            return self.refuse(
                f"gate {gate_id} is reviewed in {want_repo or 'no GitHub repository'}, not in "
                f"{e.repo}; nothing was recorded."
            )
        mode = str(review.get("mode") or "pr")
        if (mode == "pr") != e.is_pull:
            kind = "pull request" if mode == "pr" else "issue"
            return self.refuse(f"gate {gate_id} is reviewed on a {kind}, not on #{e.number}.")
        if e.is_pull:
            head = page.get("head") or {}
            head_repo = str((head.get("repo") or {}).get("full_name") or "")
            if head.get("ref") != branch_for(gate_id) or head_repo.lower() != e.repo.lower():
                return self.refuse(
                    f"#{e.number} comes from {head_repo}:{head.get('ref')}, not from the gate's "
                    f"branch {e.repo}:{branch_for(gate_id)}; its marker is not trusted."
                )
        changed = self.github.check_page(
            request, page, is_pull=e.is_pull, publication=self.store.get_publication(gate_id)
        )
        if changed:
            digest = hashlib.sha256("\n".join(changed).encode()).hexdigest()[:16]
            return self.refuse(
                f"#{e.number} changed after metaflow-hitl published it for gate {gate_id}: "
                + "; ".join(changed)
                + ". A changed page decides nothing: no vote here counts and it is not merged.",
                f"Decide gate {gate_id} from another channel: `metaflow-hitl approve "
                f"{gate_id}` or `metaflow-hitl reject {gate_id} --reason ...` by an approver "
                "with access to the gate's store.",
                actor="",
                key=f"page-changed:{digest}",
            )
        return request, page

    # -- 2b. a page that changed ---------------------------------------------------------------
    def page_changed(self) -> Outcome:
        """Record that the page changed, for every open gate it was published for, so that
        approvals cast before now no longer count (the approver may have seen the changed
        page, even if it has been restored since), and reply once saying so."""
        e = self.event
        page = self.github.get_pull(e.number) if e.is_pull else self.github.get_issue(e.number)
        if page is None:
            return self.ignore(f"#{e.number} was not found in {e.repo}")
        # GitHub's updated_at (GitHub's clock, at or after the change), or this runner's clock
        # if that is later: votes are ordered by GitHub's timestamps; a skew only drops more.
        now = max(self.clock(), _ts(page.get("updated_at"), self.clock()))
        named = {
            m.gate_id for text in (page.get("body"), e.body_before) for m in parse_markers(text)
        }
        ref = str((page.get("head") or {}).get("ref") or "") if e.is_pull else ""
        if ref.startswith("hitl/") and ref.count("/") == 3:
            named.add(ref.removeprefix("hitl/"))
        what = (
            "its pull request was edited or pushed to"
            if e.kind == "changed" and e.action == "changed"
            else f"{e.name} {e.action}"
        )
        hit: list[tuple[Request, Publication, PageChange]] = []
        for name in sorted(named):
            try:
                gate_id = GateId.parse(name)
            except GateRefError:
                continue
            publication = self.store.get_publication(gate_id)
            if (
                publication is None
                or publication.number != e.number
                or publication.repo.lower() != e.repo.lower()
            ):
                continue  # not this page's gate: a copied marker changes nothing elsewhere
            request = self.store.get_request(gate_id)
            if request is None or self.store.get_decision(gate_id) is not None:
                continue
            change = PageChange(
                gate_id=gate_id, number=e.number, seen_at=now, what=what, by=e.sender or None
            )
            self.store.add_page_change(change)
            hit.append((request, publication, change))
        if not hit:
            return self.ignore(f"#{e.number} is not the page of an open gate")
        request, publication, change = hit[0]
        self.gate_id, self.request = str(request.gate_id), request
        still = self.github.check_page(request, page, is_pull=e.is_pull, publication=publication)
        by = f" by {e.sender}" if e.sender else ""
        text = (
            f"#{e.number} changed{by} ({what}) after metaflow-hitl published it for gate "
            f"{request.gate_id}. Approvals cast before {format_ts(now)} no longer count: "
            "whoever approved may have seen the changed page."
        )
        if still:
            text += (
                " It still differs from what was published: " + "; ".join(still) + ". No vote "
                "counts until it matches again."
            )
        else:
            text += " It matches what was published again: approve again to decide."
        digest = hashlib.sha256(
            json.dumps(
                [
                    e.name,
                    e.action,
                    e.body_before,
                    page.get("body"),
                    (page.get("head") or {}).get("sha"),
                ]
            ).encode()
        ).hexdigest()[:16]
        replied = self.reply(render_reply(request, text), key=f"page-change:{digest}")
        reason = f"#{e.number} changed ({what}); approvals before {format_ts(now)} no longer count"
        log.warning("gate %s: %s", request.gate_id, reason)
        return Outcome(
            gate_id=str(request.gate_id), ignored_reason=reason, replied=replied, message=reason
        )

    def changed_at(self) -> datetime | None:
        """When the page was last seen changed (approvals until then do not count), or None."""
        assert self.request is not None
        changes = self.store.list_page_changes(self.request.gate_id)
        return max((c.seen_at for c in changes), default=None)

    # -- 3. the vote ----------------------------------------------------------------------------
    def act(self, page: dict[str, Any]) -> _Act | Outcome:
        """The vote this event stands for, from what GitHub's API says **now** (the payload
        only says where to look): a comment that is gone or was edited by someone else, a
        review that is no longer an approval, a pull request that is not merged, count as
        nothing; the actor, body, state and time are the API's."""
        e, now = self.event, self.clock()
        if e.kind == "review":
            return self._review_act(page, now)
        if e.kind == "closed":
            return self._closed_act(page)
        return self._comment_act(now)

    def _review_act(self, page: dict[str, Any], now: datetime) -> _Act | Outcome:
        e = self.event
        review = self.github.get_review(e.number, int(e.review_id or 0))
        if review is None:
            return self.ignore(f"review {e.review_id} is gone from #{e.number}")
        state = str(review.get("state") or "").upper()
        login = str((review.get("user") or {}).get("login") or "")
        if (review.get("user") or {}).get("type") == "Bot" or is_bot(login):
            return self.ignore(f"{login} is a bot; bots never decide")
        at = _ts(review.get("submitted_at"), now)
        key, url = f"review:{review.get('id')}", review.get("html_url")
        if state in ("CHANGES_REQUESTED", "DISMISSED"):
            return _Act(
                login=login,
                intent="withdraw",
                channel="github-review",
                at=at,
                evidence_url=url,
                key=key,
            )
        if state != "APPROVED":
            return self.ignore(f"review {e.review_id} is {state or 'unknown'} now, not a vote")
        head_sha = (page.get("head") or {}).get("sha")
        if review.get("commit_id") != head_sha:
            return self.refuse(
                f"this approval is of commit {str(review.get('commit_id'))[:12]}, but the pull "
                f"request's head is {str(head_sha)[:12]}; it does not count.",
                "Review the current head commit and approve again.",
            )
        body = str(review.get("body") or "")
        parsed = self._parse(body) if body.strip() else Ignore("")
        if isinstance(parsed, Reply):
            return self.refuse(parsed.message)
        value = parsed.input if isinstance(parsed, Command) and parsed.intent == "approve" else {}
        note = body.strip()[:1000] if not value else None
        return _Act(
            login=login,
            intent="approve",
            channel="github-review",
            at=at,
            input=value,
            reason=note or None,
            evidence_url=url,
            key=key,
        )

    def _closed_act(self, page: dict[str, Any]) -> _Act | Outcome:
        e = self.event
        if page.get("state") != "closed":
            return self.ignore(f"#{e.number} is open now; nothing to decide")
        if page.get("merged"):
            merger = str((page.get("merged_by") or {}).get("login") or "")
            at = _ts(page.get("merged_at"), self.clock())
            return _Act(
                login=merger,
                intent="approve",
                channel="merge",
                at=at,
                evidence_url=page.get("html_url"),
            )
        issue = self.github.get_issue(e.number) or {}
        closer = str((issue.get("closed_by") or {}).get("login") or "")
        if not closer:
            return self.ignore(f"GitHub does not say who closed #{e.number}")
        me = self.github.whoami()
        if is_bot(closer) or (me and closer.lower() == me.lower()):
            return self.ignore(f"#{e.number} was closed by {closer}, e.g. our own publishing")
        at = _ts(page.get("closed_at"), self.clock())
        reason = f"closed #{e.number} without merging"
        return _Act(
            login=closer,
            intent="reject",
            channel="close",
            at=at,
            reason=reason,
            evidence_url=page.get("html_url"),
        )

    def _comment_act(self, now: datetime) -> _Act | Outcome:
        e = self.event
        comment = self.github.get_comment(int(e.comment_id or 0))
        if comment is None:
            return self.ignore(f"comment {e.comment_id} is gone (deleted before it was handled)")
        if not str(comment.get("issue_url") or "").endswith(f"/issues/{e.number}"):
            return self.ignore(f"comment {e.comment_id} is not on #{e.number}")
        user = comment.get("user") or {}
        login = str(user.get("login") or "")
        if user.get("type") == "Bot" or is_bot(login):
            return self.ignore(f"{login} is a bot; bots never decide")
        at = _ts(comment.get("created_at"), now)
        if comment.get("updated_at") != comment.get("created_at"):
            if not self.settings.allow_edits:
                return self.ignore("the comment was edited; edited comments are ignored")
            if e.action != "edited" or e.sender.lower() != login.lower():
                # anyone with write access can edit anyone's comment: only its author's own
                # edit, delivered as that edit, is theirs
                return self.ignore(
                    f"the comment was edited, and not by its author {login} in this event; "
                    "an edit by someone else never speaks for the author"
                )
            at = _ts(comment.get("updated_at"), now)
        parsed = self._parse(comment.get("body"))
        if isinstance(parsed, Ignore):
            return self.ignore(f"the comment as GitHub holds it now: {parsed.reason}")
        if isinstance(parsed, Reply):
            return self.refuse(parsed.message, actor=login)
        return _Act(
            login=login,
            intent=parsed.intent,
            channel="comment",
            at=at,
            input=dict(parsed.input),
            reason=parsed.reason,
            evidence_url=comment.get("html_url"),
            key=f"comment:{comment.get('id')}",
        )

    # -- 4. who ---------------------------------------------------------------------------------
    def facts(self, login: str) -> tuple[str | None, list[str] | None]:
        key = normalize_login(login)
        if key not in self._facts:
            assert self.request is not None
            permission = self._permission(login)
            teams: list[str] | None = []
            listed = {normalize_login(a) for a in self.request.approvers if "/" not in a}
            if key not in listed:
                for entry in (normalize_login(a) for a in self.request.approvers if "/" in a):
                    org, _, slug = entry.partition("/")
                    member = self.github.team_member(org, slug, login)
                    if member is None and teams is not None and not teams:
                        teams = None
                    elif member:
                        teams = [entry]
                        break
            self._facts[key] = (permission, teams)
        return self._facts[key]

    def _permission(self, login: str) -> str | None:
        """``login``'s permission: from one collaborators listing once this run has asked
        about :data:`LIST_AFTER` accounts one by one (a busy page costs one listing, not a
        lookup per voter), else, or when the listing does not name them, from the
        permission API."""
        if self._listing is None and self._asked >= LIST_AFTER:
            self._listing = self.github.permissions() or {}
        found = (self._listing or {}).get(login.lower())
        if found is not None:
            return found
        self._asked += 1
        return self.github.permission(login)

    def eligible(self, login: str, intent: Intent) -> bool:
        assert self.request is not None
        permission, teams = self.facts(login)
        refusal = check_decider(
            self.request, login, intent, permission=permission, teams=teams, require_permission=True
        )
        return refusal is None

    # -- 5. history -----------------------------------------------------------------------------
    def history(self, page: dict[str, Any], me: str | None, merging: bool) -> list[Vote]:
        """Eligible votes from every review and comment of the page, except this event's:
        read from the API now, replayed by the pure rules of :mod:`metaflow_hitl.github.history`."""
        assert self.request is not None
        e = self.event
        casts = casts_from_page(
            reviews=self.github.list_reviews(e.number) if e.is_pull else [],
            comments=self.github.list_comments(e.number),
            head_sha=(page.get("head") or {}).get("sha"),
            me=me,
            now=self.clock(),
            skip_review=e.review_id,
            skip_comment=e.comment_id,
            schema=self.request.input_schema,
        )
        return votes_from_casts(
            self.request,
            casts,
            changed_at=self.changed_at(),
            approvals_need_merge=self.settings.require_merge and e.is_pull and not merging,
            eligible=self.eligible,
        )

    # -- 6. deciding ----------------------------------------------------------------------------
    def already(
        self,
        decision: Decision,
        why: str,
        publish: Publish,
        resumer: Resumer,
        announce: Announce | None,
    ) -> Outcome:
        assert self.request is not None
        # Idempotent: heals a run that failed to publish or resume (the policy: settle.py).
        settled = settle(
            self.request, decision, publish=publish, resumer=resumer, announce=announce
        )
        replied = False
        if self.event.kind != "review" or self.event.review_state == "approved":
            text = render_reply(self.request, decision)
            replied = self.reply(f"{why}\n\n{text}", ":decided")
        settled.raise_if_incomplete()  # after the reply: the decider still hears the outcome
        return Outcome(
            gate_id=self.gate_id,
            decision=decision.outcome,
            ignored_reason=why,
            replied=replied,
            message=_with_notice(f"{why} ({decision.summary()})", settled),
        )


def _with_notice(message: str, settled: Settled) -> str:
    """``message``, then the line saying the run ended (if it did)."""
    notice = settled.notice()
    return f"{message}\n{notice}" if notice else message


def handle_event(
    event: GitHubEvent,
    *,
    store: ApprovalStore,
    github: GitHubApi,
    resumer: Resumer,
    settings: HandlerSettings | None = None,
    clock: Clock = utc_now,
    publish: Publish | None = None,
    announce: Announce | None = None,
) -> Outcome:
    """Decide what one GitHub event means for its gate, record it, publish and resume.

    Parameters
    ----------
    event
        From :func:`metaflow_hitl.github.events.normalize_event`.
    store
        The approval store the gates were opened in (the Action's setting, never the marker's).
    github
        The review repo's API (:class:`~metaflow_hitl.github.review_backend.GitHubReviewBackend`).
    resumer
        Resumes the paused run after a decision (:class:`NoopResumer` locally).
    settings
        ``require_merge`` and ``allow_edits``.
    clock
        The current time.
    publish
        Records the decision in the review repo; default
        :func:`metaflow_hitl.review.publish.publish_decision`.
    announce
        Tells the gate's page that its run ended before it was resumed; default
        :func:`metaflow_hitl.review.publish.announce_run_ended`.

    Returns
    -------
    Outcome

    Raises
    ------
    HitlError
        The store or GitHub could not be read or written (the event could not be recorded).
    """
    if publish is None:
        from metaflow_hitl.review.publish import publish_decision

        def publish(request: Request, decision: Decision) -> dict[str, str | None]:
            return publish_decision(request, decision, store=store)

    if announce is None:
        from metaflow_hitl.review.publish import announce_run_ended

        announce = announce_run_ended

    h = _Handler(event, store, github, settings or HandlerSettings(), clock)
    reason = h.prefilter()
    if reason is not None:
        return h.ignore(reason)
    me = github.whoami()
    who = (event.merged_by if event.merged else event.actor) or ""
    if me and who.lower() == me.lower():
        return h.ignore(f"{who} is this Action's own account (e.g. its own merge, close or reply)")
    if event.kind == "changed":
        return h.page_changed()
    found = h.find_gate()
    if isinstance(found, Outcome):
        return found
    request, page = found
    assert page is not None
    gate_id = request.gate_id
    untrusted = channel_refusal(request, "github")
    if untrusted:
        return h.refuse(f"{untrusted}.", "Decide it through a channel the gate trusts.")
    act = h.act(page)
    if isinstance(act, Outcome):
        return act
    # Who first: an ineligible actor gets one refusal and causes nothing else (no expiry
    # recorded, no republishing, no resume).
    permission, teams = h.facts(act.login)
    refusal = check_decider(
        request, act.login, act.intent, permission=permission, teams=teams, require_permission=True
    )
    if refusal is not None:
        return h.refuse(refusal.reason, refusal.hint, actor=act.login)
    cutoff = h.changed_at()
    if act.intent == "approve" and cutoff is not None and act.at <= cutoff:
        return h.refuse(
            f"this approval ({format_ts(act.at)}) came before #{event.number} changed "
            f"({format_ts(cutoff)}); it does not count.",
            "Check the page as it is now and approve again.",
            actor=act.login,
        )
    existing = store.get_decision(gate_id) or expire_gate(store, gate_id, now=clock())
    if existing is not None:
        why = (
            f"gate {gate_id} expired and was decided by its timeout"
            if existing.outcome == "timed_out"
            else f"gate {gate_id} was already decided; the first decision wins"
        )
        return h.already(existing, why, publish, resumer, announce)
    if act.intent == "approve" and _held_for_merge(h, act):
        return h.refuse(
            "this review repository requires merging: an approval counts once the pull "
            "request is merged; nothing was recorded.",
            "Merge the pull request to approve (approving reviews still count towards "
            "min_approvals then).",
        )
    if any(
        v.actor.evidence_url == act.evidence_url and v.intent == act.intent and act.key
        for v in store.list_votes(gate_id)
    ):
        return h.ignore(f"duplicate delivery: {act.key} is already recorded")
    merging = act.channel == "merge"
    history = h.history(page, me, merging)
    value = act.input
    if merging:
        mine = [
            v
            for v in history
            if v.intent == "approve"
            and normalize_login(v.actor.login) == normalize_login(act.login)
        ]
        value = mine[-1].input if mine else {}
    actor = Actor(
        login=act.login,
        channel=act.channel,
        at=act.at,
        evidence_url=act.evidence_url,
        source="github",
    )
    now = clock()
    try:
        result = decide(
            store,
            gate_id,
            actor=actor,
            intent=act.intent,
            input=value,
            reason=act.reason,
            permission=permission,
            teams=teams,
            require_permission=True,
            now=now,
            history=history,
        )
    except AlreadyDecided as exc:
        why = f"gate {gate_id} was already decided"
        if exc.decision.decided_at == now:  # decided just now, by votes earlier in the history
            why = (
                f"gate {gate_id} was decided by earlier reviews and comments; {act.login}'s "
                f"{act.intent} came after them and was not counted"
            )
        return h.already(exc.decision, why, publish, resumer, announce)
    except InvalidInput as exc:  # its hint names the CLI; the reply shows the fields instead
        return h.refuse(exc.message, "Fix the input and comment again.", show_fields=True)
    except DecisionRefused as exc:
        return h.refuse(exc.message, exc.hint)
    if result.decision is None:
        standing = result.tally
        msg = f"{act.login}'s {act.intent} is recorded; {standing.missing} more approval(s) needed"
        replied = False
        if act.intent == "approve":
            replied = h.reply(
                render_reply(request, msg.replace(" is recorded", " counts")), ":vote"
            )
        log.info("gate %s: %s", gate_id, msg)
        return Outcome(gate_id=str(gate_id), replied=replied, message=msg)
    decision = result.decision
    settled = settle(request, decision, publish=publish, resumer=resumer, announce=announce)
    settled.raise_if_incomplete()
    return Outcome(
        gate_id=str(gate_id),
        decision=decision.outcome,
        replied=True,
        message=_with_notice(decision.summary(), settled),
    )


def _held_for_merge(h: _Handler, act: _Act) -> bool:
    """Whether ``require_merge`` holds this (non-merge) approval back."""
    return h.settings.require_merge and h.event.is_pull and act.channel != "merge"
