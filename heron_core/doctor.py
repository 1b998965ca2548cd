"""``heron doctor``: what capture works on this host, and what to do about what does not.

Three sections, each a list of checks ``{name, ok, detail, fix}`` (``ok`` None = information):

* **live capture** — opens the interface for real (libpcap or AF_PACKET) and closes it;
* **eBPF** — the prerequisites of ``--ebpf`` (kernel, privileges, BTF, uprobe PMU, bcc, kernel
  headers), then, when all are met, a real trial (compile, attach, detach), the files probes can see
  now, what they cannot see (static TLS: Bun-built Claude Code, Rust/rustls Codex) and whether any
  heron probe is still loaded;
* **storage** — the database directory and the cache directory.

The report is a plain dict (``--json`` prints it) built without the UI; heron_tui/cli_doctor.py prints it.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path
from typing import Any

from heron_core.capture.ebpf import bpfstat, headers, prereqs
from heron_core.capture.ebpf.prereqs import Check

INVISIBLE_NOTE = ("static TLS without exported SSL_* symbols cannot be probed: Bun-built Claude Code "
                  "(BoringSSL) and Codex (Rust/rustls) are invisible to --ebpf; capture them at a plaintext "
                  "base URL or local proxy with -i lo instead")
_STATIC_TLS = {"claude": "Claude Code (Bun, static BoringSSL)", "codex": "Codex (Rust, rustls)",
               "bun": "Bun (static BoringSSL)"}


def live_capture(iface: str) -> list[Check]:
    from heron_core.capture.live import open_capture
    from heron_core.capture.sources import CaptureError
    from heron_core.config import Config

    try:
        cap = open_capture(iface, None, Config())
    except CaptureError as exc:
        fix = "run as root, or: setcap cap_net_raw,cap_net_admin+ep on the python running heron" \
            if "CAP_NET_RAW" in exc.why else None
        return [Check("live", False, f"capture on {iface}: {exc.why}", fix)]
    backend = "pcapy-ng" if type(cap).__name__ == "PcapyCapture" else "AF_PACKET"
    cap.close()
    return [Check("live", True, f"capture on {iface} works ({backend})")]


def ebpf(trial: bool = True, fetch: bool = False) -> dict[str, Any]:
    checks, _python = prereqs.blocking_checks()
    if fetch and all(c.ok is not False for c in checks):
        try:
            headers.fetch()
        except headers.HeaderError as exc:
            checks.append(Check("headers", False, f"kernel headers: {exc.why}", exc.fix))
    hs = headers.state()
    if hs.ready:
        checks.append(Check("headers", True, f"kernel headers: {hs.detail}"))
    elif hs.kind == "fetch":
        checks.append(Check("headers", None, f"kernel headers: {hs.detail}", hs.fix))
    else:
        checks.append(Check("headers", False, f"kernel headers: {hs.detail}", hs.fix))
    blocking = [c for c in checks if c.ok is False]
    result: dict[str, Any] = {"checks": [c.as_dict() for c in checks], "trial": None}
    if not blocking and hs.ready and trial:
        from heron_core.capture.ebpf.source import trial as run_trial

        result["trial"] = run_trial()
    elif blocking:
        result["trial"] = {"ok": None, "detail": "skipped: " + blocking[0].detail}
    elif not hs.ready:
        result["trial"] = {"ok": None, "detail": "skipped until the kernel headers are downloaded"}
    loaded = bpfstat.heron_programs() if sys_linux() else None
    if loaded is None:
        result["heron_programs"] = None
    else:
        by_pid = bpfstat.holders({p[0] for p in loaded})
        result["heron_programs"] = {"loaded": len(loaded), "held_by": sorted(by_pid)}
    result["visible"], result["invisible"] = _visibility()
    result["invisible_note"] = INVISIBLE_NOTE
    t = result["trial"] or {}
    if blocking:
        result["state"] = "unavailable"
    elif t.get("ok") is True:
        result["state"] = "works"
    elif t.get("ok") is False:
        result["state"] = "fails"
    else:
        result["state"] = "ready" if hs.ready else "ready after header download"
    return result


def sys_linux() -> bool:
    return platform.system() == "Linux"


def _visibility() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Files the probes would attach to now, and running processes known to be invisible."""
    if not sys_linux():
        return [], []
    from heron_core.capture.ebpf.targets import Scanner

    scanner = Scanner()
    visible = [{"path": t.display, "kind": t.kind, "processes": len(t.pids), "symbols": sorted(t.symbols)}
               for t in scanner.scan().values()]
    invisible = []
    for pid in scanner.pids():
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        name = os.path.basename(exe.removesuffix(" (deleted)"))
        what = _STATIC_TLS.get(name)
        if what is not None:
            invisible.append({"pid": pid, "exe": exe, "what": what})
    return visible, invisible


def storage(db: str | None) -> list[Check]:
    out = []
    path = Path(db or "heron.duckdb").resolve()
    parent = path.parent
    if not parent.is_dir():
        out.append(Check("db", False, f"database {path}: directory {parent} does not exist", "create it or pass --db"))
    elif not os.access(parent, os.W_OK):
        out.append(Check("db", False, f"database {path}: {parent} is not writable",
                         "pass --db PATH in a writable directory, or --no-retention"))
    else:
        free = shutil.disk_usage(parent).free
        state = "exists" if path.exists() else "will be created"
        out.append(Check("db", free > 100 * 2**20,
                         f"database {path} ({state}); {free / 2**30:.1f} GiB free",
                         None if free > 100 * 2**20 else "free some disk space or use --no-retention"))
    cache = headers.cache_root().parent
    probe = cache
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    ok = os.access(probe, os.W_OK)
    out.append(Check("cache", ok, f"cache directory {cache} {'writable' if ok else 'not writable'}",
                     None if ok else "set XDG_CACHE_HOME to a writable directory"))
    try:
        import duckdb

        out.append(Check("duckdb", True, f"duckdb {duckdb.__version__}"))
    except ImportError:
        out.append(Check("duckdb", False, "duckdb is not installed", "pip install heron-tui"))
    return out


def report(iface: str = "lo", db: str | None = None, trial: bool = True, fetch: bool = False) -> dict[str, Any]:
    return {
        "host": {"system": platform.system(), "kernel": platform.release(), "machine": platform.machine(),
                 "euid": os.geteuid() if hasattr(os, "geteuid") else None},
        "live_capture": [c.as_dict() for c in live_capture(iface)],
        "ebpf": ebpf(trial=trial, fetch=fetch),
        "storage": [c.as_dict() for c in storage(db)],
    }
