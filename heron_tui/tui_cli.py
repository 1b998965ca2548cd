"""The ``heron-tui`` command (interfaces.md §1): options, errors and exit codes, the feed behind the UI,
and the plain table printed instead of the UI when stdout is not a terminal (``heron-tui x.pcap | less``
still works; ``heron-tui -i lo | grep`` prints calls as they are captured).

Sources: capture files (``--demo`` is one), or one live source — ``-i IFACE`` (``--bpf-filter``),
``--zmq ENDPOINT`` (probe batches), ``--ebpf`` (``--ebpf-pid``/``--ebpf-comm``). Files with
``--workers N`` ≥ 1 or ``--replay-speed X`` and every live source run the engine's pipeline in-process
(``heron_tui.live.PipelineRun``); files with ``--workers 0`` use the per-file loader threads.

Errors follow the ``heron`` CLI: one line ``heron: error: <what>: <why>`` on stderr, exit 2 for usage
errors, 1 for input errors (readable files are still shown when others fail). A live source is opened
*before* the UI starts, so no permission, no such interface, a bad BPF filter or a port in use is that
one line, never a screen.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from heron_tui.plain import print_calls, stream_calls

tui = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  help="heron-tui: the terminal UI of heron (the Wireshark for AI agents).")

DRAIN_WAIT_S = 30.0
"""On quit with ``--db``: how long to wait for the pipeline to drain (turns closed, rows written)."""


def _fail(what: str, why: str, code: int) -> None:
    typer.echo(f"heron: error: {what}: {why}", err=True)
    raise typer.Exit(code)


def demo_path() -> Path:
    return Path(str(resources.files("heron_tui") / "demo" / "demo.pcap"))


@tui.command()
def main(
    files: Annotated[list[Path] | None, typer.Argument(help="pcap/pcapng files, read in the background")] = None,
    interface: Annotated[str | None, typer.Option("-i", "--interface", help="live capture interface")] = None,
    zmq: Annotated[str | None, typer.Option("--zmq", help="bind a ZMQ PULL socket for probe batches")] = None,
    ebpf: Annotated[bool, typer.Option("--ebpf", help="eBPF TLS plaintext source (Linux, root)")] = False,
    ebpf_pid: Annotated[list[int] | None, typer.Option("--ebpf-pid", help="--ebpf: only this process")] = None,
    ebpf_comm: Annotated[list[str] | None, typer.Option("--ebpf-comm", help="--ebpf: only this command")] = None,
    db: Annotated[Path | None, typer.Option("--db", help="DuckDB file (alone: browse it read-only)")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="open the bundled demo capture")] = False,
    bpf_filter: Annotated[str | None, typer.Option("--bpf-filter", help="kernel filter for -i")] = None,
    replay_speed: Annotated[float, typer.Option("--replay-speed", help="replay files in real time × X")] = 0.0,
    workers: Annotated[int | None, typer.Option("--workers", help="decode processes (0 = single process)")] = None,
    source_id: Annotated[str | None, typer.Option("--source-id", help="source id (a single file or -i)")] = None,
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
    """Browse LLM traffic: heron-tui FILE... | -i IFACE | --zmq ENDPOINT | --ebpf | --db PATH | --demo"""
    from heron_core.runner import auto_workers
    from heron_tui.cli import _load_config, _setup_logging, parse_size

    _setup_logging(verbose, quiet)
    paths = [str(f) for f in files or []]
    if demo:
        paths.insert(0, str(demo_path()))
    live = [name for name, on in (("-i", interface is not None), ("--zmq", zmq is not None), ("--ebpf", ebpf)) if on]
    _check_usage(paths, live, db, bpf_filter, interface, ebpf_pid, ebpf_comm, replay_speed, workers, source_id)
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
    n_workers = auto_workers() if workers is None else workers
    interactive = sys.stdout.isatty()
    with _logs_held(interactive) as held:
        store = _open_store(db, bool(paths or live), keep_secrets)
        failed: list[str] = []
        ids: list[str] = []
        if live:
            spec = _live_spec(interface, bpf_filter, source_id, zmq, ebpf_pid, ebpf_comm)
            feed = _open_run(store, cfg, spec, n_workers)
            label = spec.describe()
        else:
            ids = _source_ids(paths, source_id)
            paths, ids, failed = _readable(paths, ids, cfg)
            if failed and not paths and db is None:
                raise typer.Exit(1)
            feed = _file_feed(store, cfg, paths, ids, n_workers, replay_speed, interactive)
            label = ", ".join(Path(p).name for p in paths) if paths else str(db)
        if db is not None and (paths or live):
            label += f" → {db}"
        if not interactive:
            code = _plain(store, cfg, feed, paths, ids, display_filter)
            raise typer.Exit(code or (1 if failed else 0))
        code = _run_app(store, feed, label, db, theme, keymap, display_filter, metrics, held)
    raise typer.Exit(code or (1 if failed else 0))


def _check_usage(paths: list[str], live: list[str], db: Path | None, bpf_filter: str | None,
                 interface: str | None, ebpf_pid: list[int] | None, ebpf_comm: list[str] | None,
                 replay_speed: float, workers: int | None, source_id: str | None) -> None:
    """Conflicting or misplaced options: one line, exit 2."""
    if len(live) > 1:
        _fail(live[0], f"give one live source, not {' and '.join(live)}", 2)
    if live and paths:
        _fail(live[0], "heron-tui takes capture files or a live source, not both", 2)
    if bpf_filter is not None and interface is None:
        _fail("--bpf-filter", "applies to -i only", 2)
    if (ebpf_pid or ebpf_comm) and "--ebpf" not in live:
        _fail("--ebpf-pid" if ebpf_pid else "--ebpf-comm", "applies to --ebpf only", 2)
    if replay_speed < 0 or (replay_speed and not paths):
        _fail("--replay-speed", "takes a positive factor and applies to capture files only", 2)
    if workers is not None and workers < 0:
        _fail("--workers", "must be 0 or more", 2)
    if not paths and db is None and not live:
        _fail("heron-tui", "give capture files, -i IFACE, --zmq ENDPOINT, --ebpf, --db PATH or --demo "
                           "(see heron-tui --help)", 2)
    if source_id is not None and (live and live != ["-i"] or (not live and len(paths) != 1)):
        _fail("--source-id", "applies to a single file or -i only", 2)


def _live_spec(interface: str | None, bpf_filter: str | None, source_id: str | None, zmq: str | None,
               ebpf_pid: list[int] | None, ebpf_comm: list[str] | None) -> Any:
    from heron_core.capture.sources import SourceSpec

    if interface is not None:
        return SourceSpec("live", iface=interface, bpf_filter=bpf_filter, source_id=source_id)
    if zmq is not None:
        return SourceSpec("zmq", endpoint=zmq)
    try:  # the eBPF source is an optional part (bcc, kernel support): say so in one line
        from heron_core.capture.ebpf import EbpfSource  # noqa: F401
    except ImportError as exc:
        _fail("--ebpf", f"eBPF capture is not available here ({exc})", 1)
    return SourceSpec("ebpf", ebpf_pids=list(ebpf_pid or []), ebpf_comms=list(ebpf_comm or []))


def _open_run(store: Any, cfg: Any, spec: Any, workers: int) -> Any:
    """A started ``PipelineRun`` with its source open; a ``CaptureError`` is the one-line error."""
    from heron_core.capture.sources import CaptureError
    from heron_tui.live import PipelineRun

    run = PipelineRun(store, cfg, spec, workers)
    try:
        run.open()
    except CaptureError as exc:
        run.wait(5.0)
        store.close()
        _fail(exc.what, exc.why, 2 if exc.usage else 1)
    if run.status == "failed":  # not a capture error: an internal one, still a single line
        store.close()
        _fail(spec.describe(), run.error or "the capture could not start", 1)
    return run


def _file_feed(store: Any, cfg: Any, paths: list[str], ids: list[str], workers: int, replay_speed: float,
               interactive: bool) -> Any:
    """Files: the pipeline for ``--workers N`` ≥ 1 or a replay, the loader threads for ``--workers 0``
    (not started here: the app starts it; a plain table without a terminal ingests directly)."""
    if not paths:
        return None
    if workers > 0 or replay_speed > 0:
        from heron_core.capture.sources import SourceSpec

        return _open_run(store, cfg, SourceSpec("files", paths=paths, source_ids=ids, replay_speed=replay_speed),
                         workers)
    if not interactive:
        return None
    from heron_tui.loader import Loader

    return Loader(store, cfg, paths, ids)


def _plain(store: Any, cfg: Any, feed: Any, paths: list[str], ids: list[str], display_filter: str | None) -> int:
    """No terminal: stream a live/replayed source, else load everything and print the table."""
    code = 0
    try:
        if feed is not None and (feed.live or feed.paced):
            code = stream_calls(store, feed, display_filter)
        else:
            if feed is not None:
                feed.wait()
            elif paths:
                from heron_core.engine import Engine

                Engine(store, cfg).ingest(paths, ids)
            print_calls(store, display_filter)
        sys.stdout.flush()
    except BrokenPipeError:  # `heron-tui x.pcap | head`: the reader has seen enough
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if feed is not None and not feed.done:
        feed.stop(timeout=2.0)
        if not feed.done:
            feed.kill()
            feed.wait(2.0)
    if feed is None or feed.done:
        store.close()
    return code


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


class _Held(logging.Handler):
    """Keeps log records while the UI owns the terminal (a line on stderr would tear the screen)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: deque[str] = deque(maxlen=50)
        self.setFormatter(logging.Formatter("heron: %(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


@contextmanager
def _logs_held(interactive: bool) -> Iterator[_Held | None]:
    """With the UI up, stderr logging goes to a buffer printed after it exits. Installed before any
    pipeline starts, so its reader and worker processes inherit the buffer rather than the terminal."""
    if not interactive:
        yield None
        return
    root = logging.getLogger()
    saved = list(root.handlers)
    held = _Held()
    root.handlers = [held]
    try:
        yield held
    finally:
        root.handlers = saved
        for line in dict.fromkeys(held.records):  # once each, in order
            print(line, file=sys.stderr)


def _run_app(store, feed, label, db, theme, keys: tuple[dict[str, str], str], display_filter, metrics,
             held: _Held | None) -> int:
    from heron_tui.app import AppOptions, HeronApp

    keymap, keys_source = keys
    opts = AppOptions(source_label=label, theme=theme, keymap=keymap, keys_source=keys_source, metrics=metrics,
                      initial_filter=display_filter or "",
                      pipeline_counters=None if feed is not None else _last_run_counters(store))
    try:
        HeronApp(store, feed, opts).run()
    finally:
        code = _finish(feed, store, db)
    return code


def _finish(feed: Any, store: Any, db: Path | None) -> int:
    """After the UI: stop the feed. A pipeline drains first when there is a database to complete (its
    open turns closed, its last rows and its ``runs`` row written); Ctrl+C leaves at once."""
    if feed is None:
        store.close()
        return 0
    if feed.state is None:  # file loader threads: daemons, never waited for
        feed.stop(timeout=0.5)
        if feed.done:
            store.close()
        return 0
    if not feed.stop(timeout=1.0):
        try:
            if db is not None:
                print(f"heron-tui: draining the pipeline into {db} (Ctrl+C to exit at once)", file=sys.stderr)
                feed.wait(DRAIN_WAIT_S)
            else:
                feed.wait(2.0)
        except KeyboardInterrupt:
            feed.kill()
            return 130
        if not feed.done:
            feed.kill()
    if feed.done:
        store.close()
    return 0
