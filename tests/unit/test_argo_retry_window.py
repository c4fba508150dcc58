"""The notify task's retries can all happen: its backoff window holds the attempts it advertises.

Argo's rule, ``workflow/controller/operator.go`` ``processNodeRetries`` (v3.5.0 l.919-1016,
v3.7.18 l.972-1089, v4.1.2 l.1030-1147):

* with ``backoff.maxDuration``, ``maxDurationDeadline = firstChildNode.StartedAt + maxDuration``;
  past it, or if the next wait would end past it ("Backoff would exceed max duration limit"),
  the node fails without another attempt; and ``opts.executionDeadline = maxDurationDeadline``
  caps every later pod's deadline (``executeTemplateOpts.executionDeadline``: "necessary for
  pods to inherit backoff.maxDuration", v4.1.2 l.2178);
* the wait before retry ``n`` (``n`` = attempts so far) is ``duration * factor**(n-1)`` after
  the last attempt's ``FinishedAt``; ``len(childNodeIds) > limit`` ends it ("No more retries left").

:func:`argo_attempts` replays that rule over attempts that each run to their deadline.
"""

from __future__ import annotations

import copy

from metaflow_hitl.argo.inject import (
    NOTIFY_DEADLINE_SECONDS,
    NOTIFY_RETRY,
    notify_budget_seconds,
)


def _seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return int(text[:-1]) * units[text[-1]]


def argo_attempts(retry: dict, deadline: int, *, pending: int = 30) -> int:
    """How many attempts Argo starts when every attempt is killed at its deadline (each pod
    spends ``pending`` seconds Pending/pulling first, counted by its ``activeDeadlineSeconds``)."""
    backoff = retry.get("backoff") or {}
    limit = int(retry["limit"])
    first_start = 0.0
    max_deadline = (
        first_start + _seconds(backoff["maxDuration"]) if backoff.get("maxDuration") else None
    )
    start, attempts = first_start, 0
    while True:
        attempts += 1
        pod_deadline = start + deadline
        if max_deadline is not None:  # opts.executionDeadline
            pod_deadline = min(pod_deadline, max_deadline)
        finished = max(pod_deadline, start + pending)
        if max_deadline is not None and finished > max_deadline:
            return attempts  # "Max duration limit exceeded"
        wait = _seconds(backoff["duration"]) * int(backoff.get("factor") or 1) ** (attempts - 1)
        if max_deadline is not None and finished + wait > max_deadline:
            return attempts  # "Backoff would exceed max duration limit"
        if attempts > limit:
            return attempts  # "No more retries left"
        start = finished + wait


def test_every_advertised_retry_of_the_notify_task_can_run():
    assert argo_attempts(NOTIFY_RETRY, NOTIFY_DEADLINE_SECONDS) == NOTIFY_RETRY["limit"] + 1


def test_the_old_five_minute_window_allowed_no_retry_after_a_deadline():
    """What shipped before: ``maxDuration: 5m`` beside a 600 s deadline and ``limit: 3``."""
    old = copy.deepcopy(NOTIFY_RETRY)
    old["backoff"]["maxDuration"] = "5m"
    assert argo_attempts(old, NOTIFY_DEADLINE_SECONDS) == 1


def test_the_documented_budget_is_the_worst_case():
    """docs/argo.md states the notify budget: 4 attempts of 600 s and 10+20+40 s of backoff."""
    assert notify_budget_seconds() == 4 * 600 + 10 + 20 + 40
    assert "maxDuration" not in NOTIFY_RETRY["backoff"]
