"""Where to attach the TLS uprobes (stdlib-only; run inside the agent, unit-tested with a fake /proc).

Targets are files, identified by ``(device, inode)`` because that is what a uprobe is attached to: the
same ``libssl.so.3`` reached through ``/lib`` and ``/usr/lib`` (or through a container's root) is one
target, probed once, so every call is seen once.

* **Shared libraries**: ``libssl.so*`` mapped by any running process (``/proc/<pid>/maps``) plus the
  ones the dynamic linker cache knows (``ldconfig -p``), so a process started later is covered by the
  probes already in place.
* **Executables** that export the ``SSL_*`` functions themselves (``/usr/bin/node`` bundles OpenSSL and
  exports it): every running process's ``/proc/<pid>/exe``, checked once per inode.

A path is used only if it still names the inode the process maps (a file replaced by an upgrade, or a
path inside another mount namespace, is reached through ``/proc/<pid>/root`` or ``/proc/<pid>/exe``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

try:  # inside heron (a package) or inside the agent (run as a script next to these files)
    from .elfsyms import SSL_FUNCTIONS, exported_ssl_functions
except ImportError:
    from elfsyms import SSL_FUNCTIONS, exported_ssl_functions  # type: ignore[no-redef]

_LIBSSL = re.compile(r"^libssl\.so(\.\d+)*$")
"""OpenSSL's libssl (``libssl.so.3``, ``libssl.so.1.1``); not NSS's ``libssl3.so``, a different API."""

Key = tuple[int, int]


@dataclass
class Target:
    """One probe-able file."""

    key: Key  # (st_dev, st_ino)
    path: str  # a path that opens this inode now
    kind: str  # 'lib' | 'exe'
    symbols: frozenset[str]
    pids: set[int] = field(default_factory=set)  # running processes mapping it (empty: linker cache only)
    display: str = ""  # the path as the process sees it (for messages)


def _stat_key(path: str) -> Key | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def parse_maps_line(line: str) -> tuple[Key, str] | None:
    """``(dev, inode)`` and path of a file-backed mapping line of ``/proc/<pid>/maps``, else None."""
    parts = line.split(None, 5)
    if len(parts) < 6 or parts[4] == "0":
        return None
    path = parts[5].rstrip("\n")
    if not path.startswith("/") or path.endswith(" (deleted)"):
        return None
    try:
        major, minor = (int(x, 16) for x in parts[3].split(":"))
        return (os.makedev(major, minor), int(parts[4])), path
    except ValueError:
        return None


def ldconfig_libssl(run: Callable[[], str] | None = None) -> list[str]:
    """Paths of ``libssl.so*`` in the dynamic linker cache (empty when ``ldconfig`` is unavailable)."""
    if run is None:
        run = _ldconfig_output
    out = []
    for line in run().splitlines():
        name, sep, path = line.strip().partition(" => ")
        if sep and _LIBSSL.match(name.split(" ", 1)[0]):
            out.append(path.strip())
    return out


def _ldconfig_output() -> str:
    exe = shutil.which("ldconfig") or next((p for p in ("/sbin/ldconfig", "/usr/sbin/ldconfig")
                                            if os.path.exists(p)), None)
    if exe is None:
        return ""
    try:
        return subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


class Scanner:
    """Finds targets; remembers per inode whether an executable exports ``SSL_*`` (the ELF read is the
    expensive part, and executables rarely change).

    ``proc`` is the procfs root and ``exports`` the symbol reader, both replaceable for tests."""

    def __init__(self, proc: str = "/proc", exports: Callable[[str], frozenset[str]] = exported_ssl_functions,
                 ldconfig: Callable[[], list[str]] = ldconfig_libssl, self_pid: int | None = None) -> None:
        self.proc = proc
        self.exports = exports
        self.ldconfig = ldconfig
        self.self_pid = os.getpid() if self_pid is None else self_pid
        self._exe_symbols: dict[Key, frozenset[str]] = {}

    def pids(self) -> Iterable[int]:
        try:
            names = os.listdir(self.proc)
        except OSError:
            return []
        return sorted(int(n) for n in names if n.isdigit())

    def scan(self) -> dict[Key, Target]:
        targets: dict[Key, Target] = {}
        for path in self.ldconfig():
            key = _stat_key(path)
            if key is not None and key not in targets:
                syms = self.exports(path)
                if syms:
                    targets[key] = Target(key, path, "lib", syms, display=path)
        for pid in self.pids():
            if pid == self.self_pid:
                continue
            self._scan_maps(pid, targets)
            self._scan_exe(pid, targets)
        return targets

    def _scan_maps(self, pid: int, targets: dict[Key, Target]) -> None:
        try:
            with open(f"{self.proc}/{pid}/maps", encoding="utf-8", errors="replace") as fh:
                lines = fh.readlines()
        except OSError:
            return  # exited, or not ours to read
        seen: set[Key] = set()
        for line in lines:
            parsed = parse_maps_line(line)
            if parsed is None:
                continue
            key, path = parsed
            if key in seen or not _LIBSSL.match(os.path.basename(path)):
                continue
            seen.add(key)
            t = targets.get(key)
            if t is None:
                usable = self._reachable(pid, path, key)
                if usable is None:
                    continue
                syms = self.exports(usable)
                if not syms:
                    continue
                t = targets[key] = Target(key, usable, "lib", syms, display=path)
            t.pids.add(pid)

    def _reachable(self, pid: int, path: str, key: Key) -> str | None:
        """A path opening inode ``key``: the mapped path itself, or through the process's root."""
        for cand in (path, f"{self.proc}/{pid}/root{path}"):
            if _stat_key(cand) == key:
                return cand
        return None

    def _scan_exe(self, pid: int, targets: dict[Key, Target]) -> None:
        link = f"{self.proc}/{pid}/exe"
        key = _stat_key(link)  # stat follows the magic link to the inode, whatever the mount namespace
        if key is None:
            return
        t = targets.get(key)
        if t is not None:
            t.pids.add(pid)
            return
        syms = self._exe_symbols.get(key)
        if syms is None:
            syms = self._exe_symbols[key] = self.exports(link)
        if not syms:
            return
        try:
            shown = os.readlink(link)
        except OSError:
            shown = link
        path = shown if _stat_key(shown) == key else link
        targets[key] = Target(key, path, "exe", syms, {pid}, display=shown)

    def forget(self, keep: Iterable[Key]) -> None:
        """Drop cached ELF verdicts of inodes no longer running (so the cache cannot grow forever)."""
        keep = set(keep)
        self._exe_symbols = {k: v for k, v in self._exe_symbols.items() if k in keep}


def process_identity(proc: str, pid: int, fallback_comm: str) -> dict[str, object]:
    """``{pid, comm, exe}`` of a running process (comm of the thread-group leader; exe None when the
    process is gone or not readable)."""
    comm = fallback_comm
    try:
        with open(f"{proc}/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            comm = fh.read().rstrip("\n") or fallback_comm
    except OSError:
        pass
    try:
        exe: str | None = os.readlink(f"{proc}/{pid}/exe")
        exe = exe.removesuffix(" (deleted)")
    except OSError:
        exe = None
    return {"pid": pid, "comm": comm, "exe": exe}


__all__ = ["SSL_FUNCTIONS", "Scanner", "Target", "ldconfig_libssl", "parse_maps_line", "process_identity"]
