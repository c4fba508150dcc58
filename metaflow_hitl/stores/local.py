"""An approval store on the local filesystem, under Metaflow's local datastore root.

Layout (``<root>`` is ``<datastore root>/_hitl``, e.g. ``./.metaflow/_hitl``)::

    <root>/v1/gates/<flow>/<run>/<step>/request.json
    <root>/v1/gates/<flow>/<run>/<step>/decision.json
    <root>/v1/gates/<flow>/<run>/<step>/votes/<time>-<nonce>.json
    <root>/v1/gates/<flow>/<run>/<step>/reminders/<number>.json
    <root>/v1/gates/<flow>/<run>/<step>/publication.json
    <root>/v1/gates/<flow>/<run>/<step>/page-changes/<time>-<nonce>.json
    <root>/v1/gates/<flow>/<run>/<step>/waiter.json    a local waiting task's heartbeat
    <root>/v1/pending/<flow>/<run>/<step>          empty marker while undecided
    <root>/v1/index/decided/<sha256>.json.gz       index segments (metaflow_hitl.index.segments)

Records are created, never rewritten (but the heartbeat ``waiter.json``, replaced with
``os.replace``, which is atomic too): each is written to a temporary file in the same
directory, flushed to disk, then ``os.link``-ed to its final name. ``link`` fails if the name
exists, so creation is atomic and exactly one of any number of racing writers wins, and a
reader never sees a half-written file. Listing pending gates reads only the ``pending`` tree.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from metaflow_hitl.errors import GateRefError, StoreError
from metaflow_hitl.gate_id import GateId, is_flow_name
from metaflow_hitl.index.segments import RECORD_NAME as _RECORD_NAME
from metaflow_hitl.index.segments import check_record_name, check_segment_name
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
    new_nonce,
)
from metaflow_hitl.timestamps import format_ts

__all__ = ["LocalApprovalStore"]

_LAYOUT = "v1"


class LocalApprovalStore:
    """The :class:`~metaflow_hitl.ports.ApprovalStore` for local runs.

    Parameters
    ----------
    root
        The store directory (``<datastore root>/_hitl``); created on first write.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.location = str(self.root)
        self.is_remote = False

    def __repr__(self) -> str:
        return f"LocalApprovalStore({self.location!r})"

    # -- paths ------------------------------------------------------------------------------
    def _gate_dir(self, gate_id: GateId) -> Path:
        return self.root / _LAYOUT / "gates" / gate_id.flow / gate_id.run_id / gate_id.step

    def _pending(self, gate_id: GateId) -> Path:
        return self.root / _LAYOUT / "pending" / gate_id.flow / gate_id.run_id / gate_id.step

    def _index_dir(self) -> Path:
        return self.root / _LAYOUT / "index" / "decided"

    # -- primitives -------------------------------------------------------------------------
    def _create(self, path: Path, data: bytes) -> bool:
        """Create ``path`` with ``data`` unless it exists; True if this call created it."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f".tmp-{path.name}-{new_nonce()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    return False
                self._sync_dir(path.parent)
                return True
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from exc

    @staticmethod
    def _sync_dir(path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # pragma: no cover - platforms without directory fds
            return
        try:
            os.fsync(fd)
        except OSError:  # pragma: no cover
            pass
        finally:
            os.close(fd)

    def _read(self, path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc

    # -- ApprovalStore ----------------------------------------------------------------------
    def create_request(self, request: Request) -> bool:
        created = self._create(
            self._gate_dir(request.gate_id) / "request.json", encode_record(request)
        )
        if created:
            marker = self._pending(request.gate_id)
            try:
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch(exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot write {marker}: {exc.strerror or exc}") from exc
        return created

    def get_request(self, gate_id: GateId) -> Request | None:
        path = self._gate_dir(gate_id) / "request.json"
        data = self._read(path)
        return None if data is None else decode_record(data, Request, where=str(path))

    def add_vote(self, vote: Vote) -> None:
        name = f"{format_ts(vote.actor.at)}-{vote.nonce}.json".replace(":", "")
        self._create(self._gate_dir(vote.gate_id) / "votes" / name, encode_record(vote))

    def list_votes(self, gate_id: GateId) -> list[Vote]:
        folder = self._gate_dir(gate_id) / "votes"
        try:
            names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
        except FileNotFoundError:
            return []
        votes = []
        for name in names:
            data = self._read(folder / name)
            if data is not None:
                votes.append(decode_record(data, Vote, where=str(folder / name)))
        return votes

    def create_decision(self, decision: Decision) -> Decision:
        path = self._gate_dir(decision.gate_id) / "decision.json"
        if self._create(path, encode_record(decision)):
            with contextlib.suppress(FileNotFoundError):
                self._pending(decision.gate_id).unlink()
            return decision
        winner = self.get_decision(decision.gate_id)
        if winner is None:  # pragma: no cover - link said it exists
            raise StoreError(f"{path} exists but cannot be read back")
        return winner

    def get_decision(self, gate_id: GateId) -> Decision | None:
        path = self._gate_dir(gate_id) / "decision.json"
        data = self._read(path)
        return None if data is None else decode_record(data, Decision, where=str(path))

    def create_reminder(self, reminder: Reminder) -> bool:
        path = self._gate_dir(reminder.gate_id) / "reminders" / f"{int(reminder.number)}.json"
        return self._create(path, encode_record(reminder))

    def list_reminders(self, gate_id: GateId) -> list[Reminder]:
        folder = self._gate_dir(gate_id) / "reminders"
        reminders = []
        for name in _listdir(folder):
            data = self._read(folder / name)
            if data is not None:
                reminders.append(decode_record(data, Reminder, where=str(folder / name)))
        return sorted(reminders, key=lambda r: r.number)

    def create_publication(self, publication: Publication) -> bool:
        path = self._gate_dir(publication.gate_id) / "publication.json"
        return self._create(path, encode_record(publication))

    def get_publication(self, gate_id: GateId) -> Publication | None:
        path = self._gate_dir(gate_id) / "publication.json"
        data = self._read(path)
        return None if data is None else decode_record(data, Publication, where=str(path))

    def add_page_change(self, change: PageChange) -> None:
        name = f"{format_ts(change.seen_at)}-{change.nonce}.json".replace(":", "")
        self._create(self._gate_dir(change.gate_id) / "page-changes" / name, encode_record(change))

    def put_waiter(self, waiter: Waiter) -> None:
        path = self._gate_dir(waiter.gate_id) / "waiter.json"
        tmp = path.parent / f".tmp-{path.name}-{new_nonce()}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(encode_record(waiter))
            os.replace(tmp, path)  # atomic: a reader sees the old beat or the new one
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"could not write {path}: {exc.strerror or exc}") from None

    def get_waiter(self, gate_id: GateId) -> Waiter | None:
        path = self._gate_dir(gate_id) / "waiter.json"
        data = self._read(path)
        return None if data is None else decode_record(data, Waiter, where=str(path))

    def list_page_changes(self, gate_id: GateId) -> list[PageChange]:
        folder = self._gate_dir(gate_id) / "page-changes"
        changes = []
        for name in _listdir(folder):
            data = self._read(folder / name)
            if data is not None:
                changes.append(decode_record(data, PageChange, where=str(folder / name)))
        return sorted(changes, key=lambda c: c.seen_at)

    def list_gates(self, *, pending_only: bool, flow: str | None = None) -> Iterator[GateId]:
        base = self.root / _LAYOUT / ("pending" if pending_only else "gates")
        if flow is not None and not is_flow_name(flow):
            return
        flows = [flow] if flow else _listdir(base)
        for flow_name in flows:
            for run_id in _listdir(base / flow_name):
                for step in _listdir(base / flow_name / run_id):
                    try:
                        gate_id = GateId(flow_name, run_id, step)
                    except GateRefError:
                        continue  # not ours (a stray file); never a path trick
                    if pending_only and (self._gate_dir(gate_id) / "decision.json").exists():
                        continue  # decided; its marker is being removed
                    if not pending_only and not (self._gate_dir(gate_id) / "request.json").exists():
                        continue  # a writer died before its request landed: no gate yet
                    yield gate_id

    def scan_gates(self, flow: str | None = None) -> dict[GateId, dict[str, str]]:
        # Plain os calls on str paths: pathlib costs more than the listing at 10,000 gates.
        # scandir reports each entry's inode without a stat; a record is only ever created
        # by link(2), so a replaced record has another inode.
        base = os.path.join(self.root, _LAYOUT, "gates")
        if flow is not None and not is_flow_name(flow):
            return {}
        out: dict[GateId, dict[str, str]] = {}
        for flow_name in [flow] if flow else _listdir(base):
            flow_dir = os.path.join(base, flow_name)
            for run_id in _listdir(flow_dir):
                run_dir = os.path.join(flow_dir, run_id)
                for step in _listdir(run_dir):
                    try:
                        gate_id = GateId(flow_name, run_id, step)
                    except GateRefError:
                        continue  # not ours (a stray file); never a path trick
                    tags = _tags(os.path.join(run_dir, step))
                    if "request.json" in tags:  # else a writer died before its request
                        out[gate_id] = tags
        return out

    def read_record(self, gate_id: GateId, name: str) -> bytes | None:
        return self._read(self._gate_dir(gate_id) / check_record_name(name))

    def list_index_segments(self) -> list[str]:
        return [n for n in _listdir(self._index_dir()) if _is_segment(n)]

    def get_index_segment(self, name: str) -> bytes | None:
        return self._read(self._index_dir() / check_segment_name(name))

    def create_index_segment(self, name: str, data: bytes) -> bool:
        return self._create(self._index_dir() / check_segment_name(name), data)

    def delete_index_segment(self, name: str) -> None:
        path = self._index_dir() / check_segment_name(name)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StoreError(f"cannot delete {path}: {exc.strerror or exc}") from exc


def _tags(gate_dir: str) -> dict[str, str]:
    """A gate folder's records (``request.json``, ``decision.json``, ``votes/<file>``) and
    their inode numbers."""
    tags: dict[str, str] = {}
    try:
        with os.scandir(gate_dir) as entries:
            for entry in entries:
                if entry.name in ("request.json", "decision.json"):
                    tags[entry.name] = str(entry.inode())
                elif entry.name == "votes":
                    tags.update(_vote_tags(entry.path))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        raise StoreError(f"cannot list {gate_dir}: {exc.strerror or exc}") from exc
    return tags


def _vote_tags(votes_dir: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    try:
        with os.scandir(votes_dir) as votes:
            for vote in votes:
                name = "votes/" + vote.name
                if _RECORD_NAME.fullmatch(name):  # not temporary files, not strays
                    tags[name] = str(vote.inode())
    except (FileNotFoundError, NotADirectoryError):
        return {}  # no votes (a stray file named votes): the gate itself is still listed
    return tags


def _is_segment(name: str) -> bool:
    try:
        check_segment_name(name)
    except ValueError:
        return False
    return True


def _listdir(path: Path | str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(path) if not n.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise StoreError(f"cannot list {path}: {exc.strerror or exc}") from exc
