"""Shared helpers of the parallel-engine tests: run the engine on inputs, dump a store as sorted JSON."""

from __future__ import annotations

import os
import socket
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from heron_core.capture.source import source_id_for
from heron_core.config import Config
from heron_core.engine import Engine
from heron_core.store.db import open_store
from heron_core.store.schema import TABLES

CAPTURES = sorted(str(p) for p in (ROOT / "testdata" / "captures").glob("*.pcap"))
SALT = b"heron-parallel-test-salt"
SKIP_TABLES = {"runs", "meta"}
# Counters that legitimately differ between process layouts: gauges of one process, per-process
# bookkeeping, and the out-of-order total that is per worker.
VOLATILE_COUNTERS = {"flush_ms_p95", "db_bytes", "internal_errors"}


def _default(o: Any) -> Any:
    if isinstance(o, (bytes, bytearray, memoryview)):
        return bytes(o).hex()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    return str(o)


def dump_store(conn: Any) -> dict[str, list[str]]:
    """Every table but runs/meta as a sorted list of JSON rows (column names included)."""
    out: dict[str, list[str]] = {}
    for name in TABLES:
        if name in SKIP_TABLES:
            continue
        cur = conn.execute(f'SELECT * FROM "{name}"')
        cols = [d[0] for d in cur.description]
        rows = [orjson.dumps(dict(zip(cols, r)), default=_default, option=orjson.OPT_SORT_KEYS).decode()
                for r in cur.fetchall()]
        out[name] = sorted(rows)
    return out


def run_engine(paths: list[str], workers: int, cfg: Config | None = None) -> tuple[dict[str, list[str]], Counter, Any]:
    """Ingest ``paths`` (each its own source) into an in-memory store; returns (dump, counters, result)."""
    store = open_store(None)
    try:
        engine = Engine(store, cfg or Config(), salt=SALT, workers=workers)
        result = engine.ingest(list(paths), source_id_for(paths))
        return dump_store(store.conn), Counter(engine.counters), result
    finally:
        store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
