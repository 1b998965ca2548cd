"""Metric results reused while the store is unchanged (a dashboard refreshing every 2 s on a finished or
idle store should not rescan a million calls each time).

**When is the store unchanged?** DuckDB appends every committed write to the write-ahead log (fsync at
commit) and a checkpoint rewrites the database file and truncates the log, so the size and mtime of the
database file and of its ``.wal`` change with every commit — whichever process, cursor or code path
wrote. That pair of ``stat`` results (a few µs) is the store's *generation*; a result is reused only if it
was computed under the current one, and stored only if the generation did not move while it was being
computed. Size as well as mtime matters: mtimes can be as coarse as a kernel tick, but the log only grows
between checkpoints. A commit reaches the log (and fsyncs it) just before it becomes visible to readers,
so a result computed right then could carry the new generation but the old data: results are not stored
while the newest file change is younger than ``SETTLE_S``. An in-memory store has no files and no such
signal: nothing is cached for it.

The cache is an object owned by whoever serves the results (the API context), never module state.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
Generation = tuple[int, ...]
SETTLE_S = 0.2
"""A generation younger than this (newest mtime) may belong to a commit not yet visible: not stored."""


def store_generation(path: str | None) -> Generation | None:
    """``(size, mtime_ns)`` of the database file and of its WAL (``-1, -1`` when absent); None in memory."""
    if path is None:
        return None
    out: list[int] = []
    for p in (path, path + ".wal"):
        try:
            st = os.stat(p)
            out += [st.st_size, st.st_mtime_ns]
        except OSError:
            out += [-1, -1]
    return tuple(out)


class QueryCache:
    """A bounded LRU of results keyed by the caller's key, each valid for one store generation.

    Values are shared between callers: store only results nobody mutates (the API caches its final,
    JSON-ready objects).
    """

    def __init__(self, path: str | None, max_entries: int = 64,
                 generation: Callable[[str | None], Generation | None] = store_generation) -> None:
        self._path = path
        self._max = max(1, max_entries)
        self._generation = generation
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[Generation, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached result for ``key`` if computed under the current generation, else ``compute()``."""
        gen = self._generation(self._path)
        if gen is None:
            return compute()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == gen:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[1]
            self.misses += 1
        value = compute()
        settled = time.time_ns() - max(gen[1::2]) > SETTLE_S * 1e9
        if settled and self._generation(self._path) == gen:  # nothing committed meanwhile
            with self._lock:
                self._entries[key] = (gen, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
