"""``heron run`` and ``heron probe`` (interfaces.md §1.1), registered on the ``heron`` app by cli.py.

Kept apart from cli.py so the engine-runtime options live in one place; error handling follows
cli.py: one line ``heron: error: <what>: <why>``, exit 2 for usage errors, 1 for input errors.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from heron_tui.cli import _load_config, _setup_logging, app, fail, parse_size


@app.command("run")
def run_cmd(
    pcap_file: Annotated[Path | None, typer.Option("--pcap-file", help="replay a pcap/pcapng file")] = None,
    interface: Annotated[str | None, typer.Option("-i", "--interface", help="live capture interface")] = None,
    bpf_filter: Annotated[str | None, typer.Option("--bpf-filter", help="kernel filter for -i")] = None,
    zmq: Annotated[str | None, typer.Option("--zmq", help="bind a ZMQ PULL socket for probe batches")] = None,
    ebpf: Annotated[bool, typer.Option("--ebpf", help="TLS plaintext from eBPF uprobes on OpenSSL (Linux)")] = False,
    ebpf_pid: Annotated[list[int] | None, typer.Option("--ebpf-pid", help="--ebpf: only this process (repeatable)")] = None,
    ebpf_comm: Annotated[list[str] | None, typer.Option("--ebpf-comm",
                                                        help="--ebpf: only this command name (repeatable)")] = None,
    db: Annotated[Path | None, typer.Option("--db", help="DuckDB file (default heron.duckdb)")] = None,
    no_retention: Annotated[bool, typer.Option("--no-retention", help="in-memory store, nothing written")] = False,
    exit_after_drain: Annotated[bool, typer.Option("--exit-after-drain", help="exit once the source drained")] = False,
    workers: Annotated[int | None, typer.Option("--workers", help="decode processes (0 = single process)")] = None,
    source_id: Annotated[str | None, typer.Option("--source-id", help="source id (file or interface)")] = None,
    replay_speed: Annotated[float, typer.Option("--replay-speed", help="pace a file at X × its packet times")] = 0.0,
    body_cap: Annotated[str, typer.Option("--body-cap", help="stored size limit per LLM body (0 = none)")] = "4MiB",
    keep_secrets: Annotated[bool, typer.Option("--keep-secrets", help="disable redaction")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="TOML file of tunables")] = None,
    status_file: Annotated[Path | None, typer.Option("--status-file", help="write progress JSON here every second")] = None,
    host: Annotated[str, typer.Option("--host", help="API bind address (non-loopback needs --token/--no-auth)")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option("--port", help="API port (default 3000)")] = None,
    token: Annotated[str | None, typer.Option("--token", help="API bearer token (default: env HERON_TOKEN)")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="serve the API without a token")] = False,
    verbose: Annotated[int, typer.Option("-v", count=True, help="more logging (pipeline health at -v)")] = 0,
    quiet: Annotated[bool, typer.Option("-q", help="less logging")] = False,
) -> None:
    """Run the engine on one source and write the store continuously (until drained or Ctrl+C)."""
    from heron_core.capture.source import source_id_for
    from heron_core.capture.sources import CaptureError, SourceSpec
    from heron_core.engine import Engine
    from heron_core.runner import auto_workers, run
    from heron_core.store.db import StoreError, open_store
    from heron_tui.cli_serve import api_options, run_api_hook

    _setup_logging(verbose, quiet)
    if (ebpf_pid or ebpf_comm) and not ebpf:
        fail("--ebpf-pid" if ebpf_pid else "--ebpf-comm", "applies to --ebpf only", 2)
    given = [x for x in (pcap_file, interface, zmq) if x is not None] + ([True] if ebpf else [])
    if len(given) != 1:
        fail("run", "give exactly one source: --pcap-file F, -i IFACE, --zmq ENDPOINT or --ebpf", 2)
    if any(p <= 0 for p in ebpf_pid or []):
        fail("--ebpf-pid", "takes a process id (a positive number)", 2)
    if bpf_filter is not None and interface is None:
        fail("--bpf-filter", "applies to -i IFACE only", 2)
    if replay_speed < 0 or (replay_speed and pcap_file is None):
        fail("--replay-speed", "takes a positive factor and applies to --pcap-file only", 2)
    if db is not None and no_retention:
        fail("run", "give at most one of --db PATH or --no-retention", 2)
    if source_id is not None and zmq is not None:
        fail("--source-id", "ZMQ sources are named by probe UUID", 2)
    if workers is not None and workers < 0:
        fail("--workers", "must be 0 or more", 2)
    api_options(host, token, no_auth)
    cfg = _load_config(config, store_body_cap=parse_size(body_cap), redaction_enabled=not keep_secrets)
    if keep_secrets:
        logging.getLogger("heron").warning("redaction is off (--keep-secrets): secrets will be stored")
    if pcap_file is not None:
        spec = SourceSpec("files", paths=[str(pcap_file)],
                          source_ids=[source_id or source_id_for([str(pcap_file)])[0]], replay_speed=replay_speed)
    elif interface is not None:
        spec = SourceSpec("live", iface=interface, bpf_filter=bpf_filter, source_id=source_id)
    elif ebpf:
        spec = SourceSpec("ebpf", source_id=source_id, ebpf_pids=list(ebpf_pid or []), ebpf_comms=list(ebpf_comm or []))
    else:
        spec = SourceSpec("zmq", endpoint=zmq)
    path = None if no_retention else str(db or "heron.duckdb")
    try:
        store = open_store(path, redaction=not keep_secrets)
    except StoreError as exc:
        fail(str(path), str(exc))
    stop_api = None
    try:
        on_started, stop_api = run_api_hook(host, port, token, no_auth, store)  # REST API + console
        engine = Engine(store, cfg, workers=auto_workers() if workers is None else workers)
        try:
            code = run(engine, spec, exit_after_drain=exit_after_drain, status_file=status_file, argv=sys.argv,
                       on_started=on_started)
        except CaptureError as exc:
            fail(exc.what, exc.why, 2 if exc.usage else 1)
    finally:
        if stop_api is not None:
            stop_api()
        store.close()
    raise typer.Exit(code)


@app.command("probe")
def probe_cmd(
    interface: Annotated[str, typer.Option("-i", "--interface", help="interface to capture on")],
    to: Annotated[str, typer.Option("--to", help="ZMQ endpoint of 'heron run --zmq' (tcp://host:port)")],
    bpf_filter: Annotated[str | None, typer.Option("--bpf-filter", help="kernel filter")] = None,
    probe_id: Annotated[str | None, typer.Option("--probe-id", help="probe UUID (default: random)")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML file of tunables")] = None,
    verbose: Annotated[int, typer.Option("-v", count=True, help="more logging")] = 0,
    quiet: Annotated[bool, typer.Option("-q", help="less logging")] = False,
) -> None:
    """Capture on an interface and push probe batches to a remote 'heron run --zmq'."""
    import uuid

    from heron_core.capture.sources import CaptureError
    from heron_core.probe import run_probe

    _setup_logging(verbose, quiet)
    if probe_id is not None:
        try:
            uuid.UUID(probe_id)
        except ValueError:
            fail("--probe-id", f"not a UUID: {probe_id!r}", 2)
    cfg = _load_config(config)
    try:
        c = run_probe(interface, to, bpf_filter, cfg, probe_id)
    except CaptureError as exc:
        fail(exc.what, exc.why, 2 if exc.usage else 1)
    typer.echo(f"probe: sent {c['packets_sent']} packets in {c['batches_sent']} batches, "
               f"{c['batches_dropped']} batches dropped, {c['packets_dropped_kernel']} kernel drops", err=True)
