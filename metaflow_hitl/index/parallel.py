"""Read many gates at once: the store reads behind ``list`` and ``audit``, in threads.

Each gate costs a few store reads -- on S3 a few HTTP round trips (request, votes, decision) --
so reading them one after another makes ``list --all`` and ``audit`` pay every round trip in
turn. :func:`read_all` keeps :data:`READERS` reads in flight instead. Sharing a store between
threads is safe: the local store's reads only open files, and the S3 store's boto3 client is
thread-safe (the store makes it once, under a lock). :data:`READERS` matches botocore's default
connection pool (10), so no connection is opened and thrown away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["READERS", "read_all"]

#: Reads in flight at once.
READERS = 10

_T = TypeVar("_T")
_R = TypeVar("_R")


def read_all(read: Callable[[_T], _R], items: Iterable[_T], *, parallel: bool = True) -> list[_R]:
    """``[read(item) for item in items]``, with up to :data:`READERS` reads at a time.

    ``parallel=False`` reads one after another: for the local store, whose reads are CPU-bound
    under the GIL, threads only add overhead (``audit`` at 10,000 gates: 4.0 s in threads,
    2.0 s in turn). Results keep the order of ``items``; the first exception raised by a read
    is raised here.
    """
    todo = list(items)
    if len(todo) < 2 or not parallel:
        return [read(item) for item in todo]
    with ThreadPoolExecutor(max_workers=min(READERS, len(todo))) as pool:
        return list(pool.map(read, todo))
