"""The gated step's last check before it runs: does the decision come from a channel the gate
trusts, and does GitHub still back it? (``@hitl(trusted_channels=...)``.)

Runs in the local waiting task and in the gated step on Argo, after the decision is read and
before the step's code. A failure fails the step closed with the cause in its headline
(:class:`~metaflow_hitl.errors.DecisionUnverified` and its subclasses) and, when GitHub
answers, one reply on the gate's page saying why the approved step did not run.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any

from metaflow_hitl.errors import DecisionUnverified, EvidenceMissing, HitlError, UntrustedChannel
from metaflow_hitl.markers import REPLY_MARKER_NAME
from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.records import Decision, Request
from metaflow_hitl.timestamps import format_ts, utc_now
from metaflow_hitl.trust import channel_group, untrusted_deciders

__all__ = ["enforce_trusted_channels", "verifier_for"]


def verifier_for(request: Request) -> Any:
    """The GitHub review backend that verifies ``request``'s decisions (few, short retries:
    an unreachable GitHub fails the step within seconds, it does not hang it)."""
    from metaflow_hitl.github.review_backend import GitHubReviewBackend

    review = request.review or {}
    if review.get("backend") != "github":
        raise EvidenceMissing(
            f"gate {request.gate_id} records a GitHub decision but is not reviewed on GitHub "
            f"(review: {review.get('backend') or 'none'}); the record cannot be true."
        )
    return GitHubReviewBackend(
        str(review.get("repo") or ""),
        mode=str(review.get("mode") or "pr"),
        api_url=review.get("api_url") or None,
        max_attempts=3,
        backoff=0.5,
        max_wait=10.0,
    )


def enforce_trusted_channels(
    trusted: tuple[str, ...] | None,
    request: Request,
    decision: Decision,
    store: ApprovalStore,
    *,
    github: Any = None,
    now: datetime | None = None,
) -> None:
    """Refuse a decision the gate must not act on.

    Parameters
    ----------
    trusted
        The gate's trusted channels (``None``: every channel, nothing is checked).
    request, decision
        The gate's stored records.
    store
        The approval store (the page's publication record).
    github
        The review repository's API (tests); default :func:`verifier_for`.
    now
        The current time; a timeout counts only once the gate's deadline has passed.

    Raises
    ------
    DecisionUnverified
        A subclass naming the cause; the step must fail.
    """
    if trusted is None:
        return
    # the stored request (the caller's copy may carry the review's links, added since)
    request = store.get_request(request.gate_id) or request
    if decision.outcome == "timed_out":
        _check_timeout(request, decision, now or utc_now())
        return
    bad = untrusted_deciders(decision, trusted)
    if bad:
        names = ", ".join(f"{a.login} ({a.channel})" for a in bad)
        exc: DecisionUnverified = UntrustedChannel(
            f"gate {request.gate_id} trusts only decisions from {', '.join(trusted)}; this "
            f"one came from {names}, so the step did not run.",
            hint="Decide the gate on its GitHub page (a review, /approve or /reject)."
            if "github" in trusted
            else "Decide the gate through a trusted channel.",
        )
        _reply(request, store, exc, github)
        raise exc
    if not any(channel_group(a.channel) == "github" for a in decision.deciders):
        return
    from metaflow_hitl.github.verify import verify_decision

    api = github
    try:
        if api is None:
            api = verifier_for(request)
        verify_decision(request, decision, api, publication=store.get_publication(request.gate_id))
    except DecisionUnverified as failure:
        _reply(request, store, failure, api)
        raise


def _check_timeout(request: Request, decision: Decision, now: datetime) -> None:
    """A timeout counts only as the gate's own timeout: after its deadline, as it says."""
    proceed = request.on_timeout == "approve"
    if (
        decision.decided_by != "timeout"
        or decision.proceed != proceed
        or decision.decided_at < request.expires_at
        or now < request.expires_at
    ):
        raise EvidenceMissing(
            f"gate {request.gate_id} has a timeout decision that is not its timeout: it "
            f"expires at {format_ts(request.expires_at)} (then {request.on_timeout}), the "
            f"record says {decision.summary()} at {format_ts(decision.decided_at)}."
        )


def _reply(request: Request, store: ApprovalStore, failure: HitlError, api: Any) -> None:
    """One reply on the gate's page saying why the step did not run (best effort)."""
    publication = store.get_publication(request.gate_id)
    if publication is None or (request.review or {}).get("backend") != "github":
        return
    try:
        api = api if api is not None else verifier_for(request)
        key = json.dumps(
            {"event": f"verify:{type(failure).__name__}", "gate_id": str(request.gate_id)},
            sort_keys=True,
        )
        tag = f"<!-- {REPLY_MARKER_NAME} {key} -->"
        said = html.escape(failure.message).replace("@", "@\u200b")  # no mentions, no HTML
        text = (
            f"{tag}\n**metaflow-hitl**: the gated step of `{request.gate_id}` did not run. "
            f"**{failure.headline}**: {said}\n"
        )
        api.comment_once(publication.number, text, tag)
    except HitlError:
        return  # GitHub unreachable (or no token): the step's own error says why
