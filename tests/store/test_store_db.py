"""Opening the store: in-memory without files, salt persistence, locked and foreign files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from store_helpers import make_call

from heron_core.store.db import StoreError, open_store
from heron_core.store.writer import StoreWriter

REPO = Path(__file__).resolve().parents[2]


def _all_files(*roots: Path) -> list[str]:
    return sorted(str(p) for r in roots for p in r.rglob("*"))


_SPILL_WORKLOAD = (
    "SET memory_limit='16MB'; SET threads=1; "
    "CREATE TABLE big AS SELECT range AS a, md5(range::VARCHAR) AS b FROM range(600000)"
)
"""Needs more than 16 MB: a default DuckDB spills it to ``.tmp/`` in the cwd."""


def _run_child(script: str, cwd: Path, home: Path, tmp: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HOME=str(home), TMPDIR=str(tmp),
               PYTHONPATH=os.pathsep.join([str(REPO), str(Path(__file__).parent)]))
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True)


def test_in_memory_store_writes_no_file_anywhere(tmp_path):
    """A child process works in an empty cwd with HOME and TMPDIR inside tmp_path, writes rows and
    runs a workload that a default in-memory DuckDB spills to disk (checked by the control run); the
    heron store must fail it with out-of-memory instead, leaving the tree empty."""
    dirs = {}
    for name in ("cwd", "home", "tmp", "control"):
        dirs[name] = tmp_path / name
        dirs[name].mkdir()
    script = textwrap.dedent(
        f"""
        from collections import Counter
        import duckdb
        from heron_core.store.db import open_store
        from heron_core.store.writer import StoreWriter
        import store_helpers as h
        st = open_store(None)
        assert st.conn.execute("SELECT current_setting('temp_directory')").fetchall() == [('',)]
        w = StoreWriter(st, Counter())
        for i in range(50):
            w.add_call(h.make_call(i))
        w.close()
        assert st.conn.execute("SELECT count(*) FROM calls").fetchall() == [(50,)]
        try:
            st.conn.execute({_SPILL_WORKLOAD!r})
            raise SystemExit("workload fit in memory: the test proves nothing")
        except duckdb.OutOfMemoryException:
            pass
        st.close()
        """
    )
    res = _run_child(script, dirs["cwd"], dirs["home"], dirs["tmp"])
    assert res.returncode == 0, res.stderr
    assert _all_files(dirs["cwd"], dirs["home"], dirs["tmp"]) == []

    control = textwrap.dedent(
        f"""
        import os, duckdb
        c = duckdb.connect(":memory:")
        c.execute({_SPILL_WORKLOAD!r})
        assert os.listdir(".tmp"), "default DuckDB did not spill"
        """
    )
    res = _run_child(control, dirs["control"], dirs["home"], dirs["tmp"])
    assert res.returncode == 0, res.stderr


def test_in_memory_cannot_be_read_only():
    with pytest.raises(StoreError):
        open_store(None, read_only=True)


def test_salt_is_persisted_and_reused(tmp_path):
    db = tmp_path / "h.duckdb"
    with open_store(db) as st:
        salt = st.salt
        assert isinstance(salt, bytes) and len(salt) == 16
    with open_store(db) as st:
        assert st.salt == salt
    with open_store(db, read_only=True) as st:
        assert st.salt == salt and st.read_only
    with open_store(tmp_path / "other.duckdb") as st:
        assert st.salt != salt


def test_in_memory_salt_is_per_run():
    with open_store(None) as a, open_store(None) as b:
        assert len(a.salt) == 16 and a.salt != b.salt


def test_redaction_off_is_sticky(tmp_path):
    db = tmp_path / "h.duckdb"
    with open_store(db, redaction=True) as st:
        assert st.meta()["redaction"] == "on"
    with open_store(db, redaction=False) as st:
        assert st.meta()["redaction"] == "off"
    with open_store(db, redaction=True) as st:
        assert st.redaction == "off" and st.meta()["redaction"] == "off"


def test_created_at_kept_on_reopen(tmp_path):
    db = tmp_path / "h.duckdb"
    with open_store(db) as st:
        created = st.created_at
    with open_store(db) as st:
        assert st.created_at == created


def test_read_only_store_rejects_writer(tmp_path):
    db = tmp_path / "h.duckdb"
    open_store(db).close()
    with open_store(db, read_only=True) as st:
        with pytest.raises(ValueError):
            StoreWriter(st, Counter())


def test_read_only_open_of_locked_file_is_a_store_error(tmp_path):
    db = tmp_path / "h.duckdb"
    with open_store(db) as st:
        w = StoreWriter(st, Counter())
        w.add_call(make_call())
        w.close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, duckdb; c = duckdb.connect(sys.argv[1]); print('locked', flush=True); sys.stdin.read()",
         str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        for ro in (True, False):
            with pytest.raises(StoreError) as ei:
                open_store(db, read_only=ro)
            msg = str(ei.value)
            assert "\n" not in msg
            assert "use that process's API" in msg and f"PID {holder.pid}" in msg
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with open_store(db, read_only=True) as st:  # lock released: readable again
        assert st.conn.execute("SELECT count(*) FROM calls").fetchall() == [(1,)]


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, this is not a database\n" * 100, bytes(range(256)) * 32],
    ids=["empty", "text", "binary"],
)
@pytest.mark.parametrize("read_only", [False, True])
def test_non_database_file_is_a_store_error(tmp_path, content, read_only):
    p = tmp_path / "notes.txt"
    p.write_bytes(content)
    with pytest.raises(StoreError, match=r"notes\.txt is not a heron database") as ei:
        open_store(p, read_only=read_only)
    assert "\n" not in str(ei.value)
    assert p.read_bytes() == content  # never touched


def test_foreign_duckdb_database_is_a_store_error(tmp_path):
    p = tmp_path / "other.duckdb"
    con = duckdb.connect(str(p))
    con.execute("CREATE TABLE something (a INTEGER)")
    con.close()
    for ro in (False, True):
        with pytest.raises(StoreError, match="is not a heron database"):
            open_store(p, read_only=ro)


def test_read_only_missing_file_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="no such database"):
        open_store(tmp_path / "missing.duckdb", read_only=True)
    assert not (tmp_path / "missing.duckdb").exists()


def test_directory_is_a_store_error(tmp_path):
    with pytest.raises(StoreError):
        open_store(tmp_path)
