"""The ``heron-tui`` command (interfaces.md §1): options, errors and exit codes, and the plain table
printed instead of the UI when stdout is not a terminal (``heron-tui x.pcap | less`` still works).

Errors follow the ``heron`` CLI: one line ``heron: error: <what>: <why>`` on stderr, exit 2 for usage
errors, 1 for input errors (readable files are still shown when others fail).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from heron_tui.widgets.format import fit, one_line

tui = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  help="heron-tui: the terminal UI of heron (the Wireshark for AI agents).")

_PLAIN_COLUMNS = (("time", 8), ("source", 12), ("wire api", 18), ("model", 26), ("status", 6), ("finish", 9),
                  ("tok in", 7), ("tok out", 7), ("ttft ms", 8), ("e2e ms", 8))


def _fail(what: str, why: str, code: int) -> None:
    typer.echo(f"heron: error: {what}: {why}", err=True)
    raise typer.Exit(code)


def demo_path() -> Path:
    return Path(str(resources.files("heron_tui") / "demo" / "demo.pcap"))


@tui.command()
def main(
    files: Annotated[list[Path] | None, typer.Argument(help="pcap/pcapng files, read in the background")] = None,
    interface: Annotated[str | None, typer.Option("-i", "--interface", help="live capture (coming)")] = None,
    db: Annotated[Path | None, typer.Option("--db", help="DuckDB file (alone: browse it read-only)")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="open the bundled demo capture")] = False,
    bpf_filter: Annotated[str | None, typer.Option("--bpf-filter", help="kernel filter for -i")] = None,
    workers: Annotated[int, typer.Option("--workers", help="decode processes (0 = single process)")] = 0,
    source_id: Annotated[str | None, typer.Option("--source-id", help="source id for a single file")] = None,
    body_cap: Annotated[str, typer.Option("--body-cap", help="stored size limit per LLM body")] = "4MiB",
    keep_secrets: Annotated[bool, typer.Option("--keep-secrets", help="disable redaction")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="TOML file of tunables")] = None,
    theme: Annotated[str, typer.Option("--theme", help="dark, light or 16 (16-colour terminals)")] = "dark",
    keys_file: Annotated[Path | None, typer.Option("--keys", help="TOML key bindings")] = None,
    display_filter: Annotated[str | None, typer.Option("--filter", "-Y", help="initial display filter")] = None,
    metrics: Annotated[bool | None, typer.Option("--metrics/--no-metrics", help="metrics pane")] = None,
    verbose: Annotated[int, typer.Option("-v", count=True, help="more logging")] = 0,
    quiet: Annotated[bool, typer.Option("-q", help="less logging")] = False,
) -> None:
    """Browse LLM traffic: heron-tui FILE... | --db PATH | --demo"""
    from heron_tui.cli import _load_config, _setup_logging, parse_size

    _setup_logging(verbose, quiet)
    paths = [str(f) for f in files or []]
    if demo:
        paths.insert(0, str(demo_path()))
    if interface is not None:
        if paths:
            _fail("-i", "heron-tui takes capture files or -i, not both", 2)
        _fail("-i", "live capture is not available yet; capture with tcpdump and open the file", 2)
    if bpf_filter is not None:
        _fail("--bpf-filter", "applies to -i only", 2)
    if not paths and db is None:
        _fail("heron-tui", "give capture files, --db PATH or --demo (see heron-tui --help)", 2)
    if source_id is not None and len(paths) != 1:
        _fail("--source-id", "applies to a single file only", 2)
    if theme not in ("dark", "light", "16", "low", "ansi"):
        _fail("--theme", f"unknown theme {theme!r}: use dark, light or 16", 2)
    if display_filter:
        from heron_core.query.filterlang import FilterError, parse

        try:
            parse(display_filter)
        except FilterError as exc:
            _fail("--filter", exc.message, 2)
    keymap = _keymap(keys_file)  # validated even when no UI is shown: a bad file is a usage error
    cfg = _load_config(config, store_body_cap=parse_size(body_cap), redaction_enabled=not keep_secrets)
    store = _open_store(db, bool(paths), keep_secrets)
    ids = _source_ids(paths, source_id)
    paths, ids, failed = _readable(paths, ids, cfg)
    if failed and not paths and db is None:
        raise typer.Exit(1)
    if not sys.stdout.isatty():
        try:
            plain_output(store, cfg, paths, ids, display_filter)
            sys.stdout.flush()
        except BrokenPipeError:  # `heron-tui x.pcap | head`: the reader has seen enough
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        raise typer.Exit(1 if failed else 0)
    _run_app(store, cfg, paths, ids, db, theme, keymap, display_filter, metrics)
    raise typer.Exit(1 if failed else 0)


def _open_store(db: Path | None, writing: bool, keep_secrets: bool) -> Any:
    from heron_core.store.db import StoreError, open_store

    try:
        if db is None:
            return open_store(None, redaction=not keep_secrets)
        if not writing:
            return open_store(str(db), read_only=True)
        return open_store(str(db), redaction=not keep_secrets)
    except StoreError as exc:
        _fail(str(db), str(exc), 1)


def _source_ids(paths: list[str], source_id: str | None) -> list[str]:
    from heron_core.capture.source import source_id_for

    return [source_id] if source_id else source_id_for(paths)


def _readable(paths: list[str], ids: list[str], cfg) -> tuple[list[str], list[str], list[str]]:
    """Check each file's header up front, so a typo fails at once with the CLI's one-line error."""
    from heron_core.capture.pcapfile import CaptureFileError
    from heron_core.capture.source import open_file_source

    ok_p, ok_i, failed = [], [], []
    for p, sid in zip(paths, ids):
        try:
            it = open_file_source(p, sid, Counter(), cfg)
            close = getattr(it, "close", None)
            if close:
                close()
        except (CaptureFileError, OSError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            typer.echo(f"heron: error: {p}: {why}", err=True)
            failed.append(p)
            continue
        ok_p.append(p)
        ok_i.append(sid)
    return ok_p, ok_i, failed


def _keymap(keys_file: Path | None) -> tuple[dict[str, str], str]:
    from heron_tui.keys import KeysError, default_keys_path, load_keymap

    try:
        keymap = load_keymap(keys_file, required=keys_file is not None)
    except KeysError as exc:
        _fail("--keys", str(exc), 2)
    source = str(keys_file) if keys_file else (str(default_keys_path()) if keymap else "built-in defaults")
    return keymap, source


def _last_run_counters(store) -> Counter:
    try:
        row = store.conn.cursor().execute("SELECT counters FROM runs ORDER BY ended_at DESC LIMIT 1").fetchone()
    except Exception:
        return Counter()
    return Counter(orjson.loads(row[0])) if row and row[0] else Counter()


def _run_app(store, cfg, paths, ids, db, theme, keys: tuple[dict[str, str], str], display_filter,
             metrics) -> None:
    from heron_tui.app import AppOptions, HeronApp
    from heron_tui.loader import Loader

    keymap, keys_source = keys
    loader = Loader(store, cfg, paths, ids) if paths else None
    label = ", ".join(Path(p).name for p in paths) if paths else str(db)
    if paths and db is not None:
        label += f" → {db}"
    opts = AppOptions(source_label=label, theme=theme, keymap=keymap, keys_source=keys_source, metrics=metrics,
                      initial_filter=display_filter or "",
                      pipeline_counters=None if paths else _last_run_counters(store))
    try:
        HeronApp(store, loader, opts).run()
    finally:
        if loader is not None:
            loader.stop(timeout=0.5)
        if loader is None or loader.done:
            store.close()


def plain_output(store, cfg, paths: list[str], ids: list[str], display_filter: str | None,
                 out: Any = None) -> int:
    """Load everything (no UI), then print the calls as a plain fixed-width table. Returns 0."""
    from heron_core.engine import Engine
    from heron_core.query.lists import CALLS, ListQuery, compile_for

    out = out or sys.stdout
    if paths:
        Engine(store, cfg).ingest(paths, ids)
    cur = store.conn.cursor()
    query = ListQuery(CALLS, compile_for(CALLS, display_filter) if display_filter else None)
    cols = [c.key for c in CALLS.columns]
    want = ("start", "source", "wire", "model", "status", "finish", "tokens_in", "tokens_out", "ttft", "e2e")
    idx = [cols.index(k) + 2 for k in want]
    prev = cols.index("preview") + 2
    header = " ".join(fit(label, w) for label, w in _PLAIN_COLUMNS) + " preview"
    print(header.rstrip(), file=out)
    offset = 0
    while True:
        rows = query.fetch(cur, offset, 1000)
        if not rows:
            break
        for r in rows:
            vals = [r[i] for i in idx]
            vals[0] = time.strftime("%H:%M:%S", time.localtime(vals[0])) if vals[0] is not None else ""
            for j in (8, 9):
                vals[j] = f"{vals[j]:.0f}" if vals[j] is not None else ""
            cells = [fit("" if v is None else str(v), w, right=j >= 6 or j == 4)
                     for j, ((_, w), v) in enumerate(zip(_PLAIN_COLUMNS, vals))]
            print((" ".join(cells) + " " + one_line(r[prev])[:120]).rstrip(), file=out)
        offset += len(rows)
    return 0
