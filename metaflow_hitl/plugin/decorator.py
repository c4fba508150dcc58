"""The ``@hitl`` step decorator: Metaflow glue over :mod:`metaflow_hitl.gates`.

Validation happens in ``step_init`` (before any task runs, also for ``hitl ...`` commands and
``argo-workflows create``); the gate opens and waits in ``task_pre_step``, before the step's
code, so a rejected gate never runs it; a step on remote compute waits before it is launched
(:mod:`metaflow_hitl.plugin.runtime_wait`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, Literal, NamedTuple

from metaflow.exception import MetaflowException

from metaflow_extensions.hitl.plugins.hitl_step import HitlDecorator as DeclaredHitl
from metaflow_hitl.content import Content, reuse_origin_gate
from metaflow_hitl.errors import HitlError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.gates import open_gate, wait_for_decision
from metaflow_hitl.identity_map import parse_identity_map, starter_record
from metaflow_hitl.message import render_message
from metaflow_hitl.plugin.artifacts import ArtifactView, InputsView
from metaflow_hitl.plugin.content_digest import content_of
from metaflow_hitl.plugin.metaflow_internals import inside_foreach, origin_run_id
from metaflow_hitl.plugin.setup_checks import (
    approver_command,
    check_review_setup,
    flow_command,
    unreachable_store_warning,
)
from metaflow_hitl.plugin.trust_check import enforce_trusted_channels
from metaflow_hitl.polling import DEFAULT_SCHEDULE, PollSchedule
from metaflow_hitl.ports import ApprovalStore
from metaflow_hitl.records import Decision, Request
from metaflow_hitl.render.waiting import (
    print_decided,
    print_rejoined,
    print_unsettled,
    print_waiting,
    script_path,
)
from metaflow_hitl.review.config import parse_review
from metaflow_hitl.spec import GateSpec
from metaflow_hitl.stores import STORE_DIRNAME, store_for_datastore_root
from metaflow_hitl.timestamps import utc_now

__all__ = ["HitlDecorator", "HitlException", "HitlRejected"]

#: Default reads of the store while a task waits: fast, then backing off (``poll_interval=``
#: replaces it with a fixed interval).
LOCAL_POLL_INTERVAL = DEFAULT_SCHEDULE
#: Artifacts larger than this (serialized) are listed in the approval file without a value.
ARTIFACT_PREVIEW_BYTES = 64 * 1024


class OpenedGate(NamedTuple):
    """What :meth:`HitlDecorator.open_request` did."""

    request: Request
    #: Whether this call created the request (only then is the gate announced).
    created: bool
    #: The review's links; ``{}`` once the gate is decided.
    refs: dict[str, str | None]
    #: The decision found when opening, if the gate was decided already.
    decision: Decision | None


class HitlException(MetaflowException):
    """A ``@hitl`` error as Metaflow shows it: ``headline`` names what failed."""

    headline = "@hitl"

    def __init__(self, msg: str = "", headline: str | None = None) -> None:
        super().__init__(msg)
        if headline:
            self.headline = headline

    @classmethod
    def from_error(cls, error: HitlError, prefix: str = "") -> HitlException:
        return cls(f"{prefix}{error}", headline=error.headline)


class HitlRejected(HitlException):
    """The gate was rejected (or timed out with ``on_timeout="reject"``)."""


class HitlDecorator(DeclaredHitl):
    """The behaviour of ``@hitl``; its name, options and documentation are declared in
    :class:`metaflow_extensions.hitl.plugins.hitl_step.HitlDecorator`, which Metaflow
    registers and which creates this class's instances when a step uses the gate.
    """

    # -- validation, in every process, before any task runs --------------------------------
    def step_init(
        self,
        flow: Any,
        graph: Any,
        step_name: str,
        decorators: list[Any],
        environment: Any,
        flow_datastore: Any,
        logger: Any,
    ) -> None:
        where = f"@hitl on step {step_name!r}: "
        try:
            self.spec = GateSpec.from_options(
                **self.attributes, deployment_trusted_channels=_configured("HITL_TRUSTED_CHANNELS")
            )
            from metaflow_hitl.durations import seconds_setting
            from metaflow_hitl.liveness import BEAT_SECONDS

            seconds_setting("METAFLOW_HITL_HEARTBEAT_SECONDS", BEAT_SECONDS)  # read at the wait
        except HitlError as exc:
            raise HitlException.from_error(exc, where) from None
        names = {d.name for d in decorators}
        if "catch" in names:
            raise HitlException(
                where + "cannot be combined with @catch: @catch would swallow a rejection and "
                'run the step anyway. Use @hitl(on_reject="continue") and branch on '
                "self.hitl_decision instead.",
                headline="@hitl: unsupported combination",
            )
        if "parallel" in names:
            raise HitlException(
                where + "cannot gate a @parallel step; gate the step before it.",
                headline="@hitl: unsupported combination",
            )
        if inside_foreach(graph, step_name):
            raise HitlException(
                where + "cannot gate a step inside a foreach (one gate per split is not "
                "supported). Gate the step before the foreach, or the join after it.",
                headline="@hitl: unsupported combination",
            )
        for deco in decorators:
            if deco.name == "timeout":
                limit = _timeout_seconds(deco.attributes)
                # On Argo the wait is a suspend node with no pod: @timeout bounds the step only.
                argo = _deploying_to_argo() or on_argo()
                if limit and limit < self.spec.timeout_seconds and not argo:
                    raise HitlException(
                        where + f"@timeout allows the task {limit:g}s but the gate waits up "
                        f"to {self.spec.timeout_seconds:g}s; the task would be killed while "
                        "waiting. Raise @timeout or lower the gate's timeout.",
                        headline="@hitl: unsupported combination",
                    )
        self._datastore_type = flow_datastore.TYPE
        self._datastore_root = flow_datastore.datastore_root
        deploying = _deploying_to_argo()
        if deploying:
            from metaflow_hitl.plugin.argo_compile import install_compile_hook

            install_compile_hook()
        try:
            # Checked here (URLs, apprise installed) so a bad setting fails before any task;
            # on Argo the pods check it (their secrets hold the URLs, not the deploying machine).
            # An approver's `hitl list/approve` needs none of the flow's notifier or token.
            approver = approver_command()
            self._notifier = None if deploying or approver else _notifier(self.spec.notifier)
            self._identity_map = parse_identity_map(_configured("HITL_IDENTITY_MAP"))
            self._review = parse_review(
                self.spec.review or _configured_review(),
                local_store=_local_store(flow_datastore),
            )
            if not (deploying or approver):
                check_review_setup(self._review)
                _warn_unreachable_store(self._review, flow_datastore, step_name)
        except HitlError as exc:
            raise HitlException.from_error(exc, where) from None

    def add_to_package(self) -> Iterator[tuple[str, str]]:
        """Ship this package in the flow's code package, so pods run the deployer's version.

        The package lands beside the flow file (on ``sys.path`` when the step runs); its
        dependencies (``jsonschema``, ``jinja2``, ``PyGithub`` for GitHub reviews) must be in
        the pods' image — see the README's Argo section.
        """
        yield from package_files()

    def runtime_step_cli(
        self, cli_args: Any, retry_count: int, max_user_code_retries: int, ubf_context: Any
    ) -> None:
        """On remote compute (``@kubernetes``, ``@batch``) wait before launching, not in it."""
        from metaflow_hitl.plugin.runtime_wait import wait_before_remote_launch

        wait_before_remote_launch(cli_args)

    # -- the gate, in the task, before the step's code -----------------------------------
    def task_pre_step(
        self,
        step_name: str,
        task_datastore: Any,
        metadata: Any,
        run_id: str,
        task_id: str,
        flow: Any,
        graph: Any,
        retry_count: int,
        max_user_code_retries: int,
        ubf_context: Any,
        inputs: Any,
    ) -> None:
        where = f"@hitl on step {step_name!r}: "
        try:
            store = self._store()
            if on_argo():
                request, decision = self._after_suspend(store, flow, step_name, run_id, retry_count)
            else:
                request, decision = self._run_gate(
                    store, step_name, run_id, task_id, flow, graph, inputs, retry_count
                )
            enforce_trusted_channels(self.spec.trusted_channels, request, decision, store)
        except HitlError as exc:
            raise HitlException.from_error(exc, where) from None
        flow.hitl_request = request.to_dict()
        flow.hitl_decision = decision.to_dict()
        flow.hitl_input = dict(decision.input) if decision.proceed else {}
        if not decision.proceed and self.spec.on_reject == "fail":
            raise _rejection(decision, step_name, run_id)

    def _store(self) -> ApprovalStore:
        if self._datastore_type not in ("local", "s3"):
            raise HitlException(
                f"this release keeps gates in the local or S3 datastore; this run uses the "
                f"{self._datastore_type!r} datastore.",
                headline="@hitl: datastore not supported",
            )
        return store_for_datastore_root(self._datastore_root)

    def _after_suspend(
        self, store: ApprovalStore, flow: Any, step_name: str, run_id: str, retry_count: int
    ) -> tuple[Request, Decision]:
        """On Argo: the suspend node ended; follow the recorded decision, nothing else."""
        from metaflow_hitl.argo.after_suspend import decision_after_resume, recorded_request
        from metaflow_hitl.plugin.argo_notify import check_same_workflow

        gate_id = GateId(flow.name, str(run_id), step_name)
        request = recorded_request(store, gate_id)
        check_same_workflow(request, f"step {step_name!r}")  # before anything is recorded
        decision, expired = decision_after_resume(
            store,
            request,
            approve_hint=f"`python {script_path(sys.argv[0])} --datastore={self._datastore_type} "
            f"hitl approve {gate_id.short}`",
        )
        if expired:  # this task recorded the expiry: publish it (nothing to resume)
            _settle_here(store, request, decision)
        if retry_count == 0 and self._notifier is not None:
            self._notifier.gate_decided(request, decision)
        print_decided(decision)
        return request, decision

    def open_request(
        self,
        store: ApprovalStore,
        gate_id: GateId,
        *,
        flow: Any,
        graph: Any,
        inputs: Any,
        runtime: Literal["local", "argo-workflows"],
        started_by: str,
        origin: dict[str, str | None],
        message: str | None = None,
        content: Content | None = None,
        links: dict[str, str] | None = None,
        starter: dict[str, str | None] | None = None,
    ) -> OpenedGate:
        """Record the gate's request unless it exists, open its review, announce it.

        Idempotent: a retry finds the request, re-opens a review a crash left unopened, and
        notifies nobody again.
        """
        from metaflow_hitl.review.publish import open_review

        step_name = gate_id.step
        request = store.get_request(gate_id)
        created = False
        if request is None:
            request = self.spec.request_for(
                gate_id,
                message=message
                if message is not None
                else self._render(flow, graph, step_name, inputs),
                started_by=started_by,
                runtime=runtime,
                now=utc_now(),
                store=store.location,
                review=self._review,
                origin=origin,
                links=links,
                content=None if content is None else content.to_dict(),
                starter=starter,
            )
            request, created = open_gate(store, request)
        decision = store.get_decision(gate_id)
        if decision is not None:
            return OpenedGate(request, created, {}, decision)
        try:
            refs = open_review(
                request, self._approval_file(request, graph, step_name, inputs), store=store
            )
        except HitlError as exc:  # the task fails; the gate says why to whoever looks at it
            import socket

            from metaflow_hitl.liveness import record_stop

            record_stop(
                store,
                request,
                host=socket.gethostname(),
                pid=os.getpid(),
                now=utc_now(),
                why=f"its review page could not be opened: {exc.message}",
            )
            raise
        if created and self._notifier is not None:  # never fails the gate; reports failures
            self._notifier.gate_opened(replace(request, review={**request.review, **refs}))
        return OpenedGate(request, created, refs, None)

    def _run_gate(
        self,
        store: ApprovalStore,
        step_name: str,
        run_id: str,
        task_id: str,
        flow: Any,
        graph: Any,
        inputs: Any,
        retry_count: int,
        *,
        origin_run: str | None = None,
        started_by: str | None = None,
    ) -> tuple[Request, Decision]:
        """Open (or rejoin) the gate of a local run and wait for its decision.

        ``origin_run`` (the resumed run) and ``started_by`` default to the task's (``current``); the
        launcher of a remote step (:mod:`metaflow_hitl.plugin.runtime_wait`) passes them.
        """
        from metaflow import current

        message = self._render(flow, graph, step_name, inputs)
        join = graph[step_name].type == "join"
        content = content_of(inputs, join=join, flow_file=sys.argv[0], message=message)
        reuse = reuse_origin_gate(  # only for the same content: see metaflow_hitl.content
            store,
            GateId(flow.name, str(run_id), step_name),
            origin_run or origin_run_id(current),
            content,
        )
        gate_id = reuse.gate_id
        request, created, refs, decided = self.open_request(
            store,
            gate_id,
            flow=flow,
            graph=graph,
            inputs=inputs,
            runtime="local",
            started_by=started_by or getattr(current, "username", None) or "unknown",
            starter=starter_record(
                started_by or getattr(current, "username", None), self._identity_map
            ),
            origin={
                "task": f"{flow.name}/{run_id}/{step_name}/{task_id}",
                "flow_file": os.path.abspath(sys.argv[0]),
                "cwd": os.getcwd(),
                **reuse.origin,
            },
            message=message,
            content=content,
            links=reuse.links,
        )
        if created:  # even if a fast decider already decided it: say what was asked
            print_waiting(request, flow_file=sys.argv[0], review=refs)
        elif decided is None:
            print_rejoined(request, run_id=run_id, retry_count=retry_count)
        interval: float | PollSchedule = self.spec.poll_interval or LOCAL_POLL_INTERVAL
        if decided is None:
            import socket

            from metaflow_hitl.durations import seconds_setting
            from metaflow_hitl.liveness import BEAT_SECONDS, chain, heartbeat, lease_for
            from metaflow_hitl.reminders import reminders_while_waiting

            beat = seconds_setting("METAFLOW_HITL_HEARTBEAT_SECONDS", BEAT_SECONDS)
            from metaflow_hitl.review.config import backend_for_request

            decided = wait_for_decision(
                store,
                gate_id,
                poll_interval=interval,
                on_poll=chain(
                    heartbeat(  # so `list` can tell a killed run's gate from a waiting one
                        store,
                        request,
                        host=socket.gethostname(),
                        pid=os.getpid(),
                        lease_seconds=lease_for(interval, beat),
                        beat=beat,
                        echo=print,
                    ),
                    reminders_while_waiting(  # remind_every: this task sends reminders
                        store,
                        request,
                        notifier=self._notifier,
                        review_for=backend_for_request,
                        echo=print,
                    ),
                ),
            )
            if decided.outcome == "timed_out":  # this task recorded the expiry: publish it
                _settle_here(store, request, decided)
            announce = True
        else:  # decided already: announce it only if this task opened the gate (a fast decider)
            announce = created
        linked = replace(request, review={**request.review, **refs})  # with the PR/issue link
        if announce and self._notifier is not None:
            self._notifier.gate_decided(linked, decided)
        print_decided(decided)
        return linked, decided

    def _approval_file(self, request: Any, graph: Any, step_name: str, inputs: Any) -> str:
        from metaflow_hitl.render.documents import render_approval_file, summarize_artifacts

        values: dict[str, Any] = {}
        datastores = list(inputs or [])
        join = graph[step_name].type == "join"
        for ds in datastores:
            for name, value in ds.to_dict(max_value_size=ARTIFACT_PREVIEW_BYTES).items():
                values[f"{ds.step_name}.{name}" if join else name] = value
        return render_approval_file(
            request,
            artifacts=summarize_artifacts(values),
            flow_file_hint=script_path(sys.argv[0]),
        )

    def _render(self, flow: Any, graph: Any, step_name: str, inputs: Any) -> str:
        node = graph[step_name]
        datastores = list(inputs or [])
        where = f"the inputs of step {step_name!r}"
        if node.type == "join":
            self_view = ArtifactView(None, flow, where)
        else:
            self_view = ArtifactView(datastores[0] if datastores else None, flow, where)
        return render_message(
            self.spec.message,
            step=step_name,
            self=self_view,
            inputs=InputsView(datastores, flow),
        )


def package_files() -> Iterator[tuple[str, str]]:
    """``(path, arcname)`` of every file of the ``metaflow_hitl`` package (templates too)."""
    import metaflow_hitl

    root = os.path.dirname(os.path.realpath(metaflow_hitl.__file__))
    base = os.path.dirname(root)
    templates = os.path.join(root, "templates")
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(folder, name)
            if folder.startswith(templates):
                arcname = os.path.join("metaflow_hitl", os.path.relpath(path, root))
            else:
                arcname = os.path.relpath(path, base)
            yield path, arcname


def on_argo() -> bool:
    """Whether this process is a task of an Argo workflow."""
    return bool(os.environ.get("ARGO_WORKFLOW_NAME")) or (
        os.environ.get("METAFLOW_RUNTIME_NAME") == "argo-workflows"
    )


def _deploying_to_argo() -> bool:
    """Whether this process compiles the flow for Argo (``argo-workflows create``...)."""
    return "argo-workflows" in sys.argv and not on_argo()


def _notifier(setting: Any) -> Any:
    if setting in (None, ""):
        return None
    from metaflow import metaflow_config

    from metaflow_hitl.notify import notifier_from_setting

    # Metaflow's UI_URL comes from the environment or the Metaflow profile.
    ui_url = getattr(metaflow_config, "UI_URL", None) or None
    return notifier_from_setting(setting, metaflow_ui_url=ui_url)


def _configured_review() -> str | None:
    """``METAFLOW_HITL_REVIEW`` from the environment or the Metaflow profile (config file)."""
    return _configured("HITL_REVIEW")


def _configured(name: str) -> str | None:
    """``METAFLOW_<name>`` from the environment or the Metaflow profile (config file)."""
    from metaflow import metaflow_config

    return getattr(metaflow_config, name, None)


def _warn_unreachable_store(review: Any, flow_datastore: Any, step_name: str) -> None:
    """At the start of a run (not in each task): a GitHub review the Action cannot decide."""
    if flow_command()[:1] not in (["run"], ["resume"]):
        return
    location = _local_store(flow_datastore) or f"{flow_datastore.TYPE}://"
    warning = unreachable_store_warning(review, location)
    if warning:
        print(f"[@hitl] Warning (step {step_name!r}): {warning}", file=sys.stderr, flush=True)


def _local_store(flow_datastore: Any) -> str | None:
    """The gates' folder of a local datastore; ``None`` for a remote one (S3)."""
    if flow_datastore.TYPE != "local":
        return None
    return os.path.join(flow_datastore.datastore_root, STORE_DIRNAME)


def _timeout_seconds(attributes: dict[str, Any]) -> float:
    total = 0.0
    for key, size in (("seconds", 1), ("minutes", 60), ("hours", 3600)):
        try:
            total += float(attributes.get(key) or 0) * size
        except (TypeError, ValueError):
            continue
    return total


def _settle_here(store: ApprovalStore, request: Request, decision: Decision) -> None:
    """Publish an expiry this task recorded; a failure is a warning, never the step's failure.

    The decision stands either way (the policy of :mod:`metaflow_hitl.settle`): a review repo
    that is down must not fail a step its timeout let through (``on_timeout="approve"``), nor
    turn a timed-out rejection into an error of another kind. Nothing to resume: this task is
    the one that waited.
    """
    from metaflow_hitl.review.publish import publish_decision
    from metaflow_hitl.settle import settle

    def publish(request: Request, decision: Decision) -> dict[str, str | None]:
        return publish_decision(request, decision, store=store)

    print_unsettled(settle(request, decision, publish=publish, resumer=None))


def _rejection(decision: Decision, step_name: str, run_id: str) -> HitlRejected:
    if decision.outcome == "timed_out":
        return HitlRejected(
            f"Step {step_name!r} of run {run_id} was not approved in time: {decision.reason}. "
            f"(gate {decision.gate_id})",
            headline="@hitl: gate timed out, rejected",
        )
    why = decision.reason or "no reason given"
    same = (
        f" This same content was rejected in run {decision.gate_id.run_id}; a resume or retry "
        "with the same content stays rejected. Change the inputs or the code to ask again."
        if decision.gate_id.run_id != str(run_id)
        else ""
    )
    return HitlRejected(
        f"Step {step_name!r} of run {run_id} was rejected by {decision.decided_by} "
        f"({decision.channel}): {why}. (gate {decision.gate_id}){same}",
        headline=f"@hitl: rejected by {decision.decided_by}",
    )
