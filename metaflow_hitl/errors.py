"""The one exception tree of metaflow-hitl.

Every error the library raises on purpose is a :class:`HitlError`. Adapters translate
transport errors (filesystem, HTTP, S3) into it; the Metaflow glue re-raises it as a
``MetaflowException`` whose headline starts with ``@hitl``.

::

    HitlError                      anything we raise on purpose
    ├── ConfigError                a decorator option or setting is invalid (before any task runs)
    │   └── GateBelongsToAnotherWorkflow   an Argo gate id reused by a different workflow
    ├── MessageRenderError         the gate message could not be formatted from the artifacts
    ├── GateNotFound               no request recorded under that gate id
    ├── GateRefError               a gate reference (id, RUN/STEP) is malformed
    ├── RecordError                a stored record is unreadable, of an unknown version, or invalid
    ├── StoreError                 the store could not be read or written
    │   └── RunEnded               an Argo gate's run ended or is gone: nothing can resume it
    ├── ReviewConflict             the review repo holds another decision for the gate
    ├── InjectionError             the compiled Argo template lacks the shape gates are added to
    ├── UnsupportedMetaflow        Metaflow lacks an internal API metaflow-hitl relies on
    ├── ResumedWithoutDecision     an Argo gated step started with no decision before expiry
    ├── SettleIncomplete           a decision stands, but publishing or resuming it failed
    ├── DecisionRefused            a decision attempt was refused; nothing was written
    │   ├── NotAllowed             this person may not make this decision (policy)
    │   ├── InvalidInput           approval input fails the gate's input schema
    │   ├── DeadlinePassed         past the deadline, the approving timeout not recorded yet
    │   └── AlreadyDecided         the gate has a decision already (first decision wins)
    │       └── TooLate            the gate expired before this decision arrived
    └── DecisionUnverified         a recorded decision failed the gated step's checks
        ├── UntrustedChannel       it came through a channel the gate does not trust
        ├── EvidenceMissing        its review, comment or merge is not on the gate's page
        ├── DeciderNotEligible     a decider may not decide the gate now
        └── GitHubUnreachable      GitHub could not be asked

Every error also names its *exit status* (:attr:`HitlError.exit_code`), one per family, so a
script can tell "try again later" from "fix your command" without reading text:

====  ================================================================================
code  family
====  ================================================================================
0     success
1     anything else: an internal or unexpected failure, or ``audit`` found a mismatch
2     usage: a bad option, setting or gate reference (:class:`ConfigError`,
      :class:`GateRefError`; click's own usage errors exit 2 too)
3     not found: no such gate (:class:`GateNotFound`)
4     refused: nothing was written (:class:`DecisionRefused` but invalid input;
      :class:`DecisionUnverified` but an unreachable GitHub)
5     invalid input: the approval input fails the gate's schema (:class:`InvalidInput`)
6     store or network: the store, a record or GitHub could not be read or written
      (:class:`StoreError`, :class:`RecordError`, :class:`GitHubUnreachable`)
7     the decision is recorded and stands, its follow-up is not: run ``sync``
      (:class:`SettleIncomplete`)
====  ================================================================================

``metaflow-hitl handle-event`` (what the Action runs) keeps its own two-value contract: 0 when
the event was handled or deliberately ignored, 1 when it could not be recorded.

``tests/unit/test_errors.py`` checks this drawing against the classes: every ``HitlError``
subclass in the package is drawn here, under its real parent, with a headline of its own.

Every message says what happened, the value involved and, where there is one, the next
command to run (:attr:`HitlError.hint`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from metaflow_hitl.records import Decision

__all__ = [
    "AlreadyDecided",
    "ConfigError",
    "DeadlinePassed",
    "DeciderNotEligible",
    "DecisionRefused",
    "DecisionUnverified",
    "EvidenceMissing",
    "GateBelongsToAnotherWorkflow",
    "GateNotFound",
    "GateRefError",
    "GitHubUnreachable",
    "HitlError",
    "InjectionError",
    "InvalidInput",
    "MessageRenderError",
    "NotAllowed",
    "RecordError",
    "ResumedWithoutDecision",
    "ReviewConflict",
    "RunEnded",
    "SettleIncomplete",
    "StoreError",
    "TooLate",
    "UnsupportedMetaflow",
    "UntrustedChannel",
]


class HitlError(Exception):
    """Base class of every error metaflow-hitl raises on purpose.

    Parameters
    ----------
    message
        What happened, naming the value involved.
    hint
        What to do next (often the exact command), or ``None``.

    Attributes
    ----------
    headline
        What a failed step or command shows first; one per class.
    exit_code
        The command-line exit status of the error's family (table in the module docstring).
    """

    headline = "@hitl error"
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n{self.hint}"
        return self.message


class ConfigError(HitlError):
    """A decorator option, setting or CLI argument is invalid."""

    headline = "@hitl: invalid configuration"
    exit_code = 2


class MessageRenderError(HitlError):
    """The gate's message could not be rendered from the step's input artifacts."""

    headline = "@hitl: message could not be rendered"


class GateBelongsToAnotherWorkflow(ConfigError):
    """A gate id (``argo-<workflow name>``) reused by a different workflow."""

    headline = "@hitl: gate belongs to another workflow"


class GateNotFound(HitlError):
    """No request is recorded under the given gate id."""

    headline = "@hitl: no such gate"
    exit_code = 3


class GateRefError(HitlError):
    """A gate reference is malformed (bad id, unsafe path component)."""

    headline = "@hitl: bad gate reference"
    exit_code = 2


class RecordError(HitlError):
    """A stored record cannot be decoded (corrupt, unknown format version, invalid)."""

    headline = "@hitl: unreadable record"
    exit_code = 6


class StoreError(HitlError):
    """The approval store could not be read or written."""

    headline = "@hitl: store error"
    exit_code = 6


class ReviewConflict(HitlError):
    """The review repo holds a different decision for the gate than the one being recorded."""

    headline = "@hitl: review repo disagrees"


class InjectionError(HitlError):
    """The compiled Argo template does not have the shape the gates are added to."""

    headline = "@hitl: cannot add gates to the Argo workflow"


class ResumedWithoutDecision(HitlError):
    """An Argo gated step was started with no recorded decision before the gate expired."""

    headline = "@hitl: resumed without a recorded decision"


class SettleIncomplete(HitlError):
    """The decision is recorded and stands, but publishing or resuming it failed.

    Parameters
    ----------
    decision
        The decision that stands.
    failures
        What failed, one ``(step, error)`` pair each: ``"publish"`` (the review repo was not
        updated) or ``"resume"`` (the paused Argo node was not resumed).
    """

    headline = "@hitl: decision recorded, follow-up incomplete"
    exit_code = 7

    def __init__(
        self,
        message: str,
        *,
        decision: Decision,
        failures: list[tuple[str, HitlError]],
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.decision = decision
        self.failures = list(failures)


class UnsupportedMetaflow(HitlError):
    """The installed Metaflow lacks an internal API metaflow-hitl relies on; nothing was done."""

    headline = "@hitl: unsupported Metaflow version"


class DecisionRefused(HitlError):
    """A decision attempt was refused and nothing was written."""

    headline = "@hitl: decision refused"
    exit_code = 4


class NotAllowed(DecisionRefused):
    """The person may not make this decision on this gate."""

    headline = "@hitl: not allowed to decide"


class InvalidInput(DecisionRefused):
    """Approval input does not satisfy the gate's input schema.

    Parameters
    ----------
    problems
        Every problem found, one line each, so all can be fixed at once.
    """

    headline = "@hitl: invalid approval input"
    exit_code = 5

    def __init__(self, message: str, *, problems: list[str], hint: str | None = None) -> None:
        self.problems = list(problems)
        detail = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{message}\n{detail}" if detail else message, hint=hint)


class AlreadyDecided(DecisionRefused):
    """The gate already has a decision; the first decision wins.

    Parameters
    ----------
    decision
        The decision that won.
    """

    headline = "@hitl: gate already decided"

    def __init__(self, message: str, *, decision: Decision, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.decision = decision


class DeadlinePassed(DecisionRefused):
    """The gate's deadline passed, and its timeout (which approves) is not recorded yet.

    Only the gate's own task records an approving timeout at the deadline; anyone else waits
    for the clock-skew allowance first (:data:`metaflow_hitl.gates.SKEW_ALLOWANCE_SECONDS`),
    so a clock running ahead never approves a gate early. Nothing was written.
    """

    headline = "@hitl: deadline passed, timeout not recorded yet"


class TooLate(AlreadyDecided):
    """The gate expired before this decision arrived; the expiry is the decision."""

    headline = "@hitl: too late, the gate expired"


class DecisionUnverified(HitlError):
    """A recorded decision did not pass the checks the gated step makes before it runs
    (``trusted_channels``): the step fails closed. Each subclass names one cause."""

    headline = "@hitl: decision not verified"
    exit_code = 4


class UntrustedChannel(DecisionUnverified):
    """The decision came through a channel the gate does not trust."""

    headline = "@hitl: decision from an untrusted channel"


class EvidenceMissing(DecisionUnverified):
    """The decider's review, comment or merge is not on the gate's page (deleted, edited,
    someone else's, another intent or input): the record is not backed by GitHub."""

    headline = "@hitl: decision evidence not found on GitHub"


class DeciderNotEligible(DecisionUnverified):
    """The decider may not decide the gate now (lost write access, left the team...)."""

    headline = "@hitl: decider no longer eligible"


class GitHubUnreachable(DecisionUnverified):
    """GitHub could not be asked, so the decision could not be verified."""

    headline = "@hitl: GitHub unreachable, decision not verified"
    exit_code = 6


class RunEnded(StoreError):
    """The gate's run ended (stopped, failed, deleted, or replaced by another run of the same
    name) before its suspend node was resumed: nothing can resume it. ``outcome`` is
    ``run_ended`` or ``run_gone``; ``run_state`` says how (``stopped``, ``deleted``...)."""

    headline = "@hitl: the gate's run ended"

    def __init__(
        self, message: str, *, outcome: str, run_state: str | None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.outcome = outcome
        self.run_state = run_state
