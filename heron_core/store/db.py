"""Opening the heron DuckDB store (interfaces.md §2).

``open_store`` turns every way opening can fail into a ``StoreError`` with a one-line message the CLI
prints as ``heron: error: …`` (exit 1): not a database, not a *heron* database, a newer schema, or a
file whose write lock another process holds (DuckDB allows one writing process; that process serves
the API, so the user is pointed there).

``path=None`` is the ``--no-retention`` mode: an in-memory database whose temporary directory is
disabled at connect time, so DuckDB cannot spill to disk — a query that would spill fails with an
out-of-memory error instead of writing a file. The redaction salt is then random per run.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass, field

import duckdb

from heron_core.store import schema


class StoreError(Exception):
    """Opening or using the store failed; ``str(err)`` is one line, fit for ``heron: error: …``."""


_SALT_BYTES = 16
_LOCK_RE = re.compile(r"\(PID (\d+)\)")


@dataclass(slots=True)
class Store:
    """An open store: the DuckDB connection and what ``meta`` says about the database.

    The connection belongs to the opening thread; other threads (writer, API, TUI) take their own
    ``cursor()`` of it, which is how DuckDB shares one database inside one process.
    """

    conn: duckdb.DuckDBPyConnection
    path: str | None
    read_only: bool
    salt: bytes
    schema_version: int
    created_at: float | None
    redaction: str | None  # 'on' | 'off' | None when never recorded
    _closed: bool = field(default=False, repr=False)

    @property
    def in_memory(self) -> bool:
        return self.path is None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor (own transaction context) on the shared database."""
        return self.conn.cursor()

    def meta(self) -> dict[str, str]:
        return dict(self.conn.cursor().execute("SELECT key, value FROM meta").fetchall())

    def set_redaction(self, enabled: bool) -> None:
        """Record redaction on/off. ``off`` is sticky: once a run stored unredacted data, the database
        holds secrets whatever later runs do, and ``meta.redaction`` must keep saying so."""
        if self.read_only:
            return
        value = "on" if enabled else "off"
        if self.redaction == "off" or self.redaction == value:
            return
        self.conn.cursor().execute("INSERT OR REPLACE INTO meta VALUES ('redaction', ?)", [value])
        self.redaction = value

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(
    path: str | os.PathLike[str] | None, read_only: bool = False, redaction: bool | None = None
) -> Store:
    """Open (creating if needed) a heron database, or an in-memory one for ``path=None``.

    ``redaction`` (the run's setting, None = don't record) is written to ``meta.redaction``.
    Raises ``StoreError`` with a one-line message on any failure.
    """
    if path is None:
        if read_only:
            raise StoreError("an in-memory database cannot be opened read-only")
        conn = duckdb.connect(":memory:", config={"temp_directory": ""})
        return _init(conn, None, read_only=False, redaction=redaction)

    path = os.fspath(path)
    if read_only and not os.path.exists(path):
        raise StoreError(f"{path}: no such database")
    if os.path.isdir(path):
        raise StoreError(f"{path} is a directory, not a heron database")
    try:
        conn = duckdb.connect(path, read_only=read_only)
    except duckdb.Error as e:
        raise _open_error(path, e) from e
    try:
        return _init(conn, path, read_only=read_only, redaction=redaction)
    except BaseException:
        conn.close()
        raise


def _open_error(path: str, e: Exception) -> StoreError:
    msg = str(e)
    if "Could not set lock" in msg or "Conflicting lock" in msg:
        m = _LOCK_RE.search(msg)
        who = f" (PID {m.group(1)})" if m else ""
        return StoreError(
            f"{path} is in use by another process{who}; use that process's API instead of opening the file"
        )
    if "not a valid DuckDB database" in msg or "Unknown storage version" in msg or "file header" in msg:
        return StoreError(f"{path} is not a heron database")
    return StoreError(f"cannot open {path}: {_one_line(msg)}")


def _one_line(msg: str) -> str:
    return " ".join(msg.split())


def _tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = 'main'"
    ).fetchall()
    return {r[0] for r in rows}


def _init(
    conn: duckdb.DuckDBPyConnection, path: str | None, read_only: bool, redaction: bool | None
) -> Store:
    """Create the schema on a fresh database, or validate (and migrate) an existing one."""
    where = path or "in-memory database"
    tables = _tables(conn)
    if not tables:
        if read_only:
            raise StoreError(f"{where} is not a heron database (it is empty)")
        _create(conn)
    elif "meta" not in tables:
        raise StoreError(f"{where} is not a heron database")

    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except duckdb.Error as e:
        raise StoreError(f"{where} is not a heron database") from e
    try:
        version = int(meta["schema_version"])
    except (KeyError, ValueError) as e:
        raise StoreError(f"{where} is not a heron database (no schema version)") from e

    if version > schema.SCHEMA_VERSION:
        raise StoreError(
            f"{where} has schema version {version}, newer than this heron supports "
            f"({schema.SCHEMA_VERSION}); upgrade heron"
        )
    if version < schema.SCHEMA_VERSION:
        if read_only:
            raise StoreError(
                f"{where} has old schema version {version}; open it once without read-only to migrate it"
            )
        try:
            version = schema.migrate(conn, version)
        except (LookupError, duckdb.Error) as e:
            raise StoreError(f"{where}: cannot migrate schema version {version}: {_one_line(str(e))}") from e
        schema.create_schema(conn)  # tables added by later versions

    salt_hex = meta.get("redaction_salt")
    if salt_hex is None:
        if read_only:
            raise StoreError(f"{where} is not a heron database (no redaction salt)")
        salt_hex = secrets.token_hex(_SALT_BYTES)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('redaction_salt', ?)", [salt_hex])
    try:
        salt = bytes.fromhex(salt_hex)
    except ValueError as e:
        raise StoreError(f"{where}: corrupt redaction salt in meta") from e

    created = meta.get("created_at")
    store = Store(
        conn=conn,
        path=path,
        read_only=read_only,
        salt=salt,
        schema_version=version,
        created_at=float(created) if created else None,
        redaction=meta.get("redaction"),
    )
    if redaction is not None:
        store.set_redaction(redaction)
    return store


def _create(conn: duckdb.DuckDBPyConnection) -> None:
    """Fresh database: all tables and the initial ``meta`` rows, atomically."""
    conn.execute("BEGIN TRANSACTION")
    try:
        schema.create_schema(conn)
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [
                ("schema_version", str(schema.SCHEMA_VERSION)),
                ("created_at", repr(time.time())),
                ("redaction_salt", secrets.token_hex(_SALT_BYTES)),
            ],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
