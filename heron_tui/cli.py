"""The ``heron`` and ``heron-tui`` commands (interfaces.md §1).

Errors a user can cause (bad files, a locked database, bad options) end in one line on stderr,
``heron: error: <what>: <why>``, and the exit codes of §1.3; ``-v`` adds the traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import orjson
import typer

from heron_core.config import Config

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="heron: passive observability for LLM agents (pcap, live capture, eBPF).")
export_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Write JSONL exports from a database.")
app.add_typer(export_app, name="export")


class UserError(Exception):
    """An input error with a one-line message (exit 1)."""


def fail(what: str, why: str, code: int = 1) -> None:
    typer.echo(f"heron: error: {what}: {why}", err=True)
    raise typer.Exit(code)


@contextmanager
def read_store(db: Path) -> Iterator[Any]:
    """The database opened read-only, closed afterwards; missing or unreadable is one line, exit 1."""
    from heron_core.store.db import StoreError, open_store

    if not db.exists():
        fail(str(db), "no such database")
    try:
        store = open_store(str(db), read_only=True)
    except StoreError as exc:
        fail(str(db), str(exc))
    try:
        yield store
    finally:
        store.close()


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose:
        level = logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="heron: %(levelname)s: %(message)s", stream=sys.stderr)


def _load_config(config: Optional[Path], **overrides) -> Config:
    try:
        return Config.load(config, **{k: v for k, v in overrides.items() if v is not None})
    except (OSError, ValueError) as exc:
        fail(str(config), str(exc), 2)
        raise  # unreachable


def parse_size(text: str) -> int:
    """``4MiB``, ``512k``, ``1000`` → bytes."""
    t = text.strip().lower().replace("ib", "").replace("b", "")
    mult = 1
    for suffix, m in (("k", 1024), ("m", 1024**2), ("g", 1024**3)):
        if t.endswith(suffix):
            t, mult = t[:-1], m
    try:
        return int(float(t) * mult)
    except ValueError:
        raise typer.BadParameter(f"not a size: {text!r}") from None


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="pcap/pcapng files; each is its own source")],
    db: Annotated[Optional[Path], typer.Option("--db", help="DuckDB file to write")] = None,
    no_retention: Annotated[bool, typer.Option("--no-retention", help="in-memory store, nothing written")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
    workers: Annotated[int, typer.Option("--workers", help="decode processes (0 = single process)")] = 0,
    source_id: Annotated[Optional[str], typer.Option("--source-id", help="source id for a single file")] = None,
    body_cap: Annotated[str, typer.Option("--body-cap", help="stored size limit per LLM body (0 = none)")] = "4MiB",
    keep_secrets: Annotated[bool, typer.Option("--keep-secrets", help="disable redaction")] = False,
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML file of tunables")] = None,
    verbose: Annotated[int, typer.Option("-v", count=True, help="more logging")] = 0,
    quiet: Annotated[bool, typer.Option("-q", help="less logging")] = False,
) -> None:
    """Read capture files into a database and print a summary."""
    from heron_core.capture.source import source_id_for
    from heron_core.engine import Engine
    from heron_core.store.db import StoreError, open_store

    _setup_logging(verbose, quiet)
    if (db is None) == (not no_retention):
        fail("ingest", "give exactly one of --db PATH or --no-retention", 2)
    if source_id is not None and len(files) != 1:
        fail("--source-id", "applies to a single file only", 2)
    cfg = _load_config(config, store_body_cap=parse_size(body_cap), redaction_enabled=not keep_secrets)
    if keep_secrets:
        logging.getLogger("heron").warning("redaction is off (--keep-secrets): secrets will be stored")
    try:
        store = open_store(None if no_retention else str(db), redaction=not keep_secrets)
    except StoreError as exc:
        fail(str(db), str(exc))
    ids = [source_id] if source_id else source_id_for([str(f) for f in files])
    if workers < 0:
        fail("--workers", "must be 0 or more", 2)
    engine = Engine(store, cfg, workers=workers)
    result = engine.ingest([str(f) for f in files], ids)
    record_run(engine, sys.argv, result)
    summary = ingest_summary(result, store)
    for f in result.files:
        if f.status == "failed":
            typer.echo(f"heron: error: {f.path}: {f.error}", err=True)
        elif f.status == "truncated":
            typer.echo(f"heron: warning: {f.path}: capture file is truncated; read up to the cut", err=True)
    if json_out:
        sys.stdout.buffer.write(orjson.dumps(summary) + b"\n")
    else:
        typer.echo(format_summary(summary))
    store.close()
    raise typer.Exit(1 if result.failed else 0)


def record_run(engine, argv: list[str], result) -> None:
    """One ``runs`` row per invocation: argv, sources and the final pipeline counters."""
    import time
    import uuid

    from heron_core import __version__
    from heron_core.pricing import price_version

    now = time.time()
    engine.writer.add_rows("runs", [{
        "run_id": str(uuid.uuid4()),
        "started_at": now - result.duration_s,
        "ended_at": now,
        "version": __version__,
        "argv": list(argv),
        "sources": [{"path": f.path, "source_id": f.source_id, "status": f.status, "packets": f.packets}
                    for f in result.files],
        "counters": dict(result.counters),
        "price_version": price_version(),
    }])
    engine.writer.flush()


def ingest_summary(result, store) -> dict:
    """The §1.1 ingest summary object."""
    c = result.counters
    by_api = {k.split(".", 1)[1]: v for k, v in sorted(c.items()) if k.startswith("calls_by_wire_api.") and v}
    by_status = {k.split(".", 1)[1]: v for k, v in sorted(c.items()) if k.startswith("turns_finalized.") and v}
    return {
        "files": [{"path": f.path, "source_id": f.source_id, "status": f.status, "packets": f.packets}
                  for f in result.files],
        "packets": c["packets_read"],
        "flows": c["flows_created"],
        "exchanges": c["exchanges"],
        "calls": c["calls_received"],
        "calls_by_wire_api": by_api,
        "turns_by_status": by_status,
        "sessions": c["sessions_created"],
        "insights": c["insights_raised"],
        "damaged_exchanges": c["damaged_exchanges"],
        "drops": c["packets_dropped_overload"] + c["packets_dropped_kernel"],
        "duplicates_skipped": c["duplicates_skipped"],
        "duration_s": round(result.duration_s, 3),
    }


def format_summary(s: dict) -> str:
    lines = []
    for f in s["files"]:
        lines.append(f"{f['path']}: {f['status']}, source {f['source_id']}, {f['packets']} packets")
    apis = ", ".join(f"{k} {v}" for k, v in s["calls_by_wire_api"].items()) or "none"
    turns = ", ".join(f"{k} {v}" for k, v in s["turns_by_status"].items()) or "none"
    lines.append(
        f"total: {s['packets']} packets, {s['flows']} flows, {s['exchanges']} exchanges, {s['calls']} LLM calls "
        f"({apis}); turns: {turns}; {s['sessions']} sessions, {s['insights']} insights; "
        f"{s['damaged_exchanges']} damaged, {s['drops']} dropped, {s['duplicates_skipped']} duplicates skipped; "
        f"{s['duration_s']:.2f} s"
    )
    return "\n".join(lines)


from heron_tui import cli_run  # noqa: E402,F401  (registers 'heron run' and 'heron probe' on app)
from heron_tui import cli_serve  # noqa: E402,F401  (registers 'heron serve')
from heron_tui import cli_export  # noqa: E402,F401  (registers 'heron export …')
from heron_tui import cli_doctor  # noqa: E402,F401  (registers 'heron doctor')


def heron_main() -> None:
    # 'heron [options]' is 'heron run [options]' (interfaces.md §1.1: 'heron --pcap-file F --no-retention').
    argv = sys.argv[1:]
    if argv and argv[0].startswith("-") and argv[0] not in ("--help", "-h"):
        sys.argv.insert(1, "run")
    app(prog_name="heron")


def tui_main() -> None:
    from heron_tui.tui_cli import tui

    tui(prog_name="heron-tui")
