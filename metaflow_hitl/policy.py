"""Who may decide a gate, and when the votes add up to a decision.

Pure functions over records — no clients in here. Adapters gather the facts (a GitHub
permission level, team memberships) and pass them in; the rules live here once for every
channel:

* bots (``*[bot]`` logins) never decide;
* on GitHub, the decider needs ``write`` (or higher) on the review repo — the adapter passes
  the level from the collaborator-permission API, never ``author_association``;
* when a gate names ``approvers`` (logins or ``@org/team``), only they may decide; the person
  who started the run may always *reject* (stop) it;
* unless ``allow_self_approval``, the person who started the run cannot approve it;
* the decision is recomputed from the whole time-ordered history of votes, like Prow's
  approve plugin: the latest intent of each person counts, ``min_approvals`` distinct
  approvals approve, and one rejection rejects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from metaflow_hitl.records import Intent, Request, Vote
from metaflow_hitl.run_starter import has_human_starter

__all__ = [
    "PERMISSION_LEVELS",
    "Refusal",
    "RefusalCode",
    "Tally",
    "check_decider",
    "has_permission",
    "is_bot",
    "normalize_login",
    "tally",
]

#: GitHub repository permission levels, lowest first.
PERMISSION_LEVELS = ("none", "read", "triage", "write", "maintain", "admin")

#: The rule behind a :class:`Refusal`.
RefusalCode = Literal[
    "no_identity", "bot", "permission", "self_approval", "team_unchecked", "not_an_approver"
]


@dataclass(frozen=True)
class Refusal:
    """Why a decision attempt is refused, and what would work instead.

    Attributes
    ----------
    code
        Which rule refused, for programs (the reason is for people and may be reworded).
    reason, hint
        What was refused and why; what would work instead.
    """

    code: RefusalCode
    reason: str
    hint: str


def normalize_login(login: str) -> str:
    """Lower-case a login or ``@org/team`` entry and drop a leading ``@``."""
    return login.strip().lstrip("@").lower()


def is_bot(login: str) -> bool:
    """True for GitHub App and bot accounts (``dependabot[bot]``)."""
    return login.strip().lower().endswith("[bot]")


def has_permission(level: str | None, required: str = "write") -> bool:
    """Compare GitHub permission levels; unknown or missing levels fail closed."""
    if level not in PERMISSION_LEVELS:
        return False
    return PERMISSION_LEVELS.index(level) >= PERMISSION_LEVELS.index(required)


def _team_entries(request: Request) -> list[str]:
    return [normalize_login(a) for a in request.approvers if "/" in a]


def _login_entries(request: Request) -> list[str]:
    return [normalize_login(a) for a in request.approvers if "/" not in a]


def check_decider(
    request: Request,
    login: str,
    intent: Intent,
    *,
    permission: str | None = None,
    teams: Iterable[str] | None = None,
    require_permission: bool = False,
) -> Refusal | None:
    """Decide whether ``login`` may cast ``intent`` on the gate of ``request``.

    Parameters
    ----------
    request
        The stored request (never text from a pull request).
    login
        Who is acting.
    intent
        ``approve``, ``reject`` or ``withdraw``.
    permission
        Their permission on the review repo, as the GitHub API reports it; ``None`` when the
        channel has no such notion (the local CLI).
    teams
        The ``org/team`` slugs they belong to among those the gate names, as checked with the
        API; ``None`` when membership cannot be checked.
    require_permission
        Whether a ``write`` permission is required (true for every GitHub channel).

    Returns
    -------
    Refusal or None
        ``None`` when allowed.
    """
    who = normalize_login(login)
    starter = normalize_login(request.started_by)
    # the starter's GitHub login too, from the identity map (recorded in the request)
    starters = {starter, normalize_login(str((request.starter or {}).get("github") or ""))}
    starters.discard("")
    if not has_human_starter(request.starter):
        starters = set()  # a scheduled or event-triggered run: no human starter to refuse
    if not who:
        return Refusal("no_identity", "no identity was given", "Pass --as LOGIN.")
    if is_bot(login):
        return Refusal(
            "bot", f"{login} is a bot; bots cannot decide gates", "A person must decide."
        )
    if require_permission and not has_permission(permission):
        return Refusal(
            "permission",
            f"{login} has {_permission_words(permission)} on the review repository; "
            "deciding needs write",
            "Ask a repository admin to grant write access, or ask someone who has it.",
        )
    if intent == "withdraw":
        return None
    if intent == "approve" and not request.allow_self_approval and who in starters:
        return Refusal(
            "self_approval",
            f"{login} started this run and cannot approve it (allow_self_approval=False)",
            "Another person decides, as themselves: from their own shell, `python flow.py hitl "
            "approve RUN/STEP` (their login comes from $USER, or pass --as THEIR_LOGIN), or "
            "on the review page. To let the starter approve (local development), set "
            "@hitl(allow_self_approval=True).",
        )
    if not request.approvers or (intent == "reject" and who in starters):
        return None
    if who in _login_entries(request):
        return None
    wanted = set(_team_entries(request))
    if wanted and teams is not None and wanted & {normalize_login(t) for t in teams}:
        return None
    listed = ", ".join(request.approvers)
    if wanted and teams is None:
        return Refusal(
            "team_unchecked",
            f"{login} is not listed among the approvers ({listed}) and team membership "
            "cannot be checked on this channel",
            "Decide through the pull request or issue on GitHub, where team membership is "
            "checked, or ask one of the listed logins.",
        )
    return Refusal(
        "not_an_approver",
        f"{login} is not one of the approvers of this gate ({listed})",
        f"Ask one of: {listed}.",
    )


@dataclass(frozen=True)
class Tally:
    """The standing of a gate after replaying its votes.

    Attributes
    ----------
    approvals
        The latest approving vote of each distinct person still approving, oldest first.
    rejection
        The rejection that settled the gate, if one did.
    needed
        ``min_approvals`` of the gate.
    """

    approvals: tuple[Vote, ...]
    rejection: Vote | None
    needed: int

    @property
    def outcome(self) -> str | None:
        """``"rejected"``, ``"approved"`` or ``None`` while still pending."""
        if self.rejection is not None:
            return "rejected"
        if len(self.approvals) >= self.needed:
            return "approved"
        return None

    @property
    def missing(self) -> int:
        """How many more distinct approvals are needed."""
        return max(0, self.needed - len(self.approvals))


def tally(request: Request, votes: Iterable[Vote]) -> Tally:
    """Replay votes in time order until they settle the gate.

    The latest intent of each person counts (an approval can be withdrawn or turned into a
    rejection). Replay stops at the first vote after which ``min_approvals`` distinct people
    approve, or someone rejects: that is when the gate was decided, whatever came later.
    Votes must already be eligible (checked with :func:`check_decider` when cast, or
    filtered by the caller when replaying GitHub history).
    """
    latest: dict[str, Vote] = {}
    for vote in sorted(votes, key=lambda v: (v.actor.at, v.nonce)):
        latest[normalize_login(vote.actor.login)] = vote
        if vote.intent == "reject":
            break
        if sum(v.intent == "approve" for v in latest.values()) >= request.min_approvals:
            break
    standing = sorted(latest.values(), key=lambda v: (v.actor.at, v.nonce))
    approvals = tuple(v for v in standing if v.intent == "approve")
    rejection = next((v for v in standing if v.intent == "reject"), None)
    return Tally(approvals=approvals, rejection=rejection, needed=request.min_approvals)


def _permission_words(permission: str | None) -> str:
    """``"read permission"``; ``"no permission"`` for none (GitHub's ``"none"`` included)."""
    level = (permission or "").strip()
    return "no permission" if level in ("", "none") else f"{level} permission"
