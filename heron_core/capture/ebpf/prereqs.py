"""eBPF prerequisites: what ``--ebpf`` needs, checked before anything is started (docs/ebpf.md).

Each check is a ``Check`` with a one-line detail and, when it fails, a one-line fix, so ``heron
doctor`` can print them all and ``EbpfSource`` can turn the first failure into ``heron: error: --ebpf:
<why> (fix: <fix>)``. Checks read files only (``/proc``, ``/sys``) or run a short subprocess; none
loads BPF code (that is the agent's job, and ``heron doctor``'s trial).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache

APT_LINE = "apt-get install python3-bpfcc"
"""The one documented system package: bcc's Python bindings (they pull in libbcc)."""

CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39
MIN_KERNEL = (5, 8)
"""BPF ring buffer (and CAP_BPF/CAP_PERFMON) arrived in Linux 5.8."""
BTF_PATH = "/sys/kernel/btf/vmlinux"
UPROBE_PMU = "/sys/bus/event_source/devices/uprobe/type"


@dataclass
class Check:
    """One prerequisite: ``ok`` True/False, or None for information that does not block."""

    name: str
    ok: bool | None
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}

    def error(self) -> str:
        """The one-line error of a failed check."""
        return self.detail + (f" (fix: {self.fix})" if self.fix else "")


def kernel_version(release: str | None = None) -> tuple[int, int]:
    rel = release or platform.release()
    parts = []
    for piece in rel.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit()) or "0"
        parts.append(int(digits))
    while len(parts) < 2:
        parts.append(0)
    return parts[0], parts[1]


def effective_caps(status_text: str | None = None) -> int:
    """The ``CapEff`` bit mask of this process (0 when unknown)."""
    if status_text is None:
        try:
            with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
                status_text = fh.read()
        except OSError:
            return 0
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            try:
                return int(line.split(":", 1)[1].strip(), 16)
            except ValueError:
                return 0
    return 0


def check_platform() -> Check:
    if sys.platform != "linux":
        return Check("platform", False, f"eBPF needs Linux (this is {sys.platform})")
    rel = platform.release()
    if kernel_version(rel) < MIN_KERNEL:
        return Check("kernel", False, f"kernel {rel} is older than 5.8 (no BPF ring buffer)",
                     "use a 5.8+ kernel")
    return Check("kernel", True, f"kernel {rel} (5.8+: BPF ring buffer)")


def check_privileges(caps: int | None = None, euid: int | None = None) -> Check:
    euid = os.geteuid() if euid is None else euid
    caps = effective_caps() if caps is None else caps
    have = lambda bit: bool(caps >> bit & 1)
    if euid == 0 and have(CAP_SYS_ADMIN):
        return Check("privileges", True, "privileges: root")
    if have(CAP_SYS_ADMIN) or (have(CAP_BPF) and have(CAP_PERFMON)):
        return Check("privileges", True, "privileges: " + ("CAP_BPF + CAP_PERFMON" if have(CAP_BPF) else "CAP_SYS_ADMIN"))
    return Check("privileges", False, "loading uprobes needs root or CAP_BPF + CAP_PERFMON",
                 "run as root, or: setcap cap_bpf,cap_perfmon+ep on the python running heron")


def check_btf() -> Check:
    if os.path.exists(BTF_PATH):
        return Check("btf", True, f"BTF at {BTF_PATH}")
    return Check("btf", False, f"no kernel BTF ({BTF_PATH} is missing)",
                 "use a kernel built with CONFIG_DEBUG_INFO_BTF=y")


def check_uprobe_pmu() -> Check:
    """Probes attach through the perf ``uprobe`` PMU: a file descriptor the kernel removes with the
    process, so nothing outlives heron (the legacy tracefs route could leave probes behind)."""
    if os.path.exists(UPROBE_PMU):
        return Check("uprobes", True, "perf uprobe PMU (probes are removed with their process)")
    return Check("uprobes", False, "the kernel has no perf uprobe PMU (CONFIG_UPROBE_EVENTS)",
                 "use a kernel with CONFIG_UPROBES=y and CONFIG_UPROBE_EVENTS=y")


@lru_cache(maxsize=4)
def _bcc_location(python: str) -> str | None:
    """Where ``python`` would import bcc from (no import: finding the spec is enough and fast)."""
    if python == sys.executable:
        import importlib.util

        spec = importlib.util.find_spec("bcc")
        origin = spec.origin if spec is not None else None
    else:
        try:
            proc = subprocess.run(
                [python, "-E", "-s", "-c", ("import importlib.util as u; s = u.find_spec('bcc'); "
                                            "print(s.origin if s and s.origin else '')")],
                capture_output=True, text=True, timeout=20, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        origin = proc.stdout.strip() or None
    if origin and os.path.exists(os.path.join(os.path.dirname(origin), "libbcc.py")):
        return os.path.dirname(origin)  # the real bcc (a PyPI package of that name is something else)
    return None


def bcc_version(location: str) -> str:
    try:
        with open(os.path.join(location, "version.py"), encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("__version__"):
                    return line.split("=", 1)[1].strip().strip("'\"")
    except OSError:
        pass
    return "?"


def find_bcc_python() -> tuple[str | None, str | None]:
    """``(interpreter, bcc dir)`` to run the agent with: ``$HERON_BCC_PYTHON``, else heron's own
    Python when it can import bcc, else the system ``/usr/bin/python3`` (where Debian's python3-bpfcc
    installs it). ``(None, None)`` when none has bcc."""
    cands = []
    env = os.environ.get("HERON_BCC_PYTHON")
    if env:
        cands.append(env)
    else:
        cands += [sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"]
    for py in dict.fromkeys(cands):
        if py and os.access(py, os.X_OK):
            loc = _bcc_location(py)
            if loc:
                return py, loc
    return None, None


def check_bcc() -> tuple[Check, str | None]:
    py, loc = find_bcc_python()
    if py is None or loc is None:
        where = os.environ.get("HERON_BCC_PYTHON") or "heron's python or /usr/bin/python3"
        return Check("bcc", False, f"BCC Python bindings not found (looked in {where})", APT_LINE), None
    how = "in heron's own python" if py == sys.executable else f"for {py} (the probe agent runs under it)"
    return Check("bcc", True, f"bcc {bcc_version(loc)} {how}"), py


def blocking_checks() -> tuple[list[Check], str | None]:
    """The checks ``--ebpf`` cannot run without, and the agent interpreter (None if bcc is missing).
    Kernel headers are checked separately (``headers.py``): they can be fetched automatically."""
    checks = [check_platform()]
    if checks[0].ok is False and checks[0].name == "platform":
        return checks, None
    bcc, py = check_bcc()
    checks += [check_privileges(), check_btf(), check_uprobe_pmu(), bcc]
    return checks, py
