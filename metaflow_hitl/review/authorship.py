"""Who a decision's commit in the review repo is attributed to.

A commit's author is a name and an e-mail; GitHub attributes a commit to the account whose
(verified or ``@users.noreply.github.com``) address it carries
(https://docs.github.com/en/pull-requests/committing-changes-to-your-project/troubleshooting-commits/why-are-my-commits-linked-to-the-wrong-user).
So only a decision whose deciders GitHub authenticated (reviews, comments, merges, closes) is
attributed to the decider's GitHub account. A CLI decision's login is asserted by whoever ran
the command, and an expiry is no one's: their commits carry an address under ``.invalid``
(RFC 2606, never delivered, never any account's) and a name that says the login is asserted.
"""

from __future__ import annotations

import re

from metaflow_hitl.records import Decision
from metaflow_hitl.trust import channel_group

__all__ = ["UNATTRIBUTED_DOMAIN", "commit_author"]

#: The e-mail domain of authors that must not be any account.
UNATTRIBUTED_DOMAIN = "metaflow-hitl.invalid"


def _safe(login: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", login) or "unknown"


def commit_author(decision: Decision) -> tuple[str, str]:
    """``(name, email)`` of the commit that records ``decision``."""
    safe = _safe(decision.decided_by)
    groups = {channel_group(a.channel) for a in decision.deciders} or {
        channel_group(decision.channel)
    }
    if groups == {"github"}:
        return safe, f"{safe}@users.noreply.github.com"
    if decision.outcome == "timed_out":
        return "timeout (metaflow-hitl)", f"timeout@{UNATTRIBUTED_DOMAIN}"
    return f"{safe} (asserted, metaflow-hitl CLI)", f"cli-decision@{UNATTRIBUTED_DOMAIN}"
