"""``heron doctor``: print what capture works on this host (checks in heron_core/doctor.py).

Exit status 0 whatever it finds (it is a report, not a gate); ``--json`` prints the report as one JSON
object for scripts and tests.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from heron_tui.cli import _setup_logging, app

_MARK = {True: "ok  ", False: "FAIL", None: "note"}


def _line(c: dict[str, Any]) -> str:
    text = f"  [{_MARK[c['ok']]}] {c['detail']}"
    if c.get("fix") and c["ok"] is not True:
        text += f"\n         fix: {c['fix']}"
    return text


def format_report(r: dict[str, Any]) -> str:
    h = r["host"]
    who = "root" if h.get("euid") == 0 else "not root"
    lines = [f"heron doctor: {h['system']} {h['kernel']} ({h['machine']}), {who}", "",
             "Live capture (heron run -i IFACE)"]
    lines += [_line(c) for c in r["live_capture"]]
    e = r["ebpf"]
    lines += ["", "eBPF TLS capture (heron run --ebpf)"]
    lines += [_line(c) for c in e["checks"]]
    t = e.get("trial")
    if t:
        lines.append(_line({"ok": t.get("ok"), "detail": "trial: " + t["detail"], "fix": None}))
    progs = e.get("heron_programs")
    if progs is None:
        lines.append(_line({"ok": None, "detail": "heron probes attached now: cannot list BPF programs (not root)"}))
    elif progs["loaded"]:
        pids = ", ".join(str(p) for p in progs["held_by"]) or "no process (pinned?)"
        lines.append(_line({"ok": None, "detail": f"heron probes attached now: {progs['loaded']} BPF programs, "
                                                  f"held by running heron agent pid {pids} (removed when it exits)"}))
    else:
        lines.append(_line({"ok": True, "detail": "no heron probe is attached (none left behind)"}))
    if e["visible"]:
        lines.append("  visible to --ebpf now:")
        for v in e["visible"]:
            users = f"{v['processes']} running process(es)" if v["processes"] else "linker cache"
            lines.append(f"    {v['path']} ({v['kind']}, {users})")
    else:
        lines.append("  visible to --ebpf now: no OpenSSL library or SSL_*-exporting executable found")
    for inv in e["invisible"]:
        lines.append(f"  NOT visible: pid {inv['pid']} {inv['exe']}: {inv['what']}")
    lines.append(f"  note: {e['invisible_note']}")
    lines.append(f"  => eBPF: {e['state']}")
    lines += ["", "Storage"]
    lines += [_line(c) for c in r["storage"]]
    return "\n".join(lines)


@app.command("doctor")
def doctor_cmd(
    interface: Annotated[str, typer.Option("-i", "--interface", help="interface to test live capture on")] = "lo",
    db: Annotated[Path | None, typer.Option("--db", help="database path to check (default heron.duckdb)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the report as one JSON object")] = False,
    no_trial: Annotated[bool, typer.Option("--no-trial", help="do not compile and attach the probes")] = False,
    fetch_headers: Annotated[bool, typer.Option("--fetch-headers",
                                                help="download the kernel header tree for eBPF now")] = False,
    verbose: Annotated[int, typer.Option("-v", count=True, help="more logging")] = 0,
) -> None:
    """Check capture permissions, eBPF prerequisites and storage; print what works on this host."""
    from heron_core.doctor import report

    _setup_logging(verbose, False)
    r = report(interface, str(db) if db else None, trial=not no_trial, fetch=fetch_headers)
    if json_out:
        sys.stdout.buffer.write(orjson.dumps(r) + b"\n")
    else:
        typer.echo(format_report(r))
