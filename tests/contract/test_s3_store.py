"""What only the S3 store does: conditional-write races, lost responses, request counts,
error translation and ``open_store("s3://...")``.

The shared behaviour (create-if-absent, listing, the 20-process race, no torn reads) runs
against S3 in ``test_store_contract.py``. These tests use the same moto server; faults are
injected by wrapping the real client, so every write that "landed" really landed.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import pytest

from metaflow_hitl.errors import ConfigError, RecordError, StoreError
from metaflow_hitl.gate_id import GateId
from metaflow_hitl.stores import open_store
from metaflow_hitl.stores import s3 as s3_module
from metaflow_hitl.stores.s3 import S3ApprovalStore, split_s3_url
from tests.contract.store_kinds import (
    GATE,
    S3_TEST_ENV,
    make_decision,
    make_request,
    make_vote,
    new_bucket,
    s3_client,
)

PREFIX = "team/hitl"
SECRET = "do-not-print-this-secret-0123456789"


@pytest.fixture
def aws_env(moto_s3: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> str:
    """Dummy credentials and Metaflow's endpoint setting in the environment."""
    for name, value in {**S3_TEST_ENV, "METAFLOW_S3_ENDPOINT_URL": moto_s3}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return moto_s3


class Faulty:
    """A boto3 client whose next puts to keys ending in ``suffix`` misbehave.

    Faults: ``lost`` (the put lands, then the response is lost: ReadTimeoutError),
    ``412-after-retry`` (the put lands, then botocore's retry of it gets 412), ``409`` (a
    conflict; nothing written). Every call's operation name is recorded in :attr:`calls`.
    """

    def __init__(self, client: Any, suffix: str = "", faults: list[str] | None = None) -> None:
        self._client = client
        self.suffix = suffix
        self.faults = list(faults or [])
        self.calls: list[str] = []
        client.meta.events.register("before-call.s3", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_object(self, **kwargs: Any) -> Any:
        if not (self.faults and kwargs["Key"].endswith(self.suffix)):
            return self._client.put_object(**kwargs)
        from botocore.exceptions import ClientError, ReadTimeoutError

        fault = self.faults.pop(0)
        if fault == "409":
            self.calls.append("PutObject")
            raise ClientError(_error("ConditionalRequestConflict", 409), "PutObject")
        self._client.put_object(**kwargs)  # the write lands...
        if fault == "lost":
            raise ReadTimeoutError(endpoint_url="http://127.0.0.1/lost")
        assert fault == "412-after-retry"
        raise ClientError(_error("PreconditionFailed", 412, retries=1), "PutObject")


def _error(code: str, status: int, *, retries: int = 0) -> dict[str, Any]:
    return {
        "Error": {"Code": code, "Message": f"injected {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": retries},
    }


@pytest.fixture
def bucket(moto_s3: str) -> str:
    return new_bucket(moto_s3)


def _store(moto_s3: str, bucket: str, **faulty: Any) -> tuple[S3ApprovalStore, Faulty]:
    client = Faulty(s3_client(moto_s3), **faulty)
    return S3ApprovalStore(bucket, PREFIX, client=client), client


def _keys(moto_s3: str, bucket: str) -> list[str]:
    listed = s3_client(moto_s3).list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(item["Key"] for item in listed)


# -- layout and request counts ------------------------------------------------------------------


def test_layout_and_request_counts(moto_s3: str, bucket: str) -> None:
    store, client = _store(moto_s3, bucket)
    vote = make_vote("alice")

    assert store.create_request(make_request()) is True
    assert client.calls == ["PutObject", "PutObject"]  # request, pending marker
    client.calls.clear()
    assert store.create_request(make_request(message="again")) is False
    assert client.calls == ["PutObject"]  # a plain 412: nothing to read back
    client.calls.clear()
    store.add_vote(vote)
    assert client.calls == ["PutObject"]
    client.calls.clear()
    assert store.list_votes(GATE) == [vote]
    assert client.calls == ["ListObjectsV2", "GetObject"]
    client.calls.clear()
    assert list(store.list_gates(pending_only=True)) == [GATE]
    assert client.calls == ["ListObjectsV2", "HeadObject"]
    client.calls.clear()
    decision = make_decision("alice")
    assert store.create_decision(decision) == decision
    assert client.calls == ["PutObject", "DeleteObject"]  # decision, pending marker
    client.calls.clear()
    assert store.get_decision(GATE) == decision
    assert client.calls == ["GetObject"]

    gate = f"{PREFIX}/v1/gates/TrainAndDeploy/1732/gate"
    name = f"2026-11-25T100000.123Z-{vote.nonce}.json"
    assert _keys(moto_s3, bucket) == [
        f"{gate}/decision.json",
        f"{gate}/request.json",
        f"{gate}/votes/{name}",
    ]
    assert store.location == f"s3://{bucket}/{PREFIX}"


def test_listing_pending_reads_only_the_pending_prefix(moto_s3: str, bucket: str) -> None:
    store, client = _store(moto_s3, bucket)
    decided = [GateId("Hist", str(i), "gate") for i in range(12)]
    pending = [GateId("Hist", "100", "gate"), GateId("Other", "7", "gate")]
    for gate in decided + pending:
        store.create_request(make_request(gate))
    for gate in decided:
        store.create_decision(make_decision("alice", gate=gate))
    prefixes: list[str] = []
    client.meta.events.register(
        "before-parameter-build.s3.ListObjectsV2",
        lambda params, **_: prefixes.append(params["Prefix"]),
    )
    client.calls.clear()

    assert set(store.list_gates(pending_only=True)) == set(pending)
    assert prefixes == [f"{PREFIX}/v1/pending/"]
    # One LIST page and one HEAD per pending gate, whatever the history holds.
    assert client.calls == ["ListObjectsV2"] + ["HeadObject"] * len(pending)

    prefixes.clear()
    assert list(store.list_gates(pending_only=True, flow="Other")) == [pending[1]]
    assert prefixes == [f"{PREFIX}/v1/pending/Other/"]


# -- races and lost responses -------------------------------------------------------------------


def test_412_on_the_decision_returns_the_winner(moto_s3: str, bucket: str) -> None:
    alice, _ = _store(moto_s3, bucket)
    bob, bob_client = _store(moto_s3, bucket)
    alice.create_request(make_request())
    first = alice.create_decision(make_decision("alice"))

    bob_client.calls.clear()
    won = bob.create_decision(make_decision("bob", "rejected", reason="no"))
    assert won == first
    assert won.decided_by == "alice"
    assert bob_client.calls == ["PutObject", "GetObject"]  # 412, then read the winner


@pytest.mark.parametrize("fault", ["lost", "412-after-retry"])
def test_a_decision_whose_response_was_lost_is_ours(
    moto_s3: str,
    bucket: str,
    fault: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(s3_module, "_BACKOFF_SECONDS", 0.0)
    store, client = _store(moto_s3, bucket, suffix="decision.json", faults=[fault])
    store.create_request(make_request())
    decision = make_decision("alice")
    client.calls.clear()

    assert store.create_decision(decision) == decision
    # The put landed, the retry (ours or botocore's) got 412, the read-back found our nonce.
    puts = ["PutObject", "PutObject"] if fault == "lost" else ["PutObject"]
    assert client.calls == [*puts, "GetObject", "DeleteObject"]
    assert store.get_decision(GATE) == decision
    assert list(store.list_gates(pending_only=True)) == []  # we won: we removed the marker
    assert f"{PREFIX}/v1/pending/TrainAndDeploy/1732/gate" not in _keys(moto_s3, bucket)


@pytest.mark.parametrize("fault", ["lost", "412-after-retry"])
def test_a_request_whose_response_was_lost_is_ours(
    moto_s3: str,
    bucket: str,
    fault: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(s3_module, "_BACKOFF_SECONDS", 0.0)
    store, _ = _store(moto_s3, bucket, suffix="request.json", faults=[fault])
    request = make_request()

    assert store.create_request(request) is True
    assert store.get_request(GATE) == request
    assert list(store.list_gates(pending_only=True)) == [GATE]


def test_a_412_after_a_retry_with_another_nonce_is_a_lost_race(
    moto_s3: str,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Our first put hit a 409; before our retry, bob's decision landed: bob won."""
    monkeypatch.setattr(s3_module, "_BACKOFF_SECONDS", 0.0)
    alice, alice_client = _store(moto_s3, bucket, suffix="decision.json", faults=["409"])
    bob, _ = _store(moto_s3, bucket)
    alice.create_request(make_request())
    bobs = make_decision("bob", "rejected")
    original = alice_client.put_object

    def put_then_bob_wins(**kwargs: Any) -> Any:
        try:
            return original(**kwargs)
        finally:
            if kwargs["Key"].endswith("decision.json") and bob.get_decision(GATE) is None:
                bob.create_decision(bobs)

    monkeypatch.setattr(alice_client, "put_object", put_then_bob_wins)
    alice_client.calls.clear()

    assert alice.create_decision(make_decision("alice")) == bobs
    assert alice_client.calls.count("DeleteObject") == 0


def test_a_409_is_retried(moto_s3: str, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_module, "_BACKOFF_SECONDS", 0.0)
    store, client = _store(moto_s3, bucket, suffix="decision.json", faults=["409", "409"])
    store.create_request(make_request())
    decision = make_decision("alice")
    client.calls.clear()

    assert store.create_decision(decision) == decision
    assert client.calls == ["PutObject", "PutObject", "PutObject", "DeleteObject"]


def test_endless_409s_give_up_with_a_store_error(
    moto_s3: str,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(s3_module, "_BACKOFF_SECONDS", 0.0)
    store, _ = _store(moto_s3, bucket, suffix="decision.json", faults=["409"] * 10)
    store.create_request(make_request())
    with pytest.raises(StoreError, match=r"5 attempts") as info:
        store.create_decision(make_decision("alice"))
    assert f"s3://{bucket}/{PREFIX}/v1/gates/TrainAndDeploy/1732/gate/decision.json" in str(
        info.value
    )
    assert store.get_decision(GATE) is None


# -- errors -------------------------------------------------------------------------------------


def test_a_missing_bucket_is_a_store_error_without_credentials(aws_env: str) -> None:
    store = S3ApprovalStore("hitl-no-such-bucket", PREFIX)
    with pytest.raises(StoreError, match="NoSuchBucket") as info:
        store.get_request(GATE)
    assert "s3://hitl-no-such-bucket/team/hitl/v1/gates/" in str(info.value)
    assert info.value.hint is not None
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value.__cause__) + repr(info.value.__context__)


def test_no_credentials_is_a_store_error(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, bucket: str
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = S3ApprovalStore(bucket, PREFIX)
    with pytest.raises(StoreError, match="no usable AWS credentials") as info:
        store.get_decision(GATE)
    assert "AWS_PROFILE" in (info.value.hint or "")


def test_an_unreachable_endpoint_is_a_store_error(aws_env: str) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    store = S3ApprovalStore("hitl-bucket", PREFIX, client=client)
    with pytest.raises(StoreError, match="EndpointConnectionError") as info:
        store.create_request(make_request())
    assert "METAFLOW_S3_ENDPOINT_URL" in (info.value.hint or "")
    assert SECRET not in str(info.value)


def test_a_corrupt_record_names_its_url(moto_s3: str, bucket: str) -> None:
    store, _ = _store(moto_s3, bucket)
    key = f"{PREFIX}/v1/gates/TrainAndDeploy/1732/gate/decision.json"
    s3_client(moto_s3).put_object(Bucket=bucket, Key=key, Body=b'{"format": "metaflow-hi')
    with pytest.raises(RecordError, match=f"s3://{bucket}/{key}"):
        store.get_decision(GATE)


# -- open_store -----------------------------------------------------------------------------------


def test_open_store_follows_metaflow_s3_settings(aws_env: str, bucket: str) -> None:
    store = open_store(f"s3://{bucket}/{PREFIX}/")
    assert isinstance(store, S3ApprovalStore)
    assert store.location == f"s3://{bucket}/{PREFIX}"
    assert store.client.meta.endpoint_url == aws_env
    request = make_request()
    assert store.create_request(request) is True
    assert open_store(f"s3://{bucket}/{PREFIX}").get_request(GATE) == request


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("s3://bucket", ("bucket", ""), id="no-prefix"),
        pytest.param("s3://bucket/", ("bucket", ""), id="slash"),
        pytest.param("s3://bucket/a/b/", ("bucket", "a/b"), id="nested"),
    ],
)
def test_split_s3_url(url: str, expected: tuple[str, str]) -> None:
    assert split_s3_url(url) == expected


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix"])
def test_open_store_refuses_an_s3_url_without_bucket(url: str) -> None:
    with pytest.raises(ConfigError, match="names no bucket"):
        open_store(url)


def test_open_store_without_boto3_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(ConfigError, match="boto3") as info:
        open_store("s3://bucket/prefix")
    assert "pip install 'metaflow-hitl[s3]'" in str(info.value)


def test_an_empty_prefix_keeps_the_layout(moto_s3: str, bucket: str) -> None:
    store = S3ApprovalStore(bucket, "", client=s3_client(moto_s3))
    assert store.location == f"s3://{bucket}"
    request = replace(make_request(), message="at the bucket root")
    store.create_request(request)
    assert _keys(moto_s3, bucket) == [
        "v1/gates/TrainAndDeploy/1732/gate/request.json",
        "v1/pending/TrainAndDeploy/1732/gate",
    ]


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-25T10:53:10.000Z",
        "2026-11-25T10:53:10Z",
        "2026-11-25T10:53:10.123456Z",
        "2026-11-25T10:53:10+02:00",
        "Wed, 25 Nov 2026 10:53:10 GMT",
        "1764067990",
        1764067990,
    ],
)
def test_listing_timestamps_parse_as_botocore_parses_them(value: Any) -> None:
    from botocore.utils import parse_timestamp

    ours = s3_module._parse_timestamp(value)
    assert ours == parse_timestamp(value)
    assert ours.utcoffset() is not None  # aware, as botocore's are


def test_the_store_client_parses_listed_timestamps_with_the_fast_parser(
    aws_env: str, bucket: str
) -> None:
    """The client the store makes parses ``LastModified`` with ``_parse_timestamp`` (whose
    datetimes carry ``timezone.utc``; botocore's dateutil parser gives ``tzutc()``)."""
    from datetime import timezone

    store = open_store(f"s3://{bucket}/hitl")
    assert isinstance(store, S3ApprovalStore)
    store.create_index_segment("0" * 64 + ".json.gz", b"x")
    listed = store.client.list_objects_v2(Bucket=bucket, Prefix="hitl/")["Contents"]
    assert [item["LastModified"].tzinfo for item in listed] == [timezone.utc]
