"""An approval store in S3 (or an S3-compatible server), for runs on Argo Workflows.

Layout under ``s3://<bucket>/<prefix>`` (the same as the local store's)::

    <prefix>/v1/gates/<flow>/<run>/<step>/request.json
    <prefix>/v1/gates/<flow>/<run>/<step>/decision.json
    <prefix>/v1/gates/<flow>/<run>/<step>/votes/<time>-<nonce>.json
    <prefix>/v1/gates/<flow>/<run>/<step>/reminders/<number>.json
    <prefix>/v1/gates/<flow>/<run>/<step>/publication.json
    <prefix>/v1/gates/<flow>/<run>/<step>/page-changes/<time>-<nonce>.json
    <prefix>/v1/gates/<flow>/<run>/<step>/waiter.json   a local waiting task's heartbeat (replaced)
    <prefix>/v1/pending/<flow>/<run>/<step>          empty marker while undecided
    <prefix>/v1/index/decided/<sha256>.json.gz       index segments (metaflow_hitl.index.segments)

Records are created with S3 conditional writes (``PutObject`` with ``If-None-Match: *``,
https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html): S3 refuses
the write with ``412 PreconditionFailed`` when the key exists, so exactly one of any number
of racing writers creates a record, and since an object is only visible once whole, a
reader never sees half of one. ``409 ConditionalRequestConflict`` (concurrent conflicting
writes) is retried a bounded number of times. A ``412`` after a retry (ours, or botocore's
after a timeout) may be our own write landing twice, so the store reads the record back and
compares its nonce before calling the race lost.

Requests per operation (n = the objects involved):

=============================  ====================================================
``create_request``             2: PUT request + PUT marker; lost race: 1 PUT
``get_request/get_decision``   1 GET
``add_vote``                   1 PUT
``list_votes``                 1 LIST per 1,000 votes + 1 GET per vote
``create_decision``            2: PUT decision + DELETE marker; lost race: PUT + GET
``list_gates(pending_only)``   1 LIST per 1,000 pending gates + 1 HEAD per pending gate (10 at once)
``list_gates(all)``            1 LIST per 1,000 objects under ``gates/``
``create_reminder``            1 PUT; after a retry's 412, + 1 GET
``list_reminders``             1 LIST + 1 GET per reminder
``create_publication``         1 PUT; after a retry's 412, + 1 GET
``get_publication``            1 GET
``add_page_change``            1 PUT
``list_page_changes``          1 LIST + 1 GET per change
``scan_gates``                 1 LIST of the flows + 1 LIST per 1,000 objects of each flow
                               (flows listed 10 at once; tags: ETags)
``read_record``                1 GET
index segments                 1 LIST to list them; 1 GET, PUT or DELETE each
=============================  ====================================================

A conditional write answered by 409 is retried (up to 5 attempts); one whose 412 follows a
retry costs one more GET, to compare nonces.

boto3 is the ``[s3]`` extra and is imported only when the first request is made. Without an
explicit client the store follows Metaflow's S3 settings: the endpoint from
``METAFLOW_S3_ENDPOINT_URL`` (or Metaflow's config file), certificate checks from
``METAFLOW_S3_VERIFY_CERTIFICATE``, and credentials from the standard AWS chain. Each attempt
waits at most ``METAFLOW_HITL_S3_TIMEOUT`` seconds (default 20) to connect and for an answer,
so a silent server is a lost answer, retried, never a hang; botocore's own retries follow
``AWS_MAX_ATTEMPTS`` (standard mode: 3 attempts).
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from metaflow_hitl.durations import seconds_setting
from metaflow_hitl.errors import ConfigError, GateRefError, RecordError, StoreError
from metaflow_hitl.gate_id import GateId, is_flow_name
from metaflow_hitl.index.parallel import read_all
from metaflow_hitl.index.segments import RECORD_NAME, check_record_name, check_segment_name
from metaflow_hitl.records import (
    Decision,
    PageChange,
    Publication,
    Reminder,
    Request,
    Vote,
    Waiter,
    decode_record,
    encode_record,
)
from metaflow_hitl.timestamps import format_ts

__all__ = ["S3ApprovalStore", "split_s3_url"]

_LAYOUT = "v1"
#: Attempts for one conditional write (409 conflicts and lost responses are retried).
_ATTEMPTS = 5
_BACKOFF_SECONDS = 0.05
_INSTALL_HINT = "pip install 'metaflow-hitl[s3]'"
#: Default seconds to connect and to wait for an answer, per attempt (records are small; a
#: silent server is a lost answer, retried). ``METAFLOW_HITL_S3_TIMEOUT`` overrides it.
_TIMEOUT_SECONDS = 20.0
#: S3 error codes that mean "busy or failing, try again", whatever the status.
_TRANSIENT = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"}
_RETRY_HINT = (
    "S3 was failing or throttling after the client's retries. Run the same command again "
    "(safe to repeat: the first decision wins); if it persists, check the S3 endpoint "
    "(METAFLOW_S3_ENDPOINT_URL) and its health."
)

_R = TypeVar("_R", Request, Vote, Decision, Reminder, Publication, PageChange)
_Any = TypeVar("_Any", Request, Vote, Decision, Reminder, Publication, PageChange, Waiter)


class _Created(NamedTuple):
    created: bool
    #: The stored bytes, when the write was refused and the object was read back.
    stored: bytes | None


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``.

    Raises
    ------
    ConfigError
        When ``url`` is not an ``s3://`` URL with a bucket.
    """
    text = str(url).strip()
    if not text.startswith("s3://"):
        raise ConfigError(f"store {url!r} is not an s3:// URL.")
    bucket, _, prefix = text[len("s3://") :].partition("/")
    if not bucket:
        raise ConfigError(
            f"store {url!r} names no bucket.",
            hint="Use s3://BUCKET/PREFIX, e.g. s3://my-bucket/hitl",
        )
    return bucket, prefix.strip("/")


def _setting(name: str) -> Any:
    """A Metaflow setting: the environment first, then Metaflow's config file (if any)."""
    value = os.environ.get(f"METAFLOW_{name}")
    if value:
        return value
    try:
        from metaflow import metaflow_config
    except Exception:  # Metaflow absent, or its config unreadable: use the defaults
        return None
    return getattr(metaflow_config, name, None) or None


class S3ApprovalStore:
    """The :class:`~metaflow_hitl.ports.ApprovalStore` for S3.

    Parameters
    ----------
    bucket
        The bucket name.
    prefix
        The key prefix holding the store (``hitl`` or ``metaflow/_hitl``); may be empty.
    client
        A boto3 S3 client. When ``None``, one is made on first use from Metaflow's S3
        settings (``METAFLOW_S3_ENDPOINT_URL``...) and the standard AWS credential chain,
        and made again after a ``fork``.
    """

    def __init__(self, bucket: str, prefix: str = "", *, client: Any = None) -> None:
        if not bucket or "/" in bucket:
            raise ConfigError(f"S3 bucket name {bucket!r} is not valid.")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.location = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.is_remote = True
        self._client = client
        self._own_client = client is None
        self._client_pid = os.getpid()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3ApprovalStore({self.location!r})"

    # -- client ---------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The boto3 client (made on first use when none was given)."""
        with self._lock:
            if self._own_client and (self._client is None or self._client_pid != os.getpid()):
                self._client = _default_client()
                self._client_pid = os.getpid()
            return self._client

    # -- keys -----------------------------------------------------------------------------
    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, _LAYOUT, *parts) if p)

    def _gate_key(self, gate_id: GateId, *rest: str) -> str:
        return self._key("gates", gate_id.flow, gate_id.run_id, gate_id.step, *rest)

    def _pending_key(self, gate_id: GateId) -> str:
        return self._key("pending", gate_id.flow, gate_id.run_id, gate_id.step)

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # -- primitives -----------------------------------------------------------------------
    def _create(self, key: str, data: bytes, *, ours: Callable[[bytes], bool]) -> _Created:
        """Create ``key`` unless it exists.

        Returns whether this call created it and, when it had to read the object back, the
        stored bytes. ``ours(stored)`` tells whether an existing object is our own write (the
        same nonce): after a retry -- ours on 409 or a lost response, or botocore's after a
        timeout -- a 412 may answer a write of ours that landed.
        """
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            ReadTimeoutError,
        )

        retried = False
        for attempt in range(_ATTEMPTS):
            if attempt:
                time.sleep(_BACKOFF_SECONDS * (2 ** (attempt - 1)) * (1 + random.random()))  # noqa: S311
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    IfNoneMatch="*",
                    ContentType="application/json",
                )
                return _Created(True, None)
            except ClientError as exc:
                code, status = _code(exc), _status(exc)
                if code == "PreconditionFailed" or status == 412:
                    if not retried and _retry_attempts(exc) == 0:
                        return _Created(False, None)  # a plain lost race
                    stored = self._get_bytes(key)
                    if stored is None:  # pragma: no cover - deleted behind our back
                        raise StoreError(
                            f"{self._url(key)} was refused as existing but cannot be read back."
                        ) from None
                    return _Created(ours(stored), stored)
                if code == "ConditionalRequestConflict" or status == 409:
                    retried = True
                    continue
                raise _client_error("write", self._url(key), exc) from None
            except (ReadTimeoutError, ConnectionClosedError):
                retried = True  # the write may have landed; the retry's 412 will tell
                continue
            except BotoCoreError as exc:
                raise _transport_error("write", self._url(key), exc) from None
        raise StoreError(
            f"cannot write {self._url(key)}: S3 kept reporting a conflicting concurrent "
            f"write or losing the response ({_ATTEMPTS} attempts).",
            hint="Try the command again; if it persists, check the S3 endpoint's health.",
        )

    def _get_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            return bytes(response["Body"].read())
        except ClientError as exc:
            if _code(exc) in {"NoSuchKey", "404"}:
                return None
            raise _client_error("read", self._url(key), exc) from None
        except BotoCoreError as exc:
            raise _transport_error("read", self._url(key), exc) from None

    def _get(self, key: str, kind: type[_Any]) -> _Any | None:
        data = self._get_bytes(key)
        return None if data is None else decode_record(data, kind, where=self._url(key))

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if _code(exc) in {"NoSuchKey", "404", "NotFound"}:
                return False
            raise _client_error("read", self._url(key), exc) from None
        except BotoCoreError as exc:
            raise _transport_error("read", self._url(key), exc) from None

    def _put_plain(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except ClientError as exc:
            raise _client_error("write", self._url(key), exc) from None
        except BotoCoreError as exc:
            raise _transport_error("write", self._url(key), exc) from None

    def _delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            raise _client_error("delete", self._url(key), exc) from None
        except BotoCoreError as exc:
            raise _transport_error("delete", self._url(key), exc) from None

    def _keys(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix`` (which ends with ``/``), in lexicographic order."""
        for key, _ in self._listing(prefix):
            yield key

    def _listing(self, prefix: str) -> Iterator[tuple[str, str]]:
        """Every ``(key, ETag)`` under ``prefix`` (which ends with ``/``), in key order."""
        for page in self._pages(prefix):
            for item in page.get("Contents", ()):
                yield str(item["Key"]), str(item.get("ETag", ""))

    def _pages(self, prefix: str, **options: str) -> Iterator[dict[str, Any]]:
        """The ``ListObjectsV2`` pages under ``prefix`` (``options``: ``Delimiter``)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield from self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, **options
            )
        except ClientError as exc:
            raise _client_error("list", self._url(prefix), exc) from None
        except BotoCoreError as exc:
            raise _transport_error("list", self._url(prefix), exc) from None

    # -- ApprovalStore ----------------------------------------------------------------------
    def create_request(self, request: Request) -> bool:
        created = self._create(
            self._gate_key(request.gate_id, "request.json"),
            encode_record(request),
            ours=lambda data: _nonce_of(data, Request) == request.nonce,
        ).created
        if created:
            self._put_plain(self._pending_key(request.gate_id), b"")
        return created

    def get_request(self, gate_id: GateId) -> Request | None:
        return self._get(self._gate_key(gate_id, "request.json"), Request)

    def add_vote(self, vote: Vote) -> None:
        name = f"{format_ts(vote.actor.at)}-{vote.nonce}.json".replace(":", "")
        # The name carries the vote's nonce: an existing object there is our own retry.
        self._create(
            self._gate_key(vote.gate_id, "votes", name), encode_record(vote), ours=lambda _: True
        )

    def list_votes(self, gate_id: GateId) -> list[Vote]:
        votes = []
        for key in self._keys(self._gate_key(gate_id, "votes") + "/"):
            vote = self._get(key, Vote)
            if vote is not None:
                votes.append(vote)
        return votes

    def create_decision(self, decision: Decision) -> Decision:
        key = self._gate_key(decision.gate_id, "decision.json")
        result = self._create(
            key,
            encode_record(decision),
            ours=lambda data: _nonce_of(data, Decision) == decision.nonce,
        )
        if result.created:
            self._delete(self._pending_key(decision.gate_id))
            return decision
        if result.stored is not None:
            return decode_record(result.stored, Decision, where=self._url(key))
        winner = self.get_decision(decision.gate_id)
        if winner is None:  # pragma: no cover - the put said it exists
            raise StoreError(f"{self._url(key)} exists but cannot be read back.")
        return winner

    def get_decision(self, gate_id: GateId) -> Decision | None:
        return self._get(self._gate_key(gate_id, "decision.json"), Decision)

    def create_reminder(self, reminder: Reminder) -> bool:
        key = self._gate_key(reminder.gate_id, "reminders", f"{int(reminder.number)}.json")
        return self._create(
            key,
            encode_record(reminder),
            ours=lambda data: _nonce_of(data, Reminder) == reminder.nonce,
        ).created

    def list_reminders(self, gate_id: GateId) -> list[Reminder]:
        reminders = []
        for key in self._keys(self._gate_key(gate_id, "reminders") + "/"):
            reminder = self._get(key, Reminder)
            if reminder is not None:
                reminders.append(reminder)
        return sorted(reminders, key=lambda r: r.number)

    def create_publication(self, publication: Publication) -> bool:
        return self._create(
            self._gate_key(publication.gate_id, "publication.json"),
            encode_record(publication),
            ours=lambda data: _nonce_of(data, Publication) == publication.nonce,
        ).created

    def get_publication(self, gate_id: GateId) -> Publication | None:
        return self._get(self._gate_key(gate_id, "publication.json"), Publication)

    def add_page_change(self, change: PageChange) -> None:
        name = f"{format_ts(change.seen_at)}-{change.nonce}.json".replace(":", "")
        self._create(  # the name carries the nonce: an existing object is our own retry
            self._gate_key(change.gate_id, "page-changes", name),
            encode_record(change),
            ours=lambda _: True,
        )

    def put_waiter(self, waiter: Waiter) -> None:
        self._put_plain(self._gate_key(waiter.gate_id, "waiter.json"), encode_record(waiter))

    def get_waiter(self, gate_id: GateId) -> Waiter | None:
        return self._get(self._gate_key(gate_id, "waiter.json"), Waiter)

    def list_page_changes(self, gate_id: GateId) -> list[PageChange]:
        changes = []
        for key in self._keys(self._gate_key(gate_id, "page-changes") + "/"):
            change = self._get(key, PageChange)
            if change is not None:
                changes.append(change)
        return sorted(changes, key=lambda c: c.seen_at)

    def list_gates(self, *, pending_only: bool, flow: str | None = None) -> Iterator[GateId]:
        if flow is not None and not is_flow_name(flow):
            return  # no gate can live there; never a key trick
        base = self._key("pending" if pending_only else "gates") + "/"
        seen: set[GateId] = set()
        marked: list[GateId] = []
        for key in self._keys(base + (f"{flow}/" if flow else "")):
            parts = key[len(base) :].split("/")
            if len(parts) < 3 or (pending_only and len(parts) != 3):
                continue
            try:
                gate_id = GateId(parts[0], parts[1], parts[2])
            except GateRefError:
                continue  # not ours (a stray object)
            if gate_id in seen:
                continue
            seen.add(gate_id)
            if pending_only:
                marked.append(gate_id)
            else:
                yield gate_id
        # A marker outlives its decision only between the decision's write and the marker's
        # delete; one HEAD per marker tells, 10 at a time (reads.read_all: each is a round
        # trip).
        for gate_id in self._undecided(marked):
            yield gate_id

    def scan_gates(self, flow: str | None = None) -> dict[GateId, dict[str, str]]:
        if flow is not None and not is_flow_name(flow):
            return {}
        base = self._key("gates") + "/"
        # One listing per flow, 10 at a time (reads.read_all): S3 pages a listing 1,000 keys
        # at a time, one round trip after another, so a store of 10,000 gates (~25,000
        # records) is ~25 round trips in turn; per flow they overlap (and each scans only its
        # flow's keys).
        flows = [base + flow + "/"] if flow else self._folders(base)
        out: dict[GateId, dict[str, str]] = {}
        for part in read_all(self._scan_prefix, flows, parallel=len(flows) > 1):
            out.update(part)
        return out

    def _folders(self, prefix: str) -> list[str]:
        """The "folders" directly under ``prefix`` (``CommonPrefixes`` with ``/``)."""
        return [
            str(folder["Prefix"])
            for page in self._pages(prefix, Delimiter="/")
            for folder in page.get("CommonPrefixes", ())
        ]

    def _scan_prefix(self, prefix: str) -> dict[GateId, dict[str, str]]:
        """:meth:`scan_gates` of the keys under one flow's ``prefix``."""
        base = self._key("gates") + "/"
        out: dict[GateId, dict[str, str]] = {}
        current: tuple[str, str, str] | None = None
        tags: dict[str, str] = {}
        for key, etag in self._listing(prefix):
            parts = key[len(base) :].split("/", 3)
            if len(parts) < 4:
                continue
            name = parts[3]
            if not RECORD_NAME.fullmatch(name):
                continue  # reminders, or not ours
            where = (parts[0], parts[1], parts[2])
            if where != current:
                current, tags = where, {}
                # not ours (a stray object): its records are skipped with it
                with contextlib.suppress(GateRefError):
                    out[GateId(*where)] = tags
            tags[name] = etag
        # Keys come in order, so a gate's records are together; a gate whose request has not
        # landed (its writer died first) is no gate yet.
        return {gate_id: t for gate_id, t in out.items() if "request.json" in t}

    def read_record(self, gate_id: GateId, name: str) -> bytes | None:
        return self._get_bytes(self._gate_key(gate_id, check_record_name(name)))

    def _index_key(self, name: str = "") -> str:
        return self._key("index", "decided", name)

    def list_index_segments(self) -> list[str]:
        base = self._index_key() + "/"
        names = []
        for key in self._keys(base):
            name = key[len(base) :]
            try:
                names.append(check_segment_name(name))
            except ValueError:
                continue  # not ours
        return names

    def get_index_segment(self, name: str) -> bytes | None:
        return self._get_bytes(self._index_key(check_segment_name(name)))

    def create_index_segment(self, name: str, data: bytes) -> bool:
        # The name is the content's hash: an existing object there is the same segment.
        return self._create(
            self._index_key(check_segment_name(name)), data, ours=lambda _: True
        ).created

    def delete_index_segment(self, name: str) -> None:
        self._delete(self._index_key(check_segment_name(name)))

    def _undecided(self, gate_ids: list[GateId]) -> list[GateId]:
        flags = read_all(
            lambda gate_id: self._exists(self._gate_key(gate_id, "decision.json")), gate_ids
        )
        return [g for g, done in zip(gate_ids, flags, strict=True) if not done]


# -- helpers ------------------------------------------------------------------------------


def _default_client() -> Any:
    """A boto3 S3 client following Metaflow's S3 settings and the AWS credential chain."""
    try:
        import boto3
        import botocore.session
        from botocore.config import Config
    except ImportError:
        raise ConfigError(
            "the S3 store needs boto3, which is not installed.", hint=_INSTALL_HINT
        ) from None
    timeout = _timeout_setting()
    config = Config(retries={"mode": "standard"}, connect_timeout=timeout, read_timeout=timeout)
    params: dict[str, Any] = {"config": config}
    endpoint = _setting("S3_ENDPOINT_URL")
    if endpoint:
        params["endpoint_url"] = endpoint
    verify = _setting("S3_VERIFY_CERTIFICATE")
    if verify:
        params["verify"] = False if str(verify).lower() in {"false", "0", "no"} else verify
    session = botocore.session.get_session()  # a new session, not shared with anyone
    # Listing 10,000 gates returns ~25,000 LastModified timestamps, which botocore parses
    # with dateutil (~100 us each: most of a listing's client time). The same datetimes,
    # from the standard library.
    session.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=_parse_timestamp
    )
    return boto3.session.Session(botocore_session=session).client("s3", **params)


def _parse_timestamp(value: Any) -> Any:
    """botocore's timestamp parser, with a fast path for S3's ``2026-11-25T10:53:10.000Z``."""
    if isinstance(value, str) and value.endswith("Z"):
        try:
            return datetime.fromisoformat(value[:-1] + "+00:00")
        except ValueError:
            pass
    from botocore.utils import parse_timestamp

    return parse_timestamp(value)


def _timeout_setting() -> float:
    """``METAFLOW_HITL_S3_TIMEOUT``: seconds to connect and to wait for each answer."""
    return seconds_setting("METAFLOW_HITL_S3_TIMEOUT", _TIMEOUT_SECONDS)


def _nonce_of(data: bytes, kind: type[_R]) -> str | None:
    try:
        return decode_record(data, kind).nonce
    except RecordError:  # not a record of ours: not our write
        return None


def _code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _status(exc: Any) -> int | None:
    meta = getattr(exc, "response", {}).get("ResponseMetadata", {})
    status = meta.get("HTTPStatusCode")
    return int(status) if status is not None else None


def _retry_attempts(exc: Any) -> int:
    meta = getattr(exc, "response", {}).get("ResponseMetadata", {})
    return int(meta.get("RetryAttempts", 0) or 0)


_HINTS = {
    "NoSuchBucket": "Create the bucket or fix the store URL (METAFLOW_HITL_STORE / --store).",
    "AccessDenied": "Grant s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket "
    "on the store prefix to the credentials in use.",
    "InvalidAccessKeyId": "Check the AWS credentials in use (AWS_PROFILE, AWS_ACCESS_KEY_ID...).",
    "SignatureDoesNotMatch": "Check the AWS credentials in use "
    "(AWS_PROFILE, AWS_ACCESS_KEY_ID...).",
    "ExpiredToken": "Refresh the AWS credentials (e.g. aws sso login).",
}


def _client_error(what: str, url: str, exc: Any) -> StoreError:
    """A :class:`StoreError` for an S3 error response (code and message, never credentials)."""
    code = _code(exc) or "unknown"
    status = _status(exc)
    message = str(exc.response.get("Error", {}).get("Message", "")).strip()
    detail = code + (f" (HTTP {status})" if status else "") + (f": {message}" if message else "")
    hint = _HINTS.get(code)
    if hint is None and (code in _TRANSIENT or (status or 0) >= 500):
        hint = _RETRY_HINT
    return StoreError(f"cannot {what} {url}: S3 said {detail}", hint=hint)


def _transport_error(what: str, url: str, exc: Exception) -> StoreError:
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return StoreError(
            f"cannot {what} {url}: no usable AWS credentials ({type(exc).__name__}).",
            hint="Configure the standard AWS credential chain (AWS_PROFILE, "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, an instance or pod role).",
        )
    return StoreError(
        f"cannot {what} {url}: {type(exc).__name__}: {exc}",
        hint="Check the S3 endpoint (METAFLOW_S3_ENDPOINT_URL) and the network.",
    )
