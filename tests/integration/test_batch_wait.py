"""A local run whose gated step runs on AWS Batch waits *before* the job is submitted.

The same run as ``test_remote_compute_wait.py``, with ``@batch`` (and ``--with batch``) on
the gated step, against a moto server on loopback that serves both the S3 datastore and the
Batch API. Metaflow's Batch client is ``get_aws_client("batch")``
(``plugins/aws/batch/batch_client.py``), a plain boto3 client, so botocore's
service-specific endpoint variable ``AWS_ENDPOINT_URL_BATCH``
(https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html) points it at
moto. moto's request recorder (``/moto-api/recorder/``, ``MOTO_ENABLE_RECORDING``) lists
every request the server received, so "no Batch request while the gate waits" is read from
the server's side. ``batch step`` (``plugins/aws/batch/batch_cli.py``) is the command the
runtime launches after every decorator's ``runtime_step_cli``; its first Batch request
(``DescribeJobQueues``/``RegisterJobDefinition``/``SubmitJob``) comes only after approval.
moto runs no container here, so after the job is submitted the test ends the run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.moto_s3 import MOTO_CREDENTIALS
from tests.support.flow_run import FlowRun, s3_run_env


class Moto:
    def __init__(self, url: str, recording: Path) -> None:
        self.url = url
        self.recording = recording

    def batch_calls(self) -> list[str]:
        """The Batch REST paths the server received (``/v1/submitjob``...), in order."""
        with urllib.request.urlopen(f"{self.url}/moto-api/recorder/download-recording") as r:
            lines = r.read().decode().splitlines()
        calls = []
        for line in lines:
            entry = json.loads(line)
            if "/batch/aws4_request" in entry.get("headers", {}).get("Authorization", ""):
                calls.append(entry["url"].split("?", 1)[0].rsplit("/", 1)[-1].lower())
        return calls


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Moto, str, str]]:
    import boto3

    tmp = tmp_path_factory.mktemp("moto")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    recording = tmp / "recording.jsonl"
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        env={
            **os.environ,
            **MOTO_CREDENTIALS,
            "MOTO_ENABLE_RECORDING": "True",
            "MOTO_RECORDER_FILEPATH": str(recording),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        kw = dict(
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                boto3.client("s3", **kw).create_bucket(Bucket="bucket")
                break
            except Exception:
                assert time.monotonic() < deadline, "moto did not start"
                time.sleep(0.1)
        role = boto3.client("iam", **kw).create_role(
            RoleName="hitl-batch", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        ec2 = boto3.client("ec2", **kw)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="hitl", Description="hitl", VpcId=vpc)
        profile = boto3.client("iam", **kw).create_instance_profile(
            InstanceProfileName="hitl-batch"
        )["InstanceProfile"]["Arn"]
        batch = boto3.client("batch", **kw)
        # MANAGED, as Metaflow reads computeResources.type to pick the job's platform
        # (batch_client.py, _register_job_definition)
        env_arn = batch.create_compute_environment(
            computeEnvironmentName="hitl-ce",
            type="MANAGED",
            serviceRole=role,
            computeResources={
                "type": "EC2",
                "minvCpus": 0,
                "maxvCpus": 4,
                "desiredvCpus": 0,
                "instanceTypes": ["optimal"],
                "subnets": [subnet],
                "securityGroupIds": [group["GroupId"]],
                "instanceRole": profile,
            },
        )["computeEnvironmentArn"]
        queue = batch.create_job_queue(
            jobQueueName="hitl-queue",
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env_arn}],
        )["jobQueueArn"]
        yield Moto(url, recording), queue, role
    finally:
        proc.terminate()
        proc.wait()


def _start_recording(moto: Moto) -> None:
    for action in ("reset-recording", "start-recording"):
        req = urllib.request.Request(f"{moto.url}/moto-api/recorder/{action}", method="POST")
        urllib.request.urlopen(req).close()


def _run(tmp: Path, moto: Moto, queue: str, role: str) -> FlowRun:
    return FlowRun(
        tmp,
        "remote_gate_flow.py",
        s3_run_env(
            tmp,
            moto.url,
            AWS_ENDPOINT_URL_BATCH=moto.url,
            METAFLOW_BATCH_JOB_QUEUE=queue,
            METAFLOW_ECS_S3_ACCESS_IAM_ROLE=role,
            GATE_COMPUTE="batch",
        ),
    )


def _gate(out: str) -> str:
    line = next(x for x in out.splitlines() if "is waiting for approval" in x)
    return line.split("Gate ")[1].split(" is waiting")[0].split("/", 1)[1]


def test_no_batch_request_until_approved_then_the_job(moto, tmp_path):
    """``@batch`` on the gated step only: moto runs no container, so the other steps stay
    local (``--with batch`` would put them on Batch too; the Kubernetes test covers ``--with``,
    which goes through the same ``runtime_step_cli`` path)."""
    server, queue, role = moto
    _start_recording(server)
    r = _run(tmp_path, server, queue, role)
    try:
        r.start()
        r.wait_for("is waiting for approval")
        r.wait_for("SIDE BRANCH RAN")  # the other branch runs meanwhile
        assert "launched only once the gate is approved" in r.output()
        time.sleep(1.0)  # a few polls of the waiting gate
        assert server.batch_calls() == []  # nothing asked Batch while the gate waits
        ok = r.hitl("approve", _gate(r.output()), "--as", "reviewer")
        assert ok.returncode == 0, ok.stderr
        deadline = time.monotonic() + 120
        while "submitjob" not in server.batch_calls():
            assert time.monotonic() < deadline, (server.batch_calls(), r.output())
            time.sleep(0.2)
        assert server.batch_calls().count("submitjob") == 1
    finally:
        r.kill()


def test_a_rejected_batch_gate_submits_nothing(moto, tmp_path):
    server, queue, role = moto
    _start_recording(server)
    r = _run(tmp_path, server, queue, role)
    try:
        r.start()
        r.wait_for("is waiting for approval")
        done = r.hitl("reject", _gate(r.output()), "--as", "bob", "--reason", "no GPU today")
        assert done.returncode == 0, done.stderr
        code = r.finish(timeout=180)
        out = r.output()
        assert code != 0, out
        assert "The step was not launched." in out
        assert "This failed task will not be retried." in out
        assert server.batch_calls() == []
    finally:
        r.kill()
