"""Batched writes to the store (interfaces.md §2, capture-and-http.md §3).

Rows are buffered per table. A table whose buffer reaches ``batch_rows`` (1000) rows — or, for bodies,
``batch_body_bytes`` — is written on its own; ``flush()`` writes every table (the engine flushes on its
own schedule: at drain, and periodically in live runs). Each batch becomes one Arrow table inserted with
``INSERT … SELECT`` from it. Measured on the 92-column ``calls`` table (DuckDB 2.0, 2 cores):
``executemany`` manages 15–120 rows/s (one statement per row); the Arrow path ~10,000 rows/s end to end
(row conversion + Arrow build + insert).

Why per table: a statement costs about 10 ms whatever its size (DuckDB's per-column append and commit
work: 5 ms for one row into ``calls``), so the number of statements matters more than the rows. Bodies
fill up three times faster than calls; flushing every table whenever one was full wrote a few hundred
calls, turns and sessions per statement instead of a thousand (36 statements for 1,000 calls, now 16).
Tables are independent (no foreign keys). Within one table the order is kept: its pending inserts go
out before its replaces, and both before its updates; updates may also wait for a later batch (see
``_take``), never go earlier.

**Writer thread** (``background=True``, the engine's setting; capture-and-http.md §3): full batches are
handed to a thread that builds the Arrow tables and runs the statements, so DuckDB's work (it releases
the GIL: insert, WAL, checkpoints) overlaps the assembler instead of stalling it. At most
``_INFLIGHT_BATCHES`` batches wait for the thread (memory bound; the assembler then waits).
``flush()`` hands over what is buffered and waits until everything is written, so after it returns the
rows are in the database, as with the synchronous writer. The thread counts into its own ``Counter``,
merged into the caller's counters by the caller's thread, so no counter is written from two threads.

Existing primary keys are skipped, so re-ingesting a capture adds nothing. A plain INSERT is tried
first (half the cost of ``INSERT OR IGNORE``); a key clash aborts that statement without writing
anything and the batch is redone with ``OR IGNORE``, which then stays in use for that table until a
batch comes through without duplicates. Skipped rows are counted as ``duplicates_skipped`` from the
inserted-row count DuckDB returns.

A failed batch is counted (``flush_errors``) and retried once, row by row, so one bad row cannot lose
the other 999; rows that fail their retry are dropped and counted (``store_rows_failed``). The engine
keeps running either way.

One ``StoreWriter`` is fed from one thread (the assembler's); it writes on its own cursor, so readers
on other cursors are unaffected.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from heron_core.bodies import BodyRow
from heron_core.records import Call, Exchange
from heron_core.store.db import Store
from heron_core.store.rows import call_row, dump_json, exchange_row, mapping_row
from heron_core.store.schema import JSON, TABLES, VARCHAR_LIST, Table, arrow_schema, quote

log = logging.getLogger("heron.store")

BATCH_ROWS = 1000
BATCH_BODY_BYTES = 32 * 1024 * 1024
"""Bodies are large (up to the 4 MiB cap each): flush when this many compressed bytes are pending."""
BATCH_CALL_TEXT = 4 * 1024 * 1024
"""Calls carry the latest user message (``user_text``: 14 KB on average for an agent, up to the body
cap): write them when this many characters of it are pending. DuckDB holds several copies of a batch
while inserting it; 1,000 agent calls per statement raised the peak RSS by ~80 MB."""

_BATCH_VIEW = "__heron_batch"
_INFLIGHT_BATCHES = 2
"""Batches handed to the writer thread and not yet written (each ≤ 1000 rows of a table, or ≤ 32 MiB
of bodies): enough to keep the thread busy while the assembler fills the next one."""
_GAUGES = ("flush_ms_p95", "db_bytes")  # counters that are set, not added

Op = tuple  # ('insert' | 'replace', table, rows) or ('update', table, columns, {key: values})


class StoreWriter:
    """Buffers rows per table and writes them in batches that skip existing primary keys."""

    def __init__(
        self,
        store: Store,
        counters: Counter,
        batch_rows: int = BATCH_ROWS,
        batch_body_bytes: int = BATCH_BODY_BYTES,
        background: bool = False,
    ) -> None:
        if store.read_only:
            raise ValueError("StoreWriter needs a writable store")
        self._store = store
        self._conn = store.cursor()
        self._counters = counters
        self._done: Counter = Counter()  # counted by the writer thread, not yet merged (under _done_lock)
        self._done_lock = threading.Lock()
        self._background = background
        self._thread: _WriterThread | None = None  # started by the first hand-over, stopped by flush()
        self._batch_rows = max(1, batch_rows)
        self._batch_body_bytes = batch_body_bytes
        self._inserts: dict[str, list[tuple]] = {}
        self._replaces: dict[str, dict[tuple, tuple]] = {}
        self._updates: dict[tuple[str, tuple[str, ...]], dict[tuple, list[Any]]] = {}
        self._body_bytes = 0
        self._call_text = 0
        self._flush_ms: deque[float] = deque(maxlen=200)
        self._schemas: dict[str, pa.Schema] = {}
        self._expect_duplicates: dict[str, bool] = {}

    # --- adding rows --------------------------------------------------------------------------------

    def add_exchange(self, ex: Exchange, is_llm: bool, first_token: float | None = None) -> None:
        self._add("exchanges", exchange_row(ex, is_llm, first_token))

    def add_call(self, call: Call) -> None:
        self._call_text += len(call.user_text or "") + len(call.assistant_text or "")
        self._add("calls", call_row(call))
        if self._call_text >= BATCH_CALL_TEXT and "calls" in self._inserts:
            self._send(self._take("calls", updates=False))

    def add_bodies(self, rows: Iterable[BodyRow]) -> None:
        buf = self._inserts.setdefault("bodies", [])
        c = self._counters
        for r in rows:
            buf.append(tuple(r))
            self._body_bytes += r.stored_bytes
            c["body_bytes_stored"] += r.stored_bytes
            if r.truncated:
                c["bodies_capped"] += 1
        if len(buf) >= self._batch_rows or self._body_bytes >= self._batch_body_bytes:
            self._send(self._take("bodies", updates=False))

    def add_rows(
        self, table: str, rows: Iterable[Sequence[Any] | Mapping[str, Any]], replace: bool = False
    ) -> None:
        """Rows for any table: tuples in column order (JSON columns already serialized, as rows.py
        makes them) or dicts keyed by column name (converted by ``rows.mapping_row``).

        ``replace=True`` writes the rows over existing ones with the same key (``ON CONFLICT … DO
        UPDATE``) — for records that are amended after being stored (turns, sessions, insights);
        within one flush the last row per key wins and replaces apply after plain inserts.
        """
        t = _table(table)
        width = len(t.columns)
        converted = []
        for r in rows:
            row = mapping_row(table, r) if isinstance(r, Mapping) else tuple(r)
            if len(row) != width:
                raise ValueError(f"{table} row has {len(row)} values, the table has {width} columns")
            converted.append(row)
        if replace:
            key_idx = [t.index_of(k) for k in t.primary_key]
            buf = self._replaces.setdefault(table, {})
            for row in converted:
                buf[tuple(row[i] for i in key_idx)] = row
            n = len(buf)
        else:
            ins = self._inserts.setdefault(table, [])
            ins.extend(converted)
            n = len(ins)
        if n >= self._batch_rows:
            self._send(self._take(table, updates=False))

    def update_calls(
        self, rows: Iterable[Sequence[Any]], columns: Sequence[str] = ("turn_id", "session_id")
    ) -> None:
        """Fill columns of stored calls: rows are ``(call_id, *values)`` for ``columns``.

        A None value leaves the stored value unchanged (the assembler fills ``turn_id`` — and
        ``session_id`` only for confirmed tentative sessions — without knowing the rest). Updates are
        applied at flush, after the inserts of that flush, so a call added just before its update is
        written first.
        """
        self.update_rows("calls", rows, columns)

    def update_rows(self, table: str, rows: Iterable[Sequence[Any]], columns: Sequence[str]) -> None:
        """Generic form of ``update_calls``: rows are ``(*primary_key, *values)``."""
        t = _table(table)
        columns = tuple(columns)
        bad = [c for c in columns if c not in t.column_names or c in t.primary_key or c in t.unique]
        if bad or not columns:
            raise ValueError(f"cannot update {table} column(s) {bad or '(none)'}")
        nk = len(t.primary_key)
        types = dict(t.columns)
        buf = self._updates.setdefault((table, columns), {})
        for r in rows:
            r = tuple(r)
            if len(r) != nk + len(columns):
                raise ValueError(f"update row for {table} needs {nk} key and {len(columns)} value(s)")
            key, vals = r[:nk], list(r[nk:])
            for i, c in enumerate(columns):
                if vals[i] is not None and types[c] == JSON and not isinstance(vals[i], str):
                    vals[i] = dump_json(vals[i])
                elif vals[i] is not None and types[c] == VARCHAR_LIST:
                    vals[i] = list(vals[i])
            old = buf.get(key)
            if old is not None:  # merge: a later None keeps an earlier pending value
                vals = [v if v is not None else o for v, o in zip(vals, old)]
            buf[key] = vals
        if len(buf) >= self._batch_rows:
            self._send(self._take(table))

    def _add(self, table: str, row: tuple) -> None:
        buf = self._inserts.setdefault(table, [])
        buf.append(row)
        if len(buf) >= self._batch_rows:
            self._send(self._take(table, updates=False))

    @property
    def pending_rows(self) -> int:
        return (
            sum(len(b) for b in self._inserts.values())
            + sum(len(b) for b in self._replaces.values())
            + sum(len(b) for b in self._updates.values())
        )

    # --- writing ------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything buffered (per table: inserts, then replaces, then updates) and wait until it
        is in the database."""
        ops: list[Op] = []
        for table in list(self._inserts) + list(self._replaces) + [t for t, _ in self._updates]:
            ops.extend(self._take(table))
        self._send(ops)
        if self._thread is not None:
            # Stopping (after the queue ran dry) rather than keeping an idle thread means no thread, and
            # no reference to this writer's cursor, outlives the run; the next hand-over starts another.
            self._thread.stop()
            self._thread = None
            self._collect()

    def close(self) -> None:
        """Flush and release the cursor."""
        try:
            self.flush()
        finally:
            self._conn.close()

    def abandon(self, timeout: float = 5.0) -> None:
        """Leave at once (second stop signal): drop the batches not yet started and wait (at most
        ``timeout``) for the statement in progress, so the store is not closed under it."""
        if self._thread is not None:
            self._thread.abandon(timeout)
            self._thread = None
            self._collect()

    # --- handing batches over -----------------------------------------------------------------------

    def _take(self, table: str, updates: bool = True) -> list[Op]:
        """What is buffered for ``table``, in the order it must be written. ``updates=False`` (a full
        insert or replace buffer) leaves its updates buffered: an update may always wait (it only has
        to come after the insert of its row, which goes out now or went out earlier), and most come
        in small numbers — sent with every insert batch they were a third of the statements."""
        ops: list[Op] = []
        rows = self._inserts.pop(table, None)
        if rows:
            ops.append(("insert", table, rows))
            if table == "bodies":
                self._body_bytes = 0
            elif table == "calls":
                self._call_text = 0
        byk = self._replaces.pop(table, None)
        if byk:
            ops.append(("replace", table, list(byk.values())))
        for key in [k for k in self._updates if k[0] == table] if updates else ():
            upd = self._updates.pop(key)
            if upd:
                ops.append(("update", table, key[1], upd))
        return ops

    def _send(self, ops: list[Op]) -> None:
        if not ops:
            return
        if not self._background:
            self._write_ops(ops)
            return
        if self._thread is None:
            self._thread = _WriterThread(self._write_ops)
        self._thread.submit(ops)  # waits while _INFLIGHT_BATCHES are queued
        self._collect()

    def _collect(self) -> None:
        """Merge what the writer thread counted into the caller's counters (caller's thread only)."""
        if not self._background:
            return
        with self._done_lock:
            done, self._done = self._done, Counter()
        _merge(self._counters, done)

    def _write_ops(self, ops: list[Op]) -> None:
        """Write one batch (in the writer thread when there is one)."""
        t0 = time.perf_counter()
        counts: Counter = Counter()
        for op in ops:
            if op[0] == "update":
                self._update(TABLES[op[1]], op[2], op[3], counts)
            else:
                self._write(TABLES[op[1]], op[2], op[0] == "replace", counts)
        self._flush_ms.append((time.perf_counter() - t0) * 1000)
        ordered = sorted(self._flush_ms)
        counts["flushes"] += 1
        counts["flush_ms_p95"] = round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))])
        if self._store.path is not None:
            counts["db_bytes"] = _file_size(self._store.path) + _file_size(self._store.path + ".wal")
        if not self._background:
            _merge(self._counters, counts)
        else:
            with self._done_lock:
                _merge(self._done, counts)

    def _write(self, t: Table, rows: list[tuple], replace: bool, counts: Counter) -> None:
        try:
            inserted = self._exec_insert(t, rows, replace)
        except Exception as e:  # noqa: BLE001 - any failure: count, retry once per row, never crash
            counts["flush_errors"] += 1
            log.warning("store: writing %d %s row(s) failed (%s); retrying row by row", len(rows), t.name, e)
            inserted = 0
            failed = 0
            for row in rows:
                try:
                    inserted += self._exec_insert(t, [row], replace)
                except Exception as e2:  # noqa: BLE001
                    failed += 1
                    last = e2
            if failed:
                counts["store_rows_failed"] += failed
                log.error("store: %d %s row(s) dropped: %s", failed, t.name, last)
            ok = len(rows) - failed
        else:
            ok = len(rows)
        counts[f"rows_written.{t.name}"] += inserted
        if not replace:
            counts["duplicates_skipped"] += ok - inserted

    def _exec_insert(self, t: Table, rows: list[tuple], replace: bool) -> int:
        """One batch → one statement; returns the number of rows inserted (or upserted)."""
        batch = self._arrow(t, rows)
        cols = ", ".join(quote(c) for c in t.column_names)
        if replace:
            keys = ", ".join(quote(k) for k in t.primary_key)
            sets = ", ".join(
                f"{quote(c)} = EXCLUDED.{quote(c)}"
                for c in t.column_names
                if c not in t.primary_key and c not in t.unique
            )
            sql = (
                f"INSERT INTO {quote(t.name)} ({cols}) SELECT {cols} FROM {_BATCH_VIEW} "
                f"ON CONFLICT ({keys}) DO UPDATE SET {sets}"
            )
            return self._run(sql, batch)
        into = f"INTO {quote(t.name)} ({cols}) SELECT {cols} FROM {_BATCH_VIEW}"
        if not self._expect_duplicates.get(t.name):
            # Fast path: a plain INSERT costs about half of INSERT OR IGNORE (measured). A key clash
            # aborts the whole statement (nothing is written) and the batch goes the OR IGNORE way.
            try:
                return self._run("INSERT " + into, batch)
            except duckdb.ConstraintException:
                self._expect_duplicates[t.name] = True
        inserted = self._run("INSERT OR IGNORE " + into, batch)
        if inserted == len(rows):  # duplicates stopped (re-ingested part is over): fast path again
            self._expect_duplicates[t.name] = False
        return inserted

    def _run(self, sql: str, batch: pa.Table) -> int:
        self._conn.register(_BATCH_VIEW, batch)
        try:
            res = self._conn.execute(sql).fetchall()
        finally:
            self._conn.unregister(_BATCH_VIEW)
        return int(res[0][0]) if res else 0

    def _update(self, t: Table, columns: tuple[str, ...], byk: dict[tuple, list[Any]], counts: Counter) -> None:
        keys = t.primary_key
        sub = Table("update", tuple((c, typ) for c, typ in t.columns if c in keys or c in columns), keys)
        # rows in sub's column order (table order), from (key..., values...)
        pos = {c: i for i, c in enumerate(keys)}
        pos.update({c: len(keys) + i for i, c in enumerate(columns)})
        rows = [tuple((k + tuple(v))[pos[c]] for c in sub.column_names) for k, v in byk.items()]
        sets = ", ".join(f"{quote(c)} = COALESCE(u.{quote(c)}, {quote(t.name)}.{quote(c)})" for c in columns)
        where = " AND ".join(f"{quote(t.name)}.{quote(k)} = u.{quote(k)}" for k in keys)
        sql = f"UPDATE {quote(t.name)} SET {sets} FROM {_BATCH_VIEW} AS u WHERE {where}"
        for attempt in (1, 2):
            try:
                self._run(sql, _arrow_table(arrow_schema(sub), rows))
                return
            except Exception as e:  # noqa: BLE001
                counts["flush_errors"] += 1
                if attempt == 2:
                    counts["store_rows_failed"] += len(rows)
                    log.error("store: %d %s update(s) dropped: %s", len(rows), t.name, e)

    def _arrow(self, t: Table, rows: list[tuple]) -> pa.Table:
        schema = self._schemas.get(t.name)
        if schema is None:
            schema = self._schemas[t.name] = arrow_schema(t)
        return _arrow_table(schema, rows)


def _merge(into: Counter, c: Counter) -> None:
    for k, v in c.items():
        if k in _GAUGES:
            into[k] = v
        else:
            into[k] += v


class _WriterThread:
    """The thread that writes handed-over batches, in order (see the module doc)."""

    def __init__(self, write: Any) -> None:
        self._write = write
        self._q: queue.Queue = queue.Queue(maxsize=_INFLIGHT_BATCHES)
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="heron-store-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            ops = self._q.get()
            try:
                if ops is None:
                    return
                if not self._abandoned:
                    self._write(ops)
            except Exception:  # _write counts its own failures; this would be a bug
                log.exception("store: the writer thread failed on a batch")
            finally:
                self._q.task_done()

    def submit(self, ops: list[Op]) -> None:
        self._q.put(ops)

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join()

    def abandon(self, timeout: float) -> None:
        self._abandoned = True
        try:
            while True:
                self._q.get_nowait()
                self._q.task_done()
        except queue.Empty:
            pass
        self._q.put(None)
        self._thread.join(timeout)


def _arrow_table(schema: pa.Schema, rows: list[tuple]) -> pa.Table:
    """Row tuples → Arrow table, one typed array per column (transposing in C via ``zip``)."""
    columns = list(zip(*rows))
    arrays = [pa.array(col, type=f.type) for col, f in zip(columns, schema)]
    return pa.Table.from_arrays(arrays, schema=schema)


def _table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown table {name!r}") from None


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
