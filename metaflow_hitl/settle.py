"""After a decision: publish it and resume its run, with one failure policy for every front end.

A decision is recorded in the store first (:func:`metaflow_hitl.gates.decide`,
:func:`~metaflow_hitl.gates.expire_gate`); what follows is bookkeeping that can fail on its own:
committing the decision to the review repo (*publish*) and resuming the paused Argo node
(*resume*). :func:`settle` is the only code that runs those two steps, and its policy is the
same wherever a decision is made (the CLI, the GitHub Action, the waiting task, ``hitl sync``):

* **the decision stands** — nothing here can undo or change it;
* **both steps are attempted** — a failed publish never keeps a run paused, a failed resume
  never keeps the review repo out of date;
* **what failed is reported with the command that repairs it** — ``metaflow-hitl sync GATE``,
  which runs :func:`settle` again (both steps are idempotent);
* **a run that ended is an outcome, not a failure** — when the resumer reports
  :class:`~metaflow_hitl.errors.RunEnded` (the Argo run was stopped, failed, deleted or
  replaced before its gate was resumed), nothing can ever resume it and no repair exists: the
  decision is still recorded, the gate's page is told (``announce``: one reply saying the run
  ended and nothing was resumed) and :attr:`Settled.run_ended` holds it, so every front end
  reports the same line (:meth:`Settled.notice`) and none exits non-zero for it. Only a failed
  announcement is a failure (``sync GATE`` posts it again).

Each front end then chooses only *how* to report an incomplete settle: the CLI and the Action
exit non-zero (:meth:`Settled.raise_if_incomplete`), a waiting task prints a warning and goes
on to follow the decision (a review repo that is down must not fail a step the decision let
through).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from metaflow_hitl.errors import HitlError, RunEnded, SettleIncomplete
from metaflow_hitl.ports import Resumer
from metaflow_hitl.records import Decision, Request
from metaflow_hitl.render.phrases import run_ended_notice

__all__ = ["Announce", "Publish", "Settled", "repair_command", "settle"]

#: Records a decision in the gate's review repo and returns what it wrote (``{}`` when the
#: gate has no review repo). Idempotent.
Publish = Callable[[Request, Decision], Mapping[str, str | None]]
#: Tells the gate's page that its run ended before it was resumed (one reply, idempotent);
#: returns what it posted (``{}``: the gate has no page).
Announce = Callable[[Request, Decision, RunEnded], Mapping[str, str | None]]


def repair_command(request: Request) -> str:
    """The command that finishes an incomplete settle of ``request``'s gate."""
    where = f" --store {shlex.quote(request.store)}" if request.store else ""
    return f"metaflow-hitl{where} sync {shlex.quote(str(request.gate_id))}"


@dataclass(frozen=True)
class Settled:
    """What :func:`settle` did.

    Attributes
    ----------
    request, decision
        The gate and its decision (which stands whatever else happened).
    review
        What publishing wrote (``{}``: no review repo, or publishing was not asked for or
        failed).
    resumed
        Whether this call resumed the gate's paused run (False: nothing to resume, resumed
        already, or the resume failed).
    failures
        ``(step, error)`` for each step that failed: ``"publish"``, ``"resume"`` or
        ``"announce"`` (the page was not told that the run ended).
    run_ended
        The resumer's :class:`~metaflow_hitl.errors.RunEnded` when the gate's run ended before
        it was resumed (not a failure: nothing can resume it), else None.
    """

    request: Request
    decision: Decision
    review: Mapping[str, str | None] = field(default_factory=dict)
    resumed: bool = False
    failures: tuple[tuple[str, HitlError], ...] = ()
    run_ended: RunEnded | None = None

    def notice(self) -> str | None:
        """The one line every front end prints when the run ended (None otherwise)."""
        if self.run_ended is None:
            return None
        return run_ended_notice(self.run_ended.message, self.decision.summary())

    @property
    def complete(self) -> bool:
        """Whether every step asked for succeeded."""
        return not self.failures

    def problems(self) -> list[str]:
        """One sentence per failed step, for a warning or an error message."""
        what = {
            "publish": "the review repo was not updated",
            "resume": "its paused run was not resumed",
            "announce": "its page was not told that the run ended",
        }
        return [f"{what[step]}: {error.message}" for step, error in self.failures]

    def error(self) -> SettleIncomplete:
        """The error an incomplete settle is reported with (call only when incomplete)."""
        gate = self.request.gate_id
        return SettleIncomplete(
            f"the decision on gate {gate} is recorded and stands ({self.decision.summary()}), "
            f"but " + "; and ".join(self.problems()),
            decision=self.decision,
            failures=list(self.failures),
            hint=f"Once the cause is fixed, finish it with: {repair_command(self.request)}",
        )

    def raise_if_incomplete(self) -> None:
        """Raise :class:`~metaflow_hitl.errors.SettleIncomplete` if a step failed."""
        if self.failures:
            raise self.error()


def settle(
    request: Request,
    decision: Decision,
    *,
    publish: Publish | None,
    resumer: Resumer | None,
    announce: Announce | None = None,
) -> Settled:
    """Publish ``decision`` to the gate's review repo and resume its run; never raise for either.

    Parameters
    ----------
    request
        The decided gate's request.
    decision
        Its recorded decision.
    publish
        Records the decision in the review repo (``None``: the caller has nothing to publish
        to, e.g. a gate without a review repo).
    resumer
        Resumes the paused run (``None``: nothing to resume, e.g. a local run whose waiting task
        reads the store itself).
    announce
        Tells the gate's page that the run ended, when the resumer says so (``None``: no
        page to tell).

    Returns
    -------
    Settled
        What succeeded and what failed; a :class:`~metaflow_hitl.errors.HitlError` from either
        step is collected, not raised (see the module docstring for the policy).
    """
    failures: list[tuple[str, HitlError]] = []
    review: Mapping[str, str | None] = {}
    resumed = False
    run_ended: RunEnded | None = None
    if publish is not None:
        try:
            review = dict(publish(request, decision))
        except HitlError as exc:
            failures.append(("publish", exc))
    # A gate closed because its run ended (Decision.run_ended) has nothing left to resume.
    if resumer is not None and decision.run_ended is None:
        try:
            resumed = resumer.resume(request, decision)
        except RunEnded as exc:  # an outcome: nothing can resume it, nothing to repair
            run_ended = exc
        except HitlError as exc:
            failures.append(("resume", exc))
    if run_ended is not None and announce is not None:
        try:
            announce(request, decision, run_ended)
        except HitlError as exc:
            failures.append(("announce", exc))
    return Settled(
        request=request,
        decision=decision,
        review=review,
        resumed=resumed,
        failures=tuple(failures),
        run_ended=run_ended,
    )
