"""``@hitl`` as Metaflow registers it: the name, the options and their documentation.

Metaflow imports this module on every ``import metaflow`` -- also in pods whose image has
only Metaflow's own dependencies, running flows that have no gate
(``metaflow/plugins/__init__.py`` resolves ``STEP_DECORATORS_DESC`` eagerly). So it imports
nothing from :mod:`metaflow_hitl`: the behaviour, :class:`metaflow_hitl.plugin.decorator.
HitlDecorator`, is imported when a step is decorated, and a missing package is reported from
``step_init`` -- before any task runs -- with the install command, not as a traceback from
Metaflow's plugin loader.

Only Metaflow imports this module (while ``import metaflow`` initialises its plugins);
``from metaflow import hitl`` is the usual import, and :mod:`.hitl_decorator` keeps the
import path of earlier releases.
"""

from functools import partial
from typing import Any

from metaflow.decorators import StepDecorator, _base_step_decorator

from metaflow_extensions.hitl.plugins.hitl_loader import HitlUnavailable, implementation

__all__ = ["HitlDecorator", "hitl"]


class HitlDecorator(StepDecorator):
    """
    Pause before this step until a person approves it.

    The step's code runs only after approval. Approve or reject with
    ``python flow.py hitl approve|reject RUN/STEP``; the decision is recorded (first decision
    wins) and is readable in the step as ``self.hitl_decision``.

    Parameters
    ----------
    message : str
        What is being approved; a format string over the step's inputs, e.g.
        ``"Accuracy {self.accuracy:.1%}: deploy?"``. On a join step use
        ``{inputs.STEP.NAME}``. A message that cannot be rendered fails the step.
    timeout : str, default "24h"
        How long to wait: ``30s``, ``15m``, ``4h``, ``2d``, ``1h30m``.
    on_timeout : str, default "reject"
        ``"reject"`` fails the step at expiry; ``"approve"`` proceeds.
    on_reject : str, default "fail"
        ``"fail"`` fails the step on rejection; ``"continue"`` runs it anyway, with
        ``self.hitl_decision`` telling it what happened.
    input_schema : dict, optional
        The input an approval must carry: ``{"deploy_target": "str", "notes": "str?"}`` or a
        JSON Schema object. Available in the step as ``self.hitl_input``.
    approvers : List[str], optional
        GitHub logins or ``@org/team`` entries allowed to decide; anyone by default.
    min_approvals : int, default 1
        Distinct approvals needed; one rejection rejects.
    allow_self_approval : bool, default False
        Whether the person who started the run may approve it.
    notifier : str or List[str], optional
        Where to announce the gate and its decision: ``"apprise"`` (URLs from
        ``METAFLOW_HITL_APPRISE_URLS``), an Apprise URL or a list of them. A failed
        notification is retried and reported, never fails the gate.
    review : str, optional
        Where the gate is reviewed: ``"github:org/repo"`` (a PR, or ``?mode=issue``),
        ``"git:URL"`` or ``"none"``; default ``METAFLOW_HITL_REVIEW``, else a local git repo
        beside the store.
    poll_interval : str, optional
        How often a local run checks for a decision (default ``0.1s``).
    remind_every : str, optional
        Remind while the gate is pending: every interval (``4h``) the approvers get a
        notification and a comment on the gate's pull request or issue. Sent by the waiting
        task on local runs and by the scheduled ``metaflow-hitl remind``; each reminder once.
        Must be shorter than ``timeout``, at most 100 reminders per gate.
    escalate_to : List[str], optional
        GitHub logins or ``@org/team`` entries mentioned from the third reminder on (after
        the second). Needs ``remind_every``; they must be allowed to decide (listed in
        ``approvers`` when that names only logins).
    trusted_channels : List[str], optional
        Only decisions from these channels count: ``"cli"`` (``hitl approve``/``reject``) and
        ``"github"`` (reviews, comments, merges, closes on the gate's page); timeouts always
        count. Default: every channel (within ``METAFLOW_HITL_TRUSTED_CHANNELS``, which this
        can narrow, never widen). When set, the step re-verifies a GitHub decision against
        GitHub before it runs and fails closed if GitHub does not back it.
    """

    name = "hitl"
    defaults = {  # noqa: RUF012 - Metaflow's Decorator declares it as an instance attribute
        "message": None,
        "timeout": "24h",
        "on_timeout": "reject",
        "on_reject": "fail",
        "input_schema": None,
        "approvers": None,
        "min_approvals": 1,
        "allow_self_approval": False,
        "notifier": None,
        "review": None,
        "poll_interval": None,
        "remind_every": None,
        "escalate_to": None,
        "trusted_channels": None,
    }

    def __new__(cls, *args: Any, **kwargs: Any) -> "HitlDecorator":
        if cls is not HitlDecorator:  # the implementation, or the stand-in below
            return super().__new__(cls)
        try:
            behaviour = implementation("plugin.decorator", "this flow has a @hitl gate")
        except HitlUnavailable as why:
            stand_in = super().__new__(_Unavailable)
            stand_in.why = why
            return stand_in
        # An instance of a subclass: Python then runs the implementation's __init__ once.
        return super().__new__(behaviour.HitlDecorator)


class _Unavailable(HitlDecorator):
    """``@hitl`` where metaflow-hitl cannot be imported: fails ``step_init``, saying why."""

    why: HitlUnavailable

    def step_init(self, *args: Any, **kwargs: Any) -> None:
        raise self.why


#: The decorator function, same as ``metaflow.hitl``.
hitl = partial(_base_step_decorator, HitlDecorator)
