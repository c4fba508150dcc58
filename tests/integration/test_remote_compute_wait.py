"""A local run whose gated step runs on Kubernetes waits *before* the Job is created.

Real ``python flow.py run`` (S3 datastore on a loopback moto server, as ``@kubernetes``
requires: ``kubernetes_decorator.py::step_init``) against a stateful Kubernetes API test
server on loopback that records every request (:class:`tests.fakes.k8s_api.FakeKubernetesJobs`).
Metaflow's launcher (``kubernetes step``, ``plugins/kubernetes/kubernetes_job.py``
``KubernetesJob.create``) POSTs ``/apis/batch/v1/namespaces/default/jobs`` as its first
request; the local runtime starts that command from ``Worker._launch`` (``runtime.py``)
after every decorator's ``runtime_step_cli``. With the gate waiting in front of it:

- no request at all while the gate waits, while the other branch of the split runs;
- the Job after an approval (one, for the gated step);
- none after a rejection, even with ``@retry`` (exit 202, ``METAFLOW_EXIT_DISALLOW_RETRY``).

The fake schedules no pod, so after the Job is created the test ends the run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from metaflow_hitl.gate_id import GateId
from tests.fakes.k8s_api import FakeKubernetesJobs, LocalKubelet, serve_jobs
from tests.fakes.moto_s3 import moto_server
from tests.integration.kube_argo import _kubeconfig
from tests.support.flow_run import FlowRun, s3_run_env

STORE = "s3://bucket/metaflow/_hitl"
JOBS = "/apis/batch/v1/namespaces/default/jobs"


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with moto_server("bucket") as endpoint:
        yield endpoint


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[tuple[FakeKubernetesJobs, Path]]:
    fake = FakeKubernetesJobs(kubelet=LocalKubelet(tmp_path / "pods", {}))
    with serve_jobs(fake) as url:
        yield fake, _kubeconfig(tmp_path, url)


class Run(FlowRun):
    """``python remote_gate_flow.py run``; its pods (on the fake's kubelet) get its environment."""

    def __init__(
        self, tmp: Path, s3: str, kube: FakeKubernetesJobs, kubeconfig: Path, **env: str
    ) -> None:
        super().__init__(
            tmp, "remote_gate_flow.py", s3_run_env(tmp, s3, KUBECONFIG=str(kubeconfig), **env)
        )
        assert kube.kubelet is not None  # the pods run with this environment
        kube.kubelet.base_env = {**self.env, "METAFLOW_SKIP_INSTALL_DEPENDENCIES": "1"}


@pytest.fixture
def run(tmp_path: Path, s3: str, kube: tuple[FakeKubernetesJobs, Path]) -> Iterator[Any]:
    made: list[Run] = []

    def make(**env: str) -> Run:
        made.append(Run(tmp_path, s3, kube[0], kube[1], **env))
        return made[-1]

    yield make
    for r in made:
        r.kill()


def gate_of(out: str) -> str:
    line = next(x for x in out.splitlines() if "is waiting for approval" in x)
    return line.split("Gate ")[1].split(" is waiting")[0]


def wait_for_job(fake: FakeKubernetesJobs, r: Run, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not fake.created():
        if time.monotonic() > deadline or (r.proc is not None and r.proc.poll() is not None):
            raise AssertionError(f"no Job was created:\n{r.output()}\n{fake.log}")
        time.sleep(0.1)


def gate_jobs(fake: FakeKubernetesJobs) -> list[dict[str, Any]]:
    return [j for j in fake.created() if _step_of(j) == "gate"]


def _step_of(job: dict[str, Any]) -> str | None:
    return (job["metadata"].get("annotations") or {}).get("metaflow/step_name")


@pytest.mark.parametrize("compute", ["decorator", "with"], ids=["@kubernetes", "--with"])
def test_no_kubernetes_request_until_approved_then_the_job(run, kube, compute):
    fake, _ = kube
    r = run(GATE_COMPUTE=compute)
    r.start(*(["--with", "kubernetes:cpu=1,image=python:3.11"] if compute == "with" else []))
    r.wait_for("is waiting for approval")
    # the other branch of the split runs to its end meanwhile, and its output is shown
    r.wait_for("SIDE BRANCH RAN", timeout=180)
    out = r.output()
    assert "launched only once the gate is approved" in out
    time.sleep(1.0)  # a few polls of the waiting gate
    if compute == "decorator":
        assert fake.log == [], fake.log  # nothing asked Kubernetes while the gate waits
    else:  # every step is on Kubernetes: the others' Jobs only
        assert sorted(map(_step_of, fake.created())) == ["side", "start"]
    assert gate_jobs(fake) == []
    before = len(fake.log)

    gate = gate_of(out)
    ok = r.hitl("approve", gate.split("/", 1)[1], "--as", "reviewer")
    assert ok.returncode == 0, ok.stderr
    code = r.finish(timeout=300)
    out = r.output()
    assert code == 0, out
    assert len(gate_jobs(fake)) == 1, [j["metadata"] for j in fake.created()]
    if compute == "decorator":  # the first request after the approval creates the Job
        assert fake.log[before][0] == "POST"
        assert fake.log[before][1].startswith(JOBS)
    assert fake.problems == []
    # the pod found the decision in the store and ran the step
    assert "GATE BODY RAN" in out
    pod_output = "\n".join(fake.kubelet.outputs)
    assert f"Gate {gate}: approved by reviewer (cli)" in pod_output
    assert pod_output.count("is waiting for approval") == 0


def test_rejected_gate_creates_no_job_and_stays_rejected_until_the_content_changes(
    run, kube, monkeypatch
):
    fake, _ = kube
    r = run(GATE_COMPUTE="decorator")
    r.start()
    r.wait_for("is waiting for approval")
    gate = gate_of(r.output())
    done = r.hitl("reject", gate.split("/", 1)[1], "--as", "bob", "--reason", "no GPU today")
    assert done.returncode == 0, done.stderr
    code = r.finish()
    out = r.output()
    assert code != 0, out
    assert "@hitl: rejected by bob" in out
    assert "The step was not launched." in out
    assert "This failed task will not be retried." in out  # @retry(times=1) did not relaunch
    assert "GATE BODY RAN" not in out
    assert fake.log == [], fake.log

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(key, r.env[key])
    monkeypatch.setenv("METAFLOW_S3_ENDPOINT_URL", r.env["METAFLOW_S3_ENDPOINT_URL"])
    from metaflow_hitl.stores import open_store

    flow, run_id, step = gate.split("/")
    decision = open_store(STORE).get_decision(GateId(flow, run_id, step))
    assert decision is not None
    assert decision.outcome == "rejected"

    # `resume` with the same content: the rejection is bound to that content, so the
    # resumed run stays rejected without asking and without creating a Job (issue 14)
    r.start(command="resume")
    assert r.finish(timeout=300) != 0
    out = r.output()
    assert "This same content was rejected in run" in out, out
    assert "is waiting for approval" not in out
    assert fake.log == [], fake.log

    # `resume start` with changed input: new content, so the gate asks again, before launch
    r.env["ACCURACY"] = "0.951"
    r.start("start", command="resume")
    r.wait_for("is waiting for approval")
    again = gate_of(r.output())
    assert again != gate
    time.sleep(1.0)
    assert fake.log == [], fake.log
    ok = r.hitl("approve", again.split("/", 1)[1], "--as", "reviewer")
    assert ok.returncode == 0, ok.stderr
    assert r.finish(timeout=300) == 0, r.output()
    assert len(gate_jobs(fake)) == 1
    assert "GATE BODY RAN" in r.output()
